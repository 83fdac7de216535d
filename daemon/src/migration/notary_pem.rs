//! Docker/Notary private key files, read and written.
//!
//! Docker Content Trust and the `notary` client keep each private key in a PEM file
//! (`~/.docker/trust/private/<keyid>.key`), and `notary key export` concatenates those
//! blocks into one file with a `path:` header each. To bring keys in (`tufkey import
//! docker`) and hand them back (`tufkey export docker`) this module reads every form
//! Notary 0.7 reads and writes the one form it writes (DESIGN.md §9):
//!
//! - `ENCRYPTED PRIVATE KEY`: PKCS#8 PBES2 with PBKDF2 (no PRF field, so HMAC-SHA1)
//!   and AES-256-CBC. Inside is Notary's non-standard PKCS#8 *version 1 without a
//!   public key*, which RustCrypto's `pkcs8` refuses, so the inner structure is read
//!   tolerantly here and the key itself as SEC1 `ECPrivateKey`.
//! - unencrypted `PRIVATE KEY` (PKCS#8) and `EC PRIVATE KEY` (SEC1);
//! - the legacy OpenSSL form Notary 0.5 wrote: `Proc-Type: 4,ENCRYPTED` +
//!   `DEK-Info: AES-256-CBC,<iv>` (key from `EVP_BytesToKey` with MD5).
//!
//! Only ECDSA P-256 keys come out; RSA, ed25519 and other curves are reported by name
//! so the caller can list and skip them. Work is bounded: the input size and the PBKDF2
//! iteration count a file may ask for. Decrypted bytes live in zeroizing buffers.

use std::fmt;

use base64::Engine as _;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest as _, Md5};
use pkcs5::pbes2;
use pkcs8::der::{
    self,
    asn1::{AnyRef, OctetStringRef},
    Decode as _, Reader as _, SliceReader, Tagged as _,
};
use pkcs8::{AlgorithmIdentifierRef, EncodePrivateKey as _, ObjectIdentifier};
use rand_core::{OsRng, RngCore as _};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use super::MigrationError;

/// The largest input accepted: a key file is about 450 bytes, so this holds a
/// `notary key export` of a couple of thousand keys and bounds the parsing work.
pub const MAX_PEM_BYTES: usize = 1 << 20;

/// The largest PBKDF2 iteration count a file may ask for. Notary writes 2048 and we
/// write [`EXPORT_PBKDF2_ITERATIONS`]; anything far beyond is a file built to burn
/// the daemon's CPU (10 million SHA-1 HMACs take seconds per attempt).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The PBKDF2-HMAC-SHA1 iteration count of the files we write: ~300 times Notary's
/// own 2048, which is far too cheap against guessed passphrases today (Notary reads
/// any count). It is OWASP's count for PBKDF2-HMAC-SHA256; SHA-1 is forced by Notary,
/// which derives only with SHA-1. The cost falls on every use of the key by a
/// Notary/Docker client: measured here, `notary key passwd` on such a file takes
/// 0.35 s of CPU (OpenSSL: 0.27 s) — acceptable once per command.
pub const EXPORT_PBKDF2_ITERATIONS: u32 = 600_000;

const ENCRYPTED_PKCS8_LABEL: &str = "ENCRYPTED PRIVATE KEY";
const PKCS8_LABEL: &str = "PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const PEM_LINE_CHARS: usize = 64;

const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// One PEM block of a key file or of a `notary key export` bundle, as found: the
/// label, the headers in file order, the DER body (ciphertext, or a plaintext key for
/// unencrypted blocks, hence zeroizing). Its `Debug` never shows the body.
pub struct NotaryKeyBlock {
    /// Names the block in errors: the file, and the block's place in a bundle.
    name: String,
    label: String,
    headers: Vec<(String, String)>,
    body: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for NotaryKeyBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotaryKeyBlock")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl NotaryKeyBlock {
    /// The `path:` header (`notary key export` names the key file it came from).
    pub fn path(&self) -> Option<&str> {
        self.header("path")
    }

    /// The `role:` header.
    pub fn role(&self) -> Option<&str> {
        self.header("role")
    }

    /// The `gun:` header (absent for root and delegation keys).
    pub fn gun(&self) -> Option<&str> {
        self.header("gun")
    }

    /// Whether the key needs a passphrase (PKCS#8 PBES2 or legacy `Proc-Type`).
    pub fn is_encrypted(&self) -> bool {
        self.label == ENCRYPTED_PKCS8_LABEL || self.header("Proc-Type").is_some()
    }

    /// Decrypts (or just decodes, when unencrypted) to a P-256 key. A wrong passphrase
    /// is [`MigrationError::NotaryWrongPassphrase`]; RSA, ed25519 and other curves are
    /// [`MigrationError::NotaryUnsupportedKeyType`] naming the type. A passphrase given
    /// for an unencrypted block is ignored.
    pub fn decrypt(
        &self,
        passphrase: Option<&SecretString>,
    ) -> Result<p256::SecretKey, MigrationError> {
        let plaintext = match self.label.as_str() {
            ENCRYPTED_PKCS8_LABEL => self.decrypt_pbes2(self.require_passphrase(passphrase)?)?,
            PKCS8_LABEL | SEC1_LABEL => self.legacy_plaintext(passphrase)?,
            other => return Err(self.unsupported(label_key_type(other))),
        };
        let key = if self.label == SEC1_LABEL {
            key_from_sec1(&plaintext, None)
        } else {
            key_from_pkcs8(&plaintext)
        };
        key.map_err(|problem| self.inner_error(problem))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn require_passphrase<'p>(
        &self,
        passphrase: Option<&'p SecretString>,
    ) -> Result<&'p [u8], MigrationError> {
        passphrase
            .map(|secret| secret.expose_secret().as_bytes())
            .ok_or_else(|| MigrationError::NotaryPassphraseRequired {
                file: self.name.clone(),
            })
    }

    /// PKCS#8 `EncryptedPrivateKeyInfo`: checks the scheme is PBES2 + PBKDF2 within
    /// bounds, then decrypts into a zeroizing buffer.
    fn decrypt_pbes2(&self, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(&self.body).map_err(|source| {
            MigrationError::NotaryMalformedKey {
                file: self.name.clone(),
                what: "the PKCS#8 EncryptedPrivateKeyInfo",
                source,
            }
        })?;
        let params = self.checked_pbes2_params(&encrypted.encryption_algorithm)?;
        let mut buffer = Zeroizing::new(encrypted.encrypted_data.to_vec());
        let plaintext_len = match params.decrypt_in_place(passphrase, &mut buffer) {
            Ok(plaintext) => plaintext.len(),
            Err(pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed) => {
                return Err(self.wrong_passphrase())
            }
            Err(other) => {
                return Err(MigrationError::NotaryEncryptionParameters {
                    file: self.name.clone(),
                    source: pkcs8::Error::EncryptedPrivateKey(other),
                })
            }
        };
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }

    fn checked_pbes2_params<'a>(
        &self,
        scheme: &'a pkcs5::EncryptionScheme<'a>,
    ) -> Result<&'a pbes2::Parameters<'a>, MigrationError> {
        let Some(params) = scheme.pbes2() else {
            return Err(self.unsupported_encryption("PBES1 (PKCS#5 v1.5)"));
        };
        let Some(pbkdf2) = params.kdf.pbkdf2() else {
            return Err(self.unsupported_encryption("PBES2 with scrypt"));
        };
        if pbkdf2.iteration_count > MAX_PBKDF2_ITERATIONS {
            return Err(MigrationError::NotaryKdfTooExpensive {
                file: self.name.clone(),
                iterations: pbkdf2.iteration_count,
                limit: MAX_PBKDF2_ITERATIONS,
            });
        }
        Ok(params)
    }

    /// The plaintext DER of an unencrypted block, or of a legacy `Proc-Type` one.
    fn legacy_plaintext(
        &self,
        passphrase: Option<&SecretString>,
    ) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
        let Some(proc_type) = self.header("Proc-Type") else {
            return Ok(Zeroizing::new(self.body.to_vec()));
        };
        if proc_type != "4,ENCRYPTED" {
            return Err(self.malformed_header("Proc-Type is not `4,ENCRYPTED`"));
        }
        let dek_info = self
            .header("DEK-Info")
            .ok_or_else(|| self.malformed_header("Proc-Type without a DEK-Info header"))?;
        let (cipher, iv) = self.parse_dek_info(dek_info)?;
        let passphrase = self.require_passphrase(passphrase)?;
        let key = evp_bytes_to_key_md5(passphrase, &iv[..8], cipher.key_len());
        let mut buffer = Zeroizing::new(self.body.to_vec());
        let plaintext_len = cipher
            .decrypt(&key, &iv, &mut buffer)
            .ok_or_else(|| self.wrong_passphrase())?;
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }

    fn parse_dek_info(&self, dek_info: &str) -> Result<(LegacyCipher, [u8; 16]), MigrationError> {
        let (cipher, iv_hex) = dek_info
            .split_once(',')
            .ok_or_else(|| self.malformed_header("DEK-Info is not `<cipher>,<hex IV>`"))?;
        let cipher = match cipher {
            "AES-256-CBC" => LegacyCipher::Aes256Cbc,
            "AES-128-CBC" => LegacyCipher::Aes128Cbc,
            other => return Err(self.unsupported_encryption(&format!("legacy PEM {other}"))),
        };
        let mut iv = [0u8; 16];
        hex::decode_to_slice(iv_hex, &mut iv)
            .map_err(|_| self.malformed_header("DEK-Info IV is not 32 hex digits"))?;
        Ok((cipher, iv))
    }

    /// A failure inside the (decrypted) key: garbage after decryption is what a wrong
    /// passphrase gives when the padding happens to check out (1 in 256).
    fn inner_error(&self, problem: InnerKeyError) -> MigrationError {
        match problem {
            InnerKeyError::Unsupported(key_type) => self.unsupported(key_type),
            InnerKeyError::Malformed(_, _) if self.is_encrypted() => self.wrong_passphrase(),
            InnerKeyError::Malformed(what, source) => MigrationError::NotaryMalformedKey {
                file: self.name.clone(),
                what,
                source,
            },
        }
    }

    fn wrong_passphrase(&self) -> MigrationError {
        MigrationError::NotaryWrongPassphrase {
            file: self.name.clone(),
        }
    }

    fn unsupported(&self, key_type: String) -> MigrationError {
        MigrationError::NotaryUnsupportedKeyType {
            file: self.name.clone(),
            key_type,
        }
    }

    fn unsupported_encryption(&self, scheme: &str) -> MigrationError {
        MigrationError::NotaryUnsupportedEncryption {
            file: self.name.clone(),
            scheme: scheme.to_owned(),
        }
    }

    fn malformed_header(&self, problem: &'static str) -> MigrationError {
        MigrationError::NotaryMalformedPem {
            file: self.name.clone(),
            line: None,
            problem,
        }
    }
}

/// All PEM blocks in `bytes` (a single key file has one; `notary key export` output has
/// several, each with `path:`). Text around the blocks is ignored, like Go's and
/// OpenSSL's PEM readers do; a block that is not a private key is refused rather than
/// skipped, so nothing in the input goes unnoticed. `source` names the file in errors.
pub fn parse_blocks(bytes: &[u8], source: &str) -> Result<Vec<NotaryKeyBlock>, MigrationError> {
    if bytes.len() > MAX_PEM_BYTES {
        return Err(MigrationError::NotaryPemTooLarge {
            file: source.to_owned(),
            size: bytes.len(),
            limit: MAX_PEM_BYTES,
        });
    }
    let not_pem = || MigrationError::NotaryNotPem {
        file: source.to_owned(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| not_pem())?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let mut blocks = Vec::new();
    while let Some((line_number, line)) = lines.next() {
        if let Some(label) = begin_label(line) {
            blocks.push(read_block(label, line_number, &mut lines, source)?);
        }
    }
    if blocks.is_empty() {
        return Err(not_pem());
    }
    name_blocks(&mut blocks, source);
    Ok(blocks)
}

fn begin_label(line: &str) -> Option<&str> {
    line.trim_end()
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")
}

/// Reads one block after its BEGIN line: headers (`Name: value` lines, then an
/// optional blank line), base64 lines, the matching END line.
fn read_block<'t>(
    label: &str,
    begin_line: usize,
    lines: &mut impl Iterator<Item = (usize, &'t str)>,
    source: &str,
) -> Result<NotaryKeyBlock, MigrationError> {
    let malformed = |line: usize, problem: &'static str| MigrationError::NotaryMalformedPem {
        file: source.to_owned(),
        line: Some(line),
        problem,
    };
    if !label.ends_with("PRIVATE KEY") {
        return Err(MigrationError::NotaryNotAPrivateKey {
            file: source.to_owned(),
            label: label.to_owned(),
        });
    }
    let end_line = format!("-----END {label}-----");
    let mut headers: Vec<(String, String)> = Vec::new();
    // Line slices of the input, joined once at the end: growing one buffer line by line
    // would leave unzeroized copies of an unencrypted key behind in freed memory.
    let mut base64_lines: Vec<&str> = Vec::new();
    let mut in_headers = true;
    for (line_number, line) in lines.by_ref() {
        let line = line.trim_end();
        if line == end_line {
            let body = decode_body(&base64_lines, source)?;
            return Ok(NotaryKeyBlock {
                name: source.to_owned(),
                label: label.to_owned(),
                headers,
                body,
            });
        }
        if line.starts_with("-----") {
            return Err(malformed(
                line_number,
                "a PEM boundary that does not end the block",
            ));
        }
        if in_headers {
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim(), value.trim());
                if value.chars().any(char::is_control) || name.chars().any(char::is_control) {
                    return Err(malformed(line_number, "a header with control characters"));
                }
                if headers.iter().any(|(known, _)| known == name) {
                    return Err(malformed(line_number, "a header given twice"));
                }
                headers.push((name.to_owned(), value.to_owned()));
                continue;
            }
            in_headers = false;
            if line.is_empty() {
                continue;
            }
        }
        base64_lines.push(line.trim_start());
    }
    Err(malformed(begin_line, "a BEGIN line without its END line"))
}

fn decode_body(base64_lines: &[&str], source: &str) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let mut base64_text = Zeroizing::new(String::with_capacity(
        base64_lines.iter().map(|line| line.len()).sum(),
    ));
    base64_lines
        .iter()
        .for_each(|line| base64_text.push_str(line));
    let mut body = Zeroizing::new(Vec::with_capacity(base64_text.len().div_ceil(4) * 3));
    base64::engine::general_purpose::STANDARD
        .decode_vec(base64_text.as_str(), &mut body)
        .map_err(|source_error| MigrationError::NotaryPemBase64 {
            file: source.to_owned(),
            source: source_error,
        })?;
    Ok(body)
}

/// In a bundle, each block's name says which block it is (and its `path:`).
fn name_blocks(blocks: &mut [NotaryKeyBlock], source: &str) {
    let count = blocks.len();
    if count == 1 {
        return;
    }
    for (index, block) in blocks.iter_mut().enumerate() {
        block.name = match block.path() {
            Some(path) => format!("{source} (block {} of {count}, path {path})", index + 1),
            None => format!("{source} (block {} of {count})", index + 1),
        };
    }
}

/// An `ENCRYPTED PRIVATE KEY` PEM block Notary 0.7 reads: headers in the order Go
/// writes them (sorted: `gun` when given, `path` when given, `role`), a version-0
/// PKCS#8 inside, PBES2 with PBKDF2-HMAC-SHA1 and **no PRF field** (Notary derives
/// with SHA-1 only), an 8-byte salt as Notary uses, [`EXPORT_PBKDF2_ITERATIONS`],
/// AES-256-CBC with a random IV. `path` makes it the bundle form `notary key import`
/// wants (it refuses encrypted blocks without one).
pub fn encrypt(
    secret: &p256::SecretKey,
    role: &str,
    gun: Option<&str>,
    path: Option<&str>,
    passphrase: &SecretString,
) -> Result<String, MigrationError> {
    encrypt_with_iterations(
        secret,
        role,
        gun,
        path,
        passphrase,
        EXPORT_PBKDF2_ITERATIONS,
    )
}

fn encrypt_with_iterations(
    secret: &p256::SecretKey,
    role: &str,
    gun: Option<&str>,
    path: Option<&str>,
    passphrase: &SecretString,
    iterations: u32,
) -> Result<String, MigrationError> {
    if passphrase.expose_secret().is_empty() {
        return Err(MigrationError::NotaryEmptyPassphrase);
    }
    let headers = [("gun", gun), ("path", path), ("role", Some(role))];
    for (name, value) in headers {
        if let Some(value) = value {
            check_header_value(name, value)?;
        }
    }
    let der = encrypt_pkcs8(secret, passphrase, iterations)?;
    let mut pem = format!("-----BEGIN {ENCRYPTED_PKCS8_LABEL}-----\n");
    for (name, value) in headers {
        if let Some(value) = value {
            pem.push_str(&format!("{name}: {value}\n"));
        }
    }
    pem.push('\n');
    let base64_text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut rest = base64_text.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(PEM_LINE_CHARS));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str(&format!("-----END {ENCRYPTED_PKCS8_LABEL}-----\n"));
    Ok(pem)
}

/// The DER `EncryptedPrivateKeyInfo` of `secret` (PKCS#8 v0, as Notary reads it).
fn encrypt_pkcs8(
    secret: &p256::SecretKey,
    passphrase: &SecretString,
    iterations: u32,
) -> Result<Vec<u8>, MigrationError> {
    let encrypt_failed = |source| MigrationError::NotaryEncryptFailed { source };
    let mut salt = [0u8; 8];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let params = pbes2::Parameters {
        kdf: pbes2::Pbkdf2Params {
            salt: &salt,
            iteration_count: iterations,
            key_length: None,
            prf: pbes2::Pbkdf2Prf::HmacWithSha1,
        }
        .into(),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
    };
    let plaintext = secret.to_pkcs8_der().map_err(encrypt_failed)?;
    let info = pkcs8::PrivateKeyInfo::try_from(plaintext.as_bytes()).map_err(encrypt_failed)?;
    let encrypted = info
        .encrypt_with_params(params, passphrase.expose_secret().as_bytes())
        .map_err(encrypt_failed)?;
    Ok(encrypted.as_bytes().to_vec())
}

/// A header value Go's PEM reader gives back unchanged: one line, no surrounding
/// spaces, not empty.
fn check_header_value(header: &'static str, value: &str) -> Result<(), MigrationError> {
    let usable = !value.is_empty() && value.trim() == value && !value.chars().any(char::is_control);
    if usable {
        Ok(())
    } else {
        Err(MigrationError::NotaryBadHeader { header })
    }
}

/// Why the plaintext inside a block gave no P-256 key.
enum InnerKeyError {
    /// A key of another type, named for the user.
    Unsupported(String),
    /// Not the structure it should be (`what` names it).
    Malformed(&'static str, der::Error),
}

/// The algorithm and key bytes of a PKCS#8 `PrivateKeyInfo`, read tolerantly: version
/// 0 or 1, and the optional `[0]` attributes / `[1]` public key may be present or not
/// (Notary writes version 1 without a public key, which strict parsers refuse).
struct InnerPkcs8<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    private_key: &'a [u8],
}

fn parse_inner_pkcs8(der_bytes: &[u8]) -> der::Result<InnerPkcs8<'_>> {
    let mut reader = SliceReader::new(der_bytes)?;
    let inner = reader.sequence(|fields| {
        let version: u8 = fields.decode()?;
        if version > 1 {
            return Err(der::Tag::Integer.value_error());
        }
        let algorithm: AlgorithmIdentifierRef<'_> = fields.decode()?;
        let private_key = OctetStringRef::decode(fields)?.as_bytes();
        while !fields.is_finished() {
            let optional = AnyRef::decode(fields)?;
            if !optional.tag().is_context_specific() {
                return Err(optional.tag().unexpected_error(None));
            }
        }
        Ok(InnerPkcs8 {
            algorithm,
            private_key,
        })
    })?;
    reader.finish(inner)
}

fn key_from_pkcs8(der_bytes: &[u8]) -> Result<p256::SecretKey, InnerKeyError> {
    let inner = parse_inner_pkcs8(der_bytes)
        .map_err(|error| InnerKeyError::Malformed("the PKCS#8 PrivateKeyInfo", error))?;
    if inner.algorithm.oid != EC_PUBLIC_KEY_OID {
        return Err(InnerKeyError::Unsupported(algorithm_name(
            inner.algorithm.oid,
        )));
    }
    let curve = match inner.algorithm.parameters {
        Some(_) => Some(inner.algorithm.parameters_oid().map_err(|_| {
            InnerKeyError::Malformed(
                "the PKCS#8 EC curve parameter",
                der::Tag::ObjectIdentifier.value_error(),
            )
        })?),
        None => None,
    };
    key_from_sec1(inner.private_key, curve)
}

/// A SEC1 `ECPrivateKey`; `curve` is the one the PKCS#8 wrapper named, if any. The
/// embedded public key, when present, must match the private key.
fn key_from_sec1(
    der_bytes: &[u8],
    curve: Option<ObjectIdentifier>,
) -> Result<p256::SecretKey, InnerKeyError> {
    let malformed = |error| InnerKeyError::Malformed("the SEC1 ECPrivateKey", error);
    let sec1_key = sec1::EcPrivateKey::from_der(der_bytes).map_err(malformed)?;
    // der 0.7 skips context fields it is not asked for, so a public key re-tagged
    // `[0]` would go unread and unchecked: accept only what re-encodes exactly.
    let reencoded = Zeroizing::new(der::Encode::to_der(&sec1_key).map_err(malformed)?);
    if reencoded.as_slice() != der_bytes {
        return Err(malformed(
            der::ErrorKind::Noncanonical {
                tag: der::Tag::Sequence,
            }
            .into(),
        ));
    }
    let sec1_curve = sec1_key.parameters.and_then(|params| params.named_curve());
    for named in [curve, sec1_curve].into_iter().flatten() {
        if named != P256_OID {
            return Err(InnerKeyError::Unsupported(curve_name(named)));
        }
    }
    p256::SecretKey::try_from(sec1_key).map_err(malformed)
}

/// A key type for users, from a PKCS#8 algorithm OID.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.3.6.1.4.1.11591.15.1" => "Ed25519 (Notary's encoding)".into(),
        other => format!("key algorithm {other}"),
    }
}

/// An elliptic curve for users, from its OID.
fn curve_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.33" => "ECDSA P-224".into(),
        "1.3.132.0.34" => "ECDSA P-384".into(),
        "1.3.132.0.35" => "ECDSA P-521".into(),
        "1.3.132.0.10" => "ECDSA secp256k1".into(),
        other => format!("EC curve {other}"),
    }
}

/// A key type from a legacy PEM label such as `RSA PRIVATE KEY`.
fn label_key_type(label: &str) -> String {
    match label.trim_end_matches("PRIVATE KEY").trim() {
        "" => label.to_owned(),
        key_type => key_type.to_owned(),
    }
}

/// The ciphers of legacy `DEK-Info` PEM that Notary ever wrote (256) or that OpenSSL
/// users commonly have (128).
#[derive(Clone, Copy)]
enum LegacyCipher {
    Aes128Cbc,
    Aes256Cbc,
}

impl LegacyCipher {
    fn key_len(self) -> usize {
        match self {
            LegacyCipher::Aes128Cbc => 16,
            LegacyCipher::Aes256Cbc => 32,
        }
    }

    /// Decrypts in place; `None` when the padding is wrong (a wrong passphrase).
    fn decrypt(self, key: &[u8], iv: &[u8; 16], buffer: &mut [u8]) -> Option<usize> {
        let plaintext = match self {
            LegacyCipher::Aes128Cbc => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_mut::<Pkcs7>(buffer),
            LegacyCipher::Aes256Cbc => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_mut::<Pkcs7>(buffer),
        };
        plaintext.ok().map(<[u8]>::len)
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round, as legacy PEM encryption uses
/// it (Go's `x509.DecryptPEMBlock` too): D1 = MD5(pass || salt), Di = MD5(Di-1 ||
/// pass || salt), key = D1 || D2 ... truncated. The salt is the IV's first 8 bytes.
fn evp_bytes_to_key_md5(passphrase: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut previous = Zeroizing::new([0u8; 16]);
    while key.len() < key_len {
        let mut hasher = Md5::new();
        if !key.is_empty() {
            hasher.update(previous.as_slice());
        }
        hasher.update(passphrase);
        hasher.update(salt);
        hasher.finalize_into(previous.as_mut_slice().into());
        key.extend_from_slice(previous.as_slice());
    }
    key.truncate(key_len);
    key
}

#[cfg(test)]
mod tests;
