//! Blende's own room server with three `blende join --headless` participants: a moderator
//! schedules the meeting (`blende meeting create`), enters with its token, admits the two
//! others from the lobby, and all three see and hear each other over a peer-to-peer mesh. The
//! server only relays signalling: it owns no UDP socket and moves far fewer bytes than the
//! media.

use std::time::Duration;

use crate::harness::{Participant, janus_or_skip, serial};
use crate::room::{RoomServer, RoomSetup, feeds_ok};

#[test]
fn three_participants_mesh_through_blendes_room_server_with_lobby() {
    let _serial = serial();
    // The namespace (with 127.0.0.2 for ICE) comes with the Janus setup.
    if !janus_or_skip("three_participants_mesh_through_blendes_room_server_with_lobby") {
        return;
    }
    let setup = RoomSetup::new("mesh");
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Abstimmung Haushalt", true);
    assert!(
        !m.created["invitation"]["text"].as_str().unwrap_or_default().contains(&m.password),
        "the invitation must not carry the password"
    );
    let meeting = m.id.clone();
    let (url, tok, pw) = (server.url(), setup.token_path().to_owned(), m.password_path().to_owned());

    let mut moderator = Participant::spawn_with_server("Leitung", &url, &["--room", &meeting, "--moderator-token-file", &tok]);
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let a = Participant::spawn_with_server("Anna", &url, &["--room", &meeting, "--password-file", &pw]);
    let b = Participant::spawn_with_server("Bernd", &url, &["--room", &meeting, "--password-file", &pw]);
    for p in [&a, &b] {
        p.wait_for("waiting in the lobby", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "waiting");
    }
    // The moderator sees both waiting and admits them by id.
    let waiting = moderator.wait_for("both waiting", Duration::from_secs(15), |v| {
        v["event"] == "waiting" && v["participants"].as_array().is_some_and(|l| l.len() == 2)
    });
    for w in waiting["participants"].as_array().expect("list") {
        moderator.send(&format!("admit {}", w["id"].as_str().expect("id")));
    }
    for p in [&a, &b] {
        p.wait_for("admitted", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "admitted");
    }

    // Each one decodes the two others' test pattern and tone.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let counts = [feeds_ok(&moderator, 0), feeds_ok(&a, 0), feeds_ok(&b, 0)];
        if counts.iter().all(|&c| c == 2) {
            eprintln!("mesh: every participant decodes both others (stamped frames, 440 Hz)");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "mesh incomplete: feeds decoded per participant {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Media is peer to peer: the server has no UDP socket, and over the whole call (lobby,
    // six offers and answers with their SDP) it moves only signalling, while the media is
    // several MB.
    std::thread::sleep(Duration::from_secs(3));
    let server_bytes = server.socket_bytes();
    let udp = server.udp_sockets();
    let media_frames: u64 = [&moderator, &a, &b]
        .iter()
        .flat_map(|p| {
            let evs = p.events();
            let mut last = std::collections::HashMap::new();
            for v in evs.iter().filter(|v| v["event"] == "stats" && !v["feed"].is_null()) {
                last.insert(v["feed"].as_str().unwrap_or_default().to_owned(), v["frames_decoded"].as_u64().unwrap_or(0));
            }
            last.into_values().collect::<Vec<_>>()
        })
        .sum();
    eprintln!(
        "server: {udp} UDP sockets, {server_bytes} bytes on its 3 signalling connections while the participants decoded {media_frames} frames in all"
    );
    assert_eq!(udp, 0, "the room server must not carry media");
    assert!(server_bytes > 0, "no signalling counted: is `ss` reporting the server's connections?");
    assert!(server_bytes < 200_000, "the server moved {server_bytes} bytes: media through the server?");

    // The moderator removes Bernd: he is out, the others see him leave.
    let bernd_id = waiting["participants"]
        .as_array()
        .expect("list")
        .iter()
        .find(|w| w["display"] == "Bernd")
        .and_then(|w| w["id"].as_str())
        .expect("Bernd")
        .to_owned();
    moderator.send(&format!("remove {bernd_id}"));
    b.wait_for("Bernd removed", Duration::from_secs(10), |v| v["event"] == "left" && v["reason"] == "kicked");
    a.wait_for("Anna sees Bernd leave", Duration::from_secs(10), |v| v["event"] == "participant_left" && v["id"] == bernd_id.as_str());
    a.leave();
    moderator.leave();
}
