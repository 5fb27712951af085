//! Slows down guessing of credentials: after a few failures from one address, each further
//! attempt from it waits for a slot, one slot per `delay`, the delay doubling with every failure
//! up to [`DELAY_MAX`]. Attempts are spaced whatever the number of connections they come on, and
//! the check itself waits (not only the refusal), so parallel guesses learn nothing sooner. An
//! attempt whose slot would be more than [`QUEUE_MAX`] away is refused unchecked, so waiting
//! attempts cannot pile up. An address is forgotten [`FORGET_AFTER`] after its last failure;
//! other addresses are not slowed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may make before its attempts wait.
pub const FREE_FAILURES: u32 = 3;
/// The wait after the first failure past the free ones; it doubles with each further failure.
pub const DELAY_FIRST: Duration = Duration::from_millis(10);
pub const DELAY_MAX: Duration = Duration::from_secs(1);
pub const FORGET_AFTER: Duration = Duration::from_secs(60);
/// The longest an attempt waits for its slot; further out, it is refused unchecked.
pub const QUEUE_MAX: Duration = Duration::from_secs(10);
/// Addresses tracked at most; past it, the ones not failing lately are dropped first.
const ADDRESSES_MAX: usize = 100_000;

/// When an attempt is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Now,
    At(Instant),
    /// Not at all: too many attempts from its address wait already.
    Refused,
}

impl Slot {
    /// Waits for the slot; false if the attempt is refused unchecked.
    pub async fn wait(self) -> bool {
        match self {
            Slot::Now => true,
            Slot::At(at) => {
                tokio::time::sleep_until(at.into()).await;
                true
            }
            Slot::Refused => false,
        }
    }
}

#[derive(Default)]
pub struct Throttle {
    addresses: Mutex<HashMap<IpAddr, Record>>,
}

/// An address's attempts since its last success.
struct Record {
    /// Attempts counted as failures from the moment they are made (a success clears them), so
    /// attempts made together are spaced as if each had failed.
    strikes: u32,
    last_strike: Instant,
    /// When the next attempt may be checked.
    next_slot: Instant,
}

impl Record {
    fn delay(&self) -> Duration {
        match self.strikes.checked_sub(FREE_FAILURES) {
            None => Duration::ZERO,
            Some(doublings) => DELAY_FIRST.saturating_mul(1 << doublings.min(16)).min(DELAY_MAX),
        }
    }
}

impl Throttle {
    /// When an attempt from `ip` made at `now` may be checked, taking that slot; the attempt
    /// counts as failed until [`Throttle::succeeded`].
    pub fn slot(&self, ip: IpAddr, now: Instant) -> Slot {
        let mut addresses = self.addresses.lock().expect("throttle lock");
        if addresses.len() >= ADDRESSES_MAX && !addresses.contains_key(&ip) {
            addresses.retain(|_, r| now.duration_since(r.last_strike) <= FORGET_AFTER);
        }
        let fresh = Record { strikes: 0, last_strike: now, next_slot: now };
        let record = addresses.entry(ip).or_insert(fresh);
        if now.duration_since(record.last_strike) > FORGET_AFTER {
            *record = Record { strikes: 0, last_strike: now, next_slot: now };
        }
        let delay = record.delay();
        let at = record.next_slot.max(now);
        if at.duration_since(now) > QUEUE_MAX {
            metrics::counter!("sessiongrid_auth_throttled_total", "outcome" => "refused")
                .increment(1);
            return Slot::Refused;
        }
        record.strikes = record.strikes.saturating_add(1);
        record.last_strike = now;
        if delay.is_zero() {
            return Slot::Now;
        }
        record.next_slot = at + delay;
        metrics::counter!("sessiongrid_auth_throttled_total", "outcome" => "waited").increment(1);
        Slot::At(at)
    }

    /// An attempt from `ip` succeeded: it knows the secret, so it is no longer slowed.
    pub fn succeeded(&self, ip: IpAddr) {
        self.addresses.lock().expect("throttle lock").remove(&ip);
    }
}

/// Compares two secrets in time independent of where they differ and of their lengths (their
/// SHA-256 digests are compared, every byte).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_slowed_after_its_free_failures_and_others_are_not() {
        let throttle = Throttle::default();
        let (guesser, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.slot(guesser, t0), Slot::Now, "the free attempts cost nothing");
        }
        // Then slots are spaced by a doubling delay, however many attempts come at once.
        assert_eq!(throttle.slot(guesser, t0), Slot::At(t0));
        assert_eq!(throttle.slot(guesser, t0), Slot::At(t0 + DELAY_FIRST));
        assert_eq!(throttle.slot(guesser, t0), Slot::At(t0 + DELAY_FIRST * 3));
        assert_eq!(throttle.slot(other, t0), Slot::Now);
        let slots: Vec<Slot> = (0..30).map(|_| throttle.slot(guesser, t0)).collect();
        let Slot::At(a) = slots[10] else { panic!("a slot: {slots:?}") };
        assert_eq!(slots[11], Slot::At(a + DELAY_MAX), "the delay is capped");
        assert_eq!(slots.last(), Some(&Slot::Refused), "no more than QUEUE_MAX of waiting");
        assert_eq!(throttle.slot(guesser, t0 + FORGET_AFTER * 2), Slot::Now, "forgotten in time");
        throttle.succeeded(other);
        throttle.succeeded(guesser);
        assert!(throttle.addresses.lock().unwrap().is_empty());
    }

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cret-longer"));
        assert!(!same_secret(b"", b"x"));
    }
}
