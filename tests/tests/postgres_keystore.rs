//! The software keystore kept in a real PostgreSQL ([`PgCluster`]), seen through the
//! backend seam by two in-process replicas sharing one store secret: the schema is
//! migrated once and kept across restarts (a newer one is refused), a key created on
//! one replica is found and signs on the other, a deletion reaches the other within
//! a second (LISTEN/NOTIFY), a wrong store secret changes no row, the database never
//! holds a private scalar in any encoding, and a database restart is survived:
//! decrypted keys keep signing, the rest fails as UNAVAILABLE naming the database,
//! and both the pool and the notification connection come back by themselves.
//! Replicas starting together on a new database agree on one store record; with
//! `--postgres-ca` only verified TLS is used; and the real `tufkeyd` takes the
//! database password from `TUFKEYD_POSTGRES_PASSWORD`, never from the URL.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::VerifyingKey;
use secrecy::SecretString;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tufkey_e2e::daemon::{bin_dir, cli};
use tufkey_e2e::leak_scan::ScalarDetector;
use tufkey_e2e::notary::Pki;
use tufkey_e2e::postgres::PgCluster;
use tufkeyd::backend::software::postgres::PostgresConfig;
use tufkeyd::backend::software::{SecretFile, SoftwareBackend, SoftwareConfig, SoftwareError};
use tufkeyd::error::ErrorKind;
use tufkeyd::keys::{ImportedKey, KeyBackend, KeyRecord, NewKey, Placement};
use tufkeyd::shutdown::StopSignal;

/// A deleted key must be refused on every replica within this.
const PROMPTLY: Duration = Duration::from_secs(1);

/// A 0600 file holding `secret`.
fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, secret.as_bytes()).unwrap();
    path
}

/// One replica's settings: its own store directory, the shared secret file.
fn settings(dir: &Path, name: &str, secret: &Path) -> SoftwareConfig {
    SoftwareConfig {
        dir: dir.join(name),
        use_keyring: false,
        secret_file: Some(SecretFile::Setting(secret.to_path_buf())),
        idle_timeout: Duration::from_secs(3600),
        environment_passphrase: None,
    }
}

fn database(cluster: &PgCluster) -> PostgresConfig {
    PostgresConfig::new(cluster.url(), Some(cluster.password_file()), None).unwrap()
}

async fn start(
    cluster: &PgCluster,
    dir: &Path,
    name: &str,
    secret: &Path,
) -> Result<Arc<SoftwareBackend>, SoftwareError> {
    SoftwareBackend::start_in_postgres(&settings(dir, name, secret), &database(cluster)).await
}

fn new_key(role: &str) -> NewKey {
    NewKey {
        gun: "example.com/app".parse().unwrap(),
        role: role.parse().unwrap(),
        exportable: false,
        placement: Placement::Default,
    }
}

/// Signs a digest with `key` on `backend` and checks the signature.
async fn signs(backend: &SoftwareBackend, key: &KeyRecord) -> tufkeyd::error::Result<()> {
    let digest = [7u8; 32];
    let signature = backend.sign_digest(key, &digest).await?;
    VerifyingKey::from(&key.public_key)
        .verify_prehash(&digest, &signature)
        .expect("the signature verifies with the key's public half");
    Ok(())
}

/// Polls until `backend` refuses to sign with `key`, for at most `within`; the
/// refusal. (Notices of earlier changes may still be arriving, so the next notice
/// is not necessarily the one of this key.)
async fn refused_within(
    backend: &SoftwareBackend,
    key: &KeyRecord,
    within: Duration,
) -> tufkeyd::error::Error {
    let deadline = Instant::now() + within;
    loop {
        match signs(backend, key).await {
            Err(refused) => return refused,
            Ok(()) => {
                assert!(
                    Instant::now() < deadline,
                    "still signs with {} after {within:?}",
                    key.keyid
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs the backend's background work (idle lock, following other replicas).
fn maintain(backend: &Arc<SoftwareBackend>, stop: &StopSignal) -> tokio::task::JoinHandle<()> {
    let backend = backend.clone();
    let stopping = stop.subscribe();
    tokio::spawn(async move { backend.maintain(stopping).await })
}

/// Waits for the next change notice, at most `within`.
async fn next_change(changes: &mut broadcast::Receiver<()>, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(within, changes.recv()).await,
        Ok(Ok(()) | Err(broadcast::error::RecvError::Lagged(_)))
    )
}

/// Drains notices already sent.
fn drain(changes: &mut broadcast::Receiver<()>) {
    while changes.try_recv().is_ok() {}
}

/// Starts a cluster off the async threads (initdb and pg_ctl take a second or two).
async fn cluster() -> PgCluster {
    tokio::task::spawn_blocking(PgCluster::start).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_on_one_replica_signs_on_the_other_and_its_deletion_reaches_it_promptly() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "the replicas' shared store secret");
    let a = start(&cluster, dir.path(), "a", &secret).await.unwrap();
    let b = start(&cluster, dir.path(), "b", &secret).await.unwrap();
    assert!(!a.unlock().unwrap().lock_state().locked && !b.unlock().unwrap().lock_state().locked);
    assert_eq!(
        a.unlock().unwrap().lock_state().store,
        cluster.url(),
        "status names the database, without a password"
    );

    // Found through the seam's `find`, by either key ID, with no notice involved.
    let first = a.generate(&new_key("targets")).await.unwrap();
    let found = b
        .find(&first.keyid)
        .await
        .unwrap()
        .expect("B finds A's key");
    assert_eq!(found.public_key, first.public_key);
    let by_notary_id = b.find(&first.notary_keyid).await.unwrap();
    assert_eq!(by_notary_id.map(|key| key.keyid), Some(first.keyid.clone()));
    signs(&b, &found).await.unwrap();
    assert!(b.find("0000").await.unwrap().is_none());

    // With the replicas following each other: a new key shows in B's list.
    let stop = StopSignal::new();
    let mut changes = b.changes().expect("the keystore reports others' changes");
    let tasks = [maintain(&a, &stop), maintain(&b, &stop)];
    assert!(
        next_change(&mut changes, Duration::from_secs(10)).await,
        "B reads everything once it listens"
    );
    drain(&mut changes);
    let second = a.generate(&new_key("snapshot")).await.unwrap();
    assert!(
        next_change(&mut changes, PROMPTLY).await,
        "B hears of the new key"
    );
    assert!(b
        .load()
        .await
        .unwrap()
        .iter()
        .any(|key| key.keyid == second.keyid));

    // Deleted on A: B drops its decrypted signer and refuses, within a second.
    signs(&b, &second).await.unwrap();
    let deleted_at = Instant::now();
    a.delete(&second).await.unwrap();
    let refused = refused_within(&b, &second, PROMPTLY).await;
    assert!(
        deleted_at.elapsed() < PROMPTLY,
        "{:?}",
        deleted_at.elapsed()
    );
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused}");
    assert!(!b
        .load()
        .await
        .unwrap()
        .iter()
        .any(|key| key.keyid == second.keyid));
    assert!(b.find(&second.keyid).await.unwrap().is_none());
    signs(&b, &first).await.unwrap();
    assert_eq!(
        cluster.sql("SELECT keyid FROM tufkey_keys").trim(),
        first.keyid,
        "one row per key, the deleted one gone"
    );

    stop.stop();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "store secret");
    let first = start(&cluster, dir.path(), "a", &secret).await.unwrap();
    let key = first.generate(&new_key("targets")).await.unwrap();
    drop(first);
    // Restarted, and a second replica: the schema is kept, the key still there.
    for name in ["a", "b"] {
        let again = start(&cluster, dir.path(), name, &secret).await.unwrap();
        assert_eq!(again.load().await.unwrap().len(), 1);
        signs(&again, &key).await.unwrap();
    }
    assert_eq!(cluster.sql("SELECT version FROM tufkey_schema").trim(), "1");

    cluster.sql("UPDATE tufkey_schema SET version = 99");
    let refused = start(&cluster, dir.path(), "a", &secret)
        .await
        .err()
        .expect("a schema from a newer tufkeyd is refused");
    let message = refused.to_string();
    assert!(
        message.contains("schema version 99") && message.contains("newer tufkeyd"),
        "{message}"
    );
    assert_eq!(
        tufkeyd::error::Error::from(refused).kind(),
        ErrorKind::FailedPrecondition
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_a_new_database_agree_on_one_store() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "store secret");
    // Each migrates and creates the store record with its own salt; one wins.
    let (a, b, c) = tokio::join!(
        start(&cluster, dir.path(), "a", &secret),
        start(&cluster, dir.path(), "b", &secret),
        start(&cluster, dir.path(), "c", &secret),
    );
    let replicas = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert!(replicas
        .iter()
        .all(|replica| !replica.unlock().unwrap().lock_state().locked));
    assert_eq!(cluster.sql("SELECT count(*) FROM tufkey_store").trim(), "1");
    assert_eq!(cluster.sql("SELECT version FROM tufkey_schema").trim(), "1");
    let key = replicas[2].generate(&new_key("targets")).await.unwrap();
    for replica in &replicas[..2] {
        let found = replica.find(&key.keyid).await.unwrap().unwrap();
        signs(replica, &found).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_store_secret_is_refused_and_changes_no_row() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let right = secret_file(dir.path(), "right", "the right store secret");
    let wrong = secret_file(dir.path(), "wrong", "another store secret");
    let a = start(&cluster, dir.path(), "a", &right).await.unwrap();
    a.generate(&new_key("targets")).await.unwrap();
    let rows = || {
        cluster.sql(
            "SELECT encode(store_file, 'hex') FROM tufkey_store;
             SELECT keyid, encode(stored_key, 'hex') FROM tufkey_keys ORDER BY keyid",
        )
    };
    let before = rows();

    let b = start(&cluster, dir.path(), "b", &wrong).await.unwrap();
    assert!(
        b.unlock().unwrap().lock_state().locked,
        "the wrong secret does not unlock"
    );
    let refused = b
        .unlock()
        .unwrap()
        .unlock(SecretString::from("yet another secret"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unauthenticated, "{refused}");
    assert!(
        refused.to_string().contains("wrong store secret"),
        "{refused}"
    );
    let locked = b.generate(&new_key("snapshot")).await.unwrap_err();
    assert_eq!(locked.kind(), ErrorKind::FailedPrecondition, "{locked}");
    assert_eq!(rows(), before, "no row changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_holds_no_private_scalar_in_any_encoding() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "store secret");
    let a = start(&cluster, dir.path(), "a", &secret).await.unwrap();
    let mut records = Vec::new();
    for role in ["root", "targets"] {
        let exportable = NewKey {
            exportable: true,
            ..new_key(role)
        };
        records.push(a.generate(&exportable).await.unwrap());
    }
    records.push(
        a.import()
            .unwrap()
            .import(ImportedKey {
                gun: "example.com/app".parse().unwrap(),
                role: "timestamp".parse().unwrap(),
                exportable: true,
                secret: p256::SecretKey::random(&mut rand_core::OsRng),
                placement: Placement::Default,
                created_at: None,
            })
            .await
            .unwrap(),
    );
    let mut scalars = Vec::new();
    for record in &records {
        let secret = a.export().unwrap().export(record).await.unwrap();
        scalars.push(secret.to_bytes().to_vec());
    }

    let dump = cluster.dump();
    // The rows' bytes as text too (the dump shows them hex-encoded): the JSON whose
    // sealed field is base64.
    let rows = cluster.sql("SELECT convert_from(stored_key, 'UTF8') FROM tufkey_keys");
    for record in &records {
        assert!(String::from_utf8_lossy(&dump).contains(&record.keyid));
        assert!(rows.contains(&record.keyid), "{rows}");
    }
    for scalar in &scalars {
        for encoding in encodings(scalar) {
            assert!(
                !contains(&dump, &encoding),
                "the dump holds a private scalar"
            );
            assert!(
                !contains(rows.as_bytes(), &encoding),
                "a row holds a private scalar"
            );
        }
    }
    // And the leak scanner, which finds any scalar of these keys in any encoding,
    // on the rows (the scanner does find one that is there).
    let detector = ScalarDetector::new(records.iter().map(|record| record.public_key));
    assert!(!detector.finds_private_key_in(rows.as_bytes()));
    let leaked = format!("{rows}{}", hex::encode(&scalars[0]));
    assert!(detector.finds_private_key_in(leaked.as_bytes()));
}

/// A scalar as bytes, hex (both cases), base64 (standard and URL-safe, padded or
/// not) and the decimal list `Debug` prints.
fn encodings(scalar: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let text = [
        hex::encode(scalar),
        hex::encode_upper(scalar),
        STANDARD.encode(scalar),
        STANDARD_NO_PAD.encode(scalar),
        URL_SAFE.encode(scalar),
        URL_SAFE_NO_PAD.encode(scalar),
        format!("{scalar:?}"),
    ];
    std::iter::once(scalar.to_vec())
        .chain(text.into_iter().map(String::into_bytes))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_survived_and_deletions_still_reach_every_replica() {
    let mut cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "store secret");
    let a = start(&cluster, dir.path(), "a", &secret).await.unwrap();
    let b = start(&cluster, dir.path(), "b", &secret).await.unwrap();
    let stop = StopSignal::new();
    let mut changes = b.changes().unwrap();
    let tasks = [maintain(&a, &stop), maintain(&b, &stop)];
    assert!(next_change(&mut changes, Duration::from_secs(10)).await);
    let key = a.generate(&new_key("targets")).await.unwrap();
    let doomed = a.generate(&new_key("snapshot")).await.unwrap();
    signs(&a, &key).await.unwrap();
    b.find(&doomed.keyid).await.unwrap().unwrap();
    signs(&b, &doomed).await.unwrap();

    let store = a.unlock().unwrap().lock_state().store;
    tokio::task::block_in_place(|| cluster.stop());
    signs(&a, &key)
        .await
        .expect("a decrypted key keeps signing while the database is down");
    let unavailable = a.generate(&new_key("timestamp")).await.unwrap_err();
    assert_eq!(unavailable.kind(), ErrorKind::Unavailable, "{unavailable}");
    assert!(
        unavailable.to_string().contains(&store),
        "names the database: {unavailable}"
    );

    drain(&mut changes);
    tokio::task::block_in_place(|| cluster.start_again());
    assert!(
        next_change(&mut changes, Duration::from_secs(20)).await,
        "B listens again by itself"
    );
    a.generate(&new_key("timestamp"))
        .await
        .expect("the pool reconnects by itself");
    a.delete(&doomed).await.unwrap();
    assert_eq!(
        refused_within(&b, &doomed, PROMPTLY).await.kind(),
        ErrorKind::NotFound
    );

    stop.stop();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The uid and gid PostgreSQL's programs run as here: the `postgres` user when the
/// tests run as root (as [`PgCluster`] does), else the test's own.
fn postgres_user() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> u32 {
        let output = std::process::Command::new("id")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    };
    (id(&["-u"]) == 0).then(|| (id(&["-u", "postgres"]), id(&["-g", "postgres"])))
}

/// Turns TLS on in the cluster with the test PKI's server certificate (SAN
/// IP:127.0.0.1); the key file is given to PostgreSQL's user, mode 0600.
fn serve_tls(cluster: &PgCluster, pki: &Pki, dir: &Path) {
    let tls_dir = dir.join("pg-tls");
    std::fs::create_dir(&tls_dir).unwrap();
    std::fs::set_permissions(&tls_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cert = tls_dir.join("server.crt");
    let key = tls_dir.join("server.key");
    std::fs::copy(pki.file("server.crt"), &cert).unwrap();
    std::fs::copy(pki.file("server.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some((uid, gid)) = postgres_user() {
        std::os::unix::fs::chown(&key, Some(uid), Some(gid)).unwrap();
    }
    cluster.sql(&format!(
        "ALTER SYSTEM SET ssl_cert_file = '{}';
         ALTER SYSTEM SET ssl_key_file = '{}';
         ALTER SYSTEM SET ssl = on;
         SELECT pg_reload_conf();",
        cert.display(),
        key.display()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ca_the_database_is_reached_over_verified_tls_only() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = {
        let pki_dir = dir.path().join("pki");
        tokio::task::spawn_blocking(move || Pki::make(&pki_dir))
            .await
            .unwrap()
    };
    serve_tls(&cluster, &pki, dir.path());
    let secret = secret_file(dir.path(), "secret", "store secret");
    let over_tls = |ca: &str| {
        PostgresConfig::new(
            cluster.url(),
            Some(cluster.password_file()),
            Some(pki.file(ca)),
        )
        .unwrap()
    };

    let config = settings(dir.path(), "a", &secret);
    let a = SoftwareBackend::start_in_postgres(&config, &over_tls("ca.crt"))
        .await
        .unwrap();
    a.generate(&new_key("targets")).await.unwrap();
    assert_eq!(
        cluster
            .sql(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s
                 JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tufkeyd'"
            )
            .trim(),
        "t",
        "every tufkeyd connection is TLS"
    );

    // A certificate from another CA is refused, naming the database.
    let config = settings(dir.path(), "b", &secret);
    let refused = SoftwareBackend::start_in_postgres(&config, &over_tls("other-ca.crt"))
        .await
        .err()
        .expect("a server certificate from another CA is refused");
    assert!(refused.to_string().contains(&cluster.url()), "{refused}");
    assert_eq!(
        tufkeyd::error::Error::from(refused).kind(),
        ErrorKind::Unavailable
    );
}

/// Kills the daemon it holds when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tufkeyd_takes_the_database_password_from_its_environment_and_never_from_the_url() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "store secret");
    let password = std::fs::read_to_string(cluster.password_file()).unwrap();
    let socket = dir.path().join("tufkeyd.sock");
    let log = dir.path().join("tufkeyd.log");
    let tufkeyd = |url: &str| {
        let mut command = std::process::Command::new(bin_dir().join("tufkeyd"));
        command
            .args(["--no-keyring", "--no-yubikey", "--postgres-url", url])
            .arg("--socket")
            .arg(&socket)
            .arg("--store")
            .arg(dir.path().join("store"))
            .arg("--secret-file")
            .arg(&secret)
            .env_remove("TUFKEY_PASSPHRASE")
            .env("TUFKEYD_POSTGRES_PASSWORD", password.trim())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        command
    };

    // A password in the URL: refused at once, the password not repeated.
    let with_password =
        cluster
            .url()
            .replacen("tufkey@", &format!("tufkey:{}@", password.trim()), 1);
    let refused = tufkeyd(&with_password).status().unwrap();
    assert!(!refused.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("--postgres-password-file"), "{text}");
    assert!(!text.contains(password.trim()), "{text}");

    let _daemon = Running(tufkeyd(&cluster.url()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "tufkeyd did not listen: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = cli(&socket, &["status"], None);
    assert!(status.success, "{}", status.stderr);
    assert!(status.stdout.contains(&cluster.url()), "{}", status.stdout);
    assert!(
        status.stdout.contains("(unlocked via secret_file)"),
        "{}",
        status.stdout
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(password.trim()), "{text}");
}
