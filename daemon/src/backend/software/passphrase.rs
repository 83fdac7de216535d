//! Where the keystore passphrase comes from when nobody types it, in order: a
//! credential file readable only by the daemon's user (`--secret-file`, or systemd's
//! `LoadCredential=` as `$CREDENTIALS_DIRECTORY/tufkey-secret`), the OS keyring
//! (kernel keyutils on Linux), or `TUFKEY_PASSPHRASE` for unattended use.
//!
//! The credential file is what a dedicated service user needs: the keyring and the
//! environment are reachable by every process of the uid, while a 0600 file owned
//! by the service user is readable by that user alone, so a client that may sign
//! can still never decrypt the key files. A file that group or others could read is
//! refused rather than used, so a careless `chmod` is noticed at start.

use super::error::{Result, SoftwareError};
use super::files;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use secrecy::SecretString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable read for unattended use.
pub const ENV_VAR: &str = "TUFKEY_PASSPHRASE";
/// The name of the systemd credential (`LoadCredential=tufkey-secret:/etc/tufkey/secret`).
pub const CREDENTIAL_NAME: &str = "tufkey-secret";
const KEYRING_SERVICE: &str = "tufkey";
/// A secret file longer than this is not a secret file.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Where an unlocking passphrase came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphraseSource {
    SecretFile,
    Keyring,
    Environment,
    Unlock,
}

impl PassphraseSource {
    /// The name shown in status replies.
    pub fn as_str(self) -> &'static str {
        match self {
            PassphraseSource::SecretFile => "secret_file",
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

/// A file holding the keystore secret (its text, less one trailing newline),
/// readable by the daemon's user only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFile {
    /// `--secret-file PATH`: mode 0600 (or 0400) required. Missing, and the store
    /// brand-new, it is created 0600 with a random secret.
    Setting(PathBuf),
    /// systemd's `LoadCredential=`: `$CREDENTIALS_DIRECTORY/tufkey-secret`, skipped
    /// when the unit loads no such credential and never created. systemd keeps the
    /// directory private to the service and may grant the service's user read access
    /// with an ACL (which shows as group bits), so only access by others is refused.
    Credential(PathBuf),
}

impl SecretFile {
    /// The systemd credential in `credentials_directory` (`$CREDENTIALS_DIRECTORY`).
    pub fn credential_in(credentials_directory: &Path) -> Self {
        SecretFile::Credential(credentials_directory.join(CREDENTIAL_NAME))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            SecretFile::Setting(path) | SecretFile::Credential(path) => path,
        }
    }

    /// Permission bits that must be clear.
    fn forbidden_mode(&self) -> u32 {
        match self {
            SecretFile::Setting(_) => 0o077,
            SecretFile::Credential(_) => 0o007,
        }
    }

    fn problem(&self, problem: impl Into<String>) -> SoftwareError {
        SoftwareError::SecretFile {
            path: self.path().to_path_buf(),
            problem: problem.into(),
        }
    }

    /// The secret, `None` when the file does not exist. A file that group or others
    /// may read, that is not a regular file, or that is empty is an error saying how
    /// to fix it. The mode is checked on the opened file, so a swap cannot slip by.
    fn read(&self) -> Result<Option<SecretString>> {
        let path = self.path();
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits(),
            )
            .open(path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                let uid = nix::unistd::geteuid();
                return Err(self.problem(format!(
                    "cannot read it ({error}): give it to the daemon's user (uid {uid}): \
                     `chown {uid} {0} && chmod 600 {0}`",
                    path.display()
                )));
            }
            Err(error) if error.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                return Err(
                    self.problem("it is a symbolic link, which is refused: name the file itself")
                )
            }
            Err(error) => return Err(self.problem(format!("cannot open it: {error}"))),
        };
        let metadata = file
            .metadata()
            .map_err(|error| self.problem(format!("cannot inspect it: {error}")))?;
        if !metadata.file_type().is_file() {
            return Err(self.problem("not a regular file"));
        }
        let mode = metadata.mode() & 0o777;
        if mode & self.forbidden_mode() != 0 {
            return Err(self.problem(format!(
                "mode {mode:04o} lets other users read the keystore secret: run `chmod 600 {}` \
                 (and keep it owned by the daemon's user, uid {})",
                path.display(),
                nix::unistd::geteuid()
            )));
        }
        // Room for all of it up front, so no reallocation leaves a copy behind.
        let mut text = Zeroizing::new(String::with_capacity(MAX_SECRET_FILE_BYTES as usize + 2));
        (&mut file)
            .take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|error| self.problem(format!("cannot read it as UTF-8 text: {error}")))?;
        if text.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(self.problem(format!(
                "longer than {MAX_SECRET_FILE_BYTES} bytes: it should hold the secret alone"
            )));
        }
        let secret = text.strip_suffix('\n').unwrap_or(&text);
        let secret = secret.strip_suffix('\r').unwrap_or(secret);
        if secret.is_empty() {
            return Err(self.problem(
                "it is empty: write the secret into it, or (for a new keystore) remove it and \
                 tufkeyd creates one",
            ));
        }
        Ok(Some(SecretString::from(secret.to_owned())))
    }

    /// Writes a new random secret (0600, never replacing a file), for a new store.
    fn create(&self) -> Result<Option<SecretString>> {
        let SecretFile::Setting(path) = self else {
            return Ok(None);
        };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(self
                .problem("not a file name: give --secret-file a path such as /etc/tufkey/secret"));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if !dir.is_dir() {
            return Err(self.problem(format!(
                "cannot create it: directory {} does not exist; create it, writable by the \
                 daemon's user",
                dir.display()
            )));
        }
        let secret = random_secret();
        files::write_new_file_atomically(&super::durable::OsDisk, dir, name, secret.as_bytes())?;
        tracing::info!(file = %path.display(), "new keystore: created a random passphrase in the secret file (mode 0600)");
        Ok(Some(SecretString::from(secret.to_string())))
    }
}

/// 32 random bytes, base64: the secret made for a new store.
fn random_secret() -> Zeroizing<String> {
    let mut random = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(random.as_mut());
    Zeroizing::new(base64::engine::general_purpose::STANDARD_NO_PAD.encode(random.as_ref()))
}

/// The automatic sources, in the order they are tried.
pub struct AutomaticSources {
    secret_file: Option<SecretFile>,
    keyring: Option<keyring::Entry>,
    environment: Option<SecretString>,
}

impl AutomaticSources {
    /// Sources for the store at `store`: `secret_file` first, then the OS keyring
    /// unless `use_keyring` is false, then `environment` (the value
    /// `TUFKEY_PASSPHRASE` had at start; the daemon removes the variable once read,
    /// so it is never read from the environment here). A secret file that
    /// exists but is unusable (readable by others, empty, not ours) is an error here,
    /// so the daemon refuses to start rather than run with an exposed secret.
    pub fn new(
        store: &Path,
        use_keyring: bool,
        secret_file: Option<SecretFile>,
        environment: Option<SecretString>,
    ) -> Result<Self> {
        if let Some(file) = &secret_file {
            file.read()?;
        }
        let keyring = use_keyring
            .then(|| kernel_keyring_entry(&format!("keystore:{}", store.display())))
            .and_then(|entry| {
                entry
                    .map_err(|error| tracing::warn!(%error, "OS keyring unavailable"))
                    .ok()
            });
        Ok(AutomaticSources {
            secret_file,
            keyring,
            environment,
        })
    }

    /// The first passphrase available: secret file, keyring, environment.
    pub fn find(&self) -> Option<(SecretString, PassphraseSource)> {
        if let Some(file) = &self.secret_file {
            match file.read() {
                Ok(Some(secret)) => return Some((secret, PassphraseSource::SecretFile)),
                Ok(None) => {
                    tracing::debug!(file = %file.path().display(), "no keystore secret file")
                }
                Err(error) => tracing::error!(%error, "not using the keystore secret file"),
            }
        }
        if let Some(entry) = &self.keyring {
            match entry.get_password() {
                Ok(secret) => return Some((SecretString::from(secret), PassphraseSource::Keyring)),
                Err(keyring::Error::NoEntry) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the keystore passphrase from the OS keyring failed")
                }
            }
        }
        self.environment
            .clone()
            .map(|passphrase| (passphrase, PassphraseSource::Environment))
    }

    /// For a brand-new store with nothing configured: a random secret, saved where
    /// the next start finds it: the `--secret-file` (created 0600), else the OS
    /// keyring. `None` when there is neither.
    pub fn create_for_new_store(&self) -> Result<Option<(SecretString, PassphraseSource)>> {
        if let Some(file) = &self.secret_file {
            if let Some(secret) = file.create()? {
                return Ok(Some((secret, PassphraseSource::SecretFile)));
            }
        }
        let Some(entry) = &self.keyring else {
            return Ok(None);
        };
        let secret = random_secret();
        entry
            .set_password(&secret)
            .map_err(|source| SoftwareError::Keyring {
                action: "saving a new keystore secret",
                source,
            })?;
        tracing::info!("new keystore: created a random passphrase in the OS keyring");
        Ok(Some((
            SecretString::from(secret.to_string()),
            PassphraseSource::Keyring,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn file_with(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_gives_its_secret_without_the_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "s3cret words\n", 0o600);
        let secret = SecretFile::Setting(path).read().unwrap().unwrap();
        assert_eq!(secret.expose_secret(), "s3cret words");
    }

    #[test]
    fn a_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o644] {
            let path = file_with(dir.path(), "s3cret", mode);
            let error = SecretFile::Setting(path.clone())
                .read()
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("chmod 600 {}", path.display())),
                "{mode:o}: {error}"
            );
        }
        // A systemd credential may show group bits (its ACL mask), never world ones.
        let path = file_with(dir.path(), "s3cret", 0o440);
        assert!(SecretFile::Credential(path.clone())
            .read()
            .unwrap()
            .is_some());
        let path = file_with(dir.path(), "s3cret", 0o444);
        assert!(SecretFile::Credential(path).read().is_err());
    }

    #[test]
    fn an_empty_file_is_refused_and_a_missing_one_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "\n", 0o600);
        let error = SecretFile::Setting(path).read().unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");
        let missing = SecretFile::credential_in(&dir.path().join("nowhere"));
        assert!(missing.read().unwrap().is_none());
        assert!(
            missing.create().unwrap().is_none(),
            "credentials are never made"
        );
    }

    #[test]
    fn a_new_stores_file_is_created_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretFile::Setting(dir.path().join("secret"));
        let sources = AutomaticSources::new(dir.path(), false, Some(file.clone()), None).unwrap();
        let (created, source) = sources.create_for_new_store().unwrap().unwrap();
        assert_eq!(source, PassphraseSource::SecretFile);
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (found, source) = sources.find().unwrap();
        assert_eq!(source, PassphraseSource::SecretFile);
        assert_eq!(found.expose_secret(), created.expose_secret());
        assert!(created.expose_secret().len() >= 40);
        assert!(
            file.create().is_err(),
            "an existing secret file is never replaced"
        );
    }

    #[test]
    fn a_secret_file_in_a_missing_directory_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretFile::Setting(dir.path().join("etc/tufkey/secret"));
        let error = file.create().unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
    }
}
