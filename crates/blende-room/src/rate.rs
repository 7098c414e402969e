//! How much one connection may send: a token bucket for messages and one for bytes, on the
//! caller's clock. The server spends from it for every frame a client sends, before the frame
//! reaches the room; a client that overdraws is closed, so one member cannot flood the others
//! with rosters and relayed offers until their queues overflow.

use std::time::Instant;

/// Burst and sustained rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendLimits {
    pub burst_messages: u32,
    pub messages_per_s: u32,
    pub burst_bytes: u32,
    pub bytes_per_s: u32,
}

impl Default for SendLimits {
    /// Far above what a client needs (joining a 100-person mesh is a few hundred messages of a
    /// few KiB), far below what floods a meeting.
    fn default() -> Self {
        SendLimits { burst_messages: 400, messages_per_s: 100, burst_bytes: 2 << 20, bytes_per_s: 512 << 10 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    capacity: f64,
    per_s: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: u32, per_s: u32, now: Instant) -> Self {
        Bucket { capacity: f64::from(capacity), per_s: f64::from(per_s), tokens: f64::from(capacity), last: now }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_s).min(self.capacity);
        self.last = now;
    }
}

/// One connection's budget.
#[derive(Clone, Copy, Debug)]
pub struct SendBudget {
    messages: Bucket,
    bytes: Bucket,
}

impl SendBudget {
    pub fn new(limits: SendLimits, now: Instant) -> Self {
        SendBudget {
            messages: Bucket::new(limits.burst_messages, limits.messages_per_s, now),
            bytes: Bucket::new(limits.burst_bytes, limits.bytes_per_s, now),
        }
    }

    /// Spends one message of `bytes`; `false` when the connection has overdrawn either bucket
    /// (nothing is spent then).
    pub fn spend(&mut self, bytes: usize, now: Instant) -> bool {
        self.messages.refill(now);
        self.bytes.refill(now);
        #[allow(clippy::cast_precision_loss)] // message sizes are far below 2^52
        let cost = bytes as f64;
        if self.messages.tokens < 1.0 || self.bytes.tokens < cost {
            return false;
        }
        self.messages.tokens -= 1.0;
        self.bytes.tokens -= cost;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: SendLimits = SendLimits { burst_messages: 10, messages_per_s: 5, burst_bytes: 1000, bytes_per_s: 100 };

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = SendBudget::new(LIMITS, t0);
        assert!((0..10).all(|_| b.spend(10, t0)));
        assert!(!b.spend(10, t0), "the burst is spent");
        // 5 per second: one more every 200 ms.
        assert!(!b.spend(10, t0 + Duration::from_millis(199)));
        assert!(b.spend(10, t0 + Duration::from_millis(200)));
        // A long quiet time refills only up to the burst.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..10).all(|_| b.spend(1, later)));
        assert!(!b.spend(1, later));
    }

    #[test]
    fn bytes_are_budgeted_apart_from_messages() {
        let t0 = Instant::now();
        let mut b = SendBudget::new(LIMITS, t0);
        assert!(b.spend(900, t0));
        assert!(!b.spend(200, t0), "1100 bytes in a 1000-byte burst");
        assert!(b.spend(100, t0), "a refused message spends nothing");
        assert!(b.spend(100, t0 + Duration::from_secs(1)), "100 bytes per second");
        assert!(!b.spend(2000, t0 + Duration::from_secs(1000)), "bigger than the burst never passes");
    }
}
