//! The back-off after wrong `Unlock` passphrases: each wrong one in a row doubles
//! the time `Unlock` is refused (1 s up to 60 s), so guessing costs time and the
//! key derivation (64 MiB of Argon2id) cannot be driven in a loop.

use std::time::{Duration, Instant};

/// The first back-off after a wrong `Unlock` passphrase; each further one doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Wrong `Unlock` passphrases in a row and the back-off they earned.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Wrong passphrases in a row.
    pub failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// How long `Unlock` is still refused at `now`.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    /// Counts a wrong passphrase at `now`; returns the back-off it starts.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = backoff_after(self.failures);
        self.until = Some(now + wait);
        wait
    }

    /// Clears the count after a right passphrase.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

/// The back-off after `failures` wrong passphrases in a row: 1 s, 2 s, 4 s ... 60 s.
fn backoff_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_FIRST * 2u32.pow(doublings)).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unlock_backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff_after(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn the_backoff_refuses_until_it_ends_and_a_success_clears_it() {
        let mut backoff = Backoff::default();
        let now = Instant::now();
        assert_eq!(backoff.remaining(now), None);
        assert_eq!(backoff.failed(now), Duration::from_secs(1));
        assert_eq!(backoff.failed(now), Duration::from_secs(2));
        assert_eq!(
            backoff.remaining(now + Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(backoff.remaining(now + Duration::from_secs(2)), None);
        backoff.succeeded();
        assert_eq!(
            backoff.failed(now),
            Duration::from_secs(1),
            "counting restarts"
        );
    }
}
