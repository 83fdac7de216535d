//! The YubiKey backend's errors. Each names the device by serial and says the fix
//! (insert it, unlock it, initialise it, reset the PIN with the PUK); card errors
//! keep the `yubikey` crate's error as their source.

use crate::error::{BackendError, BackendFailure, Error, ErrorKind, TaskFailed};
use crate::keys::PivSlot;

/// Everything that can go wrong with YubiKeys.
#[derive(Debug, thiserror::Error)]
pub enum YubiKeyError {
    /// pcscd cannot be reached, so YubiKey support is off.
    #[error("pcscd is not reachable ({0})")]
    NoPcscd(#[source] pcsc::Error),

    /// The hot-plug watcher could not start.
    #[error("starting the hot-plug thread: {0}")]
    HotplugThread(#[source] std::io::Error),

    /// The YubiKey is not plugged in (or was pulled).
    #[error("YubiKey {serial} is not present: insert YubiKey {serial}")]
    Absent { serial: u32 },

    /// None of the cards holding a copy of the key is plugged in.
    #[error("key {keyid} is on YubiKeys {serials}, none of them present: insert one of them")]
    NoCopyPresent { keyid: String, serials: String },

    /// The caller named no YubiKey and none is plugged in.
    #[error("no YubiKey is plugged in: insert one (`tufkey device list` shows what tufkeyd sees)")]
    NoneInserted,

    /// The caller named no YubiKey and several are plugged in.
    #[error("several YubiKeys are plugged in ({serials}): choose one with --serial")]
    SeveralInserted { serials: String },

    /// A card reports the serial but is not the card that accepted the cached PIN
    /// (its attestation certificate differs): the PIN was not sent.
    #[error("the YubiKey reporting serial {serial} is not the card its PIN was given for (its attestation certificate differs), so the cached PIN was not sent: check the card; if it is yours, run `tufkey unlock --serial {serial}`")]
    NotTheSameCard { serial: u32 },

    /// The daemon has no PIN for this YubiKey.
    #[error("YubiKey {serial} needs its PIN: run `tufkey unlock --serial {serial}`")]
    PinRequired { serial: u32 },

    /// The PIN was refused; the cached PIN is gone and nothing was retried.
    #[error("wrong PIN for YubiKey {serial}: {tries} {} left; run `tufkey unlock --serial {serial}` with the right PIN", if *.tries == 1 { "try" } else { "tries" })]
    WrongPin { serial: u32, tries: u8 },

    /// The PUK was refused during `device init`.
    #[error("wrong PUK for YubiKey {serial}: {tries} tries left; nothing else was changed after the management key")]
    WrongPuk { serial: u32, tries: u8 },

    /// The PIN has no tries left.
    #[error("the PIN of YubiKey {serial} is blocked: reset it with the PUK (`ykman --device {serial} piv access unblock-pin`), then run `tufkey unlock --serial {serial}`")]
    PinBlocked { serial: u32 },

    /// One try left: a cached PIN is not worth the risk of blocking the device.
    #[error("YubiKey {serial} has 1 PIN try left, so tufkeyd will not use a cached PIN: run `tufkey unlock --serial {serial}` and type the PIN")]
    LastPinTry { serial: u32 },

    /// One try left, and the caller typed a PIN without `force`: a wrong one would
    /// block the device.
    #[error("YubiKey {serial} has 1 PIN try left and a wrong PIN would block it, so tufkeyd did not try this one: if you are sure of the PIN, run `tufkey unlock --serial {serial} --force` (the right PIN resets the count); otherwise set a new PIN with the PUK (`ykman --device {serial} piv access unblock-pin`)")]
    LastTypedPinTry { serial: u32 },

    /// A PIN or PUK of the wrong length (its content is never shown).
    #[error("invalid {what}: must be 6 to 8 characters")]
    BadPinLength { what: &'static str },

    /// Only text PINs can be kept in the OS keyring.
    #[error("invalid pin: must be text to be remembered")]
    PinNotText,

    /// The device still has the factory management key.
    #[error("YubiKey {serial} still has the factory management key: run `tufkey device init --serial {serial}` first (or pass --allow-default-mgmt-key to generate anyway)")]
    DefaultManagementKey { serial: u32 },

    /// The management key is neither the factory one nor PIN-protected.
    #[error("YubiKey {serial}: its management key is neither the factory key nor PIN-protected, so tufkey cannot use it: make it PIN-protected with `ykman piv access change-management-key --protect` (or reset PIV with `ykman piv reset`, which erases every PIV key)")]
    UnknownManagementKey { serial: u32 },

    /// The device cannot do what was asked.
    #[error("{what} is not supported by this device (YubiKey {serial})")]
    NotSupported { serial: u32, what: &'static str },

    /// The requested slot already holds a certificate.
    #[error("YubiKey {serial}: slot {slot} already holds a certificate (see `tufkey device list`): delete that key or choose another --slot")]
    SlotTaken { serial: u32, slot: PivSlot },

    /// Every retired slot is in use.
    #[error("YubiKey {serial}: every retired slot 82..95 holds a certificate: delete a key or choose a slot with --slot")]
    SlotsFull { serial: u32 },

    /// YubiKey keys never leave the device.
    #[error(
        "invalid exportable: YubiKey keys never leave the device: generate or import them as not exportable (without --exportable)"
    )]
    NeverExportable,

    /// The card already holds this key (a spare gets its own copy, on another card).
    #[error("YubiKey {serial} already holds key {keyid} in slot {slot}: put the copy on another YubiKey")]
    AlreadyOnCard {
        serial: u32,
        slot: PivSlot,
        keyid: String,
    },

    /// The key was imported onto the card, so the card cannot attest it.
    #[error("key {keyid} was imported onto YubiKey {serial}, not generated there, so the device cannot attest it (attestation proves on-device generation only)")]
    NotAttestable { serial: u32, keyid: String },

    /// The key asked for is not a YubiKey key.
    #[error("invalid keyid: key {keyid} is not on a YubiKey")]
    NotOnYubiKey { keyid: String },

    /// A placement meant for another backend.
    #[error("invalid placement: the YubiKey backend was asked to place a key elsewhere")]
    ForeignPlacement,

    /// The card generated something that is not a P-256 key.
    #[error("YubiKey {serial} generated a key that is not a P-256 point")]
    NotP256 { serial: u32 },

    /// The certificate recording a key's metadata could not be made.
    #[error("YubiKey {serial}: cannot describe the key in a certificate: {reason}")]
    Metadata { serial: u32, reason: String },

    /// A certificate (validity period, encoding) could not be made or read.
    #[error("YubiKey {serial}: {what}: {source}")]
    Certificate {
        serial: u32,
        what: &'static str,
        #[source]
        source: x509_cert::der::Error,
    },

    /// The card returned a signature that does not parse.
    #[error("YubiKey {serial} returned a malformed signature ({source})")]
    MalformedSignature {
        serial: u32,
        #[source]
        source: p256::ecdsa::Error,
    },

    /// After an import, the slot's certificate (signed by the card) does not
    /// verify with the imported key: the card did not take it.
    #[error("YubiKey {serial}: after importing key {keyid} into slot {slot}, the slot does not sign as that key ({reason}); its certificate was removed again: import again")]
    ImportUnverified {
        serial: u32,
        slot: PivSlot,
        keyid: String,
        reason: String,
    },

    /// The slot's key changed behind tufkey's back.
    #[error("YubiKey {serial}: the key in slot {slot} no longer matches key {keyid}: it was replaced outside tufkey")]
    KeyReplaced {
        serial: u32,
        slot: PivSlot,
        keyid: String,
    },

    /// The attestation chain did not verify.
    #[error("YubiKey {serial}: the attestation of slot {slot} does not verify: {reason}")]
    Attestation {
        serial: u32,
        slot: PivSlot,
        reason: String,
    },

    /// The device took longer than any operation may.
    #[error("YubiKey {serial}: no answer within {seconds} s; pull and re-insert it")]
    Timeout { serial: u32, seconds: u64 },

    /// The device failed or refused an operation.
    #[error("YubiKey {serial}: {source}")]
    Card {
        serial: u32,
        #[source]
        source: yubikey::Error,
    },

    /// The OS keyring refused to keep or read a PIN.
    #[error("OS keyring: {action}: {source}")]
    Keyring {
        action: &'static str,
        #[source]
        source: keyring::Error,
    },

    /// Remembering a PIN needs the keyring, which is off.
    #[error("remembering a PIN needs the OS keyring, but tufkeyd runs with --no-keyring (or has no keyring)")]
    NoKeyring,

    /// A blocking card task failed.
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

impl BackendFailure for YubiKeyError {
    fn kind(&self) -> ErrorKind {
        use YubiKeyError::*;
        match self {
            Absent { .. }
            | NoCopyPresent { .. }
            | AlreadyOnCard { .. }
            | NoneInserted
            | SeveralInserted { .. }
            | PinRequired { .. }
            | NotTheSameCard { .. }
            | PinBlocked { .. }
            | LastPinTry { .. }
            | LastTypedPinTry { .. }
            | DefaultManagementKey { .. }
            | UnknownManagementKey { .. }
            | SlotTaken { .. }
            | SlotsFull { .. }
            | NoKeyring => ErrorKind::FailedPrecondition,
            WrongPin { .. } | WrongPuk { .. } => ErrorKind::Unauthenticated,
            BadPinLength { .. }
            | PinNotText
            | NeverExportable
            | NotOnYubiKey { .. }
            | ForeignPlacement => ErrorKind::InvalidInput,
            NotSupported { .. } | NotAttestable { .. } => ErrorKind::Unsupported,
            NotP256 { .. }
            | MalformedSignature { .. }
            | KeyReplaced { .. }
            | ImportUnverified { .. }
            | Attestation { .. }
            | Timeout { .. }
            | Card { .. }
            | NoPcscd(_) => ErrorKind::Unavailable,
            HotplugThread(_) | Metadata { .. } | Certificate { .. } | Keyring { .. } | Task(_) => {
                ErrorKind::Internal
            }
        }
    }
}

impl From<YubiKeyError> for Error {
    fn from(error: YubiKeyError) -> Self {
        Error::Backend(BackendError::new(error))
    }
}
