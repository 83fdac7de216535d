//! Benchmark (not a test): tufkeyd's added latency per YubiKey signature.
//!
//! On one (virtual) card, the median of N signatures of a 32-byte digest in slot 9c:
//! - direct: the `yubikey` crate in this process, VERIFY PIN + SIGN, the least any
//!   program must do for a 9c signature;
//! - daemon: `tufkey::Client::sign_raw` over tufkeyd's Unix socket (gRPC, key
//!   lookup, PIN-tries check, VERIFY PIN, SIGN, signature check, encoding).
//!
//! Usage: bench_yubikey SERIAL [ROUNDS] (default 200); run by scripts/bench-yubikey.sh,
//! which builds release binaries and sets TUFKEY_BIN_DIR. Resets the card first.

use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tufkey_e2e::daemon::{DaemonOptions, Sandbox};
use tufkey_e2e::vcard::{self, generate_on_card, unlock, PIN};
use yubikey::piv::{self, AlgorithmId, SlotId};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let serial: u32 = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: bench_yubikey SERIAL [ROUNDS]");
    let rounds: usize = args
        .next()
        .map_or(200, |s| s.parse().expect("ROUNDS: a number"));
    vcard::reset(serial);

    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    let unlocked = unlock(&daemon, serial, PIN);
    assert!(unlocked.success, "unlock failed: {}", unlocked.stderr);
    let key = generate_on_card(
        &daemon,
        serial,
        "example.com/bench",
        "root",
        &["--allow-default-mgmt-key"],
    );
    let keyid = key["keyid"].as_str().expect("keyid").to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let via_daemon = runtime.block_on(async {
        let mut client = tufkey::Client::connect_unix(&daemon.socket)
            .await
            .expect("connect");
        let payload = b"tufkey benchmark payload".to_vec();
        client
            .sign_raw(&keyid, payload.clone(), tufkey::proto::SignatureFormat::Tuf)
            .await
            .expect("warm-up signature");
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            client
                .sign_raw(&keyid, payload.clone(), tufkey::proto::SignatureFormat::Tuf)
                .await
                .expect("sign through tufkeyd");
            samples.push(started.elapsed());
        }
        samples
    });
    daemon.stop();

    let mut yubikey = vcard::open(serial);
    let digest = Sha256::digest(b"tufkey benchmark payload");
    let mut direct = Vec::with_capacity(rounds);
    for _ in 0..=rounds {
        let started = Instant::now();
        yubikey.verify_pin(PIN.as_bytes()).expect("verify PIN");
        piv::sign_data(
            &mut yubikey,
            &digest,
            AlgorithmId::EccP256,
            SlotId::Signature,
        )
        .expect("sign on the card");
        direct.push(started.elapsed());
    }
    direct.remove(0); // warm-up
    drop(yubikey);
    vcard::reset(serial);

    let (daemon_ms, direct_ms) = (millis(median(via_daemon)), millis(median(direct)));
    println!("YubiKey {serial}, slot 9c, median of {rounds} signatures:");
    println!("  direct (yubikey crate: VERIFY + SIGN):  {direct_ms:8.2} ms");
    println!("  through tufkeyd (gRPC over Unix socket): {daemon_ms:8.2} ms");
    println!(
        "  added by tufkeyd:                        {:8.2} ms",
        daemon_ms - direct_ms
    );
}
