//! WebRTC for Blende: the only crate that touches `webrtc`/`rtc` (0.21.1, pinned).
//!
//! How it is driven: the caller (the call engine) creates one [`Peer`] per PeerConnection with a
//! [`PeerConfig`] — a *publisher* peer carries our Opus and VP8 tracks, a *subscriber* peer
//! receives what a server (Janus, WHEP) offers. SDP goes in and out as plain strings; the
//! signalling crate carries them. Everything the peer learns comes out as [`RtcEvent`]s on one
//! bounded channel (decoded video frames and audio blocks included; when the consumer falls
//! behind, media is dropped, never queued without end).
//!
//! Media in: [`VideoInput::send`] / [`AudioInput::send`] encode on the *caller's* thread (a media
//! thread, not an async task) and hand the encoded frame to a writer task. Keyframe requests
//! (PLI/FIR from the server) and the congestion controller's (GCC over TWCC) target bitrate reach
//! the encoder through atomics that `send` reads before each frame.
//!
//! **Architecture invariant:** no STUN or TURN server is ever configured unless the caller passes
//! one in [`PeerConfig::ice_servers`] or [`PeerConfig::turn`]; mDNS is off; the ICE socket binds
//! only where [`PeerConfig::ice_bind_ip`] says (all interfaces otherwise).
//! [`PeerConfig::relay_only`] (ICE transport policy "relay") offers no host address at all.

mod data;
mod loss_cap;
mod peer;
mod receive;

pub use blende_media::ContentKind;
pub use data::DataLink;
pub use peer::{AudioInput, DtlsCertificate, Peer, PeerConfig, PeerRole, TurnServer, VideoInput};

use blende_media::{AudioFrame, VideoFrame};

/// Which kind of media a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Coarse PeerConnection state as the UI shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// What a [`Peer`] reports.
/// What a connection's statistics say about the link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// Round-trip time of the selected candidate pair (ICE consent checks), else from RTCP.
    pub rtt_ms: Option<u32>,
    /// RTP packets received and lost on the way to us, all remote tracks, since the start.
    pub packets_received: u64,
    pub packets_lost: u64,
    /// The largest share of our packets the far end last reported lost, percent.
    pub remote_loss_pct: Option<f64>,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum RtcEvent {
    State(ConnectionState),
    /// The connection's statistics, about once a second.
    Link(LinkStats),
    /// A remote track appeared (subscriber side).
    TrackStarted {
        track_id: String,
        kind: MediaKind,
    },
    /// A decoded picture from a remote track.
    Video {
        track_id: String,
        frame: VideoFrame,
    },
    /// A decoded 20 ms audio block from a remote track: a packet's, or a lost one's.
    Audio {
        track_id: String,
        frame: AudioFrame,
        origin: blende_media::AudioOrigin,
        /// The delay the track's playout buffer aims at now, ms.
        playout_delay_ms: u64,
    },
    /// A remote track ended.
    TrackEnded {
        track_id: String,
    },
    /// The far end asked for a keyframe (PLI or FIR); the video encoder will make one.
    KeyframeRequested,
    /// The congestion controller's new target for the video encoder.
    TargetBitrate {
        bitrate_bps: u64,
    },
    /// The `blende-p2p/1` data channel is open (ours on a publisher, the offerer's on a
    /// subscriber): send on this link.
    DataOpen(DataLink),
    /// One message on the data channel, as the peer sent it (untrusted).
    Data(bytes::Bytes),
    /// The data channel closed.
    DataClosed,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    #[error("WebRTC: {0}")]
    WebRtc(String),
    #[error("codec: {0}")]
    Codec(#[from] blende_media::MediaError),
    #[error("the peer connection is closed")]
    Closed,
    #[error("ICE gathering did not finish within {0} ms")]
    GatheringTimeout(u64),
    #[error("this peer has no {0:?} track")]
    NoTrack(MediaKind),
    #[error("the data channel is closed")]
    DataClosed,
}

impl From<webrtc::error::Error> for RtcError {
    fn from(e: webrtc::error::Error) -> Self {
        RtcError::WebRtc(e.to_string())
    }
}
