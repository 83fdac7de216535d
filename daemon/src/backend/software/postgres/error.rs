//! The PostgreSQL keystore's errors. Each keeps its source; its [`ErrorKind`] says
//! whether trying again can help (the database unreachable or restarting) or the
//! configuration must change.

use crate::backend::software::FileProblem;
use crate::error::{BackendFailure, ErrorKind};
use std::path::PathBuf;

/// Everything that can go wrong with the keystore's database.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// `--postgres-url` does not parse.
    #[error("--postgres-url does not parse: {0}; write it as postgres://USER@HOST:PORT/DATABASE")]
    Url(#[source] tokio_postgres::Error),

    /// `--postgres-url` carries a password.
    #[error("--postgres-url holds a password, which would show in process listings and logs: remove it from the URL and put it in --postgres-password-file (mode 0600) or TUFKEYD_POSTGRES_PASSWORD")]
    PasswordInUrl,

    /// The password file cannot be used.
    #[error("--postgres-password-file {path}: {problem}")]
    PasswordFile { path: PathBuf, problem: String },

    /// The password file cannot be read.
    #[error("--postgres-password-file {path}: cannot read it: {source}; give it to the daemon's user with mode 0600")]
    PasswordFileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The CA file cannot be read.
    #[error("--postgres-ca {path}: cannot read it: {source}; name a PEM file of the CA certificate(s) that issued the database's certificate")]
    CaRead {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    /// The CA file holds no usable certificate.
    #[error("--postgres-ca {path}: {problem}; name a PEM file of the CA certificate(s) that issued the database's certificate")]
    Ca { path: PathBuf, problem: String },

    /// rustls refused the TLS settings.
    #[error("TLS to the keystore database: {0}")]
    Tls(#[source] rustls::Error),

    /// The connection pool could not be built.
    #[error("building the keystore database's connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),

    /// No connection to the database could be had.
    #[error("the keystore database {store} is unavailable ({}): check that PostgreSQL is running and reachable, and the user, password and TLS settings; tufkeyd reconnects by itself", causes(.source))]
    Unavailable {
        store: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },

    /// A statement failed.
    #[error("the keystore database {store}: {action}: {}", causes(.source))]
    Query {
        store: String,
        action: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The database's schema was made by a newer tufkeyd.
    #[error("the keystore database {store} has schema version {found}, newer than this tufkeyd knows ({supported}): run the newer tufkeyd (every replica must be upgraded), or point --postgres-url at another database")]
    SchemaTooNew {
        store: String,
        found: i32,
        supported: i32,
    },

    /// A row holds a key that does not parse or does not open.
    #[error("the keystore database {store}: key {keyid}: {problem}")]
    Unreadable {
        store: String,
        keyid: String,
        #[source]
        problem: Box<FileProblem>,
    },

    /// The store row does not parse.
    #[error("the keystore database {store}: its store record: {problem}")]
    UnreadableStore {
        store: String,
        #[source]
        problem: Box<FileProblem>,
    },

    /// A key with this ID is stored already.
    #[error("key {0} is already in the keystore")]
    KeyExists(String),
}

/// An error and its causes, `: `-separated: the driver's own message ("error
/// performing TLS handshake") says little without the cause below it (the
/// certificate's issuer unknown). The sources stay attached as well.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

impl PostgresError {
    /// Whether a statement failed because the database could not be reached, was
    /// restarting, or was too slow: trying again may work.
    fn unreachable(source: &tokio_postgres::Error) -> bool {
        match source.code() {
            None => true,
            // 08: connection exception; 57: operator intervention (shutdown, cancel,
            // statement timeout); 53: insufficient resources (too many connections).
            Some(code) => ["08", "57", "53"]
                .iter()
                .any(|class| code.code().starts_with(class)),
        }
    }
}

impl BackendFailure for PostgresError {
    fn kind(&self) -> ErrorKind {
        match self {
            PostgresError::Url(_)
            | PostgresError::PasswordInUrl
            | PostgresError::PasswordFile { .. }
            | PostgresError::PasswordFileRead { .. }
            | PostgresError::CaRead { .. }
            | PostgresError::Ca { .. }
            | PostgresError::Tls(_)
            | PostgresError::SchemaTooNew { .. } => ErrorKind::FailedPrecondition,
            PostgresError::Unavailable { .. } => ErrorKind::Unavailable,
            PostgresError::Query { source, .. } if Self::unreachable(source) => {
                ErrorKind::Unavailable
            }
            PostgresError::Query { .. } | PostgresError::Pool(_) => ErrorKind::Internal,
            PostgresError::Unreadable { .. } | PostgresError::UnreadableStore { .. } => {
                ErrorKind::DataLoss
            }
            PostgresError::KeyExists(_) => ErrorKind::InvalidInput,
        }
    }
}
