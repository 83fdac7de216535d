//! Who the client expects to find behind the Unix socket.
//!
//! A passphrase or PIN typed into `tufkey` goes to whatever listens on the socket
//! path. So every Unix connection is checked at connect time, before anything is
//! sent: the listening process's uid (SO_PEERCRED, from the kernel) must be the
//! expected one: this user's own (user mode), or the one named with `--server-uid`
//! / `TUFKEY_SERVER_UID` (system mode: the daemon's user, `tufkey`).

use crate::error::{Error, Result};
use nix::unistd::{Uid, User};
use std::fmt;

/// The environment variable naming the daemon's user (a uid or a user name).
pub const SERVER_UID_ENV: &str = "TUFKEY_SERVER_UID";

/// The uid the daemon behind the Unix socket must run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerUid(u32);

impl ServerUid {
    /// This process's own uid: a daemon of the same user (user mode).
    pub fn own() -> Self {
        ServerUid(Uid::current().as_raw())
    }

    /// A uid, or a user name looked up in the user database.
    pub fn parse(text: &str) -> Result<Self> {
        if let Ok(uid) = text.parse::<u32>() {
            return Ok(ServerUid(uid));
        }
        match User::from_name(text) {
            Ok(Some(user)) => Ok(ServerUid(user.uid.as_raw())),
            Ok(None) => Err(Error::Usage(format!(
                "server uid {text:?}: no such user; give the daemon's uid or user name (`id -u tufkey`)"
            ))),
            Err(errno) => Err(Error::Usage(format!(
                "server uid {text:?}: looking the user up failed: {errno}; give the daemon's uid instead"
            ))),
        }
    }

    /// `TUFKEY_SERVER_UID` when set, else this process's own uid.
    pub fn from_env() -> Result<Self> {
        match std::env::var(SERVER_UID_ENV) {
            Ok(text) if !text.is_empty() => Self::parse(&text),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::own()),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(format!(
                "{SERVER_UID_ENV} is not valid UTF-8: set it to the daemon's uid or user name"
            ))),
        }
    }

    /// The uid itself.
    pub fn uid(self) -> u32 {
        self.0
    }

    /// Fails with [`UnexpectedServer`] unless `found` is this uid.
    pub(crate) fn check(self, found: u32) -> Result<(), UnexpectedServer> {
        if found == self.0 {
            Ok(())
        } else {
            Err(UnexpectedServer {
                found,
                expected: self.0,
            })
        }
    }
}

/// The socket's listener runs as another uid than the one expected; raised inside
/// the connector, so it travels through tonic's transport error.
#[derive(Debug)]
pub(crate) struct UnexpectedServer {
    pub found: u32,
    pub expected: u32,
}

impl fmt::Display for UnexpectedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the socket's listener runs as uid {}, not uid {}",
            self.found, self.expected
        )
    }
}

impl std::error::Error for UnexpectedServer {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_or_a_user_name_is_accepted() {
        assert_eq!(ServerUid::parse("4242").unwrap().uid(), 4242);
        assert_eq!(ServerUid::parse("root").unwrap().uid(), 0);
        let error = ServerUid::parse("no-such-user-tufkey").unwrap_err();
        assert!(error.to_string().contains("no such user"), "{error}");
    }

    #[test]
    fn only_the_expected_uid_passes() {
        let expected = ServerUid(1000);
        assert!(expected.check(1000).is_ok());
        let refused = expected.check(0).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the socket's listener runs as uid 0, not uid 1000"
        );
    }
}
