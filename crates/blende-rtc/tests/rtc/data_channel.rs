//! Two Blende peers on loopback with the `blende-p2p/1` data channel: messages both ways, both
//! ends derive the same DTLS fingerprint pair from the handshake, and 64 MB in 64 KiB messages
//! arrive complete and in order.

use std::time::Duration;

use blende_rtc::{ConnectionState, DataLink, Peer, PeerConfig, PeerRole, RtcEvent};
use tokio::sync::mpsc;

/// A data-only peer on loopback (also the ICE-restart test's).
pub(crate) fn config(role: PeerRole) -> PeerConfig {
    PeerConfig {
        role,
        ice_bind_ip: Some("127.0.0.1".parse().expect("ip")),
        video: None,
        audio: false,
        data_channel: true,
        ..PeerConfig::default()
    }
}

/// Waits for the channel to open on one side, skipping state changes.
pub(crate) async fn open_link(events: &mut mpsc::Receiver<RtcEvent>) -> DataLink {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("in time").expect("events") {
            RtcEvent::DataOpen(link) => return link,
            RtcEvent::State(ConnectionState::Failed) => panic!("connection failed"),
            _ => {}
        }
    }
}

async fn next_data(events: &mut mpsc::Receiver<RtcEvent>) -> bytes::Bytes {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("in time").expect("events") {
            RtcEvent::Data(b) => return b,
            RtcEvent::DataClosed => panic!("closed"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_fingerprints_and_back_pressure() {
    let (offerer, mut a_events) = Peer::new(config(PeerRole::Publisher)).await.expect("offerer");
    let (answerer, mut b_events) = Peer::new(config(PeerRole::Subscriber)).await.expect("answerer");
    let offer = offerer.create_offer().await.expect("offer");
    assert!(offer.contains("m=application"), "the offer carries the data channel");
    let answer = answerer.answer_offer(&offer).await.expect("answer");
    offerer.apply_answer(&answer).await.expect("apply");

    let a = open_link(&mut a_events).await;
    let b = open_link(&mut b_events).await;
    a.send(b"J{\"type\":\"chat\",\"text\":\"Hallo\",\"private\":false}").await.expect("send a");
    assert_eq!(&next_data(&mut b_events).await[..], b"J{\"type\":\"chat\",\"text\":\"Hallo\",\"private\":false}");
    b.send(b"answer").await.expect("send b");
    assert_eq!(&next_data(&mut a_events).await[..], b"answer");

    // The identity check's input: each side's own and the other's certificate, as the
    // handshake showed them, agree crosswise.
    let (a_ours, a_theirs) = offerer.dtls_fingerprints().await.expect("a fingerprints");
    let (b_ours, b_theirs) = answerer.dtls_fingerprints().await.expect("b fingerprints");
    assert_eq!(a_ours, b_theirs);
    assert_eq!(b_ours, a_theirs);
    assert_ne!(a_ours, b_ours, "each end has its own certificate");

    // One certificate for every connection of a call: a second connection shows the same one.
    let certificate = blende_rtc::DtlsCertificate::generate().expect("certificate");
    let with_cert = |role| PeerConfig { certificate: Some(certificate.clone()), ..config(role) };
    let (c1, mut c1_events) = Peer::new(with_cert(PeerRole::Publisher)).await.expect("c1");
    let (c2, mut c2_events) = Peer::new(with_cert(PeerRole::Publisher)).await.expect("c2");
    let (d1, mut d1_events) = Peer::new(config(PeerRole::Subscriber)).await.expect("d1");
    let (d2, mut d2_events) = Peer::new(config(PeerRole::Subscriber)).await.expect("d2");
    for (c, d) in [(&c1, &d1), (&c2, &d2)] {
        let answer = d.answer_offer(&c.create_offer().await.expect("offer")).await.expect("answer");
        c.apply_answer(&answer).await.expect("apply");
    }
    for events in [&mut c1_events, &mut c2_events, &mut d1_events, &mut d2_events] {
        open_link(events).await;
    }
    let (c1_ours, _) = c1.dtls_fingerprints().await.expect("c1 fingerprints");
    let (c2_ours, _) = c2.dtls_fingerprints().await.expect("c2 fingerprints");
    let (_, d1_theirs) = d1.dtls_fingerprints().await.expect("d1 fingerprints");
    let (_, d2_theirs) = d2.dtls_fingerprints().await.expect("d2 fingerprints");
    assert_eq!(c1_ours, c2_ours);
    assert_eq!(d1_theirs, c1_ours);
    assert_eq!(d2_theirs, c1_ours);
    for p in [c1, c2, d1, d2] {
        p.close().await;
    }

    // 64 MB in 64 KiB messages, the sender waiting on the send buffer: all in order.
    const MESSAGES: usize = 1024;
    let message = vec![0x5a_u8; 64 * 1024];
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let mut m = message.clone();
            m[..8].copy_from_slice(&(i as u64).to_be_bytes());
            a.send(&m).await.expect("send");
        }
        a
    });
    for i in 0..MESSAGES {
        let got = next_data(&mut b_events).await;
        assert_eq!(got.len(), 64 * 1024);
        assert_eq!(u64::from_be_bytes(got[..8].try_into().expect("8")), i as u64, "in order, none lost");
    }
    let a = sender.await.expect("sender");
    a.close().await;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), b_events.recv()).await.expect("in time") {
            Some(RtcEvent::DataClosed) | None => break,
            _ => {}
        }
    }
    offerer.close().await;
    answerer.close().await;
}
