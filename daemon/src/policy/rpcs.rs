//! Which permission each RPC needs: the table `tufkey policy check` explains
//! decisions with, and the one handlers ask for (a test checks that every RPC in
//! the .proto files is here). Health and reflection are never guarded.

use crate::access::Permission;
use crate::error::{Error, Result};

/// `(full method name, permission)` for every guarded RPC.
pub const RPCS: &[(&str, Permission)] = &[
    ("tufkey.v1.Keys/GenerateKey", Permission::KeysAdmin),
    ("tufkey.v1.Keys/ListKeys", Permission::KeysRead),
    ("tufkey.v1.Keys/GetKey", Permission::KeysRead),
    ("tufkey.v1.Keys/DeleteKey", Permission::KeysAdmin),
    ("tufkey.v1.Signing/SignRaw", Permission::Sign),
    ("tufkey.v1.Signing/SignMetadata", Permission::Sign),
    ("tufkey.v1.Session/Unlock", Permission::Session),
    ("tufkey.v1.Session/Lock", Permission::Session),
    ("tufkey.v1.Session/Status", Permission::Session),
    ("tufkey.v1.Devices/ListDevices", Permission::DevicesAdmin),
    ("tufkey.v1.Devices/WatchDevices", Permission::DevicesAdmin),
    ("tufkey.v1.Devices/InitDevice", Permission::DevicesAdmin),
    ("tufkey.v1.Devices/UnlockDevice", Permission::DevicesAdmin),
    ("tufkey.v1.Devices/AttestKey", Permission::DevicesAdmin),
    ("tufkey.v1.Policy/Check", Permission::Session),
    ("tufkey.v1.Audit/Verify", Permission::Session),
    ("tufkey.v1.Audit/Tail", Permission::Session),
    ("tufkey.v1.Migration/Backup", Permission::Transfer),
    ("tufkey.v1.Migration/Restore", Permission::Transfer),
    ("tufkey.v1.Migration/ImportNotaryKeys", Permission::Transfer),
    ("tufkey.v1.Migration/ExportNotaryKeys", Permission::Transfer),
    ("tufkey.v1.Migration/MoveToYubiKey", Permission::Transfer),
    ("tufkey.v1.Migration/ReceiveTransfer", Permission::Transfer),
    ("tufkey.v1.Migration/AcceptTransfer", Permission::Transfer),
    ("proto.KeyManagement/CreateKey", Permission::Notary),
    ("proto.KeyManagement/DeleteKey", Permission::Notary),
    ("proto.KeyManagement/GetKeyInfo", Permission::Notary),
    ("proto.Signer/Sign", Permission::Notary),
];

/// The RPC `name` means and the permission it needs. `name` is a full method
/// (`tufkey.v1.Signing/SignRaw`, a leading `/` allowed), `Service/Method`, or a bare
/// method name when only one service has it; case does not matter.
pub fn resolve(name: &str) -> Result<(&'static str, Permission)> {
    let wanted = name.trim_start_matches('/').to_ascii_lowercase();
    let matches: Vec<(&'static str, Permission)> = RPCS
        .iter()
        .copied()
        .filter(|(full, _)| {
            let full = full.to_ascii_lowercase();
            let (service, method) = full.split_once('/').unwrap_or(("", &full));
            let short_service = service.rsplit('.').next().unwrap_or(service);
            full == wanted || format!("{short_service}/{method}") == wanted || method == wanted
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::invalid(
            "rpc",
            format!(
                "{name:?} is not an RPC of tufkeyd (for example Signing/SignRaw, Signer/Sign; all: {})",
                RPCS.iter().map(|(full, _)| *full).collect::<Vec<_>>().join(", ")
            ),
        )),
        several => Err(Error::invalid(
            "rpc",
            format!(
                "{name:?} is ambiguous: say which service ({})",
                several
                    .iter()
                    .map(|(full, _)| *full)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_fully_by_service_or_alone_when_unique() {
        assert_eq!(
            resolve("/tufkey.v1.Signing/SignRaw").unwrap(),
            ("tufkey.v1.Signing/SignRaw", Permission::Sign)
        );
        assert_eq!(resolve("signer/sign").unwrap().1, Permission::Notary);
        assert_eq!(resolve("GenerateKey").unwrap().1, Permission::KeysAdmin);
        let ambiguous = resolve("DeleteKey").unwrap_err().to_string();
        assert!(
            ambiguous.contains("tufkey.v1.Keys/DeleteKey or proto.KeyManagement/DeleteKey"),
            "{ambiguous}"
        );
        assert_eq!(resolve("Keys/DeleteKey").unwrap().1, Permission::KeysAdmin);
        assert!(resolve("Export")
            .unwrap_err()
            .to_string()
            .contains("not an RPC"));
    }

    /// `(package.Service/Method)` for every rpc in a .proto file.
    fn rpcs_in(proto: &str) -> Vec<String> {
        let mut package = "";
        let mut service = "";
        let mut found = Vec::new();
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("package ") {
                package = rest.trim_end_matches(';');
            } else if let Some(rest) = line.strip_prefix("service ") {
                service = rest.trim_end_matches('{').trim();
            } else if let Some(rest) = line.strip_prefix("rpc ") {
                let method = rest.split('(').next().unwrap_or_default().trim();
                found.push(format!("{package}.{service}/{method}"));
            }
        }
        found
    }

    #[test]
    fn every_rpc_in_the_protos_needs_a_permission() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/proto");
        let mut declared = Vec::new();
        for file in ["tufkey/v1/tufkey.proto", "notary/signer.proto"] {
            declared.extend(rpcs_in(&std::fs::read_to_string(root.join(file)).unwrap()));
        }
        assert!(declared.len() >= RPCS.len(), "{declared:?}");
        let mut listed: Vec<&str> = RPCS.iter().map(|(full, _)| *full).collect();
        listed.sort_unstable();
        declared.sort_unstable();
        assert_eq!(declared, listed);
    }
}
