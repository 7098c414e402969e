//! What a call reports: typed, for the UI; `blende join` turns them into JSON lines at the edge.

use blende_media::{DeviceKind, DeviceState};
use blende_signal::{LobbyState, Participant, Role};

use crate::TransferId;

/// A PeerConnection's ICE/DTLS state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Disconnected => "disconnected",
            ConnState::Failed => "failed",
            ConnState::Closed => "closed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Which of our PeerConnections a [`CallEvent::Connection`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Our camera and microphone to the server.
    Publisher,
    /// A feed we receive.
    Feed(String),
    /// Our media to one mesh participant.
    Mesh(String),
    /// Our share to one mesh participant.
    MeshShare(String),
}

/// What a kill switch acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchKind {
    Device(DeviceKind),
    /// "Everything off".
    All,
}

/// Our share's lifecycle.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareState {
    /// Asked the room server; sharing starts when it accepts (the presenter role decides).
    Requested,
    /// The policy let the capture start; the publisher is being made.
    Starting { display: String },
    /// The server has our share (`feed` where it named one).
    Published { feed: Option<String> },
    /// The guard changed its decision.
    Guard(blende_guard::GuardEvent),
    /// Not started: the policy, the server or this kind of server said no.
    Refused { by: Refusal, reason: String },
    /// Stopped (by the user, a switch, or the server: `reason`).
    Stopped { reason: Option<String> },
    /// The shared window closed.
    Ended,
}

/// Who refused a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The policy blocks the window or the screen (`reason` names the category).
    Policy,
    /// The room server: our role may not share (the presenter role decides).
    Role,
    /// The room server, for another reason (`reason` is its text).
    Server,
    /// This kind of server cannot take a share (WHEP only receives).
    Unsupported,
}

impl Refusal {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Policy => "policy",
            Refusal::Role => "role",
            Refusal::Server => "server",
            Refusal::Unsupported => "unsupported",
        }
    }
}

/// Why and how a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// We left, or the server closed the session: exit status 0.
    Left(String),
    /// Removed from the room, or the room was destroyed: exit status 4.
    Removed(String),
    /// The call could not go on: exit status 1 (the message was reported as a fatal error).
    Failed(String),
}

impl End {
    /// The exit status `blende join` documents (JOIN.md).
    #[must_use]
    pub fn exit_status(&self) -> u8 {
        match self {
            End::Left(_) => 0,
            End::Failed(_) => 1,
            End::Removed(_) => 4,
        }
    }
}

/// Counters of what we sent, from the media threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    pub video_sent: u64,
    pub last_sent_counter: u64,
    pub audio_sent: u64,
    pub bitrate_bps: u64,
    pub keyframe_requests: u64,
    /// The camera's pictures as sent now (smaller than captured when the link is thin), and
    /// how many of the captured ones go out (1: all, 2: every other one).
    pub video_size: Option<(u32, u32)>,
    pub video_fps_div: u32,
    /// Round-trip time and the share of our packets lost on the way, as the far end reports
    /// them (the worst of our sending connections).
    pub rtt_ms: Option<u32>,
    pub remote_loss_pct: Option<u8>,
    /// Encoded audio and video bytes sent so far, each receiver's copy counted.
    pub bytes_sent: u64,
}

/// What we received from one feed (JOIN.md `stats` per feed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedStats {
    pub feed: String,
    pub display: Option<String>,
    pub frames_decoded: u64,
    pub frames_since_last: u64,
    pub stamped_frames: u64,
    pub width: u32,
    pub height: u32,
    pub last_counter: Option<u32>,
    pub last_capture_us: Option<u64>,
    pub max_capture_us: Option<u64>,
    pub last_recv_unix_us: Option<u64>,
    /// When the last picture of any kind (stamped or not) was decoded, Unix µs.
    pub last_picture_unix_us: Option<u64>,
    /// The longest wait between two decoded pictures that ended since the last report, ms:
    /// a freeze shows here.
    pub picture_gap_max_ms: u64,
    pub centre_luma: Option<f64>,
    pub first_video_ms: Option<u64>,
    pub audio_frames: u64,
    pub audio_frames_since_last: u64,
    /// Lost audio packets rebuilt from the next packet's in-band FEC, and concealed ones.
    pub audio_recovered: u64,
    pub audio_concealed: u64,
    /// Blocks made up while the playout buffer grew towards its delay (no packet lost).
    pub audio_stretched: u64,
    /// The delay the playout buffer aims at, ms (it follows the link's jitter).
    pub audio_playout_delay_ms: Option<u64>,
    pub audio_hz: Option<f64>,
    pub audio_dbfs: Option<f64>,
    /// The connection this feed arrives on: round-trip time, RTP packets received and lost
    /// since it opened.
    pub rtt_ms: Option<u32>,
    pub packets_received: u64,
    pub packets_lost: u64,
}

/// A document going to or coming from another participant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentEvent {
    /// `from` offers a document: `name` as sent (invisible characters removed, for display),
    /// `safe_name` what it would be saved as.
    Offered {
        transfer: TransferId,
        from: String,
        name: String,
        safe_name: String,
        size: u64,
        /// Offered to everyone (by a presenter, as the room server confirmed), not to us alone.
        to_all: bool,
    },
    /// An offer was refused without asking (too large, documents off, too many waiting).
    Refused {
        from: String,
        size: u64,
        reason: String,
    },
    /// Our offer went to `to`.
    Sending {
        transfer: TransferId,
        to: String,
        name: String,
        size: u64,
    },
    /// The receiver said yes.
    Accepted {
        transfer: TransferId,
    },
    Progress {
        transfer: TransferId,
        bytes: u64,
        size: u64,
    },
    /// Received, checked and stored at `path`.
    Saved {
        transfer: TransferId,
        path: String,
    },
    /// The receiver checked what we sent.
    Delivered {
        transfer: TransferId,
    },
    Declined {
        transfer: TransferId,
        reason: Option<String>,
    },
    Cancelled {
        transfer: TransferId,
        by_us: bool,
    },
    Failed {
        transfer: TransferId,
        reason: String,
    },
}

/// Everything a call reports. The machine makes the signalling and lifecycle events; the
/// driver adds what only it sees (devices, decoded media, statistics) to the same stream.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CallEvent {
    Joined {
        participant_id: String,
        participants: Vec<Participant>,
    },
    /// The server says our publisher PeerConnection is up.
    Published,
    /// The signalling session to the server we joined was lost (`reason`): every connection
    /// of it is closed, the switches and the share stay as they are, and attempt `attempt`
    /// to come back starts (1 for the first). Nothing is sent until
    /// [`CallEvent::Reconnected`].
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// In the meeting again, on a new session (the others see a new id for us, and we for
    /// them): media and direct links are set up anew.
    Reconnected,
    Connection {
        link: Link,
        state: ConnState,
        candidates: Option<(String, Option<String>)>,
    },
    ParticipantJoined(Participant),
    ParticipantLeft {
        id: String,
    },
    Subscribed {
        feed: String,
    },
    Track {
        feed: String,
        kind: MediaKind,
    },
    TrackEnded {
        feed: String,
    },
    /// First decoded picture (with its size) or audio block of a feed (driver).
    FirstFrame {
        feed: String,
        kind: MediaKind,
        since_subscribe_ms: u64,
        size: Option<(u32, u32)>,
    },
    /// A real device transition (driver).
    Device {
        kind: DeviceKind,
        from: DeviceState,
        to: DeviceState,
        at_us: u64,
    },
    /// A kill switch was carried out; `at_us` (media clock) was taken after its gate closed.
    Switch {
        kind: SwitchKind,
        on: bool,
        at_us: u64,
    },
    Share(ShareState),
    Lobby {
        state: LobbyState,
    },
    Waiting {
        participants: Vec<Participant>,
    },
    Role {
        participant: String,
        role: Role,
    },
    /// A raised or lowered hand, ours included (Blende rooms).
    Hand {
        participant: String,
        raised: bool,
    },
    /// Another participant's devices and share, as they report them (Blende rooms).
    RemoteDevices {
        participant: String,
        camera: bool,
        microphone: bool,
        sharing: bool,
    },
    IceServers {
        turn: usize,
        relay_only: bool,
    },
    /// The meeting moved to a Janus room (PIN and token are never in an event).
    Janus {
        room: u64,
        feed: u64,
    },
    SendStats(SendStats),
    FeedStats(Box<FeedStats>),
    /// A chat message: `from` `None` is ours (as sent); `private_with` names the other end of
    /// a private message.
    Chat {
        from: Option<String>,
        private_with: Option<String>,
        text: String,
    },
    /// The meeting's chat is on or off (a moderator's switch, as the room server reports it).
    ChatEnabled {
        enabled: bool,
    },
    /// A direct data connection to `participant` came up or went down.
    DirectLink {
        participant: String,
        open: bool,
    },
    /// The identity code of the direct connection to `participant` (12 digits in groups of
    /// three), whether the user marked it checked, and whether it replaced another one.
    Identity {
        participant: String,
        code: String,
        checked: bool,
        changed: bool,
    },
    Document(DocumentEvent),
    Error {
        message: String,
        fatal: bool,
    },
    Left {
        reason: String,
    },
}
