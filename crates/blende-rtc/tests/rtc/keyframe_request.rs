//! A receiver waiting for a keyframe asks for one, and the ask reaches the sender: Blende's
//! subscriber Peer gets VP8 inter pictures only (as after a loss, or when it joins a running
//! stream), and a bare webrtc-rs sender counts the picture loss indications (RFC 4585 §6.3.1)
//! that arrive over the wire, next to it in its interceptor chain.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::sansio::Protocol;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::PeerConnection;

use crate::hostile_sender::{SSRC, connected_to_a_bare_sender, rtp};

/// The media SSRCs of the PLIs read from the wire, in order, each with whether its compound
/// packet began with a receiver report on that stream (what Janus needs to place it).
#[derive(Default)]
struct PliLog {
    seen: Arc<Mutex<Vec<(u32, bool)>>>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for PliLog {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let reported = |media: u32| {
                packets
                    .first()
                    .and_then(|p| p.as_any().downcast_ref::<ReceiverReport>())
                    .is_some_and(|rr| rr.reports.iter().any(|b| b.ssrc == media))
            };
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.extend(
                packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<PictureLossIndication>())
                    .map(|p| (p.media_ssrc, reported(p.media_ssrc))),
            );
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for PliLog {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_without_a_keyframe_asks_the_sender_for_one() {
    let log = PliLog::default();
    let seen = Arc::clone(&log.seen);
    // Closest to the wire: what the sender's SRTCP layer let through.
    let (receiver, _events, sender, track) = connected_to_a_bare_sender(Registry::new().with(Slot::from(500), log), true).await;

    // Inter pictures only, 20 a second: the receiver cannot start decoding and asks every 500 ms.
    let deadline = Instant::now() + Duration::from_secs(6);
    let (mut seq, mut ts) = (0u16, 0u32);
    let count = || seen.lock().unwrap_or_else(PoisonError::into_inner).len();
    while count() < 3 {
        assert!(Instant::now() < deadline, "{} picture loss indications reached the sender in 6 s", count());
        // An inter picture: the frame tag's lowest bit is 1.
        let _ = track.write_rtp(rtp(seq, ts, true, vec![0x10, 0x01, 0x00, 0x00, 0x00])).await;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(4500);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ssrcs: Vec<(u32, bool)> = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    println!("keyframe asks: {} PLIs reached the sender (SSRC, after a report on it): {ssrcs:x?}", ssrcs.len());
    assert!(ssrcs.iter().all(|(s, _)| *s == SSRC), "PLIs name the sender's stream: {ssrcs:x?}");
    assert!(ssrcs.iter().all(|(_, reported)| *reported), "each PLI comes after a receiver report on its stream: {ssrcs:x?}");
    receiver.close().await;
    sender.close().await.expect("close");
}
