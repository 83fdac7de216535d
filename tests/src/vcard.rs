//! The virtual YubiKeys (tests/vcard) the YubiKey tests run against, through the
//! real pcscd: which cards exist, exclusive use of one card per test, putting a
//! card back to factory state, and pulling / re-inserting a card.
//!
//! `scripts/test` starts the cards once (`scripts/vcard/start.sh STATE 1001 1002
//! 1003 1004`) and exports `TUFKEY_VCARD_SERIALS` and `TUFKEY_VCARD_STATE_DIR`.
//! Without them the YubiKey tests fail: they never skip.

use crate::daemon::{CliOutput, Daemon, DaemonOptions, Sandbox};
use crate::verify::workspace_root;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use yubikey::certificate::Certificate;
use yubikey::{MgmKey, Serial, YubiKey};

/// The cards' factory PIN and PUK.
pub const PIN: &str = "123456";
pub const PUK: &str = "12345678";
/// A PIN tests may switch to; [`reset`] switches back.
pub const OTHER_PIN: &str = "97531864";

static CARDS: Mutex<()> = Mutex::new(());

/// Exclusive use of the running virtual cards for one test. Tests in one binary run
/// in parallel; every YubiKey test holds this while it runs (a daemon opens every
/// card it sees, and a card reset by one test logs out another's).
pub struct Cards {
    _guard: MutexGuard<'static, ()>,
    pub serials: Vec<u32>,
    pub state_dir: String,
}

/// Takes the cards; panics with the fix when the environment is missing.
pub fn cards() -> Cards {
    let guard = CARDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let serials: Vec<u32> = std::env::var("TUFKEY_VCARD_SERIALS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("TUFKEY_VCARD_SERIALS: comma-separated serials")
        })
        .collect();
    let state_dir = std::env::var("TUFKEY_VCARD_STATE_DIR").unwrap_or_default();
    assert!(
        serials.len() >= 4 && !state_dir.is_empty(),
        "the YubiKey tests need 4 virtual cards: run scripts/vcard/start.sh STATE 1001 1002 1003 1004 \
         and export TUFKEY_VCARD_SERIALS=1001,1002,1003,1004 TUFKEY_VCARD_STATE_DIR=STATE (scripts/test does)"
    );
    Cards {
        _guard: guard,
        serials,
        state_dir,
    }
}

impl Cards {
    /// The `index`th card's serial.
    pub fn serial(&self, index: usize) -> u32 {
        self.serials[index]
    }

    /// Pulls the card (stops its process) and waits until pcscd sees it gone.
    pub fn pull(&self, serial: u32) {
        self.card_script("stop", serial);
    }

    /// Re-inserts the card and waits until pcscd sees it.
    pub fn insert(&self, serial: u32) {
        self.card_script("start", serial);
    }

    /// Pulls card `host` and puts a look-alike of card `serial` in its reader: a
    /// fresh card (its own keys and attestation certificate) reporting `serial`,
    /// while the genuine card stays in its reader. Dropping it takes it out and
    /// re-inserts `host`.
    pub fn insert_lookalike(&self, serial: u32, host: u32) -> LookAlike<'_> {
        self.lookalike_script("start", serial, host);
        LookAlike {
            cards: self,
            serial,
            host,
        }
    }

    fn card_script(&self, action: &str, serial: u32) {
        let status = Command::new("bash")
            .arg(workspace_root().join("scripts/vcard/card.sh"))
            .args([self.state_dir.as_str(), action, &serial.to_string()])
            .status()
            .expect("run scripts/vcard/card.sh");
        assert!(status.success(), "card.sh {action} {serial} failed");
    }

    fn lookalike_script(&self, action: &str, serial: u32, host: u32) {
        let status = Command::new("bash")
            .arg(workspace_root().join("scripts/vcard/lookalike.sh"))
            .args([
                self.state_dir.as_str(),
                action,
                &serial.to_string(),
                &host.to_string(),
            ])
            .status()
            .expect("run scripts/vcard/lookalike.sh");
        assert!(
            status.success(),
            "lookalike.sh {action} {serial} {host} failed"
        );
    }
}

/// A look-alike card in another card's reader ([`Cards::insert_lookalike`]).
pub struct LookAlike<'a> {
    cards: &'a Cards,
    serial: u32,
    host: u32,
}

impl LookAlike<'_> {
    /// How many VERIFY commands carrying a PIN the look-alike has received.
    pub fn pins_received(&self) -> u64 {
        let path = Path::new(&self.cards.state_dir)
            .join(format!("lookalike-{}.state.verifies", self.serial));
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().expect("a VERIFY count"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => panic!("read {}: {error}", path.display()),
        }
    }
}

impl Drop for LookAlike<'_> {
    fn drop(&mut self) {
        self.cards.lookalike_script("stop", self.serial, self.host);
    }
}

/// Signs `digest` straight on the card with the key in `slot` (PIN verified
/// first), with the `yubikey` crate rather than through tufkeyd.
pub fn sign_in_slot(serial: u32, slot: u8, digest: &[u8; 32]) -> yubikey::Result<Vec<u8>> {
    let mut yubikey = open(serial);
    yubikey.verify_pin(PIN.as_bytes())?;
    let slot = yubikey::piv::SlotId::try_from(slot)?;
    let signature = yubikey::piv::sign_data(
        &mut yubikey,
        digest,
        yubikey::piv::AlgorithmId::EccP256,
        slot,
    )?;
    Ok(signature.to_vec())
}

/// Opens a card directly with the `yubikey` crate (retrying while pcscd catches up).
pub fn open(serial: u32) -> YubiKey {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match YubiKey::open_by_serial(Serial(serial)) {
            Ok(yubikey) => return yubikey,
            Err(error) if Instant::now() < deadline => {
                eprintln!("open YubiKey {serial}: {error}; retrying");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(error) => panic!("open YubiKey {serial}: {error}"),
        }
    }
}

/// PIN tries left, read with the `yubikey` crate (not through tufkeyd).
pub fn pin_tries(serial: u32) -> u8 {
    open(serial).get_pin_retries().expect("read PIN tries")
}

/// Types a wrong PIN straight at the card (as another program would).
pub fn type_wrong_pin(serial: u32) -> u8 {
    match open(serial).verify_pin(b"00000000") {
        Err(yubikey::Error::WrongPin { tries }) => tries,
        other => panic!("a wrong PIN gave {other:?}"),
    }
}

/// Whether the factory management key still authenticates.
pub fn factory_management_key_works(serial: u32) -> bool {
    open(serial).authenticate(MgmKey::default()).is_ok()
}

/// Puts the card back to factory state as far as tufkey cares: PIN 123456 with 3
/// tries, factory management key, no certificate in 9c or 82..95 (so no tufkey
/// keys). Whatever state an earlier (failed) test or program left it in.
pub fn reset(serial: u32) {
    let mut yubikey = open(serial);
    let factory_pin = match yubikey.get_pin_retries().expect("PIN tries") {
        0 => Err(yubikey::Error::WrongPin { tries: 0 }),
        _ => yubikey.verify_pin(PIN.as_bytes()),
    };
    match factory_pin {
        Ok(()) => {}
        Err(yubikey::Error::WrongPin { tries })
            if tries > 0 && yubikey.verify_pin(OTHER_PIN.as_bytes()).is_ok() =>
        {
            yubikey
                .change_pin(OTHER_PIN.as_bytes(), PIN.as_bytes())
                .expect("change the PIN back");
        }
        Err(_) => yubikey
            .unblock_pin(PUK.as_bytes(), PIN.as_bytes())
            .expect("reset the PIN with the factory PUK"),
    }
    yubikey.verify_pin(PIN.as_bytes()).expect("factory PIN");
    let management_key = MgmKey::get_protected(&mut yubikey).unwrap_or_default();
    yubikey
        .authenticate(management_key)
        .expect("authenticate with the protected or factory management key");
    MgmKey::set_default(&mut yubikey).expect("back to the factory management key");
    yubikey
        .authenticate(MgmKey::default())
        .expect("factory management key");
    for slot in std::iter::once(0x9c).chain(0x82..=0x95) {
        let slot = yubikey::piv::SlotId::try_from(slot).expect("slot");
        Certificate::delete(&mut yubikey, slot).expect("delete certificate");
    }
    assert_eq!(yubikey.get_pin_retries().expect("PIN tries"), 3);
}

/// `tufkey unlock --serial N --pin-stdin` with `pin`.
pub fn unlock(daemon: &Daemon, serial: u32, pin: &str) -> CliOutput {
    unlock_with(daemon, serial, pin, &[])
}

/// The same with `--force`: typed even with one PIN try left.
pub fn unlock_forced(daemon: &Daemon, serial: u32, pin: &str) -> CliOutput {
    unlock_with(daemon, serial, pin, &["--force"])
}

fn unlock_with(daemon: &Daemon, serial: u32, pin: &str, extra: &[&str]) -> CliOutput {
    let serial = serial.to_string();
    let mut args = vec!["--json", "unlock", "--serial", &serial, "--pin-stdin"];
    args.extend_from_slice(extra);
    daemon.cli_with_stdin(&args, format!("{pin}\n").as_bytes())
}

/// A daemon started after card `serial` was reset to the factory, with its PIN given.
pub fn daemon_on_unlocked_card(sandbox: &Sandbox, serial: u32, options: &DaemonOptions) -> Daemon {
    reset(serial);
    let daemon = sandbox.start(options);
    assert!(unlock(&daemon, serial, PIN).success);
    daemon
}

/// [`daemon_on_unlocked_card`], and a targets key of `gun` generated on the card.
pub fn daemon_with_targets_key(
    sandbox: &Sandbox,
    serial: u32,
    options: &DaemonOptions,
    gun: &str,
) -> (Daemon, Value) {
    let daemon = daemon_on_unlocked_card(sandbox, serial, options);
    let key = generate_on_card(
        &daemon,
        serial,
        gun,
        "targets",
        &["--allow-default-mgmt-key"],
    );
    (daemon, key)
}

/// Generates a key on the card through the CLI and returns its `--json` description.
pub fn generate_on_card(
    daemon: &Daemon,
    serial: u32,
    gun: &str,
    role: &str,
    extra: &[&str],
) -> Value {
    let serial = serial.to_string();
    let mut args = vec![
        "--json",
        "key",
        "generate",
        "--gun",
        gun,
        "--role",
        role,
        "--backend",
        "yubikey",
        "--serial",
        &serial,
    ];
    args.extend_from_slice(extra);
    daemon.cli_ok(&args).json()
}

/// `tufkey sign-raw` of `payload` with `keyid`; the hex DER signature or the CLI's failure.
pub fn sign_raw(
    daemon: &Daemon,
    dir: &Path,
    keyid: &str,
    payload: &[u8],
) -> Result<String, CliOutput> {
    let file = dir.join(format!("payload-{}.bin", std::process::id()));
    std::fs::write(&file, payload).expect("write payload");
    let output = daemon.cli(&[
        "sign-raw",
        "--key",
        keyid,
        file.to_str().expect("utf-8 path"),
    ]);
    if output.success {
        Ok(output.stdout.trim().to_owned())
    } else {
        Err(output)
    }
}

/// Checks a hex DER signature over `payload` against the key's `public_pem`.
pub fn signature_verifies(key: &Value, payload: &[u8], hex_der: &str) -> bool {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    let Some(pem) = key["public_pem"].as_str() else {
        return false;
    };
    let (Ok(verifying), Ok(der)) = (
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem),
        hex::decode(hex_der),
    ) else {
        return false;
    };
    p256::ecdsa::Signature::from_der(&der)
        .is_ok_and(|signature| verifying.verify(payload, &signature).is_ok())
}

/// A daemon that sees the cards, with `serials` reset to the factory and unlocked.
pub fn daemon_on_cards(sandbox: &Sandbox, serials: &[u32]) -> Daemon {
    for serial in serials {
        reset(*serial);
    }
    let daemon = sandbox.start(&DaemonOptions::with_yubikeys());
    for serial in serials {
        let unlocked = unlock(&daemon, *serial, PIN);
        assert!(unlocked.success, "{}", unlocked.stderr);
    }
    daemon
}
