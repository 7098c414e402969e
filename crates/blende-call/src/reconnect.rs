//! When the signalling session to the server we joined is lost: how soon to try again.
//!
//! The first attempt goes at once, then after [`FIRST_RETRY`], doubling up to [`MAX_RETRY`]
//! (a home connection that comes back should be used within a few seconds, and a server that
//! restarts should not be hammered). After [`GIVE_UP_AFTER`] without success the call ends.
//! One attempt runs at a time, for at most [`ATTEMPT_TIMEOUT`] (the driver's limit): the
//! next is scheduled when the driver reports this one failed, its wait counted from the
//! failed attempt's start. So an attempt that hung until its timeout on a cut link (TCP sends
//! its SYN again after 1 s, then only after 3 s more) is followed at once by a fresh one, and
//! a link that comes back is used within about two seconds.

use std::time::{Duration, Instant};

/// The wait after the first failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(2);
/// How long one attempt may take (TCP, TLS, WebSocket handshake), enforced by the driver.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a call tries to come back before it ends.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    since: Instant,
    /// Attempts started so far.
    attempts: u32,
    /// When the next attempt is due; `None` while one runs.
    next: Option<Instant>,
    /// When the running (or last) attempt started.
    started: Instant,
}

impl Backoff {
    /// Signalling was lost at `now`: the first attempt is due at once.
    pub fn new(now: Instant) -> Self {
        Backoff { since: now, attempts: 0, next: Some(now), started: now }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Whether an attempt runs (started, its outcome not reported yet).
    pub fn running(&self) -> bool {
        self.next.is_none() && self.attempts > 0
    }

    /// Whether an attempt is due at `now`; it then counts as running.
    pub fn start_due(&mut self, now: Instant) -> bool {
        if self.next.is_some_and(|at| now >= at) {
            self.next = None;
            self.attempts += 1;
            self.started = now;
            return true;
        }
        false
    }

    /// The running attempt failed at `now`: the next is scheduled, or `false` once the call
    /// has tried for [`GIVE_UP_AFTER`].
    pub fn failed(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.since) >= GIVE_UP_AFTER {
            self.next = None;
            return false;
        }
        self.next = Some((self.started + delay(self.attempts)).max(now));
        true
    }
}

/// The wait after the `attempts`-th failed attempt.
pub(crate) fn delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(8);
    (FIRST_RETRY * 2u32.pow(doublings)).min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_double_up_to_the_cap_and_give_up() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        assert!(b.start_due(t0), "the first attempt goes at once");
        assert!(!b.start_due(t0), "one attempt at a time");
        let mut now = t0;
        let mut waits = Vec::new();
        while b.failed(now) {
            let at = b.next().expect("scheduled");
            waits.push(at - now);
            assert!(!b.start_due(at - Duration::from_millis(1)), "not before it is due");
            assert!(b.start_due(at));
            now = at;
        }
        let ms: Vec<u128> = waits.iter().take(6).map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 2000, 2000]);
        assert!(now - t0 >= GIVE_UP_AFTER && now - t0 < GIVE_UP_AFTER + MAX_RETRY);
        assert_eq!(b.next(), None, "nothing more after giving up");
        assert_eq!(b.attempts() as usize, waits.len() + 1);
    }

    #[test]
    fn the_wait_counts_from_the_start_of_the_failed_attempt() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        for _ in 0..4 {
            let at = b.next().expect("due");
            assert!(b.start_due(at));
            assert!(b.failed(at));
        }
        // The fifth attempt hangs until its timeout: the sixth follows at once.
        let at = b.next().expect("due");
        assert!(b.start_due(at));
        assert!(b.failed(at + ATTEMPT_TIMEOUT));
        assert_eq!(b.next(), Some(at + ATTEMPT_TIMEOUT));
        // One that fails quickly waits out the rest of the interval.
        let at = at + ATTEMPT_TIMEOUT;
        assert!(b.start_due(at));
        assert!(b.failed(at + Duration::from_millis(100)));
        assert_eq!(b.next(), Some(at + MAX_RETRY));
    }
}
