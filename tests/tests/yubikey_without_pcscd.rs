//! Without a reachable pcscd the daemon still starts and serves software keys;
//! YubiKey commands say that YubiKey support is off and why.

use tufkey_e2e::daemon::{DaemonOptions, Sandbox};

#[test]
fn without_pcscd_the_daemon_starts_and_yubikey_commands_explain_why_they_are_off() {
    // pcsc-lite clients find pcscd through this variable; point it nowhere. The only
    // test in this binary, so changing the environment races with nothing.
    std::env::set_var("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm");
    let sandbox = Sandbox::new();
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    std::env::remove_var("PCSCLITE_CSOCK_NAME");

    let key = daemon.generate("example.com/nopcscd", "targets");
    assert_eq!(key["backend"], "software");
    daemon
        .cli(&["device", "list"])
        .assert_fails_with("YubiKey support is off: pcscd is not reachable");
    daemon
        .cli(&[
            "key",
            "generate",
            "--gun",
            "example.com/x",
            "--role",
            "root",
            "--backend",
            "yubikey",
        ])
        .assert_fails_with(
            "no yubikey backend in this daemon: YubiKey support is off: pcscd is not reachable",
        );
    assert!(
        daemon.log_text().contains("YubiKey support off"),
        "{}",
        daemon.log_text()
    );
}
