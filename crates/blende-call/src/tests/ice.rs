//! Connections whose ICE fails while signalling stays up (a UDP path cut, a new address), on
//! virtual time. On Janus our publisher restarts ICE on the same connection and a
//! subscription is made anew; a link that keeps failing is restarted on the back-off; without
//! signalling nothing is restarted (the reconnect makes everything anew). On a mesh the
//! offering side offers again and the other replaces its connection; switches stay as they
//! were throughout.

use std::time::Duration;

use super::reconnect::{drain, events, in_the_room, janus_call};
use super::*;

fn failed() -> PeerEvent {
    PeerEvent::State { state: ConnState::Failed, candidates: None }
}

fn connected() -> PeerEvent {
    PeerEvent::State { state: ConnState::Connected, candidates: None }
}

#[test]
fn on_janus_the_publisher_restarts_ice_on_the_same_connection_with_the_back_off() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, _, _) = in_the_room(&mut call, t0);
    let t1 = t0 + Duration::from_secs(40);
    call.handle_peer(publisher, failed(), t1);
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    // The restart offer goes out as the first offer did; Janus's answer is applied to it.
    call.handle_peer(publisher, PeerEvent::LocalDescription("restart offer".into()), t1);
    assert_eq!(
        drain(&mut call),
        vec![Action::Signal { route: Route::Main, command: SignalCommand::Publish { sdp: "restart offer".into() } }]
    );
    call.handle_signal(Route::Main, SignalEvent::PublishAnswer { sdp: "restart answer".into() }, t1);
    assert_eq!(drain(&mut call), vec![Action::ApplyAnswer { peer: publisher, sdp: "restart answer".into() }]);
    assert!(!call.is_ended());

    // The path is still cut: the checks fail again soon. The next restart waits for the back-off.
    let t2 = t1 + Duration::from_millis(100);
    call.handle_peer(publisher, failed(), t2);
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.poll_timeout(), Some(t1 + crate::FIRST_RETRY));
    call.handle_timeout(t1 + crate::FIRST_RETRY);
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    // Up again: the next failure is acted on at once.
    call.handle_peer(publisher, connected(), t2 + Duration::from_secs(1));
    let _ = events(&mut call);
    call.handle_peer(publisher, failed(), t2 + Duration::from_millis(1100));
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    // The camera was off and stays off; nothing was closed or switched on.
    call.handle_peer(publisher, PeerEvent::LocalDescription("third".into()), t2 + Duration::from_millis(1100));
    let all = drain(&mut call);
    assert!(
        !all.iter().any(|a| matches!(a, Action::SetDevice { on: true, .. } | Action::ClosePeer(_) | Action::OpenPeer { .. })),
        "{all:?}"
    );
}

#[test]
fn on_janus_a_failed_subscription_is_made_anew() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, subscriber, _) = in_the_room(&mut call, t0);
    call.handle_peer(subscriber, failed(), t0);
    let actions = drain(&mut call);
    assert_eq!(
        actions,
        vec![
            Action::ClosePeer(subscriber),
            Action::Signal { route: Route::Main, command: SignalCommand::Unsubscribe { feed: "5".into() } },
            Action::Signal { route: Route::Main, command: SignalCommand::Subscribe { feed: "5".into() } },
        ]
    );
    call.handle_signal(Route::Main, SignalEvent::SubscriptionOffer { feed: "5".into(), sdp: "o2".into() }, t0);
    let again = drain(&mut call);
    let [Action::OpenPeer { peer, purpose: Purpose::Subscriber { feed, .. }, remote_offer: Some(offer) }] = again.as_slice() else {
        panic!("no new subscription")
    };
    assert!(*peer > subscriber && feed == "5" && offer == "o2");
    // An event of the old connection is no news any more.
    call.handle_peer(subscriber, failed(), t0 + Duration::from_secs(5));
    assert!(drain(&mut call).is_empty());
    let _ = publisher;
}

#[test]
fn without_signalling_nothing_is_restarted_and_a_restart_that_cannot_be_made_reconnects() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, _, _) = in_the_room(&mut call, t0);
    call.handle_peer(publisher, failed(), t0);
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    // The offer cannot be made: a new session, not the end of the call.
    call.handle_peer(publisher, PeerEvent::Failed("gathering timed out".into()), t0);
    assert!(!call.is_ended());
    assert!(drain(&mut call).contains(&Action::ClosePeer(publisher)));
    assert!(matches!(events(&mut call).as_slice(), [.., CallEvent::Reconnecting { attempt: 1, .. }]));

    // While the session is being made again, a failing connection waits for it.
    let mut call = janus_call(t0);
    let (publisher, subscriber, _) = in_the_room(&mut call, t0);
    call.handle_signal(Route::Main, SignalEvent::Closed { reason: "cut".into() }, t0);
    let _ = drain(&mut call);
    for peer in [publisher, subscriber] {
        call.handle_peer(peer, failed(), t0 + Duration::from_secs(30));
    }
    assert!(!drain(&mut call).iter().any(|a| matches!(a, Action::RestartIce { .. } | Action::Signal { .. })));
}

#[test]
fn on_a_mesh_the_offering_side_offers_again_and_the_other_replaces_its_connection() {
    let (mut net, m, p) = Net::pair();
    net.command(p, CallCommand::Switch { kind: DeviceKind::Microphone, on: false });
    let mo = net.clients[m].me();
    let bea = net.clients[p].me();
    let to_mo = net.clients[p].open_peers(|q| matches!(q, Purpose::MeshPublisher { to } if *to == mo))[0];
    let from_bea = net.clients[m].open_peers(|q| matches!(q, Purpose::Subscriber { feed, .. } if *feed == bea))[0];
    net.clients[p].actions.clear();
    let now = net.now;
    // Both ends see the path fail; each restarts the link it offered.
    let from_mo = net.clients[p].open_peers(|q| matches!(q, Purpose::Subscriber { feed, .. } if *feed == mo))[0];
    net.clients[p].call.handle_peer(to_mo, failed(), now);
    net.clients[p].call.handle_peer(from_mo, failed(), now);
    net.settle();
    let bea_now = &net.clients[p];
    let new_to_mo = bea_now.open_peers(|q| matches!(q, Purpose::MeshPublisher { to } if *to == mo));
    assert_eq!(new_to_mo.len(), 1, "one connection to Mo");
    assert!(new_to_mo[0] > to_mo && bea_now.closed.contains(&to_mo), "a new one, the old one closed");
    let mo_now = &net.clients[m];
    let new_from_bea = mo_now.open_peers(|q| matches!(q, Purpose::Subscriber { feed, .. } if *feed == bea));
    assert_eq!(new_from_bea.len(), 1);
    assert!(new_from_bea[0] > from_bea && mo_now.closed.contains(&from_bea), "Mo replaced its side on the new offer");
    assert!(!bea_now.actions.iter().any(|a| matches!(a, Action::SetDevice { on: true, .. })), "the microphone stays off");
    assert_eq!(
        bea_now.open_peers(|q| matches!(q, Purpose::Subscriber { feed, .. } if *feed == mo)),
        [from_mo],
        "Mo's offer is Mo's to make"
    );
}

#[test]
fn a_restart_made_while_the_path_is_still_cut_is_made_again_when_it_does_not_connect() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (publisher, _, _) = in_the_room(&mut call, t0);
    let t1 = t0 + Duration::from_secs(30);
    call.handle_peer(publisher, failed(), t1);
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    call.handle_peer(publisher, PeerEvent::LocalDescription("restart offer".into()), t1);
    call.handle_signal(Route::Main, SignalEvent::PublishAnswer { sdp: "restart answer".into() }, t1);
    let _ = drain(&mut call);
    // Its checks die unanswered and ICE stays "checking": no second Failed for 30 s. The
    // restart is made again an attempt's length later, and again after that.
    assert_eq!(call.poll_timeout(), Some(t1 + crate::reconnect::ICE_ATTEMPT));
    call.handle_timeout(t1 + crate::reconnect::ICE_ATTEMPT - Duration::from_millis(1));
    assert!(drain(&mut call).is_empty(), "not before the attempt is over");
    let t2 = t1 + crate::reconnect::ICE_ATTEMPT;
    call.handle_timeout(t2);
    assert_eq!(drain(&mut call), vec![Action::RestartIce { peer: publisher }]);
    // The path is back: this one connects, and nothing more is restarted.
    call.handle_peer(publisher, connected(), t2 + Duration::from_millis(50));
    let _ = events(&mut call);
    call.handle_timeout(t2 + crate::reconnect::ICE_ATTEMPT * 3);
    assert!(!drain(&mut call).iter().any(|a| matches!(a, Action::RestartIce { .. })));
    assert!(!call.is_ended());
}

#[test]
fn on_janus_a_publisher_announced_again_after_its_ice_restart_keeps_our_subscription() {
    let t0 = Instant::now();
    let mut call = janus_call(t0);
    let (_, subscriber, _) = in_the_room(&mut call, t0);
    let _ = events(&mut call);
    // Their configure with a restart offer: Janus lists the publisher once more.
    call.handle_signal(Route::Main, SignalEvent::ParticipantJoined(Participant { id: "5".into(), display: None }), t0);
    assert!(drain(&mut call).is_empty(), "no second subscription");
    assert!(!events(&mut call).iter().any(|e| matches!(e, CallEvent::ParticipantJoined(_))), "nobody new");
    // Our subscription is still the one that is restarted when it fails.
    call.handle_peer(subscriber, failed(), t0 + Duration::from_secs(30));
    assert_eq!(
        drain(&mut call),
        vec![
            Action::ClosePeer(subscriber),
            Action::Signal { route: Route::Main, command: SignalCommand::Unsubscribe { feed: "5".into() } },
            Action::Signal { route: Route::Main, command: SignalCommand::Subscribe { feed: "5".into() } },
        ]
    );
}
