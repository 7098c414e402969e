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
//!
//! The link's limit, once found, is remembered for [`HOLD`]: GCC's delay-based estimate grows
//! while the encoder sends less than it allows (a simple picture at a lower rung), and
//! without the memory the ladder climbs back to a size the link has just shown it cannot
//! carry, every few seconds. Only a window lossy in each of its quarters, in which most still arrived,
//! sets the memory: that is a link at its rate, where the onset of a loss mixes in what came
//! before and an outage (a cut, nearly nothing arriving) says nothing about the rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span of departures judged.
pub const WINDOW: Duration = Duration::from_secs(1);
/// More than this share of the window's bytes lost caps the target: random loss of a few
/// per cent is the link's noise, not its limit (FEC and NACK are for that).
pub const LOSS_FRACTION: f64 = 0.10;
/// Fewer packets than this in the window say nothing.
const MIN_PACKETS: usize = 20;
/// How long a found limit holds the target, from the last window that showed it.
pub const HOLD: Duration = Duration::from_secs(30);
/// A lossy window sets the remembered limit only if at least this share of it arrived.
const HOLD_MIN_ARRIVED: f64 = 0.5;

/// Bytes that left in the last [`WINDOW`], and whether each was acknowledged.
#[derive(Debug, Default)]
pub struct LossCap {
    packets: VecDeque<(Instant, usize, bool)>,
    /// Bytes of `packets`, and of those that arrived.
    sent: usize,
    arrived: usize,
    latest: Option<Instant>,
    /// The link's limit (bit/s) and when a window last showed it.
    held: Option<(Instant, f64)>,
}

impl LossCap {
    /// One reported packet: when it left, its size on the wire, whether it arrived.
    pub fn packet(&mut self, departure: Instant, size: usize, arrived: bool) {
        self.packets.push_back((departure, size, arrived));
        self.sent += size;
        self.arrived += if arrived { size } else { 0 };
        let latest = *self.latest.insert(self.latest.map_or(departure, |l| l.max(departure)));
        while let Some(&(at, size, arrived)) = self.packets.front() {
            if latest.saturating_duration_since(at) <= WINDOW {
                break;
            }
            self.packets.pop_front();
            self.sent -= size;
            self.arrived -= if arrived { size } else { 0 };
        }
        if self.held.is_some_and(|(at, _)| latest.saturating_duration_since(at) > HOLD) {
            self.held = None;
        }
        if let Some(limit) = self.window_ceiling_bps()
            && self.arrived as f64 >= self.sent as f64 * HOLD_MIN_ARRIVED
            && self.lossy_throughout(latest)
        {
            self.held = Some((latest, limit));
        }
    }

    /// Whether each quarter of the window lost more than [`LOSS_FRACTION`]: the sender was
    /// above the link's rate all through it. At the start of a loss (or of an outage) the
    /// first quarter is clean, once the encoder has come down the last is: such a window's
    /// arrivals are not the link's rate.
    fn lossy_throughout(&self, latest: Instant) -> bool {
        const PARTS: u32 = 4;
        let (mut sent, mut arrived) = ([0usize; PARTS as usize], [0usize; PARTS as usize]);
        for &(at, size, ok) in &self.packets {
            let age = latest.saturating_duration_since(at);
            let i = ((age.as_secs_f64() / WINDOW.as_secs_f64() * f64::from(PARTS)) as usize).min(PARTS as usize - 1);
            sent[i] += size;
            arrived[i] += if ok { size } else { 0 };
        }
        sent.iter().zip(arrived).all(|(&s, a)| s > 0 && s.saturating_sub(a) as f64 > s as f64 * LOSS_FRACTION)
    }

    /// What arrived of the window, while more than [`LOSS_FRACTION`] of it was lost.
    fn window_ceiling_bps(&self) -> Option<f64> {
        if self.packets.len() < MIN_PACKETS {
            return None;
        }
        let lost = self.sent.saturating_sub(self.arrived) as f64;
        (lost > self.sent as f64 * LOSS_FRACTION).then(|| self.arrived as f64 * 8.0 / WINDOW.as_secs_f64())
    }

    /// The ceiling for the target, bit/s: what arrived of the window while it is lossy, and
    /// the limit a link at its rate showed within the last [`HOLD`]; `None` otherwise.
    #[must_use]
    pub fn ceiling_bps(&self) -> Option<f64> {
        match (self.window_ceiling_bps(), self.held.map(|(_, limit)| limit)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        // Back under what the link carries: the window's loss is forgotten within a second,
        // the limit it showed is not.
        send(&mut cap, t0 + Duration::from_secs(3), 1100, 300, 0);
        let held = cap.ceiling_bps().expect("the link's limit holds");
        assert!((380_000.0..=420_000.0).contains(&held), "held at what the link carried: {held}");
        // Nothing lost for the hold: the limit is forgotten too.
        send(&mut cap, t0 + Duration::from_millis(4100), 30_000, 300, 0);
        assert_eq!(cap.ceiling_bps(), None);
    }

    #[test]
    fn an_outage_caps_while_it_lasts_and_is_not_remembered_as_the_link_s_rate() {
        let t0 = Instant::now();
        let mut cap = LossCap::default();
        send(&mut cap, t0, 1000, 600, 0);
        // Nearly everything lost for a second (every packet but one in ten).
        let n = 75;
        for i in 0..n {
            cap.packet(t0 + Duration::from_millis(1000 + i * 1000 / n), 1000, i % 10 == 0);
        }
        assert!(cap.ceiling_bps().is_some_and(|c| c < 100_000.0), "capped at what arrives: {:?}", cap.ceiling_bps());
        send(&mut cap, t0 + Duration::from_secs(2), 1100, 600, 0);
        assert_eq!(cap.ceiling_bps(), None, "back at once after the outage");
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
