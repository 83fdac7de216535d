//! Failover in the client across tufkeyd replicas, with the real daemons over real
//! TCP + mutual TLS: three tufkeyd with software keystores holding the same key
//! (one backup restored into each), a bounded SignRaw load through the library
//! across all three while one is SIGKILLed, a GenerateKey that loses its replica
//! mid-request and is never sent again, and the CLI's `--addr` repeated (`audit
//! verify` on every replica, `bench` spread over them).
//!
//! Needs `cargo build --bins` first (and openssl, for the test PKI).
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tufkey::{proto, Client, Error, FailoverError, Rpc, TlsEndpoints};
use tufkey_e2e::daemon::{CliOutput, Sandbox};
use tufkey_e2e::notary::{Pki, TlsDaemon};

const GUN: &str = "example.com/failover/app";
/// `tufkey bench`'s key, restored with the other so that every replica holds it.
const BENCH_GUN: &str = "tufkey.bench/load";
const BACKUP_PASSPHRASE: &str = "failover backup: marble lantern 2031";

/// The test client may sign, read and manage keys, and verify the audit log.
const POLICY: &str = r#"
[[grant]]
cert_cn = "tufkey-test-client"
permissions = ["sign", "keys_read", "keys_admin", "session"]
"#;

/// One replica: its daemon (dropped, so killed, before its directory) and sandbox.
struct Replica {
    tls: Option<TlsDaemon>,
    sandbox: Sandbox,
    url: String,
}

impl Replica {
    fn daemon(&self) -> &TlsDaemon {
        self.tls.as_ref().expect("replica running")
    }

    /// `tufkey --json key list --gun GUN` over the replica's Unix socket.
    fn keys_of(&self, gun: &str) -> Vec<Value> {
        let listed = self
            .daemon()
            .daemon
            .cli_ok(&["--json", "key", "list", "--gun", gun])
            .json();
        listed.as_array().expect("key list is an array").clone()
    }

    /// SIGKILL.
    fn kill9(&mut self) {
        self.tls.take().expect("replica running").daemon.kill9();
    }
}

/// The PKI and the replicas, kept alive together.
struct Cluster {
    replicas: Vec<Replica>,
    pki: Pki,
    _dir: Sandbox,
}

impl Cluster {
    fn start(count: usize) -> Cluster {
        let dir = Sandbox::new();
        let pki = Pki::make(&dir.path("pki"));
        let policy = dir.path("policy.toml");
        std::fs::write(&policy, POLICY).unwrap();
        let replicas = (0..count)
            .map(|_| {
                let sandbox = Sandbox::new();
                let tls = TlsDaemon::start(&sandbox, &pki, &["--policy", policy.to_str().unwrap()]);
                let url = tls.url();
                Replica {
                    tls: Some(tls),
                    sandbox,
                    url,
                }
            })
            .collect();
        Cluster {
            replicas,
            pki,
            _dir: dir,
        }
    }

    fn urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|replica| replica.url.clone())
            .collect()
    }

    async fn endpoints(&self) -> TlsEndpoints {
        TlsEndpoints::resolve(
            &self.urls(),
            &self.pki.file("ca.crt"),
            &self.pki.file("client.crt"),
            &self.pki.file("client.key"),
        )
        .await
        .unwrap()
    }

    /// `tufkey --addr URL... --tls-* ARGS...`: the CLI over TCP to every replica.
    fn cli(&self, args: &[&str]) -> CliOutput {
        self.pki.cli_over_tls(&self.urls(), args)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Generates a signing key (and the bench key) on the first replica and restores
/// one backup of both into every other; returns the signing key's ID and public PEM.
fn same_key_everywhere(cluster: &Cluster) -> (String, String) {
    let first = cluster.replicas[0].daemon();
    let key = first.daemon.generate(GUN, "targets");
    first.daemon.generate(BENCH_GUN, "targets");
    let bundle = cluster.replicas[0].sandbox.path("replicas.age");
    let stdin = format!("{BACKUP_PASSPHRASE}\n");
    let backup = first.daemon.cli_with_stdin(
        &[
            "--json",
            "backup",
            "--out",
            bundle.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        stdin.as_bytes(),
    );
    assert!(backup.success, "backup failed: {}", backup.stderr);
    for replica in &cluster.replicas[1..] {
        let restore = replica.daemon().daemon.cli_with_stdin(
            &["restore", bundle.to_str().unwrap(), "--passphrase-stdin"],
            stdin.as_bytes(),
        );
        assert!(restore.success, "restore failed: {}", restore.stderr);
    }
    let keyid = key["keyid"].as_str().unwrap().to_owned();
    for replica in &cluster.replicas {
        let keys = replica.keys_of(GUN);
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys[0]["keyid"], keyid.as_str());
    }
    (keyid, key["public_pem"].as_str().unwrap().to_owned())
}

/// What one SignRaw of the load came to.
struct Outcome {
    payload: Vec<u8>,
    result: Result<(String, String), String>,
    started_after_kill: bool,
}

const WORKERS: usize = 6;
const REQUESTS_PER_WORKER: usize = 60;
/// Workers with an even index stop after this many requests until the replica is
/// killed, so that the load provably continues afterwards; the odd ones never stop,
/// so requests are in flight when it dies.
const PAUSE_AFTER: usize = 15;

/// One worker: `REQUESTS_PER_WORKER` SignRaw of distinct payloads, every outcome kept.
async fn sign_worker(
    mut client: Client,
    worker: usize,
    keyid: String,
    paused: Arc<AtomicUsize>,
    killed: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(REQUESTS_PER_WORKER);
    for request in 0..REQUESTS_PER_WORKER {
        if worker.is_multiple_of(2) && request == PAUSE_AFTER {
            paused.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !killed.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "the replica was never killed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let payload = format!("failover payload: worker {worker}, request {request}").into_bytes();
        let started_after_kill = killed.load(Ordering::SeqCst);
        let result = client
            .sign_raw(&keyid, payload.clone(), proto::SignatureFormat::Tuf)
            .await
            .map(|signed| (signed.signature, client.endpoint().to_owned()))
            .map_err(|error| error.to_string());
        outcomes.push(Outcome {
            payload,
            result,
            started_after_kill,
        });
    }
    outcomes
}

#[test]
fn a_signing_load_across_three_replicas_survives_one_killed_mid_run() {
    let mut cluster = Cluster::start(3);
    let (keyid, pem) = same_key_everywhere(&cluster);
    let urls = cluster.urls();

    // The CLI with --addr repeated, every replica up: each audit log verifies, and
    // bench spreads its connections over all three.
    let verified = cluster.cli(&["--json", "audit", "verify"]);
    assert!(verified.success, "audit verify failed: {}", verified.stderr);
    let report = verified.json();
    assert_eq!(report["ok"], true, "{report}");
    let reported: Vec<&str> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["ok"], true, "{entry}");
            assert!(entry["records"].as_u64().unwrap() > 0, "{entry}");
            entry["endpoint"].as_str().unwrap()
        })
        .collect();
    assert_eq!(reported, urls);
    let bench = cluster.cli(&["--json", "bench", "--duration", "1", "--concurrency", "3"]);
    assert!(bench.success, "bench failed: {}", bench.stderr);
    let bench = bench.json();
    assert_eq!(bench["errors"], 0, "{bench}");
    for url in &urls {
        let signs = bench["per_endpoint"][url.as_str()].as_u64().unwrap_or(0);
        assert!(signs > 0, "bench sent nothing to {url}: {bench}");
    }
    let total: u64 = bench["per_endpoint"]
        .as_object()
        .unwrap()
        .values()
        .map(|signs| signs.as_u64().unwrap())
        .sum();
    assert_eq!(total, bench["signs"].as_u64().unwrap(), "{bench}");

    // The load: worker N starts on replica N mod 3 and fails over from there.
    let runtime = runtime();
    let endpoints = runtime.block_on(cluster.endpoints());
    let paused = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let client = runtime.block_on(endpoints.connect_from(worker)).unwrap();
            assert_eq!(client.endpoint(), urls[worker % urls.len()]);
            runtime.spawn(sign_worker(
                client,
                worker,
                keyid.clone(),
                Arc::clone(&paused),
                Arc::clone(&killed),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while paused.load(Ordering::SeqCst) < WORKERS / 2 {
        assert!(Instant::now() < deadline, "the load never got going");
        std::thread::sleep(Duration::from_millis(2));
    }
    cluster.replicas[0].kill9();
    killed.store(true, Ordering::SeqCst);
    let outcomes: Vec<Outcome> = runtime
        .block_on(async {
            let mut all = Vec::new();
            for worker in workers {
                all.push(worker.await.unwrap());
            }
            all
        })
        .into_iter()
        .flatten()
        .collect();

    // None lost: every request has an outcome; every signature verifies; the load
    // went on, on the others, after the kill.
    assert_eq!(outcomes.len(), WORKERS * REQUESTS_PER_WORKER);
    let public = VerifyingKey::from_public_key_pem(&pem).unwrap();
    let mut per_endpoint: BTreeMap<&str, usize> = BTreeMap::new();
    let mut after_kill = 0;
    let mut failures = Vec::new();
    for outcome in &outcomes {
        match &outcome.result {
            Ok((signature, endpoint)) => {
                let signature = Signature::from_der(&hex::decode(signature).unwrap()).unwrap();
                public
                    .verify(&outcome.payload, &signature)
                    .unwrap_or_else(|error| panic!("bad signature from {endpoint}: {error}"));
                *per_endpoint.entry(endpoint.as_str()).or_default() += 1;
                if outcome.started_after_kill {
                    after_kill += 1;
                    assert_ne!(endpoint, &urls[0], "signed by the killed replica");
                }
            }
            Err(error) => failures.push(error.clone()),
        }
    }
    // SignRaw is idempotent and two replicas survive: a request that met the dead
    // replica was sent again to another, so none fails.
    assert!(failures.is_empty(), "requests failed: {failures:#?}");
    assert!(
        after_kill >= (WORKERS / 2) * (REQUESTS_PER_WORKER - PAUSE_AFTER),
        "only {after_kill} signatures after the kill"
    );
    for url in &urls {
        assert!(
            per_endpoint.get(url.as_str()).copied().unwrap_or(0) > 0,
            "{url} signed nothing: {per_endpoint:?}"
        );
    }

    // The CLI now: the dead replica's audit log cannot be verified, so the command
    // fails, naming it; the two others still verify.
    let verified = cluster.cli(&["--json", "audit", "verify"]);
    assert!(!verified.success, "audit verify passed with a dead replica");
    assert!(
        verified.stderr.contains(&urls[0]) && verified.stderr.contains("1 of 3 replicas"),
        "{}",
        verified.stderr
    );
    let report = verified.json();
    assert_eq!(report["ok"], false, "{report}");
    let oks: Vec<bool> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [false, true, true], "{report}");
    // And a read through the CLI goes to a survivor.
    let listed = cluster.cli(&["--json", "key", "list", "--gun", GUN]);
    assert!(listed.success, "key list failed: {}", listed.stderr);
    assert_eq!(listed.json()[0]["keyid"], keyid.as_str());
}

fn signal(replica: &Replica, signal: &str) {
    let pid = replica.daemon().daemon.pid().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn a_generate_key_is_never_sent_to_a_second_replica() {
    let mut cluster = Cluster::start(3);
    let urls = cluster.urls();
    let runtime = runtime();
    let mut client =
        runtime.block_on(async { cluster.endpoints().await.connect_from(0).await.unwrap() });
    assert_eq!(client.endpoint(), urls[0]);

    // Replica 0 takes the request and dies before it answers: stopped, sent
    // GenerateKey, killed.
    let gun = "example.com/failover/generated";
    signal(&cluster.replicas[0], "-STOP");
    let pending = {
        let mut client = client.clone();
        runtime.spawn(async move { client.generate_key(gun, "targets").await })
    };
    std::thread::sleep(Duration::from_millis(500));
    cluster.replicas[0].kill9();
    let error = runtime.block_on(pending).unwrap().unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            &error,
            Error::Failover(FailoverError::MaybeApplied { rpc: Rpc::GenerateKey, endpoint, .. })
                if endpoint == &urls[0]
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("may or may not have been applied on {}", urls[0]))
            && text.contains("`tufkey key list`"),
        "{text}"
    );
    // Not sent to the survivors.
    for replica in &cluster.replicas[1..] {
        assert_eq!(replica.keys_of(gun), Vec::<Value>::new());
    }

    // The client moved on: the next GenerateKey runs once, on replica 1.
    assert_eq!(client.endpoint(), urls[1]);
    let key = runtime
        .block_on(client.generate_key(gun, "targets"))
        .unwrap();
    let on_survivors: Vec<Vec<Value>> = cluster.replicas[1..]
        .iter()
        .map(|replica| replica.keys_of(gun))
        .collect();
    assert_eq!(on_survivors[0].len(), 1, "{on_survivors:?}");
    assert_eq!(on_survivors[0][0]["keyid"], key.keyid.as_str());
    assert!(on_survivors[1].is_empty(), "{on_survivors:?}");

    // A replica that is already gone refuses the connection: nothing was sent, so
    // even a GenerateKey may go to the next one.
    cluster.replicas[1].kill9();
    std::thread::sleep(Duration::from_millis(300));
    let moved = "example.com/failover/moved";
    let key = runtime
        .block_on(client.generate_key(moved, "targets"))
        .unwrap();
    assert_eq!(client.endpoint(), urls[2]);
    let keys = cluster.replicas[2].keys_of(moved);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["keyid"], key.keyid.as_str());

    // With every replica but one gone, a read names each endpoint it tried.
    cluster.replicas[2].kill9();
    std::thread::sleep(Duration::from_millis(300));
    let error = runtime.block_on(client.list_keys("", "")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("no tufkeyd endpoint answered")
            && urls.iter().all(|url| text.contains(url.as_str())),
        "{text}"
    );
}
