//! Where the keystore passphrase comes from when nobody types it: the OS keyring
//! (kernel keyutils on Linux), or `TUFKEY_PASSPHRASE` for unattended use.

use super::error::{Result, SoftwareError};
use base64::Engine;
use rand_core::{OsRng, RngCore};
use secrecy::SecretString;
use std::path::Path;
use zeroize::Zeroizing;

/// The environment variable read for unattended use.
pub const ENV_VAR: &str = "TUFKEY_PASSPHRASE";
const KEYRING_SERVICE: &str = "tufkey";

/// Where an unlocking passphrase came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphraseSource {
    Keyring,
    Environment,
    Unlock,
}

impl PassphraseSource {
    /// The name shown in status replies.
    pub fn as_str(self) -> &'static str {
        match self {
            PassphraseSource::Keyring => "keyring",
            PassphraseSource::Environment => "environment",
            PassphraseSource::Unlock => "unlock",
        }
    }
}

/// An entry in the kernel keyring (keyutils): the user keyring of the daemon's uid.
///
/// The keyring crate's default keyutils entry resolves the *session* keyring (which a
/// daemon may get afresh, dying with it) and links each secret into the persistent
/// keyring (which the kernel refuses inside containers and user namespaces). The
/// user keyring is shared by every process of the uid, so a restarted daemon finds
/// its secret; it lasts until reboot or until the uid has no processes left.
fn kernel_keyring_entry(user: &str) -> keyring::Result<keyring::Entry> {
    let user_keyring =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::User, true)
            .map_err(|error| keyring::Error::PlatformFailure(Box::new(error)))?;
    let credential = keyring::keyutils::KeyutilsCredential {
        session: user_keyring,
        persistent: None,
        description: format!("keyring-rs:{user}@{KEYRING_SERVICE}"),
    };
    Ok(keyring::Entry::new_with_credential(Box::new(credential)))
}

/// The automatic sources, in the order they are tried.
pub struct AutomaticSources {
    keyring: Option<keyring::Entry>,
}

impl AutomaticSources {
    /// Sources for the store at `store`; `use_keyring = false` skips the OS keyring.
    pub fn new(store: &Path, use_keyring: bool) -> Self {
        let keyring = use_keyring
            .then(|| kernel_keyring_entry(&format!("keystore:{}", store.display())))
            .and_then(|entry| {
                entry
                    .map_err(|error| tracing::warn!(%error, "OS keyring unavailable"))
                    .ok()
            });
        AutomaticSources { keyring }
    }

    /// The first passphrase available, keyring first, then the environment.
    pub fn find(&self) -> Option<(SecretString, PassphraseSource)> {
        if let Some(entry) = &self.keyring {
            match entry.get_password() {
                Ok(secret) => return Some((SecretString::from(secret), PassphraseSource::Keyring)),
                Err(keyring::Error::NoEntry) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the keystore passphrase from the OS keyring failed")
                }
            }
        }
        std::env::var(ENV_VAR)
            .ok()
            .filter(|value| !value.is_empty())
            .map(|value| (SecretString::from(value), PassphraseSource::Environment))
    }

    /// For a brand-new store with nothing configured: a random secret, saved in the
    /// OS keyring so the next start finds it. `None` when there is no keyring.
    pub fn create_in_keyring(&self) -> Result<Option<SecretString>> {
        let Some(entry) = &self.keyring else {
            return Ok(None);
        };
        let mut random = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(random.as_mut());
        let secret = base64::engine::general_purpose::STANDARD_NO_PAD.encode(random.as_ref());
        entry
            .set_password(&secret)
            .map_err(|source| SoftwareError::Keyring {
                action: "saving a new keystore secret",
                source,
            })?;
        Ok(Some(SecretString::from(secret)))
    }
}
