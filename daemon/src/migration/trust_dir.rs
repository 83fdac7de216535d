//! What a Docker / Notary trust directory's layout says about a key when its PEM
//! headers do not: Notary 0.4+ writes `private/<keyid>.key` with `role` and `gun`
//! headers, but older releases left the role and gun in the path
//! (`private/root_keys/<keyid>.key`, `private/tuf_keys/<gun>/<keyid>.key`, and
//! `<keyid>_<role>.key` before 0.3). `notary key export` bundles carry the same
//! paths in a `path:` header. Also: which passphrase Notary encrypts a role's key
//! with (its `NOTARY_<NAME>_PASSPHRASE`).

use crate::keys::Role;

/// What a key file's path says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PathHints {
    /// The key ID the file is named after.
    pub keyid: Option<String>,
    pub role: Option<String>,
    pub gun: Option<String>,
}

/// Reads `path` (a file name relative to the trust directory, or a bundle's `path:`
/// header), with or without the leading `private/` and the `.key` suffix.
pub fn hints(path: &str) -> PathHints {
    let path = path.trim_start_matches("./");
    let path = path.strip_prefix("private/").unwrap_or(path);
    let path = path.strip_suffix(".key").unwrap_or(path);
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let (keyid, named_role) = match name.split_once('_') {
        Some((keyid, role)) if is_keyid(keyid) => (Some(keyid), Some(role)),
        _ => (is_keyid(name).then_some(name), None),
    };
    let (dir_role, gun) = if dir == "root_keys" {
        (Some("root"), None)
    } else if let Some(gun) = dir.strip_prefix("tuf_keys/") {
        (None, Some(gun))
    } else {
        (None, None)
    };
    PathHints {
        keyid: keyid.map(str::to_owned),
        role: named_role.or(dir_role).map(str::to_owned),
        gun: gun.filter(|gun| !gun.is_empty()).map(str::to_owned),
    }
}

/// The name of the passphrase Notary encrypts `role`'s keys with: `root`,
/// `targets`, `snapshot`, `timestamp`, or `delegation` for every delegated role.
pub fn passphrase_name(role: &Role) -> &'static str {
    match role.as_str() {
        "root" => "root",
        "targets" => "targets",
        "snapshot" => "snapshot",
        "timestamp" => "timestamp",
        _ => "delegation",
    }
}

/// Whether Notary writes a `gun` header for `role`'s keys (root and delegation keys
/// are not tied to one collection).
pub fn has_gun_header(role: &Role) -> bool {
    !matches!(passphrase_name(role), "root" | "delegation")
}

fn is_keyid(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5a3c9f2e1d0b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";

    #[test]
    fn every_notary_layout_names_what_it_can() {
        assert_eq!(
            hints(&format!("private/{ID}.key")),
            PathHints {
                keyid: Some(ID.into()),
                ..PathHints::default()
            }
        );
        assert_eq!(
            hints(&format!("private/root_keys/{ID}.key")),
            PathHints {
                keyid: Some(ID.into()),
                role: Some("root".into()),
                gun: None,
            }
        );
        assert_eq!(
            hints(&format!("tuf_keys/docker.io/acme/app/{ID}")),
            PathHints {
                keyid: Some(ID.into()),
                role: None,
                gun: Some("docker.io/acme/app".into()),
            }
        );
        assert_eq!(
            hints(&format!(
                "private/tuf_keys/example.com/app/{ID}_snapshot.key"
            )),
            PathHints {
                keyid: Some(ID.into()),
                role: Some("snapshot".into()),
                gun: Some("example.com/app".into()),
            }
        );
        assert_eq!(hints("backup.pem"), PathHints::default());
    }

    #[test]
    fn passphrases_and_gun_headers_follow_notary() {
        let role = |name: &str| name.parse::<Role>().unwrap();
        assert_eq!(passphrase_name(&role("root")), "root");
        assert_eq!(passphrase_name(&role("targets/releases")), "delegation");
        assert_eq!(passphrase_name(&role("snapshot")), "snapshot");
        assert!(has_gun_header(&role("targets")));
        assert!(!has_gun_header(&role("root")));
        assert!(!has_gun_header(&role("targets/releases")));
    }
}
