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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::PeerId;

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

/// ICE restarts of a call's connections, by link (a link outlives its connections: a new
/// subscription is a new connection on the same feed). The first failure of a link is acted
/// on at once; a link that fails again is restarted no sooner than [`delay`] after its last
/// restart (a path that is still cut fails its checks within seconds, and Janus should not get
/// a renegotiation each time), until it connects. A restart that has not connected
/// [`ICE_ATTEMPT`] after it was made counts as failed: its candidate pairs gave up their
/// checks while the path was cut, and ICE would report `failed` only 30 s later, long after
/// the path came back.
#[derive(Debug, Default)]
pub(crate) struct IceRetries {
    links: BTreeMap<String, IceRetry>,
}

/// How long a restarted connection has to connect (a pair fails after 7 unanswered checks,
/// about 1.5 s; TURN allocations and far candidates take the rest).
pub(crate) const ICE_ATTEMPT: Duration = Duration::from_secs(4);

#[derive(Debug)]
struct IceRetry {
    restarts: u32,
    /// When the latest restart was made.
    last: Instant,
    /// A failure that came too soon: this connection is restarted then.
    due: Option<(Instant, PeerId)>,
}

/// What [`IceRetries::take_due`] asks to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IceDue {
    /// This connection failed and its wait is over.
    Failed(PeerId),
    /// The link's latest restart did not connect in [`ICE_ATTEMPT`]: whatever connection
    /// serves the link now.
    Hung,
}

impl IceRetries {
    /// `link`'s connection `peer` failed at `now`: whether to restart it now. If not, it is
    /// due at [`IceRetries::next`].
    pub fn failed(&mut self, link: &str, peer: PeerId, now: Instant) -> bool {
        match self.links.get_mut(link) {
            None => {
                self.links.insert(link.to_owned(), IceRetry { restarts: 1, last: now, due: None });
                true
            }
            Some(retry) => {
                let at = retry.last + delay(retry.restarts);
                if now >= at {
                    retry.restarts += 1;
                    retry.last = now;
                    retry.due = None;
                    true
                } else {
                    retry.due = Some((at, peer));
                    false
                }
            }
        }
    }

    /// `link` is up again, or gone: its next failure is acted on at once.
    pub fn connected(&mut self, link: &str) {
        self.links.remove(link);
    }

    /// The restarts made due by `now`, as (link, what); each counts as made.
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, IceDue)> {
        let mut due = Vec::new();
        for (link, retry) in &mut self.links {
            if let Some((at, peer)) = retry.due.filter(|(at, _)| now >= *at) {
                retry.due = None;
                retry.restarts += 1;
                retry.last = at.max(retry.last);
                due.push((link.clone(), IceDue::Failed(peer)));
            } else if retry.due.is_none() && now >= retry.last + ICE_ATTEMPT {
                retry.restarts += 1;
                retry.last = now;
                due.push((link.clone(), IceDue::Hung));
            }
        }
        due
    }

    pub fn next(&self) -> Option<Instant> {
        self.links.values().map(|r| r.due.map_or(r.last + ICE_ATTEMPT, |(at, _)| at)).min()
    }

    /// Restarts made on `link` since it was last up.
    #[cfg(test)]
    pub fn restarts(&self, link: &str) -> u32 {
        self.links.get(link).map_or(0, |r| r.restarts)
    }
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
    fn a_link_that_keeps_failing_is_restarted_at_most_at_the_back_off() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = IceRetries::default();
        assert!(r.failed("feed:1", PeerId(1), t0), "the first failure at once");
        assert!(r.failed("feed:2", PeerId(2), t0), "links are independent");
        // Failing again 100 ms after its restart: due 250 ms after it.
        assert!(!r.failed("feed:1", PeerId(3), t0 + ms(100)));
        assert_eq!(r.next(), Some(t0 + ms(250)));
        assert!(r.take_due(t0 + ms(249)).is_empty());
        assert_eq!(r.take_due(t0 + ms(250)), [("feed:1".to_owned(), IceDue::Failed(PeerId(3)))]);
        assert_eq!(r.next(), Some(t0 + ICE_ATTEMPT), "feed:2's restart is awaited");
        // The next one 500 ms after that, then 1 s, 2 s, and 2 s on.
        assert!(!r.failed("feed:1", PeerId(4), t0 + ms(300)));
        assert_eq!(r.next(), Some(t0 + ms(750)));
        assert_eq!(r.take_due(t0 + ms(800)).len(), 1);
        assert!(r.failed("feed:1", PeerId(5), t0 + ms(1750)), "1 s after the restart at 750 ms");
        assert_eq!(r.restarts("feed:1"), 4);
        r.connected("feed:1");
        assert_eq!(r.restarts("feed:1"), 0);
        assert!(r.failed("feed:1", PeerId(6), t0 + ms(1800)), "up in between: at once again");
    }

    #[test]
    fn a_restart_that_does_not_connect_in_time_is_made_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = IceRetries::default();
        assert!(r.failed("mesh:2", PeerId(1), t0));
        assert_eq!(r.next(), Some(t0 + ICE_ATTEMPT));
        assert!(r.take_due(t0 + ICE_ATTEMPT - ms(1)).is_empty(), "still in time");
        assert_eq!(r.take_due(t0 + ICE_ATTEMPT), [("mesh:2".to_owned(), IceDue::Hung)]);
        assert_eq!(r.restarts("mesh:2"), 2);
        // And again, an attempt's length after each, for as long as the path stays cut.
        let second = t0 + ICE_ATTEMPT;
        assert_eq!(r.next(), Some(second + ICE_ATTEMPT));
        assert_eq!(r.take_due(second + ICE_ATTEMPT).len(), 1);
        // The path is back and the latest connects: nothing more is due.
        r.connected("mesh:2");
        assert_eq!(r.next(), None);
        assert!(r.take_due(second + ICE_ATTEMPT * 3).is_empty());
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
