//! Puts a track's RTP packets back in order before reassembly (sans-IO: packets and the
//! caller's clock in, packets in sequence out). A packet that arrives after a gap waits up to
//! a limit for the missing ones, which NACK retransmissions bring late and out of order;
//! only then is the gap given up, and the reassembler sees a loss. Late duplicates and
//! packets older than the last one handed on are dropped.

use std::collections::BTreeMap;

/// Sequence numbers are unwrapped to 64 bits starting this far up, so early wrap-backs
/// cannot go below zero.
const START: u64 = 1 << 32;

/// One track's reordering buffer.
#[derive(Debug)]
pub struct Reorder<T> {
    max_wait_us: u64,
    max_held: usize,
    /// The unwrapped sequence number handed on next.
    next: Option<u64>,
    highest: u64,
    /// The expected packet, when it came in order with nothing held: handed on without
    /// touching the map (no allocation per packet on the common path).
    ready: Option<T>,
    held: BTreeMap<u64, (u64, T)>,
    skipped: u64,
}

impl<T> Reorder<T> {
    /// Holds packets after a gap for at most `max_wait_us`, and at most `max_held` of them.
    #[must_use]
    pub fn new(max_wait_us: u64, max_held: usize) -> Self {
        Self { max_wait_us, max_held: max_held.max(1), next: None, highest: 0, ready: None, held: BTreeMap::new(), skipped: 0 }
    }

    /// Packets given up as lost so far.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn unwrap(&self, seq: u16) -> u64 {
        if self.next.is_none() {
            return START + u64::from(seq);
        }
        let base = self.highest & !0xFFFF;
        [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
            .into_iter()
            .map(|b| b + u64::from(seq))
            .min_by_key(|&c| c.abs_diff(self.highest))
            .unwrap_or(base)
    }

    /// A packet with RTP sequence number `seq`, arrived at `now_us`.
    pub fn push(&mut self, seq: u16, now_us: u64, packet: T) {
        let ext = self.unwrap(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            return;
        }
        self.highest = self.highest.max(ext);
        if ext == next && self.held.is_empty() {
            // A duplicate of a packet not yet handed on keeps the first.
            self.ready.get_or_insert(packet);
            return;
        }
        if ext == next && self.ready.is_some() {
            return;
        }
        self.held.entry(ext).or_insert((now_us, packet));
    }

    /// The next packet in order with its sequence number: the one expected, if it is here;
    /// otherwise, once the first held packet has waited the limit (or too many wait), the
    /// first one after the gap.
    pub fn pop(&mut self, now_us: u64) -> Option<(u16, T)> {
        let next = self.next?;
        if let Some(packet) = self.ready.take() {
            self.next = Some(next + 1);
            #[allow(clippy::cast_possible_truncation)] // the low 16 bits are the RTP number
            return Some((next as u16, packet));
        }
        let first = *self.held.keys().next()?;
        if first != next {
            let (arrived, _) = self.held.get(&first)?;
            if now_us.saturating_sub(*arrived) < self.max_wait_us && self.held.len() <= self.max_held {
                return None;
            }
            self.skipped += first - next;
        }
        let (_, packet) = self.held.remove(&first)?;
        self.next = Some(first + 1);
        #[allow(clippy::cast_possible_truncation)] // the low 16 bits are the RTP number
        Some((first as u16, packet))
    }

    /// When [`Reorder::pop`] gives up the current gap, if packets wait behind one.
    #[must_use]
    pub fn deadline_us(&self) -> Option<u64> {
        if self.ready.is_some() {
            return None;
        }
        let (first, (arrived, _)) = self.held.iter().next()?;
        (Some(*first) != self.next).then_some(arrived + self.max_wait_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Reorder<u16>, now: u64) -> Vec<u16> {
        std::iter::from_fn(|| r.pop(now))
            .map(|(seq, p)| {
                assert_eq!(seq, p);
                seq
            })
            .collect()
    }

    #[test]
    fn a_retransmission_within_the_wait_fills_the_gap() {
        let mut r = Reorder::new(250_000, 64);
        for s in [65_533u16, 65_534] {
            r.push(s, 0, s);
        }
        assert_eq!(drain(&mut r, 0), [65_533, 65_534]);
        // 65 535 is lost; the numbers wrap; the later packets wait.
        for s in [0u16, 1, 2] {
            r.push(s, 10_000, s);
        }
        assert!(drain(&mut r, 100_000).is_empty());
        assert_eq!(r.deadline_us(), Some(260_000));
        // NACK brings it back 120 ms later: everything in order, nothing skipped.
        r.push(65_535, 130_000, 65_535);
        assert_eq!(drain(&mut r, 130_000), [65_535, 0, 1, 2]);
        assert_eq!((r.skipped(), r.deadline_us()), (0, None));
        // Late duplicates and old packets are dropped.
        r.push(1, 140_000, 1);
        r.push(65_535, 140_000, 65_535);
        assert!(drain(&mut r, 140_000).is_empty());
    }

    #[test]
    fn a_gap_is_given_up_after_the_wait_or_when_too_much_waits() {
        let mut r = Reorder::new(250_000, 3);
        r.push(10, 0, 10);
        r.push(12, 1_000, 12);
        r.push(13, 2_000, 13);
        assert_eq!(drain(&mut r, 2_000), [10]);
        assert_eq!(drain(&mut r, 250_999), Vec::<u16>::new());
        assert_eq!(drain(&mut r, 251_000), [12, 13], "11 is given up");
        assert_eq!(r.skipped(), 1);
        // Too many behind a gap: given up at once.
        for s in 15..=18u16 {
            r.push(s, 300_000, s);
        }
        assert_eq!(drain(&mut r, 300_000), [15, 16, 17, 18]);
        assert_eq!(r.skipped(), 2);
        // 11 turning up now is too late.
        r.push(11, 300_000, 11);
        assert!(drain(&mut r, 300_000).is_empty());
    }
}
