//! The software keystore's keys in PostgreSQL, shared by replicas.
//!
//! Same sealing, same unlock as on disk: each row holds the exact bytes a key file
//! would (the public description in the clear, the private scalar sealed with the
//! store key, the description with the exportable flag and the origin bound in as
//! associated data), and the one store row holds what `store.json` would. The store
//! secret never reaches the database: every replica gets it from its own
//! `--secret-file` (or `TUFKEY_PASSPHRASE`). No cryptography of its own here.
//!
//! A key is created or deleted in one transaction that also announces it
//! (`pg_notify`), so it is never half-visible, and every replica hears of it the
//! moment it commits ([`listen`]): a deleted key's decrypted signer is dropped and
//! the registry reloads. A key created elsewhere is also found on demand, through
//! the seam's `find`.
//!
//! While the database is unreachable, keys whose rows this replica has read keep
//! working (signers already decrypted keep signing, and the sealed rows already
//! read can still be decrypted); creating, deleting and looking up keys it has not
//! seen fail with UNAVAILABLE naming the database. A replica cut off from the
//! database cannot hear of deletions until it reconnects, which it does by itself,
//! reading every key again.

mod connect;
mod error;
mod listen;
mod schema;

pub use error::PostgresError;

use super::directory::Scan;
use super::error::{FileProblem, Result, SoftwareError};
use super::key_file::{StoreFile, StoredKey};
use super::manifest::ManifestKey;
use super::storage::{ChangeSink, KeyStorage};
use crate::shutdown::Stopping;
use async_trait::async_trait;
use connect::Connector;
use deadpool_postgres::{Client, Pool};
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the keystore's database is and how to log in (`--postgres-url`,
/// `--postgres-password-file`, `--postgres-ca`).
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// `postgres://USER@HOST:PORT/DB`, without a password (checked by [`PostgresConfig::new`]).
    pub url: String,
    /// The password file, read at start; wins over [`PostgresConfig::password`].
    pub password_file: Option<PathBuf>,
    /// `TUFKEYD_POSTGRES_PASSWORD`, taken out of the environment at start by
    /// `tufkeyd`'s hardening; zeroised on drop.
    pub password: Option<SecretString>,
    /// CA certificate(s) for the database's TLS certificate; TLS is then required.
    pub ca: Option<PathBuf>,
}

impl PostgresConfig {
    /// A configuration for `url`, refused when it holds a password.
    pub fn new(
        url: String,
        password_file: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> std::result::Result<Self, PostgresError> {
        connect::parse_url(&url)?;
        Ok(PostgresConfig {
            url,
            password_file,
            password: None,
            ca,
        })
    }
}

/// The store record and the keys, in PostgreSQL.
pub struct PostgresStorage {
    connector: Arc<Connector>,
    pool: Pool,
}

impl PostgresStorage {
    /// Connects and brings the schema up to date; fails (naming the fix) when the
    /// database cannot be reached or was made by a newer tufkeyd.
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let connector = Connector::new(config)?;
        let pool = connector.pool()?;
        let storage = PostgresStorage {
            connector: Arc::new(connector),
            pool,
        };
        let mut client = storage.client().await?;
        let found = schema::migrate(&mut client, &storage.connector.store).await?;
        tracing::info!(store = %storage.connector.store, schema_found = found, schema = schema::supported_version(), "keystore in PostgreSQL");
        Ok(storage)
    }

    async fn client(&self) -> std::result::Result<Client, PostgresError> {
        self.pool
            .get()
            .await
            .map_err(|source| PostgresError::Unavailable {
                store: self.connector.store.clone(),
                source,
            })
    }

    /// Maps a failed statement to an error saying what was being done.
    fn query(&self, action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SoftwareError {
        let store = self.connector.store.clone();
        move |source| {
            PostgresError::Query {
                store,
                action,
                source,
            }
            .into()
        }
    }

    fn parse_key(&self, keyid: &str, bytes: &[u8]) -> std::result::Result<StoredKey, FileProblem> {
        StoredKey::parse(bytes, keyid)
    }
}

#[async_trait]
impl KeyStorage for PostgresStorage {
    fn describe(&self) -> String {
        self.connector.store.clone()
    }

    async fn has_store_file(&self) -> Result<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM tufkey_store", &[])
            .await
            .map_err(self.query("reading the store record"))?;
        Ok(row.is_some())
    }

    async fn read_store_file(&self) -> Result<Option<StoreFile>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt("SELECT store_file FROM tufkey_store", &[])
            .await
            .map_err(self.query("reading the store record"))?
        else {
            return Ok(None);
        };
        let bytes: Vec<u8> = row.get(0);
        StoreFile::parse(&bytes).map(Some).map_err(|problem| {
            PostgresError::UnreadableStore {
                store: self.connector.store.clone(),
                problem: Box::new(problem),
            }
            .into()
        })
    }

    async fn write_store_file(&self, bytes: Vec<u8>) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO tufkey_store (id, store_file) VALUES (TRUE, $1)
                 ON CONFLICT (id) DO NOTHING",
                &[&bytes],
            )
            .await
            .map_err(self.query("storing the store record"))?;
        Ok(())
    }

    /// The database keeps its rows' integrity itself, and every sealed key's
    /// description is bound to it as associated data: no manifest here.
    async fn establish_manifest(&self, _key: ManifestKey) -> Result<bool> {
        Ok(false)
    }

    async fn scan(&self) -> Result<Scan> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT keyid, stored_key FROM tufkey_keys", &[])
            .await
            .map_err(self.query("reading the keys"))?;
        let mut keys = HashMap::new();
        let mut unreadable = Vec::new();
        for row in rows {
            let keyid: String = row.get(0);
            let bytes: Vec<u8> = row.get(1);
            match self.parse_key(&keyid, &bytes) {
                Ok(key) => {
                    keys.insert(keyid, Arc::new(key));
                }
                Err(problem) => {
                    tracing::error!(store = %self.connector.store, %keyid, %problem, "skipping an unreadable key row");
                    unreadable.push(format!("{keyid}: {problem}"));
                }
            }
        }
        unreadable.sort();
        Ok(Scan { keys, unreadable })
    }

    async fn read_key(&self, id: &str) -> Result<Option<StoredKey>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT keyid, stored_key FROM tufkey_keys WHERE keyid = $1 OR notary_keyid = $1",
                &[&id],
            )
            .await
            .map_err(self.query("looking a key up"))?
        else {
            return Ok(None);
        };
        let keyid: String = row.get(0);
        let bytes: Vec<u8> = row.get(1);
        self.parse_key(&keyid, &bytes)
            .map(Some)
            .map_err(|problem| self.unreadable(&keyid, problem))
    }

    fn finds_notary_keyids(&self) -> bool {
        true
    }

    async fn write_key(&self, stored: &StoredKey, bytes: Vec<u8>) -> Result<()> {
        let record = &stored.record;
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(self.query("starting to store a key"))?;
        let inserted = transaction
            .execute(
                "INSERT INTO tufkey_keys (keyid, notary_keyid, gun, role, stored_key)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &record.keyid,
                    &record.notary_keyid,
                    &record.gun.to_string(),
                    &record.role.to_string(),
                    &bytes,
                ],
            )
            .await
            .map_err(self.query("storing a key"))?;
        if inserted == 0 {
            return Err(PostgresError::KeyExists(record.keyid.clone()).into());
        }
        transaction
            .execute(
                "SELECT pg_notify($1, $2)",
                &[
                    &listen::CHANNEL,
                    &format!("{}{}", listen::ADDED, record.keyid),
                ],
            )
            .await
            .map_err(self.query("announcing a new key"))?;
        transaction
            .commit()
            .await
            .map_err(self.query("committing a new key"))
    }

    async fn remove_key(&self, keyid: &str) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(self.query("starting to delete a key"))?;
        let deleted = transaction
            .execute("DELETE FROM tufkey_keys WHERE keyid = $1", &[&keyid])
            .await
            .map_err(self.query("deleting a key"))?;
        // Gone already (another replica deleted it first): nothing to announce.
        if deleted > 0 {
            transaction
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&listen::CHANNEL, &format!("{}{keyid}", listen::REMOVED)],
                )
                .await
                .map_err(self.query("announcing a deleted key"))?;
        }
        transaction
            .commit()
            .await
            .map_err(self.query("committing a key's deletion"))
    }

    fn unreadable(&self, keyid: &str, problem: FileProblem) -> SoftwareError {
        PostgresError::Unreadable {
            store: self.connector.store.clone(),
            keyid: keyid.to_owned(),
            problem: Box::new(problem),
        }
        .into()
    }

    fn wrong_secret(&self) -> SoftwareError {
        SoftwareError::WrongStoreSecret {
            store: self.connector.store.clone(),
        }
    }

    async fn follow(&self, stopping: Stopping, changes: ChangeSink<'_>) {
        listen::follow(&self.connector, stopping, changes).await;
    }
}
