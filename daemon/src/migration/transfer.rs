//! [`Receivers`]: the receiving side of a host-to-host transfer.
//!
//! `tufkey transfer receive` asks the daemon for a fresh X25519 identity; the
//! sending host wraps keys to its recipient (`age1…`) and `tufkey transfer accept`
//! hands the bundle back. The identity's private half never leaves this process:
//! it lives only in memory (zeroized on drop by `x25519-dalek`), for a limited time,
//! and opens exactly one bundle. So a bundle copied off the wire is useless once
//! accepted or once its identity expired, and a daemon restart forgets them all.
//! A few may wait at once (several transfers in flight); the bound keeps a
//! caller from piling up live private keys.

use super::bundle::{self, BundleKey, Unwrap};
use super::MigrationError;
use age::x25519::Identity;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How many receiving identities may wait at once.
pub const MAX_LIVE: usize = 8;

/// The longest a receiving identity lives, whatever the configured TTL: one that
/// waits longer is a standing decryption key, not a transfer.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The receiving identities waiting for a bundle, each with its expiry.
pub struct Receivers {
    ttl: Duration,
    live: Mutex<Vec<Receiver>>,
}

/// One waiting identity.
struct Receiver {
    identity: Identity,
    /// Monotonic, so a wall-clock jump neither revives nor kills it.
    expires: Instant,
}

/// What the receiving operator is shown: where to send, and how to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiving {
    /// The X25519 recipient to wrap the keys to (`age1…`).
    pub recipient: String,
    /// [`fingerprint`] of `recipient`, to compare out of band with the sender's.
    pub fingerprint: String,
    /// When the identity expires (RFC 3339, UTC, rounded down to the second).
    pub expires_at: String,
}

/// A moment on both clocks: monotonic for expiry, wall for what is shown.
#[derive(Clone, Copy)]
struct Now {
    monotonic: Instant,
    wall: OffsetDateTime,
}

impl Now {
    fn current() -> Self {
        Now {
            monotonic: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }
}

impl Receivers {
    /// No identity waits yet; each one created lives `ttl` (at most [`MAX_TTL`]).
    pub fn new(ttl: Duration) -> Self {
        Receivers {
            ttl: ttl.min(MAX_TTL),
            live: Mutex::new(Vec::new()),
        }
    }

    /// A fresh receiving identity; refused while [`MAX_LIVE`] unexpired ones wait.
    pub fn create(&self) -> Result<Receiving, MigrationError> {
        self.create_at(Now::current())
    }

    /// Opens `bundle` with whichever live identity it was made for, and forgets that
    /// identity (one use). A bundle that is for a live identity but does not open
    /// (truncated, edited) is refused and leaves the identity waiting, so the sender
    /// can send an intact copy.
    pub fn accept(&self, bundle: &[u8]) -> Result<Vec<BundleKey>, MigrationError> {
        self.accept_at(bundle, Instant::now(), true)
    }

    /// Opens `bundle` as [`Receivers::accept`] does but leaves its identity waiting:
    /// for a dry run.
    pub fn open(&self, bundle: &[u8]) -> Result<Vec<BundleKey>, MigrationError> {
        self.accept_at(bundle, Instant::now(), false)
    }

    fn create_at(&self, now: Now) -> Result<Receiving, MigrationError> {
        let (expires, expires_at) = self.expiry(now)?;
        let mut live = self.lock();
        forget_expired(&mut live, now.monotonic);
        if live.len() >= MAX_LIVE {
            return Err(MigrationError::ReceiversFull {
                max: MAX_LIVE,
                ttl_secs: self.ttl.as_secs(),
            });
        }
        let identity = Identity::generate();
        let recipient = identity.to_public().to_string();
        live.push(Receiver { identity, expires });
        Ok(Receiving {
            fingerprint: fingerprint(&recipient),
            recipient,
            expires_at,
        })
    }

    /// The lock is held while the bundle opens, so two accepts of one bundle cannot
    /// both use its identity.
    fn accept_at(
        &self,
        bundle: &[u8],
        now: Instant,
        use_up: bool,
    ) -> Result<Vec<BundleKey>, MigrationError> {
        let mut live = self.lock();
        forget_expired(&mut live, now);
        for index in 0..live.len() {
            match bundle::open(bundle, Unwrap::Identity(&live[index].identity)) {
                Ok(keys) => {
                    if use_up {
                        live.swap_remove(index);
                    }
                    return Ok(keys);
                }
                Err(error) if made_for_another_identity(&error) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(MigrationError::NoReceiverForBundle)
    }

    /// When an identity created `now` expires, on both clocks.
    fn expiry(&self, now: Now) -> Result<(Instant, String), MigrationError> {
        let out_of_range = || MigrationError::ReceiverExpiry { source: None };
        let monotonic = now
            .monotonic
            .checked_add(self.ttl)
            .ok_or_else(out_of_range)?;
        let wall = time::Duration::try_from(self.ttl)
            .ok()
            .and_then(|ttl| now.wall.replace_nanosecond(0).ok()?.checked_add(ttl))
            .ok_or_else(out_of_range)?;
        let shown = wall
            .format(&Rfc3339)
            .map_err(|source| MigrationError::ReceiverExpiry {
                source: Some(source),
            })?;
        Ok((monotonic, shown))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Receiver>> {
        // Every change under the lock is a single push, swap_remove or retain.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn forget_expired(live: &mut Vec<Receiver>, now: Instant) {
    live.retain(|receiver| now < receiver.expires);
}

/// Whether `bundle::open` failed only because the bundle is not for this identity.
fn made_for_another_identity(error: &MigrationError) -> bool {
    matches!(error, MigrationError::BundleWrongRecipient)
}

/// A short form of `recipient` for people to compare out of band: the first 8
/// bytes of SHA-256 over the recipient's text, as hex in groups of 4
/// (`1a2b 3c4d 5e6f 7a8b`). Anyone holding the recipient string can recompute it.
pub fn fingerprint(recipient: &str) -> String {
    let digest = Sha256::digest(recipient.as_bytes());
    let hex = hex::encode(&digest[..8]);
    let groups: Vec<&str> = (0..hex.len())
        .step_by(4)
        .map(|start| &hex[start..start + 4])
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyRecord, Location};
    use crate::migration::bundle::{seal, Wrap};

    const TTL: Duration = Duration::from_secs(600);

    impl Receivers {
        fn live_count(&self) -> usize {
            self.lock().len()
        }
    }

    fn key() -> BundleKey {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let record = KeyRecord::new(
            secret.public_key(),
            "example.com/app".parse().unwrap(),
            "targets".parse().unwrap(),
            Location::Software,
            "2025-01-02T03:04:05Z".to_string(),
            true,
        );
        BundleKey::new(&record, secret, "software").unwrap()
    }

    /// A bundle holding one fresh key wrapped to `recipient`, and that key's ID.
    fn bundle_for(recipient: &str) -> (Vec<u8>, String) {
        let key = key();
        let keyid = key.keyid.clone();
        let bytes = seal(&[key], Wrap::Recipient(recipient.parse().unwrap())).unwrap();
        (bytes, keyid)
    }

    #[test]
    fn a_bundle_for_a_live_identity_is_accepted_once() {
        let receivers = Receivers::new(TTL);
        let receiving = receivers.create().unwrap();
        let (bundle, keyid) = bundle_for(&receiving.recipient);

        // A dry run opens the bundle and leaves the identity waiting.
        assert_eq!(receivers.open(&bundle).unwrap()[0].keyid, keyid);
        assert_eq!(receivers.live_count(), 1);

        let keys = receivers.accept(&bundle).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].keyid, keyid);
        assert_eq!(receivers.live_count(), 0);

        let replay = receivers.accept(&bundle).unwrap_err();
        assert!(
            matches!(replay, MigrationError::NoReceiverForBundle),
            "{replay}"
        );
        assert!(replay.to_string().contains("tufkey transfer receive"));
    }

    #[test]
    fn the_identity_a_bundle_was_made_for_is_found_among_several() {
        let receivers = Receivers::new(TTL);
        let first = receivers.create().unwrap();
        let second = receivers.create().unwrap();
        assert_ne!(first.recipient, second.recipient);
        let (bundle, keyid) = bundle_for(&second.recipient);

        assert_eq!(receivers.accept(&bundle).unwrap()[0].keyid, keyid);
        assert_eq!(receivers.live_count(), 1);
        let (bundle, keyid) = bundle_for(&first.recipient);
        assert_eq!(receivers.accept(&bundle).unwrap()[0].keyid, keyid);
    }

    #[test]
    fn an_expired_identity_opens_nothing_and_is_forgotten() {
        let receivers = Receivers::new(TTL);
        let created = Now::current();
        let receiving = receivers.create_at(created).unwrap();
        let (bundle, _) = bundle_for(&receiving.recipient);

        let at_expiry = created.monotonic + TTL;
        let error = receivers.accept_at(&bundle, at_expiry, true).unwrap_err();
        assert!(
            matches!(error, MigrationError::NoReceiverForBundle),
            "{error}"
        );
        assert_eq!(receivers.live_count(), 0);
        // Not even a clock read before the expiry brings it back.
        let error = receivers
            .accept_at(&bundle, created.monotonic, true)
            .unwrap_err();
        assert!(
            matches!(error, MigrationError::NoReceiverForBundle),
            "{error}"
        );
    }

    #[test]
    fn an_identity_just_before_its_expiry_still_opens_its_bundle() {
        let receivers = Receivers::new(TTL);
        let created = Now::current();
        let receiving = receivers.create_at(created).unwrap();
        let (bundle, keyid) = bundle_for(&receiving.recipient);
        let just_before = created.monotonic + TTL - Duration::from_millis(1);
        assert_eq!(
            receivers.accept_at(&bundle, just_before, true).unwrap()[0].keyid,
            keyid
        );
    }

    #[test]
    fn a_bundle_for_another_recipient_is_refused_and_consumes_nothing() {
        let receivers = Receivers::new(TTL);
        let receiving = receivers.create().unwrap();
        let stranger = Identity::generate().to_public().to_string();
        let (bundle, _) = bundle_for(&stranger);

        let error = receivers.accept(&bundle).unwrap_err();
        assert!(
            matches!(error, MigrationError::NoReceiverForBundle),
            "{error}"
        );
        assert_eq!(error.kind(), crate::error::ErrorKind::FailedPrecondition);
        assert_eq!(receivers.live_count(), 1);
        let (bundle, _) = bundle_for(&receiving.recipient);
        receivers.accept(&bundle).unwrap();
    }

    #[test]
    fn a_damaged_bundle_is_refused_and_its_identity_keeps_waiting() {
        let receivers = Receivers::new(TTL);
        let receiving = receivers.create().unwrap();
        let (bundle, keyid) = bundle_for(&receiving.recipient);

        let truncated = &bundle[..bundle.len() - 10];
        let error = receivers.accept(truncated).unwrap_err();
        assert!(
            !matches!(error, MigrationError::NoReceiverForBundle),
            "{error}"
        );
        assert_eq!(receivers.live_count(), 1);
        assert_eq!(receivers.accept(&bundle).unwrap()[0].keyid, keyid);
    }

    #[test]
    fn at_most_max_live_identities_wait_until_some_expire() {
        let receivers = Receivers::new(TTL);
        let created = Now::current();
        for _ in 0..MAX_LIVE {
            receivers.create_at(created).unwrap();
        }
        let error = receivers.create_at(created).unwrap_err();
        assert!(matches!(
            error,
            MigrationError::ReceiversFull { max: MAX_LIVE, .. }
        ));
        assert_eq!(receivers.live_count(), MAX_LIVE);

        let later = Now {
            monotonic: created.monotonic + TTL,
            wall: created.wall + TTL,
        };
        receivers.create_at(later).unwrap();
        assert_eq!(receivers.live_count(), 1);
    }

    #[test]
    fn receiving_shows_a_real_recipient_its_fingerprint_and_the_expiry() {
        let receivers = Receivers::new(TTL);
        let created = Now::current();
        let receiving = receivers.create_at(created).unwrap();

        assert!(receiving.recipient.starts_with("age1"));
        receiving
            .recipient
            .parse::<age::x25519::Recipient>()
            .unwrap();
        assert_eq!(receiving.fingerprint, fingerprint(&receiving.recipient));
        let expires = OffsetDateTime::parse(&receiving.expires_at, &Rfc3339).unwrap();
        let lead = expires - created.wall;
        assert!(lead <= TTL && lead > TTL - Duration::from_secs(1), "{lead}");
    }

    #[test]
    fn the_fingerprint_is_sixteen_hex_digits_of_sha256_in_groups() {
        // SHA-256("abc") = ba7816bf 8f01cfea ...
        assert_eq!(fingerprint("abc"), "ba78 16bf 8f01 cfea");
    }

    #[test]
    fn the_time_to_live_is_capped() {
        let receivers = Receivers::new(Duration::from_secs(u64::MAX));
        let created = Now::current();
        let receiving = receivers.create_at(created).unwrap();
        let expires = OffsetDateTime::parse(&receiving.expires_at, &Rfc3339).unwrap();
        assert!(expires - created.wall <= MAX_TTL);
    }
}
