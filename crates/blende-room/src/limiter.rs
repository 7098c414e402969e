//! Join-attempt limiter on virtual time: per source address and per meeting ID.
//!
//! Every attempt is counted as a failure *when it starts* and forgiven when it succeeds, so a
//! burst of parallel attempts (many connections, one address) cannot race past the limit while
//! the password checks run. After `free_failures` failures each further attempt waits an
//! exponentially growing back-off; at `lockout_failures` the key is locked for `lockout`. A key
//! with no failure for `lockout` starts over.
//!
//! Keys for meetings are the attempted IDs, whether or not such a meeting exists, so the
//! limiter's answer says nothing about existence.
//!
//! Three rules keep outsiders from turning the limiter against real participants:
//! - An address key is a network, not a host: IPv6 by its /64 (what one subscriber gets, so
//!   rotating addresses inside it shares one budget), IPv4 by the address.
//! - A meeting's back-off or lockout never refuses a *clean* address (one with no live
//!   failure of its own): the meeting ID is in every invitation, so anybody could otherwise
//!   lock a meeting against its participants. A clean address gets its own budget, which the
//!   per-address rules bound; the meeting's counter still bounds the guesses from addresses
//!   that have failed before.
//! - A full table evicts the entry least worth keeping (unblocked, oldest failure first)
//!   instead of refusing everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitPolicy {
    pub free_failures: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lockout_failures: u32,
    pub lockout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterConfig {
    pub per_address: LimitPolicy,
    pub per_meeting: LimitPolicy,
    /// Upper bound on remembered keys; when full and nothing has expired, the entry least
    /// worth keeping is evicted (see the module docs).
    pub max_entries: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            per_address: LimitPolicy {
                free_failures: 5,
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(30),
                lockout_failures: 20,
                lockout: Duration::from_secs(15 * 60),
            },
            // Higher than per address: a meeting is attacked from many addresses at once, and
            // a lower limit would let anyone lock real participants out too easily.
            per_meeting: LimitPolicy {
                free_failures: 10,
                backoff_base: Duration::from_millis(500),
                backoff_max: Duration::from_secs(10),
                lockout_failures: 50,
                lockout: Duration::from_secs(15 * 60),
            },
            max_entries: 100_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKey {
    /// The source network: build it with [`LimitKey::address`].
    Address(IpAddr),
    /// Compact (normalised) meeting ID as typed by the client.
    Meeting(String),
}

impl LimitKey {
    /// The key for a source address: an IPv4 address (also when mapped into IPv6) as is, an
    /// IPv6 address by its /64.
    pub fn address(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => LimitKey::Address(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => LimitKey::Address(IpAddr::V4(v4)),
                None => {
                    let net = u128::from(v6) & !((1u128 << 64) - 1);
                    LimitKey::Address(IpAddr::V6(net.into()))
                }
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct Limiter {
    config: LimiterConfig,
    entries: HashMap<LimitKey, Entry>,
}

impl Limiter {
    pub fn new(config: LimiterConfig) -> Self {
        Limiter { config, entries: HashMap::new() }
    }

    fn policy(&self, key: &LimitKey) -> &LimitPolicy {
        match key {
            LimitKey::Address(_) => &self.config.per_address,
            LimitKey::Meeting(_) => &self.config.per_meeting,
        }
    }

    fn live_entry(&self, key: &LimitKey, now: Instant) -> Option<&Entry> {
        let lockout = self.policy(key).lockout;
        self.entries
            .get(key)
            .filter(|e| now.saturating_duration_since(e.last_failure) < lockout || e.blocked_until.is_some_and(|b| b > now))
    }

    /// Whether the address keys among `keys` have no live failure: then meeting keys do not
    /// block (see the module docs).
    fn clean(&self, keys: &[LimitKey], now: Instant) -> bool {
        keys.iter().filter(|k| matches!(k, LimitKey::Address(_))).all(|k| self.live_entry(k, now).is_none_or(|e| e.failures == 0))
    }

    /// `Err(retry_after)` when any of the keys is blocked at `now`; meeting keys only count
    /// for an address that has failed before.
    pub fn check(&self, keys: &[LimitKey], now: Instant) -> Result<(), Duration> {
        let clean = self.clean(keys, now);
        let mut wait = Duration::ZERO;
        for key in keys {
            if clean && matches!(key, LimitKey::Meeting(_)) {
                continue;
            }
            if let Some(until) = self.live_entry(key, now).and_then(|e| e.blocked_until) {
                wait = wait.max(until.saturating_duration_since(now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        Ok(())
    }

    /// Makes room for `n` new keys: expired entries first, then the unblocked entry with the
    /// oldest failure, then the block that ends first.
    fn make_room(&mut self, n: usize, now: Instant) {
        if self.entries.len() + n <= self.config.max_entries {
            return;
        }
        self.prune(now);
        while !self.entries.is_empty() && self.entries.len() + n > self.config.max_entries {
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| match e.blocked_until.filter(|b| *b > now) {
                    None => (0, e.last_failure),
                    Some(until) => (1, until),
                })
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Counts an attempt as failed (called when it starts).
    pub fn record_attempt(&mut self, keys: &[LimitKey], now: Instant) {
        let new = keys.iter().filter(|k| !self.entries.contains_key(k)).count();
        self.make_room(new, now);
        for key in keys {
            let policy = *self.policy(key);
            let live = self.live_entry(key, now).is_some();
            let entry = self.entries.entry(key.clone()).or_insert(Entry { failures: 0, last_failure: now, blocked_until: None });
            if !live {
                *entry = Entry { failures: 0, last_failure: now, blocked_until: None };
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if entry.failures >= policy.lockout_failures {
                entry.blocked_until = Some(now + policy.lockout);
            } else if entry.failures > policy.free_failures {
                let exp = (entry.failures - policy.free_failures - 1).min(20);
                let backoff = policy.backoff_base.saturating_mul(1u32 << exp).min(policy.backoff_max);
                entry.blocked_until = Some(now + backoff);
            }
        }
    }

    /// Takes back the failure counted by [`Limiter::record_attempt`] for an attempt that
    /// succeeded. A block already set stays: success does not reset an attacker's counter.
    pub fn forgive(&mut self, keys: &[LimitKey]) {
        for key in keys {
            if let Some(e) = self.entries.get_mut(key) {
                e.failures = e.failures.saturating_sub(1);
            }
        }
    }

    /// Forgets expired entries.
    pub fn prune(&mut self, now: Instant) {
        let stale: Vec<LimitKey> = self.entries.keys().filter(|k| self.live_entry(k, now).is_none()).cloned().collect();
        for k in stale {
            self.entries.remove(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Deterministic description of the state, for "refused changes nothing" tests.
    pub fn digest(&self) -> String {
        let mut v: Vec<_> = self.entries.iter().map(|(k, e)| format!("{k:?}={}", e.failures)).collect();
        v.sort();
        v.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> LimitKey {
        LimitKey::address(IpAddr::from([127, 0, 0, n]))
    }

    fn v6(s: &str) -> LimitKey {
        LimitKey::address(s.parse().expect("address"))
    }

    #[test]
    fn backs_off_then_locks_out_then_forgets() {
        let cfg = LimiterConfig::default();
        let mut l = Limiter::new(cfg);
        let t0 = Instant::now();
        let mut now = t0;
        let key = [addr(1)];
        for _ in 0..cfg.per_address.free_failures {
            assert!(l.check(&key, now).is_ok());
            l.record_attempt(&key, now);
        }
        // The sixth failure starts the back-off.
        assert!(l.check(&key, now).is_ok());
        l.record_attempt(&key, now);
        let wait = l.check(&key, now).expect_err("backing off");
        assert_eq!(wait, cfg.per_address.backoff_base);
        // Keep failing after each back-off: eventually locked for the whole window.
        let mut attempts = cfg.per_address.free_failures + 1;
        while attempts < cfg.per_address.lockout_failures {
            now += l.check(&key, now).err().unwrap_or(Duration::ZERO);
            l.record_attempt(&key, now);
            attempts += 1;
        }
        let wait = l.check(&key, now).expect_err("locked");
        assert_eq!(wait, cfg.per_address.lockout);
        // Another address is unaffected.
        assert!(l.check(&[addr(2)], now).is_ok());
        now += cfg.per_address.lockout;
        assert!(l.check(&key, now).is_ok());
        l.prune(now + cfg.per_address.lockout);
        assert!(l.is_empty());
    }

    #[test]
    fn success_is_forgiven_but_does_not_unblock() {
        let mut l = Limiter::new(LimiterConfig::default());
        let now = Instant::now();
        let key = [addr(1)];
        for _ in 0..100 {
            l.record_attempt(&key, now);
            l.forgive(&key);
        }
        assert!(l.check(&key, now).is_ok(), "successful joins never add up");
    }

    /// Rotating through one /64 shares one budget; a mapped IPv4 address is the IPv4 address.
    #[test]
    fn an_ipv6_64_shares_one_budget() {
        let cfg = LimiterConfig::default();
        let mut l = Limiter::new(cfg);
        let now = Instant::now();
        for n in 0..cfg.per_address.lockout_failures {
            let key = [v6(&format!("2001:db8:1:2:{n:x}::{n:x}"))];
            let _ = l.check(&key, now);
            l.record_attempt(&key, now);
        }
        assert_eq!(l.len(), 1);
        assert_eq!(l.check(&[v6("2001:db8:1:2:ffff::1")], now), Err(cfg.per_address.lockout));
        assert!(l.check(&[v6("2001:db8:1:3::1")], now).is_ok(), "the next /64 is someone else");
        assert_eq!(v6("::ffff:10.1.2.3"), addr_v4([10, 1, 2, 3]));
    }

    fn addr_v4(ip: [u8; 4]) -> LimitKey {
        LimitKey::address(IpAddr::from(ip))
    }

    /// Outsiders who know a meeting ID cannot lock its participants out: a blocked meeting
    /// still lets a clean address try, while addresses that failed stay bound by it.
    #[test]
    fn a_locked_meeting_never_refuses_a_clean_address() {
        let cfg = LimiterConfig::default();
        let mut l = Limiter::new(cfg);
        let now = Instant::now();
        let meeting = LimitKey::Meeting("k7dm3xqa9fhp".into());
        let mut attackers: Vec<LimitKey> = (0..60).map(|n| v6(&format!("2001:db8::{n:x}"))).collect();
        attackers.extend((1..=5).map(|n| addr_v4([192, 0, 2, n])));
        let mut refused = 0;
        for a in attackers.iter().cycle().take(200) {
            let keys = [a.clone(), meeting.clone()];
            match l.check(&keys, now) {
                Ok(()) => l.record_attempt(&keys, now),
                Err(_) => {
                    refused += 1;
                    l.record_attempt(&keys[..1], now);
                }
            }
        }
        assert!(refused > 150, "the attackers were throttled: {refused} of 200 refused");
        assert!(l.check(&[attackers[0].clone(), meeting.clone()], now).is_err());
        // The meeting itself is locked for those who failed …
        assert!(l.live_entry(&meeting, now).and_then(|e| e.blocked_until).is_some());
        // … but a participant from a clean address gets in.
        let clean = [addr_v4([198, 51, 100, 7]), meeting.clone()];
        assert!(l.check(&clean, now).is_ok());
        l.record_attempt(&clean, now);
        l.forgive(&clean);
        assert!(l.check(&clean, now).is_ok(), "and again after a success");
    }

    /// A table filled by an attacker makes room instead of refusing everyone.
    #[test]
    fn a_full_table_evicts_instead_of_refusing() {
        let cfg = LimiterConfig { max_entries: 4, ..LimiterConfig::default() };
        let mut l = Limiter::new(cfg);
        let mut now = Instant::now();
        let locked = [addr(200)];
        for _ in 0..cfg.per_address.lockout_failures {
            l.record_attempt(&locked, now);
        }
        for n in 0..10 {
            now += Duration::from_millis(1);
            assert!(l.check(&[addr(n)], now).is_ok(), "address {n} refused by a full table");
            l.record_attempt(&[addr(n)], now);
            assert!(l.len() <= 4);
        }
        assert!(l.check(&locked, now).is_err(), "a lockout is the last thing evicted");
    }
}
