//! The receive path of one remote track: RTP → (VP8 reassembly) → decoder → [`RtcEvent`].
//!
//! VP8 frames are reassembled from RTP payloads (RFC 7741 §4) by timestamp and marker bit; a
//! sequence gap drops the frame in progress and every frame up to the next keyframe, and asks
//! the sender for one (PLI, RFC 4585 §6.3.1). NACK has usually repaired the gap before we see it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blende_media::{OpusDecoder, vp8::Vp8Decoder};
use bytes::{Bytes, BytesMut};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::{MediaKind, RtcEvent};

/// Do not ask for keyframes more often than this.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// The largest compressed frame we reassemble: a 4K keyframe of a detailed screen is well
/// under 2 MiB. Past it the frame is dropped, so a sender that never sets the marker bit (or
/// never changes the timestamp) cannot grow the buffer.
pub(crate) const MAX_FRAME_BYTES: usize = 4 << 20;

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) async fn run(track: Arc<dyn TrackRemote>, track_id: String, kind: MediaKind, events: mpsc::Sender<RtcEvent>) {
    match kind {
        MediaKind::Video => video(track, &track_id, &events).await,
        MediaKind::Audio => audio(track, &track_id, &events).await,
    }
    let _ = events.send(RtcEvent::TrackEnded { track_id }).await;
}

/// Reassembles VP8 frames from RTP packets. Pure: tested without a network.
#[derive(Debug, Default)]
pub(crate) struct Vp8Assembler {
    depacketizer: Vp8Packet,
    frame: BytesMut,
    timestamp: Option<u32>,
    last_seq: Option<u16>,
    broken: bool,
    /// Set after a loss: frames are dropped until a keyframe arrives.
    pub(crate) waiting_for_keyframe: bool,
}

/// What one packet did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled {
    Nothing,
    Frame {
        data: Bytes,
        timestamp: u32,
        keyframe: bool,
    },
    /// A loss was detected: ask for a keyframe.
    Lost,
}

impl Vp8Assembler {
    pub(crate) fn new() -> Self {
        Self { waiting_for_keyframe: true, ..Self::default() }
    }

    pub(crate) fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &Bytes) -> Assembled {
        let mut lost = false;
        if let Some(last) = self.last_seq {
            let expected = last.wrapping_add(1);
            if seq != expected {
                // Old duplicates (retransmissions already covered) are ignored.
                if seq.wrapping_sub(last) > 0x8000 {
                    return Assembled::Nothing;
                }
                lost = true;
            }
        }
        self.last_seq = Some(seq);
        if self.timestamp != Some(timestamp) {
            // A new picture starts; whatever was pending is incomplete.
            self.frame.clear();
            self.broken = false;
            self.timestamp = Some(timestamp);
        }
        if lost {
            self.broken = true;
            self.waiting_for_keyframe = true;
        }
        match self.depacketizer.depacketize(payload) {
            Ok(part) => {
                if self.frame.is_empty() && self.depacketizer.s == 0 {
                    // Continuation without a start: the start was lost.
                    self.broken = true;
                }
                if self.frame.len() + part.len() > MAX_FRAME_BYTES {
                    self.broken = true;
                }
                if self.broken {
                    // Nothing of a broken frame is kept.
                    self.frame.clear();
                } else {
                    self.frame.extend_from_slice(&part);
                }
            }
            Err(_) => self.broken = true,
        }
        if !marker {
            return if lost { Assembled::Lost } else { Assembled::Nothing };
        }
        let data = self.frame.split().freeze();
        if self.broken || data.is_empty() {
            self.broken = false;
            return Assembled::Lost;
        }
        // VP8 frame tag: the P bit (bit 0 of the first byte) is 0 for keyframes (RFC 6386 §9.1).
        let keyframe = data[0] & 1 == 0;
        if self.waiting_for_keyframe && !keyframe {
            return if lost { Assembled::Lost } else { Assembled::Nothing };
        }
        if keyframe {
            self.waiting_for_keyframe = false;
        }
        Assembled::Frame { data, timestamp, keyframe }
    }
}

async fn send_pli(track: &Arc<dyn TrackRemote>, last: &mut Option<Instant>) {
    if last.is_some_and(|t| t.elapsed() < PLI_INTERVAL) {
        return;
    }
    *last = Some(Instant::now());
    let Some(media_ssrc) = track.ssrcs().await.first().copied() else { return };
    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
    if let Err(e) = track.write_rtcp(vec![Box::new(pli)]).await {
        log::debug!("PLI: {e}");
    }
}

async fn video(track: Arc<dyn TrackRemote>, track_id: &str, events: &mpsc::Sender<RtcEvent>) {
    // One thread: libvpx's VP8 threads sync by spin-waiting, which burns CPU on small boxes.
    let mut decoder = match Vp8Decoder::new(1) {
        Ok(d) => d,
        Err(e) => {
            log::warn!("VP8 decoder: {e}");
            return;
        }
    };
    let mut assembler = Vp8Assembler::new();
    let mut last_pli = None;
    let mut frames = 0u64;
    send_pli(&track, &mut last_pli).await;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let h = &packet.header;
        match assembler.push(h.sequence_number, h.timestamp, h.marker, &packet.payload) {
            Assembled::Nothing => {}
            Assembled::Lost => send_pli(&track, &mut last_pli).await,
            Assembled::Frame { data, timestamp, .. } => {
                if assembler.waiting_for_keyframe {
                    send_pli(&track, &mut last_pli).await;
                }
                match decoder.decode_bytes(&data, now_us(), u64::from(timestamp)) {
                    Ok(Some(frame)) => {
                        frames += 1;
                        // Media is dropped, not queued, when the consumer is behind.
                        let _ = events.try_send(RtcEvent::Video { track_id: track_id.to_owned(), frame });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::debug!("VP8 decode: {e}");
                        assembler.waiting_for_keyframe = true;
                        send_pli(&track, &mut last_pli).await;
                    }
                }
            }
        }
        if frames == 0 && last_pli.is_some_and(|t: Instant| t.elapsed() >= PLI_INTERVAL * 2) {
            // Still nothing decodable: keep asking.
            send_pli(&track, &mut last_pli).await;
        }
    }
}

async fn audio(track: Arc<dyn TrackRemote>, track_id: &str, events: &mpsc::Sender<RtcEvent>) {
    // Mono decode: Opus decodes stereo streams to mono too, and the UI mixes to mono anyway.
    let mut decoder = match OpusDecoder::new(1) {
        Ok(d) => d,
        Err(e) => {
            log::warn!("Opus decoder: {e}");
            return;
        }
    };
    let mut last_seq: Option<u16> = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let seq = packet.header.sequence_number;
        if let Some(last) = last_seq {
            let gap = seq.wrapping_sub(last);
            if gap == 0 || gap > 0x8000 {
                continue; // duplicate or late
            }
            // Conceal up to a few lost packets (PLC) so timing stays continuous.
            for _ in 1..gap.min(5) {
                if let Ok(frame) = decoder.decode_bytes(None, false, now_us(), 0) {
                    let _ = events.try_send(RtcEvent::Audio { track_id: track_id.to_owned(), frame });
                }
            }
        }
        last_seq = Some(seq);
        match decoder.decode_bytes(Some(&packet.payload), false, now_us(), u64::from(packet.header.timestamp)) {
            Ok(frame) => {
                let _ = events.try_send(RtcEvent::Audio { track_id: track_id.to_owned(), frame });
            }
            Err(e) => log::debug!("Opus decode: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(start: bool, body: &[u8]) -> Bytes {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn reassembles_a_keyframe_split_over_packets() {
        let mut a = Vp8Assembler::new();
        assert_eq!(a.push(1, 100, false, &pkt(true, &[0x10, 1, 2])), Assembled::Nothing);
        let got = a.push(2, 100, true, &pkt(false, &[3, 4, 5]));
        assert_eq!(got, Assembled::Frame { data: Bytes::from_static(&[0x10, 1, 2, 3, 4, 5]), timestamp: 100, keyframe: true });
    }

    #[test]
    fn drops_delta_frames_until_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert_eq!(a.push(1, 100, true, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        assert!(matches!(a.push(2, 200, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
        assert!(matches!(a.push(3, 300, true, &pkt(true, &[0x01, 9, 9])), Assembled::Frame { keyframe: false, .. }));
    }

    /// A hostile sender: one timestamp, never a marker bit, 100,000 packets of 1,200 bytes
    /// (120 MB). The buffer stays within twice the cap (its growth step), and the next real
    /// frame comes through.
    #[test]
    fn a_frame_without_end_keeps_memory_bounded() {
        let mut a = Vp8Assembler::new();
        let body = vec![7u8; 1200];
        let mut seq = 0u16;
        for i in 0..100_000u32 {
            seq = seq.wrapping_add(1);
            assert_eq!(a.push(seq, 100, false, &pkt(i == 0, &body)), Assembled::Nothing);
            assert!(a.frame.capacity() <= 2 * MAX_FRAME_BYTES, "buffer grew to {}", a.frame.capacity());
        }
        // Its marker at last: dropped, not delivered.
        seq = seq.wrapping_add(1);
        assert_eq!(a.push(seq, 100, true, &pkt(false, &body)), Assembled::Lost);
        seq = seq.wrapping_add(1);
        assert!(matches!(a.push(seq, 200, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
    }

    /// An oversized keyframe header is refused before libvpx allocates for it; the decoder
    /// then decodes a real keyframe.
    #[test]
    fn a_huge_keyframe_is_refused_and_decoding_goes_on() {
        use blende_media::vp8::{Vp8Encoder, Vp8EncoderConfig, keyframe_size};
        let mut huge = vec![0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
        huge.extend_from_slice(&0x3fffu16.to_le_bytes());
        huge.extend_from_slice(&0x3fffu16.to_le_bytes());
        huge.extend_from_slice(&[0u8; 64]);
        assert_eq!(keyframe_size(&huge), Some((16383, 16383)));
        let mut decoder = Vp8Decoder::new(1).expect("decoder");
        assert!(matches!(decoder.decode_bytes(&huge, 0, 0), Err(blende_media::MediaError::InvalidFrame(_))));

        let mut encoder = Vp8Encoder::new(Vp8EncoderConfig::camera(64, 48, 200_000)).expect("encoder");
        let picture = blende_media::VideoFrame::black(64, 48, blende_media::PixelFormat::I420, 0, 0);
        let frames = encoder.encode(&picture).expect("encode");
        let key = frames.first().expect("a keyframe");
        assert_eq!(keyframe_size(&key.data), Some((64, 48)));
        let decoded = decoder.decode_bytes(&key.data, 0, 0).expect("decodes").expect("a picture");
        assert_eq!((decoded.width(), decoded.height()), (64, 48));
        let mut small = Vp8Decoder::new(1).expect("decoder").with_max_pixels(32 * 32);
        assert!(small.decode_bytes(&key.data, 0, 0).is_err(), "a lower limit applies");
    }

    #[test]
    fn a_gap_breaks_the_frame_and_waits_for_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert!(matches!(a.push(1, 100, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { .. }));
        assert_eq!(a.push(2, 200, false, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        // seq 3 lost
        assert_eq!(a.push(4, 200, true, &pkt(false, &[9, 9, 9])), Assembled::Lost);
        assert_eq!(a.push(5, 300, true, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        assert!(matches!(a.push(6, 400, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
    }
}
