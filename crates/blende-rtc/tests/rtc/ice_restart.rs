//! An ICE restart on a live connection: the offerer makes a new offer with new ICE credentials,
//! the answerer answers it on the same connection, and the data channel (so DTLS and SCTP)
//! carries on, never closed, with the DTLS session from before.

use std::time::Duration;

use blende_rtc::{ConnectionState, Peer, PeerRole, RtcEvent};

use crate::data_channel::{config, open_link as link};
use tokio::sync::mpsc;

fn ufrag(sdp: &str) -> String {
    sdp.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).expect("an ice-ufrag").trim().to_owned()
}

/// The next message on the channel; the channel and connection must not close meanwhile.
/// (The answering side offers a channel of its own too, so a second opening is no sign.)
async fn data(side: &str, events: &mut mpsc::Receiver<RtcEvent>, restarted: bool) -> Vec<u8> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("in time").expect("events") {
            RtcEvent::Data(b) => return b.to_vec(),
            RtcEvent::State(ConnectionState::Failed) => panic!("connection failed"),
            RtcEvent::DataClosed => panic!("the channel closed"),
            RtcEvent::State(ConnectionState::Closed) if restarted => panic!("{side}: the connection closed in the restart"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_connection_and_its_channel() {
    let (offerer, mut a_events) = Peer::new(config(PeerRole::Publisher)).await.expect("offerer");
    let (answerer, mut b_events) = Peer::new(config(PeerRole::Subscriber)).await.expect("answerer");
    let offer = offerer.create_offer().await.expect("offer");
    let answer = answerer.answer_offer(&offer).await.expect("answer");
    offerer.apply_answer(&answer).await.expect("apply");
    let a = link(&mut a_events).await;
    let b = link(&mut b_events).await;
    a.send(b"before").await.expect("send");
    assert_eq!(data("b", &mut b_events, false).await, b"before");

    let restart = offerer.restart_ice().await.expect("restart offer");
    assert_ne!(ufrag(&restart), ufrag(&offer), "a restart offer has new ICE credentials");
    assert!(restart.contains("a=candidate:"), "the restart offer carries its candidates");
    let again = answerer.answer_again(&restart).await.expect("restart answer");
    assert_ne!(ufrag(&again), ufrag(&answer), "so does the answer");
    offerer.apply_answer(&again).await.expect("apply the restart answer");
    // The same channel, both ways, on the new ICE generation.
    let (ours, theirs) = offerer.dtls_fingerprints().await.expect("fingerprints");
    a.send(b"after").await.expect("send after");
    assert_eq!(data("b", &mut b_events, true).await, b"after");
    b.send(b"back").await.expect("send back");
    assert_eq!(data("a", &mut a_events, true).await, b"back");
    assert_eq!(offerer.dtls_fingerprints().await, Some((ours, theirs)), "the DTLS session is the one from before");
    offerer.close().await;
    answerer.close().await;
}
