//! The receive path of one remote track: RTP → (VP8 reassembly) → decoder → [`RtcEvent`].
//!
//! VP8 frames are reassembled by [`blende_media::vp8_rtp`]; a loss there asks the sender for a
//! keyframe (PLI, RFC 4585 §6.3.1). NACK has usually repaired the gap before we see it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blende_media::vp8_rtp::{Assembled, Vp8Assembler};
use blende_media::{OpusReceiver, vp8::Vp8Decoder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::{MediaKind, RtcEvent};

/// Do not ask for keyframes more often than this.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

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
    let mut last_pli = None;
    let mut frames = 0u64;
    send_pli(&track, &mut last_pli).await;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let h = &packet.header;
        match assembler.push(h.sequence_number, h.timestamp, h.marker, &packet.payload) {
            Assembled::Nothing => {}
            Assembled::Lost => send_pli(&track, &mut last_pli).await,
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
