//! A hostile VP8 sender against Blende's receive path, over a real PeerConnection on loopback
//! (webrtc-rs on both ends; the sender writes raw RTP): 100,000 packets of one picture that
//! never ends (120 MB) and a keyframe announcing 16383 × 16383 leave the receiver's memory
//! where it was, and a real picture sent after them is decoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use blende_media::vp8::{Vp8Encoder, Vp8EncoderConfig};
use blende_media::{PixelFormat, VideoFrame};
use blende_rtc::{ConnectionState, Peer, PeerConfig, PeerRole, RtcEvent};
use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{Registry, register_default_interceptors};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState};

pub const SSRC: u32 = 0x5eed_0001;

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

struct Gathered {
    done: AtomicBool,
    notify: Notify,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Gathered {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.done.store(true, Ordering::Release);
            self.notify.notify_waiters();
        }
    }
}

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

pub fn rtp(seq: u16, timestamp: u32, marker: bool, payload: Vec<u8>) -> Packet {
    Packet {
        header: Header { version: 2, marker, payload_type: 96, sequence_number: seq, timestamp, ssrc: SSRC, ..Default::default() },
        payload: Bytes::from(payload),
    }
}

/// A bare webrtc-rs PeerConnection with one raw-RTP VP8 track, its offer made and gathered:
/// `registry` takes the default interceptors on top.
pub async fn bare_vp8_sender(registry: Registry) -> (impl PeerConnection, Arc<TrackLocalStaticRTP>) {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(RTCRtpCodecParameters { rtp_codec: vp8(), payload_type: 96 }, RtpCodecKind::Video).expect("codec");
    let registry = register_default_interceptors(registry, &mut media_engine).expect("interceptors");
    let gathered = Arc::new(Gathered { done: AtomicBool::new(false), notify: Notify::new() });
    let sender = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled).build())
        .with_interceptor_registry(registry)
        .with_handler(Arc::clone(&gathered) as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("sender");
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "hostile".to_owned(),
        "camera".to_owned(),
        "camera".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(SSRC), ..Default::default() },
            codec: vp8(),
            ..Default::default()
        }],
    )));
    sender.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await.expect("track");
    let offer = sender.create_offer(None).await.expect("offer");
    let wait = gathered.notify.notified();
    sender.set_local_description(offer).await.expect("local");
    if !gathered.done.load(Ordering::Acquire) {
        tokio::time::timeout(Duration::from_secs(5), wait).await.expect("gathering");
    }
    (sender, track)
}

/// Blende's subscriber Peer, as for any remote feed, connected to [`bare_vp8_sender`] over
/// loopback.
pub async fn connected_to_a_bare_sender(
    registry: Registry,
    congestion_control: bool,
) -> (Peer, mpsc::Receiver<RtcEvent>, impl PeerConnection, Arc<TrackLocalStaticRTP>) {
    let config = PeerConfig {
        role: PeerRole::Subscriber,
        ice_bind_ip: Some("127.0.0.1".parse().expect("ip")),
        video: None,
        audio: false,
        congestion_control,
        ..PeerConfig::default()
    };
    let (receiver, mut events) = Peer::new(config).await.expect("receiver");
    let (sender, track) = bare_vp8_sender(registry).await;
    let offer_sdp = sender.local_description().await.expect("local description").sdp;
    let answer = receiver.answer_offer(&offer_sdp).await.expect("answer");
    sender.set_remote_description(RTCSessionDescription::answer(answer).expect("sdp")).await.expect("remote");
    wait_connected(&mut events).await;
    (receiver, events, sender, track)
}

/// Until the receiving Peer reports its connection up (10 s at most).
async fn wait_connected(events: &mut mpsc::Receiver<RtcEvent>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the receiver never connected");
        if let Ok(Some(RtcEvent::State(ConnectionState::Connected))) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_vp8_sender_cannot_exhaust_the_receiver() {
    let (receiver, mut events, sender, track) = connected_to_a_bare_sender(Registry::new(), false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seq = 0u16;
    while track.write_rtp(rtp(seq, 1, true, vec![0x10, 0x01, 0, 0])).await.is_err() {
        assert!(Instant::now() < deadline, "the track never bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = |events: &mut mpsc::Receiver<RtcEvent>| {
        let mut pictures = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let RtcEvent::Video { frame, .. } = e {
                pictures.push((frame.width(), frame.height()));
            }
        }
        pictures
    };

    // 1. One picture that never ends: 100,000 packets of 1,200 bytes, no marker, one timestamp.
    let before = rss();
    for i in 0..100_000u32 {
        seq = seq.wrapping_add(1);
        let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
        payload.extend_from_slice(&[0x00; 1200]);
        track.write_rtp(rtp(seq, 9000, false, payload)).await.expect("write");
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_flood = rss();

    // 2. A keyframe announcing 16383 × 16383.
    seq = seq.wrapping_add(1);
    let mut huge = vec![0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
    huge.extend_from_slice(&0x3fffu16.to_le_bytes());
    huge.extend_from_slice(&0x3fffu16.to_le_bytes());
    huge.extend_from_slice(&[0x55; 600]);
    track.write_rtp(rtp(seq, 18_000, true, huge)).await.expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_huge = rss();
    let grown = |at: u64| at.saturating_sub(before) / (1 << 20);
    println!(
        "hostile sender: receiver RSS {} MiB before, +{} MiB after 120 MB of one endless picture, +{} MiB after a 16383x16383 keyframe",
        before / (1 << 20),
        grown(after_flood),
        grown(after_huge)
    );
    assert!(grown(after_flood) < 32, "the endless picture grew the receiver by {} MiB", grown(after_flood));
    assert!(grown(after_huge) < 32, "the huge keyframe grew the receiver by {} MiB", grown(after_huge));

    // 3. The call goes on: real 64 × 48 keyframes (one packet each) are decoded.
    let _ = drain(&mut events);
    let mut encoder = Vp8Encoder::new(Vp8EncoderConfig::camera(64, 48, 200_000)).expect("encoder");
    let mut decoded = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ts = 27_000u32;
    while decoded.is_empty() {
        assert!(Instant::now() < deadline, "no picture decoded after the attack");
        let picture = VideoFrame::black(64, 48, PixelFormat::I420, 0, u64::from(ts));
        for frame in encoder.encode(&picture).expect("encode") {
            let mut payload = vec![0x10];
            payload.extend_from_slice(&frame.data);
            seq = seq.wrapping_add(1);
            track.write_rtp(rtp(seq, ts, true, payload)).await.expect("write");
        }
        encoder.request_keyframe();
        ts = ts.wrapping_add(3000);
        tokio::time::sleep(Duration::from_millis(100)).await;
        decoded = drain(&mut events);
    }
    assert_eq!(decoded[0], (64, 48));
    receiver.close().await;
    sender.close().await.expect("close");
}
