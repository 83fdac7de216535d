//! How keys and statuses are printed, for people and as JSON.

use serde_json::{json, Value};
use tufkey::proto;

/// The JSON object every key command prints.
pub fn key_json(key: &proto::Key) -> Value {
    let tuf_key: Value = serde_json::from_str(&key.tuf_key_json).unwrap_or(Value::Null);
    json!({
        "keyid": key.keyid,
        "notary_keyid": key.notary_keyid,
        "gun": key.gun,
        "role": key.role,
        "scheme": key.scheme,
        "public_pem": key.public_pem,
        "tuf_key": tuf_key,
        "backend": backend_name(key),
        "created_at": key.created_at,
        "exportable": key.exportable,
        "origin": key.origin,
        "last_backup": (!key.last_backup.is_empty()).then_some(&key.last_backup),
        "available": key.available,
        "serial": yubikey(key).map(|at| at.serial),
        "slot": yubikey(key).map(|at| &at.slot),
        "touch_policy": yubikey(key).and_then(|at| touch_policy_name(at.touch_policy)),
        "pin_policy": yubikey(key).and_then(|at| pin_policy_name(at.pin_policy)),
    })
}

/// The key's YubiKey slot, for keys on a YubiKey.
fn yubikey(key: &proto::Key) -> Option<&proto::YubiKeyLocation> {
    match &key.location {
        Some(proto::key::Location::Yubikey(at)) => Some(at),
        _ => None,
    }
}

fn touch_policy_name(value: i32) -> Option<&'static str> {
    match proto::TouchPolicy::try_from(value) {
        Ok(proto::TouchPolicy::Never) => Some("never"),
        Ok(proto::TouchPolicy::Cached) => Some("cached"),
        Ok(proto::TouchPolicy::Always) => Some("always"),
        _ => None,
    }
}

fn pin_policy_name(value: i32) -> Option<&'static str> {
    match proto::PinPolicy::try_from(value) {
        Ok(proto::PinPolicy::Once) => Some("once"),
        Ok(proto::PinPolicy::Always) => Some("always"),
        _ => None,
    }
}

/// Where a key is, in a few words: "software", "YubiKey 1002 slot 82", or another
/// backend's name (for progress lines and listings).
pub fn short_location(key: &proto::Key) -> String {
    match &key.location {
        Some(proto::key::Location::Yubikey(at)) => {
            format!("YubiKey {} slot {}", at.serial, at.slot)
        }
        Some(proto::key::Location::Software(_)) => "software".into(),
        Some(proto::key::Location::Other(other)) => other.backend.clone(),
        None => "unknown".into(),
    }
}

/// "YubiKey 1001 slot 9c (touch never, PIN always)" for device keys, else "".
fn location(key: &proto::Key) -> String {
    let Some(at) = yubikey(key) else {
        return String::new();
    };
    format!(
        "YubiKey {} slot {} (touch {}, PIN {})",
        at.serial,
        at.slot,
        touch_policy_name(at.touch_policy).unwrap_or("?"),
        pin_policy_name(at.pin_policy).unwrap_or("?")
    )
}

/// A multi-line description for people.
pub fn key_text(key: &proto::Key) -> String {
    format!(
        "keyid:        {}\nnotary keyid: {}\ngun:          {}\nrole:         {}\nbackend:      {} {}\ncreated:      {}\norigin:       {}\nexportable:   {}\nlast backup:  {}\navailable:    {}\n{}",
        key.keyid,
        key.notary_keyid,
        key.gun,
        key.role,
        backend_name(key),
        location(key),
        key.created_at,
        key.origin,
        key.exportable,
        if key.last_backup.is_empty() {
            "never"
        } else {
            &key.last_backup
        },
        key.available,
        key.public_pem.trim_end()
    )
}

/// One line per key in `key list`.
pub fn key_line(key: &proto::Key) -> String {
    format!(
        "{}  {:<10} {:<9} {}{}",
        key.keyid,
        key.role,
        backend_name(key),
        key.gun,
        yubikey(key)
            .map(|at| format!("  YubiKey {} slot {}", at.serial, at.slot))
            .unwrap_or_default()
    )
}

pub fn status_json(status: &proto::StatusResponse) -> Value {
    json!({
        "locked": status.locked,
        "key_count": status.key_count,
        "store": status.store,
        "passphrase_source": status.passphrase_source,
        "unreadable_files": status.unreadable_files,
        "version": status.version,
    })
}

pub fn status_text(status: &proto::StatusResponse) -> String {
    let mut text = format!(
        "tufkeyd {}\nkeystore: {} ({})\nkeys:     {}",
        status.version,
        status.store,
        if status.locked {
            "locked: run `tufkey unlock`".to_string()
        } else {
            format!("unlocked via {}", status.passphrase_source)
        },
        status.key_count
    );
    for file in &status.unreadable_files {
        text.push_str(&format!("\nunreadable: {file}"));
    }
    text
}

/// The backend's name: "software", "yubikey", or what another backend calls itself.
fn backend_name(key: &proto::Key) -> &str {
    match &key.location {
        Some(proto::key::Location::Software(_)) => "software",
        Some(proto::key::Location::Yubikey(_)) => "yubikey",
        Some(proto::key::Location::Other(other)) => &other.backend,
        None => "unknown",
    }
}

/// Prints JSON or text.
pub fn print(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

/// An error and its chain of causes on one line (the CLI prints one line per
/// failure); a cause whose text the line already has is not repeated.
pub fn one_line(error: &dyn std::error::Error) -> String {
    tufkey::with_causes(error.to_string(), error.source()).replace('\n', " ")
}
