//! One YubiKey in a reader: its identity and the daemon's connection to it, plus
//! how device errors become the daemon's errors.
//!
//! The connection stays open while the card is present (opening costs three APDUs
//! and dropping resets the card). Operations run one at a time per device, on a
//! blocking thread (see [`super::YubiKeyBackend`]). When another program resets
//! the card, the connection is reopened and the operation tried once more — this
//! never repeats a PIN the card refused: a wrong PIN is an error, not a reset.
//!
//! While a connection stays open, signatures learn the card's PIN state
//! ([`KnownPinState`]) so that back-to-back signatures skip the card exchanges that
//! only re-establish it; any other operation, and any new connection, starts over.

use super::error::YubiKeyError;
use super::identity::CardIdentity;
use std::sync::{Mutex, MutexGuard};
use yubikey::YubiKey;

/// What an operation on the card can fail with: the card's own error, or one the
/// daemon decided on (e.g. a refused cached PIN).
pub enum CardError {
    Card(yubikey::Error),
    Decided(YubiKeyError),
}

impl From<yubikey::Error> for CardError {
    fn from(error: yubikey::Error) -> Self {
        CardError::Card(error)
    }
}

impl From<YubiKeyError> for CardError {
    fn from(error: YubiKeyError) -> Self {
        CardError::Decided(error)
    }
}

/// Shorthand for operations on a card.
pub type CardResult<T> = Result<T, CardError>;

/// What the daemon learned about the card on the current connection. A card cannot
/// change behind an open connection (removing it breaks the connection), so its
/// identity, once read, holds; after the cached PIN was accepted the card's PIN
/// counter is full. Kept only across signatures: every other operation (which may
/// verify a typed PIN, change PINs, or reset the card) and every reconnection starts
/// from nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownPinState {
    /// The identity read on this connection.
    pub card: Option<CardIdentity>,
    /// The last VERIFY on this connection was the cached PIN and the card accepted it.
    pub pin_accepted: bool,
}

/// An open connection and what has been learned on it.
struct Connection {
    yubikey: YubiKey,
    known: KnownPinState,
}

impl Connection {
    fn new(yubikey: YubiKey) -> Self {
        Connection {
            yubikey,
            known: KnownPinState::default(),
        }
    }
}

/// A YubiKey the daemon has seen in a reader.
pub struct Device {
    pub serial: u32,
    pub reader: String,
    pub firmware: String,
    card: Mutex<Option<Connection>>,
}

impl Device {
    /// Wraps an open connection.
    pub fn new(yubikey: YubiKey) -> Self {
        Device {
            serial: yubikey.serial().0,
            reader: yubikey.name().to_owned(),
            firmware: yubikey.version().to_string(),
            card: Mutex::new(Some(Connection::new(yubikey))),
        }
    }

    /// Runs `operation` on the card, reopening the connection once if the card
    /// was reset or the connection dropped. Blocking: call from a blocking thread.
    /// Forgets what signatures learned about the card's PIN state.
    pub fn run<T>(
        &self,
        mut operation: impl FnMut(&mut YubiKey) -> CardResult<T>,
    ) -> Result<T, YubiKeyError> {
        self.run_signing(|yubikey, known| {
            *known = KnownPinState::default();
            operation(yubikey)
        })
    }

    /// [`Device::run`] for a signature: `operation` also gets what earlier
    /// signatures on this connection learned, and updates it.
    pub fn run_signing<T>(
        &self,
        mut operation: impl FnMut(&mut YubiKey, &mut KnownPinState) -> CardResult<T>,
    ) -> Result<T, YubiKeyError> {
        let mut card = self.lock();
        for attempt in 0..2 {
            if card.is_none() {
                let yubikey = open_reader(&self.reader, self.serial).map_err(|e| self.error(e))?;
                *card = Some(Connection::new(yubikey));
            }
            let Some(connection) = card.as_mut() else {
                continue;
            };
            match operation(&mut connection.yubikey, &mut connection.known) {
                Ok(value) => return Ok(value),
                Err(CardError::Card(error)) if attempt == 0 && was_reset(&error) => {
                    tracing::debug!(
                        serial = self.serial,
                        "card was reset by another program: reconnecting"
                    );
                    forget_connection(&mut card);
                }
                Err(CardError::Card(error)) => {
                    if is_absent(&error) {
                        forget_connection(&mut card);
                    }
                    return Err(self.error(error));
                }
                Err(CardError::Decided(error)) => return Err(error),
            }
        }
        Err(YubiKeyError::Absent {
            serial: self.serial,
        })
    }

    /// Drops the connection, resetting the card: it forgets the verified PIN and
    /// management key, and so does the `yubikey` library's own copy of the PIN.
    pub fn log_out(&self) {
        if let Some(connection) = self.lock().take() {
            drop(connection);
        }
    }

    /// The daemon's error for a device error on this card.
    pub fn error(&self, error: yubikey::Error) -> YubiKeyError {
        card_error(self.serial, error)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.card.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Leaves the card as it is (no reset) when dropping a dead connection.
fn forget_connection(card: &mut Option<Connection>) {
    if let Some(connection) = card.take() {
        let _ = connection.yubikey.disconnect(pcsc::Disposition::LeaveCard);
    }
}

/// Opens whatever YubiKey is in `reader`.
pub fn open_in_reader(reader: &str) -> yubikey::Result<YubiKey> {
    let mut context = yubikey::reader::Context::open()?;
    let found = context
        .iter()?
        .find(|candidate| candidate.name() == reader)
        .ok_or(yubikey::Error::NotFound)?;
    found.open()
}

/// Opens the YubiKey in `reader`, checking it is still the one with `serial`.
pub fn open_reader(reader: &str, serial: u32) -> yubikey::Result<YubiKey> {
    let yubikey = open_in_reader(reader)?;
    if yubikey.serial().0 == serial {
        Ok(yubikey)
    } else {
        let _ = yubikey.disconnect(pcsc::Disposition::LeaveCard);
        Err(yubikey::Error::NotFound)
    }
}

fn pcsc_error(error: &yubikey::Error) -> Option<pcsc::Error> {
    match error {
        yubikey::Error::PcscError { inner } => *inner,
        _ => None,
    }
}

fn was_reset(error: &yubikey::Error) -> bool {
    matches!(
        pcsc_error(error),
        Some(pcsc::Error::ResetCard | pcsc::Error::InvalidHandle)
    )
}

/// Whether the error means the card (or its reader) is gone.
pub fn is_absent(error: &yubikey::Error) -> bool {
    matches!(error, yubikey::Error::NotFound)
        || matches!(
            pcsc_error(error),
            Some(
                pcsc::Error::RemovedCard
                    | pcsc::Error::NoSmartcard
                    | pcsc::Error::ReaderUnavailable
                    | pcsc::Error::UnknownReader
                    | pcsc::Error::NoReadersAvailable
                    | pcsc::Error::UnpoweredCard
                    | pcsc::Error::UnresponsiveCard
                    | pcsc::Error::ResetCard
                    | pcsc::Error::InvalidHandle
                    | pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped
                    | pcsc::Error::CommError
            )
        )
}

/// The daemon's error for a device error on the card `serial`.
pub fn card_error(serial: u32, error: yubikey::Error) -> YubiKeyError {
    match error {
        yubikey::Error::WrongPin { tries: 0 } | yubikey::Error::PinLocked => {
            YubiKeyError::PinBlocked { serial }
        }
        yubikey::Error::WrongPin { tries } => YubiKeyError::WrongPin { serial, tries },
        error if is_absent(&error) => YubiKeyError::Absent { serial },
        source => YubiKeyError::Card { serial, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_become_errors_that_name_the_serial_and_the_fix() {
        let pulled = card_error(
            1001,
            yubikey::Error::PcscError {
                inner: Some(pcsc::Error::RemovedCard),
            },
        );
        assert_eq!(
            pulled.to_string(),
            "YubiKey 1001 is not present: insert YubiKey 1001"
        );
        assert_eq!(
            tonic::Status::from(crate::error::Error::from(pulled)).code(),
            tonic::Code::FailedPrecondition
        );

        let wrong = card_error(1001, yubikey::Error::WrongPin { tries: 2 });
        assert!(
            wrong
                .to_string()
                .contains("wrong PIN for YubiKey 1001: 2 tries left"),
            "{wrong}"
        );
        let last = card_error(1001, yubikey::Error::WrongPin { tries: 1 });
        assert!(last.to_string().contains("1 try left"), "{last}");

        let blocked = card_error(1001, yubikey::Error::WrongPin { tries: 0 });
        assert!(blocked.to_string().contains("blocked"), "{blocked}");
        assert!(blocked.to_string().contains("PUK"), "{blocked}");
    }
}
