//! The playout buffer of one remote audio track (sans-IO: RTP packets with their arrival time
//! in, one instruction per 20 ms block out, on the caller's clock).
//!
//! Packets are held until their block is due and played in sequence, so packets that overtook
//! each other on the way (jitter) come out in order and a late one is not taken for a loss.
//! The delay adapts to the link: it is the spread of the last two seconds' arrival offsets
//! (each packet's arrival against its RTP timestamp, less the smallest such offset, so clock
//! drift between the two ends cancels out), its 97th percentile plus a margin, between
//! [`MIN_TARGET_US`] and [`MAX_TARGET_US`]. When the buffer runs short of that target a block
//! is stretched (concealed without giving up a packet); when it holds more than a block too
//! much, a block is dropped. A block whose packet is not there when it is due is reported
//! missing when later packets have come (with the next packet when that is one of them: its
//! in-band FEC may rebuild it); when none has, the link is late rather than lossy, and the
//! block is stretched while the packet is waited for. After [`MAX_WAIT_BLOCKS`] such blocks
//! in a row (the sender went quiet: a kill switch, a cut) nothing more is played until
//! packets come again.
//!
//! Packets are copied into slots that are reused: nothing is allocated per packet once every
//! slot has held one.

/// Slots: packets held at most (1.28 s of 20 ms packets).
const SLOTS: usize = 64;
/// Arrival offsets the delay is computed from (2 s of 20 ms packets).
const WINDOW: usize = 100;
/// The smallest and largest delay the buffer aims at. Two blocks at least: when a packet is
/// missing, the one after it (whose FEC can rebuild it) has then usually arrived.
pub const MIN_TARGET_US: u64 = 40_000;
pub const MAX_TARGET_US: u64 = 300_000;
/// Added to the measured spread.
const MARGIN_US: u64 = 10_000;
/// Blocks stretched in a row, waiting for a packet while none later came, after which playing
/// stops until packets come again.
pub const MAX_WAIT_BLOCKS: u16 = 5;

/// What to play for the block that is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// This packet, in sequence.
    Packet(&'a [u8]),
    /// Its packet is missing; `next` is the packet after it when that one is already here.
    Missing { next: Option<&'a [u8]> },
    /// One block more than the packets give (the buffer grows towards its target): conceal it
    /// and keep the packet for the next block.
    Stretch,
}

#[derive(Debug, Default)]
struct Slot {
    /// The unwrapped sequence number held, if any.
    seq: Option<u64>,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Playing {
    /// Unwrapped sequence number and RTP timestamp (in µs) of the next block.
    seq: u64,
    ts_us: i64,
    /// When it is due, on the caller's clock.
    due_us: u64,
    waiting_run: u16,
}

/// Counters for statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets that came after their block had been played (or given up).
    pub late: u64,
    /// Blocks stretched and dropped to follow the target.
    pub stretched: u64,
    pub dropped: u64,
}

/// One track's playout buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    clock_hz: u64,
    frame_us: u64,
    slots: Vec<Slot>,
    /// The highest unwrapped sequence number and the unwrapped RTP timestamp seen.
    highest: Option<(u64, i64)>,
    last_ts: u32,
    offsets: [i64; WINDOW],
    offsets_len: usize,
    offsets_at: usize,
    scratch: [i64; WINDOW],
    target_us: u64,
    playing: Option<Playing>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for packets of `frame_us` each on an RTP clock of `clock_hz` (Opus: 20 ms,
    /// 48 kHz).
    #[must_use]
    pub fn new(clock_hz: u32, frame_us: u64) -> Self {
        Self {
            clock_hz: u64::from(clock_hz.max(1)),
            frame_us: frame_us.max(1),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            highest: None,
            last_ts: 0,
            offsets: [0; WINDOW],
            offsets_len: 0,
            offsets_at: 0,
            scratch: [0; WINDOW],
            target_us: MIN_TARGET_US,
            playing: None,
            stats: JitterStats::default(),
        }
    }

    /// The delay aimed at now.
    #[must_use]
    pub fn target_us(&self) -> u64 {
        self.target_us
    }

    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// When the next block is due, while playing.
    #[must_use]
    pub fn deadline_us(&self) -> Option<u64> {
        self.playing.map(|p| p.due_us)
    }

    /// Unwraps `seq` and `ts` against the highest seen (a packet more than half the number
    /// space away counts as behind).
    fn unwrap(&self, seq: u16, ts: u32) -> (u64, i64) {
        let Some((high_seq, high_ts)) = self.highest else {
            return ((1 << 32) + u64::from(seq), self.ts_to_us(i64::from(ts)));
        };
        let dseq = i64::from(seq.wrapping_sub((high_seq & 0xFFFF) as u16) as i16);
        let dts = i64::from(ts.wrapping_sub(self.last_ts) as i32);
        (high_seq.saturating_add_signed(dseq), high_ts + self.ts_to_us(dts))
    }

    fn ts_to_us(&self, ts: i64) -> i64 {
        ts * 1_000_000 / self.clock_hz as i64
    }

    fn slot(&self, seq: u64) -> Option<&[u8]> {
        let s = &self.slots[(seq % SLOTS as u64) as usize];
        (s.seq == Some(seq)).then_some(s.payload.as_slice())
    }

    /// One RTP packet, arrived at `now_us`.
    pub fn push(&mut self, seq: u16, ts: u32, payload: &[u8], now_us: u64) {
        let (ext, ts_us) = self.unwrap(seq, ts);
        if self.highest.is_none_or(|(h, _)| ext > h) {
            self.highest = Some((ext, ts_us));
            self.last_ts = ts;
        }
        let offset = i64::try_from(now_us).unwrap_or(i64::MAX) - ts_us;
        if let Some(p) = self.playing {
            if ext < p.seq {
                // Late: its lateness counts for the delay all the same.
                self.record_offset(offset);
                self.stats.late += 1;
                return;
            }
            if ext >= p.seq + SLOTS as u64 {
                // Far ahead of what is due (the sender restarted or a long gap): start over.
                self.playing = None;
                self.offsets_len = 0;
                self.offsets_at = 0;
            }
        }
        self.record_offset(offset);
        let slot = &mut self.slots[(ext % SLOTS as u64) as usize];
        slot.seq = Some(ext);
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
        if self.playing.is_none() {
            self.playing = Some(Playing { seq: ext, ts_us, due_us: now_us + self.target_us, waiting_run: 0 });
        }
    }

    fn record_offset(&mut self, offset: i64) {
        self.offsets[self.offsets_at] = offset;
        self.offsets_at = (self.offsets_at + 1) % WINDOW;
        self.offsets_len = (self.offsets_len + 1).min(WINDOW);
        let seen = &mut self.scratch[..self.offsets_len];
        seen.copy_from_slice(&self.offsets[..self.offsets_len]);
        seen.sort_unstable();
        let min = seen[0];
        let p97 = seen[(seen.len() * 97 / 100).min(seen.len() - 1)];
        let spread = u64::try_from(p97 - min).unwrap_or(0);
        self.target_us = (spread + MARGIN_US).clamp(MIN_TARGET_US, MAX_TARGET_US);
    }

    /// When the block that is due should be played by the buffer's measure: its timestamp on
    /// the fastest arrival seen, plus the target.
    fn ideal_due_us(&self, ts_us: i64) -> i64 {
        let min = self.scratch[0];
        ts_us + min + i64::try_from(self.target_us).unwrap_or(i64::MAX)
    }

    /// The block due at `now_us`, if one is: `play` gets what to play for it. Call until it
    /// returns `false`.
    pub fn poll(&mut self, now_us: u64, mut play: impl FnMut(Playout<'_>)) -> bool {
        let Some(mut p) = self.playing else { return false };
        if now_us < p.due_us {
            return false;
        }
        let frame = i64::try_from(self.frame_us).unwrap_or(i64::MAX);
        let early = self.ideal_due_us(p.ts_us) - i64::try_from(p.due_us).unwrap_or(i64::MAX);
        let advance = |p: &mut Playing| {
            p.seq += 1;
            p.ts_us += frame;
        };
        if self.slot(p.seq).is_some() {
            p.waiting_run = 0;
            if early > frame {
                // Playing ahead of the target: one block more, the packet waits.
                self.stats.stretched += 1;
                play(Playout::Stretch);
            } else if early < -frame && self.slot(p.seq + 1).is_some() {
                // More held than the target: this block is left out, the next one is due now.
                self.stats.dropped += 1;
                advance(&mut p);
                self.playing = Some(p);
                return true;
            } else {
                play(Playout::Packet(self.slot(p.seq).unwrap_or_default()));
                advance(&mut p);
            }
        } else if self.highest.is_none_or(|(h, _)| h <= p.seq) {
            // Nothing after it has come either: the link is late rather than lossy. Conceal
            // one block and keep waiting for the packet (the delay grows by a block).
            p.waiting_run += 1;
            if p.waiting_run > MAX_WAIT_BLOCKS {
                // The sender went quiet. When it speaks again its timestamps may have jumped
                // (a microphone switched back on): the delay is measured afresh.
                self.playing = None;
                self.offsets_len = 0;
                self.offsets_at = 0;
                return false;
            }
            self.stats.stretched += 1;
            play(Playout::Stretch);
        } else {
            // Later packets are here: this one is lost (or too late to wait for).
            p.waiting_run = 0;
            play(Playout::Missing { next: self.slot(p.seq + 1) });
            advance(&mut p);
        }
        p.due_us += self.frame_us;
        self.playing = Some(p);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 20_000;

    #[derive(Debug, Default, PartialEq, Eq)]
    struct Count {
        packets: Vec<u8>,
        missing: usize,
        recoverable: usize,
        stretched: usize,
    }

    /// Feeds `(seq, arrival_us)` packets (payload = seq's low byte, timestamp 960 per packet
    /// after the first) and
    /// plays on a 1 ms clock until `end_us`. Missing and stretched blocks count only when a
    /// packet plays after them: the blocks after the last packet are the stream's end.
    fn run(jb: &mut JitterBuffer, arrivals: &[(u16, u64)], end_us: u64) -> Count {
        let mut sorted: Vec<_> = arrivals.to_vec();
        sorted.sort_by_key(|&(_, t)| t);
        let mut count = Count::default();
        let (mut missing, mut recoverable, mut stretched) = (0, 0, 0);
        let mut next = 0;
        // RTP time runs on across the sequence numbers' wrap.
        let base = arrivals.first().map_or(0, |a| a.0);
        for now in (0..end_us).step_by(1000) {
            while next < sorted.len() && sorted[next].1 <= now {
                let seq = sorted[next].0;
                jb.push(seq, u32::from(seq.wrapping_sub(base)).wrapping_mul(960), &[seq as u8], now);
                next += 1;
            }
            while jb.poll(now, |p| match p {
                Playout::Packet(b) => {
                    count.packets.push(b[0]);
                    count.missing += std::mem::take(&mut missing);
                    count.recoverable += std::mem::take(&mut recoverable);
                    count.stretched += std::mem::take(&mut stretched);
                }
                Playout::Missing { next } => {
                    missing += 1;
                    recoverable += usize::from(next.is_some());
                }
                Playout::Stretch => stretched += 1,
            }) {}
        }
        count
    }

    /// A deterministic spread in [-spread, spread] µs.
    fn wobble(i: u64, spread: u64) -> i64 {
        let x = i.wrapping_mul(2_654_435_761) % (2 * spread + 1);
        x as i64 - spread as i64
    }

    #[test]
    fn packets_that_overtook_each_other_play_in_order_and_none_is_lost() {
        // 50 ms ± 20 ms per packet: about one in eight overtakes the one before.
        let arrivals: Vec<(u16, u64)> = (0..300u64)
            .map(|i| (u16::try_from(i).expect("seq").wrapping_add(65_500), (100_000 + i * FRAME).saturating_add_signed(wobble(i, 20_000))))
            .collect();
        let overtaken = arrivals.windows(2).filter(|w| w[1].1 < w[0].1).count();
        assert!(overtaken > 20, "the test link reorders: {overtaken}");
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let count = run(&mut jb, &arrivals, 7_000_000);
        // The first second adapts (the target grows from its minimum); after that nothing is
        // missing and every packet plays, in order, across the sequence wrap.
        let played: Vec<u8> = arrivals.iter().map(|&(s, _)| s as u8).collect();
        let tail = &played[60..];
        assert!(count.packets.ends_with(tail), "in order after adapting: {count:?} {:?}", jb.stats());
        assert!(count.missing <= 10, "{count:?}");
        assert!((40_000..=60_000).contains(&jb.target_us()), "target for a 40 ms spread: {}", jb.target_us());
    }

    #[test]
    fn a_steady_link_keeps_the_smallest_delay_and_plays_every_packet() {
        let arrivals: Vec<(u16, u64)> = (0..200u16).map(|i| (i, 5_000 + u64::from(i) * FRAME + u64::from(i % 3) * 300)).collect();
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let count = run(&mut jb, &arrivals, 5_000_000);
        assert_eq!(count.packets, (0..200u16).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!((count.missing, count.stretched, jb.stats().late, jb.stats().dropped), (0, 0, 0, 0));
        assert_eq!(jb.target_us(), MIN_TARGET_US);
    }

    #[test]
    fn a_lost_packet_is_missing_with_the_next_one_to_rebuild_it_from() {
        let arrivals: Vec<(u16, u64)> = (0..100u16).filter(|i| *i != 50).map(|i| (i, u64::from(i) * FRAME)).collect();
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let count = run(&mut jb, &arrivals, 3_000_000);
        assert_eq!((count.missing, count.recoverable), (1, 1));
        assert_eq!(count.packets.len(), 99);
    }

    #[test]
    fn the_delay_grows_with_jitter_and_shrinks_when_it_ends() {
        let mut arrivals: Vec<(u16, u64)> = Vec::new();
        for i in 0..600u64 {
            let base = 100_000 + i * FRAME;
            // Seconds 4 to 8 of the stream: 60 ms ± 40 ms.
            let t = if (200..400).contains(&i) { (base + 60_000).saturating_add_signed(wobble(i, 40_000)) } else { base };
            arrivals.push((u16::try_from(i).expect("seq"), t));
        }
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let early = run(&mut jb, &arrivals[..200], 4_100_000);
        assert_eq!(jb.target_us(), MIN_TARGET_US);
        assert_eq!(early.missing, 0);
        let mut targets = Vec::new();
        let mut count = Count::default();
        let mut next = 200;
        for now in (4_100_000..14_000_000u64).step_by(1000) {
            while next < arrivals.len() && arrivals[next].1 <= now {
                let seq = arrivals[next].0;
                jb.push(seq, u32::from(seq) * 960, &[seq as u8], now);
                next += 1;
            }
            while jb.poll(now, |p| match p {
                Playout::Packet(b) => count.packets.push(b[0]),
                Playout::Missing { .. } => count.missing += 1,
                Playout::Stretch => count.stretched += 1,
            }) {}
            if now % 1_000_000 == 0 {
                targets.push(jb.target_us());
            }
        }
        let peak = targets.iter().copied().max().unwrap_or(0);
        assert!(peak >= 80_000, "grew for an 80 ms spread plus the 60 ms step: {targets:?}");
        assert_eq!(*targets.last().expect("targets"), MIN_TARGET_US, "back down once the jitter ended: {targets:?}");
        assert!(count.stretched > 0 && jb.stats().dropped > 0, "{count:?} {:?}", jb.stats());
        // Growing costs a few blocks at the start of the jitter, never the whole stretch.
        assert!(count.missing <= 25, "{count:?}");
        assert!(count.packets.len() >= 370, "{}", count.packets.len());
    }

    #[test]
    fn a_silent_sender_stops_the_playout_and_packets_start_it_again() {
        let arrivals: Vec<(u16, u64)> =
            (0..50u16).chain(60..80).map(|i| (i, u64::from(i) * FRAME + if i >= 60 { 3_000_000 } else { 0 })).collect();
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let count = run(&mut jb, &arrivals, 6_000_000);
        // Five blocks concealed while waiting, then silence until packet 60, which is not
        // "late" and not a loss.
        assert_eq!((count.stretched, count.missing), (usize::from(MAX_WAIT_BLOCKS), 0));
        assert_eq!(count.packets.len(), 70);
        assert_eq!(jb.stats().late, 0);
        assert_eq!(jb.deadline_us(), None);
    }

    #[test]
    fn late_and_duplicate_packets_are_counted_and_not_played() {
        let mut jb = JitterBuffer::new(48_000, FRAME);
        let mut arrivals: Vec<(u16, u64)> = (0..40u16).filter(|&i| i != 10).map(|i| (i, u64::from(i) * FRAME)).collect();
        arrivals.push((10, 700_000));
        arrivals.push((20, 700_000));
        let count = run(&mut jb, &arrivals, 2_000_000);
        assert_eq!(count.packets.len(), 39);
        assert_eq!(jb.stats().late, 2);
    }
}
