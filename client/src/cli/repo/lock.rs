//! One `tufkey repo` command at a time per DIR: an exclusive `flock` on
//! `DIR/tufkey-repo.lock`, held until the command ends. Without it a `refresh` from
//! cron could replace the timestamp of a `publish` running at the same moment.

use super::error::RepoError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::Path;

/// The lock file's name inside DIR.
const LOCK_FILE: &str = "tufkey-repo.lock";

/// Held for as long as it lives.
pub struct RepoLock {
    _lock: Flock<File>,
}

/// Takes the lock of `dir`, or says which command holds it.
pub fn lock(dir: &Path) -> Result<RepoLock, RepoError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(RepoError::io("opening", &path))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(RepoLock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(RepoError::Busy { path }),
        Err((_, errno)) => Err(RepoError::io("locking", &path)(errno.into())),
    }
}
