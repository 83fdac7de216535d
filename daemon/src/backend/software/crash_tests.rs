//! Durability tests that can fail: the keystore's write path is crashed at every
//! step and filled to ENOSPC at every step, and each state left behind is opened
//! by the real daemon code. Negative controls run the same harness against a plain
//! `fs::write`-style writer, and against the keystore's own write path with its
//! file fsync or its directory fsync dropped; each must be caught.
//!
//! The writes go through [`CrashModel`], a model of what POSIX lets a crash keep
//! (see [`super::durable::model`]). A workload writes `store.json` and the key
//! manifest, creates keys and deletes some, through the same [`StoreDir`] methods
//! the daemon calls; for every step, and every crash state at that step, the
//! model's file tree is written to a real temporary directory and opened with
//! [`SoftwareBackend::start`] (scan, manifest check, passphrase check, unlock).
//! Then every key whose creation had been acknowledged must load and sign (the
//! signature verified with its public key), every acknowledged deletion must hold,
//! no file may be reported unreadable (torn, empty, or at odds with the manifest),
//! and no temporary file may survive.

// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use super::directory::StoreDir;
use super::durable::model::{CrashModel, Snapshot, Tree};
use super::durable::Disk;
use super::envelope::{KdfParams, StoreKey};
use super::error::{Result, SoftwareError};
use super::files::TEMP_PREFIX;
use super::key_file::{StoreFile, StoredKey};
use super::manifest::ManifestKey;
use super::{SecretFile, SoftwareBackend, SoftwareConfig};
use crate::keys::{KeyBackend, KeyRecord, Location, Unlock};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{SigningKey, VerifyingKey};
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSPHRASE: &str = "crash test passphrase";
const KEYS: usize = 6;

/// What the workload asks of the store.
#[derive(Clone, Copy, Debug)]
enum Op {
    StoreFile,
    /// The key manifest, created as at the first unlock.
    Manifest,
    Create(usize),
    Delete(usize),
}

/// Create keys, deleting some along the way and one at the end.
const SCRIPT: [Op; 11] = [
    Op::StoreFile,
    Op::Manifest,
    Op::Create(0),
    Op::Create(1),
    Op::Create(2),
    Op::Delete(1),
    Op::Create(3),
    Op::Create(4),
    Op::Delete(3),
    Op::Create(5),
    Op::Delete(0),
];

/// The store file and sealed keys the workload writes, and where.
struct Fixture {
    /// The model's store root: an empty real directory (with an empty `keys/`), so
    /// that the manifest, which reads the directory once when it is first created,
    /// finds the same empty store the model starts with. Every write goes to the model.
    root: PathBuf,
    _root_dir: tempfile::TempDir,
    store_key: StoreKey,
    store_file: Vec<u8>,
    keys: Vec<(KeyRecord, Vec<u8>)>,
}

impl Fixture {
    fn new() -> Self {
        // Cheap KDF parameters: recovery derives the key once per crash state.
        let params = KdfParams {
            memory_kib: 64,
            iterations: 1,
            ..KdfParams::fresh()
        };
        let store_key: StoreKey = params.derive(&SecretString::from(PASSPHRASE)).unwrap();
        let (_, store_file) = StoreFile::create(&store_key).unwrap();
        let keys = (0..KEYS)
            .map(|index| {
                let signing_key = SigningKey::random(&mut rand_core::OsRng);
                let record = KeyRecord::new(
                    (*signing_key.verifying_key()).into(),
                    "example.com/crash".parse().unwrap(),
                    if index % 2 == 0 { "targets" } else { "root" }
                        .parse()
                        .unwrap(),
                    Location::Software,
                    "2026-01-01T00:00:00Z".into(),
                    false,
                );
                let (_, bytes) = StoredKey::seal(&record, &signing_key, &store_key).unwrap();
                (record, bytes)
            })
            .collect();
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().join("store");
        std::fs::create_dir_all(root.join("keys")).unwrap();
        Fixture {
            root,
            _root_dir: root_dir,
            store_key,
            store_file,
            keys,
        }
    }

    fn keyid(&self, index: usize) -> &str {
        &self.keys[index].0.keyid
    }
}

/// A way of writing the store: the keystore's own, or the negative control's.
trait Writer {
    fn write_store_file(&self, bytes: &[u8]) -> Result<()>;
    fn establish_manifest(&self, key: ManifestKey) -> Result<()>;
    fn write_key(&self, keyid: &str, bytes: &[u8]) -> Result<()>;
    fn remove_key(&self, keyid: &str) -> Result<()>;
}

/// The keystore's write path, exactly as the daemon runs it.
impl<D: Disk> Writer for StoreDir<D> {
    fn write_store_file(&self, bytes: &[u8]) -> Result<()> {
        StoreDir::write_store_file(self, bytes)
    }

    fn establish_manifest(&self, key: ManifestKey) -> Result<()> {
        StoreDir::establish_manifest(self, key).map(|_| ())
    }

    fn write_key(&self, keyid: &str, bytes: &[u8]) -> Result<()> {
        StoreDir::write_key(self, keyid, bytes)
    }

    fn remove_key(&self, keyid: &str) -> Result<()> {
        StoreDir::remove_key(self, keyid)
    }
}

/// The negative control: what `fs::write` and `fs::remove_file` do. The file is
/// written in place under its final name, and nothing is fsynced.
struct PlainWriter {
    model: CrashModel,
    root: PathBuf,
}

impl PlainWriter {
    fn write(&self, path: PathBuf, bytes: &[u8]) -> Result<()> {
        let mut file = self
            .model
            .create_new(&path)
            .map_err(SoftwareError::io("creating", &path))?;
        self.model
            .write_all(&mut file, bytes)
            .map_err(SoftwareError::io("writing", &path))
    }

    fn key_path(&self, keyid: &str) -> PathBuf {
        self.root.join("keys").join(format!("{keyid}.key"))
    }
}

impl Writer for PlainWriter {
    fn write_store_file(&self, bytes: &[u8]) -> Result<()> {
        self.write(self.root.join("store.json"), bytes)
    }

    /// A plain store keeps no manifest.
    fn establish_manifest(&self, _key: ManifestKey) -> Result<()> {
        Ok(())
    }

    fn write_key(&self, keyid: &str, bytes: &[u8]) -> Result<()> {
        self.write(self.key_path(keyid), bytes)
    }

    fn remove_key(&self, keyid: &str) -> Result<()> {
        let path = self.key_path(keyid);
        self.model
            .remove_file(&path)
            .map_err(SoftwareError::io("removing", &path))
    }
}

/// The model with one kind of fsync turned into a no-op: the keystore's own write
/// path run on it shows what that fsync is for, and that the harness notices.
#[derive(Clone)]
struct DroppedSync {
    model: CrashModel,
    dropped: Fsync,
}

/// Which fsync [`DroppedSync`] leaves out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fsync {
    File,
    Directory,
}

impl Disk for DroppedSync {
    type File = <CrashModel as Disk>::File;

    fn create_new(&self, path: &Path) -> std::io::Result<Self::File> {
        self.model.create_new(path)
    }

    fn write_all(&self, file: &mut Self::File, bytes: &[u8]) -> std::io::Result<()> {
        self.model.write_all(file, bytes)
    }

    fn sync_file(&self, file: &mut Self::File) -> std::io::Result<()> {
        if self.dropped == Fsync::File {
            return Ok(());
        }
        self.model.sync_file(file)
    }

    fn rename_noclobber(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.model.rename_noclobber(from, to)
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.model.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.model.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.dropped == Fsync::Directory {
            return Ok(());
        }
        self.model.sync_dir(dir)
    }
}

/// One call of the workload: when it started and returned, in model steps.
struct Call {
    op: Op,
    started_at: usize,
    returned_at: usize,
    result: Result<()>,
}

impl Call {
    /// Whether the call had returned `Ok` before a crash at `step`.
    fn acknowledged_by(&self, step: usize) -> bool {
        self.result.is_ok() && self.returned_at <= step
    }
}

/// Runs [`SCRIPT`]; a key whose creation failed is not deleted. When the store file
/// or the manifest cannot be written the unlock fails and the daemon writes nothing
/// more, so neither does the run.
fn run(writer: &(impl Writer + ?Sized), model: &CrashModel, fixture: &Fixture) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    for op in SCRIPT {
        let started_at = model.steps();
        let result = match op {
            Op::StoreFile => writer.write_store_file(&fixture.store_file),
            Op::Manifest => writer.establish_manifest(fixture.store_key.manifest_key()),
            Op::Create(index) => writer.write_key(fixture.keyid(index), &fixture.keys[index].1),
            Op::Delete(index) => {
                let created = calls.iter().any(|call| {
                    matches!(call.op, Op::Create(i) if i == index) && call.result.is_ok()
                });
                if !created {
                    continue;
                }
                writer.remove_key(fixture.keyid(index))
            }
        };
        let setup_failed = matches!(op, Op::StoreFile | Op::Manifest) && result.is_err();
        calls.push(Call {
            op,
            started_at,
            returned_at: model.steps(),
            result,
        });
        if setup_failed {
            break;
        }
    }
    calls
}

/// What a crash at a step must preserve.
struct Expected {
    store_file: bool,
    /// Keys acknowledged and not (yet) being deleted.
    present: BTreeSet<String>,
    /// Keys whose deletion was acknowledged.
    absent: BTreeSet<String>,
}

fn expected_at(step: usize, calls: &[Call], fixture: &Fixture) -> Expected {
    let mut expected = Expected {
        store_file: false,
        present: BTreeSet::new(),
        absent: BTreeSet::new(),
    };
    for call in calls {
        match call.op {
            Op::StoreFile => expected.store_file |= call.acknowledged_by(step),
            Op::Create(index) if call.acknowledged_by(step) => {
                expected.present.insert(fixture.keyid(index).to_owned());
            }
            Op::Delete(index) if call.started_at < step => {
                let keyid = fixture.keyid(index);
                expected.present.remove(keyid);
                if call.acknowledged_by(step) {
                    expected.absent.insert(keyid.to_owned());
                }
            }
            Op::Manifest | Op::Create(_) | Op::Delete(_) => {}
        }
    }
    expected
}

/// A broken promise found in a recovered store.
#[derive(Debug, PartialEq, Eq)]
enum Violation {
    /// An acknowledged key is missing after the crash.
    LostKey(String),
    /// A file under a key's name does not load (torn, empty, partial).
    TornFile(String),
    /// A key whose deletion was acknowledged came back.
    DeletedKeyBack(String),
    /// A key loaded but could not sign, or its signature did not verify.
    Unusable(String),
    /// The acknowledged store file no longer unlocks the store.
    StoreLocked(String),
    /// A temporary file survived the scan, or a failed write left one.
    TempFileLeft(String),
    /// A full disk was reported as something else.
    NotReportedAsFull(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Writes `tree` into `dir` as the store, with the secret file beside it.
fn materialise(tree: &Tree, root: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let store = dir.join("store");
    let builder = {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder
    };
    builder.create(store.join("keys")).unwrap();
    for (path, contents) in tree {
        let relative = path.strip_prefix(root).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(store.join(relative))
            .unwrap();
        file.write_all(contents).unwrap();
    }
    let secret = dir.join("secret");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .unwrap();
    file.write_all(PASSPHRASE.as_bytes()).unwrap();
    (store, secret)
}

/// What the real keystore code made of a crash state.
struct Recovered {
    locked: bool,
    /// Files the scan reported unreadable.
    problems: Vec<String>,
    loaded: BTreeSet<String>,
    /// Loaded keys that did not sign or verify, with why.
    unusable: Vec<String>,
    /// Temporary files still there after the start.
    temp_left: Vec<String>,
}

/// Writes `tree` to disk and starts the keystore on it as the daemon does: scan,
/// passphrase check, unlock; then signs with every key it loaded.
async fn open_with_the_daemon(tree: &Tree, root: &Path) -> Recovered {
    let dir = tempfile::tempdir().unwrap();
    let (store, secret) = materialise(tree, root, dir.path());
    let config = SoftwareConfig {
        dir: store.clone(),
        use_keyring: false,
        secret_file: Some(SecretFile::Setting(secret)),
        idle_timeout: Duration::from_secs(3600),
        environment_passphrase: None,
    };
    let backend = SoftwareBackend::start(&config).await.unwrap();
    let state = backend.lock_state();
    let loaded = backend.load().await.unwrap();
    let mut unusable = Vec::new();
    for key in &loaded {
        if let Err(problem) = signs(&backend, key).await {
            unusable.push(format!("{}: {problem}", key.keyid));
        }
    }
    let temp_left = std::fs::read_dir(store.join("keys"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(TEMP_PREFIX))
        .collect();
    Recovered {
        locked: state.locked,
        problems: state.problems,
        loaded: loaded.into_iter().map(|key| key.keyid).collect(),
        unusable,
        temp_left,
    }
}

impl Recovered {
    /// What breaks `expected`.
    fn violations(&self, expected: &Expected) -> Vec<Violation> {
        let mut violations = Vec::new();
        if expected.store_file && self.locked {
            violations.push(Violation::StoreLocked(format!("{:?}", self.problems)));
        }
        violations.extend(self.problems.iter().cloned().map(Violation::TornFile));
        for keyid in expected.present.difference(&self.loaded) {
            violations.push(Violation::LostKey(keyid.clone()));
        }
        for keyid in expected.absent.intersection(&self.loaded) {
            violations.push(Violation::DeletedKeyBack(keyid.clone()));
        }
        violations.extend(self.unusable.iter().cloned().map(Violation::Unusable));
        violations.extend(self.temp_left.iter().cloned().map(Violation::TempFileLeft));
        violations
    }
}

/// Signs a digest with `key` through the backend and verifies it.
async fn signs(backend: &SoftwareBackend, key: &KeyRecord) -> std::result::Result<(), String> {
    let digest = [7u8; 32];
    let signature = backend
        .sign_digest(key, &digest)
        .await
        .map_err(|error| error.to_string())?;
    VerifyingKey::from(&key.public_key)
        .verify_prehash(&digest, &signature)
        .map_err(|error| error.to_string())
}

/// What a harness found, and how much it looked at.
#[derive(Default)]
struct Report {
    crash_points: usize,
    /// Crash states checked (one tree may be checked at several points).
    states: usize,
    /// Each distinct tree, opened once.
    opened: BTreeMap<Tree, Recovered>,
    /// "where: violation".
    violations: Vec<(String, Violation)>,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "{} crash points, {} crash states checked, {} distinct store trees opened, {} violations",
            self.crash_points,
            self.states,
            self.opened.len(),
            self.violations.len()
        )
    }

    /// Opens `tree` (once) and records what breaks `expected`, at `place`.
    async fn check(&mut self, place: &str, tree: &Tree, root: &Path, expected: &Expected) {
        self.states += 1;
        if !self.opened.contains_key(tree) {
            let recovered = open_with_the_daemon(tree, root).await;
            self.opened.insert(tree.clone(), recovered);
        }
        for violation in self.opened[tree].violations(expected) {
            self.violations.push((place.to_owned(), violation));
        }
    }
}

/// Crashes the run recorded in `model` at every step, in every crash state.
async fn explore_crashes(model: &CrashModel, calls: &[Call], fixture: &Fixture) -> Report {
    let mut report = Report::default();
    for (step, snapshot) in model.crash_points().iter().enumerate() {
        report.crash_points += 1;
        check_snapshot(&mut report, "", step, snapshot, calls, fixture).await;
    }
    report
}

/// Checks every crash state of `snapshot`, taken before `step`.
async fn check_snapshot(
    report: &mut Report,
    place: &str,
    step: usize,
    snapshot: &Snapshot,
    calls: &[Call],
    fixture: &Fixture,
) {
    let expected = expected_at(step, calls, fixture);
    for state in snapshot.crash_states() {
        let place = format!("{place}crash before step {step}, {}", state.label);
        report
            .check(&place, &state.tree, &fixture.root, &expected)
            .await;
    }
}

/// Fills the disk at every step of the workload in turn: the call that hits it
/// fails as a full disk and leaves no temp file; the store, as the process sees it
/// and after a crash at the end, keeps every acknowledged key.
async fn explore_full_disk(
    writer_on: impl Fn(&CrashModel) -> Box<dyn Writer>,
    fixture: &Fixture,
) -> Report {
    let clean = CrashModel::default();
    run(writer_on(&clean).as_ref(), &clean, fixture);
    let mut report = Report::default();
    for fail_at in 0..clean.steps() {
        let model = CrashModel::failing_at(Some(fail_at));
        let calls = run(writer_on(&model).as_ref(), &model, fixture);
        let place = format!("disk full at step {fail_at}");
        for call in &calls {
            if let Err(error) = &call.result {
                if !matches!(error, SoftwareError::NoSpace { .. }) {
                    report.violations.push((
                        place.clone(),
                        Violation::NotReportedAsFull(error.to_string()),
                    ));
                }
            }
        }
        let live = model.now().live_tree();
        for path in live.keys() {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with(TEMP_PREFIX) {
                report
                    .violations
                    .push((place.clone(), Violation::TempFileLeft(name.into_owned())));
            }
        }
        let end = model.steps();
        let expected = expected_at(end, &calls, fixture);
        report
            .check(
                &format!("{place}, no crash"),
                &live,
                &fixture.root,
                &expected,
            )
            .await;
        report.crash_points += 1;
        check_snapshot(
            &mut report,
            &format!("{place}, "),
            end,
            &model.now(),
            &calls,
            fixture,
        )
        .await;
    }
    report
}

fn model_store(model: &CrashModel, fixture: &Fixture) -> StoreDir<CrashModel> {
    StoreDir::on(model.clone(), &fixture.root)
}

fn show(report: &Report) -> String {
    report
        .violations
        .iter()
        .map(|(where_, violation)| format!("{where_}: {violation}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_crash_at_any_step_loses_an_acknowledged_key_or_loads_a_torn_file() {
    let fixture = Fixture::new();
    let model = CrashModel::default();
    let calls = run(&model_store(&model, &fixture), &model, &fixture);
    assert!(calls.iter().all(|call| call.result.is_ok()));
    // store.json: 5 steps; each manifest write 8; each key 5 + 2 manifest writes;
    // each deletion 2 + 2 manifest writes.
    assert_eq!(model.steps(), 5 + 8 + 6 * (5 + 16) + 3 * (2 + 16));

    let report = explore_crashes(&model, &calls, &fixture).await;
    println!("keystore write path, crashed: {}", report.summary());
    assert_eq!(report.crash_points, model.steps() + 1);
    // Reordered crash states were explored, not just one per point.
    assert!(report.states > report.crash_points, "{}", report.summary());
    assert!(report.violations.is_empty(), "{}", show(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_fs_write_store_is_caught_losing_keys_and_loading_torn_files() {
    let fixture = Fixture::new();
    let model = CrashModel::default();
    let plain = PlainWriter {
        model: model.clone(),
        root: fixture.root.clone(),
    };
    let calls = run(&plain, &model, &fixture);
    assert!(calls.iter().all(|call| call.result.is_ok()));

    let report = explore_crashes(&model, &calls, &fixture).await;
    println!("negative control, crashed: {}", report.summary());
    let found = |label: &str, matches: fn(&Violation) -> bool| {
        report
            .violations
            .iter()
            .any(|(where_, violation)| where_.contains(label) && matches(violation))
    };
    assert!(
        found("0 of", |v| matches!(v, Violation::LostKey(_))),
        "the harness missed acknowledged keys lost with the unsynced directory:\n{}",
        show(&report)
    );
    assert!(
        found("data Synced", |v| matches!(v, Violation::TornFile(_))),
        "the harness missed key files whose renamed entry persisted but not their data:\n{}",
        show(&report)
    );
    assert!(
        found("", |v| matches!(v, Violation::DeletedKeyBack(_))),
        "the harness missed a deletion that did not persist:\n{}",
        show(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_any_step_fails_cleanly_and_keeps_every_acknowledged_key() {
    let fixture = Fixture::new();
    let report = explore_full_disk(
        |model| Box::new(model_store(model, &fixture)) as Box<dyn Writer>,
        &fixture,
    )
    .await;
    println!("keystore write path, disk full: {}", report.summary());
    assert_eq!(report.crash_points, 193);
    assert!(report.violations.is_empty(), "{}", show(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_fs_write_store_is_caught_leaving_a_torn_file_on_a_full_disk() {
    let fixture = Fixture::new();
    let report = explore_full_disk(
        |model| {
            Box::new(PlainWriter {
                model: model.clone(),
                root: fixture.root.clone(),
            }) as Box<dyn Writer>
        },
        &fixture,
    )
    .await;
    assert!(
        report
            .violations
            .iter()
            .any(|(_, violation)| matches!(violation, Violation::TornFile(_))),
        "the harness missed a half-written key file:\n{}",
        show(&report)
    );
}

/// The keystore's write path with its file fsync dropped (or its directory fsync):
/// the harness must catch each.
async fn explore_dropped_sync(dropped: Fsync) -> Report {
    let fixture = Fixture::new();
    let model = CrashModel::default();
    let disk = DroppedSync {
        model: model.clone(),
        dropped,
    };
    let calls = run(&StoreDir::on(disk, &fixture.root), &model, &fixture);
    assert!(calls.iter().all(|call| call.result.is_ok()));
    explore_crashes(&model, &calls, &fixture).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_file_fsync_a_renamed_key_file_is_caught_torn() {
    let report = explore_dropped_sync(Fsync::File).await;
    assert!(
        report.violations.iter().any(|(where_, violation)| {
            where_.contains("data Synced") && matches!(violation, Violation::TornFile(_))
        }),
        "the harness missed a key file renamed before its data was durable:\n{}",
        show(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_directory_fsync_lost_keys_and_undone_deletions_are_caught() {
    let report = explore_dropped_sync(Fsync::Directory).await;
    let found = |matches: fn(&Violation) -> bool| {
        report
            .violations
            .iter()
            .any(|(_, violation)| matches(violation))
    };
    assert!(
        found(|v| matches!(v, Violation::LostKey(_))),
        "the harness missed an acknowledged key whose directory entry was not durable:\n{}",
        show(&report)
    );
    assert!(
        found(|v| matches!(v, Violation::DeletedKeyBack(_))),
        "the harness missed an acknowledged deletion that was not durable:\n{}",
        show(&report)
    );
}
