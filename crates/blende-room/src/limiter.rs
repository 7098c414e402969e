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
    /// Upper bound on remembered keys; when full and nothing has expired, attempts are refused
    /// (fail closed) rather than forgetting a lockout.
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
    Address(IpAddr),
    /// Compact (normalised) meeting ID as typed by the client.
    Meeting(String),
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

    /// `Err(retry_after)` when any of the keys is blocked at `now`.
    pub fn check(&self, keys: &[LimitKey], now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(until) = self.live_entry(key, now).and_then(|e| e.blocked_until) {
                wait = wait.max(until.saturating_duration_since(now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        if self.entries.len() + keys.len() > self.config.max_entries && !self.entries.keys().any(|k| self.live_entry(k, now).is_none()) {
            return Err(self.config.per_address.backoff_max);
        }
        Ok(())
    }

    /// Counts an attempt as failed (called when it starts).
    pub fn record_attempt(&mut self, keys: &[LimitKey], now: Instant) {
        if self.entries.len() + keys.len() > self.config.max_entries {
            self.prune(now);
        }
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
        LimitKey::Address(IpAddr::from([127, 0, 0, n]))
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

    #[test]
    fn full_table_fails_closed() {
        let cfg = LimiterConfig { max_entries: 4, ..LimiterConfig::default() };
        let mut l = Limiter::new(cfg);
        let now = Instant::now();
        for n in 0..4 {
            l.record_attempt(&[addr(n)], now);
        }
        assert!(l.check(&[addr(9)], now).is_err());
        assert!(l.check(&[addr(9)], now + cfg.per_meeting.lockout).is_ok());
    }
}
