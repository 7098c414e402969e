//! What the receiving side does with Opus packets as they arrive (sans-IO: RTP sequence
//! numbers and payloads in, decoded 20 ms blocks out). A lost packet is recovered from the
//! in-band FEC (LBRR) the next packet carries when it carries one — our encoder adds it, and
//! so do browsers — and concealed (PLC) otherwise, so timing stays continuous either way.

use crate::MediaError;
use crate::audio_codec::OpusDecoder;
use crate::frame::AudioFrame;

/// Lost packets filled in before the next one at most (80 ms); a longer gap is skipped.
const MAX_FILL: u16 = 4;

/// Where a decoded block came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioOrigin {
    /// The packet itself.
    Packet,
    /// A lost packet, rebuilt from the next packet's FEC data.
    Recovered,
    /// A lost packet, concealed by the decoder.
    Concealed,
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

/// One remote audio track's decoder, in arrival order.
#[derive(Debug)]
pub struct OpusReceiver {
    decoder: OpusDecoder,
    last_seq: Option<u16>,
}

impl OpusReceiver {
    /// # Errors
    /// [`MediaError::InvalidConfig`] for unsupported channels.
    pub fn new(channels: u16) -> Result<Self, MediaError> {
        Ok(Self { decoder: OpusDecoder::new(channels)?, last_seq: None })
    }

    /// One RTP packet: the blocks it yields, in order — lost packets before it (the last of
    /// them recovered from its FEC when it has some, the others concealed), then its own. A
    /// duplicate, late or corrupt packet yields nothing of its own.
    pub fn push(
        &mut self,
        seq: u16,
        payload: &[u8],
        capture_time_us: u64,
        rtp_timestamp: u64,
        mut out: impl FnMut(AudioFrame, AudioOrigin),
    ) {
        if let Some(last) = self.last_seq {
            let gap = seq.wrapping_sub(last);
            if gap == 0 || gap > 0x8000 {
                return;
            }
            let fill = (gap - 1).min(MAX_FILL);
            let fec = has_lbrr(payload);
            for i in 0..fill {
                let recovered = fec && i + 1 == fill;
                let decoded = if recovered {
                    self.decoder.decode_bytes(Some(payload), true, capture_time_us, 0)
                } else {
                    self.decoder.decode_bytes(None, false, capture_time_us, 0)
                };
                if let Ok(frame) = decoded {
                    out(frame, if recovered { AudioOrigin::Recovered } else { AudioOrigin::Concealed });
                }
            }
        }
        self.last_seq = Some(seq);
        // A corrupt packet yields nothing; the next one goes on.
        if let Ok(frame) = self.decoder.decode_bytes(Some(payload), false, capture_time_us, rtp_timestamp) {
            out(frame, AudioOrigin::Packet);
        }
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

    /// Feeds `packets` with those at the `lost` indices dropped; counts blocks by origin.
    fn receive(packets: &[Vec<u8>], lost: &[usize]) -> (usize, usize, usize) {
        let mut rx = OpusReceiver::new(1).expect("receiver");
        let (mut packet, mut recovered, mut concealed) = (0, 0, 0);
        for (i, p) in packets.iter().enumerate().filter(|(i, _)| !lost.contains(i)) {
            rx.push(u16::try_from(i).expect("seq").wrapping_add(65_000), p, 0, 0, |frame, origin| {
                assert_eq!(frame.samples_per_channel(), OPUS_FRAME_SAMPLES, "{origin:?}: one 20 ms block");
                match origin {
                    AudioOrigin::Packet => packet += 1,
                    AudioOrigin::Recovered => recovered += 1,
                    AudioOrigin::Concealed => concealed += 1,
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
        // Duplicates and packets older than the last one yield nothing.
        let mut rx = OpusReceiver::new(1).expect("receiver");
        let mut blocks = 0;
        for seq in [5u16, 6, 6, 4, 7] {
            rx.push(seq, &packets[usize::from(seq)], 0, 0, |_, _| blocks += 1);
        }
        assert_eq!(blocks, 3);
        // CELT-only packets and garbage carry no FEC.
        assert!(!has_lbrr(&[16 << 3, 0xff]) && !has_lbrr(&[]) && !has_lbrr(&[0x08]));
    }
}
