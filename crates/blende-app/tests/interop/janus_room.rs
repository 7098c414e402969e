//! A Blende meeting that moves to Janus: the room server's Janus threshold is 2, so when the
//! second participant is admitted the server creates a private VideoRoom on the namespace's
//! Janus (HTTP API on 127.0.0.1:8088) and hands both the `janus` message (URL, room, PIN, their
//! own token, feed id). Both continue the call there with the Janus adapter: they publish once to
//! Janus (no mesh PeerConnection) and see and hear each other through it.

use std::time::{Duration, Instant};

use crate::harness::{JANUS_WS, Participant, janus_or_skip, serial};
use crate::room::{RoomServer, RoomSetup, admin, feeds_ok};

#[test]
fn a_meeting_at_the_threshold_moves_to_janus_and_media_flows_there() {
    let _serial = serial();
    if !janus_or_skip("a_meeting_at_the_threshold_moves_to_janus_and_media_flows_there") {
        return;
    }
    let setup = RoomSetup::new("janus-room");
    let (dir, db) = (setup.dir.clone(), setup.db.clone());
    // The namespace's Janus: the server reaches its HTTP API, clients its WebSocket.
    admin(&db, &["set", "janus", "--api-url", "http://127.0.0.1:8088/janus", "--client-url", JANUS_WS, "--threshold", "2"]);
    let server = RoomServer::start(&db);
    let m = setup.create_meeting(&server, "Großer Kreis", false);
    let (meeting, pw) = (m.id.clone(), m.password_path().to_owned());
    let args = ["--room", meeting.as_str(), "--password-file", pw.as_str()];

    let url = server.url();
    let mut a = Participant::spawn_with_server("Anna", &url, &args);
    a.wait_for("Anna in the meeting", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "admitted");
    let mut b = Participant::spawn_with_server("Bernd", &url, &args);
    let mut rooms = Vec::new();
    for p in [&a, &b] {
        let moved = p.wait_for("moved to Janus", Duration::from_secs(15), |v| v["event"] == "janus");
        rooms.push(moved["room"].as_u64().expect("room"));
        p.wait_for("published to Janus", Duration::from_secs(15), |v| v["event"] == "published");
    }
    assert_eq!(rooms[0], rooms[1], "both must be in the same VideoRoom");

    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let counts = [feeds_ok(&a, 0), feeds_ok(&b, 0)];
        if counts == [1, 1] {
            break;
        }
        assert!(Instant::now() < deadline, "no media through Janus: feeds decoded per participant {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    for p in [&a, &b] {
        let evs = p.events();
        // Subscribed through Janus (the VideoRoom's `subscribed`), and no mesh connection made.
        assert!(evs.iter().any(|v| v["event"] == "subscribed"), "{}: no Janus subscription", p.name);
        assert!(!evs.iter().any(|v| v["event"] == "connection" && !v["to"].is_null()), "{}: a mesh PeerConnection was made", p.name);
    }
    eprintln!("Janus room {}: both publish once to Janus and decode the other's test pattern and 440 Hz tone", rooms[0]);

    // Chat and documents never go through Janus: a direct data connection per pair, relayed
    // by the room server, carries them; both ends read the same identity code.
    let bernd_id = a.wait_for("a direct link", Duration::from_secs(20), |v| v["event"] == "direct" && v["open"] == true)["participant"]
        .as_str()
        .expect("id")
        .to_owned();
    let anna_id = b.wait_for("a direct link", Duration::from_secs(20), |v| v["event"] == "direct" && v["open"] == true)["participant"]
        .as_str()
        .expect("id")
        .to_owned();
    let code = |p: &Participant, other: &str| {
        p.wait_for("identity", Duration::from_secs(10), |v| v["event"] == "identity" && v["participant"] == other)["code"].clone()
    };
    assert_eq!(code(&a, &bernd_id), code(&b, &anna_id));
    a.send("say Vorlage liegt bei");
    b.wait_for("the chat through the direct connection", Duration::from_secs(10), |v| {
        v["event"] == "chat" && v["text"] == "Vorlage liegt bei" && v["from"] == anna_id.as_str()
    });
    let file = dir.join("Vorlage.txt");
    std::fs::write(&file, "Tagesordnung\n".repeat(1000)).expect("file");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    a.send(&format!("send-to {bernd_id} {}", file.display()));
    let offer = b.wait_for("the offer", Duration::from_secs(10), |v| v["event"] == "document" && v["state"] == "offered");
    b.send(&format!("accept {} {}", offer["id"], inbox.display()));
    b.wait_for("saved", Duration::from_secs(20), |v| v["event"] == "document" && v["state"] == "saved");
    assert_eq!(std::fs::read(inbox.join("Vorlage.txt")).expect("saved"), std::fs::read(&file).expect("file"));
    eprintln!("Janus room {}: chat and a document went directly between the two, not through Janus", rooms[0]);
    a.leave();
    b.leave();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A presenter shares a window in a Blende meeting that moved to Janus: the room server
/// decides by role first, then the share is its own publisher in the meeting's VideoRoom (with
/// the participant's own token) and the moderator decodes it there.
#[test]
fn a_presenter_shares_a_window_into_a_meeting_that_moved_to_janus() {
    use crate::share::{white_window, x11_or_skip};
    let _serial = serial();
    let test = "a_presenter_shares_a_window_into_a_meeting_that_moved_to_janus";
    if !janus_or_skip(test) || !x11_or_skip(test) {
        return;
    }
    let (_xterm, id) = white_window(&format!("Vorlage-{}.odt", std::process::id()));
    let setup = RoomSetup::new("janus-share");
    admin(&setup.db, &["set", "janus", "--api-url", "http://127.0.0.1:8088/janus", "--client-url", JANUS_WS, "--threshold", "2"]);
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Vorlage", false);
    let (url, tok, pw) = (server.url(), setup.token_path().to_owned(), m.password_path().to_owned());
    let mut moderator =
        Participant::spawn_with_server("Leitung", &url, &["--room", &m.id, "--moderator-token-file", &tok, "--mic", "none"]);
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let mut anna = Participant::spawn_with_server("Anna", &url, &["--room", &m.id, "--password-file", &pw, "--mic", "none"]);
    let me =
        anna.wait_for("Anna in", Duration::from_secs(15), |v| v["event"] == "joined")["participant_id"].as_str().expect("id").to_owned();
    for p in [&moderator, &anna] {
        p.wait_for("moved to Janus", Duration::from_secs(15), |v| v["event"] == "janus");
        p.wait_for("published to Janus", Duration::from_secs(15), |v| v["event"] == "published");
    }
    moderator.send(&format!("presenter on {me}"));
    moderator.wait_for("presenter", Duration::from_secs(10), |v| {
        v["event"] == "role" && v["participant"] == me.as_str() && v["role"] == "presenter"
    });
    // A presenter's document to everyone: the room server confirms its token, the moderator
    // sees it as offered to everyone (it comes on their direct data connection).
    let file = setup.dir.join("Vorlage.odt");
    std::fs::write(&file, b"Vorlage fuer alle").expect("file");
    moderator.wait_for("a direct link to Anna", Duration::from_secs(20), |v| v["event"] == "direct" && v["open"] == true);
    anna.send(&format!("send {}", file.display()));
    moderator.wait_for("the offer to everyone", Duration::from_secs(15), |v| {
        v["event"] == "document" && v["state"] == "offered" && v["to_all"] == true && v["from"] == me.as_str()
    });
    anna.send(&format!("share window {id}"));
    anna.wait_for("share published in the Janus room", Duration::from_secs(20), |v| v["event"] == "share" && v["state"] == "published");
    let white = moderator.wait_feed_stats("the moderator decodes the window through Janus", Duration::from_secs(30), 0, |v| {
        v["display"] == "Anna (screen)"
            && v["frames_decoded"].as_u64().unwrap_or(0) >= 5
            && v["centre_luma"].as_f64().unwrap_or(0.0) > 200.0
    });
    assert_eq!((white["width"].as_u64(), white["height"].as_u64()), (Some(1280), Some(720)));
    assert!(!anna.events().iter().any(|v| v["event"] == "connection" && !v["to"].is_null()), "no mesh connection after the move");
    anna.send("share stop");
    moderator.wait_for("the share leaves", Duration::from_secs(10), |v| v["event"] == "participant_left");
    anna.leave();
    moderator.leave();
}
