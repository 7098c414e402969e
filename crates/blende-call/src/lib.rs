//! The call as one sans-IO state machine.
//!
//! [`Call`] is one participant in one meeting: which PeerConnections exist and what each
//! carries, which feeds we receive, the mesh bookkeeping of a Blende room, TURN servers that
//! arrive late, the move of a meeting to Janus, our own share's lifecycle and the end of the
//! call. It owns no socket, thread or timer and never reads the clock: the caller passes `now`
//! (the shape of str0m's `Rtc` and quinn-proto's `Connection`). Frames never enter it.
//!
//! Driving it:
//! - inputs: [`Call::handle_command`] (what the user asked), [`Call::handle_signal`] (a
//!   signalling adapter's event, with the [`Route`] it came on), [`Call::handle_peer`] (an event
//!   of a PeerConnection the driver made for us), [`Call::handle_share`] (what the share's
//!   capture reported), [`Call::handle_timeout`];
//! - outputs: [`Call::poll_action`] (work for the driver: signal this, open/answer/close this
//!   PeerConnection, start/stop the share, connect the meeting's Janus room, end),
//!   [`Call::poll_event`] (typed [`CallEvent`]s for the UI and `blende join`),
//!   [`Call::poll_timeout`] (when to call [`Call::handle_timeout`] next).
//!
//! The driver in the app carries the actions out in order and feeds their results back (a
//! PeerConnection's local description, a failure) before it takes the next input.
//!
//! **Kill switches** do not wait for this machine: the caller closes a gate synchronously in
//! its own thread (camera, microphone and share) and only then tells the machine, which then
//! ends the share's signalling, tells the room server and reports.

mod bus;
mod direct;
mod event;
mod machine;
mod mesh;
mod quality;
mod reconnect;

#[cfg(test)]
mod tests;

pub use direct::{CONFIRM_WITHIN, MAX_PENDING_OFFERS, PROGRESS_EVERY};
pub use event::{CallEvent, ConnState, DocumentEvent, End, FeedStats, Link, MediaKind, Refusal, SendStats, ShareState, SwitchKind};
pub use machine::Call;
pub use mesh::MeshBook;
pub use quality::{Quality, QualityMeter};
pub use reconnect::{ATTEMPT_TIMEOUT, FIRST_RETRY, GIVE_UP_AFTER, MAX_RETRY};

pub use blende_signal::blende::RoomAction;
pub use blende_signal::{JanusRoom, JoinOptions, LobbyState, Participant, Role, SignalCommand, SignalEvent, TurnCredentials};

use blende_media::DeviceKind;
use blende_policy::{ServerPolicy, ServerUrl};
use blende_signal::janus::JanusAccess;

/// Names one PeerConnection the driver made on the machine's behalf. Never reused within a
/// call, so an event of a replaced connection can be told from its successor's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pc{}", self.0)
    }
}

/// One document going to or coming from one participant. Never reused within a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub u64);

impl std::fmt::Display for TransferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A file the driver opened for sending (one offer to several people shares it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(pub u64);

/// Which signalling session an event came on, or a command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// The server we joined.
    Main,
    /// The Janus VideoRoom a Blende meeting moved to.
    Janus,
    /// Our share's own publisher session (Janus, WHIP: "NAME (screen)").
    Share,
}

/// What a PeerConnection carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Camera and microphone to the server (Janus, WHIP, a Janus room a meeting moved to).
    Publisher,
    /// Camera and microphone to one participant of a Blende mesh.
    MeshPublisher { to: String },
    /// Our share to one participant of a Blende mesh (`to` is the participant).
    MeshShare { to: String },
    /// Our share to the server on its own session ([`Route::Share`]).
    Share,
    /// A remote feed, receive only. `display` as the server named it.
    Subscriber { feed: String, display: Option<String> },
    /// Chat and documents only, with one member of a Blende meeting whose media moved to Janus
    /// (no audio or video on it): ours to offer, or an answer to theirs.
    Direct { with: String },
}

/// What may be shared. The policy and the share guard decide; the machine only relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareSource {
    Window(u32),
    Screen,
}

/// What the caller asks of a running call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallCommand {
    /// A request to a Blende room server (moderators: admit, deny, remove, presenter, lock, end).
    Room(RoomAction),
    /// Share a window (or the screen, if the administrator allows it).
    ShareStart(ShareSource),
    /// Stop sharing. The caller has closed the share's gate already.
    ShareStop,
    /// A kill switch. Off: the caller has closed the gate already.
    Switch {
        kind: DeviceKind,
        on: bool,
    },
    /// "Everything off": camera, microphone and share. The caller closed every gate already.
    AllOff,
    /// Report statistics now.
    Stats,
    /// A chat message to one participant (`to`) or to everyone.
    Chat {
        to: Option<String>,
        text: String,
    },
    /// Offer the file at `path` to one participant (`to`) or everyone (presenters only).
    SendFile {
        path: String,
        to: Option<String>,
    },
    /// Accept a document on offer into `folder`.
    AcceptDocument {
        transfer: TransferId,
        folder: String,
    },
    DeclineDocument {
        transfer: TransferId,
    },
    /// Stop a transfer in either direction.
    CancelDocument {
        transfer: TransferId,
    },
    /// The user compared the identity code with `participant` aloud (or takes that back).
    IdentityChecked {
        participant: String,
        checked: bool,
    },
    Leave,
    /// The caller's command source ended (end of stdin): leave.
    InputClosed,
}

/// Work for the driver, in the order it must be done.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    Signal {
        route: Route,
        command: SignalCommand,
    },
    /// Make a PeerConnection. With `remote_offer`, answer it; without, make our offer. Report
    /// the result as [`PeerEvent::LocalDescription`] or [`PeerEvent::Failed`].
    OpenPeer {
        peer: PeerId,
        purpose: Purpose,
        remote_offer: Option<String>,
    },
    ApplyAnswer {
        peer: PeerId,
        sdp: String,
    },
    /// Restart ICE on our offering connection `peer` (its path failed): report the new offer
    /// as [`PeerEvent::LocalDescription`] (it goes out as the first did, and its answer comes
    /// back as [`Action::ApplyAnswer`]), or [`PeerEvent::Failed`].
    RestartIce {
        peer: PeerId,
    },
    AddCandidate {
        peer: PeerId,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    },
    ClosePeer(PeerId),
    /// Every PeerConnection made from now on uses these TURN servers.
    UseTurn(Vec<TurnCredentials>),
    /// Signalling to the server we joined was lost: open a new session there with `options`
    /// (the events of the old one are over), then report [`Call::handle_reconnect`].
    Reconnect {
        options: JoinOptions,
    },
    /// Connect to the Janus room a Blende meeting moved to; its events come on [`Route::Janus`].
    ConnectJanus {
        url: ServerUrl,
        options: JoinOptions,
        room: JanusRoom,
    },
    /// Open the share's capture (the policy refuses or not: report with
    /// [`Call::handle_share`], `Started` first). With `peer`, the share has its own publisher
    /// PeerConnection: after `Started`, make it and report its offer for `peer`. Without, the
    /// share goes to mesh PeerConnections ([`Purpose::MeshShare`]) opened next.
    StartShare {
        source: ShareSource,
        display: String,
        peer: Option<PeerId>,
    },
    /// The share's own signalling session ([`Route::Share`]): the server we joined, or (with
    /// `access`) the Janus room a Blende meeting moved to.
    ConnectShare {
        url: ServerUrl,
        options: JoinOptions,
        access: Option<JanusAccess>,
    },
    /// A mesh share continues as its own publisher `peer` (the meeting moved to Janus): make
    /// it for the running capture and report its offer.
    MoveShare {
        peer: PeerId,
    },
    /// Stop the capture, close the share's PeerConnections and its session.
    StopShare,
    /// Switch a device (the gate of an `off` is closed already). Report nothing: the device
    /// driver's own events tell the real state.
    SetDevice {
        kind: DeviceKind,
        on: bool,
    },
    /// Every device off (the gates are closed already).
    AllDevicesOff,
    /// Report statistics now.
    ReportStats,
    /// One message on `peer`'s data channel.
    SendData {
        peer: PeerId,
        message: Vec<u8>,
    },
    /// Open the file at `path` for sending as `doc`, measure it and hash it; report
    /// [`TransferReport::Opened`].
    OpenDocument {
        doc: DocId,
        path: String,
    },
    /// Read `doc` from byte `from` to its end and send it as chunks of transfer `id` on
    /// `peer`'s data channel, waiting on the channel; then report
    /// [`TransferReport::Streamed`]. A stream of the same transfer still running stops first.
    StreamDocument {
        transfer: TransferId,
        doc: DocId,
        peer: PeerId,
        id: u32,
        from: u64,
        size: u64,
    },
    /// Stop reading and sending `transfer` (declined, cancelled, over).
    StopStream {
        transfer: TransferId,
    },
    /// Close the file `doc`: no transfer needs it any more.
    ForgetDocument {
        doc: DocId,
    },
    /// Make the temporary file for `transfer` in `folder` (`name` is already safe); report
    /// [`TransferReport::Prepared`].
    PrepareDocument {
        transfer: TransferId,
        folder: String,
        name: String,
        size: u64,
    },
    /// Write `data` at `offset` of `transfer`'s temporary file.
    WriteChunk {
        transfer: TransferId,
        offset: u64,
        data: bytes::Bytes,
    },
    /// Size and SHA-256 are right: flush the temporary file and give it its name (never over an
    /// existing file); report [`TransferReport::Saved`].
    SaveDocument {
        transfer: TransferId,
    },
    /// Remove `transfer`'s temporary file.
    DiscardDocument {
        transfer: TransferId,
    },
    /// The call is over: tear down (devices off first) and exit with `end`.
    End(End),
}

/// What a PeerConnection reported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// The offer or answer [`Action::OpenPeer`] asked for (complete, candidates included).
    LocalDescription(String),
    /// Making it, or applying an answer to it, failed.
    Failed(String),
    /// ICE/DTLS state; on `Connected` the selected candidate types (local, remote) where the
    /// stack knows them.
    State {
        state: ConnState,
        candidates: Option<(String, Option<String>)>,
    },
    TrackStarted(MediaKind),
    TrackEnded,
    /// The `blende-p2p/1` data channel opened.
    DataOpen,
    /// The certificates of this connection's DTLS handshake: ours, and the one the other end
    /// presented (SHA-256).
    Fingerprints {
        ours: [u8; 32],
        theirs: [u8; 32],
    },
    /// One message on the data channel.
    Data(bytes::Bytes),
    DataClosed,
}

/// What the driver did about a document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferReport {
    /// The file for `doc` is open: its name (the last part of its path), size and SHA-256.
    Opened { doc: DocId, name: String, size: u64, sha256: [u8; 32] },
    /// It could not be opened or read.
    OpenFailed { doc: DocId, reason: String },
    /// The temporary file for an accepted document exists.
    Prepared(TransferId),
    /// An outgoing document's stream has handed `bytes` (counted from the file's start) to the
    /// channel.
    Sent { transfer: TransferId, bytes: u64 },
    /// Every byte of an outgoing document went out.
    Streamed(TransferId),
    /// The received document has its final name.
    Saved { transfer: TransferId, path: String },
    /// Reading, writing or saving failed.
    Failed { transfer: TransferId, reason: String },
}

/// What the share's capture reported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareReport {
    /// The policy let it start; frames flow through the guard.
    Started,
    /// The policy refused the window or the screen (the reason names the category).
    Refused(String),
    /// Capture or WebRTC failed.
    Failed(String),
    /// A guard decision changed (titles never travel here).
    Guard(blende_guard::GuardEvent),
    /// The window closed: the share is over.
    Ended,
}

/// What the machine needs to know of the call it runs. The driver switches the devices it
/// names on when the call starts (that is no switch event: nobody flipped a switch).
#[derive(Clone, Debug)]
pub struct CallConfig {
    /// The server we joined (its kind decides the topology).
    pub url: ServerUrl,
    pub join: JoinOptions,
    /// We publish a camera / a microphone.
    pub camera: bool,
    pub mic: bool,
    /// ICE transport policy relay (reported with TURN servers).
    pub relay_only: bool,
    /// The policy's server rules: a Janus room a meeting moves to is checked against them.
    pub servers: ServerPolicy,
    /// What the administrator allows for documents (`[documents]`).
    pub documents: blende_p2p::Limits,
    /// Random bytes the driver draws once per call (from the OS CSPRNG): the tokens under
    /// which we offer documents to everyone come from them.
    pub secret: [u8; 32],
}

/// A subscription asked for but not offered is asked for again after this long (Janus answers
/// "No such feed" to a subscriber that comes before the publisher's PeerConnection is up).
pub const RESUBSCRIBE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
