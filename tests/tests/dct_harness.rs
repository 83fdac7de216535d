//! Self-test of the Docker Content Trust harness (`tufkey_e2e::dct`): every peer the
//! `tufkey dct` acceptance tests rely on really does what the harness says — the
//! registry serves what `push_image` reports, the fake Notary server serves files and
//! counts writes, the real notary stack publishes and lists, the Docker CLI inspects
//! without a daemon, and faketime moves the clock of a tokio program.
//!
//! Needs scripts/dct/install.sh and scripts/notary/install.sh.
// Test code: an unwrap that fails is the test failing, with its location.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tufkey_e2e::dct::{
    copy_collection, docker_trust, docker_trust_inspect, faketime_command, inspected_tags, notary,
    notary_list, notary_publisher, push_image, push_image_as, sha256_digest, FakeNotaryServer,
    ManifestFormat, NotaryStack, Registry, PUBLISHER_PASSPHRASE,
};
use tufkey_e2e::notary::Pki;

/// Fifteen days, in seconds.
const FIFTEEN_DAYS: u64 = 15 * 86_400;
/// The re-executed probe reads this to know it runs under faketime.
const PROBE_ENV: &str = "TUFKEY_DCT_CLOCK_PROBE";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn push_image_reports_the_digest_and_size_the_registry_serves() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    assert_eq!(registry.host(), format!("localhost:{}", registry.port));

    let v1 = push_image(&registry, "acme/app", "v1", "seed one");
    let v2 = push_image(&registry, "acme/app", "v2", "seed two");
    let again = push_image(&registry, "acme/other", "v1", "seed one");
    assert_ne!(
        v1.digest, v2.digest,
        "different seeds give different images"
    );
    assert_eq!(v1, again, "the same seed gives the same manifest");
    assert_eq!(v1.media_type, "application/vnd.oci.image.manifest.v1+json");

    for (tag, pushed) in [("v1", &v1), ("v2", &v2)] {
        let served = registry.served_manifest("acme/app", tag);
        assert_eq!(sha256_digest(&served.bytes), pushed.digest);
        assert_eq!(served.docker_content_digest, pushed.digest);
        assert_eq!(served.bytes.len() as u64, pushed.size);
        assert_eq!(pushed.hex().len(), 64);
    }

    // skopeo --format v2s2 converts: other bytes, other digest, Docker's media type.
    let docker = push_image_as(
        &registry,
        "acme/app",
        "v1-docker",
        "seed one",
        ManifestFormat::DockerV2Schema2,
    );
    assert_eq!(
        docker.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_ne!(docker.digest, v1.digest);
}

#[test]
fn fake_notary_server_serves_files_404s_the_rest_and_counts_posts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(&dir.path().join("pki"));
    let files = dir.path().join("files");
    let gun = "localhost:5000/acme/app";
    std::fs::create_dir_all(files.join(gun).join("targets")).unwrap();
    let root = br#"{"signed":{"version":3}}"#;
    std::fs::write(files.join(gun).join("root.json"), root).unwrap();
    std::fs::write(
        files.join(gun).join("targets").join("releases.json"),
        b"{\"signed\":2}",
    )
    .unwrap();
    let server = FakeNotaryServer::start(&pki, &files);

    let curl = |args: &[&str]| {
        let output = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--cacert"])
            .arg(pki.file("ca.crt"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let tuf = format!("{}/v2/{gun}/_trust/tuf", server.url());
    assert_eq!(
        curl(&[&format!("{tuf}/root.json")]),
        ("200".into(), String::from_utf8(root.to_vec()).unwrap())
    );
    // By checksum and by version, as clients ask after reading snapshot / rotating.
    let checksum = &sha256_digest(root)[7..];
    assert_eq!(curl(&[&format!("{tuf}/root.{checksum}.json")]).0, "200");
    assert_eq!(
        curl(&[&format!("{tuf}/root.{}.json", "0".repeat(64))]).0,
        "404"
    );
    assert_eq!(curl(&[&format!("{tuf}/3.root.json")]).0, "200");
    assert_eq!(curl(&[&format!("{tuf}/2.root.json")]).0, "404");
    assert_eq!(
        curl(&[&format!("{tuf}/targets/releases.json")]),
        ("200".into(), "{\"signed\":2}".into())
    );
    assert_eq!(curl(&[&format!("{tuf}/timestamp.json")]).0, "404");
    assert_eq!(curl(&[&format!("{tuf}/../../../etc/passwd")]).0, "404");
    assert_eq!(server.posts(), 0);

    let (code, _) = curl(&["-X", "POST", "--data-binary", "x", &format!("{tuf}/")]);
    assert_eq!(code, "400");
    assert_eq!(server.posts(), 1);
    assert!(
        server
            .requests()
            .contains(&format!("POST /v2/{gun}/_trust/tuf/")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn notary_publisher_collection_is_listed_by_notary_and_inspected_by_docker() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = NotaryStack::start(dir.path());
    let gun = "localhost:5000/acme/app";
    notary_publisher(
        &stack,
        &dir.path().join("publisher"),
        gun,
        &[("v1", b"first image"), ("v2", b"second image, longer")],
    );
    // The publisher's keys: root + targets only (the server holds snapshot, timestamp).
    let keys = std::fs::read_dir(dir.path().join("publisher").join("private"))
        .unwrap()
        .count();
    assert_eq!(
        keys, 2,
        "root and targets keys in the publisher's trust dir"
    );

    // A fresh client with only the CA lists both tags with the right digests and sizes.
    let listed = notary_list(&stack, &dir.path().join("fresh"), gun);
    let expected = |content: &[u8]| sha256_digest(content)[7..].to_owned();
    assert_eq!(
        listed,
        [
            ("v1".into(), expected(b"first image"), 11, "targets".into()),
            (
                "v2".into(),
                expected(b"second image, longer"),
                20,
                "targets".into()
            ),
        ]
    );

    // The Docker CLI, no daemon, sees the same tags and the admin keys.
    let inspected = docker_trust_inspect(&stack, &dir.path().join("home"), gun);
    let repo = &inspected[0];
    assert_eq!(repo["Name"], gun);
    let tags = inspected_tags(repo);
    let (v1, v2) = (expected(b"first image"), expected(b"second image, longer"));
    assert_eq!(tags, [("v1".to_owned(), v1), ("v2".to_owned(), v2)]);
    let admin: Vec<&str> = repo["AdministrativeKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| role["Name"].as_str().unwrap())
        .collect();
    assert_eq!(admin, ["Root", "Repository"], "{inspected:#}");

    // The same collection served by the fake server: Docker reads it, nothing is posted.
    let files = dir.path().join("files");
    copy_collection(&stack, gun, &[], &files);
    let fake = FakeNotaryServer::start(&stack.pki, &files);
    let output = docker_trust(
        &fake.url(),
        &stack.ca(),
        &dir.path().join("home-fake"),
        &["inspect", gun],
    );
    assert!(output.status.success(), "{output:?} {:?}", fake.requests());
    let from_fake: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(from_fake[0]["SignedTags"], repo["SignedTags"]);
    assert_eq!(fake.posts(), 0);
    assert!(
        fake.requests()
            .contains(&format!("GET /v2/{gun}/_trust/tuf/timestamp.json")),
        "{:?}",
        fake.requests()
    );

    // Docker's GUN for a Docker Hub short name is docker.io/<name>.
    notary_publisher(
        &stack,
        &dir.path().join("publisher"),
        "docker.io/acme/app",
        &[("hub", b"hub image")],
    );
    let hub = docker_trust_inspect(&stack, &dir.path().join("home"), "acme/app");
    assert_eq!(hub[0]["Name"], "acme/app");
    assert_eq!(hub[0]["SignedTags"][0]["SignedTag"], "hub");
    assert_eq!(hub[0]["SignedTags"][0]["Digest"], expected(b"hub image"));

    // A restarted server has forgotten the collection.
    let old_url = stack.url();
    stack.restart_server();
    assert_ne!(stack.url(), old_url);
    let output = notary(
        &stack,
        &dir.path().join("after-restart"),
        &["list", gun],
        PUBLISHER_PASSPHRASE,
    );
    assert!(!output.status.success(), "{output:?}");
    // notary 0.7 prints its fatal errors on stdout.
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("does not have trust data"), "{said}");
}

/// Run normally, checks tokio timers and `SystemTime` in this process; re-executed
/// under faketime by the test below, also prints the clock for it to check.
#[test]
fn clock_probe() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let slept = runtime.block_on(async {
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            SystemTime::now()
        })
        .await
        .unwrap()
    });
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(5),
        "tokio sleep of 100 ms took {elapsed:?}"
    );
    let secs = slept.duration_since(UNIX_EPOCH).unwrap().as_secs();
    if std::env::var_os(PROBE_ENV).is_some() {
        println!("CLOCK_PROBE {secs}");
    }
}

#[test]
fn faketime_moves_the_wall_clock_of_date_python_and_a_tokio_binary() {
    let shifted = |output: std::process::Output, marker: &str| -> u64 {
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let line = text
            .lines()
            .find_map(|line| line.split_once(marker).map(|(_, after)| after))
            .unwrap_or_else(|| panic!("no {marker:?} in {text}"));
        let seen: u64 = line.trim().parse().unwrap();
        let offset = seen.abs_diff(now_secs() + FIFTEEN_DAYS);
        assert!(offset < 120, "{seen} is not 15 days ahead of now");
        seen
    };

    let date = faketime_command("+15d", "date".as_ref())
        .arg("+%s")
        .output()
        .unwrap();
    shifted(date, "");
    let python = faketime_command("+15d", "/usr/bin/python3".as_ref())
        .args(["-c", "import time; print(int(time.time()))"])
        .output()
        .unwrap();
    shifted(python, "");

    // This test binary again, under faketime, running only the tokio probe above.
    let probe = faketime_command("+15d", &std::env::current_exe().unwrap())
        .args(["--exact", "clock_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, "1")
        .output()
        .unwrap();
    shifted(probe, "CLOCK_PROBE ");
}
