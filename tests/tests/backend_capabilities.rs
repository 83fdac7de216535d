//! Optional backend capabilities, discovered through the `KeyBackend` trait by the
//! registry: the real software keystore imports and exports keys (export only for
//! keys created exportable), a backend without those capabilities says so, and a
//! placement for a backend that is off names the reason.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::VerifyingKey;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tufkey_e2e::memory_backend::MemoryBackend;
use tufkeyd::backend::software::{SoftwareBackend, SoftwareConfig};
use tufkeyd::error::ErrorKind;
use tufkeyd::keys::{
    Backends, ImportedKey, KeyManager, NewKey, Placement, YubiKeyPlacement, SOFTWARE,
};
use tufkeyd::tuf::key_json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_software_keystore_imports_and_exports_only_exportable_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let software = SoftwareBackend::start(&SoftwareConfig {
        dir: store.clone(),
        use_keyring: false,
        idle_timeout: Duration::from_secs(600),
        secret_file: None,
        environment_passphrase: None,
    })
    .await
    .unwrap();
    let mut backends = Backends::new();
    backends.register(software.clone()).unwrap();
    backends
        .register(Arc::new(MemoryBackend::new("pw")))
        .unwrap();
    backends.switched_off(
        "yubikey",
        "YubiKey support is off: tufkeyd was started with --no-yubikey".into(),
    );
    let keys = KeyManager::new(backends).await.unwrap();
    keys.unlocker()
        .unwrap()
        .unlock(SecretString::from("capability test passphrase"))
        .await
        .unwrap();

    // Import: the key keeps its identity and signs.
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let public = secret.public_key();
    let imported = keys
        .import(
            None,
            ImportedKey {
                gun: "example.com/app".parse().unwrap(),
                role: "root".parse().unwrap(),
                exportable: true,
                secret: secret.clone(),
                placement: Placement::Default,
                created_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(imported.keyid, key_json::tuf_keyid(&public));
    assert_eq!(imported.location.backend(), SOFTWARE);
    assert!(store
        .join("keys")
        .join(format!("{}.key", imported.keyid))
        .exists());
    let digest = [7u8; 32];
    let signature = keys.sign_digest(&imported, &digest).await.unwrap();
    VerifyingKey::from(&public)
        .verify_prehash(&digest, &signature)
        .unwrap();

    // Export gives back the very scalar, for an exportable key only.
    let (exported_key, exported) = keys.export(&imported.keyid).await.unwrap();
    assert_eq!(exported_key.keyid, imported.keyid);
    assert_eq!(exported.to_bytes(), secret.to_bytes());
    let sealed_in = keys
        .generate(&NewKey {
            gun: "example.com/app".parse().unwrap(),
            role: "targets".parse().unwrap(),
            exportable: false,
            placement: Placement::Software,
        })
        .await
        .unwrap();
    let refused = keys.export(&sealed_in.keyid).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("non-exportable"), "{refused}");

    // The memory backend has neither capability; the registry says so.
    let no_import = keys
        .import(
            Some("memory"),
            ImportedKey {
                gun: "example.com/app".parse().unwrap(),
                role: "root".parse().unwrap(),
                exportable: false,
                secret: p256::SecretKey::random(&mut rand_core::OsRng),
                placement: Placement::Default,
                created_at: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(no_import.kind(), ErrorKind::FailedPrecondition);
    assert!(
        no_import
            .to_string()
            .contains("memory backend cannot take in private keys"),
        "{no_import}"
    );

    // A placement for a backend that is off names why.
    let off = keys
        .generate(&NewKey {
            gun: "example.com/app".parse().unwrap(),
            role: "root".parse().unwrap(),
            exportable: false,
            placement: Placement::YubiKey(YubiKeyPlacement::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(off.kind(), ErrorKind::FailedPrecondition);
    assert!(off.to_string().contains("--no-yubikey"), "{off}");

    // Backend errors keep their source: a wrong passphrase is the keystore's own
    // error, reported as unauthenticated with the store's path.
    keys.unlocker().unwrap().lock();
    let wrong = keys
        .unlocker()
        .unwrap()
        .unlock(SecretString::from("not it"))
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Unauthenticated);
    let tufkeyd::error::Error::Backend(backend) = &wrong else {
        panic!("expected the keystore's own error, got {wrong:?}");
    };
    assert!(matches!(
        backend.downcast_ref::<tufkeyd::backend::software::SoftwareError>(),
        Some(tufkeyd::backend::software::SoftwareError::WrongPassphrase(path)) if path == &store
    ));
}
