//! How a participant's connection is doing, from the statistics of their feed (sans-IO:
//! one [`FeedStats`] report after another in, a [`Quality`] out). What counts is the last
//! interval, not the whole call: a bad minute an hour ago is not today's problem.

use crate::event::FeedStats;

/// Shown on a participant's tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Good,
    /// Noticeable: some loss, a long round trip, short stalls.
    Fair,
    /// The picture or the sound suffers.
    Poor,
}

/// Share of packets lost in an interval above which a link is fair or poor, percent.
const FAIR_LOSS_PCT: u64 = 3;
const POOR_LOSS_PCT: u64 = 10;
/// Round trips above which a link is fair or poor, ms.
const FAIR_RTT_MS: u32 = 250;
const POOR_RTT_MS: u32 = 500;
/// Longest wait for a picture within an interval above which a link is fair or poor, ms.
const FAIR_GAP_MS: u64 = 500;
const POOR_GAP_MS: u64 = 1500;

/// One feed's meter: remembers the counters of the report before.
#[derive(Debug, Default, Clone)]
pub struct QualityMeter {
    last: Option<(u64, u64)>,
    quality: Option<Quality>,
}

impl QualityMeter {
    /// The quality over the interval `report` closes; `None` until there is something to
    /// judge (no packets yet).
    pub fn update(&mut self, report: &FeedStats) -> Option<Quality> {
        let (received, lost) = (report.packets_received, report.packets_lost);
        let (r0, l0) = self.last.replace((received, lost)).unwrap_or((0, 0));
        let (dr, dl) = (received.saturating_sub(r0), lost.saturating_sub(l0));
        if dr + dl == 0 && report.rtt_ms.is_none() {
            return self.quality;
        }
        let loss_pct = (dl * 100).checked_div(dr + dl).unwrap_or(0);
        let rtt = report.rtt_ms.unwrap_or(0);
        // A freeze counts only for feeds that send pictures at all.
        let gap = if report.frames_decoded > 0 { report.picture_gap_max_ms } else { 0 };
        let q = if loss_pct >= POOR_LOSS_PCT || rtt >= POOR_RTT_MS || gap >= POOR_GAP_MS {
            Quality::Poor
        } else if loss_pct >= FAIR_LOSS_PCT || rtt >= FAIR_RTT_MS || gap >= FAIR_GAP_MS {
            Quality::Fair
        } else {
            Quality::Good
        };
        self.quality = Some(q);
        self.quality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(received: u64, lost: u64, rtt_ms: Option<u32>, gap: u64) -> FeedStats {
        FeedStats {
            packets_received: received,
            packets_lost: lost,
            rtt_ms,
            picture_gap_max_ms: gap,
            frames_decoded: 10,
            ..FeedStats::default()
        }
    }

    #[test]
    fn the_last_interval_decides() {
        let mut m = QualityMeter::default();
        assert_eq!(m.update(&FeedStats::default()), None, "nothing to judge yet");
        assert_eq!(m.update(&report(1000, 5, Some(40), 80)), Some(Quality::Good));
        // 60 of the next 560 packets lost: poor, though the call as a whole lost little.
        assert_eq!(m.update(&report(1500, 65, Some(40), 80)), Some(Quality::Poor));
        assert_eq!(m.update(&report(2000, 85, Some(40), 80)), Some(Quality::Fair), "20 of 520: fair");
        assert_eq!(m.update(&report(2500, 85, Some(40), 80)), Some(Quality::Good));
        assert_eq!(m.update(&report(3000, 85, Some(300), 80)), Some(Quality::Fair), "a long round trip");
        assert_eq!(m.update(&report(3500, 85, Some(40), 1600)), Some(Quality::Poor), "a freeze");
        // No packets in the interval (their camera and microphone off) keeps what was known.
        assert_eq!(m.update(&FeedStats { packets_received: 3500, packets_lost: 85, ..FeedStats::default() }), Some(Quality::Poor));
    }

    #[test]
    fn a_feed_without_pictures_is_not_frozen() {
        let mut m = QualityMeter::default();
        let audio_only = FeedStats { packets_received: 500, picture_gap_max_ms: 0, frames_decoded: 0, ..FeedStats::default() };
        assert_eq!(m.update(&audio_only), Some(Quality::Good));
    }
}
