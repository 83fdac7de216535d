//! `tufkey.v1.Migration`: backups, restores, transfers, Docker / Notary key files
//! and moves onto YubiKeys. The handlers decode requests, ask the policy for the
//! `transfer` permission on every key a call touches (a key on its way in is
//! checked as it will be registered), and leave every private key to
//! [`Migrator`]; the guard audits each call with the keys it touched and the
//! SHA-256 of the bundle it read or wrote.

use super::convert::{key_with_backup, optional_gun, yubikey_placement};
use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
use crate::error::{Error, Result};
use crate::keys::{KeyManager, KeyRecord};
use crate::migration::bundle::Wrap;
use crate::migration::transfer;
use crate::migration::{Imported, Incoming, Migrator};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;

/// Handlers for moving keys between hosts and tools.
pub struct MigrationService {
    keys: Arc<KeyManager>,
    migrator: Arc<Migrator>,
    guard: Arc<Guard>,
}

impl MigrationService {
    pub fn new(keys: Arc<KeyManager>, migrator: Arc<Migrator>, guard: Arc<Guard>) -> Self {
        MigrationService {
            keys,
            migrator,
            guard,
        }
    }

    /// A key's description, with when a backup last covered it.
    fn key(&self, record: &KeyRecord) -> pb::Key {
        key_with_backup(&self.keys, &self.migrator, record)
    }

    /// The keys a request names, each checked for `transfer`.
    async fn selected(
        &self,
        call: &mut Call,
        keyids: &[String],
        gun: &str,
    ) -> Result<Vec<Arc<KeyRecord>>> {
        self.guard.check(call, Permission::Transfer, None)?;
        let keys = self
            .migrator
            .select(keyids, optional_gun(gun)?.as_ref())
            .await?;
        for key in &keys {
            self.guard.check(call, Permission::Transfer, Some(key))?;
        }
        Ok(keys)
    }

    async fn backup(
        &self,
        call: &mut Call,
        request: pb::BackupRequest,
    ) -> Result<pb::BackupResponse> {
        let wrap = match request.wrap {
            Some(pb::backup_request::Wrap::Passphrase(passphrase)) => {
                Wrap::Passphrase(nonempty_passphrase(passphrase)?)
            }
            Some(pb::backup_request::Wrap::Recipient(recipient)) => {
                Wrap::Recipient(recipient.trim().parse().map_err(|reason: &str| {
                    Error::invalid(
                        "recipient",
                        format!("{recipient:?} is not an age X25519 recipient (age1...): {reason}"),
                    )
                })?)
            }
            None => {
                return Err(Error::invalid(
                    "wrap",
                    "give a passphrase (a backup) or a recipient (a transfer)",
                ))
            }
        };
        let recipient_fingerprint = match &wrap {
            Wrap::Recipient(recipient) => transfer::fingerprint(&recipient.to_string()),
            Wrap::Passphrase(_) => String::new(),
        };
        let keys = self.selected(call, &request.keyids, &request.gun).await?;
        let sealed = self.migrator.backup(&keys, wrap).await?;
        call.payload(&Sha256::digest(&sealed.bytes).into());
        Ok(pb::BackupResponse {
            keys: keys.iter().map(|key| self.key(key)).collect(),
            bundle: sealed.bytes,
            sha256: sealed.sha256,
            recipient_fingerprint,
        })
    }

    /// Checks every incoming key for `transfer`, then imports them all or none.
    async fn import(
        &self,
        call: &mut Call,
        incoming: Vec<Incoming>,
        dry_run: bool,
    ) -> Result<Imported> {
        for key in &incoming {
            let record = Arc::new(key.record.clone());
            self.guard
                .check(call, Permission::Transfer, Some(&record))?;
        }
        self.migrator.import(incoming, dry_run).await
    }

    fn restored(&self, imported: &Imported) -> pb::RestoreResponse {
        pb::RestoreResponse {
            imported: imported.imported.iter().map(|key| self.key(key)).collect(),
            skipped: imported.skipped.iter().map(|key| self.key(key)).collect(),
        }
    }

    async fn restore(
        &self,
        call: &mut Call,
        request: pb::RestoreRequest,
    ) -> Result<pb::RestoreResponse> {
        self.guard.check(call, Permission::Transfer, None)?;
        call.payload(&Sha256::digest(&request.bundle).into());
        let passphrase = nonempty_passphrase(request.passphrase)?;
        let incoming = self
            .migrator
            .open_backup(request.bundle, passphrase)
            .await?;
        let imported = self.import(call, incoming, request.dry_run).await?;
        Ok(self.restored(&imported))
    }

    fn receive(&self, call: &mut Call) -> Result<pb::ReceiveTransferResponse> {
        self.guard.check(call, Permission::Transfer, None)?;
        let receiving = self.migrator.receive()?;
        Ok(pb::ReceiveTransferResponse {
            recipient: receiving.recipient,
            fingerprint: receiving.fingerprint,
            expires_at: receiving.expires_at,
        })
    }

    async fn accept(
        &self,
        call: &mut Call,
        request: pb::AcceptTransferRequest,
    ) -> Result<pb::RestoreResponse> {
        self.guard.check(call, Permission::Transfer, None)?;
        call.payload(&Sha256::digest(&request.bundle).into());
        let incoming = self
            .migrator
            .open_transfer(request.bundle, request.dry_run)
            .await?;
        let imported = self.import(call, incoming, request.dry_run).await?;
        Ok(self.restored(&imported))
    }

    async fn import_notary(
        &self,
        call: &mut Call,
        request: pb::ImportNotaryKeysRequest,
    ) -> Result<pb::ImportNotaryKeysResponse> {
        self.guard.check(call, Permission::Transfer, None)?;
        let files: Vec<(String, Vec<u8>)> = request
            .files
            .into_iter()
            .map(|file| (file.name, file.contents))
            .collect();
        let scan = self
            .migrator
            .scan_notary(&files, optional_gun(&request.gun)?.as_ref())?;
        if request.dry_run {
            return Ok(pb::ImportNotaryKeysResponse {
                passphrases_needed: scan.passphrases_needed(),
                keys: scan
                    .found
                    .iter()
                    .map(|found| pb::NotaryKeyFound {
                        file: found.file.clone(),
                        role: found.role.to_string(),
                        gun: found.gun.to_string(),
                        encrypted: found.encrypted,
                        key: None,
                        already_present: false,
                    })
                    .collect(),
                skipped: skipped_to_proto(scan.skipped),
            });
        }
        let (incoming, skipped) = self
            .migrator
            .decrypt_notary(scan, passphrases(request.passphrases))
            .await?;
        let files: HashMap<String, String> = incoming
            .iter()
            .map(|key| (key.record.keyid.clone(), key.source.clone()))
            .collect();
        let imported = self.import(call, incoming, false).await?;
        let found = |key: &Arc<KeyRecord>, already_present: bool| pb::NotaryKeyFound {
            file: files.get(&key.keyid).cloned().unwrap_or_default(),
            role: key.role.to_string(),
            gun: key.gun.to_string(),
            encrypted: true,
            key: Some(self.key(key)),
            already_present,
        };
        Ok(pb::ImportNotaryKeysResponse {
            keys: imported
                .imported
                .iter()
                .map(|key| found(key, false))
                .chain(imported.skipped.iter().map(|key| found(key, true)))
                .collect(),
            skipped: skipped_to_proto(skipped),
            passphrases_needed: Vec::new(),
        })
    }

    async fn export_notary(
        &self,
        call: &mut Call,
        request: pb::ExportNotaryKeysRequest,
    ) -> Result<pb::ExportNotaryKeysResponse> {
        let keys = self.selected(call, &request.keyids, &request.gun).await?;
        let files = self
            .migrator
            .export_notary(&keys, &passphrases(request.passphrases), request.bundle)
            .await?;
        Ok(pb::ExportNotaryKeysResponse {
            files: files
                .into_iter()
                .map(|(name, pem)| pb::NotaryKeyFile {
                    name,
                    contents: pem.into_bytes(),
                })
                .collect(),
            keys: keys.iter().map(|key| self.key(key)).collect(),
        })
    }

    async fn move_key(
        &self,
        call: &mut Call,
        request: pb::MoveToYubiKeyRequest,
    ) -> Result<pb::MoveToYubiKeyResponse> {
        let key = self.keys.get(&request.keyid).await?;
        self.guard.check(call, Permission::Transfer, Some(&key))?;
        let cards = request
            .serials
            .iter()
            .map(|&serial| yubikey_placement(serial, &request.slot, request.touch_policy, false))
            .collect::<Result<Vec<_>>>()?;
        let moved = self
            .migrator
            .move_to_yubikey(
                &key,
                &cards,
                request.no_backup_needed,
                request.keep_software,
            )
            .await?;
        Ok(pb::MoveToYubiKeyResponse {
            keys: moved.keys.iter().map(|key| self.key(key)).collect(),
            software_copy_deleted: moved.software_copy_deleted,
        })
    }
}

/// A passphrase from a request, refused when empty.
fn nonempty_passphrase(passphrase: String) -> Result<SecretString> {
    let passphrase = SecretString::from(passphrase);
    if passphrase.expose_secret().is_empty() {
        return Err(Error::invalid("passphrase", "must not be empty"));
    }
    Ok(passphrase)
}

/// Passphrases by name, each moved into a zeroising secret; empty ones dropped.
fn passphrases(given: HashMap<String, String>) -> HashMap<String, SecretString> {
    given
        .into_iter()
        .filter(|(_, passphrase)| !passphrase.is_empty())
        .map(|(name, passphrase)| (name.to_ascii_lowercase(), SecretString::from(passphrase)))
        .collect()
}

fn skipped_to_proto(skipped: Vec<(String, String)>) -> Vec<pb::SkippedFile> {
    skipped
        .into_iter()
        .map(|(file, reason)| pb::SkippedFile { file, reason })
        .collect()
}

#[tonic::async_trait]
impl pb::migration_server::Migration for MigrationService {
    #[tracing::instrument(skip_all)]
    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<pb::BackupResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::Backup)?;
        let result = self.backup(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn restore(
        &self,
        request: Request<pb::RestoreRequest>,
    ) -> Result<Response<pb::RestoreResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::Restore)?;
        let result = self.restore(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn import_notary_keys(
        &self,
        request: Request<pb::ImportNotaryKeysRequest>,
    ) -> Result<Response<pb::ImportNotaryKeysResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::ImportNotaryKeys)?;
        let result = self.import_notary(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn export_notary_keys(
        &self,
        request: Request<pb::ExportNotaryKeysRequest>,
    ) -> Result<Response<pb::ExportNotaryKeysResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::ExportNotaryKeys)?;
        let result = self.export_notary(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn move_to_yubi_key(
        &self,
        request: Request<pb::MoveToYubiKeyRequest>,
    ) -> Result<Response<pb::MoveToYubiKeyResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::MoveToYubiKey)?;
        let result = self.move_key(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn receive_transfer(
        &self,
        request: Request<pb::ReceiveTransferRequest>,
    ) -> Result<Response<pb::ReceiveTransferResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::ReceiveTransfer)?;
        let result = self.receive(&mut call);
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn accept_transfer(
        &self,
        request: Request<pb::AcceptTransferRequest>,
    ) -> Result<Response<pb::RestoreResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::AcceptTransfer)?;
        let result = self.accept(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}
