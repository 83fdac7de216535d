//! The keystore's tables, as numbered migrations applied at start.
//!
//! Each replica runs [`migrate`] when it starts: one transaction, behind an
//! advisory lock so replicas starting together apply each step once, that reads
//! `tufkey_schema`, applies the steps the database lacks and records the new
//! version. A database whose version is above [`MIGRATIONS`] was made by a newer
//! tufkeyd and is refused rather than written with an older idea of its tables.

use super::error::PostgresError;
use deadpool_postgres::Client;

/// The migrations, in order; the schema version is how many have been applied.
/// Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the store record (KDF parameters + check value, one row) and one row per
    // key: the exact bytes a key file holds (public description in the clear, the
    // private scalar sealed with the store key, the description as associated data),
    // with the IDs and names beside them for look-ups and operators.
    "CREATE TABLE tufkey_store (
         id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
         store_file BYTEA NOT NULL,
         created_at TIMESTAMPTZ NOT NULL DEFAULT now()
     );
     CREATE TABLE tufkey_keys (
         keyid TEXT PRIMARY KEY,
         notary_keyid TEXT NOT NULL UNIQUE,
         gun TEXT NOT NULL,
         role TEXT NOT NULL,
         stored_key BYTEA NOT NULL,
         created_at TIMESTAMPTZ NOT NULL DEFAULT now()
     );",
];

/// Serialises migrations between replicas (`pg_advisory_xact_lock`); any constant
/// unlikely to collide with another application's lock on the same database.
const MIGRATION_LOCK: i64 = 0x7475_666b_6579_0001;

/// The schema version this tufkeyd writes.
pub fn supported_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the schema up to [`supported_version`]; returns the version found.
pub async fn migrate(client: &mut Client, store: &str) -> Result<i32, PostgresError> {
    let query = |action: &'static str| {
        let store = store.to_owned();
        move |source| PostgresError::Query {
            store,
            action,
            source,
        }
    };
    let transaction = client
        .transaction()
        .await
        .map_err(query("starting the schema migration"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(query("waiting for another replica's migration"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tufkey_schema (
                 id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
                 version INTEGER NOT NULL
             )",
        )
        .await
        .map_err(query("creating tufkey_schema"))?;
    let found: i32 = transaction
        .query_opt("SELECT version FROM tufkey_schema", &[])
        .await
        .map_err(query("reading the schema version"))?
        .map_or(0, |row| row.get(0));
    let supported = supported_version();
    if found > supported {
        return Err(PostgresError::SchemaTooNew {
            store: store.to_owned(),
            found,
            supported,
        });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for (index, step) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction
            .batch_execute(step)
            .await
            .map_err(query("applying a schema migration"))?;
        tracing::info!(%store, version = index + 1, "applied keystore schema migration");
    }
    transaction
        .execute(
            "INSERT INTO tufkey_schema (id, version) VALUES (TRUE, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
            &[&supported],
        )
        .await
        .map_err(query("recording the schema version"))?;
    transaction
        .commit()
        .await
        .map_err(query("committing the schema migration"))?;
    Ok(found)
}
