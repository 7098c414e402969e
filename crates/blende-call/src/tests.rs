//! Calls on virtual time: real `blende_room::Room` and `BlendeMachine`s in one process, a fake
//! PeerConnection layer that answers at once (connections come up when both sides have a
//! description, or only with TURN where the test says so).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use blende_media::DeviceKind;
use blende_meeting::CountingEntropy;
use blende_policy::{ServerKind, ServerUrl};
use blende_room::protocol::{ClientMsg, IceServer, Secret, ServerMsg};
use blende_room::{ConnId, Output, Room, RoomConfig, StoreCmd, Verify, VerifyOutcome};
use blende_signal::blende::BlendeMachine;
use proptest::prelude::*;

use crate::*;

mod direct;
mod ice;
mod janus_bus;
mod reconnect;

const TOKEN: &str = "tok-mod1";

/// A PeerConnection as the fake driver made it.
#[derive(Debug)]
struct FakePeer {
    purpose: Purpose,
    with_turn: bool,
}

/// One participant: signalling machine, call machine, fake driver.
struct Client {
    conn: ConnId,
    signal: BlendeMachine,
    call: Call,
    actions: Vec<Action>,
    events: Vec<CallEvent>,
    peers: BTreeMap<PeerId, FakePeer>,
    closed: Vec<PeerId>,
    /// Whether connections come up only through TURN (relay only, or hosts that cannot reach
    /// each other).
    needs_turn: bool,
    turn: bool,
    /// The policy refuses what this client tries to share.
    policy_refuses: bool,
    capturing: bool,
    ended: Option<End>,
    /// The fake data channels and files of the direct features (see `tests/direct.rs`).
    data: direct::FakeData,
    /// The link to the room server is cut until then: nothing passes, new connections fail.
    cut_until: Option<Instant>,
    /// An [`Action::Reconnect`] the harness has yet to carry out.
    reconnect: Option<JoinOptions>,
}

impl Client {
    /// Carries out one action as the app's driver would, feeding results back at once.
    fn execute(&mut self, action: Action, now: Instant) {
        self.actions.push(action.clone());
        match action {
            Action::Signal { route: Route::Main, command } => self.signal.handle_command(command),
            Action::OpenPeer { peer, purpose, remote_offer } => {
                self.peers.insert(peer, FakePeer { purpose, with_turn: self.turn });
                let sdp = match &remote_offer {
                    Some(offer) => format!("answer to [{offer}]"),
                    None => format!("offer {peer}"),
                };
                self.call.handle_peer(peer, PeerEvent::LocalDescription(sdp), now);
                if remote_offer.is_some() {
                    self.maybe_connect(peer, now);
                }
            }
            Action::ApplyAnswer { peer, .. } => self.maybe_connect(peer, now),
            Action::RestartIce { peer } => self.call.handle_peer(peer, PeerEvent::LocalDescription(format!("restart offer {peer}")), now),
            Action::ClosePeer(peer) => {
                self.peers.remove(&peer);
                self.closed.push(peer);
            }
            Action::UseTurn(servers) => self.turn = !servers.is_empty(),
            Action::StartShare { peer, .. } => {
                if self.policy_refuses {
                    self.call.handle_share(ShareReport::Refused("blocked: mail".into()), now);
                    return;
                }
                self.capturing = true;
                self.call.handle_share(ShareReport::Started, now);
                if let Some(peer) = peer {
                    self.peers.insert(peer, FakePeer { purpose: Purpose::Share, with_turn: self.turn });
                    self.call.handle_peer(peer, PeerEvent::LocalDescription("share offer".into()), now);
                }
            }
            Action::MoveShare { peer } => {
                self.peers.insert(peer, FakePeer { purpose: Purpose::Share, with_turn: self.turn });
                self.call.handle_peer(peer, PeerEvent::LocalDescription("share offer".into()), now);
            }
            Action::StopShare => {
                self.capturing = false;
                self.peers.retain(|_, p| !matches!(p.purpose, Purpose::Share | Purpose::MeshShare { .. }));
            }
            Action::End(end) => self.ended = Some(end),
            Action::Reconnect { options } => self.reconnect = Some(options),
            other => self.data.execute(&mut self.call, other, now),
        }
    }

    fn maybe_connect(&mut self, peer: PeerId, now: Instant) {
        if self.peers.get(&peer).is_some_and(|p| !self.needs_turn || p.with_turn) {
            self.call.handle_peer(peer, PeerEvent::State { state: ConnState::Connected, candidates: None }, now);
        }
    }

    fn open_peers(&self, want: impl Fn(&Purpose) -> bool) -> Vec<PeerId> {
        self.peers.iter().filter(|(_, p)| want(&p.purpose)).map(|(id, _)| *id).collect()
    }

    fn mesh_connected_to(&self, to: &str) -> usize {
        let link = Link::Mesh(to.to_owned());
        self.events.iter().filter(|e| matches!(e, CallEvent::Connection { link: l, state: ConnState::Connected, .. } if *l == link)).count()
    }

    fn share_states(&self) -> Vec<&ShareState> {
        self.events.iter().filter_map(|e| if let CallEvent::Share(s) = e { Some(s) } else { None }).collect()
    }

    fn me(&self) -> String {
        self.events
            .iter()
            .find_map(|e| if let CallEvent::Joined { participant_id, .. } = e { Some(participant_id.clone()) } else { None })
            .expect("joined")
    }
}

/// The room server and its clients, on one virtual clock.
struct Net {
    room: Room,
    now: Instant,
    next_conn: u64,
    clients: Vec<Client>,
    meeting: String,
    password: String,
}

fn config(join: JoinOptions) -> CallConfig {
    CallConfig {
        url: ServerUrl::parse("blende+ws://127.0.0.1:8080").expect("url"),
        join,
        camera: true,
        mic: true,
        relay_only: false,
        servers: blende_policy::Policy::builtin().servers().clone(),
        documents: blende_p2p::Limits::default(),
        secret: [7; 32],
    }
}

impl Net {
    /// A server with one meeting (lobby on), created by a moderator connection of its own.
    fn new() -> Self {
        let mut net = Net {
            room: Room::new(RoomConfig::default(), Box::new(CountingEntropy::new(3, 7))),
            now: Instant::now(),
            next_conn: 100,
            clients: Vec::new(),
            meeting: String::new(),
            password: String::new(),
        };
        let admin = net.connect();
        for msg in [
            ClientMsg::Hello { protocol: 1 },
            ClientMsg::AuthModerator { token: Secret::new(TOKEN) },
            ClientMsg::CreateMeeting { title: "Rat".into(), starts_at_unix: None, duration_min: Some(30), lobby: Some(true) },
        ] {
            net.room.handle_message(admin, msg, net.now);
            for (_, msg) in net.drain_room() {
                if let ServerMsg::MeetingCreated { meeting, password, .. } = msg {
                    net.meeting = meeting.id;
                    net.password = password.expose().to_owned();
                }
            }
        }
        assert!(!net.meeting.is_empty(), "the meeting was created");
        net
    }

    fn connect(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.room.handle_connect(conn, IpAddr::from([127, 0, 0, 1]), self.now);
        conn
    }

    /// Adds a participant (a moderator with `moderator`) and lets everything settle.
    fn join(&mut self, name: &str, moderator: bool) -> usize {
        let conn = self.connect();
        let join = JoinOptions {
            room: Some(self.meeting.clone()),
            password: (!moderator).then(|| self.password.clone()),
            display_name: name.to_owned(),
            moderator_token: moderator.then(|| TOKEN.to_owned()),
            resume: None,
        };
        let call = Call::new(config(join.clone()), self.now);
        self.clients.push(Client {
            conn,
            signal: BlendeMachine::new(join),
            call,
            actions: Vec::new(),
            events: Vec::new(),
            peers: BTreeMap::new(),
            closed: Vec::new(),
            needs_turn: false,
            turn: false,
            policy_refuses: false,
            capturing: false,
            ended: None,
            data: direct::FakeData::default(),
            cut_until: None,
            reconnect: None,
        });
        self.settle();
        self.clients.len() - 1
    }

    /// Room outputs, with verifications and stores answered as a driver would (hash =
    /// `hash:<password>`); messages to connections are returned.
    fn drain_room(&mut self) -> Vec<(ConnId, ServerMsg)> {
        let mut sent = Vec::new();
        while let Some(out) = self.room.poll_output() {
            match out {
                Output::Send { conn, msg } => sent.push((conn, msg)),
                Output::Close { conn } => sent.push((conn, ServerMsg::Removed {})),
                Output::Verify { ticket, verify } => {
                    let outcome = match verify {
                        Verify::MeetingPassword { password_hash: Some(h), password } if h == format!("hash:{}", password.expose()) => {
                            VerifyOutcome::PasswordOk
                        }
                        Verify::ModeratorToken { token } if token.expose() == TOKEN => {
                            VerifyOutcome::Moderator { moderator_id: "mod1".into() }
                        }
                        _ => VerifyOutcome::Refused,
                    };
                    self.room.handle_verified(ticket, outcome, self.now);
                }
                Output::Store(StoreCmd::CreateMeeting { info, password, .. }) => {
                    self.room.handle_meeting_stored(&info.id, Ok(format!("hash:{}", password.expose())));
                }
                Output::Store(_) | Output::Event(_) => {}
            }
        }
        sent
    }

    /// Delivers a server message to a client's signalling machine, as its WebSocket would.
    fn deliver(&mut self, conn: ConnId, msg: &ServerMsg) {
        let now = self.now;
        if let Some(c) = self.clients.iter_mut().find(|c| c.conn == conn && c.cut_until.is_none_or(|t| now >= t)) {
            c.signal.handle_message(&msg.to_json()).expect("a v1 server message");
        }
    }

    /// Runs everything until nothing moves: room ⇄ signalling ⇄ call ⇄ fake driver.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for (conn, msg) in self.drain_room() {
                moved = true;
                self.deliver(conn, &msg);
            }
            let now = self.now;
            for c in &mut self.clients {
                let cut = c.cut_until.is_some_and(|t| now < t);
                while let Some(text) = c.signal.poll_transmit() {
                    moved = true;
                    if !cut {
                        self.room.handle_text(c.conn, &text, now);
                    }
                }
                if let Some(options) = c.reconnect.take() {
                    // As the driver's connect task: refused while cut, else a new connection.
                    moved = true;
                    if cut {
                        c.call.handle_reconnect(Err("network unreachable".into()), now);
                    } else {
                        c.conn = ConnId(self.next_conn);
                        self.next_conn += 1;
                        self.room.handle_connect(c.conn, IpAddr::from([127, 0, 0, 1]), now);
                        c.signal = BlendeMachine::new(options);
                        c.call.handle_reconnect(Ok(()), now);
                    }
                }
                while let Some(ev) = c.signal.poll_event() {
                    moved = true;
                    c.call.handle_signal(Route::Main, ev, now);
                }
                while let Some(action) = c.call.poll_action() {
                    moved = true;
                    c.execute(action, now);
                }
                while let Some(ev) = c.call.poll_event() {
                    c.events.push(ev);
                }
            }
            moved |= self.deliver_data();
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    /// Advances the clock to the next deadline of the room or any call, then settles.
    fn step(&mut self) {
        let next = self.clients.iter().filter_map(|c| c.call.poll_timeout()).chain(self.room.poll_timeout()).min();
        self.now = next.unwrap_or(self.now + Duration::from_secs(1)).max(self.now);
        self.room.handle_timeout(self.now);
        let now = self.now;
        for c in &mut self.clients {
            c.call.handle_timeout(now);
        }
        self.settle();
    }

    fn command(&mut self, client: usize, command: CallCommand) {
        let now = self.now;
        self.clients[client].call.handle_command(command, now);
        self.settle();
    }

    /// A moderator and an admitted participant, their mesh up.
    fn pair() -> (Net, usize, usize) {
        let mut net = Net::new();
        let m = net.join("Mo", true);
        let p = net.join("Bea", false);
        let waiting = net.clients[m]
            .events
            .iter()
            .rev()
            .find_map(|e| if let CallEvent::Waiting { participants } = e { participants.first().cloned() } else { None })
            .expect("the moderator sees Bea waiting");
        net.command(m, CallCommand::Room(RoomAction::Admit(waiting.id)));
        net.step();
        (net, m, p)
    }
}

#[test]
fn join_through_the_lobby_then_each_side_offers_its_media_to_the_other() {
    let mut net = Net::new();
    let m = net.join("Mo", true);
    let p = net.join("Bea", false);
    assert!(net.clients[p].events.contains(&CallEvent::Lobby { state: LobbyState::Waiting }), "Bea waits in the lobby");
    assert!(net.clients[p].peers.is_empty(), "nothing is offered from the lobby");
    assert!(!net.clients[p].events.iter().any(|e| matches!(e, CallEvent::Joined { .. })));

    let waiting = net.clients[m].events.iter().find_map(|e| match e {
        CallEvent::Waiting { participants } if !participants.is_empty() => Some(participants[0].clone()),
        _ => None,
    });
    let waiting = waiting.expect("the moderator sees who waits");
    assert_eq!(waiting.display.as_deref(), Some("Bea"));
    net.command(m, CallCommand::Room(RoomAction::Admit(waiting.id.clone())));

    assert!(net.clients[p].events.contains(&CallEvent::Lobby { state: LobbyState::Admitted }));
    let (mo, bea) = (net.clients[m].me(), net.clients[p].me());
    assert_eq!(bea, waiting.id);
    // One PeerConnection each way: our media to them, theirs to us.
    for (c, other) in [(m, &bea), (p, &mo)] {
        let client = &net.clients[c];
        assert_eq!(client.open_peers(|p| matches!(p, Purpose::MeshPublisher { to } if to == other)).len(), 1, "publisher to {other}");
        assert_eq!(client.open_peers(|p| matches!(p, Purpose::Subscriber { feed, .. } if feed == other)).len(), 1, "subscriber of {other}");
        assert_eq!(client.mesh_connected_to(other), 1, "our media to {other} is up");
    }
    // Devices were announced on joining: the moderator sees Bea's camera and microphone on.
    let devices = CallEvent::RemoteDevices { participant: bea.clone(), camera: true, microphone: true, sharing: false };
    assert!(net.clients[m].events.contains(&devices), "{:?}", net.clients[m].events);

    // A switch reaches the others through the server.
    net.command(p, CallCommand::Switch { kind: DeviceKind::Camera, on: false });
    assert!(net.clients[p].actions.contains(&Action::SetDevice { kind: DeviceKind::Camera, on: false }));
    let off = CallEvent::RemoteDevices { participant: bea.clone(), camera: false, microphone: true, sharing: false };
    assert!(net.clients[m].events.contains(&off));

    // Leaving: Bea ends with status 0; the moderator closes both connections with her.
    let before = net.clients[m].peers.len();
    net.command(p, CallCommand::Leave);
    assert_eq!(net.clients[p].ended, Some(End::Left("leave".into())));
    assert!(net.clients[m].events.contains(&CallEvent::ParticipantLeft { id: bea }));
    assert_eq!(net.clients[m].peers.len(), before - 2, "publisher to and subscriber of Bea closed");
}

#[test]
fn turn_arriving_late_makes_the_connections_that_never_came_up_again() {
    let mut net = Net::new();
    let m = net.join("Mo", true);
    net.clients[m].needs_turn = true;
    let p = net.join("Bea", false);
    net.clients[p].needs_turn = true;
    let bea_waiting = net.clients[m]
        .events
        .iter()
        .find_map(|e| match e {
            CallEvent::Waiting { participants } if !participants.is_empty() => Some(participants[0].id.clone()),
            _ => None,
        })
        .expect("waiting");
    net.command(m, CallCommand::Room(RoomAction::Admit(bea_waiting)));
    let (mo, bea) = (net.clients[m].me(), net.clients[p].me());
    assert_eq!(net.clients[m].mesh_connected_to(&bea), 0, "without TURN nothing comes up");
    let first: Vec<PeerId> = net.clients[m].open_peers(|p| matches!(p, Purpose::MeshPublisher { .. }));

    // The server hands out TURN credentials late (to both, as on admission).
    let turn = ServerMsg::IceServers {
        servers: vec![IceServer {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            username: "1800000000:p1".into(),
            credential: Secret::new("c"),
            ttl_s: 600,
        }],
    };
    for c in [m, p] {
        let conn = net.clients[c].conn;
        net.deliver(conn, &turn);
    }
    net.settle();
    for (c, other) in [(m, &bea), (p, &mo)] {
        let client = &net.clients[c];
        assert!(client.events.contains(&CallEvent::IceServers { turn: 1, relay_only: false }));
        assert_eq!(client.mesh_connected_to(other), 1, "made again with TURN, it came up");
        assert_eq!(client.open_peers(|p| matches!(p, Purpose::MeshPublisher { .. })).len(), 1, "one publisher to {other}");
    }
    assert!(first.iter().all(|p| net.clients[m].closed.contains(p)), "the connections without TURN were closed");

    // The same servers again change nothing.
    let actions = net.clients[m].actions.len();
    let conn = net.clients[m].conn;
    net.deliver(conn, &turn);
    net.settle();
    assert_eq!(net.clients[m].actions.len(), actions);
}

#[test]
fn a_share_is_refused_without_the_presenter_role_and_reaches_the_mesh_with_it() {
    let (mut net, m, p) = Net::pair();
    let bea = net.clients[p].me();

    // Not a presenter: the server refuses, and nothing is captured.
    net.command(p, CallCommand::ShareStart(ShareSource::Window(7)));
    let states = net.clients[p].share_states();
    assert!(matches!(states.as_slice(), [ShareState::Requested, ShareState::Refused { by: Refusal::Role, .. }]), "{states:?}");
    assert!(!net.clients[p].actions.iter().any(|a| matches!(a, Action::StartShare { .. })), "no capture without the server's yes");

    // The moderator grants the presenter role: the share goes to the moderator on a
    // PeerConnection of its own.
    net.command(m, CallCommand::Room(RoomAction::GrantPresenter(bea.clone())));
    assert!(net.clients[m].events.contains(&CallEvent::Role { participant: bea.clone(), role: Role::Presenter }));
    net.command(p, CallCommand::ShareStart(ShareSource::Window(7)));
    assert!(net.clients[p].capturing, "the capture runs once the server accepted");
    assert!(net.clients[p].actions.contains(&Action::StartShare {
        source: ShareSource::Window(7),
        display: "Bea (screen)".into(),
        peer: None
    }));
    let share_pcs = net.clients[p].open_peers(|p| matches!(p, Purpose::MeshShare { .. }));
    assert_eq!(share_pcs.len(), 1, "one share connection, to the moderator");
    let feed = format!("{bea}/screen");
    let subscribers = net.clients[m].open_peers(|p| matches!(p, Purpose::Subscriber { feed: f, .. } if *f == feed));
    assert_eq!(subscribers.len(), 1, "the moderator receives the share as feed {feed}");
    assert!(
        net.clients[p]
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::Connection { link: Link::MeshShare(_), state: ConnState::Connected, .. })),
        "the share connection came up"
    );
    // The camera connection was not touched.
    assert_eq!(net.clients[p].open_peers(|p| matches!(p, Purpose::MeshPublisher { .. })).len(), 1);

    // "Everything off": devices and the share, and the moderator's feed ends.
    net.command(p, CallCommand::AllOff);
    let actions = &net.clients[p].actions;
    assert!(actions.contains(&Action::AllDevicesOff) && actions.contains(&Action::StopShare));
    assert!(!net.clients[p].capturing);
    assert!(net.clients[m].events.contains(&CallEvent::ParticipantLeft { id: feed.clone() }), "the share's feed ended there");
    assert!(subscribers.iter().all(|s| net.clients[m].closed.contains(s)));
    assert!(matches!(net.clients[p].share_states().last(), Some(ShareState::Stopped { reason: None })));
}

#[test]
fn a_share_the_policy_refuses_is_never_offered_and_the_server_hears_it_stopped() {
    let (mut net, m, p) = Net::pair();
    let bea = net.clients[p].me();
    net.command(m, CallCommand::Room(RoomAction::GrantPresenter(bea)));
    net.clients[p].policy_refuses = true;
    net.command(p, CallCommand::ShareStart(ShareSource::Window(9)));
    assert!(
        matches!(net.clients[p].share_states().last(), Some(ShareState::Refused { by: Refusal::Policy, reason }) if reason.contains("mail"))
    );
    assert!(net.clients[p].open_peers(|p| matches!(p, Purpose::MeshShare { .. })).is_empty());
    let stop = Action::Signal { route: Route::Main, command: SignalCommand::Room(RoomAction::ShareStop) };
    assert!(net.clients[p].actions.contains(&stop), "the server's record of the share is cleared");
    let share_feeds = net.clients[m].open_peers(|p| matches!(p, Purpose::Subscriber { feed, .. } if feed.ends_with("/screen")));
    assert!(share_feeds.is_empty(), "nothing of the refused window reached the moderator");
}

#[test]
fn the_move_to_janus_ends_the_mesh_and_publishes_once() {
    let (mut net, m, p) = Net::pair();
    let bea = net.clients[p].me();
    net.command(m, CallCommand::Room(RoomAction::GrantPresenter(bea.clone())));
    net.command(p, CallCommand::ShareStart(ShareSource::Window(3)));
    let mesh_pcs: Vec<PeerId> = net.clients[p].peers.keys().copied().collect();
    assert_eq!(mesh_pcs.len(), 3, "publisher, share and subscriber in the mesh");

    let janus = |feed: u64| ServerMsg::Janus {
        url: "janus+ws://127.0.0.1:8188/".into(),
        room: 77,
        pin: Secret::new("pin"),
        token: Secret::new("tok"),
        feed,
        screen_feed: feed + 1000,
    };
    let conn = net.clients[p].conn;
    net.deliver(conn, &janus(bea.parse().expect("id")));
    net.settle();
    let c = &net.clients[p];
    assert!(c.events.contains(&CallEvent::Janus { room: 77, feed: bea.parse().expect("id") }));
    assert!(mesh_pcs.iter().all(|pc| c.closed.contains(pc) || !c.peers.contains_key(pc)), "every mesh connection closed");
    let connect =
        c.actions.iter().find_map(|a| if let Action::ConnectJanus { url, options, .. } = a { Some((url, options)) } else { None });
    let (url, options) = connect.expect("connects to the meeting's Janus room");
    assert_eq!((url.kind, options.room.as_deref()), (ServerKind::Janus, Some("77")));
    let publishes: Vec<&Action> =
        c.actions.iter().filter(|a| matches!(a, Action::Signal { route: Route::Janus, command: SignalCommand::Publish { .. } })).collect();
    assert_eq!(publishes.len(), 1, "camera and microphone go to Janus once");
    assert!(c.actions.iter().any(|a| matches!(a, Action::MoveShare { .. })), "the share continues as its own publisher");
    assert!(c.actions.iter().any(|a| matches!(a, Action::ConnectShare { access: Some(_), .. })), "on the Janus room, with our token");
    assert!(c.actions.iter().any(|a| matches!(a, Action::Signal { route: Route::Share, command: SignalCommand::Publish { .. } })));

    // Janus reports the others; we subscribe there, and the mesh says nothing more.
    let now = net.now;
    let c = &mut net.clients[p];
    let others = vec![
        Participant { id: "900".into(), display: Some("Mo".into()) },
        Participant { id: "901".into(), display: Some("Bea (screen)".into()) },
    ];
    c.call.handle_signal(Route::Share, SignalEvent::Joined { participant_id: "901".into(), participants: vec![] }, now);
    c.call.handle_signal(Route::Janus, SignalEvent::Joined { participant_id: bea.clone(), participants: others }, now);
    let mut subscribed = Vec::new();
    while let Some(a) = c.call.poll_action() {
        if let Action::Signal { route: Route::Janus, command: SignalCommand::Subscribe { feed } } = a {
            subscribed.push(feed);
        }
    }
    assert_eq!(subscribed, vec!["900".to_owned()], "our own share's feed is never subscribed");

    // A second `janus` message changes nothing.
    let before = net.clients[p].actions.len();
    net.deliver(conn, &janus(1));
    net.settle();
    assert_eq!(net.clients[p].actions.len(), before);
}

#[test]
fn a_janus_room_outside_the_policy_ends_the_call_closed() {
    let mut join = JoinOptions { display_name: "Bea".into(), ..JoinOptions::default() };
    join.room = Some("x".into());
    let mut cfg = config(join);
    cfg.servers.allowed = Some(vec![ServerUrl::parse("blende+ws://127.0.0.1:8080").expect("url")]);
    let now = Instant::now();
    let mut call = Call::new(cfg, now);
    let room = JanusRoom { url: "janus+ws://127.0.0.1:8188/".into(), room: 1, pin: "p".into(), token: "t".into(), feed: 4, screen_feed: 5 };
    call.handle_signal(Route::Main, SignalEvent::MovedToJanus(room), now);
    let actions: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert!(!actions.iter().any(|a| matches!(a, Action::ConnectJanus { .. })), "never connects");
    assert!(matches!(actions.last(), Some(Action::End(End::Failed(why))) if why.contains("moved to Janus")), "{actions:?}");
    assert_eq!(call.poll_event().map(|_| ()), Some(()));
}

#[test]
fn on_janus_a_share_has_its_own_session_and_an_early_subscription_is_asked_again() {
    let now = Instant::now();
    let cfg = CallConfig {
        url: ServerUrl::parse("janus+ws://127.0.0.1:8188/").expect("url"),
        ..config(JoinOptions { display_name: "Bea".into(), ..JoinOptions::default() })
    };
    let mut call = Call::new(cfg, now);
    let drain = |call: &mut Call| std::iter::from_fn(|| call.poll_action()).collect::<Vec<_>>();
    let first = drain(&mut call);
    let publisher =
        first.iter().find_map(|a| if let Action::OpenPeer { peer, purpose: Purpose::Publisher, .. } = a { Some(*peer) } else { None });
    let publisher = publisher.expect("a publisher to the server at once");
    call.handle_peer(publisher, PeerEvent::LocalDescription("offer".into()), now);
    assert_eq!(drain(&mut call), vec![Action::Signal { route: Route::Main, command: SignalCommand::Publish { sdp: "offer".into() } }]);

    // Somebody publishes; asked too early, the server never offers: asked again after 2 s.
    call.handle_signal(Route::Main, SignalEvent::ParticipantJoined(Participant { id: "5".into(), display: None }), now);
    let subscribe = Action::Signal { route: Route::Main, command: SignalCommand::Subscribe { feed: "5".into() } };
    assert_eq!(drain(&mut call), vec![subscribe.clone()]);
    let due = call.poll_timeout().expect("a deadline");
    assert_eq!(due, now + RESUBSCRIBE_AFTER);
    call.handle_timeout(due - Duration::from_millis(1));
    assert!(drain(&mut call).is_empty(), "not before the deadline");
    call.handle_timeout(due);
    assert_eq!(drain(&mut call), vec![subscribe]);
    call.handle_signal(Route::Main, SignalEvent::SubscriptionOffer { feed: "5".into(), sdp: "o".into() }, due);
    assert!(matches!(drain(&mut call).as_slice(), [Action::OpenPeer { purpose: Purpose::Subscriber { .. }, remote_offer: Some(_), .. }]));
    assert_eq!(call.poll_timeout(), None, "offered: no more asking");

    // The share: capture first, then its own session, then its offer there.
    call.handle_command(CallCommand::ShareStart(ShareSource::Window(1)), due);
    let start = drain(&mut call);
    let Some(Action::StartShare { peer: Some(share_pc), .. }) = start.first().cloned() else { panic!("{start:?}") };
    call.handle_share(ShareReport::Started, due);
    call.handle_peer(share_pc, PeerEvent::LocalDescription("share offer".into()), due);
    let next = drain(&mut call);
    assert!(matches!(&next[0], Action::ConnectShare { access: None, options, .. } if options.display_name == "Bea (screen)"), "{next:?}");
    assert_eq!(next[1], Action::Signal { route: Route::Share, command: SignalCommand::Publish { sdp: "share offer".into() } });
    call.handle_signal(Route::Share, SignalEvent::Joined { participant_id: "66".into(), participants: vec![] }, due);
    call.handle_signal(Route::Share, SignalEvent::PublishAnswer { sdp: "a".into() }, due);
    assert_eq!(drain(&mut call), vec![Action::ApplyAnswer { peer: share_pc, sdp: "a".into() }]);
    // Our own share appearing in the room is not subscribed.
    call.handle_signal(Route::Main, SignalEvent::ParticipantJoined(Participant { id: "66".into(), display: None }), due);
    assert!(drain(&mut call).is_empty());

    // Ctrl+Alt+S: the share stops, its session leaves; a late answer does nothing.
    call.handle_command(CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false }, due);
    assert_eq!(drain(&mut call), vec![Action::StopShare]);
    call.handle_signal(Route::Share, SignalEvent::PublishAnswer { sdp: "late".into() }, due);
    assert!(drain(&mut call).is_empty());
    // The window closing ends a share for good too (a new one is a new start).
    call.handle_command(CallCommand::ShareStart(ShareSource::Window(2)), due);
    let _ = drain(&mut call);
    call.handle_share(ShareReport::Started, due);
    call.handle_share(ShareReport::Ended, due);
    assert!(drain(&mut call).contains(&Action::StopShare));
    assert!(!call.is_sharing());
}

#[test]
fn a_share_asked_for_before_admission_is_requested_once_we_are_in() {
    let now = Instant::now();
    let mut call = Call::new(config(JoinOptions { display_name: "Bea".into(), ..JoinOptions::default() }), now);
    call.handle_command(CallCommand::ShareStart(ShareSource::Window(4)), now);
    let request = Action::Signal { route: Route::Main, command: SignalCommand::Room(RoomAction::ShareStart) };
    let before: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert!(!before.contains(&request), "the server would refuse a request from the lobby: {before:?}");
    call.handle_signal(Route::Main, SignalEvent::Joined { participant_id: "7".into(), participants: vec![] }, now);
    let after: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert_eq!(after.iter().filter(|a| **a == request).count(), 1, "{after:?}");
    assert!(!after.iter().any(|a| matches!(a, Action::StartShare { .. })), "the capture waits for the server's yes");

    // A meeting that moves to Janus at the admission sends no `Joined` of its own: the
    // admission is enough, and the server's yes then opens the capture for the Janus room.
    let mut call = Call::new(config(JoinOptions { display_name: "Bea".into(), ..JoinOptions::default() }), now);
    call.handle_command(CallCommand::ShareStart(ShareSource::Window(4)), now);
    call.handle_signal(Route::Main, SignalEvent::Lobby { state: LobbyState::Admitted, participant_id: "7".into() }, now);
    let room = JanusRoom { url: "janus+ws://127.0.0.1:8188/".into(), room: 1, pin: "p".into(), token: "t".into(), feed: 7, screen_feed: 8 };
    call.handle_signal(Route::Main, SignalEvent::MovedToJanus(room), now);
    let actions: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert_eq!(actions.iter().filter(|a| **a == request).count(), 1, "{actions:?}");
    call.handle_signal(Route::Main, SignalEvent::Share { participant: "7".into(), active: true }, now);
    let started: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert!(matches!(started.as_slice(), [Action::StartShare { peer: Some(_), .. }]), "{started:?}");
}

#[test]
fn exit_statuses_follow_join_md() {
    let now = Instant::now();
    let cases = [
        (SignalEvent::Kicked, 4),
        (SignalEvent::RoomDestroyed, 4),
        (SignalEvent::Error { message: "wrong pin".into(), fatal: true }, 1),
        (SignalEvent::Closed { reason: "server closed".into() }, 0),
    ];
    for (event, status) in cases {
        let mut call = Call::new(config(JoinOptions::default()), now);
        call.handle_signal(Route::Main, event.clone(), now);
        let end = std::iter::from_fn(|| call.poll_action()).find_map(|a| if let Action::End(e) = a { Some(e) } else { None });
        assert_eq!(end.map(|e| e.exit_status()), Some(status), "{event:?}");
        assert!(call.is_ended());
    }
    let mut call = Call::new(config(JoinOptions::default()), now);
    call.handle_command(CallCommand::InputClosed, now);
    let actions: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
    assert!(actions.contains(&Action::Signal { route: Route::Main, command: SignalCommand::Leave }));
    assert_eq!(actions.last(), Some(&Action::End(End::Left("end of input".into()))));
}

// ---- model-based: random inputs, invariants on the actions ----

#[derive(Clone, Debug)]
enum Input {
    Command(CallCommand),
    Signal(SignalEvent),
    /// An event for the n-th PeerConnection made so far.
    Peer(usize, PeerEvent),
    Share(ShareReport),
    Wait(u64),
}

fn participant() -> impl Strategy<Value = String> {
    prop_oneof![Just("2".to_owned()), Just("3".to_owned())]
}

fn input() -> impl Strategy<Value = Input> {
    let command = prop_oneof![
        Just(CallCommand::ShareStart(ShareSource::Window(1))),
        Just(CallCommand::ShareStop),
        Just(CallCommand::AllOff),
        Just(CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false }),
        Just(CallCommand::Switch { kind: DeviceKind::Camera, on: false }),
        Just(CallCommand::Switch { kind: DeviceKind::Camera, on: true }),
        Just(CallCommand::Stats),
    ];
    let signal = prop_oneof![
        participant().prop_map(|p| SignalEvent::ParticipantJoined(Participant { id: p, display: None })),
        participant().prop_map(|id| SignalEvent::ParticipantLeft { id }),
        participant().prop_map(|peer| SignalEvent::PublishTo { peer }),
        (participant(), any::<bool>())
            .prop_map(|(p, s)| SignalEvent::SubscriptionOffer { feed: if s { format!("{p}/screen") } else { p }, sdp: "o".into() }),
        (participant(), any::<bool>())
            .prop_map(|(p, s)| SignalEvent::PeerAnswer { peer: if s { format!("{p}/screen") } else { p }, sdp: "a".into() }),
        participant().prop_map(|p| SignalEvent::RemoteCandidate {
            feed: Some(p),
            candidate: "c".into(),
            sdp_mid: None,
            sdp_mline_index: None
        }),
        any::<bool>().prop_map(|active| SignalEvent::Share { participant: "1".into(), active }),
        participant().prop_map(|p| SignalEvent::Share { participant: p, active: false }),
        Just(SignalEvent::IceServers(vec![TurnCredentials {
            urls: vec!["turn:t".into()],
            username: "u".into(),
            credential: "c".into(),
            ttl_s: 1
        }])),
        Just(SignalEvent::Refused { request: "share_start".into(), not_allowed: true, message: "no".into() }),
        Just(SignalEvent::PublishAnswer { sdp: "a".into() }),
    ];
    let peer = (
        0..8usize,
        prop_oneof![
            Just(PeerEvent::State { state: ConnState::Connected, candidates: None }),
            Just(PeerEvent::Failed("x".into())),
            Just(PeerEvent::TrackStarted(MediaKind::Video)),
        ],
    )
        .prop_map(|(n, e)| Input::Peer(n, e));
    let share = prop_oneof![Just(ShareReport::Started), Just(ShareReport::Ended), Just(ShareReport::Refused("r".into()))];
    prop_oneof![
        3 => command.prop_map(Input::Command),
        5 => signal.prop_map(Input::Signal),
        2 => peer,
        1 => share.prop_map(Input::Share),
        1 => (0..3000u64).prop_map(Input::Wait),
    ]
}

/// The participant an action concerns, if any.
fn concerns(action: &Action, purposes: &BTreeMap<PeerId, Purpose>) -> Option<String> {
    let of_purpose = |p: &Purpose| match p {
        Purpose::MeshPublisher { to } | Purpose::MeshShare { to } => Some(to.clone()),
        Purpose::Subscriber { feed, .. } => Some(feed.split('/').next().unwrap_or(feed).to_owned()),
        _ => None,
    };
    match action {
        Action::OpenPeer { purpose, .. } => of_purpose(purpose),
        Action::ApplyAnswer { peer, .. } | Action::AddCandidate { peer, .. } => purposes.get(peer).and_then(of_purpose),
        _ => None,
    }
}

fn run_model(kind: &str, inputs: Vec<Input>) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let cfg = CallConfig {
        url: ServerUrl::parse(kind).expect("url"),
        ..config(JoinOptions { display_name: "Me".into(), ..JoinOptions::default() })
    };
    let mut call = Call::new(cfg, now);
    call.handle_signal(Route::Main, SignalEvent::Joined { participant_id: "1".into(), participants: vec![] }, now);
    let mut made: Vec<PeerId> = Vec::new();
    let mut purposes: BTreeMap<PeerId, Purpose> = BTreeMap::new();
    // Killed: a kill came and no new start since. Gone: left, and not back since.
    let mut killed = false;
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for input in inputs {
        match input {
            Input::Command(c) => {
                match &c {
                    CallCommand::ShareStart(_) => killed = false,
                    CallCommand::ShareStop | CallCommand::AllOff | CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false } => {
                        killed = true
                    }
                    _ => {}
                }
                call.handle_command(c, now);
            }
            Input::Signal(e) => {
                match &e {
                    SignalEvent::ParticipantLeft { id } => {
                        gone.insert(id.clone());
                    }
                    SignalEvent::ParticipantJoined(p) => {
                        gone.remove(&p.id);
                    }
                    SignalEvent::PublishTo { peer } => {
                        gone.remove(peer);
                    }
                    _ => {}
                }
                call.handle_signal(Route::Main, e, now);
            }
            Input::Peer(n, e) => {
                if let Some(peer) = made.get(n) {
                    call.handle_peer(*peer, e, now);
                }
            }
            Input::Share(r) => call.handle_share(r, now),
            Input::Wait(ms) => {
                now += Duration::from_millis(ms);
                call.handle_timeout(now);
            }
        }
        while let Some(action) = call.poll_action() {
            let share_action = matches!(
                &action,
                Action::StartShare { .. }
                    | Action::ConnectShare { .. }
                    | Action::MoveShare { .. }
                    | Action::OpenPeer { purpose: Purpose::MeshShare { .. } | Purpose::Share, .. }
            );
            prop_assert!(!(killed && share_action), "share action after a kill: {action:?}");
            if let Some(who) = concerns(&action, &purposes) {
                prop_assert!(!gone.contains(&who), "peer action for {who}, who left: {action:?}");
            }
            if let Action::OpenPeer { peer, purpose, remote_offer } = &action {
                made.push(*peer);
                purposes.insert(*peer, purpose.clone());
                call.handle_peer(
                    *peer,
                    PeerEvent::LocalDescription(if remote_offer.is_some() { "answer".into() } else { "offer".into() }),
                    now,
                );
            }
            if let Action::StartShare { peer, .. } = &action {
                call.handle_share(ShareReport::Started, now);
                if let Some(peer) = peer {
                    made.push(*peer);
                    purposes.insert(*peer, Purpose::Share);
                }
            }
            if matches!(action, Action::End(_)) {
                prop_assert!(call.is_ended());
            }
        }
        while call.poll_event().is_some() {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_share_after_a_kill_and_nothing_for_those_who_left_in_a_mesh(inputs in proptest::collection::vec(input(), 1..60)) {
        run_model("blende+ws://127.0.0.1:8080", inputs)?;
    }

    #[test]
    fn no_share_after_a_kill_and_nothing_for_those_who_left_on_janus(inputs in proptest::collection::vec(input(), 1..60)) {
        run_model("janus+ws://127.0.0.1:8188/", inputs)?;
    }
}
