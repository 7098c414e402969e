//! A fast answer to a link that drops what we send (sans-IO: the far end's transport-wide
//! acknowledgements in, a ceiling out).
//!
//! GCC's loss-based controller lowers its estimate by a fraction per update, so from a
//! 2.4 Mbit/s estimate to a 500 kbit/s uplink takes it about two seconds, during which the
//! encoder goes on sending more than the link carries: a full queue drops packets of every
//! picture, the receiver waits for a keyframe and every keyframe is too large to get through.
//! The far end's acknowledgements say at once what does get through. When more than
//! [`LOSS_FRACTION`] of the bytes that left in the last [`WINDOW`] were not acknowledged, the
//! target is held at what was: the encoder and the step-down ladder follow the link within the
//! window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span of departures judged.
pub const WINDOW: Duration = Duration::from_secs(1);
/// More than this share of the window's bytes lost caps the target: random loss of a few
/// per cent is the link's noise, not its limit (FEC and NACK are for that).
pub const LOSS_FRACTION: f64 = 0.10;
/// Fewer packets than this in the window say nothing.
const MIN_PACKETS: usize = 20;

/// Bytes that left in the last [`WINDOW`], and whether each was acknowledged.
#[derive(Debug, Default)]
pub struct LossCap {
    packets: VecDeque<(Instant, usize, bool)>,
    latest: Option<Instant>,
}

impl LossCap {
    /// One reported packet: when it left, its size on the wire, whether it arrived.
    pub fn packet(&mut self, departure: Instant, size: usize, arrived: bool) {
        self.packets.push_back((departure, size, arrived));
        let latest = *self.latest.insert(self.latest.map_or(departure, |l| l.max(departure)));
        while self.packets.front().is_some_and(|p| latest.saturating_duration_since(p.0) > WINDOW) {
            self.packets.pop_front();
        }
    }

    /// The ceiling for the target, bit/s: what arrived of the window, while more than
    /// [`LOSS_FRACTION`] of it was lost; `None` otherwise.
    #[must_use]
    pub fn ceiling_bps(&self) -> Option<f64> {
        if self.packets.len() < MIN_PACKETS {
            return None;
        }
        let sent: usize = self.packets.iter().map(|p| p.1).sum();
        let arrived: usize = self.packets.iter().filter(|p| p.2).map(|p| p.1).sum();
        let lost = sent.saturating_sub(arrived) as f64;
        (lost > sent as f64 * LOSS_FRACTION).then(|| arrived as f64 * 8.0 / WINDOW.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kbps` of 1,000-byte packets for `ms` from `from`, every `lose_every`-th one lost (0:
    /// none).
    fn send(cap: &mut LossCap, from: Instant, ms: u64, kbps: u64, lose_every: usize) {
        let per_ms = kbps as f64 / 8.0 / 1000.0;
        let n = (per_ms * ms as f64) as usize;
        for i in 0..n {
            let at = from + Duration::from_micros(ms * 1000 * i as u64 / n as u64);
            cap.packet(at, 1000, lose_every == 0 || i % lose_every != 0);
        }
    }

    #[test]
    fn a_link_that_drops_a_third_caps_the_target_at_what_arrives() {
        let t0 = Instant::now();
        let mut cap = LossCap::default();
        send(&mut cap, t0, 1000, 600, 0);
        assert_eq!(cap.ceiling_bps(), None, "nothing lost");
        // 5 % random loss: noise, no cap.
        send(&mut cap, t0 + Duration::from_secs(1), 1000, 600, 20);
        assert_eq!(cap.ceiling_bps(), None);
        // The uplink now carries two thirds of 600 kbit/s.
        send(&mut cap, t0 + Duration::from_secs(2), 1000, 600, 3);
        let ceiling = cap.ceiling_bps().expect("capped");
        assert!((390_000.0..=410_000.0).contains(&ceiling), "{ceiling}");
        // Back under what the link carries: the window forgets the loss within a second.
        send(&mut cap, t0 + Duration::from_secs(3), 1100, 300, 0);
        assert_eq!(cap.ceiling_bps(), None);
    }

    #[test]
    fn a_few_packets_say_nothing() {
        let t0 = Instant::now();
        let mut cap = LossCap::default();
        for i in 0..10u64 {
            cap.packet(t0 + Duration::from_millis(i * 50), 1000, i % 2 == 0);
        }
        assert_eq!(cap.ceiling_bps(), None);
    }
}
