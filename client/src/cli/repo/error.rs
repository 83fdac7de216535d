//! What can go wrong in `tufkey repo`: each error names what was wrong and the fix,
//! and keeps its cause as its source. [`into_cli_error`] turns it into the CLI's one
//! error type, with the whole chain in the message (the CLI prints one line).

use super::role::TopRole;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Talking to tufkeyd (including waiting for a card).
    #[error(transparent)]
    Client(Box<tufkey::Error>),

    #[error("{} is not a tufkey repository (no {}): create one with `tufkey repo init {} --gun GUN`", dir.display(), super::state::STATE_FILE, dir.display())]
    NotARepository { dir: PathBuf },

    #[error("{} already holds a tufkey repository: use another DIR, or `tufkey repo status {}`", dir.display(), dir.display())]
    AlreadyInitialised { dir: PathBuf },

    #[error("{} is damaged: restore it from a backup (it is plain JSON)", path.display())]
    StateDamaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("encoding the repository state")]
    StateEncode(#[source] serde_json::Error),

    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: no such file: give the path of an existing file to add", path.display())]
    FileNotFound { path: PathBuf },

    #[error("key {keyid} for {role} is not in tufkeyd: check the ID with `tufkey key list` (a lost top-level key is replaced with `tufkey repo rotate DIR ROLE`)")]
    UnknownKey {
        keyid: String,
        role: String,
        #[source]
        source: Box<tufkey::Error>,
    },

    #[error("{role} has no keys in the repository state: run `tufkey repo rotate DIR {role}`")]
    RoleMissing { role: TopRole },

    #[error("unknown delegation {name:?}: create it first with `tufkey repo delegate DIR {name} --key KEYID`")]
    UnknownDelegation { name: String },

    #[error("delegation {name:?} already exists: add targets to it with `tufkey repo add DIR FILE --delegation {name}`")]
    DelegationExists { name: String },

    #[error(
        "target {name:?} is not in {role}: see the published targets with `tufkey repo status DIR`"
    )]
    UnknownTarget { name: String, role: String },

    #[error("{0}")]
    Invalid(String),

    #[error("{} is unreadable: the published metadata is damaged; restore DIR/metadata from a backup", path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{} is missing: the published metadata is incomplete; restore DIR/metadata from a backup", path.display())]
    MetadataMissing { path: PathBuf },

    #[error("{} already exists: another `tufkey repo` command may be publishing into this DIR; run `tufkey repo status DIR` and try again", path.display())]
    Exists { path: PathBuf },

    #[error("another `tufkey repo` command is working in this DIR (it holds {}): wait for it to finish and try again", path.display())]
    Busy { path: PathBuf },

    #[error("tough could not {action}")]
    Tough {
        action: String,
        #[source]
        source: Box<tough::error::Error>,
    },

    #[error("tough could not {action}")]
    Schema {
        action: String,
        #[source]
        source: Box<tough::schema::Error>,
    },

    #[error(transparent)]
    KeySource(Box<tufkey::KeySourceError>),
}

impl From<tufkey::Error> for RepoError {
    fn from(error: tufkey::Error) -> Self {
        RepoError::Client(Box::new(error))
    }
}

impl From<tufkey::KeySourceError> for RepoError {
    fn from(error: tufkey::KeySourceError) -> Self {
        RepoError::KeySource(Box::new(error))
    }
}

impl RepoError {
    /// For `map_err` on tough's editor calls.
    pub fn tough(action: impl Into<String>) -> impl FnOnce(tough::error::Error) -> Self {
        let action = action.into();
        move |source| RepoError::Tough {
            action,
            source: Box::new(source),
        }
    }

    /// For `map_err` on tough's schema calls.
    pub fn schema(action: impl Into<String>) -> impl FnOnce(tough::schema::Error) -> Self {
        let action = action.into();
        move |source| RepoError::Schema {
            action,
            source: Box::new(source),
        }
    }

    /// For `map_err` on file operations.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RepoError::Io {
            action,
            path,
            source,
        }
    }
}

/// The CLI's error: tufkeyd's own errors unchanged, ours as one line with every cause.
pub fn into_cli_error(error: RepoError) -> tufkey::Error {
    match error {
        RepoError::Client(inner) => *inner,
        other => tufkey::Error::Usage(super::super::output::one_line(&other)),
    }
}
