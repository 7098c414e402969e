//! Wire protocol v1: one JSON object per WebSocket text message, internally tagged by `type`.
//!
//! Parsing is strict: an unknown `type`, an unknown field or a missing field is an error that
//! names the problem. The size limit ([`MAX_MESSAGE_BYTES`]) is enforced before parsing by
//! [`parse_client`] and, earlier still, by the transport.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; a client must send it in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest accepted client message (SDP of a few video tracks fits comfortably).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest meeting title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The display name a member's share publishes under on Janus (and names the share in a mesh).
#[must_use]
pub fn screen_display(display_name: &str) -> String {
    format!("{display_name} (screen)")
}

/// Which of a sender's mesh PeerConnections an offer, answer or candidate belongs to: its
/// camera and microphone, or its share (one more PeerConnection per direction, so a share
/// starts and stops without renegotiating the camera's), or the data-only connection for chat
/// and documents once the meeting's media runs on Janus. Absent on the wire means `media`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    #[default]
    Media,
    Screen,
    Data,
}

impl Stream {
    #[must_use]
    pub fn is_media(&self) -> bool {
        *self == Stream::Media
    }
}

/// A participant's id, unique for the lifetime of a server process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A string that must never reach a log line: passwords, tokens, PINs. `Debug` prints `***`
/// and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Messages from a client to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ClientMsg {
    /// First message on every connection.
    Hello {
        protocol: u32,
    },
    /// Authenticate as a moderator with the secret `blende-server admin add-moderator` printed.
    AuthModerator {
        token: Secret,
    },
    /// Ask to join a meeting; ends in the lobby (or admitted directly when the lobby is off).
    Join {
        meeting_id: String,
        password: Secret,
        display_name: String,
    },
    /// Come back after a lost connection: the token from our last admission (`lobby` with
    /// `admitted`). Within the server's grace period this seats us again with the role we
    /// had, past the lobby and a lock, and without the password; the old connection, if the
    /// server still holds it, is closed. Each token works once.
    Resume {
        token: Secret,
    },
    /// A moderator enters a meeting: no password, no lobby.
    EnterMeeting {
        meeting_id: String,
        display_name: String,
    },
    /// A moderator creates (and optionally schedules) a meeting.
    CreateMeeting {
        title: String,
        #[serde(default)]
        starts_at_unix: Option<i64>,
        #[serde(default)]
        duration_min: Option<u32>,
        #[serde(default)]
        lobby: Option<bool>,
    },
    ExportInvitation {
        meeting_id: String,
    },
    Admit {
        participant: ParticipantId,
    },
    Deny {
        participant: ParticipantId,
    },
    Remove {
        participant: ParticipantId,
    },
    GrantPresenter {
        participant: ParticipantId,
    },
    RevokePresenter {
        participant: ParticipantId,
    },
    /// A moderator lowers someone's raised hand (having taken their turn).
    LowerHand {
        participant: ParticipantId,
    },
    Lock {},
    Unlock {},
    End {},
    /// Chat off / on for the whole meeting (moderators).
    ChatOff {},
    ChatOn {},
    ShareStart {},
    ShareStop {},
    /// A presenter offers a document to everyone: the server learns only an opaque token (no
    /// name, size or hash), checks the role and tells the others, whose clients take the
    /// offer that came on the direct connection with the same token as confirmed.
    DocumentOffer {
        offer: String,
    },
    Offer {
        to: ParticipantId,
        sdp: String,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    Answer {
        to: ParticipantId,
        sdp: String,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    Candidate {
        to: ParticipantId,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_mline_index: Option<u16>,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    /// The sender's own devices; there is no field to name anyone else.
    DeviceState {
        camera: bool,
        microphone: bool,
    },
    /// The sender raises or lowers its own hand; like `device_state` it names no one else.
    RaiseHand {
        raised: bool,
    },
    Leave {},
    Ping {},
}

fn chat_default() -> bool {
    true
}

/// Every client message kind, in protocol order (the role-matrix tests walk this list).
pub const CLIENT_KINDS: &[&str] = &[
    "hello",
    "auth_moderator",
    "join",
    "resume",
    "enter_meeting",
    "create_meeting",
    "export_invitation",
    "admit",
    "deny",
    "remove",
    "grant_presenter",
    "revoke_presenter",
    "lower_hand",
    "lock",
    "unlock",
    "end",
    "chat_off",
    "chat_on",
    "share_start",
    "share_stop",
    "document_offer",
    "offer",
    "answer",
    "candidate",
    "device_state",
    "raise_hand",
    "leave",
    "ping",
];

impl ClientMsg {
    /// The `type` tag, for error replies and audit; never contains message content.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMsg::Hello { .. } => "hello",
            ClientMsg::AuthModerator { .. } => "auth_moderator",
            ClientMsg::Join { .. } => "join",
            ClientMsg::Resume { .. } => "resume",
            ClientMsg::EnterMeeting { .. } => "enter_meeting",
            ClientMsg::CreateMeeting { .. } => "create_meeting",
            ClientMsg::ExportInvitation { .. } => "export_invitation",
            ClientMsg::Admit { .. } => "admit",
            ClientMsg::Deny { .. } => "deny",
            ClientMsg::Remove { .. } => "remove",
            ClientMsg::GrantPresenter { .. } => "grant_presenter",
            ClientMsg::RevokePresenter { .. } => "revoke_presenter",
            ClientMsg::LowerHand { .. } => "lower_hand",
            ClientMsg::Lock {} => "lock",
            ClientMsg::Unlock {} => "unlock",
            ClientMsg::End {} => "end",
            ClientMsg::ChatOff {} => "chat_off",
            ClientMsg::ChatOn {} => "chat_on",
            ClientMsg::ShareStart {} => "share_start",
            ClientMsg::ShareStop {} => "share_stop",
            ClientMsg::DocumentOffer { .. } => "document_offer",
            ClientMsg::Offer { .. } => "offer",
            ClientMsg::Answer { .. } => "answer",
            ClientMsg::Candidate { .. } => "candidate",
            ClientMsg::DeviceState { .. } => "device_state",
            ClientMsg::RaiseHand { .. } => "raise_hand",
            ClientMsg::Leave {} => "leave",
            ClientMsg::Ping {} => "ping",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LobbyState {
    Waiting,
    Admitted,
    Denied,
}

/// A member's role in a meeting. The administrator has no wire role: it acts through the
/// server's configuration and `blende-server admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Presenter,
    Participant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub display_name: String,
    pub role: Role,
    /// Moderators can hold the presenter role too; `role` then stays `moderator`.
    pub presenter: bool,
    pub camera: bool,
    pub microphone: bool,
    pub sharing: bool,
    /// A raised hand (absent from servers before it: lowered).
    #[serde(default)]
    pub hand: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingInfo {
    pub id: ParticipantId,
    pub display_name: String,
    /// Joined from the network of someone a moderator removed or denied in this meeting.
    #[serde(default)]
    pub returning: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingInfo {
    /// Grouped form, e.g. `k7dm-3xqa-9fhp`.
    pub id: String,
    pub title: String,
    pub starts_at_unix: Option<i64>,
    pub duration_min: u32,
    pub lobby: bool,
}

/// An invitation. `text` and `ics` never contain the password; `password_text` is the
/// separate note for a second channel and is only present in `meeting_created`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub link: String,
    pub text: String,
    pub ics: String,
    pub password_text: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: Secret,
    pub ttl_s: u64,
}

/// Stable error codes: clients switch on these, the `message` is for humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Unparseable JSON, unknown type or field, or a field outside its limits.
    BadMessage,
    /// Message larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// `hello` with another protocol version.
    UnsupportedVersion,
    /// The message is not valid in the connection's current state (e.g. before `hello`).
    BadState,
    /// The sender's role may not do this.
    NotAllowed,
    /// Wrong password, unknown meeting or bad moderator token: deliberately one answer.
    JoinRefused,
    /// Too many failed attempts from this address or for this meeting; try later.
    RateLimited,
    MeetingLocked,
    MeetingFull,
    MeetingEnded,
    /// A moderator named a meeting that does not exist.
    UnknownMeeting,
    /// The named participant is not in the sender's meeting (or not in the needed state).
    UnknownParticipant,
    Internal,
}

/// Messages from the server to a client. Unlike client messages these parse leniently
/// (unknown fields are ignored), so version 1 can grow optional fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMsg {
    Welcome {
        protocol: u32,
        max_message_bytes: usize,
    },
    Authenticated {
        moderator_id: String,
    },
    Lobby {
        state: LobbyState,
        meeting_id: String,
        participant_id: ParticipantId,
        /// With `admitted`: the single-use token a `resume` names after a lost connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Secret>,
    },
    /// Sent to every admitted member whenever the roster changes; `waiting` is only filled
    /// for moderators.
    Participants {
        meeting_id: String,
        locked: bool,
        /// Whether the meeting's chat is on (a moderator switches it); missing: on.
        #[serde(default = "chat_default")]
        chat: bool,
        participants: Vec<ParticipantInfo>,
        waiting: Vec<WaitingInfo>,
    },
    MeetingCreated {
        meeting: MeetingInfo,
        password: Secret,
        invitation: Invitation,
    },
    Invitation {
        meeting: MeetingInfo,
        invitation: Invitation,
    },
    /// A request that has no other reply succeeded.
    Done {
        request: String,
    },
    Removed {},
    Ended {},
    Share {
        from: ParticipantId,
        active: bool,
    },
    DocumentOffered {
        from: ParticipantId,
        offer: String,
    },
    Offer {
        from: ParticipantId,
        sdp: String,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    Answer {
        from: ParticipantId,
        sdp: String,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    Candidate {
        from: ParticipantId,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
        #[serde(default, skip_serializing_if = "Stream::is_media")]
        stream: Stream,
    },
    IceServers {
        servers: Vec<IceServer>,
    },
    /// For Janus-backed rooms: what the client's Janus adapter needs to join. The client
    /// publishes its camera and microphone with feed id `feed` and display name exactly its
    /// name here, its share with `screen_feed` and [`screen_display`]: both ids are random
    /// and known only to the member until published, and the server kicks every Janus
    /// publisher that is not an admitted member's feed under that member's name.
    Janus {
        url: String,
        room: u64,
        pin: Secret,
        token: Secret,
        feed: u64,
        screen_feed: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        request: Option<String>,
        /// For `rate_limited`: when to try again.
        retry_after_ms: Option<u64>,
    },
    Pong {},
}

impl ServerMsg {
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerMsg::Error { code, message: message.into(), request: request.map(str::to_owned), retry_after_ms: None }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail; fall back to a fixed error just in case.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"serialisation failed","request":null,"retry_after_ms":null}"#.to_owned()
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    #[error("{0}")]
    Json(String),
}

impl ParseError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::TooLarge(_) => ErrorCode::TooLarge,
            ParseError::Json(_) => ErrorCode::BadMessage,
        }
    }
}

/// Parses a client message, size first.
pub fn parse_client(text: &str) -> Result<ClientMsg, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
}

/// Parses a server message (for clients and tests).
pub fn parse_server(text: &str) -> Result<ServerMsg, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_snake_case_and_round_trip() {
        let m = ClientMsg::Join { meeting_id: "k7dm-3xqa-9fhp".into(), password: Secret::new("pw"), display_name: "Ada".into() };
        let s = serde_json::to_string(&m).expect("ser");
        assert!(s.starts_with(r#"{"type":"join""#), "{s}");
        assert_eq!(parse_client(&s).expect("parse"), m);
        assert_eq!(parse_client(r#"{"type":"lock"}"#).expect("lock"), ClientMsg::Lock {});
        assert_eq!(parse_client(r#"{"type":"ping"}"#).expect("ping"), ClientMsg::Ping {});
    }

    #[test]
    fn unknown_type_field_and_missing_field_are_errors() {
        let e = parse_client(r#"{"type":"chat","text":"hi"}"#).expect_err("unknown type");
        assert!(e.to_string().contains("unknown variant"), "{e}");
        let e = parse_client(r#"{"type":"lock","force":true}"#).expect_err("unknown field on empty variant");
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = parse_client(r#"{"type":"device_state","camera":true,"microphone":false,"participant":3}"#).expect_err("no target field");
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = parse_client(r#"{"type":"join","meeting_id":"x","display_name":"a"}"#).expect_err("missing");
        assert!(e.to_string().contains("missing field"), "{e}");
        assert!(parse_client("not json").is_err());
        assert!(parse_client(r#"{"protocol":1}"#).is_err());
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let big = format!(r#"{{"type":"offer","to":1,"sdp":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(parse_client(&big), Err(ParseError::TooLarge(_))));
    }

    #[test]
    fn secrets_hide_in_debug() {
        let m = ClientMsg::AuthModerator { token: Secret::new("hunter2") };
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn every_kind_is_listed() {
        assert_eq!(CLIENT_KINDS.len(), 28);
        assert_eq!(ClientMsg::Ping {}.kind(), "ping");
        // Someone else's hand is never in `raise_hand`.
        let e = parse_client(r#"{"type":"raise_hand","raised":true,"participant":3}"#).expect_err("no target field");
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert_eq!(parse_client(r#"{"type":"lower_hand","participant":3}"#).map(|m| m.kind()).ok(), Some("lower_hand"));
    }
}
