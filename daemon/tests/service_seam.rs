//! The service layer reaches backends only through the `KeyBackend` trait and its
//! capabilities: no file under `src/service/` may name a concrete backend, its
//! module, its error type or the crates only a backend should talk to.

use std::path::Path;

/// Text that would mean a handler knows a concrete backend.
const FORBIDDEN: &[&str] = &[
    "crate::backend",
    "SoftwareBackend",
    "YubiKeyBackend",
    "SoftwareError",
    "YubiKeyError",
    "software::",
    "yubikey::",
    "pcsc::",
];

#[test]
fn no_service_module_names_a_concrete_backend() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/service");
    let mut checked = 0;
    let mut offences = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/service exists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            for needle in FORBIDDEN {
                if line.contains(needle) {
                    offences.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 6,
        "expected the service modules, found {checked} files"
    );
    assert!(
        offences.is_empty(),
        "service code must use the KeyBackend seam, not concrete backends:\n{}",
        offences.join("\n")
    );
}
