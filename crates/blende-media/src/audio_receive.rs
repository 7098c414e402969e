//! What the receiving side does with Opus packets (sans-IO: RTP packets with their arrival
//! time in, decoded 20 ms blocks out when they are due, on the caller's clock). Packets pass
//! the adaptive playout buffer ([`crate::audio_jitter`]) first, so jitter reorders nothing and
//! a late packet is not a loss. A lost packet is recovered from the in-band FEC (LBRR) the
//! next packet carries when it carries one — our encoder adds it, and so do browsers — and
//! concealed (PLC) otherwise, so timing stays continuous either way.

use crate::MediaError;
use crate::audio_codec::{OPUS_SAMPLE_RATE_HZ, OpusDecoder};
use crate::audio_jitter::{JitterBuffer, JitterStats, Playout};
use crate::frame::AudioFrame;

/// Opus packets as Blende and browsers send them.
const FRAME_US: u64 = 20_000;

/// Where a decoded block came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioOrigin {
    /// The packet itself.
    Packet,
    /// A lost packet, rebuilt from the next packet's FEC data.
    Recovered,
    /// A lost packet, concealed by the decoder.
    Concealed,
    /// A block the decoder made up while the playout buffer grew (no packet was lost).
    Stretched,
}

/// Whether an Opus packet carries in-band FEC (SILK's LBRR data) for the packet before it
/// (RFC 6716 §4.2.3: after the TOC byte, the first SILK frame's header bits are its VAD flags,
/// one per 20 ms, then the LBRR flag). CELT-only packets never do.
#[must_use]
pub fn has_lbrr(packet: &[u8]) -> bool {
    let (Some(&toc), Some(&first)) = (packet.first(), packet.get(1)) else { return false };
    let config = toc >> 3;
    if config >= 16 {
        return false;
    }
    // Only single-frame packets (code 0) are parsed: what Blende and browsers send at 20 ms.
    if toc & 0x3 != 0 {
        return false;
    }
    // One VAD flag per 20 ms of SILK: SILK-only packets (configs 0–11) of 40 and 60 ms carry
    // two and three; hybrid ones (12–15) are 10 or 20 ms.
    let silk_frames: u8 = match config {
        0..12 if config & 0x3 == 2 => 2,
        0..12 if config & 0x3 == 3 => 3,
        _ => 1,
    };
    let stereo = toc & 0x4 != 0;
    let mid = (first >> (7 - silk_frames)) & 1 == 1;
    let side = stereo && (first >> (6 - 2 * silk_frames)) & 1 == 1;
    mid || side
}

/// One remote audio track's playout buffer and decoder.
#[derive(Debug)]
pub struct OpusReceiver {
    decoder: OpusDecoder,
    buffer: JitterBuffer,
    blocks: u64,
}

impl OpusReceiver {
    /// # Errors
    /// [`MediaError::InvalidConfig`] for unsupported channels.
    pub fn new(channels: u16) -> Result<Self, MediaError> {
        Ok(Self { decoder: OpusDecoder::new(channels)?, buffer: JitterBuffer::new(OPUS_SAMPLE_RATE_HZ, FRAME_US), blocks: 0 })
    }

    /// One RTP packet, arrived at `now_us`.
    pub fn push(&mut self, seq: u16, rtp_timestamp: u32, payload: &[u8], now_us: u64) {
        self.buffer.push(seq, rtp_timestamp, payload, now_us);
    }

    /// When the next block is due (nothing while the sender is quiet).
    #[must_use]
    pub fn deadline_us(&self) -> Option<u64> {
        self.buffer.deadline_us()
    }

    /// The playout delay aimed at now, and the buffer's counters.
    #[must_use]
    pub fn playout(&self) -> (u64, JitterStats) {
        (self.buffer.target_us(), self.buffer.stats())
    }

    /// Every block due at `now_us`, in order: a packet's own, a missing one rebuilt from the
    /// next packet's FEC when that has arrived and carries some, concealed otherwise. A
    /// corrupt packet yields nothing; the next one goes on.
    pub fn poll(&mut self, now_us: u64, mut out: impl FnMut(AudioFrame, AudioOrigin)) {
        let Self { decoder, buffer, blocks } = self;
        while buffer.poll(now_us, |playout| {
            let (packet, fec, origin) = match playout {
                Playout::Packet(p) => (Some(p), false, AudioOrigin::Packet),
                Playout::Missing { next: Some(n) } if has_lbrr(n) => (Some(n), true, AudioOrigin::Recovered),
                Playout::Missing { .. } => (None, false, AudioOrigin::Concealed),
                Playout::Stretch => (None, false, AudioOrigin::Stretched),
            };
            if let Ok(frame) = decoder.decode_bytes(packet, fec, now_us, *blocks) {
                *blocks += 1;
                out(frame, origin);
            }
        }) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio_codec::{OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ, OpusConfig, OpusEncoder};
    use crate::frame::AudioSamples;

    /// `n` packets of a 440 Hz tone, each 20 ms, from an encoder expecting `loss_pct`.
    fn tone_packets(n: usize, loss_pct: u8) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(OpusConfig { expected_loss_pct: loss_pct, ..OpusConfig::default() }).expect("encoder");
        (0..n)
            .map(|k| {
                let samples: Vec<f32> = (0..OPUS_FRAME_SAMPLES)
                    .map(|i| {
                        let t = (k * OPUS_FRAME_SAMPLES + i) as f32 / OPUS_SAMPLE_RATE_HZ as f32;
                        let w = 2.0 * std::f32::consts::PI * 440.0 * t;
                        // Voice-like: harmonics, syllables at 4 Hz (a steady sine reads as no voice).
                        let syllable = 0.55 + 0.45 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                        syllable * (0.3 * w.sin() + 0.1 * (2.0 * w).sin() + 0.05 * (3.0 * w).sin())
                    })
                    .collect();
                let frame = AudioFrame::new(AudioSamples::F32(samples), OPUS_SAMPLE_RATE_HZ, 1, 0, k as u64).expect("frame");
                enc.encode(&frame).expect("encode").data
            })
            .collect()
    }

    /// Feeds `packets` at 20 ms intervals (sequence numbers wrapping on the way) with those
    /// at the `lost` indices dropped, playing on a 1 ms clock; counts blocks by origin.
    fn receive(packets: &[Vec<u8>], lost: &[usize]) -> (usize, usize, usize) {
        let mut rx = OpusReceiver::new(1).expect("receiver");
        let (mut packet, mut recovered, mut concealed) = (0, 0, 0);
        // Until the last packet has played (40 ms after it came), before the stream's end
        // is concealed.
        let end = packets.len() as u64 * 20_000 + 30_000;
        for now in (0..end).step_by(1000) {
            let i = (now / 20_000) as usize;
            if now % 20_000 == 0 && i < packets.len() && !lost.contains(&i) {
                let seq = u16::try_from(i).expect("seq").wrapping_add(65_000);
                rx.push(seq, u32::try_from(i * 960).expect("ts"), &packets[i], now);
            }
            rx.poll(now, |frame, origin| {
                assert_eq!(frame.samples_per_channel(), OPUS_FRAME_SAMPLES, "{origin:?}: one 20 ms block");
                match origin {
                    AudioOrigin::Packet => packet += 1,
                    AudioOrigin::Recovered => recovered += 1,
                    AudioOrigin::Concealed => concealed += 1,
                    // A burst longer than the delay: the buffer waited a block for it.
                    AudioOrigin::Stretched => {}
                }
            });
        }
        (packet, recovered, concealed)
    }

    #[test]
    fn lost_packets_are_recovered_from_the_next_ones_fec() {
        let packets = tone_packets(100, 10);
        let with_fec = packets[10..].iter().filter(|p| has_lbrr(p)).count();
        assert!(with_fec >= 60, "a voice encoder expecting loss adds FEC to active speech: {with_fec} of 90");
        // 5 % loss, single packets (sequence numbers wrap on the way): a loss is recovered
        // exactly when the next packet carries FEC.
        let lost: Vec<usize> = (10..100).step_by(20).chain((15..100).step_by(20)).collect();
        let expected = lost.iter().filter(|&&i| has_lbrr(&packets[i + 1])).count();
        let (packet, recovered, concealed) = receive(&packets, &lost);
        assert_eq!((packet, recovered, concealed), (100 - lost.len(), expected, lost.len() - expected));
        assert!(recovered * 10 >= lost.len() * 6, "most losses recovered: {recovered} of {}", lost.len());
        // A burst of three: FEC covers only the packet just before, the others are concealed.
        let burst = (40..95).find(|&i| has_lbrr(&packets[i + 3])).expect("a packet with FEC");
        let (_, recovered, concealed) = receive(&packets, &[burst, burst + 1, burst + 2]);
        assert_eq!((recovered, concealed), (1, 2));
    }

    #[test]
    fn without_fec_losses_are_concealed_and_late_packets_are_dropped() {
        let packets = tone_packets(60, 0);
        assert!(!packets.iter().any(|p| has_lbrr(p)), "no loss expected, no FEC spent");
        let (packet, recovered, concealed) = receive(&packets, &[20, 40]);
        assert_eq!((packet, recovered, concealed), (58, 0, 2));
        // A duplicate, and a packet that comes after its block was played, yield nothing.
        let mut rx = OpusReceiver::new(1).expect("receiver");
        let mut origins = Vec::new();
        for (seq, at) in [(5u16, 0u64), (6, 20_000), (6, 21_000), (8, 60_000), (9, 90_000), (7, 200_000)] {
            rx.push(seq, u32::from(seq) * 960, &packets[usize::from(seq)], at);
            rx.poll(at, |_, o| origins.push(o));
        }
        rx.poll(400_000, |_, o| origins.push(o));
        use AudioOrigin::{Concealed, Packet};
        // 5, 6 (once), 7 missing when due (8 is there but carries no FEC), 8, 9; 7 came late.
        assert_eq!(origins[..3], [Packet, Packet, Concealed]);
        assert_eq!(origins.iter().filter(|o| **o == Packet).count(), 4, "{origins:?}");
        assert_eq!(rx.playout().1.late, 1);
        // CELT-only packets and garbage carry no FEC.
        assert!(!has_lbrr(&[16 << 3, 0xff]) && !has_lbrr(&[]) && !has_lbrr(&[0x08]));
    }
}
