//! tufkey-vcard: a TEST-ONLY virtual PIV card that the `yubikey` crate
//! accepts as a YubiKey 5, reachable through pcscd + vsmartcard-vpcd.
//!
//! piv-authenticator (Nitrokey's PIV app on the trussed virt platform) does
//! the PIV work; the adapter here makes it look like a YubiKey:
//! SELECT by RID, GET VERSION / GET SERIAL, command chaining, response
//! chaining (61xx + GET RESPONSE), 6A80 -> 6A82 for unknown data objects,
//! and power-cycle semantics (reset/SELECT drop PIN and management-key
//! authentication).
//!
//! NOT A SECURE DEVICE: keys live in a plain file (or RAM).

mod attestation;
mod card;
mod dispatch;
mod import;
mod store;

use std::{path::PathBuf, sync::mpsc, thread, time::Duration};

use clap::Parser;

/// Full PIV AID (NIST SP 800-73-4): RID A0 00 00 03 08 + PIX 00 00 10 00 01 00.
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// ATR of a YubiKey 5 (T=1; the last byte is the checksum).
const YUBIKEY_ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];
/// Firmware version reported by GET VERSION.
const VERSION: [u8; 3] = [5, 4, 3];

const INS_SELECT: u8 = 0xA4;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_GET_DATA: u8 = 0xCB;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_GET_METADATA: u8 = 0xF7;
const INS_GET_VERSION: u8 = 0xFD;
const INS_GENERATE: u8 = 0x47;
const INS_IMPORT_KEY: u8 = 0xFE;
const INS_VERIFY: u8 = 0x20;
/// GENERATE's touch-policy tag (Yubico).
const TOUCH_POLICY_TAG: u8 = 0xAB;
/// GET DATA request for the Key History Object (5FC10C).
const GET_KEY_HISTORY: [u8; 5] = [0x5C, 0x03, 0x5F, 0xC1, 0x0C];

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Test-only virtual YubiKey-like PIV card for vpcd/pcscd"
)]
struct Args {
    /// Serial number reported by GET SERIAL (YubiKey::serial()).
    #[arg(long)]
    serial: u32,
    /// Host where vpcd (inside pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    vpcd_host: String,
    /// vpcd port of the virtual reader this card is inserted into.
    #[arg(long, default_value_t = 35963)]
    vpcd_port: u16,
    /// Persist keys, PIN state, management key and certificates in this
    /// file (created if missing). Without it the card lives in RAM only.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

struct VCard {
    serial: u32,
    app: mpsc::Sender<card::Msg>,
    /// Data of a chained command (CLA bit 0x10) collected so far.
    chain: Option<(u8, u8, u8, Vec<u8>)>,
    /// Response bytes still to be fetched with GET RESPONSE.
    pending: Vec<u8>,
    /// A power cycle happened; restart the app before the next command.
    reset_due: bool,
    /// Hands an imported P-256 scalar to the trussed dispatch.
    injection: import::Injection,
    /// GET DATA's answer for the attestation certificate (slot f9).
    attestation: Vec<u8>,
    /// VERIFY commands that carried a PIN, and the file (`STATE.verifies`) that
    /// tells tests how many this card received.
    verifies: u64,
    verify_log: Option<PathBuf>,
}

impl VCard {
    /// Counts a VERIFY that carried a PIN (right or wrong) in `STATE.verifies`.
    fn record_verify(&mut self) {
        self.verifies += 1;
        log::info!("VERIFY with a PIN received (#{})", self.verifies);
        if let Some(path) = &self.verify_log {
            if let Err(e) = std::fs::write(path, format!("{}\n", self.verifies)) {
                log::error!("cannot record VERIFY count in {}: {e}", path.display());
            }
        }
    }

    fn restart_app(&mut self) {
        self.reset_due = false;
        self.chain = None;
        self.pending.clear();
        let _ = self.app.send(card::Msg::Reset);
    }

    /// Send one complete command to the PIV app.
    fn forward(&mut self, cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
        let mut apdu = vec![cla, ins, p1, p2];
        if !data.is_empty() {
            if data.len() <= 255 {
                apdu.push(data.len() as u8);
            } else {
                apdu.push(0);
                apdu.extend_from_slice(&(data.len() as u16).to_be_bytes());
            }
            apdu.extend_from_slice(data);
        }
        let (tx, rx) = mpsc::channel();
        if self.app.send(card::Msg::Apdu(apdu, tx)).is_err() {
            return (Vec::new(), 0x6F00);
        }
        rx.recv().unwrap_or((Vec::new(), 0x6F00))
    }

    /// Return at most `le` (256 if absent) bytes; the rest via 61xx + GET RESPONSE.
    fn chunk(&mut self, mut data: Vec<u8>, sw: u16, le: usize) -> Vec<u8> {
        let max = if le == 0 { 256 } else { le };
        if data.len() > max && sw == 0x9000 {
            self.pending = data.split_off(max);
            let left = self.pending.len().min(256);
            data.extend_from_slice(&[0x61, (left & 0xFF) as u8]);
            return data;
        }
        data.extend_from_slice(&sw.to_be_bytes());
        data
    }

    fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return vec![0x67, 0x00];
        }
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        let view = match iso7816::command::CommandView::try_from(apdu) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("malformed APDU {apdu:02x?}: {e:?}");
                return vec![0x67, 0x00];
            }
        };
        let le = view.expected();

        if ins == INS_GET_RESPONSE {
            if self.pending.is_empty() {
                return vec![0x6F, 0x00];
            }
            let data = std::mem::take(&mut self.pending);
            return self.chunk(data, 0x9000, le);
        }
        self.pending.clear();

        // Command chaining (ISO 7816-4): collect, answer 9000, run on the last part.
        if cla & 0x10 != 0 {
            match &mut self.chain {
                Some((i, a, b, buf)) if (*i, *a, *b) == (ins, p1, p2) => {
                    buf.extend_from_slice(view.data())
                }
                _ => self.chain = Some((ins, p1, p2, view.data().to_vec())),
            }
            return vec![0x90, 0x00];
        }
        let data = match self.chain.take() {
            Some((i, a, b, mut buf)) if (i, a, b) == (ins, p1, p2) => {
                buf.extend_from_slice(view.data());
                buf
            }
            _ => view.data().to_vec(),
        };
        let cla = cla & !0x10;

        if self.reset_due {
            self.restart_app();
        }
        if ins == INS_VERIFY && !data.is_empty() {
            self.record_verify();
        }
        if ins == INS_GENERATE {
            log::info!(
                "GENERATE in slot {p2:02x}, touch policy {}",
                touch_policy(&data).map_or("default".to_owned(), |t| format!("{t:02x}"))
            );
        }

        let (out, sw) = match ins {
            INS_SELECT => {
                if p1 == 0x04 && data.len() >= 5 && PIV_AID.starts_with(&data) {
                    // Selecting PIV resets its security status on a YubiKey.
                    self.restart_app();
                    self.forward(cla, ins, p1, p2, &PIV_AID)
                } else {
                    log::info!("SELECT of unsupported AID {data:02x?}");
                    (Vec::new(), 0x6A82)
                }
            }
            INS_GET_VERSION => (VERSION.to_vec(), 0x9000),
            INS_GET_SERIAL => (self.serial.to_be_bytes().to_vec(), 0x9000),
            // piv-authenticator answers GET METADATA with empty data for most
            // slots; say "not supported" like firmware < 5.3 does.
            INS_GET_METADATA => (Vec::new(), 0x6D00),
            // piv-authenticator keeps a Key History Object up to date; a
            // factory YubiKey has none, and yubikey 0.8's `Key::list` (piv_keys)
            // reads 5FC10C as a certificate and fails on it. Hide it.
            INS_GET_DATA if data == GET_KEY_HISTORY => (Vec::new(), 0x6A82),
            INS_GET_DATA if data == attestation::GET_ATTESTATION => {
                (self.attestation.clone(), 0x9000)
            }
            INS_IMPORT_KEY if p1 == import::P256 => match import::scalar(&data) {
                Some(scalar) => {
                    self.injection.set(scalar);
                    let (_, sw) = self.forward(cla, INS_GENERATE, 0x00, p2, &import::GENERATE_P256);
                    // Refused before the key was made (e.g. not authenticated):
                    // never leave the scalar for a later generation.
                    let _ = self.injection.take();
                    (Vec::new(), sw)
                }
                None => (Vec::new(), 0x6A80),
            },
            _ => {
                let (out, sw) = self.forward(cla, ins, p1, p2, &data);
                if ins == INS_GET_DATA && sw == 0x6A80 {
                    (out, 0x6A82)
                } else {
                    (out, sw)
                }
            }
        };
        log::debug!(
            "APDU ins={ins:02x} p1={p1:02x} p2={p2:02x} lc={} -> sw={sw:04x} len={}",
            data.len(),
            out.len()
        );
        self.chunk(out, sw, le)
    }
}

/// The touch policy (tag `AB`) in GENERATE's control template
/// (`AC L 80 01 alg [AA 01 pin] [AB 01 touch]`); piv-authenticator ignores it.
fn touch_policy(data: &[u8]) -> Option<u8> {
    let template = data.strip_prefix(&[0xAC])?.get(1..)?;
    let mut rest = template;
    while let [tag, len, tail @ ..] = rest {
        let value = tail.get(..usize::from(*len))?;
        if *tag == TOUCH_POLICY_TAG {
            return value.first().copied();
        }
        rest = &tail[usize::from(*len)..];
    }
    None
}

impl vpicc::VSmartCard for VCard {
    fn atr(&self) -> &[u8] {
        &YUBIKEY_ATR
    }
    fn power_on(&mut self) {
        log::debug!("power on");
        self.reset_due = true;
    }
    fn power_off(&mut self) {
        log::debug!("power off");
        self.reset_due = true;
    }
    fn reset(&mut self) {
        log::debug!("reset");
        self.reset_due = true;
    }
    fn execute(&mut self, msg: &[u8]) -> Vec<u8> {
        self.handle(msg)
    }
}

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default()
            .default_filter_or("tufkey_vcard=info,piv_authenticator=off,warn"),
    )
    .format_timestamp_millis()
    .target(env_logger::Target::Stderr)
    .init();
    let args = Args::parse();

    let injection = import::Injection::default();
    let app = match card::spawn(args.state_file.clone(), injection.clone()) {
        Ok(tx) => tx,
        Err(e) => {
            log::error!("cannot open card storage: {e}");
            std::process::exit(1);
        }
    };
    let attestation = match attestation::load_or_create(args.state_file.as_deref(), args.serial) {
        Ok(certificate) => attestation::object(&certificate),
        Err(e) => {
            log::error!("cannot make the attestation certificate: {e}");
            std::process::exit(1);
        }
    };
    let verify_log = args.state_file.as_ref().map(|state| {
        let mut name = state.as_os_str().to_owned();
        name.push(".verifies");
        PathBuf::from(name)
    });
    let mut card = VCard {
        serial: args.serial,
        app,
        chain: None,
        pending: Vec::new(),
        reset_due: true,
        injection,
        attestation,
        verifies: 0,
        verify_log,
    };
    let addr = format!("{}:{}", args.vpcd_host, args.vpcd_port);
    log::info!(
        "tufkey-vcard serial {} ({}), vpcd {addr}",
        args.serial,
        match &args.state_file {
            Some(p) => format!("state file {}", p.display()),
            None => "RAM only".to_string(),
        }
    );
    let mut waiting_logged = false;
    loop {
        match vpicc::connect_socket(addr.as_str()) {
            Ok(conn) => {
                log::info!("card {} inserted into vpcd reader at {addr}", args.serial);
                waiting_logged = false;
                let res = conn.run(&mut card);
                log::warn!("vpcd connection ended ({res:?}); waiting to re-insert");
                card.reset_due = true;
            }
            Err(e) => {
                if !waiting_logged {
                    log::info!("vpcd at {addr} not reachable ({e}); retrying");
                    waiting_logged = true;
                }
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
}
