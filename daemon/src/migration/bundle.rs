//! The one bundle format for backups and transfers: an [age](https://age-encryption.org)
//! file, so the standard `age` tool opens it and nobody needs tufkey to get their keys
//! back. Backups are wrapped to a passphrase (age's scrypt recipient), transfers to an
//! X25519 recipient (`age1…`). Only ciphertext ever leaves this module.
//!
//! The age payload (format version 1) is one JSON document:
//!
//! ```text
//! {"format": "tufkey-key-bundle", "version": 1, "created_at": "<RFC 3339>",
//!  "keys": [{"keyid", "notary_keyid", "gun", "role", "created_at", "exportable",
//!            "origin", "public_key_pem", "private_key_pkcs8_b64"}, …]}
//! ```
//!
//! followed by spaces that pad the whole file to a multiple of [`LENGTH_QUANTUM`] bytes,
//! so that a copy cut short can be told from an edited one (age alone reports both as
//! "decryption error"). Private keys are unencrypted version-0 PKCS#8 DER in base64
//! *inside* the encrypted payload (`age -d B | jq -r '.keys[0].private_key_pkcs8_b64' |
//! base64 -d | openssl pkey -inform DER` shows one): base64 has nothing JSON escapes, so
//! serde never copies a private key into its own (unzeroed) scratch buffer. [`open`]
//! trusts nothing in a bundle: it recomputes every key ID, checks each private key
//! against its public key and re-validates names, sizes and times.

use crate::keys::{now_rfc3339, Gun, KeyRecord, Role};
use crate::migration::MigrationError;
use crate::tuf::key_json::{notary_keyid, public_key_pem, tuf_keyid};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

/// The largest bundle [`open`] reads (and [`seal`] writes): room for [`MAX_KEYS`] keys
/// even with 255-byte GUNs (about 1.2 KiB each, 1.2 MB in all; tested), and below
/// tonic's default 4 MiB message limit.
pub const MAX_BUNDLE_BYTES: usize = 2 * 1024 * 1024;

/// The most keys one bundle holds.
pub const MAX_KEYS: usize = 1000;

/// The `format` field of every tufkey bundle manifest.
const FORMAT_NAME: &str = "tufkey-key-bundle";

/// The manifest version this code writes and reads.
const FORMAT_VERSION: u64 = 1;

/// scrypt work factor (N = 2^18, 256 MiB, about a second) for passphrase bundles: the
/// fixed value the reference `age` tool uses, so every host opens our backups within its
/// own limit (age's default adapts to the sealing machine, which a slower host may refuse).
const SCRYPT_LOG_N: u8 = 18;

/// The most scrypt work [`open`] does for a passphrase bundle (2^19: 512 MiB, about two
/// seconds). One step above what we write: a hostile file cannot make the daemon spend
/// gigabytes of memory or minutes of CPU before the passphrase is even checked.
const MAX_SCRYPT_LOG_N: u8 = SCRYPT_LOG_N + 1;

/// Sealed bundles are padded to a multiple of this many bytes. A prime, so that copies
/// cut at the usual power-of-two buffer boundaries never look complete.
const LENGTH_QUANTUM: usize = 509;

/// age's payload chunk size and per-chunk tag size (age spec, "Payload").
const AGE_CHUNK: usize = 64 * 1024;
const AGE_TAG: usize = 16;

/// Longest `origin` label (e.g. `software`).
const MAX_ORIGIN_LEN: usize = 32;

/// Longest GUN or role text an error about it repeats (a bundle can hold megabytes).
const MAX_ECHOED_NAME: usize = 255;

/// One key in a bundle: its public description and its private half.
pub struct BundleKey {
    pub keyid: String,
    pub notary_keyid: String,
    pub gun: Gun,
    pub role: Role,
    /// RFC 3339, when the key was first created (kept across backup and restore).
    pub created_at: String,
    pub exportable: bool,
    /// Where the key was held when it was sealed, e.g. `software`.
    pub origin: String,
    pub public_key: p256::PublicKey,
    pub secret: p256::SecretKey,
}

impl BundleKey {
    /// The bundle entry for `record`, whose private half is `secret`; refuses a secret
    /// that does not belong to the record's public key.
    pub fn new(
        record: &KeyRecord,
        secret: p256::SecretKey,
        origin: &str,
    ) -> Result<Self, MigrationError> {
        if secret.public_key() != record.public_key {
            return Err(MigrationError::BundleKeyMismatch {
                keyid: record.keyid.clone(),
            });
        }
        Ok(BundleKey {
            keyid: record.keyid.clone(),
            notary_keyid: record.notary_keyid.clone(),
            gun: record.gun.clone(),
            role: record.role.clone(),
            created_at: record.created_at.clone(),
            exportable: record.exportable,
            origin: origin.to_owned(),
            public_key: record.public_key,
            secret,
        })
    }
}

impl fmt::Debug for BundleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleKey")
            .field("keyid", &self.keyid)
            .field("notary_keyid", &self.notary_keyid)
            .field("gun", &self.gun)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("exportable", &self.exportable)
            .field("origin", &self.origin)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What a bundle is encrypted to.
pub enum Wrap {
    /// A passphrase (backups): age's scrypt recipient.
    Passphrase(SecretString),
    /// An X25519 recipient (transfers to another host's daemon).
    Recipient(age::x25519::Recipient),
}

/// What opens a bundle.
pub enum Unwrap<'a> {
    Passphrase(SecretString),
    Identity(&'a age::x25519::Identity),
}

/// Encrypts `keys` into one bundle. Refuses non-exportable keys, an empty or oversized
/// selection, an empty passphrase and keys inconsistent with themselves.
pub fn seal(keys: &[BundleKey], wrap: Wrap) -> Result<Vec<u8>, MigrationError> {
    seal_with_work_factor(keys, wrap, SCRYPT_LOG_N)
}

/// Opens a bundle and checks everything in it (see the module doc); returns its keys in
/// the order they were sealed.
pub fn open(bytes: &[u8], unwrap: Unwrap<'_>) -> Result<Vec<BundleKey>, MigrationError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(MigrationError::BundleTooLarge {
            size: bytes.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    let plaintext = decrypt(bytes, unwrap)?;
    let manifest = parse_manifest(&plaintext)?;
    keys_from_manifest(manifest)
}

// ---- sealing ----

fn seal_with_work_factor(
    keys: &[BundleKey],
    wrap: Wrap,
    scrypt_log_n: u8,
) -> Result<Vec<u8>, MigrationError> {
    check_selection(keys)?;
    let manifest = Manifest {
        format: FORMAT_NAME.to_owned(),
        version: FORMAT_VERSION,
        created_at: now_rfc3339(),
        keys: keys.iter().map(manifest_key).collect::<Result<_, _>>()?,
    };
    let encryptor = encryptor(wrap, scrypt_log_n)?;
    let sealed = encrypt_padded(encryptor, &manifest)?;
    if sealed.len() > MAX_BUNDLE_BYTES {
        return Err(MigrationError::BundleTooLarge {
            size: sealed.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    Ok(sealed)
}

/// The selection rules: some keys, not too many, each exportable, consistent and once.
fn check_selection(keys: &[BundleKey]) -> Result<(), MigrationError> {
    if keys.is_empty() {
        return Err(MigrationError::BundleEmpty);
    }
    if keys.len() > MAX_KEYS {
        return Err(MigrationError::BundleTooManyKeys {
            count: keys.len(),
            max: MAX_KEYS,
        });
    }
    let mut seen = HashSet::new();
    for key in keys {
        if !key.exportable {
            return Err(MigrationError::BundleKeyNotExportable {
                keyid: key.keyid.clone(),
            });
        }
        let inconsistent = |problem: String| MigrationError::BundleKeyInconsistent {
            keyid: key.keyid.clone(),
            problem,
        };
        check_key(key).map_err(inconsistent)?;
        if !seen.insert(key.keyid.as_str()) {
            return Err(inconsistent("selected twice".to_owned()));
        }
    }
    Ok(())
}

/// The checks every key passes both ways: private matches public, both key IDs match
/// the public key, created_at is RFC 3339, origin is a short label. (`exportable` is
/// checked by the callers: sealing refuses, opening calls the bundle invalid.)
fn check_key(key: &BundleKey) -> Result<(), String> {
    if key.secret.public_key() != key.public_key {
        return Err("its private key does not match its public key".to_owned());
    }
    if key.keyid != tuf_keyid(&key.public_key) {
        return Err("its key ID does not match its public key".to_owned());
    }
    if key.notary_keyid != notary_keyid(&key.public_key) {
        return Err("its Notary key ID does not match its public key".to_owned());
    }
    if time::OffsetDateTime::parse(&key.created_at, &Rfc3339).is_err() {
        return Err("its creation time is not RFC 3339".to_owned());
    }
    let label_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if key.origin.is_empty()
        || key.origin.len() > MAX_ORIGIN_LEN
        || !key.origin.chars().all(label_char)
    {
        return Err(format!(
            "its origin is not a label of a-z, 0-9 and '-' up to {MAX_ORIGIN_LEN} long"
        ));
    }
    Ok(())
}

fn manifest_key(key: &BundleKey) -> Result<ManifestKey, MigrationError> {
    let private_der = key
        .secret
        .to_pkcs8_der()
        .map_err(|source| seal_failed("encoding a private key as PKCS#8", source))?;
    let private_b64 = Zeroizing::new(BASE64.encode(private_der.as_bytes()));
    Ok(ManifestKey {
        keyid: key.keyid.clone(),
        notary_keyid: key.notary_keyid.clone(),
        gun: key.gun.as_str().to_owned(),
        role: key.role.as_str().to_owned(),
        created_at: key.created_at.clone(),
        exportable: key.exportable,
        origin: key.origin.clone(),
        public_key_pem: public_key_pem(&key.public_key),
        private_key_pkcs8_b64: SecretText(private_b64),
    })
}

fn encryptor(wrap: Wrap, scrypt_log_n: u8) -> Result<age::Encryptor, MigrationError> {
    let result = match wrap {
        Wrap::Passphrase(passphrase) => {
            if passphrase.expose_secret().is_empty() {
                return Err(MigrationError::BundlePassphraseEmpty);
            }
            let mut recipient = age::scrypt::Recipient::new(passphrase);
            recipient.set_work_factor(scrypt_log_n);
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        }
        Wrap::Recipient(recipient) => {
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        }
    };
    result.map_err(|source| seal_failed("wrapping the file key", source))
}

/// Encrypts the manifest, padded with spaces so the whole file is a multiple of
/// [`LENGTH_QUANTUM`] bytes. The plaintext goes straight from serde into age's stream,
/// with no buffer of ours in between (age's own chunk buffer is not zeroed: a limit of
/// the crate).
fn encrypt_padded(
    encryptor: age::Encryptor,
    manifest: &Manifest,
) -> Result<Vec<u8>, MigrationError> {
    let written = Cell::new(0);
    let output = CountingWriter {
        inner: Vec::new(),
        count: &written,
    };
    let mut stream = encryptor
        .wrap_output(output)
        .map_err(|source| seal_failed("writing the age header", source))?;
    let header_len = written.get();
    let manifest_len = serialized_len(manifest)?;
    let padding = padding_len(header_len, manifest_len);
    serde_json::to_writer(&mut stream, manifest)
        .map_err(|source| seal_failed("writing the manifest", source))?;
    io::copy(&mut io::repeat(b' ').take(padding as u64), &mut stream)
        .map_err(|source| seal_failed("padding the manifest", source))?;
    let output = stream
        .finish()
        .map_err(|source| seal_failed("finishing the age payload", source))?;
    Ok(output.inner)
}

/// How long the manifest's JSON is, without keeping a copy of it.
fn serialized_len(manifest: &Manifest) -> Result<usize, MigrationError> {
    let count = Cell::new(0);
    let sink = CountingWriter {
        inner: io::sink(),
        count: &count,
    };
    serde_json::to_writer(sink, manifest)
        .map_err(|source| seal_failed("measuring the manifest", source))?;
    Ok(count.get())
}

/// The number of spaces after a `manifest_len`-byte manifest that makes the age file
/// (`header_len` bytes of header and nonce, then the payload chunks with their tags) a
/// multiple of [`LENGTH_QUANTUM`].
fn padding_len(header_len: usize, manifest_len: usize) -> usize {
    let file_len = |plaintext: usize| {
        let chunks = plaintext.div_ceil(AGE_CHUNK).max(1);
        header_len + plaintext + chunks * AGE_TAG
    };
    // Each extra byte adds one to the length, except the one that opens a new chunk
    // (one tag more, skipping AGE_TAG remainders), so every remainder is reached within
    // two quanta plus that skip.
    (0..2 * LENGTH_QUANTUM + AGE_TAG)
        .find(|pad| file_len(manifest_len + pad).is_multiple_of(LENGTH_QUANTUM))
        .unwrap_or(0)
}

fn seal_failed(
    step: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> MigrationError {
    MigrationError::BundleSealFailed {
        step,
        source: Box::new(source),
    }
}

/// Passes writes through and counts the bytes.
struct CountingWriter<'a, W> {
    inner: W,
    count: &'a Cell<usize>,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count.set(self.count.get() + written);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---- opening ----

/// The decrypted payload, in a buffer that is zeroed when dropped.
fn decrypt(bytes: &[u8], unwrap: Unwrap<'_>) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let decryptor = age::Decryptor::new_buffered(bytes).map_err(|error| match error {
        age::DecryptError::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            MigrationError::BundleTruncated
        }
        source => MigrationError::BundleNotAge { source },
    })?;
    let reader = match unwrap {
        Unwrap::Passphrase(passphrase) => {
            if !decryptor.is_scrypt() {
                return Err(MigrationError::BundleNeedsIdentity);
            }
            let mut identity = age::scrypt::Identity::new(passphrase);
            identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        Unwrap::Identity(identity) => {
            if decryptor.is_scrypt() {
                return Err(MigrationError::BundleNeedsPassphrase);
            }
            decryptor.decrypt(std::iter::once(identity as &dyn age::Identity))
        }
    }
    .map_err(unwrap_error)?;
    // The plaintext is shorter than the file, so this buffer never reallocates (which
    // would leave an unzeroed copy behind).
    let mut plaintext = Zeroizing::new(Vec::with_capacity(bytes.len()));
    reader
        .take(bytes.len() as u64)
        .read_to_end(&mut plaintext)
        .map_err(|source| payload_error(bytes.len(), source))?;
    Ok(plaintext)
}

fn unwrap_error(error: age::DecryptError) -> MigrationError {
    match error {
        // scrypt: the passphrase-derived key does not open the file key.
        age::DecryptError::DecryptionFailed => MigrationError::BundleWrongPassphrase,
        // X25519: no stanza opens with this identity.
        age::DecryptError::NoMatchingKeys => MigrationError::BundleWrongRecipient,
        age::DecryptError::InvalidMac => MigrationError::BundleHeaderTampered,
        age::DecryptError::ExcessiveWork { required, .. } => {
            MigrationError::BundleWorkFactorTooHigh {
                log_n: required,
                max: MAX_SCRYPT_LOG_N,
            }
        }
        source => MigrationError::BundleNotAge { source },
    }
}

/// A payload that does not decrypt: cut short if the file has a length we never write,
/// otherwise edited.
fn payload_error(file_len: usize, source: io::Error) -> MigrationError {
    if source.kind() == io::ErrorKind::UnexpectedEof || !file_len.is_multiple_of(LENGTH_QUANTUM) {
        MigrationError::BundleTruncated
    } else {
        MigrationError::BundleDamaged { source }
    }
}

fn invalid(problem: impl Into<String>) -> MigrationError {
    MigrationError::BundleManifestInvalid {
        problem: problem.into(),
        source: None,
    }
}

fn invalid_because(
    problem: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> MigrationError {
    MigrationError::BundleManifestInvalid {
        problem: problem.into(),
        source: Some(Box::new(source)),
    }
}

/// A JSON error as text without serde's excerpt of the offending value (which, in this
/// document, could be a private key): its category and position only.
fn json_problem(what: &str, error: &serde_json::Error) -> MigrationError {
    invalid(format!(
        "{what}: {:?} error at line {}, column {}",
        error.classify(),
        error.line(),
        error.column()
    ))
}

/// Checks the format name and version before reading anything else, then the whole
/// manifest (unknown fields refused).
fn parse_manifest(plaintext: &[u8]) -> Result<Manifest, MigrationError> {
    let tag: FormatTag = serde_json::from_slice(plaintext)
        .map_err(|error| json_problem("the payload is not a tufkey manifest", &error))?;
    if tag.format != FORMAT_NAME {
        return Err(invalid(format!(
            "the payload's format is not {FORMAT_NAME:?}"
        )));
    }
    if tag.version != FORMAT_VERSION {
        return Err(MigrationError::BundleVersionUnsupported {
            version: tag.version,
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_slice(plaintext)
        .map_err(|error| json_problem("the manifest does not match format version 1", &error))?;
    if time::OffsetDateTime::parse(&manifest.created_at, &Rfc3339).is_err() {
        return Err(invalid("the bundle's creation time is not RFC 3339"));
    }
    Ok(manifest)
}

fn keys_from_manifest(manifest: Manifest) -> Result<Vec<BundleKey>, MigrationError> {
    if manifest.keys.is_empty() {
        return Err(invalid("it holds no keys"));
    }
    if manifest.keys.len() > MAX_KEYS {
        return Err(MigrationError::BundleTooManyKeys {
            count: manifest.keys.len(),
            max: MAX_KEYS,
        });
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(manifest.keys.len());
    for (index, entry) in manifest.keys.into_iter().enumerate() {
        let key = bundle_key(index, entry)?;
        if !seen.insert(key.keyid.clone()) {
            return Err(invalid(format!("key {} appears twice", key.keyid)));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// One manifest entry, decoded and checked.
fn bundle_key(index: usize, entry: ManifestKey) -> Result<BundleKey, MigrationError> {
    let which = entry_name(index, &entry.keyid);
    let gun: Gun = parse_name(&which, "GUN", &entry.gun)?;
    let role: Role = parse_name(&which, "role", &entry.role)?;
    let public_key = p256::PublicKey::from_public_key_pem(&entry.public_key_pem)
        .map_err(|source| invalid_because(format!("{which}: unreadable public key"), source))?;
    let secret = decode_private_key(&entry.private_key_pkcs8_b64)
        .map_err(|problem| invalid(format!("{which}: {problem}")))?;
    if !entry.exportable {
        return Err(invalid(format!(
            "{which} is marked non-exportable, which no tufkey bundle holds"
        )));
    }
    let key = BundleKey {
        keyid: entry.keyid,
        notary_keyid: entry.notary_keyid,
        gun,
        role,
        created_at: entry.created_at,
        exportable: entry.exportable,
        origin: entry.origin,
        public_key,
        secret,
    };
    check_key(&key).map_err(|problem| invalid(format!("{which}: {problem}")))?;
    Ok(key)
}

/// "key #N", with its key ID when that looks like one (errors never repeat arbitrary
/// amounts of bundle text).
fn entry_name(index: usize, keyid: &str) -> String {
    let looks_like_id = keyid.len() == 64 && keyid.bytes().all(|b| b.is_ascii_hexdigit());
    if looks_like_id {
        format!("key #{} ({keyid})", index + 1)
    } else {
        format!("key #{}", index + 1)
    }
}

/// A GUN or role; the parse error (which quotes the text) is kept only for short text.
fn parse_name<T>(which: &str, what: &str, text: &str) -> Result<T, MigrationError>
where
    T: FromStr<Err = crate::error::Error>,
{
    text.parse::<T>().map_err(|source| {
        if text.len() <= MAX_ECHOED_NAME {
            invalid_because(format!("{which}: invalid {what}"), source)
        } else {
            invalid(format!(
                "{which}: invalid {what} ({} bytes long)",
                text.len()
            ))
        }
    })
}

/// The private key from its base64 PKCS#8 DER, through zeroed buffers only.
fn decode_private_key(text: &SecretText) -> Result<p256::SecretKey, String> {
    let der = BASE64
        .decode(text.0.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "its private key is not base64".to_owned())?;
    p256::SecretKey::from_pkcs8_der(&der)
        .map_err(|error| format!("its private key is not a P-256 PKCS#8 key ({error})"))
}

// ---- the manifest ----

/// Just enough of the manifest to decide whether to read the rest.
#[derive(Deserialize)]
struct FormatTag {
    format: String,
    version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u64,
    created_at: String,
    keys: Vec<ManifestKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestKey {
    keyid: String,
    notary_keyid: String,
    gun: String,
    role: String,
    created_at: String,
    exportable: bool,
    origin: String,
    public_key_pem: String,
    /// Base64 of the PKCS#8 (version 0) DER.
    private_key_pkcs8_b64: SecretText,
}

/// A manifest string holding key material: zeroed when dropped.
struct SecretText(Zeroizing<String>);

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| SecretText(Zeroizing::new(text)))
    }
}

#[cfg(test)]
mod tests;
