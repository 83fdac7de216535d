//! tufkey-vcard-probe: ask pcscd which YubiKey-like cards (by serial) are
//! present. Used by scripts/vcard/*.sh to wait for cards instead of sleeping.
//!
//!   tufkey-vcard-probe list
//!   tufkey-vcard-probe wait-present [--timeout SECS] SERIAL...
//!   tufkey-vcard-probe wait-absent  [--timeout SECS] SERIAL...
//!
//! Each present card is asked SELECT PIV + GET SERIAL (INS F8) in a shared
//! connection that is left without a reset.

use std::{
    collections::BTreeMap,
    ffi::CString,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode, State};

const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
const GET_SERIAL: [u8; 5] = [0x00, 0xF8, 0x00, 0x00, 0x00];

/// reader name -> Some(serial) if a card answered, None if empty/unknown card.
fn scan() -> Result<BTreeMap<String, Option<u32>>, pcsc::Error> {
    let ctx = Context::establish(Scope::System)?;
    let names: Vec<CString> = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| pcsc::ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::from_millis(0), &mut states)?;
    }
    let mut out = BTreeMap::new();
    for st in &states {
        let name = st.name().to_string_lossy().into_owned();
        let serial = if st.event_state().contains(State::PRESENT) {
            serial_of(&ctx, st.name())
        } else {
            None
        };
        out.insert(name, serial);
    }
    Ok(out)
}

fn serial_of(ctx: &Context, reader: &std::ffi::CStr) -> Option<u32> {
    let mut card = ctx
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .ok()?;
    let serial = ask_serial(&mut card);
    let _ = card.disconnect(Disposition::LeaveCard);
    serial
}

fn ask_serial(card: &mut pcsc::Card) -> Option<u32> {
    let mut buf = [0u8; 258];
    let tx = card.transaction().ok()?;
    let r = tx.transmit(&SELECT_PIV, &mut buf).ok()?;
    if r.len() < 2 || r[r.len() - 2..] != [0x90, 0x00] {
        return None;
    }
    let r = tx.transmit(&GET_SERIAL, &mut buf).ok()?;
    if r.len() != 6 || r[4..] != [0x90, 0x00] {
        return None;
    }
    Some(u32::from_be_bytes([r[0], r[1], r[2], r[3]]))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: tufkey-vcard-probe list | wait-present|wait-absent [--timeout SECS] SERIAL..."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let mut timeout = Duration::from_secs(30);
    let mut serials = Vec::new();
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        if a == "--timeout" {
            let Some(t) = it.next().and_then(|t| t.parse::<u64>().ok()) else {
                return usage();
            };
            timeout = Duration::from_secs(t);
        } else if let Ok(s) = a.parse::<u32>() {
            serials.push(s);
        } else {
            return usage();
        }
    }
    match cmd.as_str() {
        "list" => match scan() {
            Ok(m) => {
                for (reader, serial) in m {
                    match serial {
                        Some(s) => println!("{reader}\t{s}"),
                        None => println!("{reader}\t-"),
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pcscd: {e}");
                ExitCode::FAILURE
            }
        },
        "wait-present" | "wait-absent" => {
            let want_present = cmd == "wait-present";
            let deadline = Instant::now() + timeout;
            loop {
                let last = match scan() {
                    Ok(m) => {
                        let present: Vec<u32> = m.values().flatten().copied().collect();
                        let missing: Vec<u32> = serials
                            .iter()
                            .copied()
                            .filter(|s| present.contains(s) != want_present)
                            .collect();
                        if missing.is_empty() {
                            return ExitCode::SUCCESS;
                        }
                        format!("present: {present:?}, waiting for {missing:?}")
                    }
                    Err(e) => format!("pcscd: {e}"),
                };
                if Instant::now() >= deadline {
                    eprintln!("tufkey-vcard-probe {cmd}: timed out ({last})");
                    return ExitCode::FAILURE;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
        _ => usage(),
    }
}
