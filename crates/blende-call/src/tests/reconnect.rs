//! A plain Janus call whose signalling is lost, on virtual time: the old session's
//! connections close, attempts to come back follow the back-off, the new session gets a new
//! publisher, subscriptions and the running share, and every switch stays as the user left it.

use std::time::Duration;

use super::*;

fn janus_call(now: Instant) -> Call {
    let cfg = CallConfig {
        url: ServerUrl::parse("janus+ws://127.0.0.1:8188/").expect("url"),
        ..config(JoinOptions { room: Some("1234".into()), display_name: "Bea".into(), ..JoinOptions::default() })
    };
    Call::new(cfg, now)
}

fn drain(call: &mut Call) -> Vec<Action> {
    std::iter::from_fn(|| call.poll_action()).collect()
}

fn events(call: &mut Call) -> Vec<CallEvent> {
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
fn in_the_room(call: &mut Call, now: Instant) -> (PeerId, PeerId, PeerId) {
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
