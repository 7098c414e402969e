//! Blende's own room server (`blende+wss://`, protocol v1 in `blende-room`, documented in
//! `crates/blende-server/PROTOCOL.md`): the lobby, roles, and a peer-to-peer mesh whose offers,
//! answers and candidates the server only relays.
//!
//! [`BlendeMachine`] is sans-IO: server messages in ([`BlendeMachine::handle_message`]),
//! client messages ([`BlendeMachine::poll_transmit`]) and [`SignalEvent`]s out; the WebSocket
//! driver is [`connect`].
//!
//! Mesh media: every participant offers its own media to every other one on a PeerConnection
//! of its own ([`SignalEvent::PublishTo`] → [`SignalCommand::PublishTo`]); offers that arrive
//! are the other side's media for us ([`SignalEvent::SubscriptionOffer`], answered with
//! [`SignalCommand::AnswerSubscription`]). One direction per PeerConnection, so both sides
//! offer at once without glare. Offers and answers carry all candidates; trickled candidates
//! from others are passed on as they come.
//!
//! TURN: the server's short-lived TURN credentials become [`SignalEvent::IceServers`] (TURN
//! URLs only; never a third party's). Janus: when the meeting outgrows the mesh the server's
//! `janus` message becomes [`SignalEvent::MovedToJanus`]; from then on this adapter reports no
//! mesh signalling and no membership (the engine's Janus adapter does), only roles, the lobby
//! for moderators, removal and the end.

use std::collections::{BTreeMap, VecDeque};

#[cfg(feature = "io")]
use blende_policy::ServerUrl;
use blende_room::protocol::{
    ClientMsg, ErrorCode, LobbyState, PROTOCOL_VERSION, ParticipantId, ParticipantInfo, Role, Secret, ServerMsg, Stream, parse_server,
};
#[cfg(feature = "io")]
use futures_util::{SinkExt, StreamExt};
#[cfg(feature = "io")]
use tokio_tungstenite::tungstenite::Message;

#[cfg(feature = "io")]
use crate::SignalHandle;
use crate::{JanusRoom, JoinOptions, Participant, SignalCommand, SignalError, SignalEvent, TurnCredentials};

/// What a moderator (or anyone, for their own share) may ask the room server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomAction {
    Admit(String),
    Deny(String),
    Remove(String),
    GrantPresenter(String),
    RevokePresenter(String),
    Lock,
    Unlock,
    End,
    /// Chat off / on for the whole meeting (moderators; the server broadcasts it).
    ChatOff,
    ChatOn,
    /// Ask to share (the server decides by role and answers with a share or a refusal).
    ShareStart,
    ShareStop,
    /// A document to everyone (presenters): only its opaque token goes to the server.
    DocumentOffer {
        offer: String,
    },
    /// Our own devices, after every switch (the server shows them to the others).
    DeviceState {
        camera: bool,
        microphone: bool,
    },
    /// Our own hand up (`true`) or down.
    RaiseHand(bool),
    /// A moderator lowers someone's hand.
    LowerHand(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Hello,
    Lobby,
    InMeeting,
    Closed,
}

/// The client side of protocol v1 for one participant.
#[derive(Debug)]
pub struct BlendeMachine {
    options: JoinOptions,
    phase: Phase,
    me: Option<ParticipantId>,
    /// Others in the meeting, by id, with what we last told the engine.
    others: BTreeMap<ParticipantId, ParticipantInfo>,
    /// Who waits in the lobby, as last reported.
    waiting: Vec<Participant>,
    /// `Joined` was reported (the first participant list after admission).
    reported_joined: bool,
    /// Our own role as the roster last said (reported like the others', when it changes).
    own_role: Option<Role>,
    /// Our hand as the server last reported it (a moderator may lower it).
    own_hand: bool,
    /// The meeting runs on Janus: no mesh signalling and no membership events from here.
    on_janus: bool,
    /// The meeting's chat switch as last reported (`true` until the server says otherwise).
    chat: bool,
    /// We asked to `resume` a seat ([`JoinOptions::resume`]); a refusal falls back to joining.
    resuming: bool,
    transmit: VecDeque<String>,
    events: VecDeque<SignalEvent>,
}

fn pid(s: &str) -> Option<ParticipantId> {
    s.strip_prefix('p').unwrap_or(s).parse().ok().map(ParticipantId)
}

/// A mesh route as the engine names it: `"3"` for participant 3's camera and microphone,
/// `"3/screen"` for its share, `"3/data"` for the direct data connection of a meeting on Janus.
fn route(s: &str) -> Option<(ParticipantId, Stream)> {
    if let Some(p) = s.strip_suffix("/screen") {
        return pid(p).map(|p| (p, Stream::Screen));
    }
    if let Some(p) = s.strip_suffix("/data") {
        return pid(p).map(|p| (p, Stream::Data));
    }
    pid(s).map(|p| (p, Stream::Media))
}

fn route_name(from: ParticipantId, stream: Stream) -> String {
    match stream {
        Stream::Media => from.0.to_string(),
        Stream::Screen => format!("{}/screen", from.0),
        Stream::Data => format!("{}/data", from.0),
    }
}

impl BlendeMachine {
    #[must_use]
    pub fn new(options: JoinOptions) -> Self {
        let mut m = Self {
            options,
            phase: Phase::Hello,
            me: None,
            others: BTreeMap::new(),
            reported_joined: false,
            own_role: None,
            own_hand: false,
            on_janus: false,
            chat: true,
            resuming: false,
            waiting: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        };
        m.send(&ClientMsg::Hello { protocol: PROTOCOL_VERSION });
        m
    }

    fn send(&mut self, msg: &ClientMsg) {
        match serde_json::to_string(msg) {
            Ok(text) => self.transmit.push_back(text),
            Err(e) => self.events.push_back(SignalEvent::Error { message: format!("cannot encode {}: {e}", msg.kind()), fatal: false }),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SignalEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    fn close(&mut self, event: SignalEvent) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.events.push_back(event);
        }
    }

    /// The connection is gone.
    pub fn handle_transport_closed(&mut self, reason: &str) {
        self.close(SignalEvent::Closed { reason: reason.to_owned() });
    }

    /// One text message from the server. A malformed one is reported and skipped: a broken
    /// message must not end the call.
    ///
    /// # Errors
    /// [`SignalError::Protocol`] for text that is not a v1 server message.
    pub fn handle_message(&mut self, text: &str) -> Result<(), SignalError> {
        let msg = parse_server(text).map_err(|e| SignalError::Protocol(e.to_string()))?;
        match msg {
            ServerMsg::Welcome { .. } => match self.options.resume.clone() {
                Some(token) => {
                    self.resuming = true;
                    self.send(&ClientMsg::Resume { token: Secret::new(token) });
                }
                None => self.join(),
            },
            ServerMsg::Authenticated { .. } => {
                let room = self.options.room.clone().unwrap_or_default();
                self.send(&ClientMsg::EnterMeeting { meeting_id: room, display_name: self.options.display_name.clone() });
            }
            ServerMsg::Lobby { state, participant_id, resume, .. } => {
                self.me = Some(participant_id);
                self.resuming = false;
                if let Some(token) = resume {
                    // What a reconnect names to come back to this seat.
                    self.events.push_back(SignalEvent::Session { resume: token.expose().to_owned() });
                }
                match state {
                    LobbyState::Waiting => {
                        self.phase = Phase::Lobby;
                        self.events.push_back(SignalEvent::Lobby { state, participant_id: participant_id.0.to_string() });
                    }
                    LobbyState::Admitted => {
                        self.phase = Phase::InMeeting;
                        self.events.push_back(SignalEvent::Lobby { state, participant_id: participant_id.0.to_string() });
                    }
                    LobbyState::Denied => self.close(SignalEvent::Error { message: "the moderator did not admit you".into(), fatal: true }),
                }
            }
            ServerMsg::Participants { participants, waiting, chat, .. } => {
                if chat != self.chat {
                    self.chat = chat;
                    self.events.push_back(SignalEvent::Chat { enabled: chat });
                }
                let waiting: Vec<Participant> =
                    waiting.into_iter().map(|w| Participant { id: w.id.0.to_string(), display: Some(w.display_name) }).collect();
                if waiting != self.waiting {
                    self.waiting.clone_from(&waiting);
                    self.events.push_back(SignalEvent::Waiting { participants: waiting });
                }
                self.handle_participants(participants);
            }
            // Once: a repeated message changes nothing (the call is already there).
            ServerMsg::Janus { url, room, pin, token, feed, screen_feed } if !self.on_janus => {
                self.on_janus = true;
                let room = JanusRoom { url, room, pin: pin.expose().to_owned(), token: token.expose().to_owned(), feed, screen_feed };
                self.events.push_back(SignalEvent::MovedToJanus(room));
                // Chat and documents need a direct connection to each member; Janus carries
                // only media, so the room server keeps naming the members.
                for id in self.others.keys() {
                    self.events.push_back(SignalEvent::DirectPeer { participant: id.0.to_string(), present: true });
                }
            }
            // Mesh media signalling still in flight when the meeting moved to Janus: nobody needs
            // it. The direct data connections (chat, documents) stay peer to peer.
            ServerMsg::Offer { stream, .. } | ServerMsg::Answer { stream, .. } | ServerMsg::Candidate { stream, .. }
                if self.on_janus && stream != Stream::Data => {}
            ServerMsg::Offer { from, sdp, stream } => {
                self.events.push_back(SignalEvent::SubscriptionOffer { feed: route_name(from, stream), sdp });
            }
            ServerMsg::Answer { from, sdp, stream } => {
                self.events.push_back(SignalEvent::PeerAnswer { peer: route_name(from, stream), sdp })
            }
            ServerMsg::Candidate { from, candidate, sdp_mid, sdp_mline_index, stream } => {
                let feed = Some(route_name(from, stream));
                self.events.push_back(SignalEvent::RemoteCandidate { feed, candidate, sdp_mid, sdp_mline_index });
            }
            ServerMsg::IceServers { servers } => {
                // Only TURN: the server never hands out anything else, and a STUN or unknown
                // scheme here would be a server bug, not a reason to contact a third party.
                let servers: Vec<TurnCredentials> = servers
                    .into_iter()
                    .map(|s| TurnCredentials {
                        urls: s.urls.into_iter().filter(|u| u.starts_with("turn:") || u.starts_with("turns:")).collect(),
                        username: s.username,
                        credential: s.credential.expose().to_owned(),
                        ttl_s: s.ttl_s,
                    })
                    .filter(|s| !s.urls.is_empty())
                    .collect();
                self.events.push_back(SignalEvent::IceServers(servers));
            }
            ServerMsg::Removed {} => self.close(SignalEvent::Kicked),
            ServerMsg::Ended {} => self.close(SignalEvent::RoomDestroyed),
            // Our own share is accepted with `done` (the others get `share`).
            ServerMsg::Done { request } if request == "share_start" || request == "share_stop" => {
                if let Some(me) = self.me {
                    self.events.push_back(SignalEvent::Share { participant: me.0.to_string(), active: request == "share_start" });
                }
            }
            ServerMsg::Share { from, active } => {
                self.events.push_back(SignalEvent::Share { participant: from.0.to_string(), active });
            }
            ServerMsg::DocumentOffered { from, offer } => {
                self.events.push_back(SignalEvent::DocumentOffered { participant: from.0.to_string(), offer });
            }
            // Signalling for someone who left (or came back under a new id) while it was on its
            // way: the race is normal and nobody needs to hear of it.
            ServerMsg::Error { code: ErrorCode::UnknownParticipant, request: Some(request), .. }
                if self.phase == Phase::InMeeting && matches!(request.as_str(), "offer" | "answer" | "candidate") => {}
            // The seat was not kept (too long away, or the meeting moved on): join as anyone
            // would, lobby and all.
            ServerMsg::Error { code, request, .. }
                if self.resuming && request.as_deref() == Some("resume") && code != ErrorCode::MeetingEnded =>
            {
                self.resuming = false;
                self.join();
            }
            ServerMsg::Error { code, message, request, .. } => {
                // Before we are in, every refusal ends the attempt; inside, a refused request
                // (say, a share without the presenter role) does not end the call.
                let fatal = self.phase != Phase::InMeeting || matches!(code, ErrorCode::MeetingEnded | ErrorCode::UnsupportedVersion);
                let text = format!("room server: {message}");
                if fatal {
                    self.close(SignalEvent::Error { message: text, fatal: true });
                } else if let Some(request) = request {
                    let not_allowed = code == ErrorCode::NotAllowed;
                    self.events.push_back(SignalEvent::Refused { request, not_allowed, message: text });
                } else {
                    self.events.push_back(SignalEvent::Error { message: text, fatal: false });
                }
            }
            // Roles, shares and documents are shown by the app; the call itself needs none.
            _ => {}
        }
        Ok(())
    }

    /// Into the meeting: as a moderator (who then enters) or with the password.
    fn join(&mut self) {
        match self.options.moderator_token.clone() {
            Some(token) => self.send(&ClientMsg::AuthModerator { token: Secret::new(token) }),
            None => {
                let room = self.options.room.clone().unwrap_or_default();
                let password = Secret::new(self.options.password.clone().unwrap_or_default());
                self.send(&ClientMsg::Join { meeting_id: room, password, display_name: self.options.display_name.clone() });
            }
        }
    }

    fn handle_participants(&mut self, list: Vec<ParticipantInfo>) {
        if self.phase != Phase::InMeeting {
            // The list can arrive before our own admission message: it says we are in.
            if self.me.is_some_and(|me| list.iter().any(|p| p.id == me)) {
                self.phase = Phase::InMeeting;
            } else {
                return;
            }
        }
        let me = self.me;
        if let Some(mine) = list.iter().find(|p| Some(p.id) == me) {
            let role = if mine.presenter { Role::Presenter } else { mine.role };
            if self.own_role != Some(role) {
                self.own_role = Some(role);
                self.events.push_back(SignalEvent::Role { participant: mine.id.0.to_string(), role });
            }
            if self.own_hand != mine.hand {
                self.own_hand = mine.hand;
                self.events.push_back(SignalEvent::Hand { participant: mine.id.0.to_string(), raised: mine.hand });
            }
        }
        let mut current: BTreeMap<ParticipantId, ParticipantInfo> =
            list.into_iter().filter(|p| Some(p.id) != me).map(|p| (p.id, p)).collect();
        if self.on_janus {
            // Janus reports who publishes (and our own `Joined`); from here only roles, and the
            // members a direct data connection goes to.
            for id in current.keys().filter(|id| !self.others.contains_key(id)) {
                self.events.push_back(SignalEvent::DirectPeer { participant: id.0.to_string(), present: true });
            }
            for id in self.others.keys().filter(|id| !current.contains_key(id)) {
                self.events.push_back(SignalEvent::DirectPeer { participant: id.0.to_string(), present: false });
            }
        } else if !self.reported_joined {
            let participants =
                current.values().map(|p| Participant { id: p.id.0.to_string(), display: Some(p.display_name.clone()) }).collect();
            self.events.push_back(SignalEvent::Joined { participant_id: me.map(|m| m.0.to_string()).unwrap_or_default(), participants });
            for id in current.keys() {
                self.events.push_back(SignalEvent::PublishTo { peer: id.0.to_string() });
            }
        } else {
            for (id, p) in &current {
                if !self.others.contains_key(id) {
                    self.events.push_back(SignalEvent::ParticipantJoined(Participant {
                        id: id.0.to_string(),
                        display: Some(p.display_name.clone()),
                    }));
                    self.events.push_back(SignalEvent::PublishTo { peer: id.0.to_string() });
                }
            }
            for id in self.others.keys() {
                if !current.contains_key(id) {
                    self.events.push_back(SignalEvent::ParticipantLeft { id: id.0.to_string() });
                }
            }
        }
        for (id, p) in &mut current {
            let role = if p.presenter { Role::Presenter } else { p.role };
            let old = self.others.get(id);
            if old.is_none_or(|old| old.role != p.role || old.presenter != p.presenter) {
                self.events.push_back(SignalEvent::Role { participant: id.0.to_string(), role });
            }
            if old.is_none_or(|old| (old.camera, old.microphone, old.sharing) != (p.camera, p.microphone, p.sharing)) {
                self.events.push_back(SignalEvent::Devices {
                    participant: id.0.to_string(),
                    camera: p.camera,
                    microphone: p.microphone,
                    sharing: p.sharing,
                });
            }
            if old.map_or(p.hand, |old| old.hand != p.hand) {
                self.events.push_back(SignalEvent::Hand { participant: id.0.to_string(), raised: p.hand });
            }
        }
        self.others = current;
        self.reported_joined = true;
    }

    /// A command from the engine.
    pub fn handle_command(&mut self, command: SignalCommand) {
        match command {
            SignalCommand::PublishTo { peer, sdp } => match route(&peer) {
                Some((to, stream)) => self.send(&ClientMsg::Offer { to, sdp, stream }),
                None => self.events.push_back(SignalEvent::Error { message: format!("unknown participant `{peer}`"), fatal: false }),
            },
            SignalCommand::AnswerSubscription { feed, sdp } => match route(&feed) {
                Some((to, stream)) => self.send(&ClientMsg::Answer { to, sdp, stream }),
                None => self.events.push_back(SignalEvent::Error { message: format!("unknown participant `{feed}`"), fatal: false }),
            },
            SignalCommand::Room(action) => {
                let target = |s: &str| pid(s).ok_or_else(|| format!("unknown participant `{s}`"));
                let msg = match action {
                    RoomAction::Admit(p) => target(&p).map(|participant| ClientMsg::Admit { participant }),
                    RoomAction::Deny(p) => target(&p).map(|participant| ClientMsg::Deny { participant }),
                    RoomAction::Remove(p) => target(&p).map(|participant| ClientMsg::Remove { participant }),
                    RoomAction::GrantPresenter(p) => target(&p).map(|participant| ClientMsg::GrantPresenter { participant }),
                    RoomAction::RevokePresenter(p) => target(&p).map(|participant| ClientMsg::RevokePresenter { participant }),
                    RoomAction::Lock => Ok(ClientMsg::Lock {}),
                    RoomAction::Unlock => Ok(ClientMsg::Unlock {}),
                    RoomAction::End => Ok(ClientMsg::End {}),
                    RoomAction::ChatOff => Ok(ClientMsg::ChatOff {}),
                    RoomAction::ChatOn => Ok(ClientMsg::ChatOn {}),
                    RoomAction::ShareStart => Ok(ClientMsg::ShareStart {}),
                    RoomAction::ShareStop => Ok(ClientMsg::ShareStop {}),
                    RoomAction::DocumentOffer { offer } => Ok(ClientMsg::DocumentOffer { offer }),
                    RoomAction::DeviceState { camera, microphone } => Ok(ClientMsg::DeviceState { camera, microphone }),
                    RoomAction::RaiseHand(raised) => Ok(ClientMsg::RaiseHand { raised }),
                    RoomAction::LowerHand(p) => target(&p).map(|participant| ClientMsg::LowerHand { participant }),
                };
                match msg {
                    Ok(m) => self.send(&m),
                    Err(message) => self.events.push_back(SignalEvent::Error { message, fatal: false }),
                }
            }
            SignalCommand::Leave => {
                self.send(&ClientMsg::Leave {});
                self.close(SignalEvent::Closed { reason: "left".into() });
            }
            // In a mesh nobody subscribes: the others offer on their own.
            SignalCommand::Subscribe { .. } | SignalCommand::Unsubscribe { .. } => {}
            SignalCommand::Publish { .. } | SignalCommand::Unpublish | SignalCommand::OfferSubscription { .. } => {
                self.events.push_back(SignalEvent::Error {
                    message: "a Blende room publishes to each participant (PublishTo)".into(),
                    fatal: false,
                });
            }
        }
    }
}

/// `ws[s]://host:port/` for a `blende+ws[s]://` address (default ports 443 / 8080).
#[cfg(feature = "io")]
#[must_use]
pub fn websocket_url(url: &ServerUrl) -> String {
    let scheme = if url.tls { "wss" } else { "ws" };
    let port = url.port.unwrap_or(if url.tls { 443 } else { 8080 });
    let path = if url.path.is_empty() { "/" } else { url.path.as_str() };
    format!("{scheme}://{}:{port}{path}", url.host)
}

/// Connects, joins and spawns the driver task.
///
/// # Errors
/// [`SignalError::Connect`] when the WebSocket cannot be opened.
#[cfg(feature = "io")]
pub async fn connect(url: &ServerUrl, options: JoinOptions) -> Result<SignalHandle, SignalError> {
    let ws_url = websocket_url(url);
    let ws = crate::ws_driver::open(ws_url.as_str()).await.map_err(|message| SignalError::Connect { url: ws_url.clone(), message })?;
    Ok(crate::ws_driver::spawn(ws, BlendeMachine::new(options)))
}

#[cfg(feature = "io")]
impl crate::ws_driver::Machine for BlendeMachine {
    const NAME: &'static str = "blende room";
    // A call in a Blende room comes back by itself (`resume`): a cut must show as a loss.
    const WATCH_SILENCE: bool = true;

    fn poll_transmit(&mut self) -> Option<String> {
        BlendeMachine::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<SignalEvent> {
        BlendeMachine::poll_event(self)
    }
    fn is_closed(&self) -> bool {
        BlendeMachine::is_closed(self)
    }
    fn handle_message(&mut self, text: &str) -> Result<(), SignalError> {
        BlendeMachine::handle_message(self, text)
    }
    fn handle_command(&mut self, command: SignalCommand) {
        BlendeMachine::handle_command(self, command);
    }
    fn handle_transport_closed(&mut self, reason: &str) {
        BlendeMachine::handle_transport_closed(self, reason);
    }
}

/// What a moderator asks for when scheduling a meeting.
#[derive(Clone, Debug, Default)]
pub struct NewMeeting {
    pub title: String,
    pub starts_at_unix: Option<i64>,
    pub duration_min: Option<u32>,
    /// `None`: the server's default (lobby on unless the administrator changed it).
    pub lobby: Option<bool>,
}

/// Creates a meeting as a moderator and returns the server's `meeting_created` message as JSON
/// (meeting, password, invitation with link, text and `.ics`).
///
/// # Errors
/// Connection failures, the server's refusal (as its message), or no answer within 10 s.
#[cfg(feature = "io")]
pub async fn create_meeting(url: &ServerUrl, moderator_token: &str, meeting: NewMeeting) -> Result<serde_json::Value, SignalError> {
    let ws_url = websocket_url(url);
    let mut ws = crate::ws_driver::open(ws_url.as_str()).await.map_err(|message| SignalError::Connect { url: ws_url.clone(), message })?;
    let steps = [
        ClientMsg::Hello { protocol: PROTOCOL_VERSION },
        ClientMsg::AuthModerator { token: Secret::new(moderator_token) },
        ClientMsg::CreateMeeting {
            title: meeting.title,
            starts_at_unix: meeting.starts_at_unix,
            duration_min: meeting.duration_min,
            lobby: meeting.lobby,
        },
    ];
    let exchange = async {
        for step in steps {
            let text = serde_json::to_string(&step).map_err(|e| SignalError::Protocol(e.to_string()))?;
            ws.send(Message::text(text)).await.map_err(|e| SignalError::Connect { url: ws_url.clone(), message: e.to_string() })?;
            loop {
                let msg = match ws.next().await {
                    Some(Ok(Message::Text(t))) => parse_server(t.as_str()).map_err(|e| SignalError::Protocol(e.to_string()))?,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(SignalError::Connect { url: ws_url.clone(), message: e.to_string() }),
                    None => return Err(SignalError::Closed),
                };
                match msg {
                    ServerMsg::Welcome { .. } | ServerMsg::Authenticated { .. } => break,
                    created @ ServerMsg::MeetingCreated { .. } => {
                        let _ = ws.close(None).await;
                        return serde_json::to_value(&created).map_err(|e| SignalError::Protocol(e.to_string()));
                    }
                    ServerMsg::Error { message, .. } => return Err(SignalError::Server(format!("room server: {message}"))),
                    _ => {}
                }
            }
        }
        Err(SignalError::Protocol("no meeting_created answer".into()))
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .map_err(|_| SignalError::Protocol("no answer within 10 s".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> BlendeMachine {
        BlendeMachine::new(JoinOptions {
            room: Some("k7dm3xqa9fhp".into()),
            password: Some("pw".into()),
            display_name: "Ada".into(),
            moderator_token: None,
            resume: None,
        })
    }

    fn sent(m: &mut BlendeMachine) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| m.poll_transmit()).map(|t| serde_json::from_str(&t).expect("json")).collect()
    }

    fn events(m: &mut BlendeMachine) -> Vec<SignalEvent> {
        std::iter::from_fn(|| m.poll_event()).collect()
    }

    fn info(id: u64, name: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "display_name": name, "role": "participant", "presenter": false, "camera": true, "microphone": true, "sharing": false})
    }

    fn participants(list: &[serde_json::Value]) -> String {
        serde_json::json!({"type": "participants", "meeting_id": "k7dm3xqa9fhp", "locked": false, "participants": list, "waiting": []})
            .to_string()
    }

    #[test]
    fn admission_names_the_resume_token_and_a_reconnect_resumes_or_falls_back_to_joining() {
        let mut m = machine();
        sent(&mut m);
        m.handle_message(r#"{"type":"welcome","protocol":1,"max_message_bytes":65536}"#).expect("welcome");
        sent(&mut m);
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7,"resume":"ab12"}"#)
            .expect("lobby");
        let ev = events(&mut m);
        assert_eq!(ev[0], SignalEvent::Session { resume: "ab12".into() }, "{ev:?}");
        // An offer to someone who just left is refused by the server: a race, not news.
        m.handle_message(
            r#"{"type":"error","code":"unknown_participant","message":"no such admitted participant in this meeting","request":"offer","retry_after_ms":null}"#,
        )
        .expect("error");
        assert!(events(&mut m).is_empty());
        m.handle_message(
            r#"{"type":"error","code":"unknown_participant","message":"no such participant","request":"remove","retry_after_ms":null}"#,
        )
        .expect("error");
        assert!(matches!(events(&mut m).as_slice(), [SignalEvent::Refused { .. }]), "a moderator's action still hears it");

        // A reconnect with the token: `resume` instead of `join`.
        let options = JoinOptions { resume: Some("ab12".into()), ..m.options.clone() };
        let mut back = BlendeMachine::new(options);
        sent(&mut back);
        back.handle_message(r#"{"type":"welcome","protocol":1,"max_message_bytes":65536}"#).expect("welcome");
        let msgs = sent(&mut back);
        assert_eq!((msgs[0]["type"].as_str(), msgs[0]["token"].as_str()), (Some("resume"), Some("ab12")), "{msgs:?}");
        // Refused (the seat was not kept): a join with the password, no error for the user.
        back.handle_message(
            r#"{"type":"error","code":"join_refused","message":"this session cannot be resumed","request":"resume","retry_after_ms":null}"#,
        )
        .expect("error");
        assert!(events(&mut back).is_empty());
        let msgs = sent(&mut back);
        assert_eq!((msgs[0]["type"].as_str(), msgs[0]["password"].as_str()), (Some("join"), Some("pw")), "{msgs:?}");
        // A refused join after that ends the attempt as before.
        back.handle_message(
            r#"{"type":"error","code":"join_refused","message":"meeting ID or password wrong","request":"join","retry_after_ms":null}"#,
        )
        .expect("error");
        assert!(matches!(events(&mut back).as_slice(), [SignalEvent::Error { fatal: true, .. }]));

        // The meeting ended meanwhile: no join, the end.
        let mut ended = BlendeMachine::new(JoinOptions { resume: Some("ab12".into()), ..m.options.clone() });
        ended.handle_message(r#"{"type":"welcome","protocol":1,"max_message_bytes":65536}"#).expect("welcome");
        sent(&mut ended);
        ended
            .handle_message(
                r#"{"type":"error","code":"meeting_ended","message":"the meeting has ended","request":"resume","retry_after_ms":null}"#,
            )
            .expect("error");
        assert!(sent(&mut ended).is_empty());
        assert!(matches!(events(&mut ended).as_slice(), [SignalEvent::Error { fatal: true, .. }]));
    }

    #[test]
    fn hello_then_join_then_mesh_offers_to_everyone_present() {
        let mut m = machine();
        assert_eq!(sent(&mut m)[0]["type"], "hello");
        m.handle_message(r#"{"type":"welcome","protocol":1,"max_message_bytes":65536}"#).expect("welcome");
        let join = sent(&mut m);
        assert_eq!(join[0]["type"], "join");
        assert_eq!(join[0]["password"], "pw");
        m.handle_message(r#"{"type":"lobby","state":"waiting","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("lobby");
        assert_eq!(events(&mut m), vec![SignalEvent::Lobby { state: LobbyState::Waiting, participant_id: "7".into() }]);
        // While waiting, lists of others do not let us in.
        m.handle_message(&participants(&[info(3, "Bob")])).expect("list");
        assert!(events(&mut m).is_empty());
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("admitted");
        m.handle_message(&participants(&[info(3, "Bob"), info(7, "Ada")])).expect("list");
        let ev = events(&mut m);
        assert!(ev.contains(&SignalEvent::Joined {
            participant_id: "7".into(),
            participants: vec![Participant { id: "3".into(), display: Some("Bob".into()) }]
        }));
        assert!(ev.contains(&SignalEvent::PublishTo { peer: "3".into() }));
        // Someone new: joined + offer; someone gone: left.
        m.handle_message(&participants(&[info(7, "Ada"), info(9, "Cem")])).expect("list");
        let ev = events(&mut m);
        assert!(ev.contains(&SignalEvent::ParticipantJoined(Participant { id: "9".into(), display: Some("Cem".into()) })));
        assert!(ev.contains(&SignalEvent::PublishTo { peer: "9".into() }));
        assert!(ev.contains(&SignalEvent::ParticipantLeft { id: "3".into() }));
        // Offers in are the others' media; our offers and answers go to one participant.
        m.handle_message(r#"{"type":"offer","from":9,"sdp":"v=0"}"#).expect("offer");
        assert_eq!(events(&mut m), vec![SignalEvent::SubscriptionOffer { feed: "9".into(), sdp: "v=0".into() }]);
        m.handle_command(SignalCommand::AnswerSubscription { feed: "9".into(), sdp: "v=0 a".into() });
        m.handle_command(SignalCommand::PublishTo { peer: "9".into(), sdp: "v=0 o".into() });
        let out = sent(&mut m);
        assert_eq!((out[0]["type"].as_str(), out[0]["to"].as_u64()), (Some("answer"), Some(9)));
        assert_eq!((out[1]["type"].as_str(), out[1]["to"].as_u64()), (Some("offer"), Some(9)));
        m.handle_message(r#"{"type":"answer","from":9,"sdp":"v=0 b"}"#).expect("answer");
        assert_eq!(events(&mut m), vec![SignalEvent::PeerAnswer { peer: "9".into(), sdp: "v=0 b".into() }]);
    }

    #[test]
    fn refusals_before_admission_are_fatal_and_malformed_messages_change_nothing() {
        let mut m = machine();
        assert!(m.handle_message("{not json").is_err());
        assert!(m.handle_message(r#"{"type":"offer","from":"x"}"#).is_err());
        assert!(events(&mut m).is_empty());
        m.handle_message(r#"{"type":"error","code":"join_refused","message":"unknown meeting or wrong password","request":"join","retry_after_ms":null}"#).expect("error");
        assert_eq!(
            events(&mut m),
            vec![SignalEvent::Error { message: "room server: unknown meeting or wrong password".into(), fatal: true }]
        );
        assert!(m.is_closed());
    }

    #[test]
    fn ice_servers_are_handed_to_the_engine_turn_only() {
        let mut m = machine();
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("admitted");
        let _ = events(&mut m);
        m.handle_message(
            r#"{"type":"ice_servers","servers":[
                {"urls":["turn:127.0.0.1:3478?transport=udp","stun:stun.example.org"],"username":"1700000600:p7","credential":"c3Ry","ttl_s":600},
                {"urls":["stun:only.example.org"],"username":"x","credential":"y","ttl_s":600}]}"#,
        )
        .expect("ice_servers");
        let ev = events(&mut m);
        assert_eq!(
            ev,
            vec![SignalEvent::IceServers(vec![TurnCredentials {
                urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
                username: "1700000600:p7".into(),
                credential: "c3Ry".into(),
                ttl_s: 600,
            }])]
        );
        // The credential never shows in debug output (logs).
        assert!(!format!("{ev:?}").contains("c3Ry"));
        // An empty list is passed on too: it withdraws earlier servers.
        m.handle_message(r#"{"type":"ice_servers","servers":[]}"#).expect("empty");
        assert_eq!(events(&mut m), vec![SignalEvent::IceServers(vec![])]);
        // A malformed list changes nothing.
        assert!(m.handle_message(r#"{"type":"ice_servers","servers":[{"urls":"turn:x"}]}"#).is_err());
        assert!(events(&mut m).is_empty());
        assert!(!m.is_closed());
    }

    #[test]
    fn hands_are_reported_on_change_ours_too_and_a_raise_goes_out_as_our_own() {
        let mut m = machine();
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("admitted");
        // A server that knows no hands (no `hand` field): nobody's is up, nothing reported.
        m.handle_message(&participants(&[info(3, "Bob"), info(7, "Ada")])).expect("list");
        assert!(!events(&mut m).iter().any(|e| matches!(e, SignalEvent::Hand { .. })));
        let up = |id: u64, name: &str, hand: bool| {
            let mut v = info(id, name);
            v["hand"] = serde_json::json!(hand);
            v
        };
        m.handle_message(&participants(&[up(3, "Bob", true), up(7, "Ada", false)])).expect("Bob's hand");
        assert_eq!(events(&mut m), vec![SignalEvent::Hand { participant: "3".into(), raised: true }]);
        // The same list again says nothing new.
        m.handle_message(&participants(&[up(3, "Bob", true), up(7, "Ada", false)])).expect("again");
        assert!(events(&mut m).is_empty());
        // Ours, raised by us and lowered by a moderator: both reported.
        let _ = sent(&mut m);
        m.handle_command(SignalCommand::Room(RoomAction::RaiseHand(true)));
        assert_eq!(sent(&mut m), vec![serde_json::json!({"type": "raise_hand", "raised": true})]);
        m.handle_message(&participants(&[up(3, "Bob", true), up(7, "Ada", true)])).expect("ours up");
        assert_eq!(events(&mut m), vec![SignalEvent::Hand { participant: "7".into(), raised: true }]);
        m.handle_message(&participants(&[up(3, "Bob", true), up(7, "Ada", false)])).expect("ours lowered");
        assert_eq!(events(&mut m), vec![SignalEvent::Hand { participant: "7".into(), raised: false }]);
        // A moderator's lowering names its participant; a name that is no id is refused here.
        m.handle_command(SignalCommand::Room(RoomAction::LowerHand("3".into())));
        assert_eq!(sent(&mut m), vec![serde_json::json!({"type": "lower_hand", "participant": 3})]);
        m.handle_command(SignalCommand::Room(RoomAction::LowerHand("Bob".into())));
        assert!(sent(&mut m).is_empty());
        assert!(matches!(events(&mut m).as_slice(), [SignalEvent::Error { fatal: false, .. }]));
    }

    #[test]
    fn janus_message_moves_the_meeting_and_stops_mesh_events() {
        let mut m = machine();
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("admitted");
        let _ = events(&mut m);
        let janus = r#"{"type":"janus","url":"janus+ws://127.0.0.1:8188/","room":4711,"pin":"p1n","token":"t0k","feed":7,"screen_feed":8}"#;
        m.handle_message(janus).expect("janus");
        let ev = events(&mut m);
        assert_eq!(
            ev,
            vec![SignalEvent::MovedToJanus(JanusRoom {
                url: "janus+ws://127.0.0.1:8188/".into(),
                room: 4711,
                pin: "p1n".into(),
                token: "t0k".into(),
                feed: 7,
                screen_feed: 8
            })]
        );
        let shown = format!("{ev:?}");
        assert!(!shown.contains("p1n") && !shown.contains("t0k"), "secrets in debug output: {shown}");
        // A repeated message changes nothing.
        m.handle_message(janus).expect("janus again");
        assert!(events(&mut m).is_empty());
        // The participant list now only gives roles and the members to keep a direct data
        // connection with: no Joined, no PublishTo, no joined/left.
        m.handle_message(&participants(&[info(3, "Bob"), info(7, "Ada")])).expect("list");
        assert_eq!(
            events(&mut m),
            vec![
                // Our own role too (the call needs it: documents to everyone are a presenter's).
                SignalEvent::Role { participant: "7".into(), role: Role::Participant },
                SignalEvent::DirectPeer { participant: "3".into(), present: true },
                SignalEvent::Role { participant: "3".into(), role: Role::Participant },
                SignalEvent::Devices { participant: "3".into(), camera: true, microphone: true, sharing: false }
            ]
        );
        // Late mesh media signalling is dropped; the data connection's goes through.
        m.handle_message(r#"{"type":"offer","from":3,"sdp":"v=0"}"#).expect("offer");
        m.handle_message(r#"{"type":"answer","from":3,"sdp":"v=0"}"#).expect("answer");
        assert!(events(&mut m).is_empty());
        m.handle_message(r#"{"type":"offer","from":3,"sdp":"v=0 data","stream":"data"}"#).expect("data offer");
        assert_eq!(events(&mut m), vec![SignalEvent::SubscriptionOffer { feed: "3/data".into(), sdp: "v=0 data".into() }]);
        m.handle_command(SignalCommand::AnswerSubscription { feed: "3/data".into(), sdp: "v=0 a".into() });
        let sent: Vec<String> = std::iter::from_fn(|| m.poll_transmit()).collect();
        assert!(sent.iter().any(|t| t.contains(r#""stream":"data""#) && t.contains(r#""type":"answer""#)), "{sent:?}");
        m.handle_message(&participants(&[info(7, "Ada")])).expect("list");
        assert_eq!(events(&mut m), vec![SignalEvent::DirectPeer { participant: "3".into(), present: false }]);
        // Removal and end still close the session.
        m.handle_message(r#"{"type":"removed"}"#).expect("removed");
        assert_eq!(events(&mut m), vec![SignalEvent::Kicked]);
    }

    #[test]
    fn a_share_goes_on_its_own_stream_and_its_refusal_names_the_request() {
        let mut m = machine();
        m.handle_message(r#"{"type":"lobby","state":"admitted","meeting_id":"k7dm3xqa9fhp","participant_id":7}"#).expect("admitted");
        let _ = events(&mut m);
        let _ = std::iter::from_fn(|| m.poll_transmit()).count();
        // Refused by role: the engine learns which request, and that the role was the reason.
        m.handle_message(
            r#"{"type":"error","code":"not_allowed","message":"your role may not do this","request":"share_start","retry_after_ms":null}"#,
        )
        .expect("error");
        assert_eq!(
            events(&mut m),
            vec![SignalEvent::Refused {
                request: "share_start".into(),
                not_allowed: true,
                message: "room server: your role may not do this".into()
            }]
        );
        assert!(!m.is_closed(), "a refused share does not end the call");
        // Accepted: our own share is `done`, another's is `share`.
        m.handle_message(r#"{"type":"done","request":"share_start"}"#).expect("done");
        m.handle_message(r#"{"type":"share","from":3,"active":false}"#).expect("share");
        assert_eq!(
            events(&mut m),
            vec![
                SignalEvent::Share { participant: "7".into(), active: true },
                SignalEvent::Share { participant: "3".into(), active: false }
            ]
        );
        // The share's offers, answers and candidates travel as stream `screen`, as feed `ID/screen`.
        m.handle_command(SignalCommand::PublishTo { peer: "3/screen".into(), sdp: "v=0".into() });
        let sent = m.poll_transmit().expect("offer");
        assert!(sent.contains(r#""stream":"screen""#) && sent.contains(r#""to":3"#), "{sent}");
        m.handle_command(SignalCommand::PublishTo { peer: "3".into(), sdp: "v=0".into() });
        assert!(!m.poll_transmit().expect("offer").contains("stream"), "camera offers keep the old wire format");
        m.handle_message(r#"{"type":"offer","from":3,"sdp":"v=0","stream":"screen"}"#).expect("offer");
        m.handle_message(r#"{"type":"answer","from":3,"sdp":"v=0","stream":"screen"}"#).expect("answer");
        assert_eq!(
            events(&mut m),
            vec![
                SignalEvent::SubscriptionOffer { feed: "3/screen".into(), sdp: "v=0".into() },
                SignalEvent::PeerAnswer { peer: "3/screen".into(), sdp: "v=0".into() }
            ]
        );
        m.handle_command(SignalCommand::AnswerSubscription { feed: "3/screen".into(), sdp: "v=0".into() });
        assert!(m.poll_transmit().expect("answer").contains(r#""stream":"screen""#));
    }

    #[test]
    fn removal_and_end_close_the_session() {
        let mut m = machine();
        m.handle_message(r#"{"type":"removed"}"#).expect("removed");
        assert_eq!(events(&mut m), vec![SignalEvent::Kicked]);
        let mut m = machine();
        m.handle_message(r#"{"type":"ended"}"#).expect("ended");
        assert_eq!(events(&mut m), vec![SignalEvent::RoomDestroyed]);
    }
}
