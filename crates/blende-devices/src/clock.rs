//! The media clock: monotonic microseconds since the first use in this process.
//! Every capture path stamps frames with it, and the kill switch closes its gates
//! on it, so "captured after the kill" means the same thing everywhere.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the media clock's epoch (never 0 after start-up work).
#[must_use]
pub fn now_us() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The media-clock time of `instant` (saturating at the epoch).
#[must_use]
pub fn to_us(instant: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(instant.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_consistent_with_instants() {
        let a = now_us();
        let instant = Instant::now();
        let b = now_us();
        assert!(a <= b);
        let mid = to_us(instant);
        assert!(a <= mid && mid <= b);
    }
}
