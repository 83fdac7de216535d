//! The checks tufkeyd answers: its keystore (lock state, passphrase source,
//! unreadable files, the store directory), YubiKeys (pcscd, PIN tries, factory
//! management keys), the access policy and the audit log.

use super::{local, Check};
use std::path::Path;
use tonic::Code;
use tufkey::{proto, Client, Error};

/// Every daemon-side check. `daemon_uid` is set when the daemon is on this host
/// (the Unix socket), so its store directory can be looked at.
pub async fn checks(mut client: Client, daemon_uid: Option<u32>) -> Vec<Check> {
    let mut checks = Vec::new();
    match client.status().await {
        Ok(status) => checks.extend(keystore(&status, daemon_uid)),
        Err(error) => checks.push(refused("keystore", &error)),
    }
    checks.extend(devices(&mut client).await);
    checks.push(policy(&mut client).await);
    checks.push(audit(&mut client).await);
    checks
}

/// A failed RPC as a finding: a policy refusal is a warning (the check is for the
/// daemon's owners), anything else a failure.
fn refused(check: &'static str, error: &Error) -> Check {
    match error {
        Error::Rpc(status) if status.code() == Code::PermissionDenied => Check::warn(
            check,
            format!("the access policy does not let you look: {}", status.message()),
            "run `tufkey doctor` as tufkeyd's owner (its own user, or a member of its group with the `session` permission)",
        ),
        _ => Check::fail(
            check,
            error.to_string(),
            "see tufkeyd's log (`journalctl --user -u tufkeyd`)",
        ),
    }
}

fn keystore(status: &proto::StatusResponse, daemon_uid: Option<u32>) -> Vec<Check> {
    let mut checks = Vec::new();
    if status.locked {
        checks.push(Check::warn(
            "keyring",
            format!(
                "the keystore {} is locked: software keys cannot sign",
                status.store
            ),
            "`tufkey unlock` (or give tufkeyd the passphrase through the OS keyring, --secret-file or TUFKEY_PASSPHRASE)",
        ));
    } else {
        checks.push(Check::ok(
            "keyring",
            format!(
                "keystore unlocked via {}, {} key(s)",
                if status.passphrase_source.is_empty() {
                    "an unknown source"
                } else {
                    &status.passphrase_source
                },
                status.key_count
            ),
        ));
    }
    if let Some(uid) = daemon_uid.filter(|_| !status.store.is_empty()) {
        checks.push(local::private_dir(
            "store",
            Path::new(&status.store),
            uid,
            &[0o700],
        ));
    }
    if status.unreadable_files.is_empty() {
        checks.push(Check::ok(
            "store health",
            "every file in the keystore reads",
        ));
    } else {
        checks.push(Check::fail(
            "store health",
            format!(
                "{} file(s) in {} cannot be read: {}",
                status.unreadable_files.len(),
                status.store,
                status.unreadable_files.join("; ")
            ),
            format!(
                "move each named file out of {} and restore its key from a backup (`tufkey restore FILE`)",
                status.store
            ),
        ));
    }
    checks
}

/// pcscd as the daemon sees it, then each card.
async fn devices(client: &mut Client) -> Vec<Check> {
    let (pcscd_path, pcscd_exists) = local::pcscd_socket();
    let devices = match client.list_devices().await {
        Ok(devices) => devices,
        Err(Error::Rpc(status))
            if status.code() == Code::FailedPrecondition
                && status.message().contains("YubiKey support is off") =>
        {
            return vec![pcscd_off(status.message(), &pcscd_path, pcscd_exists)];
        }
        Err(error) => return vec![refused("pcscd", &error)],
    };
    let mut checks = vec![Check::ok(
        "pcscd",
        format!(
            "tufkeyd reaches pcscd; {} YubiKey(s) present",
            devices.len()
        ),
    )];
    checks.extend(devices.iter().map(card));
    checks
}

fn pcscd_off(reason: &str, pcscd_path: &str, pcscd_exists: bool) -> Check {
    if reason.contains("--no-yubikey") {
        return Check::warn(
            "pcscd",
            reason.to_owned(),
            "to use YubiKeys, restart tufkeyd without --no-yubikey",
        );
    }
    let lowered = reason.to_lowercase();
    if pcscd_exists || lowered.contains("denied") {
        // pcscd runs here, yet tufkeyd did not get through: polkit refuses a
        // service with no session, or pcscd was down when tufkeyd started.
        return Check::warn(
            "pcscd",
            format!("{reason} ({pcscd_path} exists here: pcscd refused tufkeyd, as polkit does for a service with no session, or was down when tufkeyd started)"),
            "let tufkeyd's user in: `sudo install -m 0644 udev/polkit/50-tufkey-pcscd.rules /etc/polkit-1/rules.d/`, make sure pcscd runs: `sudo systemctl enable --now pcscd.socket`; then restart tufkeyd",
        );
    }
    Check::warn(
        "pcscd",
        format!("{reason} (no {pcscd_path} on this host)"),
        "start pcscd: `sudo systemctl enable --now pcscd.socket`, then restart tufkeyd",
    )
}

/// One card: PIN tries left and whether it still has the factory management key.
fn card(device: &proto::Device) -> Check {
    let serial = device.serial;
    let about = format!(
        "YubiKey {serial} (firmware {}): {} PIN tries left",
        device.firmware, device.pin_tries_left
    );
    if device.pin_tries_left == 0 {
        return Check::fail(
            "card",
            format!("{about}: the PIN is blocked"),
            format!("unblock it with the PUK: `ykman --device {serial} piv access unblock-pin`"),
        );
    }
    if device.default_management_key {
        return Check::fail(
            "card",
            format!("{about}; it still has the factory management key: anyone holding it can replace its keys and certificates without the PIN"),
            format!("`tufkey device init --serial {serial}`"),
        );
    }
    if device.pin_tries_left == 1 {
        return Check::warn(
            "card",
            format!("{about}: one more wrong PIN blocks it"),
            format!("type the PIN only when sure; if it is lost, reset it with the PUK: `ykman --device {serial} piv access unblock-pin`"),
        );
    }
    Check::ok("card", format!("{about}; management key replaced"))
}

/// Whether the loaded policy lets this user sign, and which rule decides.
async fn policy(client: &mut Client) -> Check {
    let uid = nix::unistd::Uid::current().as_raw();
    let request = proto::CheckRequest {
        identity: Some(proto::check_request::Identity::Unix(proto::UnixIdentity {
            uid,
            gid: None,
        })),
        rpc: "Signing/SignMetadata".into(),
        keyid: String::new(),
    };
    match client.check_policy(request).await {
        Ok(decision) if decision.allowed => Check::ok(
            "policy",
            format!("uid {uid} may sign ({})", decision.rule),
        ),
        Ok(decision) => Check::warn(
            "policy",
            format!("uid {uid} may not sign: {} ({})", decision.reason, decision.rule),
            format!("grant it in tufkeyd's policy file (`tufkey policy check --as uid:{uid} SignMetadata` explains), then `systemctl reload tufkeyd`"),
        ),
        Err(error) => refused("policy", &error),
    }
}

/// Whether the audit log verifies, or its first bad record.
async fn audit(client: &mut Client) -> Check {
    match client.verify_audit(Vec::new()).await {
        Ok(report) => match report.bad {
            None => Check::ok(
                "audit log",
                format!(
                    "intact: {} record(s), seq {}..{}",
                    report.records, report.first_seq, report.last_seq
                ),
            ),
            Some(bad) => Check::fail(
                "audit log",
                format!(
                    "does not verify: {} line {} (seq {}): {}",
                    bad.file, bad.line, bad.seq, bad.reason
                ),
                "keep the log as it is for investigation and find out who wrote to it; `tufkey audit verify` names the record, `tufkey audit tail` shows the latest",
            ),
        },
        Err(error) => refused("audit log", &error),
    }
}
