//! Process hardening, done first thing in `main` while the process still has one
//! thread: decrypted keys and passphrases must not reach a core file, swap, another
//! process's view of our memory, or the environment block.
//!
//! - Core files are off (`RLIMIT_CORE` 0) and the process is not dumpable
//!   (`PR_SET_DUMPABLE` 0), which also closes `/proc/PID/{mem,environ}` to other
//!   processes of the same uid that lack `CAP_SYS_PTRACE`.
//! - Memory is locked into RAM (`mlockall`, current and future pages, each locked
//!   when first touched) only when that cannot make a later allocation fail: with
//!   `RLIMIT_MEMLOCK` unlimited or `CAP_IPC_LOCK`. Under a finite limit, locking
//!   future pages turns every allocation past the limit into an out-of-memory
//!   failure (one key derivation alone takes 64 MiB), so the daemon warns with the
//!   fix instead.
//! - `TUFKEY_PASSPHRASE` is taken out of the environment. Removing a variable
//!   (`std::env::remove_var`, sound here because no other thread exists yet) only
//!   unlinks it from libc's list: the kernel's copy of the initial environment,
//!   which `/proc/PID/environ` shows, keeps the text for the life of the process
//!   image, and overwriting it in place would take unsafe code. So the daemon
//!   replaces its image: it hands the passphrase to a pipe and re-executes itself
//!   (`/proc/self/exe`, same pid and arguments) without the variable; the new image
//!   reads the passphrase from the pipe, which holds it in kernel memory only until
//!   then.
//! - `TUFKEYD_POSTGRES_PASSWORD` (the keystore database's password) is taken out
//!   of the environment too, after any re-execution, so children never see it; the
//!   initial environment keeps it, readable (the process not being dumpable) only
//!   by root: `--postgres-password-file` avoids even that.

use secrecy::SecretString;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use tufkeyd::backend::software::PASSPHRASE_ENV_VAR;
use zeroize::Zeroizing;

/// The keystore database's password, when not in `--postgres-password-file`.
const POSTGRES_PASSWORD_ENV_VAR: &str = "TUFKEYD_POSTGRES_PASSWORD";
/// Names the pipe holding the passphrase across the re-execution (internal).
const HANDOVER_FD_VAR: &str = "TUFKEYD_PASSPHRASE_HANDOVER_FD";
/// A pipe takes at least this much without blocking, so the write before the
/// re-execution cannot wait for a reader that does not exist yet.
const MAX_PASSPHRASE_BYTES: usize = 4096;
/// `CAP_IPC_LOCK`'s bit in the capability sets (linux/capability.h).
const CAP_IPC_LOCK: u32 = 14;

/// Core files off, the process not dumpable, memory locked where that is safe.
pub fn protect_memory() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    if let Err(error) = setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        tracing::warn!(%error, "could not disable core files");
    }
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%error, "could not mark the process non-dumpable");
    }
    let unlimited =
        getrlimit(Resource::RLIMIT_MEMLOCK).is_ok_and(|(soft, _)| soft == RLIM_INFINITY);
    if !unlimited && !has_ipc_lock() {
        tracing::warn!(
            "memory not locked: decrypted keys may be written to swap; run tufkeyd with \
             an unlimited locked-memory limit (systemd: LimitMEMLOCK=infinity; shell: \
             `ulimit -l unlimited`) or CAP_IPC_LOCK, or use encrypted swap"
        );
        return;
    }
    use nix::sys::mman::{mlockall, MlockAllFlags};
    // MCL_ONFAULT (Linux 4.4; nix 0.29 has no name for it): lock each page when it is
    // first touched instead of populating whole mappings (thread stacks, arenas) now.
    let on_fault = MlockAllFlags::from_bits_retain(libc::MCL_ONFAULT);
    if let Err(error) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE | on_fault)
    {
        tracing::warn!(%error, "could not lock memory: decrypted keys may be written to swap");
    }
}

/// Whether the effective capabilities include `CAP_IPC_LOCK` (from /proc/self/status).
fn has_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|effective| effective & (1 << CAP_IPC_LOCK) != 0)
}

/// Why the environment's passphrase could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("{PASSPHRASE_ENV_VAR} is longer than {MAX_PASSPHRASE_BYTES} bytes: use a shorter passphrase, or --secret-file")]
    TooLong,
    #[error("{PASSPHRASE_ENV_VAR} is not UTF-8: use a UTF-8 passphrase, or --secret-file")]
    NotUtf8,
    #[error("handing {PASSPHRASE_ENV_VAR} over to the re-executed daemon: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("{POSTGRES_PASSWORD_ENV_VAR} is not UTF-8: use a UTF-8 password, or --postgres-password-file")]
    PostgresNotUtf8,
    #[error("{HANDOVER_FD_VAR} is internal to tufkeyd and names no readable pipe: unset it")]
    BadHandover(#[source] Option<nix::Error>),
}

/// `TUFKEY_PASSPHRASE`, taken out of the environment (and out of
/// `/proc/PID/environ`, by re-executing the daemon; see the module doc). Call it
/// before any thread exists: it changes the environment.
pub fn take_environment_passphrase() -> Result<Option<SecretString>, HandoverError> {
    if let Some(fd) = std::env::var_os(HANDOVER_FD_VAR) {
        std::env::remove_var(HANDOVER_FD_VAR);
        return receive(&fd).map(Some);
    }
    let Some(value) = std::env::var_os(PASSPHRASE_ENV_VAR) else {
        return Ok(None);
    };
    let passphrase = Zeroizing::new(value.into_vec());
    if passphrase.is_empty() {
        std::env::remove_var(PASSPHRASE_ENV_VAR);
        return Ok(None);
    }
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(HandoverError::TooLong);
    }
    let error = reexecute_with(&passphrase);
    // Still here: the image could not be replaced. Keep going without the variable
    // in our own environment (children never see it); /proc/PID/environ still has it.
    tracing::warn!(
        %error,
        "could not re-execute tufkeyd to drop {PASSPHRASE_ENV_VAR} from /proc/PID/environ; \
         processes that may read this process's environment can see it: prefer --secret-file"
    );
    std::env::remove_var(PASSPHRASE_ENV_VAR);
    to_secret(passphrase).map(Some)
}

/// `TUFKEYD_POSTGRES_PASSWORD`, taken out of the environment; `None` when unset or
/// empty. Call it after [`take_environment_passphrase`] (whose re-execution keeps
/// this variable for the new image) and before any thread exists.
pub fn take_postgres_password() -> Result<Option<SecretString>, HandoverError> {
    let value = std::env::var_os(POSTGRES_PASSWORD_ENV_VAR);
    std::env::remove_var(POSTGRES_PASSWORD_ENV_VAR);
    let Some(value) = value else {
        return Ok(None);
    };
    let password = Zeroizing::new(value.into_vec());
    if password.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(&password).map_err(|_| HandoverError::PostgresNotUtf8)?;
    Ok(Some(SecretString::from(text)))
}

/// Writes the passphrase into a pipe and replaces the process image with a fresh
/// tufkeyd that inherits only the pipe's read end. Returns only on failure.
fn reexecute_with(passphrase: &[u8]) -> HandoverError {
    let pipe = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|errno| HandoverError::Pipe(errno.into()))
        .and_then(|(read_end, write_end)| {
            std::fs::File::from(write_end)
                .write_all(passphrase)
                .map_err(HandoverError::Pipe)?;
            nix::fcntl::fcntl(
                read_end.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(|errno| HandoverError::Pipe(errno.into()))?;
            Ok(read_end)
        });
    let read_end = match pipe {
        Ok(read_end) => read_end,
        Err(error) => return error,
    };
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| OsString::from("tufkeyd"));
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(program)
        .args(args)
        .env_remove(PASSPHRASE_ENV_VAR)
        .env(HANDOVER_FD_VAR, read_end.as_raw_fd().to_string())
        .exec();
    HandoverError::Pipe(error)
}

/// Reads the passphrase the previous image left in the pipe `fd`, and closes it.
fn receive(fd: &std::ffi::OsStr) -> Result<SecretString, HandoverError> {
    let fd: RawFd = fd
        .to_str()
        .and_then(|fd| fd.parse().ok())
        .ok_or(HandoverError::BadHandover(None))?;
    let mut passphrase = Zeroizing::new(vec![0u8; MAX_PASSPHRASE_BYTES + 1]);
    let mut filled = 0;
    loop {
        match nix::unistd::read(fd, &mut passphrase[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(nix::Error::EINTR) => {}
            Err(error) => return Err(HandoverError::BadHandover(Some(error))),
        }
        if filled > MAX_PASSPHRASE_BYTES {
            return Err(HandoverError::TooLong);
        }
    }
    nix::unistd::close(fd).map_err(|error| HandoverError::BadHandover(Some(error)))?;
    passphrase.truncate(filled);
    to_secret(passphrase)
}

fn to_secret(bytes: Zeroizing<Vec<u8>>) -> Result<SecretString, HandoverError> {
    let text = std::str::from_utf8(&bytes).map_err(|_| HandoverError::NotUtf8)?;
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::fd::IntoRawFd;

    fn pipe_holding(bytes: &[u8]) -> RawFd {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        std::fs::File::from(write_end).write_all(bytes).unwrap();
        read_end.into_raw_fd()
    }

    #[test]
    fn the_passphrase_comes_back_from_the_pipe_which_is_closed() {
        let fd = pipe_holding("pässphrase from the pipe".as_bytes());
        let secret = receive(std::ffi::OsStr::new(&fd.to_string())).unwrap();
        assert_eq!(secret.expose_secret(), "pässphrase from the pipe");
        assert_eq!(
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD),
            Err(nix::Error::EBADF)
        );
    }

    #[test]
    fn an_oversized_or_missing_handover_is_refused() {
        let fd = pipe_holding(&[b'x'; MAX_PASSPHRASE_BYTES + 1]);
        assert!(matches!(
            receive(std::ffi::OsStr::new(&fd.to_string())),
            Err(HandoverError::TooLong)
        ));
        nix::unistd::close(fd).unwrap();
        assert!(matches!(
            receive(std::ffi::OsStr::new("not a number")),
            Err(HandoverError::BadHandover(None))
        ));
    }
}
