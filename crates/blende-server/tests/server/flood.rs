//! One member flooding a meeting: 20,000 `device_state` (each makes the server send the roster
//! to everyone) and 300 offers of 60 KiB to one victim, while the others read slowly as clients
//! on thin links do. Nobody else is dropped, the attackers are closed, and pings from a
//! bystander and from another meeting are answered within a second.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Client, Server};

const SLOW_READ: Duration = Duration::from_secs(3);

async fn member(server: &Server, n: u8, id: &str, pw: &str) -> Client {
    let mut c = server.client_from(std::net::Ipv4Addr::new(127, 0, 20, n)).await;
    c.hello().await;
    let m = c.join(id, pw).await;
    assert_eq!(m["state"], "admitted", "{m}");
    c
}

/// Round trip of a ping, reading (and dropping) whatever was queued before the pong.
async fn ping_time(c: &mut Client) -> Duration {
    let t = Instant::now();
    let _ = c.drain().await;
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_participant_cannot_disconnect_others() {
    let server = Server::start("flood", None, &[]);
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (id, pw) = mo.create_meeting(false).await;
    let (other_id, other_pw) = mo.create_meeting(false).await;
    mo.enter(&id).await;
    let mut victim = member(&server, 1, &id, &pw).await;
    let mut bystander = member(&server, 2, &id, &pw).await;
    let mut quiet = member(&server, 3, &id, &pw).await;
    let mut roster_flooder = member(&server, 4, &id, &pw).await;
    let mut offer_flooder = member(&server, 5, &id, &pw).await;
    let mut elsewhere = member(&server, 6, &other_id, &other_pw).await;
    let victim_pid = victim.pid.expect("victim id");

    let rosters = tokio::spawn(async move {
        let started = Instant::now();
        let mut sent = 0u32;
        for i in 0..20_000u32 {
            let state = json!({"type": "device_state", "camera": i % 2 == 0, "microphone": true}).to_string();
            if started.elapsed() > SLOW_READ || roster_flooder.try_send_raw(state).await.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, roster_flooder.closed().await)
    });
    let offers = tokio::spawn(async move {
        let started = Instant::now();
        let sdp = format!("v=0\r\n{}", "a".repeat(60 * 1024));
        let mut sent = 0u32;
        for _ in 0..300 {
            let offer = json!({"type": "offer", "to": victim_pid, "sdp": sdp}).to_string();
            if started.elapsed() > SLOW_READ || offer_flooder.try_send_raw(offer).await.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, offer_flooder.closed().await)
    });

    // While the floods run, nobody reads in the flooded meeting; another meeting pings.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = ping_time(&mut elsewhere).await;
    println!("flood: a member of another meeting got its pong after {} ms", t.as_millis());
    assert!(t < Duration::from_secs(1), "{t:?}");
    tokio::time::sleep(SLOW_READ).await;

    // Everyone else is still there and answered within a second.
    for (name, c) in [("bystander", &mut bystander), ("victim", &mut victim), ("quiet", &mut quiet), ("moderator", &mut mo)] {
        let t = ping_time(c).await;
        println!("flood: the {name} got its pong after {} ms", t.as_millis());
        assert!(t < Duration::from_secs(1), "{name}: {t:?}");
    }
    let (sent_states, states_closed) = rosters.await.expect("roster flooder");
    let (sent_offers, offers_closed) = offers.await.expect("offer flooder");
    println!("flood: {sent_states} device_state and {sent_offers} offers written before the server closed their senders");
    assert!(states_closed && offers_closed, "the attackers are closed: {states_closed} {offers_closed}");
    // The latest roster still reaches the others, and it shows who is left.
    bystander.send(json!({"type": "device_state", "camera": true, "microphone": false})).await;
    let (roster, _) = quiet.until("participants").await;
    let n = roster["participants"].as_array().map_or(0, Vec::len);
    assert_eq!(n, 4, "moderator, victim, bystander and quiet remain: {roster}");
}
