//! Calls whose signalling is lost, on virtual time. Plain Janus: the old session's
//! connections close, attempts to come back follow the back-off, the new session gets a new
//! publisher, subscriptions and the running share, and every switch stays as the user left it.
//! A Blende room (the real room machine behind [`Net`]): the seat is resumed with its role, past
//! the lobby, the mesh is set up anew and a running share is asked for again.

use std::time::Duration;

use super::*;

pub(super) fn janus_call(now: Instant) -> Call {
    let cfg = CallConfig {
        url: ServerUrl::parse("janus+ws://127.0.0.1:8188/").expect("url"),
        ..config(JoinOptions { room: Some("1234".into()), display_name: "Bea".into(), ..JoinOptions::default() })
    };
    Call::new(cfg, now)
}

pub(super) fn drain(call: &mut Call) -> Vec<Action> {
    std::iter::from_fn(|| call.poll_action()).collect()
}

pub(super) fn events(call: &mut Call) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

fn opened(actions: &[Action], want: impl Fn(&Purpose) -> bool) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| if let Action::OpenPeer { peer, purpose, .. } = a { want(purpose).then_some(*peer) } else { None })
        .collect()
}

/// In the room as feed 7 with feed 5 received, the camera switched off and window 1 shared:
/// (publisher, subscriber, share publisher).
pub(super) fn in_the_room(call: &mut Call, now: Instant) -> (PeerId, PeerId, PeerId) {
    let publisher = opened(&drain(call), |p| *p == Purpose::Publisher)[0];
    call.handle_peer(publisher, PeerEvent::LocalDescription("offer".into()), now);
    call.handle_signal(Route::Main, SignalEvent::Session { resume: "111".into() }, now);
    call.handle_signal(Route::Main, SignalEvent::Joined { participant_id: "7".into(), participants: vec![] }, now);
    call.handle_signal(Route::Main, SignalEvent::ParticipantJoined(Participant { id: "5".into(), display: Some("Cem".into()) }), now);
    call.handle_signal(Route::Main, SignalEvent::SubscriptionOffer { feed: "5".into(), sdp: "o".into() }, now);
    let subscriber = opened(&drain(call), |p| matches!(p, Purpose::Subscriber { .. }))[0];
    call.handle_command(CallCommand::ShareStart(ShareSource::Window(1)), now);
    let Some(Action::StartShare { peer: Some(share), .. }) = drain(call).first().cloned() else { panic!("no share publisher") };
    call.handle_share(ShareReport::Started, now);
    call.handle_peer(share, PeerEvent::LocalDescription("share offer".into()), now);
    call.handle_signal(Route::Share, SignalEvent::Session { resume: "222".into() }, now);
    call.handle_signal(Route::Share, SignalEvent::Joined { participant_id: "66".into(), participants: vec![] }, now);
    call.handle_signal(Route::Share, SignalEvent::PublishUp, now);
    call.handle_command(CallCommand::Switch { kind: DeviceKind::Camera, on: false }, now);
    let _ = drain(call);
    let _ = events(call);
    (publisher, subscriber, share)
}

#[test]
fn a_lost_session_comes_back_with_the_same_switches_and_the_share() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, subscriber, share) = in_the_room(&mut call, t0);

    // The link is cut: the driver's watch reports the session silent.
    let t1 = t0 + Duration::from_secs(30);
    call.handle_signal(Route::Main, SignalEvent::Closed { reason: "the server did not answer for 6 s".into() }, t1);
    let cut = drain(&mut call);
    for peer in [publisher, subscriber, share] {
        assert!(cut.contains(&Action::ClosePeer(peer)), "{peer} stays open: {cut:?}");
    }
    assert!(cut.contains(&Action::Signal { route: Route::Share, command: SignalCommand::Leave }));
    assert!(!cut.iter().any(|a| matches!(a, Action::End(_) | Action::StopShare)), "{cut:?}");
    assert!(call.is_sharing(), "the capture waits behind its gate");
    assert!(matches!(events(&mut call).as_slice(), [CallEvent::Reconnecting { attempt: 1, .. }]));
    // The old session's channel closes after its last event: no news, the first attempt stays due.
    call.handle_signal_closed(Route::Main, t1);
    assert!(events(&mut call).is_empty());

    // During the cut the microphone goes off: the device, and nothing for the dead session.
    call.handle_command(CallCommand::Switch { kind: DeviceKind::Microphone, on: false }, t1);
    assert_eq!(drain(&mut call), vec![Action::SetDevice { kind: DeviceKind::Microphone, on: false }]);

    // Attempts: at once, then 250 ms, 500 ms, 1 s, 2 s, 2 s after each failure.
    assert_eq!(call.poll_timeout(), Some(t1));
    let mut now = t1;
    let mut waits = Vec::new();
    for attempt in 1..=6 {
        call.handle_timeout(now);
        let actions = drain(&mut call);
        let [Action::Reconnect { options }] = actions.as_slice() else { panic!("attempt {attempt}: {actions:?}") };
        assert_eq!(options.resume.as_deref(), Some("111"), "the old session is named, so Janus drops its publisher");
        assert_eq!((options.room.as_deref(), options.display_name.as_str()), (Some("1234"), "Bea"));
        assert_eq!(call.poll_timeout(), None, "one attempt at a time");
        if attempt == 6 {
            break;
        }
        call.handle_reconnect(Err("connection refused".into()), now);
        assert!(matches!(events(&mut call).as_slice(), [CallEvent::Reconnecting { attempt: a, .. }] if *a == attempt + 1));
        let next = call.poll_timeout().expect("the next attempt");
        waits.push((next - now).as_millis());
        call.handle_timeout(next - Duration::from_millis(1));
        assert!(drain(&mut call).is_empty(), "not before it is due");
        now = next;
    }
    assert_eq!(waits, [250, 500, 1000, 2000, 2000]);

    // The sixth attempt connects: a new publisher, its offer to the new session.
    call.handle_reconnect(Ok(()), now);
    let back = drain(&mut call);
    let new_publisher = opened(&back, |p| *p == Purpose::Publisher);
    assert_eq!(new_publisher.len(), 1, "{back:?}");
    assert!(new_publisher[0] > share, "a new connection, never an old one");
    call.handle_peer(new_publisher[0], PeerEvent::LocalDescription("offer 2".into()), now);
    assert_eq!(drain(&mut call), vec![Action::Signal { route: Route::Main, command: SignalCommand::Publish { sdp: "offer 2".into() } }]);
    call.handle_signal(
        Route::Main,
        SignalEvent::Joined { participant_id: "9".into(), participants: vec![Participant { id: "8".into(), display: Some("Cem".into()) }] },
        now,
    );
    assert!(events(&mut call).contains(&CallEvent::Reconnected));
    let subscribe = drain(&mut call);
    assert_eq!(subscribe, vec![Action::Signal { route: Route::Main, command: SignalCommand::Subscribe { feed: "8".into() } }]);

    // The share comes back on a new publisher and session, naming its old session.
    call.handle_timeout(now);
    let resumed = drain(&mut call);
    let [Action::MoveShare { peer: new_share }, Action::ConnectShare { options, access: None, .. }] = resumed.as_slice() else {
        panic!("{resumed:?}")
    };
    assert!(*new_share > new_publisher[0]);
    assert_eq!(options.resume.as_deref(), Some("222"));
    assert_eq!(options.display_name, "Bea (screen)");

    // Nothing was switched on again, and the old connections never came back.
    let all: Vec<Action> = cut.into_iter().chain(back).chain(resumed).collect();
    assert!(!all.iter().any(|a| matches!(a, Action::SetDevice { on: true, .. })), "{all:?}");
    for old in [publisher, subscriber, share] {
        assert!(!all.iter().any(|a| matches!(a, Action::ApplyAnswer { peer, .. } | Action::AddCandidate { peer, .. } if *peer == old)));
    }
}

/// In the room as [`in_the_room`] leaves it, then the session is lost at `t0`.
fn cut_off(t0: Instant) -> Call {
    let mut call = janus_call(t0);
    let _ = in_the_room(&mut call, t0);
    call.handle_signal(Route::Main, SignalEvent::Closed { reason: "cut".into() }, t0);
    call
}

#[test]
fn everything_off_during_the_cut_keeps_the_share_off_after_it() {
    let t0 = Instant::now();
    let mut call = cut_off(t0);
    let _ = drain(&mut call);
    call.handle_command(CallCommand::AllOff, t0);
    let off = drain(&mut call);
    assert!(off.contains(&Action::AllDevicesOff) && off.contains(&Action::StopShare), "{off:?}");
    assert!(!call.is_sharing());
    call.handle_timeout(t0);
    let _ = drain(&mut call);
    call.handle_reconnect(Ok(()), t0);
    call.handle_signal(Route::Main, SignalEvent::Joined { participant_id: "9".into(), participants: vec![] }, t0);
    let later = t0 + Duration::from_secs(10);
    call.handle_timeout(later);
    let after: Vec<Action> = drain(&mut call);
    assert!(
        !after.iter().any(|a| matches!(a, Action::MoveShare { .. } | Action::ConnectShare { .. } | Action::StartShare { .. })),
        "{after:?}"
    );
    assert!(!after.iter().any(|a| matches!(a, Action::SetDevice { on: true, .. })));
}

#[test]
fn a_session_lost_before_we_are_in_again_is_a_failed_attempt() {
    let t0 = Instant::now();
    let mut call = cut_off(t0);
    call.handle_timeout(t0);
    let _ = drain(&mut call);
    call.handle_reconnect(Ok(()), t0);
    // Janus went away again before the join was answered.
    call.handle_signal(Route::Main, SignalEvent::Closed { reason: "the server closed the connection".into() }, t0);
    assert!(!call.is_ended());
    assert_eq!(call.poll_timeout(), Some(t0 + crate::FIRST_RETRY));
    // And a call that cannot come back within the limit ends.
    let mut now = t0;
    while !call.is_ended() {
        now = call.poll_timeout().expect("another attempt");
        call.handle_timeout(now);
        call.handle_reconnect(Err("connection refused".into()), now);
    }
    assert!(now - t0 >= crate::GIVE_UP_AFTER);
    let end = drain(&mut call).into_iter().find_map(|a| if let Action::End(e) = a { Some(e) } else { None });
    assert!(matches!(end, Some(End::Failed(why)) if why.contains("could not be reached again")));
}

#[test]
fn a_lost_share_session_comes_back_while_the_call_goes_on() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, _, share) = in_the_room(&mut call, t0);
    call.handle_signal(Route::Share, SignalEvent::Closed { reason: "the server did not answer for 6 s".into() }, t0);
    assert_eq!(drain(&mut call), vec![Action::ClosePeer(share)]);
    assert!(call.is_sharing());
    let mut now = t0;
    for round in 0..3 {
        now = call.poll_timeout().expect("a new share session is due");
        call.handle_timeout(now);
        let actions = drain(&mut call);
        let [Action::MoveShare { peer }, Action::ConnectShare { options, .. }] = actions.as_slice() else { panic!("{actions:?}") };
        assert_eq!(options.resume.as_deref(), Some("222"));
        if round < 2 {
            // The new session could not be opened.
            call.handle_signal(Route::Share, SignalEvent::Closed { reason: "connection refused".into() }, now);
            assert_eq!(drain(&mut call), vec![Action::ClosePeer(*peer)]);
        } else {
            call.handle_signal(Route::Share, SignalEvent::PublishUp, now);
        }
    }
    assert!(now - t0 >= crate::FIRST_RETRY + crate::FIRST_RETRY * 2, "back-off between the share's attempts");
    assert!(!drain(&mut call).contains(&Action::ClosePeer(publisher)), "the call itself was never touched");
    assert!(call.is_sharing());
}

// ---- a Blende room's mesh ----

/// Mo (moderator) and Bea (presenter, camera off, sharing window 7) in a meeting with a lobby.
fn presenting_pair() -> (Net, usize, usize, String) {
    let (mut net, m, p) = Net::pair();
    let bea = net.clients[p].me();
    net.command(m, CallCommand::Room(RoomAction::GrantPresenter(bea.clone())));
    net.command(p, CallCommand::ShareStart(ShareSource::Window(7)));
    net.command(p, CallCommand::Switch { kind: DeviceKind::Camera, on: false });
    assert!(net.clients[p].capturing);
    assert_eq!(net.clients[m].open_peers(|p| matches!(p, Purpose::Subscriber { feed, .. } if feed.ends_with("/screen"))).len(), 1);
    (net, m, p, bea)
}

/// Cuts `client`'s link for `secs` from now: its silence watch reports the loss at once (the
/// six seconds of silence are the driver's, tested there); the server sees the connection
/// drop only when `server_notices`.
fn cut(net: &mut Net, client: usize, secs: u64, server_notices: bool) -> Instant {
    let now = net.now;
    let c = &mut net.clients[client];
    c.cut_until = Some(now + Duration::from_secs(secs));
    c.signal.handle_transport_closed("the server did not answer for 6 s");
    if server_notices {
        net.room.handle_disconnect(c.conn, now);
    }
    net.clients[client].actions.clear();
    net.clients[client].events.clear();
    net.clients[0].events.clear();
    net.settle();
    now
}

fn run_until(net: &mut Net, done: impl Fn(&Net) -> bool) {
    for _ in 0..1000 {
        if done(net) {
            return;
        }
        net.step();
    }
    panic!("never happened");
}

fn back_in(net: &Net, client: usize) -> bool {
    net.clients[client].events.contains(&CallEvent::Reconnected)
}

#[test]
fn a_mesh_call_resumes_seat_role_and_share_after_a_cut_the_server_did_not_notice() {
    let (mut net, m, p, bea) = presenting_pair();
    let subscriber_before = net.clients[m].open_peers(|_| true);
    let t0 = cut(&mut net, p, 10, false);
    assert!(matches!(net.clients[p].events.as_slice(), [CallEvent::Reconnecting { attempt: 1, .. }]), "{:?}", net.clients[p].events);
    assert!(net.clients[p].capturing, "the capture waits behind its gate");
    run_until(&mut net, |n| back_in(n, p));
    let back_at = net.now;
    assert!(back_at >= t0 + Duration::from_secs(10) && back_at <= t0 + Duration::from_secs(12), "{:?}", back_at - t0);
    net.step();

    // In again at once, under a new id, with the role it had: no lobby.
    let bea_events = &net.clients[p].events;
    assert!(!bea_events.iter().any(|e| matches!(e, CallEvent::Lobby { state: LobbyState::Waiting })), "{bea_events:?}");
    let new_id = bea_events
        .iter()
        .find_map(|e| if let CallEvent::Joined { participant_id, .. } = e { Some(participant_id.clone()) } else { None })
        .expect("joined again");
    assert_ne!(new_id, bea);
    // The moderator saw the old seat go and the new one come; its old connections to Bea closed.
    let mo = &net.clients[m];
    assert!(mo.events.contains(&CallEvent::ParticipantLeft { id: bea.clone() }), "{:?}", mo.events);
    assert!(subscriber_before.iter().all(|pc| mo.closed.contains(pc) || !mo.peers.contains_key(pc)));
    let screen = format!("{new_id}/screen");
    assert_eq!(mo.open_peers(|p| matches!(p, Purpose::Subscriber { feed, .. } if *feed == screen)).len(), 1, "the share is back");
    assert_eq!(mo.open_peers(|p| matches!(p, Purpose::Subscriber { feed, .. } if *feed == new_id)).len(), 1, "Bea's media is back");
    assert!(mo.mesh_connected_to(&new_id) >= 1);

    // Bea: new connections to the moderator, the capture never stopped, nothing switched on.
    let c = &net.clients[p];
    assert_eq!(c.open_peers(|p| matches!(p, Purpose::MeshShare { .. })).len(), 1);
    assert_eq!(c.open_peers(|p| matches!(p, Purpose::MeshPublisher { .. })).len(), 1);
    assert!(c.capturing);
    assert!(!c.actions.iter().any(|a| matches!(a, Action::StopShare | Action::StartShare { .. } | Action::SetDevice { on: true, .. })));
    assert!(matches!(c.share_states().last(), Some(ShareState::Published { feed: None })), "{:?}", c.share_states());
    // The room shows Bea's camera off, as it was.
    assert!(
        net.clients[m]
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::RemoteDevices { participant, camera: false, .. } if *participant == new_id)),
        "{:?}",
        net.clients[m].events
    );
}

#[test]
fn after_a_long_cut_the_server_noticed_the_seat_is_still_kept() {
    let (mut net, _m, p, _bea) = presenting_pair();
    let t0 = cut(&mut net, p, 60, true);
    run_until(&mut net, |n| back_in(n, p));
    assert!(net.now - t0 <= Duration::from_secs(62), "{:?}", net.now - t0);
    net.step();
    let c = &net.clients[p];
    assert!(!c.events.iter().any(|e| matches!(e, CallEvent::Lobby { state: LobbyState::Waiting })));
    assert!(c.capturing && c.call.is_sharing());
    assert_eq!(c.open_peers(|p| matches!(p, Purpose::MeshShare { .. })).len(), 1);
}

#[test]
fn past_the_grace_period_a_returning_member_waits_in_the_lobby_and_loses_the_share() {
    let (mut net, m, p, _bea) = presenting_pair();
    let grace = RoomConfig::default().resume_grace;
    let _ = cut(&mut net, p, grace.as_secs() + 10, true);
    run_until(&mut net, |n| n.clients[p].events.contains(&CallEvent::Lobby { state: LobbyState::Waiting }));
    assert!(!net.clients[p].call.is_ended(), "a refused resume is no failure: the join follows");
    // Admitted again as a plain participant: the share is refused and ends, its capture too.
    let waiting = net.clients[m]
        .events
        .iter()
        .rev()
        .find_map(|e| if let CallEvent::Waiting { participants } = e { participants.first().cloned() } else { None })
        .expect("the moderator sees the returning member waiting");
    net.command(m, CallCommand::Room(RoomAction::Admit(waiting.id)));
    net.step();
    let c = &net.clients[p];
    assert!(c.events.contains(&CallEvent::Reconnected));
    assert!(!c.capturing && !c.call.is_sharing());
    assert!(matches!(c.share_states().last(), Some(ShareState::Stopped { reason: Some(_) })), "{:?}", c.share_states());
}

#[test]
fn a_member_waiting_in_the_lobby_comes_back_to_the_lobby() {
    let mut net = Net::new();
    let m = net.join("Mo", true);
    let p = net.join("Bea", false);
    assert!(net.clients[p].events.contains(&CallEvent::Lobby { state: LobbyState::Waiting }));
    let _ = cut(&mut net, p, 5, true);
    assert!(matches!(net.clients[p].events.as_slice(), [CallEvent::Reconnecting { attempt: 1, .. }]), "{:?}", net.clients[p].events);
    run_until(&mut net, |n| back_in(n, p));
    assert!(net.clients[p].events.contains(&CallEvent::Lobby { state: LobbyState::Waiting }), "waiting again, without a password");
    assert!(!net.clients[p].events.iter().any(|e| matches!(e, CallEvent::Joined { .. })), "not let in by the reconnect");
    let waiting = net.clients[m]
        .events
        .iter()
        .rev()
        .find_map(|e| if let CallEvent::Waiting { participants } = e { Some(participants.clone()) } else { None })
        .expect("the moderator's lobby list");
    assert_eq!(waiting.len(), 1, "one entry, the new seat: {waiting:?}");
    net.command(m, CallCommand::Room(RoomAction::Admit(waiting[0].id.clone())));
    net.step();
    assert!(net.clients[p].events.iter().any(|e| matches!(e, CallEvent::Joined { .. })));
    assert_eq!(net.clients[p].open_peers(|p| matches!(p, Purpose::MeshPublisher { .. })).len(), 1);
}
