//! Three tufkeyd replicas sharing one encrypted keystore in a real PostgreSQL
//! (tests/src/postgres.rs): keys made on one sign on the others, deletions reach
//! every replica, notary-server works against a replica, the client fails over when
//! a replica dies, the replicas ride out a database restart, the database holds no
//! private key, and `tufkey audit verify` checks every replica's chain.
//!
//! Needs `cargo build --bins`, Debian's `postgresql` (scripts/install-deps.sh) and,
//! for the notary-server test, `notary` (scripts/notary/install.sh).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Code;
use tufkey::proto as pb;
use tufkey::Client;
use tufkey_e2e::daemon::CliOutput;
use tufkey_e2e::leak_scan::{encodings_of, ScalarDetector};
use tufkey_e2e::notary::{client_flow, require_notary_binaries, NotaryServer};
use tufkey_e2e::postgres::{PgCluster, Replicas};

const GUN: &str = "example.com/replicas";

/// How soon a change on one replica must show on the others.
const PROPAGATION: Duration = Duration::from_secs(1);

/// A call that takes longer than this is lost, not slow.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// The replicas and their database; the replicas are stopped first.
struct Setup {
    replicas: Replicas,
    cluster: PgCluster,
}

impl Setup {
    fn start(n: usize) -> Setup {
        let started = Instant::now();
        let cluster = PgCluster::start();
        let database = started.elapsed();
        let replicas = Replicas::start(&cluster, n);
        eprintln!(
            "PostgreSQL up in {database:?}, {n} replicas up in {:?}",
            started.elapsed() - database
        );
        Setup { replicas, cluster }
    }

    /// A client of each running replica over its Unix socket, in replica order.
    async fn unix_clients(&self) -> Vec<Client> {
        let mut clients = Vec::new();
        for (_, replica) in self.replicas.running() {
            clients.push(
                Client::connect_unix(&replica.tls.daemon.socket)
                    .await
                    .unwrap(),
            );
        }
        clients
    }

    /// A failover client of every replica over mutual TLS (the test client certificate).
    async fn failover_client(&self) -> Client {
        let pki = &self.replicas.pki;
        Client::connect_tls_replicas(
            &self.replicas.addrs(),
            pki.file("ca.crt"),
            pki.file("client.crt"),
            pki.file("client.key"),
        )
        .await
        .unwrap()
    }

    /// The key IDs in the database, each as often as it appears.
    fn keyids_in_database(&self) -> Vec<String> {
        self.cluster
            .sql("SELECT keyid FROM tufkey_keys ORDER BY keyid")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `tufkey --addr R1 --addr R2 ... ARGS` with the test client certificate.
    fn cli_through_all(&self, args: &[&str]) -> CliOutput {
        self.replicas.pki.cli_over_tls(&self.replicas.addrs(), args)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Whether `signature` (TUF format: hex DER) over `payload` verifies with `key`.
fn verifies(key: &pb::Key, payload: &[u8], signature: &str) -> bool {
    let Ok(verifying) = p256::ecdsa::VerifyingKey::from_public_key_pem(&key.public_pem) else {
        return false;
    };
    hex::decode(signature)
        .ok()
        .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
        .is_some_and(|signature| verifying.verify(payload, &signature).is_ok())
}

async fn sign(client: &mut Client, keyid: &str, payload: &[u8]) -> tufkey::Result<String> {
    match tokio::time::timeout(
        CALL_LIMIT,
        client.sign_raw(keyid, payload.to_vec(), pb::SignatureFormat::Tuf),
    )
    .await
    {
        Ok(reply) => reply.map(|reply| reply.signature),
        Err(_) => panic!("SignRaw with {keyid} did not answer within {CALL_LIMIT:?}"),
    }
}

/// Signs with `keyid` until it works; how long that took from `since`, or the last
/// error once `limit` has passed.
async fn signs_within(
    client: &mut Client,
    key: &pb::Key,
    since: Instant,
    limit: Duration,
) -> Result<Duration, String> {
    let payload = b"propagation probe";
    loop {
        match sign(client, &key.keyid, payload).await {
            Ok(signature) => {
                assert!(verifies(key, payload, &signature), "a bad signature");
                let took = since.elapsed();
                return if took <= limit {
                    Ok(took)
                } else {
                    Err(format!("it signed only after {took:?}"))
                };
            }
            Err(error) if since.elapsed() > limit => return Err(error.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Signs with `keyid` until it is refused; how long that took from `since` and the
/// refusal, or an error once `limit` has passed with the key still signing.
async fn refused_within(
    client: &mut Client,
    keyid: &str,
    since: Instant,
    limit: Duration,
) -> Result<(Duration, tufkey::Error), String> {
    loop {
        match sign(client, keyid, b"deletion probe").await {
            Err(error) => {
                let took = since.elapsed();
                return if took <= limit {
                    Ok((took, error))
                } else {
                    Err(format!("refused only after {took:?}: {error}"))
                };
            }
            Ok(_) if since.elapsed() > limit => {
                return Err(format!("still signs {:?} after the deletion", limit))
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn keyids(keys: &[pb::Key]) -> BTreeSet<String> {
    keys.iter().map(|key| key.keyid.clone()).collect()
}

/// Until every client lists exactly `expected` (within [`PROPAGATION`]).
async fn every_replica_lists(clients: &mut [Client], expected: &BTreeSet<String>) {
    let since = Instant::now();
    for (index, client) in clients.iter_mut().enumerate() {
        loop {
            let listed = keyids(&client.list_keys(GUN, "").await.unwrap());
            if &listed == expected {
                break;
            }
            assert!(
                since.elapsed() < PROPAGATION,
                "replica {} lists {listed:?}, expected {expected:?}",
                index + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[test]
fn a_key_made_on_one_replica_signs_on_all_and_its_deletion_reaches_all_within_a_second() {
    let setup = Setup::start(3);
    let database_keyids = runtime().block_on(async {
        let mut clients = setup.unix_clients().await;
        let key = clients[0].generate_key(GUN, "targets").await.unwrap();
        let created = Instant::now();
        for number in [2, 3] {
            let took = signs_within(&mut clients[number - 1], &key, created, PROPAGATION)
                .await
                .unwrap_or_else(|error| {
                    panic!("the key made on replica 1 does not sign on replica {number} within {PROPAGATION:?}: {error}")
                });
            eprintln!("replica {number} signs with replica 1's new key {took:?} after it was made");
        }

        clients[1].delete_key(&key.keyid).await.unwrap();
        let deleted = Instant::now();
        for number in [1, 2, 3] {
            let (took, refusal) =
                refused_within(&mut clients[number - 1], &key.keyid, deleted, PROPAGATION)
                    .await
                    .unwrap_or_else(|error| panic!("replica {number}: {error}"));
            eprintln!("replica {number} refuses the key deleted on replica 2 {took:?} after: {refusal}");
            match &refusal {
                tufkey::Error::Rpc(status) => assert_eq!(
                    status.code(),
                    Code::NotFound,
                    "replica {number} refuses a deleted key with the wrong code: {refusal}"
                ),
                other => panic!("replica {number}: not an answer from tufkeyd: {other}"),
            }
            assert!(
                refusal.to_string().contains(&key.keyid),
                "the refusal does not name the key: {refusal}"
            );
        }

        // Keys made at the same moment on every replica: each once, everywhere.
        let mut made = tokio::task::JoinSet::new();
        for (index, client) in clients.iter().enumerate() {
            for round in 0..4 {
                let mut client = client.clone();
                made.spawn(async move {
                    let role = format!("targets/r{}-{round}", index + 1);
                    client.generate_key(GUN, &role).await.unwrap()
                });
            }
        }
        let made: Vec<pb::Key> = made.join_all().await;
        let expected = keyids(&made);
        assert_eq!(expected.len(), 12, "two generations returned one key ID");
        every_replica_lists(&mut clients, &expected).await;
        expected
    });
    let in_database = setup.keyids_in_database();
    assert_eq!(
        in_database,
        database_keyids.into_iter().collect::<Vec<_>>(),
        "the database holds other keys than the 12 made (the deleted one, or one twice)"
    );
}

#[test]
fn notary_server_publishes_through_replica_one_and_its_keys_reach_the_others() {
    require_notary_binaries();
    let setup = Setup::start(3);
    let pki = &setup.replicas.pki;
    let server = NotaryServer::start(pki, setup.replicas.replica(1).tls.port);
    let gun = format!("example.com/tufkey/replicas-{}", std::process::id());

    let flow = client_flow(pki, &server, &gun);
    flow.assert_passed_with_server_keys();

    // notary-server's keys live in the shared keystore: the other replicas have them.
    runtime().block_on(async {
        let mut clients = setup.unix_clients().await;
        for (number, client) in clients.iter_mut().enumerate().skip(1) {
            let listed = client.list_keys(&gun, "").await.unwrap();
            for (role, notary_keyid) in &flow.signer_keys {
                let key = listed
                    .iter()
                    .find(|key| &key.notary_keyid == notary_keyid)
                    .unwrap_or_else(|| {
                        panic!("replica {}: no {role} key {notary_keyid}", number + 1)
                    });
                assert_eq!(&key.role, role);
                signs_within(client, key, Instant::now(), PROPAGATION)
                    .await
                    .unwrap();
            }
        }
    });
}

/// What happened to one request of the failover load.
struct Sent {
    payload: Vec<u8>,
    /// Whether it was sent after the kill had happened.
    after_kill: bool,
    result: tufkey::Result<String>,
}

#[test]
fn the_client_fails_over_when_replica_one_is_killed_under_load() {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 75;
    let mut setup = Setup::start(3);
    let rt = runtime();
    let (key, client) = rt.block_on(async {
        let mut clients = setup.unix_clients().await;
        let key = clients[0].generate_key(GUN, "targets").await.unwrap();
        (key, setup.failover_client().await)
    });
    let replica_one = setup.replicas.replica(1).addr();
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (mut client, keyid) = (client.clone(), key.keyid.clone());
        let (done, killed) = (done.clone(), killed.clone());
        workers.push(rt.spawn(async move {
            let mut sent = Vec::with_capacity(PER_WORKER);
            for request in 0..PER_WORKER {
                let payload = format!("failover load {worker}/{request}").into_bytes();
                let after_kill = killed.load(Ordering::SeqCst);
                let result = sign(&mut client, &keyid, &payload).await;
                sent.push(Sent {
                    payload,
                    after_kill,
                    result,
                });
                done.fetch_add(1, Ordering::SeqCst);
            }
            sent
        }));
    }

    let total = WORKERS * PER_WORKER;
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::SeqCst) < total / 3 {
        assert!(Instant::now() < deadline, "the load does not progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_kill = done.load(Ordering::SeqCst);
    setup.replicas.kill9(1);
    killed.store(true, Ordering::SeqCst);

    let sent: Vec<Sent> = rt.block_on(async {
        let mut sent = Vec::new();
        for worker in workers {
            sent.extend(worker.await.unwrap());
        }
        sent
    });
    assert_eq!(sent.len(), total, "requests went missing");
    let mut failed = Vec::new();
    for request in &sent {
        match &request.result {
            Ok(signature) => assert!(
                verifies(&key, &request.payload, signature),
                "a signature that does not verify"
            ),
            Err(error) => {
                let text = error.to_string();
                assert!(
                    !request.after_kill,
                    "a request sent after replica 1 died failed instead of moving on: {text}"
                );
                assert!(
                    text.contains(&replica_one) && text.lines().count() == 1,
                    "not a clear one-line error naming replica 1: {text}"
                );
                failed.push(text);
            }
        }
    }
    let after_kill = sent.iter().filter(|request| request.after_kill).count();
    eprintln!(
        "{total} SignRaw through the failover client; replica 1 killed after {at_kill}; \
         {after_kill} sent after the kill, all signed; {} failed: {failed:#?}",
        failed.len()
    );
    assert!(
        failed.len() <= WORKERS,
        "more requests failed than were in flight when replica 1 died"
    );
    assert!(after_kill > total / 3, "the load stopped with replica 1");
    assert_ne!(
        client.endpoint(),
        replica_one,
        "the client still points at replica 1"
    );

    // The others did the work: their audit logs hold the signatures after the kill.
    let signed_elsewhere: usize = setup
        .replicas
        .running()
        .map(|(_, replica)| {
            replica
                .tls
                .daemon
                .audit_records()
                .iter()
                .filter(|record| {
                    record["rpc"] == "tufkey.v1.Signing/SignRaw" && record["result"] == "ok"
                })
                .count()
        })
        .sum();
    assert!(
        signed_elsewhere >= after_kill,
        "replicas 2 and 3 recorded {signed_elsewhere} signatures, fewer than the {after_kill} sent after the kill"
    );
}

/// What the load during the database restart saw, per replica.
#[derive(Default)]
struct LoadTally {
    signed: usize,
    errors: Vec<String>,
}

#[test]
fn replicas_ride_out_a_database_restart_under_load() {
    let mut setup = Setup::start(3);
    let rt = runtime();
    let mut clients = rt.block_on(setup.unix_clients());
    // Two keys, each signed with once on every replica: cached everywhere.
    let cached: Vec<pb::Key> = rt.block_on(async {
        let mut keys = Vec::new();
        for index in [0, 1] {
            keys.push(clients[index].generate_key(GUN, "targets").await.unwrap());
        }
        for client in &mut clients {
            for key in &keys {
                signs_within(client, key, Instant::now(), PROPAGATION)
                    .await
                    .unwrap();
            }
        }
        keys
    });
    let before = setup.keyids_in_database();

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for client in &clients {
        let (mut client, keys, stop) = (client.clone(), cached.clone(), stop.clone());
        load.push(rt.spawn(async move {
            let mut tally = LoadTally::default();
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let key = &keys[round % keys.len()];
                let payload = format!("outage load {round}").into_bytes();
                match sign(&mut client, &key.keyid, &payload).await {
                    Ok(signature) => {
                        assert!(verifies(key, &payload, &signature), "a bad signature");
                        tally.signed += 1;
                    }
                    Err(error) => tally.errors.push(error.to_string()),
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tally
        }));
    }

    std::thread::sleep(Duration::from_millis(300));
    setup.cluster.stop();
    let outage = Instant::now();
    // During the outage (as the PostgreSQL backend documents): cached keys sign; making
    // a key fails with UNAVAILABLE naming the database.
    rt.block_on(async {
        for (index, client) in clients.iter_mut().enumerate() {
            for key in &cached {
                sign(client, &key.keyid, b"during the outage")
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "replica {}: a cached key stopped signing: {error}",
                            index + 1
                        )
                    });
            }
        }
        let refused = clients[2]
            .generate_key(GUN, "snapshot")
            .await
            .expect_err("a key was made with the database down");
        let text = refused.to_string();
        assert!(
            matches!(&refused, tufkey::Error::Rpc(status) if status.code() == Code::Unavailable),
            "not UNAVAILABLE: {text}"
        );
        assert!(
            text.to_lowercase().contains("database") || text.contains("postgres"),
            "the refusal does not name the database: {text}"
        );
    });
    std::thread::sleep(Duration::from_secs(1).saturating_sub(outage.elapsed()));
    setup.cluster.start_again();
    let back = Instant::now();

    // Each replica reconnects by itself: a new key on each, signing on every other.
    let made: Vec<pb::Key> = rt.block_on(async {
        let mut made = Vec::new();
        for (index, client) in clients.iter_mut().enumerate() {
            let role = format!("targets/after-{}", index + 1);
            let key = loop {
                match client.generate_key(GUN, &role).await {
                    Ok(key) => break key,
                    Err(error) => {
                        assert!(
                            back.elapsed() < Duration::from_secs(15),
                            "replica {} has not reconnected 15 s after the database came back: {error}",
                            index + 1
                        );
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            eprintln!("replica {} makes keys again {:?} after the database restarted", index + 1, back.elapsed());
            made.push(key);
        }
        for key in &made {
            for client in clients.iter_mut() {
                signs_within(client, key, Instant::now(), PROPAGATION)
                    .await
                    .unwrap();
            }
        }
        made
    });
    stop.store(true, Ordering::SeqCst);
    let tallies: Vec<LoadTally> = rt.block_on(async {
        let mut tallies = Vec::new();
        for task in load {
            tallies.push(task.await.unwrap());
        }
        tallies
    });
    for (index, tally) in tallies.iter().enumerate() {
        eprintln!(
            "replica {}: {} signatures under load across the restart, {} errors",
            index + 1,
            tally.signed,
            tally.errors.len()
        );
        assert!(tally.signed > 0, "replica {} signed nothing", index + 1);
        assert!(
            tally.errors.is_empty(),
            "replica {}: cached keys failed to sign across the restart: {:?}",
            index + 1,
            tally.errors
        );
    }

    let after = setup.keyids_in_database();
    let mut expected = before.clone();
    expected.extend(made.iter().map(|key| key.keyid.clone()));
    expected.sort();
    assert_eq!(after, expected, "keys lost or doubled across the restart");
    let expected: BTreeSet<String> = expected.into_iter().collect();
    rt.block_on(every_replica_lists(&mut clients, &expected));
}

#[test]
fn the_database_holds_no_private_key_and_not_the_store_secret() {
    let setup = Setup::start(3);
    let keys: Vec<pb::Key> = runtime().block_on(async {
        let mut clients = setup.unix_clients().await;
        let mut keys = Vec::new();
        for (index, client) in clients.iter_mut().enumerate() {
            for (kind, exportable) in [("exportable", true), ("sealed", false)] {
                let key = client
                    .generate(pb::GenerateKeyRequest {
                        gun: GUN.into(),
                        role: format!("targets/r{}-{kind}", index + 1),
                        exportable: Some(exportable),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                signs_within(client, &key, Instant::now(), PROPAGATION)
                    .await
                    .unwrap();
                keys.push(key);
            }
        }
        keys
    });
    let dump = setup.cluster.dump();
    let text = String::from_utf8_lossy(&dump);
    for key in &keys {
        assert!(
            text.contains(&key.keyid),
            "the dump lacks key {}: not the keystore's database",
            key.keyid
        );
    }
    // A control key whose scalar is planted in a copy of the dump as PostgreSQL
    // prints a BYTEA (`\x` hex): the scan must find it there, and nothing in the dump.
    let control = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let detector = ScalarDetector::new(
        keys.iter()
            .map(|key| p256::PublicKey::from_public_key_pem(&key.public_pem).unwrap())
            .chain([control.public_key()]),
    );
    let mut planted = dump.clone();
    planted.extend(format!("\\x{}\n", hex::encode(control.to_bytes())).into_bytes());
    assert!(
        detector.finds_private_key_in(&planted),
        "the scan misses a scalar planted in the dump"
    );
    assert!(
        !detector.finds_private_key_in(&dump),
        "a private scalar in the database dump"
    );
    let secret = std::fs::read_to_string(&setup.replicas.secret_file).unwrap();
    for encoding in encodings_of(secret.trim_end()) {
        assert!(
            !text.contains(&encoding),
            "the store secret is in the database dump"
        );
    }
}

/// Replaces the first record's `rpc` in the audit log at `log`, breaking its MAC.
fn tamper_with_audit_log(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap();
    let edited = text.replacen("tufkey.v1.Keys/GenerateKey", "tufkey.v1.Keys/GetKey", 1);
    assert_ne!(edited, text, "no GenerateKey record to tamper with");
    std::fs::write(log, edited).unwrap();
}

/// Each endpoint's `ok` in a multi-replica `audit verify --json` report, in order.
fn verdicts(report: &Value) -> Vec<bool> {
    report["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no endpoints in {report:#}"))
        .iter()
        .map(|endpoint| endpoint["ok"] == true)
        .collect()
}

#[test]
fn audit_verify_through_all_replicas_checks_every_chain() {
    let setup = Setup::start(3);
    runtime().block_on(async {
        let mut clients = setup.unix_clients().await;
        for (index, client) in clients.iter_mut().enumerate() {
            let key = client
                .generate_key(GUN, &format!("targets/audit-{}", index + 1))
                .await
                .unwrap();
            sign(client, &key.keyid, b"audited").await.unwrap();
        }
    });
    let addrs = setup.replicas.addrs();

    let intact = setup.cli_through_all(&["--json", "audit", "verify"]);
    assert!(intact.success, "audit verify failed: {}", intact.stderr);
    let report: Value = intact.json();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(verdicts(&report), [true, true, true], "{report:#}");
    for (endpoint, addr) in report["endpoints"].as_array().unwrap().iter().zip(&addrs) {
        assert_eq!(endpoint["endpoint"], addr.as_str(), "{report:#}");
        // GenerateKey and SignRaw at least, in one chain from seq 1.
        assert!(endpoint["records"].as_u64().unwrap() >= 2, "{report:#}");
        assert_eq!(endpoint["first_seq"], 1, "{report:#}");
    }

    let log = setup
        .replicas
        .replica(2)
        .sandbox
        .path("audit")
        .join("audit.log");
    tamper_with_audit_log(&log);
    let damaged = setup.cli_through_all(&["--json", "audit", "verify"]);
    assert!(
        !damaged.success,
        "audit verify passed with replica 2's log tampered with: {}",
        damaged.stdout
    );
    let report: Value = damaged.json();
    assert_eq!(verdicts(&report), [true, false, true], "{report:#}");
    let bad = &report["endpoints"][1]["bad"];
    assert_eq!(bad["line"], 1, "{report:#}");
    assert!(
        bad["reason"].as_str().unwrap().contains("MAC"),
        "{report:#}"
    );
    assert!(
        damaged.stderr.contains(&addrs[1])
            && !damaged.stderr.contains(&addrs[0])
            && !damaged.stderr.contains(&addrs[2]),
        "the failure should name replica 2 ({}) alone: {}",
        addrs[1],
        damaged.stderr
    );
}
