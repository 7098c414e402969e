//! One PeerConnection: construction (codecs, interceptors, ICE settings), SDP, and the send path.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blende_media::ladder::Ladder;
use blende_media::{
    AudioFrame, ContentKind, OpusConfig, OpusEncoder, VideoFrame, convert::shrink_i420, vp8::Vp8Encoder, vp8::Vp8EncoderConfig,
};
use bytes::Bytes;
use rtc::interceptor::{
    Attribute, BandwidthEstimator, EstimatorStats, Gcc, Interceptor, Packet, PacketReport, Slot, StreamInfo, TaggedPacket,
};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, Registry, configure_congestion_control, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{RTCConfigurationBuilder, RTCIceTransportPolicy, RTCOfferOptions};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceServer;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use tokio::sync::{Notify, mpsc, watch};
use webrtc::data_channel::{DataChannel, RTCDataChannelInit};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};
use webrtc::peer_connection::{RTCStatsReportEntry, StatsSelector};
use webrtc::rtp_transceiver::RtpSender;

use crate::loss_cap::LossCap;
use crate::{ConnectionState, LinkStats, MediaKind, RtcError, RtcEvent};

const EVENT_QUEUE: usize = 256;
/// Encoded frames waiting for the writer task: a few frames, then the encoder's output is dropped.
const SEND_QUEUE: usize = 16;
const GATHER_TIMEOUT_MS: u64 = 5_000;
const VIDEO_PT: u8 = 96;
const OPUS_PT: u8 = 111;

/// Publish our media, or receive what the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// We offer, send-only: camera (VP8) and microphone (Opus) as configured.
    Publisher,
    /// The server offers, we answer receive-only.
    Subscriber,
}

/// How to build a [`Peer`].
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub role: PeerRole,
    /// STUN/TURN URLs from the policy (no credentials); empty: host candidates only.
    pub ice_servers: Vec<String>,
    /// TURN servers with the credentials to use them (the room server's short-lived ones).
    pub turn: Vec<TurnServer>,
    /// ICE transport policy "relay": gather and use only TURN-relayed candidates. Without a
    /// TURN server the connection then has no candidate at all and cannot come up.
    pub relay_only: bool,
    /// Bind the ICE socket to this address only (127.0.0.2 in the interop tests).
    pub ice_bind_ip: Option<IpAddr>,
    /// Publisher: send a VP8 video track of this size.
    pub video: Option<(u32, u32)>,
    /// What the video track carries: a camera, or a shared window (VP8 screen-content mode,
    /// 15 fps, sharp text before smooth motion).
    pub video_content: ContentKind,
    /// Publisher: send an Opus track.
    pub audio: bool,
    pub initial_bitrate_bps: u32,
    pub min_bitrate_bps: u32,
    pub max_bitrate_bps: u32,
    /// Send-side congestion control (GCC over TWCC, with its pacer) drives the encoder bitrate.
    /// Off: the encoder stays at `initial_bitrate_bps`.
    pub congestion_control: bool,
    /// Publisher: offer a reliable, ordered data channel (`blende-p2p/1`) for chat and
    /// documents. A subscriber takes whatever channel the offer brings; with this set, it also
    /// opens one of its own when the offer has a data section (a Janus subscription, whose
    /// server opens none until it relays something).
    pub data_channel: bool,
    /// The DTLS certificate to present. One per call, so every connection to a participant
    /// yields the same identity code; `None`: a fresh one for this connection.
    pub certificate: Option<DtlsCertificate>,
}

/// Reliable and ordered, with the protocol version as its subprotocol.
fn data_channel_init() -> RTCDataChannelInit {
    RTCDataChannelInit { ordered: true, protocol: crate::data::LABEL.to_owned(), ..Default::default() }
}

/// A DTLS certificate (ECDSA P-256, self-signed, as browsers make them).
#[derive(Clone)]
pub struct DtlsCertificate(RTCCertificate);

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DtlsCertificate")
    }
}

impl DtlsCertificate {
    /// A new key pair and certificate.
    ///
    /// # Errors
    /// The crypto provider refused (it does not on supported platforms).
    pub fn generate() -> Result<Self, RtcError> {
        let provider = rtc::crypto::default_provider().map_err(|e| RtcError::WebRtc(e.to_string()))?;
        let params = CertificateParams::new(vec!["blende".to_owned()]).map_err(|e| RtcError::WebRtc(e.to_string()))?;
        let certificate = RTCCertificate::generate(provider.crypto(), rtc::crypto::SignatureScheme::EcdsaP256Sha256, params)?;
        Ok(Self(certificate))
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            role: PeerRole::Publisher,
            ice_servers: Vec::new(),
            turn: Vec::new(),
            relay_only: false,
            ice_bind_ip: None,
            video: Some((640, 360)),
            video_content: ContentKind::Camera,
            audio: true,
            initial_bitrate_bps: 800_000,
            min_bitrate_bps: 100_000,
            max_bitrate_bps: 2_500_000,
            congestion_control: true,
            data_channel: false,
            certificate: None,
        }
    }
}

/// A TURN server and the credentials for it (RFC 8656 long-term credentials; with coturn's
/// shared-secret scheme the username carries the expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// `turn:host:port?transport=udp`, `turns:…`.
    pub urls: Vec<String>,
    pub username: String,
    /// Never logged: `Debug` prints `***`.
    pub credential: String,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer").field("urls", &self.urls).field("username", &self.username).field("credential", &"***").finish()
    }
}

/// Shared between the encoder thread and the async side.
#[derive(Debug, Default)]
struct SendControl {
    keyframe_requested: AtomicBool,
    target_bitrate_bps: AtomicU64,
    /// The keyframe-request task runs (once, whatever number of answers is applied).
    feedback_started: AtomicBool,
}

/// A PeerConnection and its local tracks.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    role: PeerRole,
    gathered: Arc<Notify>,
    gathering_done: Arc<AtomicBool>,
    video: Option<LocalTrack>,
    audio: Option<LocalTrack>,
    control: Arc<SendControl>,
    config: PeerConfig,
    events: mpsc::Sender<RtcEvent>,
    closed_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("role", &self.role).finish_non_exhaustive()
    }
}

struct LocalTrack {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
}

impl Peer {
    /// Builds the PeerConnection. Publishers get their send-only tracks now; subscribers get
    /// theirs from the server's offer.
    ///
    /// # Errors
    /// [`RtcError::WebRtc`] when the stack refuses the configuration (e.g. the bind address
    /// does not exist).
    pub async fn new(config: PeerConfig) -> Result<(Self, mpsc::Receiver<RtcEvent>), RtcError> {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let mut media_engine = MediaEngine::default();
        let video_feedback = vec![
            RTCPFeedback { typ: "nack".into(), parameter: String::new() },
            RTCPFeedback { typ: "nack".into(), parameter: "pli".into() },
            RTCPFeedback { typ: "ccm".into(), parameter: "fir".into() },
        ];
        media_engine.register_codec(RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: OPUS_PT }, RtpCodecKind::Audio)?;
        media_engine.register_codec(
            RTCRtpCodecParameters { rtp_codec: RTCRtpCodec { rtcp_feedback: video_feedback, ..vp8_codec() }, payload_type: VIDEO_PT },
            RtpCodecKind::Video,
        )?;

        let control = Arc::new(SendControl::default());
        control.target_bitrate_bps.store(u64::from(config.initial_bitrate_bps), Ordering::Relaxed);
        // Send-side congestion control (GCC over TWCC feedback) drives the VP8 encoder's bitrate;
        // then the defaults: NACK generator/responder (RTX-less retransmission), TWCC receiver,
        // RTCP reports.
        let registry = if config.congestion_control {
            let estimator = ReportingEstimator {
                inner: Gcc::new(
                    f64::from(config.initial_bitrate_bps),
                    f64::from(config.min_bitrate_bps),
                    f64::from(config.max_bitrate_bps),
                ),
                control: Arc::clone(&control),
                acknowledged_ssrcs: std::collections::HashSet::new(),
                filtered: Vec::new(),
                loss: LossCap::default(),
            };
            configure_congestion_control(Registry::new(), estimator, CongestionFeedback::Twcc, &mut media_engine)?
        } else {
            Registry::new()
        };
        let registry = register_default_interceptors(registry, &mut media_engine)?;
        // PLI/FIR are swallowed by the default chain: mark them for the application, last.
        let registry = registry.with(Slot::from(14_000), KeyframeRequestForwarder::default());

        let ice_servers = config
            .ice_servers
            .iter()
            .map(|url| RTCIceServer { urls: vec![url.clone()], ..Default::default() })
            .chain(config.turn.iter().map(|t| RTCIceServer {
                urls: t.urls.clone(),
                username: t.username.clone(),
                credential: t.credential.clone(),
            }))
            .collect::<Vec<_>>();
        let transport_policy = if config.relay_only { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All };
        let mut rtc_config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).with_ice_transport_policy(transport_policy);
        if let Some(DtlsCertificate(certificate)) = &config.certificate {
            rtc_config = rtc_config.with_certificates(vec![certificate.clone()]);
        }
        let rtc_config = rtc_config.build();
        // mDNS on by default breaks build() where there is no multicast route (namespaces).
        let setting_engine = SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled).build();

        let gathered = Arc::new(Notify::new());
        let gathering_done = Arc::new(AtomicBool::new(false));
        let received = Arc::new(crate::receive::Received::default());
        let handler = Arc::new(Handler {
            events: events_tx.clone(),
            gathered: Arc::clone(&gathered),
            gathering_done: Arc::clone(&gathering_done),
            received: Arc::clone(&received),
        });
        let bind = config.ice_bind_ip.map_or_else(|| "0.0.0.0:0".to_owned(), |ip| format!("{ip}:0"));
        let pc = PeerConnectionBuilder::new()
            .with_configuration(rtc_config)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec![bind])
            // `DataLink::send` waits while this much is unacknowledged: back-pressure for
            // documents, so a 500 MB file never sits in memory.
            .with_data_channel_send_buffer_limit(crate::data::SEND_BUFFER_BYTES)
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let mut video = None;
        let mut audio = None;
        if config.role == PeerRole::Publisher {
            if config.video.is_some() {
                video = Some(add_local_track(&pc, RtpCodecKind::Video, vp8_codec()).await?);
            }
            if config.audio {
                audio = Some(add_local_track(&pc, RtpCodecKind::Audio, opus_codec()).await?);
            }
        } else {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() }),
                )
                .await?;
            }
        }
        if config.data_channel && config.role == PeerRole::Publisher {
            let channel = pc.create_data_channel(crate::data::LABEL, Some(data_channel_init())).await?;
            tokio::spawn(crate::data::run(channel, events_tx.clone()));
        }
        let (closed_tx, _) = watch::channel(false);
        spawn_link_stats(Arc::clone(&pc), events_tx.clone(), closed_tx.subscribe(), received);
        Ok((
            Self { pc, role: config.role, gathered, gathering_done, video, audio, control, config, events: events_tx, closed_tx },
            events_rx,
        ))
    }

    /// Publisher: our offer, with every candidate in it (no trickle needed).
    ///
    /// # Errors
    /// WebRTC errors, or [`RtcError::GatheringTimeout`].
    pub async fn create_offer(&self) -> Result<String, RtcError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.local_sdp_after_gathering().await
    }

    /// An ICE restart (RFC 8445 §9, JSEP §5.2.1): a new offer on this connection with new ICE
    /// credentials, every candidate in it, after the path failed. DTLS, SRTP and the tracks
    /// stay; apply the answer with [`Peer::apply_answer`] as for the first offer.
    ///
    /// # Errors
    /// WebRTC errors, or [`RtcError::GatheringTimeout`].
    pub async fn restart_ice(&self) -> Result<String, RtcError> {
        // A new generation gathers again: wait for its end, not the first one's.
        self.gathering_done.store(false, Ordering::Release);
        let offer = self.pc.create_offer(Some(RTCOfferOptions { ice_restart: true })).await?;
        self.pc.set_local_description(offer).await?;
        self.local_sdp_after_gathering().await
    }

    /// Answer the other end's new offer on this connection (its ICE restart).
    ///
    /// # Errors
    /// WebRTC errors, or [`RtcError::GatheringTimeout`].
    pub async fn answer_again(&self, sdp: &str) -> Result<String, RtcError> {
        self.gathering_done.store(false, Ordering::Release);
        self.pc.set_remote_description(RTCSessionDescription::offer(sdp.to_owned())?).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.local_sdp_after_gathering().await
    }

    /// Publisher: apply the server's answer and start the send-side helpers.
    ///
    /// # Errors
    /// WebRTC errors (a malformed or incompatible answer).
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), RtcError> {
        self.pc.set_remote_description(RTCSessionDescription::answer(sdp.to_owned())?).await?;
        self.start_feedback_tasks();
        Ok(())
    }

    /// Subscriber: answer the server's offer; the answer carries every candidate.
    ///
    /// # Errors
    /// WebRTC errors, or [`RtcError::GatheringTimeout`].
    pub async fn answer_offer(&self, sdp: &str) -> Result<String, RtcError> {
        self.pc.set_remote_description(RTCSessionDescription::offer(sdp.to_owned())?).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        if self.config.data_channel && self.role != PeerRole::Publisher && sdp.contains("\nm=application") {
            let channel = self.pc.create_data_channel(crate::data::LABEL, Some(data_channel_init())).await?;
            tokio::spawn(crate::data::run(channel, self.events.clone()));
        }
        self.local_sdp_after_gathering().await
    }

    /// A trickled remote candidate (`candidate:` line, mid, m-line index).
    ///
    /// # Errors
    /// WebRTC errors for a malformed candidate.
    pub async fn add_remote_candidate(
        &self,
        candidate: &str,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    ) -> Result<(), RtcError> {
        let init = rtc::peer_connection::transport::RTCIceCandidateInit {
            candidate: candidate.to_owned(),
            sdp_mid,
            sdp_mline_index,
            ..Default::default()
        };
        self.pc.add_ice_candidate(init).await?;
        Ok(())
    }

    /// The encoder side of our camera track; `None` for subscribers or without video.
    ///
    /// # Errors
    /// [`RtcError::Codec`] when the encoder cannot be created.
    pub fn video_input(&self) -> Result<VideoInput, RtcError> {
        let local = self.video.as_ref().ok_or(RtcError::NoTrack(MediaKind::Video))?;
        let (width, height) = self.config.video.unwrap_or((640, 360));
        let mut encoder_config = match self.config.video_content {
            ContentKind::Screen => Vp8EncoderConfig::screen(width, height, self.config.initial_bitrate_bps),
            _ => Vp8EncoderConfig::camera(width, height, self.config.initial_bitrate_bps),
        };
        if u64::from(width) * u64::from(height) <= 640 * 480 {
            // libvpx's VP8 worker threads spin-wait; up to VGA one thread is cheaper overall.
            encoder_config.threads = 1;
        }
        let encoder = Vp8Encoder::new(encoder_config)?;
        let tx = spawn_writer(Arc::clone(&local.track), Arc::clone(&local.sender), local.ssrc, self.closed_tx.subscribe());
        Ok(VideoInput {
            encoder,
            full_config: encoder_config,
            ladder: Ladder::new(encoder_config.content, width, height, encoder_config.frame_rate_fps),
            shrunk: Vec::new(),
            rate: FrameRate::default(),
            pictures: 0,
            last_sent_us: None,
            tx,
            control: Arc::clone(&self.control),
            applied_bitrate_bps: u64::from(self.config.initial_bitrate_bps),
            frame_interval: Duration::from_millis(1000 / u64::from(encoder_config.frame_rate_fps.max(1))),
            sent_frames: 0,
            sent_bytes: 0,
        })
    }

    /// The encoder side of our microphone track.
    ///
    /// # Errors
    /// [`RtcError::Codec`] when the encoder cannot be created.
    pub fn audio_input(&self, channels: u16) -> Result<AudioInput, RtcError> {
        let local = self.audio.as_ref().ok_or(RtcError::NoTrack(MediaKind::Audio))?;
        let encoder = OpusEncoder::new(OpusConfig { channels, ..OpusConfig::default() })?;
        let tx = spawn_writer(Arc::clone(&local.track), Arc::clone(&local.sender), local.ssrc, self.closed_tx.subscribe());
        Ok(AudioInput { encoder, tx, sent_bytes: 0 })
    }

    /// The candidate types (`host`, `srflx`, `prflx`, `relay`) of the pair ICE selected, local
    /// and remote (the remote one when the stack knows it); `None` before a pair is selected.
    /// Tells whether media goes through TURN.
    pub async fn selected_candidate_types(&self) -> Option<(String, Option<String>)> {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let selected = report.transport().map(|t| t.selected_candidate_pair_id.clone()).unwrap_or_default();
        let pair = report.candidate_pairs().find(|p| p.stats.id == selected).or_else(|| report.candidate_pairs().find(|p| p.nominated))?;
        // rtc 0.21.1 names candidate entries `RTCLocalIceCandidate_<id>` /
        // `RTCRemoteIceCandidate_<id>` but a pair's ids are the bare candidate ids.
        let find = |id: &str, prefix: &str| {
            let prefixed = format!("{prefix}{id}");
            report.iter().find_map(|e| match e {
                RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c)
                    if (c.stats.id == id || c.stats.id == prefixed) =>
                {
                    Some(c.candidate_type.to_string())
                }
                _ => None,
            })
        };
        let local = find(&pair.local_candidate_id, "RTCLocalIceCandidate_")?;
        let remote = find(&pair.remote_candidate_id, "RTCRemoteIceCandidate_");
        Some((local, remote))
    }

    /// The SHA-256 fingerprints of the DTLS certificates of this connection: ours (from our own
    /// description) and the one the other end presented in the handshake — what the wire
    /// carried, not what the signalling claimed. `None` before the handshake, or without a
    /// data channel.
    pub async fn dtls_fingerprints(&self) -> Option<([u8; 32], [u8; 32])> {
        let local = self.pc.local_description().await?;
        let ours = blende_p2p::identity::sdp_fingerprint(&local.sdp)?;
        let sctp = self.pc.sctp().await?;
        let chain = sctp.transport().get_remote_certificates().await.ok()?;
        let theirs = blende_p2p::identity::fingerprint(chain.first()?);
        Some((ours, theirs))
    }

    /// Closes the PeerConnection; remote tracks end, writers stop.
    pub async fn close(&self) {
        let _ = self.closed_tx.send(true);
        if let Err(e) = self.pc.close().await {
            log::debug!("close: {e}");
        }
    }

    async fn local_sdp_after_gathering(&self) -> Result<String, RtcError> {
        if !self.gathering_done.load(Ordering::Acquire) {
            let wait = self.gathered.notified();
            if !self.gathering_done.load(Ordering::Acquire)
                && tokio::time::timeout(Duration::from_millis(GATHER_TIMEOUT_MS), wait).await.is_err()
            {
                return Err(RtcError::GatheringTimeout(GATHER_TIMEOUT_MS));
            }
        }
        self.pc.local_description().await.map(|d| d.sdp).ok_or(RtcError::Closed)
    }

    fn start_feedback_tasks(&self) {
        let Some(local) = &self.video else { return };
        if self.control.feedback_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let track = Arc::clone(&local.track);
        let control = Arc::clone(&self.control);
        let events = self.events.clone();
        let mut closed = self.closed_tx.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = track.poll() => match ev {
                        // The forwarder only lets PLI and FIR through.
                        Some(TrackLocalEvent::OnRtcpPacket(_)) => {
                            control.keyframe_requested.store(true, Ordering::Release);
                            let _ = events.try_send(RtcEvent::KeyframeRequested);
                        }
                        Some(_) => {}
                        // Not bound yet (or unbound): look again shortly.
                        None => tokio::time::sleep(Duration::from_millis(200)).await,
                    },
                    _ = closed.changed() => break,
                }
            }
        });
    }
}

async fn add_local_track(pc: &Arc<dyn PeerConnection>, kind: RtpCodecKind, codec: RTCRtpCodec) -> Result<LocalTrack, RtcError> {
    let ssrc = random_ssrc();
    let name = if kind == RtpCodecKind::Video { "camera" } else { "microphone" };
    let track = Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            "blende".to_owned(),
            name.to_owned(),
            name.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec,
                ..Default::default()
            }],
        ),
    )?);
    let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
    Ok(LocalTrack { track, sender, ssrc })
}

fn random_ssrc() -> u32 {
    // Uniqueness within one call is all that matters; the hash of a fresh RandomState is seeded
    // from the OS and avoids a dependency.
    use std::hash::{BuildHasher, RandomState};
    let v = RandomState::new().hash_one(Instant::now());
    (v as u32) | 1
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// Encoded media on its way to the writer task.
struct Outgoing {
    data: Bytes,
    duration: Duration,
}

fn spawn_writer(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    mut closed: watch::Receiver<bool>,
) -> mpsc::Sender<Outgoing> {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(SEND_QUEUE);
    tokio::spawn(async move {
        let mut payload_type = None;
        loop {
            let out = tokio::select! {
                out = rx.recv() => match out { Some(o) => o, None => break },
                _ = closed.changed() => break,
            };
            if payload_type.is_none() {
                // Known only once the answer is applied; until then frames are dropped.
                payload_type = match sender.get_parameters().await {
                    Ok(p) => p.rtp_parameters.codecs.first().map(|c| c.payload_type),
                    Err(_) => None,
                };
            }
            let Some(pt) = payload_type else { continue };
            let sample = Sample { data: out.data, duration: out.duration, ..Sample::new(Instant::now()) };
            if let Err(e) = track.sample_writer(ssrc, pt).write_sample(&sample).await {
                log::debug!("write_sample: {e}");
            }
        }
    });
    tx
}

/// Encodes camera frames for one publisher peer. Use it from a media thread: [`VideoInput::send`]
/// blocks for the encode (a few ms) and never waits for the network. Under a low congestion
/// target it sends smaller or fewer pictures ([`Ladder`]): the encoder is made again at the
/// rung's size (which starts with a keyframe), pictures are shrunk into a reused buffer.
pub struct VideoInput {
    encoder: Vp8Encoder,
    /// The encoder's settings at full size.
    full_config: Vp8EncoderConfig,
    ladder: Ladder,
    shrunk: Vec<u8>,
    rate: FrameRate,
    /// Pictures offered, for sending every `fps_div`-th.
    pictures: u64,
    last_sent_us: Option<u64>,
    tx: mpsc::Sender<Outgoing>,
    control: Arc<SendControl>,
    applied_bitrate_bps: u64,
    frame_interval: Duration,
    sent_frames: u64,
    sent_bytes: u64,
}

impl std::fmt::Debug for VideoInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoInput").field("sent_frames", &self.sent_frames).finish_non_exhaustive()
    }
}

impl VideoInput {
    /// Encodes one frame (a keyframe if the far end asked) at the congestion controller's
    /// current target and queues it; drops it when the network side is behind. Returns
    /// whether a frame was queued.
    ///
    /// # Errors
    /// [`RtcError::Codec`] from the encoder; [`RtcError::Closed`] once the peer is gone.
    pub fn send(&mut self, frame: &VideoFrame) -> Result<bool, RtcError> {
        if self.control.keyframe_requested.swap(false, Ordering::AcqRel) {
            self.encoder.request_keyframe();
        }
        let now = frame.capture_time_us();
        if let Some(fps) = self.rate.picture(now) {
            self.ladder.set_fps(fps);
        }
        let target = self.control.target_bitrate_bps.load(Ordering::Relaxed);
        let rung = self.ladder.update(target, now);
        self.pictures += 1;
        if !self.pictures.is_multiple_of(u64::from(rung.fps_div.max(1))) {
            return Ok(false);
        }
        let (width, height) = self.ladder.size();
        let (width, height) = if (width, height) == (frame.width(), frame.height()) || frame.width() < width {
            (frame.width(), frame.height())
        } else {
            (width, height)
        };
        let bitrate = if target > 0 { target } else { self.applied_bitrate_bps };
        if (width, height) != (self.encoder.config().width, self.encoder.config().height) {
            let mut config =
                Vp8EncoderConfig { width, height, bitrate_bps: u32::try_from(bitrate).unwrap_or(u32::MAX), ..self.full_config };
            if u64::from(width) * u64::from(height) <= 640 * 480 {
                config.threads = 1;
            }
            log::debug!("video: {width}×{height}, every {}. picture, at {bitrate} bit/s", rung.fps_div);
            self.encoder = Vp8Encoder::new(config)?;
            self.applied_bitrate_bps = bitrate;
        }
        // Re-configure only on a real change (>5 %): libvpx reconfiguration is not free.
        if target > 0 && target.abs_diff(self.applied_bitrate_bps) * 20 > self.applied_bitrate_bps {
            self.encoder.set_bitrate_bps(u32::try_from(target).unwrap_or(u32::MAX))?;
            self.applied_bitrate_bps = target;
        }
        // RTP time follows the pictures' capture times (frames skipped by the rung included).
        let duration = match self.last_sent_us.replace(now) {
            Some(last) if now > last => Duration::from_micros((now - last).min(500_000)),
            _ => self.frame_interval,
        };
        let shrunk = if (width, height) == (frame.width(), frame.height()) {
            None
        } else {
            Some(
                shrink_i420(frame, width, height, std::mem::take(&mut self.shrunk))
                    .ok_or(RtcError::Codec(blende_media::MediaError::InvalidFrame("a stepped-down stream needs I420 pictures")))?,
            )
        };
        let encoded = self.encoder.encode(shrunk.as_ref().unwrap_or(frame));
        if let Some(picture) = shrunk {
            self.shrunk = picture.into_data();
        }
        let mut queued = false;
        for encoded in encoded? {
            let len = encoded.data.len() as u64;
            match self.tx.try_send(Outgoing { data: Bytes::from(encoded.data), duration }) {
                Ok(()) => {
                    queued = true;
                    self.sent_bytes += len;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Dropped a frame: the next one must not reference it.
                    self.encoder.request_keyframe();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(RtcError::Closed),
            }
        }
        if queued {
            self.sent_frames += 1;
        }
        Ok(queued)
    }

    /// The encoder's current target.
    pub fn bitrate_bps(&self) -> u64 {
        self.applied_bitrate_bps
    }

    /// The size pictures are sent at now, and how many of the offered pictures go out (1: all,
    /// 2: every other one …).
    pub fn sending(&self) -> ((u32, u32), u32) {
        ((self.encoder.config().width, self.encoder.config().height), self.ladder.rung().fps_div)
    }

    pub fn sent_frames(&self) -> u64 {
        self.sent_frames
    }

    /// Encoded bytes handed to the network side so far (payloads, without RTP headers).
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }
}

/// How often a connection's [`LinkStats`] are read.
const LINK_STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Reads the connection's statistics every [`LINK_STATS_INTERVAL`] until it closes and sends
/// them as [`RtcEvent::Link`] (dropped when the consumer is behind: the next one follows),
/// with the packets the receive tasks counted.
fn spawn_link_stats(
    pc: Arc<dyn PeerConnection>,
    events: mpsc::Sender<RtcEvent>,
    mut closed: watch::Receiver<bool>,
    received: Arc<crate::receive::Received>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LINK_STATS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = closed.changed() => return,
            }
            let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
            let mut stats = link_stats(&report);
            (stats.packets_received, stats.packets_lost) = received.totals();
            if events.is_closed() {
                return;
            }
            if stats != LinkStats::default() {
                let _ = events.try_send(RtcEvent::Link(stats));
            }
        }
    });
}

fn link_stats(report: &webrtc::peer_connection::RTCStatsReport) -> LinkStats {
    let selected = report.transport().map(|t| t.selected_candidate_pair_id.clone()).unwrap_or_default();
    let pair = report.candidate_pairs().find(|p| p.stats.id == selected).or_else(|| report.candidate_pairs().find(|p| p.nominated));
    let mut stats = LinkStats {
        rtt_ms: pair.map(|p| p.current_round_trip_time).filter(|&s| s > 0.0).map(|s| (s * 1000.0).round() as u32),
        ..LinkStats::default()
    };
    for e in report.iter() {
        if let RTCStatsReportEntry::RemoteInboundRtp(r) = e {
            // What the far end reported losing of what we send (RTCP receiver reports).
            let pct = r.fraction_lost * 100.0;
            stats.remote_loss_pct = Some(stats.remote_loss_pct.map_or(pct, |p: f64| p.max(pct)));
            if stats.rtt_ms.is_none() && r.round_trip_time > 0.0 {
                stats.rtt_ms = Some((r.round_trip_time * 1000.0).round() as u32);
            }
        }
    }
    stats
}

/// Pictures offered per second, measured over windows of a second on their capture times.
#[derive(Debug, Default)]
struct FrameRate {
    window_start_us: Option<u64>,
    count: u32,
}

impl FrameRate {
    /// One picture; every second or so the rate of the window that ended.
    fn picture(&mut self, now_us: u64) -> Option<u32> {
        let start = *self.window_start_us.get_or_insert(now_us);
        self.count += 1;
        let elapsed = now_us.saturating_sub(start);
        if elapsed < 1_000_000 {
            return None;
        }
        let fps = u64::from(self.count - 1) * 1_000_000 / elapsed;
        self.window_start_us = Some(now_us);
        self.count = 1;
        u32::try_from(fps).ok().filter(|&f| f > 0)
    }
}

/// Encodes 20 ms audio blocks for one publisher peer.
pub struct AudioInput {
    encoder: OpusEncoder,
    tx: mpsc::Sender<Outgoing>,
    sent_bytes: u64,
}

impl std::fmt::Debug for AudioInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioInput").finish_non_exhaustive()
    }
}

impl AudioInput {
    /// Encodes one 20 ms block at 48 kHz and queues it.
    ///
    /// # Errors
    /// [`RtcError::Codec`]; [`RtcError::Closed`] once the peer is gone.
    pub fn send(&mut self, frame: &AudioFrame) -> Result<bool, RtcError> {
        let encoded = self.encoder.encode(frame)?;
        let duration = Duration::from_micros(frame.duration_us());
        let len = encoded.data.len() as u64;
        match self.tx.try_send(Outgoing { data: Bytes::from(encoded.data), duration }) {
            Ok(()) => {
                self.sent_bytes += len;
                Ok(true)
            }
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RtcError::Closed),
        }
    }

    /// Encoded bytes handed to the network side so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }
}

struct Handler {
    events: mpsc::Sender<RtcEvent>,
    gathered: Arc<Notify>,
    gathering_done: Arc<AtomicBool>,
    received: Arc<crate::receive::Received>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathering_done.store(true, Ordering::Release);
            self.gathered.notify_waiters();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = match state {
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => ConnectionState::Connecting,
        };
        // State changes are rare and matter: wait for room rather than drop them.
        let _ = self.events.send(RtcEvent::State(state)).await;
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        tokio::spawn(crate::data::run(channel, self.events.clone()));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let track_id = track.track_id().await;
        let kind = if track.kind().await == RtpCodecKind::Video { MediaKind::Video } else { MediaKind::Audio };
        let _ = self.events.send(RtcEvent::TrackStarted { track_id: track_id.clone(), kind }).await;
        let events = self.events.clone();
        tokio::spawn(crate::receive::run(track, track_id, kind, events, Arc::clone(&self.received)));
    }
}

/// How much faster than the estimate the pacer lets packets go (libwebrtc's pacing multiplier):
/// bursts of a frame are smoothed, but the queue drains faster than media fills it.
const PACING_FACTOR: f64 = 2.5;
/// The pacer never goes slower than this times [`PACING_FACTOR`]: near GCC's floor the encoder
/// overshoots its target (keyframes answering loss), and a pacer slower than what is sent is a
/// queue that GCC reads as congestion, which keeps the estimate at its floor.
const PACING_FLOOR_BPS: f64 = 400_000.0;

/// Publishes GCC's target where the encoder thread reads it, and keeps phantom losses out.
///
/// The TWCC sender numbers every packet on the transport, audio included, but Janus 1.1.2 only
/// acknowledges the streams whose m-line negotiated transport-cc (video): the audio packets
/// come back as "lost", ~60 % loss, and the loss-based controller pins the target to its floor.
/// Streams (SSRCs) of which no packet was ever acknowledged are therefore left out.
struct ReportingEstimator {
    inner: Gcc,
    control: Arc<SendControl>,
    acknowledged_ssrcs: std::collections::HashSet<u32>,
    filtered: Vec<PacketReport>,
    loss: LossCap,
}

impl ReportingEstimator {
    fn publish(&self) {
        let estimate = self.inner.target_bitrate();
        let bps = self.loss.ceiling_bps().map_or(estimate, |c| estimate.min(c));
        if bps.is_finite() && bps > 0.0 {
            self.control.target_bitrate_bps.store(bps as u64, Ordering::Relaxed);
        }
    }
}

impl BandwidthEstimator for ReportingEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.acknowledged_ssrcs.extend(reports.iter().filter(|r| r.arrived).map(|r| r.ssrc));
        self.filtered.clear();
        self.filtered.extend(reports.iter().filter(|r| self.acknowledged_ssrcs.contains(&r.ssrc)).cloned());
        for r in &self.filtered {
            self.loss.packet(r.departure, r.size, r.arrived);
        }
        self.inner.on_reports(now, &self.filtered);
        self.publish();
    }

    /// What the pacer releases packets at: the estimate (at least [`PACING_FLOOR_BPS`]) times
    /// [`PACING_FACTOR`]. Only the pacer
    /// reads this (the encoder gets the estimate itself through [`SendControl`]). Pacing at
    /// the estimate exactly, as rtc 0.21's pacer would, queues every packet the encoder
    /// overshoots by — audio behind video, retransmissions behind both — until a lossy, jittery
    /// link sees seconds of queue: audio late, NACKs useless, pictures frozen.
    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate().max(PACING_FLOOR_BPS) * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// Marks inbound PLI/FIR for delivery to the application (they arrive as
/// `TrackLocalEvent::OnRtcpPacket`); everything else inbound stays with the interceptors.
#[derive(Default)]
struct KeyframeRequestForwarder {
    read_queue: std::collections::VecDeque<TaggedPacket>,
    write_queue: std::collections::VecDeque<TaggedPacket>,
}

fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets.iter().filter(|p| is_keyframe_request(p.as_ref())).cloned().collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
