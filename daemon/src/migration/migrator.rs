//! [`Migrator`]: the operations behind `tufkey backup`, `restore`, `import docker`,
//! `export docker`, `key move` and `transfer`, on top of the key registry. Handlers
//! decide who may do what (and audit it); this is where private keys are taken out
//! of a backend, wrapped, unwrapped and put into another, so they never pass through
//! a handler.
//!
//! Imports are all or nothing: everything is opened and checked first, then each
//! key is imported, and if one import fails the ones before it are deleted again.
//! Passphrase key derivations (age's scrypt, Notary's PBKDF2) run one at a time on
//! a blocking thread, so no caller can make the daemon derive many keys at once.

use super::bundle::{self, BundleKey, Unwrap, Wrap};
use super::notary_pem::{self, NotaryKeyBlock};
use super::transfer::{Receivers, Receiving};
use super::trust_dir;
use super::{backups::BackupLog, MigrationError};
use crate::blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{
    now_rfc3339, Gun, ImportedKey, KeyManager, KeyRecord, Location, Placement, Role,
    YubiKeyPlacement, YUBIKEY,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::VerifyingKey;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// A key on its way in: its description as it will be registered (what the policy
/// decides on), and its private half.
pub struct Incoming {
    pub record: KeyRecord,
    pub secret: p256::SecretKey,
    /// Where it came from, for messages: a bundle, a file name.
    pub source: String,
}

/// What an import did (or, in a dry run, would do).
#[derive(Default)]
pub struct Imported {
    pub imported: Vec<Arc<KeyRecord>>,
    /// Already present (same key ID): left as they are.
    pub skipped: Vec<Arc<KeyRecord>>,
}

/// A sealed bundle and its SHA-256.
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// One key block found in Docker / Notary files, not yet decrypted.
pub struct FoundBlock {
    pub file: String,
    pub role: Role,
    pub gun: Gun,
    pub encrypted: bool,
    /// The key ID its file name or `path:` claims.
    keyid_claimed: Option<String>,
    block: NotaryKeyBlock,
}

/// What a set of Docker / Notary files holds.
#[derive(Default)]
pub struct NotaryScan {
    pub found: Vec<FoundBlock>,
    /// Files (or blocks) left out, each with the reason.
    pub skipped: Vec<(String, String)>,
}

impl NotaryScan {
    /// The passphrase names (`root`, `targets`, ...) decrypting the blocks needs.
    pub fn passphrases_needed(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .found
            .iter()
            .filter(|found| found.encrypted)
            .map(|found| trust_dir::passphrase_name(&found.role))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }
}

/// A software key moved onto YubiKeys.
pub struct Moved {
    /// The key on each card, in the order the cards were given.
    pub keys: Vec<Arc<KeyRecord>>,
    pub software_copy_deleted: bool,
}

/// Backups, restores, transfers, Docker / Notary files and moves onto devices.
pub struct Migrator {
    keys: Arc<KeyManager>,
    backups: BackupLog,
    receivers: Receivers,
    /// The right to run a passphrase key derivation.
    derivation: Mutex<()>,
}

impl Migrator {
    /// A migrator over `keys`, keeping its record of backups in `backup_log`.
    pub fn new(keys: Arc<KeyManager>, backup_log: &Path, transfer_ttl: Duration) -> Result<Self> {
        Ok(Migrator {
            keys,
            backups: BackupLog::open(backup_log)?,
            receivers: Receivers::new(transfer_ttl),
            derivation: Mutex::new(()),
        })
    }

    /// When a backup last covered the key (RFC 3339), if one has.
    pub fn last_backup(&self, keyid: &str) -> Option<String> {
        self.backups.last_backup(keyid)
    }

    /// The keys a backup or export names: each of `ids`, plus every exportable key
    /// of `gun`; with neither, every exportable key. A named key that may not leave
    /// its backend is refused, not silently left out.
    pub async fn select(&self, ids: &[String], gun: Option<&Gun>) -> Result<Vec<Arc<KeyRecord>>> {
        let mut chosen: Vec<Arc<KeyRecord>> = Vec::new();
        for id in ids {
            let key = self.keys.get(id).await?;
            if !key.exportable {
                return Err(MigrationError::NotExportable {
                    keyid: key.keyid.clone(),
                }
                .into());
            }
            chosen.push(key);
        }
        if gun.is_some() || ids.is_empty() {
            chosen.extend(
                self.keys
                    .list(gun, None)
                    .into_iter()
                    .filter(|key| key.exportable),
            );
        }
        let mut seen = BTreeSet::new();
        chosen.retain(|key| seen.insert(key.keyid.clone()));
        if chosen.is_empty() {
            return Err(MigrationError::NothingToExport.into());
        }
        Ok(chosen)
    }

    /// Wraps `keys` into a bundle. A passphrase bundle is a backup: the keys it
    /// covered are recorded.
    pub async fn backup(&self, keys: &[Arc<KeyRecord>], wrap: Wrap) -> Result<Sealed> {
        let is_backup = matches!(wrap, Wrap::Passphrase(_));
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let (record, secret) = self.keys.export(&key.keyid).await?;
            entries.push(BundleKey::new(&record, secret, record.origin.as_str())?);
        }
        let bytes = self
            .derive(move || bundle::seal(&entries, wrap).map_err(Error::from))
            .await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if is_backup {
            let keyids: Vec<String> = keys.iter().map(|key| key.keyid.clone()).collect();
            self.backups.record(&keyids, &sha256, &now_rfc3339())?;
        }
        Ok(Sealed { bytes, sha256 })
    }

    /// Opens a backup bundle with its passphrase.
    pub async fn open_backup(
        &self,
        bundle: Vec<u8>,
        passphrase: SecretString,
    ) -> Result<Vec<Incoming>> {
        let keys = self
            .derive(move || {
                bundle::open(&bundle, Unwrap::Passphrase(passphrase)).map_err(Error::from)
            })
            .await?;
        Ok(keys.into_iter().map(incoming_from_bundle).collect())
    }

    /// A fresh receiving identity for a transfer.
    pub fn receive(&self) -> Result<Receiving> {
        Ok(self.receivers.create()?)
    }

    /// Opens a transfer bundle made for one of the receiving identities, which is
    /// then forgotten (unless this is a dry run).
    pub async fn open_transfer(&self, bundle: Vec<u8>, dry_run: bool) -> Result<Vec<Incoming>> {
        let keys = if dry_run {
            self.receivers.open(&bundle)?
        } else {
            self.receivers.accept(&bundle)?
        };
        Ok(keys.into_iter().map(incoming_from_bundle).collect())
    }

    /// Imports `incoming` into the default backend, all or nothing; keys already
    /// present are skipped. With `dry_run`, only says what would happen.
    pub async fn import(&self, incoming: Vec<Incoming>, dry_run: bool) -> Result<Imported> {
        let mut outcome = Imported::default();
        let mut to_import = Vec::new();
        let mut seen = BTreeSet::new();
        for key in incoming {
            if !seen.insert(key.record.keyid.clone()) {
                continue;
            }
            match self.keys.get(&key.record.keyid).await {
                Ok(present) => outcome.skipped.push(present),
                Err(error) if error.kind() == ErrorKind::NotFound => to_import.push(key),
                Err(error) => return Err(error),
            }
        }
        if dry_run {
            outcome.imported = to_import
                .into_iter()
                .map(|key| Arc::new(key.record))
                .collect();
            return Ok(outcome);
        }
        for key in to_import {
            let imported = self
                .keys
                .import(
                    None,
                    ImportedKey {
                        gun: key.record.gun.clone(),
                        role: key.record.role.clone(),
                        exportable: key.record.exportable,
                        secret: key.secret,
                        placement: Placement::Default,
                        created_at: Some(key.record.created_at.clone()),
                    },
                )
                .await;
            match imported {
                Ok(record) => outcome.imported.push(record),
                Err(error) => {
                    self.undo(&outcome.imported).await;
                    return Err(error);
                }
            }
        }
        Ok(outcome)
    }

    /// Deletes keys an import added before it failed.
    async fn undo(&self, imported: &[Arc<KeyRecord>]) {
        for record in imported {
            if let Err(error) = self.keys.delete_copy(record).await {
                tracing::error!(keyid = %record.keyid, %error, "could not take back a key of a failed import; delete it by hand");
            }
        }
    }

    /// Reads Docker / Notary key files without decrypting anything. `gun` is the
    /// collection for keys neither their headers nor their path tie to one.
    pub fn scan_notary(
        &self,
        files: &[(String, Vec<u8>)],
        gun: Option<&Gun>,
    ) -> Result<NotaryScan> {
        let mut scan = NotaryScan::default();
        for (file, contents) in files {
            let blocks = match notary_pem::parse_blocks(contents, file) {
                Ok(blocks) => blocks,
                Err(error) => {
                    scan.skipped.push((file.clone(), error.to_string()));
                    continue;
                }
            };
            for block in blocks {
                let name = match block.path() {
                    Some(path) => format!("{file} ({path})"),
                    None => file.clone(),
                };
                let hints = trust_dir::hints(block.path().unwrap_or(file));
                let Some(role) = block.role().map(str::to_owned).or(hints.role) else {
                    scan.skipped
                        .push((name, "no `role` header and no role in its path".into()));
                    continue;
                };
                let role: Role = match role.parse() {
                    Ok(role) => role,
                    Err(_) => {
                        scan.skipped.push((name, format!("role {role:?} is not a TUF role (root, targets, snapshot, timestamp, targets/<name>)")));
                        continue;
                    }
                };
                let gun = match block.gun().map(str::to_owned).or(hints.gun) {
                    Some(gun) => gun.parse::<Gun>()?,
                    None => gun.cloned().ok_or_else(|| MigrationError::NoGun {
                        file: name.clone(),
                        role: role.to_string(),
                    })?,
                };
                scan.found.push(FoundBlock {
                    file: name,
                    role,
                    gun,
                    encrypted: block.is_encrypted(),
                    keyid_claimed: hints.keyid,
                    block,
                });
            }
        }
        Ok(scan)
    }

    /// Decrypts what `scan` found with the passphrases by name. A wrong passphrase
    /// or a file whose key is not the one its name claims fails the whole import;
    /// key types tufkey cannot hold (RSA, ed25519) are added to the skipped files.
    pub async fn decrypt_notary(
        &self,
        scan: NotaryScan,
        passphrases: HashMap<String, SecretString>,
    ) -> Result<(Vec<Incoming>, Vec<(String, String)>)> {
        let mut skipped = scan.skipped;
        let mut incoming = Vec::new();
        for found in scan.found {
            let name = trust_dir::passphrase_name(&found.role);
            let passphrase = match (found.encrypted, passphrases.get(name)) {
                (false, _) => None,
                (true, Some(passphrase)) => Some(passphrase.clone()),
                (true, None) => {
                    return Err(MigrationError::NoPassphrase {
                        file: found.file,
                        name: name.to_owned(),
                    }
                    .into())
                }
            };
            let block = found.block;
            let decrypted = self
                .derive(move || block.decrypt(passphrase.as_ref()).map_err(Error::from))
                .await;
            let secret = match decrypted {
                Ok(secret) => secret,
                Err(error) if error.kind() == ErrorKind::Unsupported => {
                    skipped.push((found.file, error.to_string()));
                    continue;
                }
                Err(error) => return Err(error),
            };
            let record = KeyRecord::new(
                secret.public_key(),
                found.gun,
                found.role,
                Location::Software,
                now_rfc3339(),
                true,
            )
            .imported();
            if let Some(claimed) = found.keyid_claimed {
                if claimed != record.notary_keyid && claimed != record.keyid {
                    return Err(MigrationError::KeyIdMismatch {
                        file: found.file,
                        claimed,
                        actual: record.notary_keyid,
                    }
                    .into());
                }
            }
            incoming.push(Incoming {
                record,
                secret,
                source: found.file,
            });
        }
        Ok((incoming, skipped))
    }

    /// `keys` as Notary key files (`private/<notary key id>.key`), each encrypted
    /// with the passphrase for its role's name, or `default`; with `bundle`, with the
    /// `path:` headers `notary key import` wants.
    pub async fn export_notary(
        &self,
        keys: &[Arc<KeyRecord>],
        passphrases: &HashMap<String, SecretString>,
        bundle: bool,
    ) -> Result<Vec<(String, String)>> {
        let mut files = Vec::with_capacity(keys.len());
        for key in keys {
            let name = trust_dir::passphrase_name(&key.role);
            let passphrase = passphrases
                .get(name)
                .or_else(|| passphrases.get("default"))
                .cloned()
                .ok_or_else(|| MigrationError::NoPassphrase {
                    file: format!("private/{}.key", key.notary_keyid),
                    name: name.to_owned(),
                })?;
            let (record, secret) = self.keys.export(&key.keyid).await?;
            let role = record.role.to_string();
            let gun = trust_dir::has_gun_header(&record.role).then(|| record.gun.to_string());
            let path = bundle.then(|| record.notary_keyid.clone());
            let pem = self
                .derive(move || {
                    notary_pem::encrypt(
                        &secret,
                        &role,
                        gun.as_deref(),
                        path.as_deref(),
                        &passphrase,
                    )
                    .map_err(Error::from)
                })
                .await?;
            files.push((format!("private/{}.key", record.notary_keyid), pem));
        }
        Ok(files)
    }

    /// Puts a software key onto each card in `cards` (a primary and spares), checks a
    /// test signature from each against the public key, and then deletes the
    /// software copy unless `keep_software`. Refused unless a backup covers the key
    /// or `no_backup_needed`.
    pub async fn move_to_yubikey(
        &self,
        key: &Arc<KeyRecord>,
        cards: &[YubiKeyPlacement],
        no_backup_needed: bool,
        keep_software: bool,
    ) -> Result<Moved> {
        if key.location != Location::Software {
            return Err(MigrationError::NotASoftwareKey {
                keyid: key.keyid.clone(),
            }
            .into());
        }
        if !key.exportable {
            return Err(MigrationError::NotExportable {
                keyid: key.keyid.clone(),
            }
            .into());
        }
        if !no_backup_needed && self.last_backup(&key.keyid).is_none() {
            return Err(MigrationError::NoBackup {
                keyid: key.keyid.clone(),
            }
            .into());
        }
        if cards.is_empty() {
            return Err(Error::invalid(
                "serials",
                "name at least one YubiKey (--serial)",
            ));
        }
        // Taken once: after the first card, the registry names the card's copy.
        let (_, secret) = self.keys.export(&key.keyid).await?;
        let mut moved = Vec::with_capacity(cards.len());
        for card in cards {
            let copied = self
                .keys
                .import(
                    Some(YUBIKEY),
                    ImportedKey {
                        gun: key.gun.clone(),
                        role: key.role.clone(),
                        exportable: false,
                        secret: secret.clone(),
                        placement: Placement::YubiKey(*card),
                        created_at: Some(key.created_at.clone()),
                    },
                )
                .await;
            let checked = match copied {
                Ok(on_card) => {
                    let check = self.check_signature(key, &on_card).await;
                    moved.push(on_card);
                    check
                }
                Err(error) => Err(error),
            };
            if let Err(error) = checked {
                self.take_back(key, &moved).await;
                return Err(error);
            }
        }
        if !keep_software {
            self.keys.delete_copy(key).await?;
        }
        Ok(Moved {
            keys: moved,
            software_copy_deleted: !keep_software,
        })
    }

    /// Undoes a move that failed part way: removes the copies already on cards, so
    /// the key is the software key it was (and the move can be tried again).
    async fn take_back(&self, key: &Arc<KeyRecord>, copies: &[Arc<KeyRecord>]) {
        for copy in copies {
            if let Err(error) = self.keys.delete_copy(copy).await {
                tracing::error!(keyid = %key.keyid, location = ?copy.location, %error, "could not remove a card's copy of a key whose move failed; delete it with `tufkey key delete` on that card");
            }
        }
        if let Err(error) = self.keys.get(&key.keyid).await {
            tracing::error!(keyid = %key.keyid, %error, "the software key of a failed move is not found again");
        }
    }

    /// Signs a test digest with the copy on a card and checks it against the key.
    async fn check_signature(&self, key: &KeyRecord, on_card: &KeyRecord) -> Result<()> {
        let digest: [u8; 32] = Sha256::digest(
            format!("tufkey key move check {} {:?}", key.keyid, on_card.location).as_bytes(),
        )
        .into();
        let signature = self.keys.sign_digest(on_card, &digest).await?;
        VerifyingKey::from(&key.public_key)
            .verify_prehash(&digest, &signature)
            .map_err(|_| {
                Error::from(MigrationError::CardSignatureMismatch {
                    keyid: key.keyid.clone(),
                    location: format!("{:?}", on_card.location),
                })
            })
    }

    /// Runs a passphrase derivation (and what goes with it) on a blocking thread,
    /// one at a time.
    async fn derive<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.derivation.lock().await;
        blocking::run(work).await
    }
}

/// A bundle's key as it will be registered here: same key IDs, imported.
fn incoming_from_bundle(key: BundleKey) -> Incoming {
    let record = KeyRecord::new(
        key.public_key,
        key.gun,
        key.role,
        Location::Software,
        key.created_at,
        key.exportable,
    )
    .imported();
    Incoming {
        source: format!("bundle key {}", record.keyid),
        record,
        secret: key.secret,
    }
}
