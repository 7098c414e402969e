//! The room/roles state machine.
//!
//! Inputs: [`Room::handle_connect`], [`Room::handle_text`] / [`Room::handle_message`],
//! [`Room::handle_disconnect`], [`Room::handle_verified`], [`Room::handle_meeting_stored`],
//! [`Room::handle_meeting_loaded`], [`Room::handle_timeout`]; each takes the caller's `now`.
//! Outputs: [`Room::poll_output`] until `None`, then [`Room::poll_timeout`].
//!
//! Every client message first passes [`permission`], the single place that says which state
//! may send what. A refused message produces one error reply and changes no state (not even
//! an id counter); the role-matrix tests check exactly that.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use blende_meeting::{EntropySource, MeetingId, Password};

mod resume;

use crate::invite;
use crate::limiter::{LimitKey, Limiter, LimiterConfig};
use crate::protocol::{
    ClientMsg, ErrorCode, Invitation, LobbyState, MAX_DISPLAY_NAME_CHARS, MAX_TITLE_CHARS, MeetingInfo, PROTOCOL_VERSION, ParticipantId,
    ParticipantInfo, Role, Secret, ServerMsg, WaitingInfo, parse_client,
};

/// A connection, numbered by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Names one pending verification (password or moderator token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

#[derive(Clone, Debug)]
pub struct RoomConfig {
    /// Members (waiting and admitted) per meeting; moderators always get in.
    pub max_participants: usize,
    /// Lobby for meetings created without an explicit choice.
    pub lobby_default: bool,
    /// Base of invitation links, e.g. `blende+wss://meet.example.org`.
    pub public_url: String,
    pub limiter: LimiterConfig,
    /// A connection that has not authenticated (a join let in or waiting in the lobby, or a
    /// moderator token) this long after it opened, or after it left its meeting, is closed:
    /// anonymous sockets cannot pile up.
    pub auth_deadline: Duration,
    /// Members (waiting or admitted, moderators aside) one address key may hold in a meeting
    /// before further joins from it wait in the lobby; as many again may wait, then it is
    /// refused: one password holder cannot fill a meeting.
    pub seats_per_address: usize,
    /// How long an admitted member whose connection dropped may `resume` their seat (role and
    /// admission kept, no second lobby wait).
    pub resume_grace: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_participants: 100,
            lobby_default: true,
            public_url: "blende+wss://localhost".into(),
            limiter: LimiterConfig::default(),
            auth_deadline: Duration::from_secs(30),
            seats_per_address: 8,
            resume_grace: Duration::from_secs(120),
        }
    }
}

/// A meeting as persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeetingRecord {
    pub info: MeetingInfo,
    pub created_by: String,
    /// Opaque to this crate (the driver's argon2id PHC string).
    pub password_hash: String,
    pub ended: bool,
    /// The moderators' switches as last stored.
    pub locked: bool,
    pub chat: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// `password_hash` is `None` for an unknown meeting: the driver must still spend the same
    /// work (verify against a dummy hash) and answer `Refused`.
    MeetingPassword {
        password_hash: Option<String>,
        password: Secret,
    },
    ModeratorToken {
        token: Secret,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    PasswordOk,
    Moderator { moderator_id: String },
    Refused,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub moderator_id: String,
    pub action: &'static str,
    pub meeting_id: Option<String>,
    pub target: Option<ParticipantId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCmd {
    /// Hash the password, store the meeting, then call [`Room::handle_meeting_stored`] before
    /// feeding any other input.
    CreateMeeting {
        info: MeetingInfo,
        created_by: String,
        password: Secret,
    },
    EndMeeting {
        meeting_id: String,
    },
    /// A meeting's lock or chat switch changed.
    MeetingSwitches {
        meeting_id: String,
        locked: bool,
        chat: bool,
    },
    /// Insert or replace the seat a resume token names (its hash), so that it outlives a
    /// restart of the server: `away_until` is `None` while the member is connected.
    KeepSeat {
        seat: SeatRecord,
        away_until: Option<Instant>,
    },
    /// The seat is gone for good (left, removed, resumed under a new token, expired).
    DropSeat {
        token_hash: String,
    },
    Audit(AuditEntry),
}

/// An admitted member, as [`Room::janus_members`] reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JanusMember {
    pub conn: ConnId,
    pub participant: ParticipantId,
    pub display_name: String,
    /// The permission table allows them `share_start`.
    pub may_share: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomEvent {
    /// Hand out TURN credentials / Janus access to this member.
    Admitted {
        conn: ConnId,
        meeting_id: String,
        participant: ParticipantId,
    },
    Left {
        conn: ConnId,
        meeting_id: String,
        participant: ParticipantId,
    },
    /// A non-presenter tried to share: on a Janus-backed room, check their feeds there at once.
    ShareRefused {
        meeting_id: String,
        participant: ParticipantId,
    },
    /// Who may share changed (the presenter role was granted or revoked).
    RolesChanged {
        meeting_id: String,
    },
    MeetingEnded {
        meeting_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        conn: ConnId,
        msg: ServerMsg,
    },
    /// Close after the messages queued before it.
    Close {
        conn: ConnId,
    },
    Verify {
        ticket: Ticket,
        verify: Verify,
    },
    Store(StoreCmd),
    Event(RoomEvent),
}

/// What a connection currently is; the columns of the role matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnRole {
    /// Connected, no `hello` yet.
    Connected,
    /// Said hello; neither authenticated nor in a meeting.
    Anonymous,
    /// Authenticated moderator, not in a meeting.
    ModeratorIdle,
    /// In a lobby.
    Waiting,
    Participant,
    Presenter,
    /// Moderator inside a meeting.
    Moderator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seat {
    meeting: String,
    pid: ParticipantId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Conn {
    addr: IpAddr,
    hello: bool,
    moderator: Option<String>,
    verifying: Option<Ticket>,
    seat: Option<Seat>,
    /// When it is closed unless authenticated by then.
    deadline: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Member {
    conn: ConnId,
    display_name: String,
    admitted: bool,
    moderator: bool,
    presenter: bool,
    camera: bool,
    microphone: bool,
    sharing: bool,
    hand: bool,
    /// SHA-256 (hex) of the token this seat was last given, for a `resume` after a lost
    /// connection; the token itself is never kept.
    resume: Option<String>,
}

/// What a kept seat restores, as the driver stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatRecord {
    /// SHA-256 of the token, lower-case hex.
    pub token_hash: String,
    /// The meeting, compact id.
    pub meeting: String,
    pub display_name: String,
    /// The moderator id, for a moderator.
    pub moderator: Option<String>,
    pub presenter: bool,
    /// `false`: the seat is in the lobby, and a resume puts it back there.
    pub admitted: bool,
}

/// A seat whose connection dropped, kept until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Away {
    seat: SeatRecord,
    until: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Meeting {
    info: MeetingInfo,
    created_by: String,
    password_hash: String,
    ended: bool,
    locked: bool,
    /// The meeting's chat is on (moderators switch it; every client obeys at both ends).
    chat: bool,
    members: BTreeMap<ParticipantId, Member>,
    /// Address keys of people a moderator removed or denied: their joins wait in the lobby
    /// (marked `returning`) until a moderator admits one again.
    sent_away: BTreeSet<LimitKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PendingKind {
    Join { meeting: Option<String>, display_name: String },
    Moderator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    conn: ConnId,
    keys: Vec<LimitKey>,
    kind: PendingKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingCreate {
    conn: ConnId,
    info: MeetingInfo,
    created_by: String,
    password: Secret,
}

/// The room server's whole state. One per server process, owned by one driver task.
pub struct Room {
    config: RoomConfig,
    entropy: Box<dyn EntropySource + Send>,
    conns: BTreeMap<ConnId, Conn>,
    meetings: BTreeMap<String, Meeting>,
    pending: BTreeMap<Ticket, Pending>,
    pending_creates: BTreeMap<String, PendingCreate>,
    limiter: Limiter,
    next_pid: u64,
    next_ticket: u64,
    next_prune: Option<Instant>,
    /// Unauthenticated connections by the instant they are closed.
    deadlines: BTreeSet<(Instant, ConnId)>,
    /// Seats kept for a `resume`, by token hash, and their ends.
    away: BTreeMap<String, Away>,
    away_expiry: BTreeSet<(Instant, String)>,
    /// The caller's clock as of the last input.
    now: Option<Instant>,
    out: VecDeque<Output>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room").field("conns", &self.conns.len()).field("meetings", &self.meetings.len()).finish_non_exhaustive()
    }
}

const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Which connection states may send which message. `Err` is the refusal's code.
pub fn permission(msg: &ClientMsg, role: ConnRole, verifying: bool) -> Result<(), ErrorCode> {
    use ConnRole::*;
    if let ClientMsg::Hello { .. } = msg {
        return if role == Connected { Ok(()) } else { Err(ErrorCode::BadState) };
    }
    if role == Connected {
        return Err(ErrorCode::BadState);
    }
    let ok = match msg {
        ClientMsg::Hello { .. } | ClientMsg::Ping {} => true,
        ClientMsg::AuthModerator { .. } | ClientMsg::Join { .. } | ClientMsg::Resume { .. } => {
            if verifying && role == Anonymous {
                return Err(ErrorCode::BadState);
            }
            role == Anonymous
        }
        ClientMsg::EnterMeeting { .. } => role == ModeratorIdle,
        ClientMsg::CreateMeeting { .. } | ClientMsg::ExportInvitation { .. } => matches!(role, ModeratorIdle | Moderator),
        ClientMsg::Admit { .. }
        | ClientMsg::Deny { .. }
        | ClientMsg::Remove { .. }
        | ClientMsg::GrantPresenter { .. }
        | ClientMsg::RevokePresenter { .. }
        | ClientMsg::LowerHand { .. }
        | ClientMsg::Lock {}
        | ClientMsg::Unlock {}
        | ClientMsg::ChatOff {}
        | ClientMsg::ChatOn {}
        | ClientMsg::End {} => role == Moderator,
        ClientMsg::ShareStart {} | ClientMsg::ShareStop {} | ClientMsg::DocumentOffer { .. } => role == Presenter,
        ClientMsg::Offer { .. }
        | ClientMsg::Answer { .. }
        | ClientMsg::Candidate { .. }
        | ClientMsg::DeviceState { .. }
        | ClientMsg::RaiseHand { .. } => {
            matches!(role, Participant | Presenter | Moderator)
        }
        ClientMsg::Leave {} => matches!(role, Waiting | Participant | Presenter | Moderator),
    };
    if ok { Ok(()) } else { Err(ErrorCode::NotAllowed) }
}

/// A name or title others will read: 1..=`max_chars` characters, not blank, and no control or
/// invisible format characters (bidi overrides and isolates, zero-width characters, the BOM,
/// tag characters), with which one name could pose as another or turn a roster line around.
fn valid_label(s: &str, max_chars: usize) -> bool {
    let n = s.chars().count();
    n > 0 && n <= max_chars && !s.trim().is_empty() && !s.chars().any(|c| c.is_control() || is_format(c))
}

/// Unicode's invisible format characters (general category Cf) that text can carry.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// The password in its read-aloud form for the moderator.
fn grouped_password(compact: &str) -> String {
    Password::parse(compact).map(|p| p.reveal()).unwrap_or_else(|_| compact.to_owned())
}

impl Room {
    pub fn new(config: RoomConfig, entropy: Box<dyn EntropySource + Send>) -> Self {
        Room {
            limiter: Limiter::new(config.limiter),
            config,
            entropy,
            conns: BTreeMap::new(),
            meetings: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_creates: BTreeMap::new(),
            next_pid: 1,
            next_ticket: 1,
            next_prune: None,
            deadlines: BTreeSet::new(),
            away: BTreeMap::new(),
            away_expiry: BTreeSet::new(),
            now: None,
            out: VecDeque::new(),
        }
    }

    // ---- getters ----

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    pub fn role(&self, conn: ConnId) -> Option<ConnRole> {
        let c = self.conns.get(&conn)?;
        Some(self.role_of(c))
    }

    fn role_of(&self, c: &Conn) -> ConnRole {
        if !c.hello {
            return ConnRole::Connected;
        }
        match &c.seat {
            None if c.moderator.is_some() => ConnRole::ModeratorIdle,
            None => ConnRole::Anonymous,
            Some(seat) => match self.meetings.get(&seat.meeting).and_then(|m| m.members.get(&seat.pid)) {
                None => ConnRole::Anonymous,
                Some(m) if !m.admitted => ConnRole::Waiting,
                Some(m) if m.moderator => ConnRole::Moderator,
                Some(m) if m.presenter => ConnRole::Presenter,
                Some(_) => ConnRole::Participant,
            },
        }
    }

    /// The participant id of a connection that has a seat.
    pub fn participant(&self, conn: ConnId) -> Option<ParticipantId> {
        self.conns.get(&conn)?.seat.as_ref().map(|s| s.pid)
    }

    pub fn meeting_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn)?.seat.as_ref().map(|s| s.meeting.as_str())
    }

    /// Admitted members of a meeting (for the Janus threshold).
    pub fn admitted_count(&self, meeting_id: &str) -> usize {
        self.meetings.get(meeting_id).map_or(0, |m| m.members.values().filter(|m| m.admitted).count())
    }

    /// Admitted members of a meeting as a Janus room must see them: a publisher there is
    /// legitimate only under a member's name, and a share only from a member who may share.
    pub fn janus_members(&self, meeting_id: &str) -> Vec<JanusMember> {
        let Some(m) = self.meetings.get(meeting_id) else { return Vec::new() };
        m.members
            .iter()
            .filter(|(_, mem)| mem.admitted)
            .map(|(id, mem)| {
                let role = if mem.moderator {
                    ConnRole::Moderator
                } else if mem.presenter {
                    ConnRole::Presenter
                } else {
                    ConnRole::Participant
                };
                JanusMember {
                    conn: mem.conn,
                    participant: *id,
                    display_name: mem.display_name.clone(),
                    may_share: permission(&ClientMsg::ShareStart {}, role, false).is_ok(),
                }
            })
            .collect()
    }

    /// A deterministic description of all state except queued output: equal digests before and
    /// after a refused message prove it changed nothing.
    pub fn digest(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
            self.conns,
            self.meetings,
            self.pending,
            self.pending_creates,
            self.away,
            self.limiter.digest(),
            self.next_pid,
            self.next_ticket
        )
    }

    // ---- inputs ----

    pub fn handle_meeting_loaded(&mut self, record: MeetingRecord) {
        let Ok(id) = MeetingId::parse(&record.info.id) else { return };
        self.meetings.insert(
            id.as_compact().to_owned(),
            Meeting {
                info: MeetingInfo { id: id.to_string(), ..record.info },
                created_by: record.created_by,
                password_hash: record.password_hash,
                ended: record.ended,
                locked: record.locked,
                chat: record.chat,
                members: BTreeMap::new(),
                sent_away: BTreeSet::new(),
            },
        );
    }

    pub fn handle_connect(&mut self, conn: ConnId, addr: IpAddr, now: Instant) {
        self.now = Some(now);
        self.conns.insert(conn, Conn { addr, hello: false, moderator: None, verifying: None, seat: None, deadline: None });
        self.arm_deadline(conn);
    }

    pub fn handle_disconnect(&mut self, conn: ConnId, now: Instant) {
        self.now = Some(now);
        if let Some(d) = self.conns.get(&conn).and_then(|c| c.deadline) {
            self.deadlines.remove(&(d, conn));
        }
        if let Some(seat) = self.seat(conn) {
            self.keep_for_resume(&seat, now);
        }
        if let Some(c) = self.conns.remove(&conn)
            && let Some(seat) = c.seat
        {
            self.unseat(conn, &seat);
        }
    }

    /// The administrator removed moderators: every connection authenticated as one that
    /// `still_valid` no longer knows is told and closed, leaving its meeting as on disconnect.
    pub fn revoke_moderators(&mut self, still_valid: impl Fn(&str) -> bool, now: Instant) {
        let revoked: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| c.moderator.as_deref().is_some_and(|id| !still_valid(id))).map(|(id, _)| *id).collect();
        for conn in revoked {
            self.send(conn, ServerMsg::error(ErrorCode::NotAllowed, "your moderator access was revoked", None));
            self.out.push_back(Output::Close { conn });
            self.handle_disconnect(conn, now);
        }
        // Nor does a revoked moderator come back through a kept seat.
        self.forget_seats(|a| a.seat.moderator.as_deref().is_some_and(|id| !still_valid(id)));
    }

    /// A text frame from a client. The transport has already applied its size limit;
    /// [`parse_client`] applies it again.
    pub fn handle_text(&mut self, conn: ConnId, text: &str, now: Instant) {
        match parse_client(text) {
            Ok(msg) => self.handle_message(conn, msg, now),
            Err(e) => self.send(conn, ServerMsg::error(e.code(), e.to_string(), None)),
        }
    }

    pub fn handle_message(&mut self, conn: ConnId, msg: ClientMsg, now: Instant) {
        self.now = Some(now);
        let Some(c) = self.conns.get(&conn) else { return };
        let role = self.role_of(c);
        let kind = msg.kind();
        if let Err(code) = permission(&msg, role, c.verifying.is_some()) {
            let text = match code {
                ErrorCode::BadState if role == ConnRole::Connected => "send hello first",
                ErrorCode::BadState => "not possible in this state",
                _ => "your role may not do this",
            };
            self.send(conn, ServerMsg::error(code, text, Some(kind)));
            if let (ClientMsg::ShareStart {}, Some(seat)) = (&msg, self.conns.get(&conn).and_then(|c| c.seat.clone())) {
                self.out.push_back(Output::Event(RoomEvent::ShareRefused { meeting_id: seat.meeting, participant: seat.pid }));
            }
            return;
        }
        match msg {
            ClientMsg::Hello { protocol } => {
                if protocol != PROTOCOL_VERSION {
                    self.send(
                        conn,
                        ServerMsg::error(
                            ErrorCode::UnsupportedVersion,
                            format!("this server speaks protocol {PROTOCOL_VERSION}"),
                            Some(kind),
                        ),
                    );
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hello = true;
                }
                self.send(conn, ServerMsg::Welcome { protocol: PROTOCOL_VERSION, max_message_bytes: crate::protocol::MAX_MESSAGE_BYTES });
            }
            ClientMsg::Ping {} => self.send(conn, ServerMsg::Pong {}),
            ClientMsg::AuthModerator { token } => {
                self.start_verify(conn, Vec::new(), PendingKind::Moderator, Verify::ModeratorToken { token }, now)
            }
            ClientMsg::Join { meeting_id, password, display_name } => {
                if !valid_label(&display_name, MAX_DISPLAY_NAME_CHARS) {
                    self.bad(conn, kind, "display_name must be 1-64 printable characters, without invisible ones");
                    return;
                }
                let meeting = MeetingId::parse(&meeting_id).ok().map(|m| m.as_compact().to_owned());
                let keys = meeting.iter().map(|m| LimitKey::Meeting(m.clone())).collect();
                let password_hash = meeting.as_ref().and_then(|m| self.meetings.get(m)).map(|m| m.password_hash.clone());
                // Typed passwords may be grouped or upper-case; hashes are of the compact form.
                let password = Password::parse(password.expose()).map(|p| Secret::new(p.as_compact())).unwrap_or(password);
                self.start_verify(
                    conn,
                    keys,
                    PendingKind::Join { meeting, display_name },
                    Verify::MeetingPassword { password_hash, password },
                    now,
                );
            }
            ClientMsg::Resume { token } => self.resume(conn, token.expose(), now),
            ClientMsg::EnterMeeting { meeting_id, display_name } => self.enter(conn, &meeting_id, display_name),
            ClientMsg::CreateMeeting { title, starts_at_unix, duration_min, lobby } => {
                self.create(conn, title, starts_at_unix, duration_min, lobby)
            }
            ClientMsg::ExportInvitation { meeting_id } => {
                let Some(m) = MeetingId::parse(&meeting_id).ok().and_then(|id| self.own_meeting(conn, id.as_compact())) else {
                    self.send(conn, ServerMsg::error(ErrorCode::UnknownMeeting, "no such meeting of yours", Some(kind)));
                    return;
                };
                let info = m.info.clone();
                let invitation = invite::invitation(&self.config.public_url, &info, None);
                self.audit(conn, "export_invitation", Some(compact(&info.id)), None);
                self.send(conn, ServerMsg::Invitation { meeting: info, invitation });
            }
            ClientMsg::Admit { participant } => self.moderate(conn, kind, participant),
            ClientMsg::Deny { participant } => self.moderate(conn, kind, participant),
            ClientMsg::Remove { participant } => self.moderate(conn, kind, participant),
            ClientMsg::GrantPresenter { participant } => self.moderate(conn, kind, participant),
            ClientMsg::RevokePresenter { participant } => self.moderate(conn, kind, participant),
            ClientMsg::LowerHand { participant } => self.moderate(conn, kind, participant),
            ClientMsg::Lock {} => self.switch_meeting(conn, kind, |m| m.locked = true),
            ClientMsg::Unlock {} => self.switch_meeting(conn, kind, |m| m.locked = false),
            ClientMsg::ChatOff {} => self.switch_meeting(conn, kind, |m| m.chat = false),
            ClientMsg::ChatOn {} => self.switch_meeting(conn, kind, |m| m.chat = true),
            ClientMsg::End {} => {
                let Some(seat) = self.seat(conn) else { return };
                self.end_meeting(conn, &seat.meeting);
            }
            ClientMsg::ShareStart {} | ClientMsg::ShareStop {} => {
                let Some(seat) = self.seat(conn) else { return };
                let active = matches!(msg, ClientMsg::ShareStart {});
                if let Some(m) = self.member_mut(&seat) {
                    m.sharing = active;
                }
                self.done(conn, kind);
                self.broadcast_others(&seat, ServerMsg::Share { from: seat.pid, active });
                self.broadcast_roster(&seat.meeting);
            }
            ClientMsg::DocumentOffer { offer } => {
                let Some(seat) = self.seat(conn) else { return };
                if !(16..=64).contains(&offer.len()) || !offer.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.bad(conn, kind, "offer must be 16-64 hex digits");
                    return;
                }
                self.done(conn, kind);
                self.broadcast_others(&seat, ServerMsg::DocumentOffered { from: seat.pid, offer });
            }
            ClientMsg::Offer { to, sdp, stream } => self.relay(conn, kind, to, |from| ServerMsg::Offer { from, sdp, stream }),
            ClientMsg::Answer { to, sdp, stream } => self.relay(conn, kind, to, |from| ServerMsg::Answer { from, sdp, stream }),
            ClientMsg::Candidate { to, candidate, sdp_mid, sdp_mline_index, stream } => {
                self.relay(conn, kind, to, |from| ServerMsg::Candidate { from, candidate, sdp_mid, sdp_mline_index, stream })
            }
            ClientMsg::DeviceState { camera, microphone } => {
                let Some(seat) = self.seat(conn) else { return };
                if let Some(m) = self.member_mut(&seat) {
                    m.camera = camera;
                    m.microphone = microphone;
                }
                self.broadcast_roster(&seat.meeting);
            }
            ClientMsg::RaiseHand { raised } => {
                let Some(seat) = self.seat(conn) else { return };
                // Only a change goes out: a client repeating itself costs the room nothing.
                if self.member_mut(&seat).is_some_and(|m| std::mem::replace(&mut m.hand, raised) != raised) {
                    self.broadcast_roster(&seat.meeting);
                }
            }
            ClientMsg::Leave {} => {
                let Some(seat) = self.seat(conn) else { return };
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.seat = None;
                }
                self.unseat(conn, &seat);
                self.arm_deadline(conn);
                self.done(conn, kind);
            }
        }
    }

    /// The driver's answer to an [`Output::Verify`].
    pub fn handle_verified(&mut self, ticket: Ticket, outcome: VerifyOutcome, now: Instant) {
        self.now = Some(now);
        let Some(p) = self.pending.remove(&ticket) else { return };
        let accepted = !matches!(outcome, VerifyOutcome::Refused);
        if accepted {
            self.limiter.forgive(&p.keys);
        }
        let Some(c) = self.conns.get_mut(&p.conn) else { return };
        c.verifying = None;
        let _ = now;
        match (p.kind, outcome) {
            (PendingKind::Moderator, VerifyOutcome::Moderator { moderator_id }) => {
                c.moderator = Some(moderator_id.clone());
                self.send(p.conn, ServerMsg::Authenticated { moderator_id });
            }
            (PendingKind::Join { meeting: Some(meeting), display_name }, VerifyOutcome::PasswordOk) => {
                self.seat_after_password(p.conn, &meeting, display_name)
            }
            (PendingKind::Moderator, _) => {
                self.send(p.conn, ServerMsg::error(ErrorCode::JoinRefused, "token refused", Some("auth_moderator")))
            }
            (PendingKind::Join { .. }, _) => {
                self.send(p.conn, ServerMsg::error(ErrorCode::JoinRefused, "meeting ID or password wrong", Some("join")))
            }
        }
    }

    /// The driver's answer to [`StoreCmd::CreateMeeting`]: the stored hash, or failure.
    pub fn handle_meeting_stored(&mut self, meeting_id: &str, result: Result<String, ()>) {
        let key = compact(meeting_id);
        let Some(p) = self.pending_creates.remove(&key) else { return };
        match result {
            Ok(password_hash) => {
                let invitation =
                    invite::invitation(&self.config.public_url, &p.info, Some(&Secret::new(grouped_password(p.password.expose()))));
                self.meetings.insert(
                    key.clone(),
                    Meeting {
                        info: p.info.clone(),
                        created_by: p.created_by,
                        password_hash,
                        ended: false,
                        locked: false,
                        chat: true,
                        members: BTreeMap::new(),
                        sent_away: BTreeSet::new(),
                    },
                );
                self.audit(p.conn, "create_meeting", Some(key), None);
                self.send(
                    p.conn,
                    ServerMsg::MeetingCreated { meeting: p.info, password: Secret::new(grouped_password(p.password.expose())), invitation },
                );
            }
            Err(()) => self.send(p.conn, ServerMsg::error(ErrorCode::Internal, "could not store the meeting", Some("create_meeting"))),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&(at, conn)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(c) = self.conns.get_mut(&conn) else { continue };
            c.deadline = None;
            if matches!(self.role(conn), Some(ConnRole::Connected | ConnRole::Anonymous)) {
                self.out.push_back(Output::Close { conn });
            }
        }
        self.expire_seats(now);
        if self.next_prune.is_some_and(|t| now >= t) {
            self.limiter.prune(now);
            self.next_prune = if self.limiter.is_empty() { None } else { Some(now + PRUNE_INTERVAL) };
        }
    }

    // ---- outputs ----

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        let away = self.away_expiry.first().map(|(at, _)| *at);
        [self.next_prune, deadline, away].into_iter().flatten().min()
    }

    /// (Re)starts `conn`'s authentication deadline from the last input's time.
    fn arm_deadline(&mut self, conn: ConnId) {
        let Some(now) = self.now else { return };
        let at = now + self.config.auth_deadline;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if let Some(old) = c.deadline.replace(at) {
            self.deadlines.remove(&(old, conn));
        }
        self.deadlines.insert((at, conn));
    }

    // ---- internals ----

    fn send(&mut self, conn: ConnId, msg: ServerMsg) {
        self.out.push_back(Output::Send { conn, msg });
    }

    fn done(&mut self, conn: ConnId, kind: &str) {
        self.send(conn, ServerMsg::Done { request: kind.to_owned() });
    }

    fn bad(&mut self, conn: ConnId, kind: &str, why: &str) {
        self.send(conn, ServerMsg::error(ErrorCode::BadMessage, why, Some(kind)));
    }

    fn seat(&self, conn: ConnId) -> Option<Seat> {
        self.conns.get(&conn)?.seat.clone()
    }

    fn member_mut(&mut self, seat: &Seat) -> Option<&mut Member> {
        self.meetings.get_mut(&seat.meeting)?.members.get_mut(&seat.pid)
    }

    fn audit(&mut self, conn: ConnId, action: &'static str, meeting_id: Option<String>, target: Option<ParticipantId>) {
        let Some(moderator_id) = self.conns.get(&conn).and_then(|c| c.moderator.clone()) else { return };
        self.out.push_back(Output::Store(StoreCmd::Audit(AuditEntry { moderator_id, action, meeting_id, target })));
    }

    fn start_verify(&mut self, conn: ConnId, mut keys: Vec<LimitKey>, kind: PendingKind, verify: Verify, now: Instant) {
        let Some(addr) = self.conns.get(&conn).map(|c| c.addr) else { return };
        keys.insert(0, LimitKey::address(addr));
        let request = match kind {
            PendingKind::Join { .. } => "join",
            PendingKind::Moderator => "auth_moderator",
        };
        if self.limited(conn, &keys, request, now) {
            return;
        }
        self.record_attempt(&keys, now);
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.verifying = Some(ticket);
        }
        self.pending.insert(ticket, Pending { conn, keys, kind });
        self.out.push_back(Output::Verify { ticket, verify });
    }

    /// Whether `keys` are in a back-off; then the refusal is sent. Hammering during a back-off
    /// counts too, so it ends in the lockout instead of one free guess per back-off. Only
    /// against the address (the first key): the meeting's counter stays for real password
    /// checks, so a blocked attacker cannot lock meetings out faster.
    fn limited(&mut self, conn: ConnId, keys: &[LimitKey], request: &str, now: Instant) -> bool {
        let Err(wait) = self.limiter.check(keys, now) else { return false };
        self.record_attempt(&keys[..1], now);
        self.send(
            conn,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                message: "too many failed attempts; try again later".into(),
                request: Some(request.into()),
                retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            },
        );
        true
    }

    fn record_attempt(&mut self, keys: &[LimitKey], now: Instant) {
        self.limiter.record_attempt(keys, now);
        if self.next_prune.is_none() {
            self.next_prune = Some(now + PRUNE_INTERVAL);
        }
    }

    fn seat_after_password(&mut self, conn: ConnId, meeting: &str, display_name: String) {
        let max = self.config.max_participants;
        let Some(m) = self.meetings.get(meeting) else {
            self.send(conn, ServerMsg::error(ErrorCode::JoinRefused, "meeting ID or password wrong", Some("join")));
            return;
        };
        let refusal = if m.ended {
            Some((ErrorCode::MeetingEnded, "the meeting has ended"))
        } else if m.locked {
            Some((ErrorCode::MeetingLocked, "the meeting is locked"))
        } else if m.members.len() >= max {
            Some((ErrorCode::MeetingFull, "the meeting is full"))
        } else {
            None
        };
        if let Some((code, text)) = refusal {
            self.send(conn, ServerMsg::error(code, text, Some("join")));
            return;
        }
        let key = self.conns.get(&conn).map(|c| LimitKey::address(c.addr));
        let from_key = m.members.values().filter(|mem| !mem.moderator && self.key_of(mem.conn) == key).count();
        let per = self.config.seats_per_address;
        if from_key >= 2 * per {
            self.send(conn, ServerMsg::error(ErrorCode::MeetingFull, "too many members from your network", Some("join")));
            return;
        }
        let returning = key.as_ref().is_some_and(|k| m.sent_away.contains(k));
        let admitted = !m.info.lobby && !returning && from_key < per;
        self.add_member(conn, meeting, display_name, admitted, false, false);
    }

    /// A meeting this connection's moderator created: moderators run their own meetings only
    /// (someone else's answers as an unknown one, so IDs cannot be probed).
    fn own_meeting(&self, conn: ConnId, compact: &str) -> Option<&Meeting> {
        let moderator = self.conns.get(&conn)?.moderator.as_deref()?;
        self.meetings.get(compact).filter(|m| m.created_by == moderator)
    }

    fn key_of(&self, conn: ConnId) -> Option<LimitKey> {
        self.conns.get(&conn).map(|c| LimitKey::address(c.addr))
    }

    fn add_member(&mut self, conn: ConnId, meeting: &str, display_name: String, admitted: bool, moderator: bool, presenter: bool) {
        let pid = ParticipantId(self.next_pid);
        self.next_pid += 1;
        let Some(m) = self.meetings.get_mut(meeting) else { return };
        m.members.insert(
            pid,
            Member {
                conn,
                display_name,
                admitted,
                moderator,
                presenter,
                camera: false,
                microphone: false,
                sharing: false,
                hand: false,
                resume: None,
            },
        );
        let grouped_id = m.info.id.clone();
        let seat = Seat { meeting: meeting.to_owned(), pid };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.seat = Some(seat.clone());
        }
        let resume = self.issue_resume(&seat);
        let state = if admitted { LobbyState::Admitted } else { LobbyState::Waiting };
        self.send(conn, ServerMsg::Lobby { state, meeting_id: grouped_id, participant_id: pid, resume });
        if admitted {
            self.out.push_back(Output::Event(RoomEvent::Admitted { conn, meeting_id: meeting.to_owned(), participant: pid }));
        }
        self.broadcast_roster(meeting);
    }

    fn enter(&mut self, conn: ConnId, meeting_id: &str, display_name: String) {
        if !valid_label(&display_name, MAX_DISPLAY_NAME_CHARS) {
            self.bad(conn, "enter_meeting", "display_name must be 1-64 printable characters, without invisible ones");
            return;
        }
        let key = MeetingId::parse(meeting_id).ok().map(|m| m.as_compact().to_owned());
        match key.as_ref().and_then(|k| self.own_meeting(conn, k)) {
            None => self.send(conn, ServerMsg::error(ErrorCode::UnknownMeeting, "no such meeting of yours", Some("enter_meeting"))),
            Some(m) if m.ended => {
                self.send(conn, ServerMsg::error(ErrorCode::MeetingEnded, "the meeting has ended", Some("enter_meeting")))
            }
            Some(_) => {
                let key = key.unwrap_or_default();
                self.audit(conn, "enter_meeting", Some(key.clone()), None);
                self.add_member(conn, &key, display_name, true, true, false);
            }
        }
    }

    fn create(&mut self, conn: ConnId, title: String, starts_at_unix: Option<i64>, duration_min: Option<u32>, lobby: Option<bool>) {
        const KIND: &str = "create_meeting";
        if !valid_label(&title, MAX_TITLE_CHARS) {
            self.bad(conn, KIND, "title must be 1-200 printable characters");
            return;
        }
        // Up to the year 9999, so calendar output stays four-digit.
        if starts_at_unix.is_some_and(|t| !(0..=253_402_300_799).contains(&t)) {
            self.bad(conn, KIND, "starts_at_unix out of range");
            return;
        }
        let duration_min = duration_min.unwrap_or(60);
        if !(1..=24 * 60).contains(&duration_min) {
            self.bad(conn, KIND, "duration_min must be 1-1440");
            return;
        }
        let Some(created_by) = self.conns.get(&conn).and_then(|c| c.moderator.clone()) else { return };
        let generated = (|| {
            for _ in 0..8 {
                let id = MeetingId::generate(&mut *self.entropy)?;
                if !self.meetings.contains_key(id.as_compact()) && !self.pending_creates.contains_key(id.as_compact()) {
                    return Ok(Some((id, Password::generate(&mut *self.entropy)?)));
                }
            }
            Ok::<_, blende_meeting::MeetingError>(None)
        })();
        let Ok(Some((id, password))) = generated else {
            self.send(conn, ServerMsg::error(ErrorCode::Internal, "could not generate a meeting ID", Some(KIND)));
            return;
        };
        let info =
            MeetingInfo { id: id.to_string(), title, starts_at_unix, duration_min, lobby: lobby.unwrap_or(self.config.lobby_default) };
        let password = Secret::new(password.as_compact());
        self.pending_creates.insert(
            id.as_compact().to_owned(),
            PendingCreate { conn, info: info.clone(), created_by: created_by.clone(), password: password.clone() },
        );
        self.out.push_back(Output::Store(StoreCmd::CreateMeeting { info, created_by, password }));
    }

    fn moderate(&mut self, conn: ConnId, kind: &'static str, target: ParticipantId) {
        let Some(seat) = self.seat(conn) else { return };
        let Some(m) = self.meetings.get(&seat.meeting) else { return };
        let Some(t) = m.members.get(&target) else {
            self.send(conn, ServerMsg::error(ErrorCode::UnknownParticipant, "no such participant in this meeting", Some(kind)));
            return;
        };
        let ok = match kind {
            "admit" | "deny" => !t.admitted,
            "remove" => t.admitted && target != seat.pid,
            _ => t.admitted,
        };
        if !ok {
            self.send(
                conn,
                ServerMsg::error(ErrorCode::UnknownParticipant, "the participant is not in a state this applies to", Some(kind)),
            );
            return;
        }
        let target_conn = t.conn;
        let meeting_id = seat.meeting.clone();
        let grouped_id = m.info.id.clone();
        let tseat = Seat { meeting: meeting_id.clone(), pid: target };
        match kind {
            "admit" => {
                if let Some(t) = self.member_mut(&tseat) {
                    t.admitted = true;
                }
                let resume = self.issue_resume(&tseat);
                // A moderator let them in: their network is welcome again.
                if let (Some(key), Some(m)) = (self.key_of(target_conn), self.meetings.get_mut(&meeting_id)) {
                    m.sent_away.remove(&key);
                }
                self.send(
                    target_conn,
                    ServerMsg::Lobby { state: LobbyState::Admitted, meeting_id: grouped_id, participant_id: target, resume },
                );
                self.out.push_back(Output::Event(RoomEvent::Admitted {
                    conn: target_conn,
                    meeting_id: meeting_id.clone(),
                    participant: target,
                }));
            }
            "deny" | "remove" => {
                if let (Some(key), Some(m)) = (self.key_of(target_conn), self.meetings.get_mut(&meeting_id)) {
                    m.sent_away.insert(key);
                }
                if let Some(c) = self.conns.get_mut(&target_conn) {
                    c.seat = None;
                }
                self.arm_deadline(target_conn);
                if let Some(member) = self.meetings.get_mut(&meeting_id).and_then(|m| m.members.remove(&target)) {
                    self.seat_gone(&member);
                }
                if kind == "deny" {
                    self.send(
                        target_conn,
                        ServerMsg::Lobby { state: LobbyState::Denied, meeting_id: grouped_id, participant_id: target, resume: None },
                    );
                } else {
                    self.send(target_conn, ServerMsg::Removed {});
                    self.out.push_back(Output::Event(RoomEvent::Left {
                        conn: target_conn,
                        meeting_id: meeting_id.clone(),
                        participant: target,
                    }));
                }
                self.out.push_back(Output::Close { conn: target_conn });
            }
            "grant_presenter" => {
                if let Some(t) = self.member_mut(&tseat) {
                    t.presenter = true;
                }
            }
            "lower_hand" => {
                if let Some(t) = self.member_mut(&tseat) {
                    t.hand = false;
                }
            }
            _ => {
                // revoke_presenter: a running share stops with the role.
                let was_sharing = self.member_mut(&tseat).is_some_and(|t| {
                    t.presenter = false;
                    std::mem::replace(&mut t.sharing, false)
                });
                if was_sharing {
                    self.broadcast_others(&tseat, ServerMsg::Share { from: target, active: false });
                }
            }
        }
        if matches!(kind, "grant_presenter" | "revoke_presenter") {
            self.store_seat(&tseat, None);
            self.out.push_back(Output::Event(RoomEvent::RolesChanged { meeting_id: meeting_id.clone() }));
        }
        self.audit(conn, kind, Some(meeting_id.clone()), Some(target));
        self.done(conn, kind);
        self.broadcast_roster(&meeting_id);
    }

    fn end_meeting(&mut self, conn: ConnId, meeting_id: &str) {
        let Some(m) = self.meetings.get_mut(meeting_id) else { return };
        m.ended = true;
        m.locked = false;
        let members = std::mem::take(&mut m.members);
        self.forget_seats(|a| a.seat.meeting == meeting_id);
        for (_, member) in members {
            self.seat_gone(&member);
            let keep_open = self.conns.get_mut(&member.conn).is_some_and(|c| {
                c.seat = None;
                c.moderator.is_some()
            });
            self.send(member.conn, ServerMsg::Ended {});
            if !keep_open {
                self.out.push_back(Output::Close { conn: member.conn });
            }
        }
        self.out.push_back(Output::Store(StoreCmd::EndMeeting { meeting_id: meeting_id.to_owned() }));
        self.out.push_back(Output::Event(RoomEvent::MeetingEnded { meeting_id: meeting_id.to_owned() }));
        self.audit(conn, "end", Some(meeting_id.to_owned()), None);
        self.done(conn, "end");
    }

    /// A moderator's meeting-wide switch (lock, chat): set it, audit, answer, tell everyone.
    fn switch_meeting(&mut self, conn: ConnId, kind: &'static str, set: impl FnOnce(&mut Meeting)) {
        let Some(seat) = self.seat(conn) else { return };
        if let Some(m) = self.meetings.get_mut(&seat.meeting) {
            set(m);
            let (locked, chat) = (m.locked, m.chat);
            self.out.push_back(Output::Store(StoreCmd::MeetingSwitches { meeting_id: seat.meeting.clone(), locked, chat }));
        }
        self.audit(conn, kind, Some(seat.meeting.clone()), None);
        self.done(conn, kind);
        self.broadcast_roster(&seat.meeting);
    }

    fn relay(&mut self, conn: ConnId, kind: &str, to: ParticipantId, make: impl FnOnce(ParticipantId) -> ServerMsg) {
        let Some(seat) = self.seat(conn) else { return };
        let target =
            self.meetings.get(&seat.meeting).and_then(|m| m.members.get(&to)).filter(|t| t.admitted && to != seat.pid).map(|t| t.conn);
        match target {
            Some(tc) => self.send(tc, make(seat.pid)),
            None => {
                self.send(conn, ServerMsg::error(ErrorCode::UnknownParticipant, "no such admitted participant in this meeting", Some(kind)))
            }
        }
    }

    /// Removes a member whose connection already dropped its seat (leave, disconnect).
    fn unseat(&mut self, conn: ConnId, seat: &Seat) {
        let Some(m) = self.meetings.get_mut(&seat.meeting) else { return };
        let Some(member) = m.members.remove(&seat.pid) else { return };
        self.seat_gone(&member);
        if member.admitted {
            if member.sharing {
                self.broadcast_others(seat, ServerMsg::Share { from: seat.pid, active: false });
            }
            self.out.push_back(Output::Event(RoomEvent::Left { conn, meeting_id: seat.meeting.clone(), participant: seat.pid }));
        }
        self.broadcast_roster(&seat.meeting);
    }

    fn broadcast_others(&mut self, from: &Seat, msg: ServerMsg) {
        let Some(m) = self.meetings.get(&from.meeting) else { return };
        let targets: Vec<ConnId> =
            m.members.iter().filter(|(pid, mem)| mem.admitted && **pid != from.pid).map(|(_, mem)| mem.conn).collect();
        for t in targets {
            self.send(t, msg.clone());
        }
    }

    fn broadcast_roster(&mut self, meeting_id: &str) {
        let Some(m) = self.meetings.get(meeting_id) else { return };
        let participants: Vec<ParticipantInfo> = m
            .members
            .iter()
            .filter(|(_, mem)| mem.admitted)
            .map(|(id, mem)| ParticipantInfo {
                id: *id,
                display_name: mem.display_name.clone(),
                role: if mem.moderator {
                    Role::Moderator
                } else if mem.presenter {
                    Role::Presenter
                } else {
                    Role::Participant
                },
                presenter: mem.presenter,
                camera: mem.camera,
                microphone: mem.microphone,
                sharing: mem.sharing,
                hand: mem.hand,
            })
            .collect();
        let waiting: Vec<WaitingInfo> = m
            .members
            .iter()
            .filter(|(_, mem)| !mem.admitted)
            .map(|(id, mem)| WaitingInfo {
                id: *id,
                display_name: mem.display_name.clone(),
                returning: self.key_of(mem.conn).is_some_and(|k| m.sent_away.contains(&k)),
            })
            .collect();
        let targets: Vec<(ConnId, bool)> = m.members.values().filter(|mem| mem.admitted).map(|mem| (mem.conn, mem.moderator)).collect();
        let (grouped_id, locked, chat) = (m.info.id.clone(), m.locked, m.chat);
        for (conn, moderator) in targets {
            let waiting = if moderator { waiting.clone() } else { Vec::new() };
            self.send(
                conn,
                ServerMsg::Participants { meeting_id: grouped_id.clone(), locked, chat, participants: participants.clone(), waiting },
            );
        }
    }
}

fn compact(id: &str) -> String {
    MeetingId::parse(id).map(|m| m.as_compact().to_owned()).unwrap_or_else(|_| id.to_owned())
}

/// An invitation without password for a stored meeting (used by the admin CLI too).
pub fn invitation_for(public_url: &str, info: &MeetingInfo) -> Invitation {
    invite::invitation(public_url, info, None)
}
