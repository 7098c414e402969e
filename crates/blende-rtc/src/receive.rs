//! The receive path of one remote track: RTP → (VP8 reassembly) → decoder → [`RtcEvent`].
//!
//! Video packets are put back in order first ([`blende_media::rtp_reorder`]): after a gap
//! they wait a little for NACK's retransmission. VP8 frames are then reassembled by
//! [`blende_media::vp8_rtp`]; a gap given up there asks the sender for a keyframe (PLI,
//! RFC 4585 §6.3.1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use blende_media::rtp_reorder::Reorder;
use blende_media::vp8_rtp::{Assembled, Vp8Assembler};
use blende_media::{OpusReceiver, vp8::Vp8Decoder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::{MediaKind, RtcEvent};

/// Do not ask for keyframes more often than this.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// How long packets after a gap wait for the missing ones: two rounds of the NACK generator
/// (every 100 ms) plus the way back, before the gap counts as a loss.
const REORDER_WAIT_US: u64 = 250_000;
/// Packets held behind a gap at most (about a second of 720p video).
const REORDER_MAX_PACKETS: usize = 512;

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
    let mut reorder = Reorder::new(REORDER_WAIT_US, REORDER_MAX_PACKETS);
    let mut last_pli = None;
    let mut frames = 0u64;
    send_pli(&track, &mut last_pli).await;
    loop {
        // Packets behind a gap wait for NACK's retransmission until their deadline.
        let event = match reorder.deadline_us() {
            Some(at) => {
                let wait = Duration::from_micros(at.saturating_sub(now_us()));
                tokio::time::timeout(wait, track.poll()).await.ok()
            }
            None => Some(track.poll().await),
        };
        match event {
            Some(None) => break,
            Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => reorder.push(packet.header.sequence_number, now_us(), packet),
            Some(Some(_)) | None => {}
        }
        while let Some((seq, packet)) = reorder.pop(now_us()) {
            let h = &packet.header;
            match assembler.push(seq, h.timestamp, h.marker, &packet.payload) {
                Assembled::Nothing => {}
                Assembled::Lost => {
                    log::debug!("{track_id}: loss at {seq} ({} packets given up so far)", reorder.skipped());
                    send_pli(&track, &mut last_pli).await;
                }
                Assembled::Frame { timestamp, .. } => {
                    match decoder.decode_bytes(assembler.frame(), now_us(), u64::from(timestamp)) {
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
        }
        if frames == 0 && last_pli.is_some_and(|t: Instant| t.elapsed() >= PLI_INTERVAL * 2) {
            // Still nothing decodable: keep asking.
            send_pli(&track, &mut last_pli).await;
        }
    }
}

async fn audio(track: Arc<dyn TrackRemote>, track_id: &str, events: &mpsc::Sender<RtcEvent>) {
    // Mono decode: Opus decodes stereo streams to mono too, and the UI mixes to mono anyway.
    let mut receiver = match OpusReceiver::new(1) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("Opus decoder: {e}");
            return;
        }
    };
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let h = &packet.header;
        // Lost packets come back from the next one's FEC where it has some, concealed otherwise.
        receiver.push(h.sequence_number, &packet.payload, now_us(), u64::from(h.timestamp), |frame, origin| {
            let _ = events.try_send(RtcEvent::Audio { track_id: track_id.to_owned(), frame, origin });
        });
    }
}
