//! Signalling for Blende: how offers, answers and room events travel between us and a server.
//!
//! One interface for every server kind: [`connect`] returns a [`SignalHandle`]; the call engine
//! sends [`SignalCommand`]s and receives [`SignalEvent`]s on bounded channels (the actor shape
//! from STYLE.md). Behind it, one adapter per [`ServerKind`]:
//!
//! - **Janus VideoRoom** ([`janus`]): the protocol is a sans-IO state machine
//!   ([`janus::JanusMachine`]: messages in, messages and events out, its own transaction ids, the
//!   caller's clock); [`janus_ws`] connects (subprotocol `janus-protocol`) and one WebSocket driver loop
//!   (`ws_driver`) runs this machine and the Blende room one.
//! - **WHIP** ([`whip`], RFC 9725): publish only; POST the offer, DELETE the resource to leave.
//! - **Blende's room server** ([`blende`]): lobby, roles, and a peer-to-peer mesh whose
//!   signalling the server relays.
//! - **WHEP** ([`whep`]): receive only; the client offers, the endpoint is one feed.
//!   Both over [`http`] (TLS through the system's trust store for `https`).
//!
//! **Architecture invariant:** plain-text signalling (`ws://`, `http://`) is only ever used for
//! loopback addresses — [`ServerUrl::parse`] refuses anything else, and [`connect`] checks again.
//! This crate knows nothing about WebRTC itself: SDP is an opaque string here.

pub mod blende;
pub mod http;
pub mod janus;
#[cfg(feature = "io")]
pub mod janus_ws;
#[cfg(feature = "io")]
pub mod whep;
#[cfg(feature = "io")]
pub mod whip;
#[cfg(feature = "io")]
mod ws_driver;

#[cfg(feature = "io")]
use blende_policy::{ServerKind, ServerUrl};
pub use blende_room::protocol::{LobbyState, Role};
#[cfg(feature = "io")]
use tokio::sync::mpsc;

/// Bounded queues between the driver task and the engine.
#[cfg(feature = "io")]
pub(crate) const COMMAND_QUEUE: usize = 32;
#[cfg(feature = "io")]
pub(crate) const EVENT_QUEUE: usize = 64;

/// The one feed a WHEP endpoint is.
pub const WHEP_FEED: &str = "whep";

/// Who we are and where we go.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JoinOptions {
    /// Room id (Janus: numeric unless the server uses string ids).
    pub room: Option<String>,
    /// Room PIN (Janus) or bearer token (WHIP). Never logged.
    pub password: Option<String>,
    pub display_name: String,
    /// Blende room server: enter as a moderator with this token (no password, no lobby).
    /// Never logged.
    pub moderator_token: Option<String>,
    /// A reconnect: what the session this one replaces gave as [`SignalEvent::Session`]
    /// (Janus: its session id, destroyed first so that our old publisher leaves at once).
    /// Never logged.
    pub resume: Option<String>,
}

impl std::fmt::Debug for JoinOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinOptions")
            .field("room", &self.room)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("display_name", &self.display_name)
            .field("moderator_token", &self.moderator_token.as_ref().map(|_| "<redacted>"))
            .field("resume", &self.resume.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Another participant who publishes media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    pub display: Option<String>,
}

/// A TURN server with short-lived credentials, as a Blende room server hands them out
/// (coturn's shared-secret scheme: the username carries the expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `turn:host:port?transport=udp`, `turns:…`.
    pub urls: Vec<String>,
    pub username: String,
    /// Never logged: `Debug` prints `***`.
    pub credential: String,
    /// How long the credentials are valid from when they were handed out.
    pub ttl_s: u64,
}

impl std::fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"***")
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

/// A Blende meeting that moved to a Janus VideoRoom: what the Janus adapter needs to continue
/// the call there ([`janus_ws::connect_with_access`]).
#[derive(Clone, PartialEq, Eq)]
pub struct JanusRoom {
    /// `janus+wss://…` (or `janus+ws://` on loopback), as the room server's administrator set it.
    pub url: String,
    pub room: u64,
    /// Never logged.
    pub pin: String,
    /// Ours alone (the room's `allowed` list). Never logged.
    pub token: String,
    /// Publish camera and microphone with this feed id (random, known to the room server).
    pub feed: u64,
    /// Publish our share with this feed id.
    pub screen_feed: u64,
}

impl std::fmt::Debug for JanusRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JanusRoom")
            .field("url", &self.url)
            .field("room", &self.room)
            .field("pin", &"***")
            .field("token", &"***")
            .field("feed", &self.feed)
            .field("screen_feed", &self.screen_feed)
            .finish()
    }
}

/// What the engine asks the signalling adapter to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalCommand {
    /// Publish our media with this offer (complete, candidates included).
    Publish { sdp: String },
    /// Receive a participant's media; the server answers with [`SignalEvent::SubscriptionOffer`].
    Subscribe { feed: String },
    /// Our offer for a subscription where the client offers (WHEP), after
    /// [`SignalEvent::SubscriptionNeedsOffer`].
    OfferSubscription { feed: String, sdp: String },
    /// Mesh: our media for one participant, this offer (after [`SignalEvent::PublishTo`]).
    PublishTo { peer: String, sdp: String },
    /// A room server request (moderator actions); refused by servers without rooms.
    Room(blende::RoomAction),
    /// Our answer to a subscription offer.
    AnswerSubscription { feed: String, sdp: String },
    /// Stop receiving a participant.
    Unsubscribe { feed: String },
    /// Stop publishing but stay in the room.
    Unpublish,
    /// Leave the room and close the session.
    Leave,
}

/// What the adapter reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalEvent {
    /// We are in the room (publishers already present are listed).
    Joined {
        participant_id: String,
        participants: Vec<Participant>,
    },
    /// The server's answer to our publish offer.
    PublishAnswer {
        sdp: String,
    },
    /// The server says our published PeerConnection is up.
    PublishUp,
    ParticipantJoined(Participant),
    /// A participant stopped publishing or left.
    ParticipantLeft {
        id: String,
    },
    /// The server offers us a participant's media.
    SubscriptionOffer {
        feed: String,
        sdp: String,
    },
    /// Mesh: offer our media to this participant on a PeerConnection of its own.
    PublishTo {
        peer: String,
    },
    /// Mesh: a participant's answer to our [`SignalCommand::PublishTo`] offer.
    PeerAnswer {
        peer: String,
        sdp: String,
    },
    /// Blende room: we wait in the lobby or were let in (a denial ends the session as an error).
    Lobby {
        state: LobbyState,
        /// Ours, as the room server numbers us.
        participant_id: String,
    },
    /// Blende room: TURN servers to use for every PeerConnection from now on (they replace
    /// any earlier ones). Sent on admission when the administrator configured TURN.
    IceServers(Vec<TurnCredentials>),
    /// Blende room: the meeting moved to Janus. Media goes there from now on (publish once,
    /// subscribe to the others' feeds); this adapter stops mesh signalling and membership
    /// events (Janus reports publishers), but still reports roles, removal and the end.
    MovedToJanus(JanusRoom),
    /// Blende room, for moderators: who waits in the lobby now (empty: nobody).
    Waiting {
        participants: Vec<Participant>,
    },
    /// Blende room: a participant's role (a moderator holding the presenter role is reported
    /// as presenter).
    Role {
        participant: String,
        role: Role,
    },
    /// Blende room: a participant's hand, raised or lowered (ours too: a moderator may lower
    /// it). A participant reported for the first time with the hand down gets none.
    Hand {
        participant: String,
        raised: bool,
    },
    /// Blende room: what a participant's own devices and share are doing, as they report it.
    Devices {
        participant: String,
        camera: bool,
        microphone: bool,
        sharing: bool,
    },
    /// Blende room whose media moved to Janus: a member to keep a direct data connection with
    /// (chat, documents; relayed as `PublishTo`/`SubscriptionOffer` on route `ID/data`), or one
    /// who left.
    DirectPeer {
        participant: String,
        present: bool,
    },
    /// Blende room: a moderator switched the meeting's chat off or on.
    Chat {
        enabled: bool,
    },
    /// Blende room: the server confirmed that `participant` (a presenter) offers a document to
    /// everyone; `offer` is the token its direct offers carry.
    DocumentOffered {
        participant: String,
        offer: String,
    },
    /// Blende room: the server accepted a share (`active`) or ended one, ours included.
    Share {
        participant: String,
        active: bool,
    },
    /// Blende room: a request of ours inside the meeting was refused (`request` names it, as
    /// the protocol does: `share_start`, `admit`, …); `not_allowed` when our role may not.
    /// The call goes on.
    Refused {
        request: String,
        not_allowed: bool,
        message: String,
    },
    /// This server wants the client's offer for a subscription (WHEP): answer with
    /// [`SignalCommand::OfferSubscription`].
    SubscriptionNeedsOffer {
        feed: String,
    },
    /// The server's answer to [`SignalCommand::OfferSubscription`].
    SubscriptionAnswer {
        feed: String,
        sdp: String,
    },
    /// The server says a subscription PeerConnection is up.
    SubscriptionUp {
        feed: String,
    },
    /// A trickled server candidate (`feed` = `None`: for our publisher connection).
    RemoteCandidate {
        feed: Option<String>,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    },
    /// We were removed from the room.
    Kicked,
    RoomDestroyed,
    /// An error from the server, with its text; `fatal` when the session cannot go on.
    Error {
        message: String,
        fatal: bool,
    },
    /// The session exists on the server: a reconnect names `resume` in
    /// [`JoinOptions::resume`] to replace it.
    Session {
        resume: String,
    },
    /// The signalling connection is gone.
    Closed {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    #[error("{0}: plain-text signalling is only allowed to loopback addresses")]
    PlainTextRemote(String),
    #[error("{0}: this server kind is not supported yet")]
    Unsupported(String),
    #[error("could not connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("malformed message from the server: {0}")]
    Protocol(String),
    #[error("{0}")]
    Server(String),
    #[error("the signalling connection is closed")]
    Closed,
}

/// The engine's end of a signalling connection.
#[cfg(feature = "io")]
#[derive(Debug)]
pub struct SignalHandle {
    pub commands: mpsc::Sender<SignalCommand>,
    pub events: mpsc::Receiver<SignalEvent>,
}

/// Connects to `url` with the adapter its scheme names and joins as described.
///
/// # Errors
/// [`SignalError::PlainTextRemote`] for `ws://`/`http://` to a non-loopback host,
/// connection errors.
#[cfg(feature = "io")]
pub async fn connect(url: &ServerUrl, options: JoinOptions) -> Result<SignalHandle, SignalError> {
    if !url.tls && !url.is_loopback() {
        return Err(SignalError::PlainTextRemote(url.to_string()));
    }
    match url.kind {
        ServerKind::Janus => janus_ws::connect(url, options).await,
        ServerKind::Whip => whip::connect(url, options),
        ServerKind::Whep => whep::connect(url, options),
        ServerKind::Blende => blende::connect(url, options).await,
    }
}
