//! The [`Call`] machine. Method groups as in quinn-proto: construction and getters, `handle_*`
//! (inputs), `poll_*` (outputs), then the private steps.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use blende_media::DeviceKind;
use blende_policy::{ServerKind, ServerUrl};
use blende_signal::blende::RoomAction;
use blende_signal::janus::JanusAccess;
use blende_signal::{JanusRoom, JoinOptions, LobbyState, Participant, SignalCommand, SignalEvent, TurnCredentials};

use blende_p2p::bus::{self as p2p_bus, Bus};
use blende_signal::Role;

use crate::bus::JanusBus;

use crate::direct::{Direct, Out};
use crate::event::{CallEvent, ConnState, End, Link, Refusal, ShareState};
use crate::mesh::MeshBook;
use crate::reconnect::{Backoff, IceDue, IceRetries};
use crate::{
    Action, CallCommand, CallConfig, PeerEvent, PeerId, Purpose, RESUBSCRIBE_AFTER, Route, ShareReport, ShareSource, TransferReport,
};

/// A feed we want to receive.
#[derive(Debug)]
struct Feed {
    display: Option<String>,
    /// When we last asked for it.
    asked_at: Instant,
    /// The server offered it (or asked for our offer): no more asking.
    offered: bool,
    subscriber: Option<PeerId>,
}

/// Our share, from the request to the end.
#[derive(Debug)]
enum Share {
    None,
    /// Asked the room server; waiting for its answer.
    Requested(ShareSource),
    /// Frames flow: `peer` is its own publisher (Janus, WHIP) or `None` (mesh connections).
    Running {
        peer: Option<PeerId>,
        feed: Option<String>,
    },
    /// The capture runs behind its gate, but the share's session was lost: a new publisher
    /// and session follow when the server can be reached again (nothing is sent meanwhile).
    Suspended,
}

/// Where media signalling goes and what kind of room it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// Janus, WHIP, WHEP: one server, subscriptions per feed.
    Server,
    /// A Blende room: a mesh relayed by the room server.
    Mesh,
    /// A Blende room moved to Janus: media through [`Route::Janus`].
    MovedToJanus,
}

/// One participant's call; see the crate documentation for how it is driven.
#[derive(Debug)]
pub struct Call {
    config: CallConfig,
    topology: Topology,
    ended: bool,
    me: Option<String>,
    /// Mesh participants (id → display), for offers of our share to each of them.
    others: BTreeMap<String, Option<String>>,
    /// Participants who left: their late signalling (an offer still in flight) opens nothing
    /// until they join again.
    departed: HashSet<String>,
    next_peer: u64,
    peers: HashMap<PeerId, Purpose>,
    publisher: Option<PeerId>,
    mesh: MeshBook,
    feeds: BTreeMap<String, Feed>,
    turn: Vec<TurnCredentials>,
    janus: Option<JanusRoom>,
    share: Share,
    camera_on: bool,
    mic_on: bool,
    /// Our role as the room server last said.
    role: Option<Role>,
    /// Chat, documents and identity codes over the mesh's data channels.
    direct: Direct,
    /// A meeting on Janus: the direct data connections we answered, by member.
    direct_answers: BTreeMap<String, PeerId>,
    /// A plain Janus room: the relay on which Blende clients find each other.
    bus: JanusBus,
    /// Signalling to the server we joined is lost: the attempts to come back.
    reconnect: Option<Backoff>,
    /// No session on [`Route::Main`] (lost, and the next not connected yet): nothing is sent.
    offline: bool,
    /// Waiting in a Blende room's lobby (a lost session comes back there).
    waiting: bool,
    /// What the server said a reconnect names to replace our session, and the share's.
    resume: Option<String>,
    share_resume: Option<String>,
    /// The share's session was lost: its attempts to come back.
    share_backoff: Option<Backoff>,
    /// Connections whose ICE failed while signalling stayed up, by link.
    ice: IceRetries,
    /// Our publisher while its ICE restart is being made.
    restarting: BTreeSet<PeerId>,
    actions: VecDeque<Action>,
    events: VecDeque<CallEvent>,
}

/// The mesh route and feed id of a participant's share.
/// The link a connection serves, which outlives it (see [`IceRetries`]).
fn retry_key(purpose: &Purpose) -> String {
    match purpose {
        Purpose::Publisher => "publisher".into(),
        Purpose::Share => "share".into(),
        Purpose::MeshPublisher { to } => format!("mesh:{to}"),
        Purpose::MeshShare { to } => format!("mesh-share:{to}"),
        Purpose::Subscriber { feed, .. } => format!("feed:{feed}"),
        Purpose::Direct { with } => format!("data:{with}"),
    }
}

fn screen_route(participant: &str) -> String {
    format!("{participant}/screen")
}

impl Call {
    // ---- construction and getters ----

    /// A call about to start: the driver has connected [`Route::Main`]. Publishers to a
    /// server are opened at once; mesh ones when the room server says to whom.
    #[must_use]
    pub fn new(mut config: CallConfig, _now: Instant) -> Self {
        let mut events = VecDeque::new();
        if config.url.kind == ServerKind::Whep && (config.camera || config.mic) {
            // WHEP only receives: no device is opened for nothing.
            events.push_back(CallEvent::Error { message: "WHEP only receives: camera and microphone stay off".into(), fatal: false });
            config.camera = false;
            config.mic = false;
        }
        let topology = if config.url.kind == ServerKind::Blende { Topology::Mesh } else { Topology::Server };
        let mut call = Call {
            topology,
            ended: false,
            me: None,
            others: BTreeMap::new(),
            departed: HashSet::new(),
            next_peer: 0,
            peers: HashMap::new(),
            publisher: None,
            mesh: MeshBook::default(),
            feeds: BTreeMap::new(),
            turn: Vec::new(),
            janus: None,
            share: Share::None,
            camera_on: config.camera,
            mic_on: config.mic,
            role: None,
            direct: Direct::new(config.documents, config.secret, config.url.kind == ServerKind::Blende),
            direct_answers: BTreeMap::new(),
            bus: JanusBus::default(),
            reconnect: None,
            offline: false,
            waiting: false,
            resume: None,
            share_resume: None,
            share_backoff: None,
            ice: IceRetries::default(),
            restarting: BTreeSet::new(),
            actions: VecDeque::new(),
            events,
            config,
        };
        if topology == Topology::Server && call.publishes() {
            call.open_publisher();
        }
        call
    }

    /// Whether we send camera or microphone at all (a participant with `none` for both only
    /// receives).
    #[must_use]
    pub fn publishes(&self) -> bool {
        self.config.camera || self.config.mic
    }

    /// Whether `purpose`'s PeerConnection carries a data channel to the server as well: in a
    /// plain Janus room our publisher and every subscription do, as the relay on which Blende
    /// clients find each other (never for chat or documents themselves).
    #[must_use]
    pub fn relays_on_server(&self, purpose: &Purpose) -> bool {
        self.is_plain_janus() && matches!(purpose, Purpose::Publisher | Purpose::Subscriber { .. })
    }

    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether our share is requested or running.
    #[must_use]
    pub fn is_sharing(&self) -> bool {
        !matches!(self.share, Share::None)
    }

    /// What a PeerConnection carries (for the driver's own bookkeeping of media sinks).
    #[must_use]
    pub fn purpose(&self, peer: PeerId) -> Option<&Purpose> {
        self.peers.get(&peer)
    }

    // ---- inputs ----

    pub fn handle_command(&mut self, command: CallCommand, now: Instant) {
        if self.ended {
            return;
        }
        match command {
            CallCommand::Room(action) => self.signal(Route::Main, SignalCommand::Room(action)),
            CallCommand::ShareStart(source) => self.start_share(source, now),
            CallCommand::ShareStop => self.stop_share(None),
            CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false } => self.stop_share(None),
            CallCommand::Switch { kind: DeviceKind::ScreenShare, on: true } => {
                self.error("choose a window to share (`share window ID`)");
            }
            CallCommand::Switch { kind, on } => self.switch(kind, on),
            CallCommand::AllOff => {
                self.actions.push_back(Action::AllDevicesOff);
                self.stop_share(None);
                self.camera_on = false;
                self.mic_on = false;
                self.send_device_state();
            }
            CallCommand::Stats => self.actions.push_back(Action::ReportStats),
            CallCommand::Chat { to, text } => {
                let (direct, mut out) = self.direct();
                direct.chat(to.as_deref(), &text, &mut out);
            }
            CallCommand::SendFile { path, to } => {
                if to.is_none() && self.config.url.kind == ServerKind::Blende && self.role != Some(Role::Presenter) {
                    self.error("a document to everyone needs the presenter role; offer it to one person");
                    return;
                }
                let (direct, mut out) = self.direct();
                direct.open(path, to, &mut out);
            }
            CallCommand::AcceptDocument { transfer, folder } => {
                let (direct, mut out) = self.direct();
                direct.accept(transfer, folder, &mut out);
            }
            CallCommand::DeclineDocument { transfer } => {
                let (direct, mut out) = self.direct();
                direct.decline(transfer, &mut out);
            }
            CallCommand::CancelDocument { transfer } => {
                let (direct, mut out) = self.direct();
                direct.cancel(transfer, &mut out);
            }
            CallCommand::IdentityChecked { participant, checked } => {
                let (direct, mut out) = self.direct();
                direct.identity_checked(&participant, checked, &mut out);
            }
            CallCommand::Leave => self.leave("leave"),
            CallCommand::InputClosed => self.leave("end of input"),
        }
    }

    /// An event of the signalling session on `route`.
    pub fn handle_signal(&mut self, route: Route, event: SignalEvent, now: Instant) {
        if self.ended {
            return;
        }
        match route {
            Route::Share => self.handle_share_signal(event, now),
            Route::Main | Route::Janus => self.handle_media_signal(route, event, now),
        }
    }

    /// The signalling session on `route` is gone (its channel closed).
    pub fn handle_signal_closed(&mut self, route: Route, now: Instant) {
        match route {
            Route::Main => self.handle_signal(route, SignalEvent::Closed { reason: "signalling ended".into() }, now),
            Route::Janus => self.fail("the connection to the meeting's Janus server ended".into()),
            Route::Share => self.handle_share_signal(SignalEvent::Closed { reason: "signalling ended".into() }, now),
        }
    }

    /// An event of a PeerConnection made for [`Action::OpenPeer`] or [`Action::StartShare`].
    pub fn handle_peer(&mut self, peer: PeerId, event: PeerEvent, now: Instant) {
        if self.ended {
            return;
        }
        let Some(purpose) = self.peers.get(&peer).cloned() else { return };
        if let Some(participant) = self.direct_participant(&purpose) {
            let (direct, mut out) = self.direct();
            match event {
                PeerEvent::DataOpen => return direct.link_open(&participant, peer, &mut out),
                PeerEvent::DataClosed => return direct.link_closed(peer, &mut out),
                PeerEvent::Fingerprints { ours, theirs } => return direct.fingerprints(&participant, ours, theirs, &mut out),
                PeerEvent::Data(message) => return direct.data(&participant, peer, &message, now, &mut out),
                _ => {}
            }
        }
        match event {
            PeerEvent::LocalDescription(sdp) => self.local_description(peer, purpose, sdp),
            PeerEvent::Failed(why) => self.peer_failed(peer, &purpose, &why, now),
            PeerEvent::State { state, candidates } => self.peer_state(peer, purpose, state, candidates, now),
            PeerEvent::TrackStarted(kind) => {
                if let Purpose::Subscriber { feed, .. } = purpose {
                    self.events.push_back(CallEvent::Track { feed, kind });
                }
            }
            PeerEvent::TrackEnded => {
                if let Purpose::Subscriber { feed, .. } = purpose {
                    self.events.push_back(CallEvent::TrackEnded { feed });
                }
            }
            PeerEvent::DataOpen | PeerEvent::DataClosed | PeerEvent::Data(_) if self.is_plain_janus() => {
                self.bus_event(peer, &purpose, &event, now);
            }
            // A data channel on a connection to a server (Janus offers one): not a person.
            PeerEvent::DataOpen | PeerEvent::DataClosed | PeerEvent::Fingerprints { .. } | PeerEvent::Data(_) => {}
        }
    }

    /// What the driver did about a document ([`Action::PrepareDocument`],
    /// [`Action::StreamDocument`], [`Action::SaveDocument`]).
    pub fn handle_transfer(&mut self, report: TransferReport, now: Instant) {
        let (direct, mut out) = self.direct();
        match report {
            TransferReport::Sent { transfer, bytes } => direct.sent_progress(transfer, bytes, now, &mut out),
            TransferReport::Opened { doc, name, size, sha256 } => direct.offer(doc, &name, size, sha256, &mut out),
            TransferReport::OpenFailed { doc, reason } => direct.open_failed(doc, &reason, &mut out),
            TransferReport::Prepared(transfer) => direct.prepared(transfer, &mut out),
            TransferReport::Streamed(transfer) => direct.streamed(transfer, &mut out),
            TransferReport::Saved { transfer, path } => direct.saved(transfer, path, &mut out),
            TransferReport::Failed { transfer, reason } => direct.local_failure(transfer, reason, &mut out),
        }
    }

    /// How the driver's [`Action::Reconnect`] went: a new session on [`Route::Main`] (its
    /// events follow there), or why not.
    pub fn handle_reconnect(&mut self, result: Result<(), String>, now: Instant) {
        if self.ended || self.reconnect.is_none() {
            return;
        }
        match result {
            Ok(()) => {
                self.offline = false;
                if self.topology == Topology::Server && self.publishes() {
                    self.open_publisher();
                }
            }
            Err(reason) => self.reconnect_failed(&reason, now),
        }
    }

    /// What the share's capture reported.
    pub fn handle_share(&mut self, report: ShareReport, _now: Instant) {
        if self.ended || !matches!(self.share, Share::Running { .. } | Share::Suspended) {
            return;
        }
        match report {
            ShareReport::Started => self.share_started(),
            ShareReport::Refused(reason) => {
                self.share_ended_by_capture();
                self.events.push_back(CallEvent::Share(ShareState::Refused { by: Refusal::Policy, reason }));
            }
            ShareReport::Failed(why) => {
                self.share_ended_by_capture();
                self.error(&format!("sharing failed: {why}"));
            }
            ShareReport::Guard(ev) => self.events.push_back(CallEvent::Share(ShareState::Guard(ev))),
            ShareReport::Ended => {
                self.share_ended_by_capture();
                self.events.push_back(CallEvent::Share(ShareState::Ended));
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        let (direct, mut out) = self.direct();
        direct.handle_timeout(now, &mut out);
        self.reconnect_timeout(now);
        for (link, due) in self.ice.take_due(now) {
            let serving: Vec<(PeerId, Purpose)> = match due {
                IceDue::Failed(peer) => self.peers.get(&peer).map(|p| (peer, p.clone())).into_iter().collect(),
                IceDue::Hung => self.peers.iter().filter(|(_, p)| retry_key(p) == link).map(|(id, p)| (*id, p.clone())).collect(),
            };
            let mut restarted = false;
            for (peer, purpose) in serving {
                restarted |= self.restart_link(peer, &purpose, now);
            }
            if !restarted {
                // Nothing of ours serves it any more (the participant left, the other side
                // offers, a share's session starts on its own back-off).
                self.ice.connected(&link);
            }
        }
        self.bus_timeout(now);
        // "No such feed" when we asked too early: ask again.
        let route = self.media_route();
        let due: Vec<String> = self
            .feeds
            .iter()
            .filter(|(_, f)| !f.offered && now.saturating_duration_since(f.asked_at) >= RESUBSCRIBE_AFTER)
            .map(|(id, _)| id.clone())
            .collect();
        for feed in due {
            if let Some(f) = self.feeds.get_mut(&feed) {
                f.asked_at = now;
            }
            self.signal(route, SignalCommand::Subscribe { feed });
        }
    }

    // ---- outputs ----

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// When [`Call::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let progress = self.direct.poll_timeout();
        let backoffs = [&self.reconnect, &self.share_backoff].into_iter().filter_map(|b| b.as_ref().and_then(Backoff::next));
        let retries = backoffs.chain(self.ice.next());
        if self.topology == Topology::Mesh {
            return progress.into_iter().chain(retries).min();
        }
        let resubscribe = self.feeds.values().filter(|f| !f.offered).map(|f| f.asked_at + RESUBSCRIBE_AFTER);
        resubscribe.chain(progress).chain(self.bus.next_hello()).chain(retries).min()
    }

    // ---- commands ----

    fn switch(&mut self, kind: DeviceKind, on: bool) {
        let available = match kind {
            DeviceKind::Camera => self.config.camera,
            _ => self.config.mic,
        };
        if on && !available {
            let name = if kind == DeviceKind::Camera { "camera" } else { "mic" };
            self.error(&format!("{name} was started with `none`"));
            return;
        }
        self.actions.push_back(Action::SetDevice { kind, on });
        if kind == DeviceKind::Camera {
            self.camera_on = on;
        } else {
            self.mic_on = on;
        }
        self.send_device_state();
    }

    /// Tells a Blende room what our devices do (nobody else can say it for us).
    fn send_device_state(&mut self) {
        if self.config.url.kind == ServerKind::Blende && self.me.is_some() {
            let action = RoomAction::DeviceState { camera: self.camera_on, microphone: self.mic_on };
            self.signal(Route::Main, SignalCommand::Room(action));
        }
    }

    fn start_share(&mut self, source: ShareSource, _now: Instant) {
        if self.is_sharing() {
            self.error("already sharing; `share stop` first");
            return;
        }
        match (self.config.url.kind, self.topology) {
            (ServerKind::Whep, _) => {
                let reason = "WHEP only receives: nothing can be shared".to_owned();
                self.events.push_back(CallEvent::Share(ShareState::Refused { by: Refusal::Unsupported, reason }));
            }
            // A Blende room: the server decides by role; the capture opens once it accepts.
            (ServerKind::Blende, _) => {
                self.share = Share::Requested(source);
                // Before we are in (`--share-window`), the request waits for the admission.
                if self.me.is_some() {
                    self.signal(Route::Main, SignalCommand::Room(RoomAction::ShareStart));
                }
                self.events.push_back(CallEvent::Share(ShareState::Requested));
            }
            _ => self.open_share_capture(source),
        }
    }

    /// The capture opens (the policy decides) with its own publisher where the room has
    /// servers, or for mesh PeerConnections made once it runs.
    fn open_share_capture(&mut self, source: ShareSource) {
        let display = self.share_display();
        let peer = match self.topology {
            Topology::Mesh => None,
            Topology::Server | Topology::MovedToJanus => Some(self.new_peer(Purpose::Share)),
        };
        self.share = Share::Running { peer, feed: None };
        self.actions.push_back(Action::StartShare { source, display, peer });
    }

    /// The share's own signalling session: the server we joined, or the Janus room a Blende
    /// meeting moved to (with our access token, a feed id of Janus's choosing).
    fn share_session(&mut self) {
        let options = JoinOptions {
            display_name: self.share_display(),
            moderator_token: None,
            resume: self.share_resume.clone(),
            ..self.config.join.clone()
        };
        let connect = match &self.janus {
            Some(room) => match ServerUrl::parse(&room.url) {
                Ok(url) => Action::ConnectShare {
                    url,
                    options: JoinOptions { room: Some(room.room.to_string()), password: Some(room.pin.clone()), ..options },
                    access: Some(JanusAccess { token: Some(room.token.clone()), feed: Some(room.screen_feed) }),
                },
                Err(e) => {
                    self.error(&format!("sharing failed: {e}"));
                    return;
                }
            },
            None => Action::ConnectShare { url: self.config.url.clone(), options, access: None },
        };
        self.actions.push_back(connect);
    }

    fn share_display(&self) -> String {
        blende_room::protocol::screen_display(&self.config.join.display_name)
    }

    /// The capture runs: connect the share's own session, or offer the share to every mesh
    /// participant.
    fn share_started(&mut self) {
        self.events.push_back(CallEvent::Share(ShareState::Starting { display: self.share_display() }));
        if matches!(self.share, Share::Running { peer: Some(_), .. }) {
            self.share_session();
        } else {
            self.offer_mesh_share();
        }
    }

    /// Our running share to every mesh participant (later ones get it as they come).
    fn offer_mesh_share(&mut self) {
        let others: Vec<String> = self.others.keys().cloned().collect();
        for to in others {
            self.open_mesh_share(&to);
        }
        self.events.push_back(CallEvent::Share(ShareState::Published { feed: None }));
    }

    /// Stops our share (the caller closed its gate already): capture, PeerConnections, the
    /// share's session, and the room server's record of it.
    fn stop_share(&mut self, reason: Option<String>) {
        let was = std::mem::replace(&mut self.share, Share::None);
        self.share_backoff = None;
        match was {
            Share::None => return,
            Share::Requested(_) => {}
            Share::Running { .. } | Share::Suspended => self.tear_down_share(),
        }
        if self.config.url.kind == ServerKind::Blende {
            self.signal(Route::Main, SignalCommand::Room(RoomAction::ShareStop));
        }
        self.events.push_back(CallEvent::Share(ShareState::Stopped { reason }));
    }

    /// The capture itself ended the share (refused, failed, window closed).
    fn share_ended_by_capture(&mut self) {
        let was = std::mem::replace(&mut self.share, Share::None);
        self.share_backoff = None;
        if matches!(was, Share::Running { .. } | Share::Suspended) {
            self.tear_down_share();
            if self.config.url.kind == ServerKind::Blende {
                self.signal(Route::Main, SignalCommand::Room(RoomAction::ShareStop));
            }
        }
    }

    fn tear_down_share(&mut self) {
        self.actions.push_back(Action::StopShare);
        let share_peers: Vec<PeerId> =
            self.peers.iter().filter(|(_, p)| matches!(p, Purpose::Share | Purpose::MeshShare { .. })).map(|(id, _)| *id).collect();
        for peer in share_peers {
            if let Some(Purpose::MeshShare { to }) = self.peers.remove(&peer) {
                self.mesh.remove(&screen_route(&to));
            }
        }
    }

    fn leave(&mut self, reason: &str) {
        self.signal(Route::Main, SignalCommand::Leave);
        if self.janus.is_some() {
            self.signal(Route::Janus, SignalCommand::Leave);
        }
        self.end(End::Left(reason.to_owned()), Some(reason));
    }

    // ---- signalling ----

    fn handle_share_signal(&mut self, event: SignalEvent, now: Instant) {
        if let SignalEvent::Session { resume } = event {
            self.share_resume = Some(resume);
            return;
        }
        if matches!(event, SignalEvent::Closed { .. }) && self.can_reconnect() && matches!(self.share, Share::Running { peer: Some(_), .. })
        {
            return self.suspend_share(now);
        }
        let Share::Running { peer: Some(peer), feed } = &mut self.share else { return };
        let peer = *peer;
        let failure = match event {
            SignalEvent::Joined { participant_id, .. } => {
                *feed = Some(participant_id);
                None
            }
            SignalEvent::PublishAnswer { sdp } => {
                self.actions.push_back(Action::ApplyAnswer { peer, sdp });
                None
            }
            SignalEvent::PublishUp => {
                let feed = feed.clone();
                self.share_backoff = None;
                self.events.push_back(CallEvent::Share(ShareState::Published { feed }));
                None
            }
            SignalEvent::RemoteCandidate { feed: None, candidate, sdp_mid, sdp_mline_index } => {
                self.actions.push_back(Action::AddCandidate { peer, candidate, sdp_mid, sdp_mline_index });
                None
            }
            SignalEvent::Error { message, fatal: true } => Some(message),
            SignalEvent::Kicked | SignalEvent::RoomDestroyed => Some("the server ended the share".to_owned()),
            SignalEvent::Closed { reason } => Some(reason),
            _ => None,
        };
        if let Some(reason) = failure {
            self.stop_share(Some(reason));
        }
    }

    fn handle_media_signal(&mut self, route: Route, event: SignalEvent, now: Instant) {
        match event {
            SignalEvent::Session { resume } if route == Route::Main => self.resume = Some(resume),
            SignalEvent::Closed { reason } if route == Route::Main && self.can_reconnect() => self.lost(&reason, now),
            SignalEvent::Joined { participant_id, participants } => self.joined(route, participant_id, participants, now),
            SignalEvent::PublishAnswer { sdp } => {
                if let Some(peer) = self.publisher {
                    self.actions.push_back(Action::ApplyAnswer { peer, sdp });
                }
            }
            SignalEvent::PublishUp => self.events.push_back(CallEvent::Published),
            SignalEvent::ParticipantJoined(p) => self.participant_joined(route, p, now),
            SignalEvent::ParticipantLeft { id } => self.participant_left(&id),
            SignalEvent::SubscriptionOffer { feed, sdp } if feed.ends_with("/data") => self.direct_offer(&feed, sdp),
            SignalEvent::SubscriptionOffer { feed, sdp } => self.subscribe(feed, Some(sdp), now),
            SignalEvent::DirectPeer { participant, present } => self.direct_peer(&participant, present),
            SignalEvent::SubscriptionNeedsOffer { feed } => self.subscribe(feed, None, now),
            SignalEvent::SubscriptionAnswer { feed, sdp } => {
                if let Some(peer) = self.feeds.get(&feed).and_then(|f| f.subscriber) {
                    self.actions.push_back(Action::ApplyAnswer { peer, sdp });
                }
            }
            SignalEvent::SubscriptionUp { feed } => self.events.push_back(CallEvent::Subscribed { feed }),
            SignalEvent::PublishTo { peer } => {
                self.departed.remove(&peer);
                self.others.entry(peer.clone()).or_default();
                if self.publishes() {
                    self.open_mesh_publisher(&peer);
                }
                if matches!(self.share, Share::Running { peer: None, .. }) {
                    self.open_mesh_share(&peer);
                }
            }
            SignalEvent::PeerAnswer { peer, sdp } => {
                if let Some(pc) = self.mesh.answer(&peer) {
                    self.actions.push_back(Action::ApplyAnswer { peer: pc, sdp });
                }
            }
            SignalEvent::RemoteCandidate { feed, candidate, sdp_mid, sdp_mline_index } => {
                let peer = match &feed {
                    Some(f) => self.feeds.get(f).and_then(|f| f.subscriber),
                    None => self.publisher,
                };
                if let Some(peer) = peer {
                    self.actions.push_back(Action::AddCandidate { peer, candidate, sdp_mid, sdp_mline_index });
                }
            }
            SignalEvent::IceServers(servers) => self.ice_servers(servers),
            SignalEvent::MovedToJanus(room) => self.moved_to_janus(room),
            other => self.room_signal(other),
        }
    }

    /// What a Blende room says about the meeting rather than about media.
    fn room_signal(&mut self, event: SignalEvent) {
        match event {
            SignalEvent::Lobby { state, participant_id } => {
                self.waiting = state == LobbyState::Waiting;
                if state == LobbyState::Admitted {
                    self.admitted(participant_id);
                } else if self.waiting && self.reconnect.take().is_some() {
                    // Back in the lobby we waited in.
                    self.events.push_back(CallEvent::Reconnected);
                }
                self.events.push_back(CallEvent::Lobby { state });
            }
            SignalEvent::Waiting { participants } => self.events.push_back(CallEvent::Waiting { participants }),
            SignalEvent::Role { participant, role } => {
                if self.me.as_deref() == Some(participant.as_str()) {
                    self.role = Some(role);
                }
                self.events.push_back(CallEvent::Role { participant, role });
            }
            SignalEvent::Hand { participant, raised } => self.events.push_back(CallEvent::Hand { participant, raised }),
            SignalEvent::Devices { participant, camera, microphone, sharing } => {
                self.events.push_back(CallEvent::RemoteDevices { participant, camera, microphone, sharing });
            }
            SignalEvent::Share { participant, active } => self.share_signal(&participant, active),
            SignalEvent::Chat { enabled } => {
                let (direct, mut out) = self.direct();
                direct.set_chat(enabled, &mut out);
            }
            SignalEvent::DocumentOffered { participant, offer } => {
                let (direct, mut out) = self.direct();
                direct.confirmed(&participant, offer, &mut out);
            }
            SignalEvent::Refused { request, message, .. } if request == "document_offer" => {
                let (direct, mut out) = self.direct();
                direct.broadcast_refused(&message, &mut out);
            }
            SignalEvent::Refused { request, not_allowed, message } => {
                if request == "share_start" && matches!(self.share, Share::Suspended) {
                    // Back without the role it had (the seat was not kept): the share ends.
                    self.stop_share(Some(message));
                } else if request == "share_start" && matches!(self.share, Share::Requested(_)) {
                    self.share = Share::None;
                    let by = if not_allowed { Refusal::Role } else { Refusal::Server };
                    self.events.push_back(CallEvent::Share(ShareState::Refused { by, reason: message }));
                } else {
                    self.error(&message);
                }
            }
            SignalEvent::Kicked => self.end(End::Removed("kicked".into()), Some("kicked")),
            SignalEvent::RoomDestroyed => self.end(End::Removed("room destroyed".into()), Some("room destroyed")),
            SignalEvent::Error { message, fatal: true } => self.fail(message),
            SignalEvent::Error { message, fatal: false } => self.error(&message),
            SignalEvent::Closed { reason } => self.end(End::Left(reason.clone()), Some(&reason)),
            _ => {}
        }
    }

    /// The room server accepted or ended a share: ours starts its capture; another's ends
    /// its feed.
    fn share_signal(&mut self, participant: &str, active: bool) {
        if self.me.as_deref() == Some(participant) {
            match (&self.share, active) {
                (Share::Requested(source), true) => {
                    let source = *source;
                    self.open_share_capture(source);
                }
                (Share::Running { .. }, false) => self.stop_share(Some("the room server ended the share".into())),
                // Back after a reconnect: the server allowed the share again.
                (Share::Suspended, true) => {
                    self.share = Share::Running { peer: None, feed: None };
                    self.offer_mesh_share();
                }
                _ => {}
            }
        } else if !active {
            self.feed_ended(&screen_route(participant));
        }
    }

    fn joined(&mut self, route: Route, participant_id: String, participants: Vec<Participant>, now: Instant) {
        self.events.push_back(CallEvent::Joined { participant_id: participant_id.clone(), participants: participants.clone() });
        if route == Route::Main && self.reconnect.take().is_some() {
            self.events.push_back(CallEvent::Reconnected);
            // A mesh share is asked for again on admission (see `admitted`).
            if matches!(self.share, Share::Suspended) && self.topology != Topology::Mesh {
                self.share_backoff = Some(Backoff::new(now));
            }
        }
        if route == Route::Main {
            self.admitted(participant_id);
        }
        for p in participants {
            if self.is_own_share(&p) {
                continue;
            }
            self.want(route, p, now);
        }
    }

    /// We are in the meeting as `me` (a Blende room's admission may come without a `Joined`
    /// when the meeting moves to Janus at once): what waited for it goes out now.
    fn admitted(&mut self, me: String) {
        if self.me.is_some() {
            return;
        }
        self.me = Some(me);
        self.send_device_state();
        // A share asked for before we were in, or suspended by a lost session: the room server
        // decides (again, by the role a resume kept).
        if self.config.url.kind == ServerKind::Blende && matches!(self.share, Share::Requested(_) | Share::Suspended) {
            self.signal(Route::Main, SignalCommand::Room(RoomAction::ShareStart));
        }
    }

    fn participant_joined(&mut self, route: Route, p: Participant, now: Instant) {
        if self.is_own_share(&p) {
            return;
        }
        let on_janus = self.topology == Topology::MovedToJanus || self.is_plain_janus();
        if on_janus && let Some(f) = self.feeds.get_mut(&p.id) {
            // Janus announces a publisher again when it renegotiates (an ICE restart): the
            // subscription we have stays, and a second one would leave it orphaned.
            if p.display.is_some() {
                f.display = p.display;
            }
            return;
        }
        self.events.push_back(CallEvent::ParticipantJoined(p.clone()));
        self.want(route, p, now);
    }

    /// Ask for `p`'s media (a mesh sends it on its own: the adapter drops the request).
    fn want(&mut self, route: Route, p: Participant, now: Instant) {
        self.departed.remove(&p.id);
        if self.topology == Topology::Mesh {
            self.others.insert(p.id.clone(), p.display.clone());
        }
        self.feeds.insert(p.id.clone(), Feed { display: p.display, asked_at: now, offered: false, subscriber: None });
        self.signal(route, SignalCommand::Subscribe { feed: p.id });
    }

    fn participant_left(&mut self, id: &str) {
        if self.is_plain_janus() {
            self.direct_peer(id, false);
        }
        let (direct, mut out) = self.direct();
        direct.participant_left(id, &mut out);
        self.others.remove(id);
        self.departed.insert(id.to_owned());
        // Our media and our share to them, and their share to us.
        for route in [id.to_owned(), screen_route(id)] {
            if let Some(pc) = self.mesh.remove(&route) {
                self.close_peer(pc);
            }
        }
        self.feed_ended(&screen_route(id));
        // Janus may say it three ways (unpublished, leaving, hangup): report it once.
        if let Some(feed) = self.feeds.remove(id) {
            if let Some(pc) = feed.subscriber {
                self.close_peer(pc);
            }
            self.events.push_back(CallEvent::ParticipantLeft { id: id.to_owned() });
        }
    }

    /// A feed of a participant who stays (their share) ended.
    fn feed_ended(&mut self, feed: &str) {
        if let Some(f) = self.feeds.remove(feed) {
            if let Some(pc) = f.subscriber {
                self.close_peer(pc);
            }
            self.events.push_back(CallEvent::ParticipantLeft { id: feed.to_owned() });
        }
    }

    /// A server's offer for a feed (we answer), or its request for our offer (WHEP).
    fn subscribe(&mut self, feed: String, remote_offer: Option<String>, now: Instant) {
        if self.departed.contains(feed.strip_suffix("/screen").unwrap_or(&feed)) {
            return;
        }
        if !self.feeds.contains_key(&feed)
            && let Some(sharer) = feed.strip_suffix("/screen")
        {
            // A mesh participant's share: a feed of its own, named as on Janus.
            let display = self.others.get(sharer).cloned().flatten().map(|d| format!("{d} (screen)"));
            self.events.push_back(CallEvent::ParticipantJoined(Participant { id: feed.clone(), display: display.clone() }));
            self.feeds.insert(feed.clone(), Feed { display, asked_at: now, offered: true, subscriber: None });
        }
        let entry = self.feeds.entry(feed.clone()).or_insert(Feed { display: None, asked_at: now, offered: false, subscriber: None });
        entry.offered = true;
        let display = entry.display.clone();
        let old = entry.subscriber.take();
        let peer = self.new_peer(Purpose::Subscriber { feed: feed.clone(), display });
        if let Some(f) = self.feeds.get_mut(&feed) {
            f.subscriber = Some(peer);
        }
        if let Some(old) = old {
            self.close_peer(old);
        }
        self.actions.push_back(Action::OpenPeer { peer, purpose: self.peers[&peer].clone(), remote_offer });
    }

    fn ice_servers(&mut self, servers: Vec<TurnCredentials>) {
        if servers == self.turn {
            return;
        }
        self.turn.clone_from(&servers);
        self.events.push_back(CallEvent::IceServers { turn: servers.len(), relay_only: self.config.relay_only });
        self.actions.push_back(Action::UseTurn(servers));
        // Mesh connections made before the TURN servers arrived that are not up yet may never
        // come up without them (relay only, or hosts that cannot reach each other): make them
        // again with TURN and offer again. The other side replaces its subscriber on the new
        // offer. Connections already up stay.
        for route in self.mesh.not_connected() {
            if let Some(to) = route.strip_suffix("/screen") {
                self.open_mesh_share(to);
            } else if let Some(with) = route.strip_suffix("/data") {
                self.open_direct(with);
            } else {
                self.open_mesh_publisher(&route);
            }
        }
    }

    fn moved_to_janus(&mut self, room: JanusRoom) {
        if self.janus.is_some() {
            return;
        }
        let url = match ServerUrl::parse(&room.url).map_err(|e| e.to_string()).and_then(|u| self.config.servers.check(&u).map(|()| u)) {
            Ok(u) if u.kind == ServerKind::Janus => u,
            Ok(_) => return self.fail("the meeting moved to a server that is not Janus".into()),
            Err(why) => return self.fail(format!("the meeting moved to Janus: {why}")),
        };
        // The mesh ends: our media goes to Janus once, the others' comes from there.
        let routes: Vec<(String, PeerId)> = self.mesh.routes().map(|(r, p)| (r.to_owned(), p)).collect();
        for (route, pc) in routes {
            self.mesh.remove(&route);
            self.close_peer(pc);
        }
        for (_, feed) in std::mem::take(&mut self.feeds) {
            if let Some(pc) = feed.subscriber {
                self.close_peer(pc);
            }
        }
        self.topology = Topology::MovedToJanus;
        let options = JoinOptions {
            room: Some(room.room.to_string()),
            password: Some(room.pin.clone()),
            display_name: self.config.join.display_name.clone(),
            moderator_token: None,
            resume: None,
        };
        self.events.push_back(CallEvent::Janus { room: room.room, feed: room.feed });
        self.actions.push_back(Action::ConnectJanus { url, options, room: room.clone() });
        self.janus = Some(room);
        if self.publishes() {
            self.open_publisher();
        }
        // A mesh share goes on as its own publisher in the Janus room.
        if matches!(self.share, Share::Running { peer: None, .. }) {
            let peer = self.new_peer(Purpose::Share);
            self.share = Share::Running { peer: Some(peer), feed: None };
            self.actions.push_back(Action::MoveShare { peer });
            self.share_session();
        }
    }

    // ---- PeerConnections ----

    fn new_peer(&mut self, purpose: Purpose) -> PeerId {
        self.next_peer += 1;
        let peer = PeerId(self.next_peer);
        self.peers.insert(peer, purpose);
        peer
    }

    fn close_peer(&mut self, peer: PeerId) {
        self.bus.closed(peer);
        self.restarting.remove(&peer);
        let (direct, mut out) = self.direct();
        direct.link_closed(peer, &mut out);
        if self.peers.remove(&peer).is_some() {
            if self.publisher == Some(peer) {
                self.publisher = None;
            }
            self.actions.push_back(Action::ClosePeer(peer));
        }
    }

    fn open_publisher(&mut self) {
        let peer = self.new_peer(Purpose::Publisher);
        if let Some(old) = self.publisher.replace(peer) {
            self.close_peer(old);
            self.publisher = Some(peer);
        }
        self.actions.push_back(Action::OpenPeer { peer, purpose: Purpose::Publisher, remote_offer: None });
    }

    fn open_mesh_publisher(&mut self, to: &str) {
        let purpose = Purpose::MeshPublisher { to: to.to_owned() };
        let peer = self.new_peer(purpose.clone());
        self.actions.push_back(Action::OpenPeer { peer, purpose, remote_offer: None });
    }

    /// A meeting on Janus: a member to keep a direct data connection with. Of each pair, the
    /// member with the lower id offers (the other answers), so both never offer at once.
    fn direct_peer(&mut self, participant: &str, present: bool) {
        if !self.has_direct_links() {
            return;
        }
        let route = format!("{participant}/data");
        if !present {
            if let Some(pc) = self.mesh.remove(&route) {
                self.close_peer(pc);
            }
            if let Some(pc) = self.direct_answers.remove(participant) {
                self.close_peer(pc);
            }
            let (direct, mut out) = self.direct();
            direct.participant_left(participant, &mut out);
            return;
        }
        let lower = |id: &str| id.parse::<u64>().ok();
        if let (Some(me), Some(them)) = (self.me.as_deref().and_then(lower), lower(participant))
            && me < them
            && self.mesh.current(&route).is_none()
        {
            self.open_direct(participant);
        }
    }

    fn open_direct(&mut self, with: &str) {
        let purpose = Purpose::Direct { with: with.to_owned() };
        let peer = self.new_peer(purpose.clone());
        self.actions.push_back(Action::OpenPeer { peer, purpose, remote_offer: None });
    }

    /// A member's offer of a direct data connection (`ID/data`): answer it, replacing an
    /// earlier one of theirs.
    fn direct_offer(&mut self, route: &str, sdp: String) {
        let Some(with) = route.strip_suffix("/data").map(str::to_owned) else { return };
        if !self.has_direct_links() || self.departed.contains(&with) {
            return;
        }
        let purpose = Purpose::Direct { with: with.clone() };
        let peer = self.new_peer(purpose.clone());
        if let Some(old) = self.direct_answers.insert(with, peer) {
            self.close_peer(old);
        }
        self.actions.push_back(Action::OpenPeer { peer, purpose, remote_offer: Some(sdp) });
    }

    fn open_mesh_share(&mut self, to: &str) {
        let purpose = Purpose::MeshShare { to: to.to_owned() };
        let peer = self.new_peer(purpose.clone());
        self.actions.push_back(Action::OpenPeer { peer, purpose, remote_offer: None });
    }

    fn local_description(&mut self, peer: PeerId, purpose: Purpose, sdp: String) {
        let route = self.media_route();
        match purpose {
            Purpose::Direct { with } if self.direct_answers.get(&with) == Some(&peer) => {
                if self.is_plain_janus() {
                    self.bus_send(Bus::Answer { to: with, sdp });
                } else {
                    self.signal(Route::Main, SignalCommand::AnswerSubscription { feed: format!("{with}/data"), sdp });
                }
            }
            Purpose::Direct { with } => self.mesh_offer(peer, format!("{with}/data"), sdp),
            Purpose::Publisher => self.signal(route, SignalCommand::Publish { sdp }),
            Purpose::Share => self.signal(Route::Share, SignalCommand::Publish { sdp }),
            Purpose::MeshPublisher { to } => self.mesh_offer(peer, to, sdp),
            Purpose::MeshShare { to } => self.mesh_offer(peer, screen_route(&to), sdp),
            Purpose::Subscriber { feed, .. } => {
                let offered_by_server = self.feeds.get(&feed).is_some_and(|f| f.subscriber == Some(peer));
                if !offered_by_server {
                    return;
                }
                let command = if self.config.url.kind == ServerKind::Whep {
                    SignalCommand::OfferSubscription { feed, sdp }
                } else {
                    SignalCommand::AnswerSubscription { feed, sdp }
                };
                self.signal(route, command);
            }
        }
    }

    /// Our offer on a mesh route goes out; it replaces the route's earlier PeerConnection.
    fn mesh_offer(&mut self, peer: PeerId, route: String, sdp: String) {
        let old = self.mesh.current(&route);
        self.mesh.opened(&route, peer);
        match route.strip_suffix("/data") {
            Some(with) if self.is_plain_janus() => self.bus_send(Bus::Offer { to: with.to_owned(), sdp }),
            _ => self.signal(Route::Main, SignalCommand::PublishTo { peer: route, sdp }),
        }
        if let Some(old) = old.filter(|o| *o != peer) {
            self.close_peer(old);
        }
    }

    fn peer_failed(&mut self, peer: PeerId, purpose: &Purpose, why: &str, now: Instant) {
        match purpose {
            // The restart offer could not be made: a new session makes everything anew.
            Purpose::Publisher if self.restarting.remove(&peer) && self.can_reconnect() => {
                self.lost(&format!("restarting ICE: {why}"), now);
            }
            Purpose::Publisher => self.fail(format!("publishing: {why}")),
            Purpose::Share => self.stop_share(Some(why.to_owned())),
            Purpose::MeshPublisher { to } | Purpose::MeshShare { to } => {
                let message = format!("sending to {to}: {why}");
                self.error(&message);
            }
            Purpose::Direct { with } => {
                let message = format!("the direct connection to {with}: {why}");
                self.error(&message);
            }
            Purpose::Subscriber { feed, .. } => {
                let message = format!("subscribing to {feed}: {why}");
                self.error(&message);
                if let Some(f) = self.feeds.get_mut(feed).filter(|f| f.subscriber == Some(peer)) {
                    f.subscriber = None;
                }
                self.close_peer(peer);
            }
        }
    }

    /// A connection's ICE failed: its path is gone (a cut longer than the ICE timeouts, a new
    /// address, a NAT that forgot us), while signalling may still be up. Without signalling,
    /// nothing happens here: the reconnect makes every connection anew.
    fn ice_failed(&mut self, peer: PeerId, purpose: &Purpose, now: Instant) {
        if self.offline || !self.peers.contains_key(&peer) {
            return;
        }
        let link = retry_key(purpose);
        if self.ice.failed(&link, peer, now) && !self.restart_link(peer, purpose, now) {
            self.ice.connected(&link);
        }
    }

    /// Brings one failed link back. Where we offer to Janus (our publisher), an ICE restart
    /// on the same connection: a new offer with new ICE credentials, so Janus keeps its DTLS
    /// session and our feed id. Where Janus offers (a subscription), a new subscription: a new
    /// handle and connection (Janus would restart ICE only on a connection that answers its
    /// renegotiation, and a new one costs one more round trip). On a mesh the side that
    /// offered offers again on a new connection, and the other side replaces its own on that
    /// offer. A share's own session starts again on its back-off. Other servers (WHIP, WHEP)
    /// keep what they have: their adapters cannot renegotiate.
    /// Whether it did anything.
    fn restart_link(&mut self, peer: PeerId, purpose: &Purpose, now: Instant) -> bool {
        let on_janus = self.topology == Topology::MovedToJanus || self.is_plain_janus();
        match purpose {
            Purpose::Publisher if on_janus && self.publisher == Some(peer) => {
                self.restarting.insert(peer);
                self.actions.push_back(Action::RestartIce { peer });
                true
            }
            Purpose::Subscriber { feed, .. } if on_janus && self.feeds.get(feed).is_some_and(|f| f.subscriber == Some(peer)) => {
                let route = self.media_route();
                self.close_peer(peer);
                if let Some(f) = self.feeds.get_mut(feed) {
                    (f.subscriber, f.offered, f.asked_at) = (None, false, now);
                }
                self.signal(route, SignalCommand::Unsubscribe { feed: feed.clone() });
                self.signal(route, SignalCommand::Subscribe { feed: feed.clone() });
                true
            }
            Purpose::MeshPublisher { to } if self.mesh.is_current(to, peer) => {
                self.open_mesh_publisher(to);
                true
            }
            Purpose::MeshShare { to } if self.mesh.is_current(&screen_route(to), peer) => {
                self.open_mesh_share(to);
                true
            }
            Purpose::Direct { with } if self.mesh.is_current(&format!("{with}/data"), peer) => {
                self.open_direct(with);
                true
            }
            Purpose::Share if matches!(self.share, Share::Running { peer: Some(p), .. } if p == peer) => {
                self.signal(Route::Share, SignalCommand::Leave);
                self.suspend_share(now);
                false
            }
            _ => false,
        }
    }

    fn peer_state(&mut self, peer: PeerId, purpose: Purpose, state: ConnState, candidates: Option<(String, Option<String>)>, now: Instant) {
        match state {
            ConnState::Failed => self.ice_failed(peer, &purpose, now),
            ConnState::Connected => {
                self.restarting.remove(&peer);
                self.ice.connected(&retry_key(&purpose));
            }
            _ => {}
        }
        let link = match purpose {
            Purpose::Publisher => Link::Publisher,
            Purpose::Share => return,
            Purpose::Direct { with } => {
                let route = format!("{with}/data");
                if state == ConnState::Connected && self.mesh.is_current(&route, peer) {
                    self.mesh.connected(&route, peer);
                }
                return;
            }
            Purpose::MeshPublisher { to } => {
                if !self.mesh.is_current(&to, peer) {
                    return;
                }
                if state == ConnState::Connected {
                    self.mesh.connected(&to, peer);
                }
                Link::Mesh(to)
            }
            Purpose::MeshShare { to } => {
                let route = screen_route(&to);
                if !self.mesh.is_current(&route, peer) {
                    return;
                }
                if state == ConnState::Connected {
                    self.mesh.connected(&route, peer);
                }
                Link::MeshShare(to)
            }
            Purpose::Subscriber { feed, .. } => Link::Feed(feed),
        };
        let candidates = if state == ConnState::Connected { candidates } else { None };
        self.events.push_back(CallEvent::Connection { link, state, candidates });
    }

    // ---- helpers ----

    /// The person at the other end of `purpose`'s connection, when it is a direct one (a mesh
    /// connection: ours to them, or theirs to us; never a share or a server's).
    fn direct_participant(&self, purpose: &Purpose) -> Option<String> {
        if let Purpose::Direct { with } = purpose {
            return Some(with.clone());
        }
        if self.topology != Topology::Mesh {
            return None;
        }
        match purpose {
            Purpose::MeshPublisher { to } => Some(to.clone()),
            Purpose::Subscriber { feed, .. } if !feed.contains('/') => Some(feed.clone()),
            _ => None,
        }
    }

    /// A Janus VideoRoom without a Blende server: direct links are found over [`JanusBus`].
    fn is_plain_janus(&self) -> bool {
        self.topology == Topology::Server && self.config.url.kind == ServerKind::Janus
    }

    /// Whether chat and documents go on direct data connections of their own (media on an
    /// SFU), rather than on the mesh's media connections.
    fn has_direct_links(&self) -> bool {
        self.topology == Topology::MovedToJanus || self.is_plain_janus()
    }

    /// A direct connection to `member` exists (ours being offered, or theirs answered).
    fn has_direct_peer(&self, member: &str) -> bool {
        self.peers.values().any(|p| matches!(p, Purpose::Direct { with } if with == member))
    }

    /// Hellos owed again to members we hear but have no direct connection with yet.
    fn bus_timeout(&mut self, now: Instant) {
        for feed in self.bus.due_hellos(now) {
            if self.has_direct_peer(&feed) || !self.feeds.contains_key(&feed) {
                self.bus.greeted(&feed);
            } else {
                self.bus_send(Bus::Hello { to: feed, reply: false });
            }
        }
    }

    fn bus_send(&mut self, message: Bus) {
        if let Some((peer, message)) = self.bus.send(message) {
            self.actions.push_back(Action::SendData { peer, message: message.encode() });
        }
    }

    /// Our publisher's or a subscription's data channel in a plain Janus room.
    fn bus_event(&mut self, peer: PeerId, purpose: &Purpose, event: &PeerEvent, now: Instant) {
        match (purpose, event) {
            (Purpose::Publisher, PeerEvent::DataOpen) if self.publisher == Some(peer) => {
                for message in self.bus.opened(peer) {
                    self.actions.push_back(Action::SendData { peer, message: message.encode() });
                }
            }
            (Purpose::Publisher, PeerEvent::DataClosed) => self.bus.closed(peer),
            // That member's messages reach us now: tell them we are here.
            (Purpose::Subscriber { feed, .. }, PeerEvent::DataOpen) if !self.has_direct_peer(feed) => {
                self.bus_send(Bus::Hello { to: feed.clone(), reply: false });
                self.bus.greeting(feed, now);
            }
            (Purpose::Subscriber { feed, .. }, PeerEvent::Data(message)) => {
                let feed = feed.clone();
                self.bus_message(&feed, message);
            }
            _ => {}
        }
    }

    /// A message member `from` sent on the Janus relay.
    fn bus_message(&mut self, from: &str, message: &[u8]) {
        let bus = match p2p_bus::decode(message) {
            Ok(bus) => bus,
            Err(p2p_bus::BusError::Foreign) => return,
            Err(e) => return self.error(&format!("{from} on the Janus relay: {e}")),
        };
        let Some(me) = self.me.clone() else { return };
        if bus.to() != me || self.departed.contains(from) {
            return;
        }
        let route = format!("{from}/data");
        match bus {
            Bus::Hello { reply, .. } => {
                if p2p_bus::offers_first(&me, from) {
                    // A second hello (theirs and their reply) while our offer is being made.
                    if !self.has_direct_peer(from) {
                        self.open_direct(from);
                    }
                } else if !reply && !self.direct_answers.contains_key(from) {
                    self.bus_send(Bus::Hello { to: from.to_owned(), reply: true });
                }
            }
            Bus::Offer { sdp, .. } => self.direct_offer(&route, sdp),
            Bus::Answer { sdp, .. } => {
                if let Some(peer) = self.mesh.answer(&route) {
                    self.actions.push_back(Action::ApplyAnswer { peer, sdp });
                }
            }
        }
    }

    // ---- reconnecting ----

    /// Whether a lost session to the server we joined is worth coming back to: we were in (or
    /// are on the way back) on a server kind that lets a client rejoin by itself.
    fn can_reconnect(&self) -> bool {
        (self.me.is_some() || self.reconnect.is_some() || self.waiting) && (self.is_plain_janus() || self.topology == Topology::Mesh)
    }

    /// Signalling on [`Route::Main`] is gone: the old session's connections close (nothing
    /// was sent on them after this), and the first attempt to come back is due at once. The
    /// switches stay as they are; a running share waits, capture and gate untouched.
    fn lost(&mut self, reason: &str, now: Instant) {
        self.offline = true;
        // Whoever we knew comes back under a new id, if at all: what ran with them ends
        // (transfers are cancelled, identity checks forgotten).
        let members: BTreeSet<String> = self.others.keys().chain(self.feeds.keys()).cloned().collect();
        for member in members {
            let (direct, mut out) = self.direct();
            direct.participant_left(&member, &mut out);
        }
        let session: Vec<PeerId> = self.peers.iter().filter(|(_, p)| !matches!(p, Purpose::Share)).map(|(id, _)| *id).collect();
        for peer in session {
            self.close_peer(peer);
        }
        self.me = None;
        self.publisher = None;
        self.feeds.clear();
        self.mesh = MeshBook::default();
        self.others.clear();
        self.departed.clear();
        self.direct_answers.clear();
        self.bus = JanusBus::default();
        self.ice = IceRetries::default();
        if let Some(backoff) = &self.reconnect {
            // The new session went before we were in again: that attempt failed. (The old
            // session's channel closing after its last event is no news.)
            if backoff.running() {
                self.reconnect_failed(reason, now);
            }
            return;
        }
        self.reconnect = Some(Backoff::new(now));
        self.events.push_back(CallEvent::Reconnecting { attempt: 1, reason: reason.to_owned() });
        // The share comes back once the call is back (not on its own schedule meanwhile).
        self.share_backoff = None;
        match self.share {
            Share::Running { peer: Some(_), .. } => {
                self.signal(Route::Share, SignalCommand::Leave);
                self.suspend_share(now);
            }
            // A mesh share's connections closed with the session's.
            Share::Running { peer: None, .. } => self.share = Share::Suspended,
            _ => {}
        }
    }

    fn reconnect_failed(&mut self, reason: &str, now: Instant) {
        let Some(backoff) = self.reconnect.as_mut().filter(|b| b.running()) else { return };
        if backoff.failed(now) {
            let attempt = backoff.attempts() + 1;
            self.events.push_back(CallEvent::Reconnecting { attempt, reason: reason.to_owned() });
        } else {
            self.fail(format!("the server could not be reached again within {} s: {reason}", crate::GIVE_UP_AFTER.as_secs()));
        }
    }

    fn reconnect_timeout(&mut self, now: Instant) {
        if self.reconnect.as_mut().is_some_and(|b| b.start_due(now)) {
            let options = JoinOptions { resume: self.resume.clone(), ..self.config.join.clone() };
            self.actions.push_back(Action::Reconnect { options });
        }
        if self.share_backoff.as_mut().is_some_and(|b| b.start_due(now)) {
            self.resume_share();
        }
    }

    /// The share's session was lost: its publisher closes; the capture keeps running behind
    /// its gate. While the main session is up it comes back on its own schedule; otherwise
    /// once the main session is back.
    fn suspend_share(&mut self, now: Instant) {
        if let Share::Running { peer: Some(peer), .. } = self.share {
            self.close_peer(peer);
        }
        self.share = Share::Suspended;
        if self.reconnect.is_some() {
            return;
        }
        match &mut self.share_backoff {
            None => self.share_backoff = Some(Backoff::new(now)),
            Some(backoff) => {
                if !backoff.failed(now) {
                    self.stop_share(Some("the share's session could not be opened again".into()));
                }
            }
        }
    }

    /// A new publisher and session for the running capture.
    fn resume_share(&mut self) {
        if !matches!(self.share, Share::Suspended) {
            return;
        }
        let peer = self.new_peer(Purpose::Share);
        self.share = Share::Running { peer: Some(peer), feed: None };
        self.actions.push_back(Action::MoveShare { peer });
        self.share_session();
    }

    fn direct(&mut self) -> (&mut Direct, Out<'_>) {
        (&mut self.direct, Out { actions: &mut self.actions, events: &mut self.events })
    }

    fn media_route(&self) -> Route {
        if self.topology == Topology::MovedToJanus { Route::Janus } else { Route::Main }
    }

    fn signal(&mut self, route: Route, command: SignalCommand) {
        if self.offline && route == Route::Main {
            return;
        }
        self.actions.push_back(Action::Signal { route, command });
    }

    /// Our own share's feed: never subscribed (it would show us our own screen, and cost a
    /// decoder).
    fn is_own_share(&self, p: &Participant) -> bool {
        let Share::Running { feed, .. } = &self.share else { return false };
        feed.as_deref() == Some(p.id.as_str()) || p.display.as_deref() == Some(self.share_display().as_str())
    }

    fn error(&mut self, message: &str) {
        self.events.push_back(CallEvent::Error { message: message.to_owned(), fatal: false });
    }

    fn fail(&mut self, message: String) {
        self.events.push_back(CallEvent::Error { message: message.clone(), fatal: true });
        self.end(End::Failed(message), None);
    }

    /// The end: the share stops first (its gate is closed by the driver's teardown too), then
    /// `left` is reported and the driver tears down.
    fn end(&mut self, end: End, left: Option<&str>) {
        if self.ended {
            return;
        }
        if !matches!(self.share, Share::None) {
            self.share = Share::None;
            self.tear_down_share();
        }
        // Transfers stop on both sides; partial files are removed.
        let (direct, mut out) = self.direct();
        direct.cancel_all(&mut out);
        if let Some(reason) = left {
            self.events.push_back(CallEvent::Left { reason: reason.to_owned() });
        }
        self.ended = true;
        self.actions.push_back(Action::End(end));
    }
}
