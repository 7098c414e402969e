//! The receive path of one remote track: RTP → (VP8 reassembly) → decoder → [`RtcEvent`].
//!
//! Video packets are put back in order first ([`blende_media::rtp_reorder`]): after a gap
//! they wait a little for NACK's retransmission. VP8 frames are then reassembled by
//! [`blende_media::vp8_rtp`]; a gap given up there asks the sender for a keyframe (PLI,
//! RFC 4585 §6.3.1), and asks again every half second until one has come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blende_media::rtp_reorder::Reorder;
use blende_media::vp8_rtp::{Assembled, KeyframeAsk, Vp8Assembler};
use blende_media::{OpusReceiver, vp8::Vp8Decoder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::{MediaKind, RtcEvent};

/// How often a keyframe is asked for while one is awaited.
const PLI_INTERVAL_US: u64 = 500_000;
/// How long packets after a gap wait for the missing ones: two rounds of the NACK generator
/// (every 100 ms) plus the way back, before the gap counts as a loss.
const REORDER_WAIT_US: u64 = 250_000;
/// Packets held behind a gap at most (about a second of 720p video).
const REORDER_MAX_PACKETS: usize = 512;

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// RTP packets of a connection's remote tracks: received, and expected from the sequence
/// numbers (RFC 3550 §6.4.1: the highest extended one less the first, plus one). Lost is the
/// difference; late packets that arrive after all bring it down again.
#[derive(Debug, Default)]
pub(crate) struct Received {
    received: AtomicU64,
    expected: AtomicU64,
}

impl Received {
    /// Packets received and lost so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let (r, e) = (self.received.load(Ordering::Relaxed), self.expected.load(Ordering::Relaxed));
        (r, e.saturating_sub(r))
    }
}

/// One track's share of [`Received`], and what its reception report says.
#[derive(Debug, Default)]
struct SeqCount {
    /// The highest extended sequence number, offset by 2^32 so a reordered packet from before
    /// the first one stays above zero.
    highest: Option<u64>,
    first: u64,
    received: u64,
    /// Expected and received when the last report block was made (for its fraction lost).
    reported: (u64, u64),
}

impl SeqCount {
    fn packet(&mut self, seq: u16, into: &Received) {
        into.received.fetch_add(1, Ordering::Relaxed);
        self.received += 1;
        let Some(high) = self.highest else {
            self.highest = Some((1 << 32) + u64::from(seq));
            self.first = (1 << 32) + u64::from(seq);
            into.expected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let ext = high.saturating_add_signed(i64::from(seq.wrapping_sub(high as u16) as i16));
        if ext > high {
            into.expected.fetch_add(ext - high, Ordering::Relaxed);
            self.highest = Some(ext);
        }
    }

    /// The reception report block for `ssrc` (RFC 3550 §6.4.1), as of now. Jitter and the
    /// sender-report fields stay zero: the report goes with a keyframe request, the periodic
    /// reports of the interceptor chain carry those.
    fn report_block(&mut self, ssrc: u32) -> ReceptionReport {
        let Some(high) = self.highest else { return ReceptionReport { ssrc, ..ReceptionReport::default() } };
        let expected = high - self.first + 1;
        let lost = expected.saturating_sub(self.received);
        let (expected_before, received_before) = self.reported;
        let interval = expected.saturating_sub(expected_before);
        let lost_interval = interval.saturating_sub(self.received.saturating_sub(received_before));
        self.reported = (expected, self.received);
        ReceptionReport {
            ssrc,
            fraction_lost: (lost_interval * 256).checked_div(interval).map_or(0, |f| u8::try_from(f).unwrap_or(u8::MAX)),
            // 24 bits on the wire.
            total_lost: u32::try_from(lost.min(0x7f_ffff)).unwrap_or(0x7f_ffff),
            // Cycles in the upper 16 bits, as counted from the offset start.
            last_sequence_number: (high - (1 << 32)) as u32,
            ..ReceptionReport::default()
        }
    }
}

pub(crate) async fn run(
    track: Arc<dyn TrackRemote>,
    track_id: String,
    kind: MediaKind,
    events: mpsc::Sender<RtcEvent>,
    received: Arc<Received>,
) {
    match kind {
        MediaKind::Video => video(track, &track_id, &events, &received).await,
        MediaKind::Audio => audio(track, &track_id, &events, &received).await,
    }
    let _ = events.send(RtcEvent::TrackEnded { track_id }).await;
}

/// The SSRC a receive-only stream sends its feedback from (Chrome's choice too).
const FEEDBACK_SSRC: u32 = 1;

/// A keyframe request as a compound packet: a receiver report for the stream, then the PLI.
/// A lone PLI is valid RTCP, but Janus (1.1.2) finds the stream of a feedback packet by its
/// sender SSRC, or by the receiver SSRC of a report or a transport-layer feedback, never by a
/// PLI's media SSRC: from a receive-only peer it drops a lone PLI without a word.
async fn send_pli(track: &Arc<dyn TrackRemote>, count: &mut SeqCount) {
    let Some(media_ssrc) = track.ssrcs().await.first().copied() else { return };
    let report = ReceiverReport { ssrc: FEEDBACK_SSRC, reports: vec![count.report_block(media_ssrc)], ..ReceiverReport::default() };
    let pli = PictureLossIndication { sender_ssrc: FEEDBACK_SSRC, media_ssrc };
    if let Err(e) = track.write_rtcp(vec![Box::new(report), Box::new(pli)]).await {
        log::debug!("PLI: {e}");
    }
}

async fn video(track: Arc<dyn TrackRemote>, track_id: &str, events: &mpsc::Sender<RtcEvent>, received: &Received) {
    let mut count = SeqCount::default();
    // One thread: libvpx's VP8 threads sync by spin-waiting, which burns CPU on small boxes.
    let mut decoder = match Vp8Decoder::new(1) {
        Ok(d) => d,
        Err(e) => {
            log::warn!("VP8 decoder: {e}");
            return;
        }
    };
    let mut assembler = Vp8Assembler::new();
    let mut reorder = Reorder::new(REORDER_WAIT_US, REORDER_MAX_PACKETS);
    let mut ask = KeyframeAsk::new(PLI_INTERVAL_US);
    loop {
        if ask.poll(now_us(), assembler.waiting_for_keyframe) {
            send_pli(&track, &mut count).await;
        }
        // Packets behind a gap wait for NACK's retransmission until their deadline; while a
        // keyframe is awaited, the next request is due too.
        let deadline = match (reorder.deadline_us(), ask.deadline_us(assembler.waiting_for_keyframe)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let event = match deadline {
            Some(at) => {
                let wait = Duration::from_micros(at.saturating_sub(now_us()));
                tokio::time::timeout(wait, track.poll()).await.ok()
            }
            None => Some(track.poll().await),
        };
        match event {
            Some(None) => break,
            Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => {
                count.packet(packet.header.sequence_number, received);
                reorder.push(packet.header.sequence_number, now_us(), packet);
            }
            Some(Some(_)) | None => {}
        }
        while let Some((seq, packet)) = reorder.pop(now_us()) {
            let h = &packet.header;
            match assembler.push(seq, h.timestamp, h.marker, &packet.payload) {
                Assembled::Nothing => {}
                // The assembler now waits for a keyframe; the next poll asks for it.
                Assembled::Lost => log::debug!("{track_id}: loss at {seq} ({} packets given up so far)", reorder.skipped()),
                Assembled::Frame { timestamp, .. } => match decoder.decode_bytes(assembler.frame(), now_us(), u64::from(timestamp)) {
                    // Media is dropped, not queued, when the consumer is behind.
                    Ok(Some(frame)) => drop(events.try_send(RtcEvent::Video { track_id: track_id.to_owned(), frame })),
                    Ok(None) => {}
                    Err(e) => {
                        log::debug!("VP8 decode: {e}");
                        assembler.waiting_for_keyframe = true;
                    }
                },
            }
        }
    }
    log::debug!("{track_id}: {} keyframe requests sent", ask.asked());
}

async fn audio(track: Arc<dyn TrackRemote>, track_id: &str, events: &mpsc::Sender<RtcEvent>, received: &Received) {
    let mut count = SeqCount::default();
    // Mono decode: Opus decodes stereo streams to mono too, and the UI mixes to mono anyway.
    let mut receiver = match OpusReceiver::new(1) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("Opus decoder: {e}");
            return;
        }
    };
    loop {
        // Packets wait in the playout buffer until their block is due.
        let event = match receiver.deadline_us() {
            Some(at) => tokio::time::timeout(Duration::from_micros(at.saturating_sub(now_us())), track.poll()).await.ok(),
            None => Some(track.poll().await),
        };
        match event {
            Some(None) => break,
            Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => {
                let h = &packet.header;
                count.packet(h.sequence_number, received);
                receiver.push(h.sequence_number, h.timestamp, &packet.payload, now_us());
            }
            Some(Some(_)) | None => {}
        }
        // Lost packets come back from the next one's FEC where it has some, concealed otherwise.
        let playout_delay_ms = receiver.playout().0 / 1000;
        receiver.poll(now_us(), |frame, origin| {
            let _ = events.try_send(RtcEvent::Audio { track_id: track_id.to_owned(), frame, origin, playout_delay_ms });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_counted_from_sequence_numbers_across_the_wrap() {
        let received = Received::default();
        let (mut a, mut b) = (SeqCount::default(), SeqCount::default());
        // Track a: 65530..=65535, 0..=9 with 65533 and 4 missing, 2 late (after 3).
        for seq in [65530u16, 65531, 65532, 65534, 65535, 0, 1, 3, 2, 5, 6, 7, 8, 9] {
            a.packet(seq, &received);
        }
        // Track b: 100..=109 complete, with a duplicate.
        for seq in (100u16..110).chain([105]) {
            b.packet(seq, &received);
        }
        // A duplicate counts as received (RFC 3550 does the same), so it hides one loss.
        assert_eq!(received.totals(), (25, 1));
    }

    #[test]
    fn the_report_block_with_a_keyframe_request_counts_cycles_and_losses() {
        let received = Received::default();
        let mut a = SeqCount::default();
        assert_eq!(a.report_block(7), ReceptionReport { ssrc: 7, ..ReceptionReport::default() }, "nothing received yet");
        // 65530..=65535, 0..=9 with 65533 and 4 missing: 16 expected, 2 lost.
        for seq in [65530u16, 65531, 65532, 65534, 65535, 0, 1, 2, 3, 5, 6, 7, 8, 9] {
            a.packet(seq, &received);
        }
        let block = a.report_block(7);
        assert_eq!((block.ssrc, block.last_sequence_number, block.total_lost), (7, (1 << 16) | 9, 2));
        assert_eq!(block.fraction_lost, 32, "2 of 16 lost, in 256ths");
        // The next block's fraction covers only what came since: 10..=19, none lost.
        for seq in 10u16..20 {
            a.packet(seq, &received);
        }
        let block = a.report_block(7);
        assert_eq!((block.last_sequence_number, block.total_lost, block.fraction_lost), ((1 << 16) | 19, 2, 0));
    }
}
