//! A Blende meeting that moves to Janus: the room server's Janus threshold is 2, so when the
//! second participant is admitted the server creates a private VideoRoom on the namespace's
//! Janus (HTTP API on 127.0.0.1:8088) and hands both the `janus` message (URL, room, PIN, their
//! own token, feed id). Both continue the call there with the Janus adapter: they publish once to
//! Janus (no mesh PeerConnection) and see and hear each other through it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{JANUS_WS, Participant, janus_or_skip, netns, serial};
use crate::mesh::{RoomServer, server_binary};

fn admin(db: &str, args: &[&str]) -> Value {
    let out = Command::new(server_binary()).args(["admin", "--db", db, "--json"]).args(args).output().expect("blende-server admin");
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Remote feeds `p` decodes with readable test-pattern stamps and the 440 Hz tone.
fn feeds_ok(p: &Participant) -> usize {
    let mut ok = std::collections::HashSet::new();
    for v in p.events() {
        if v["event"] == "stats"
            && !v["feed"].is_null()
            && v["stamped_frames"].as_u64().unwrap_or(0) >= 15
            && v["audio_hz"].as_f64().is_some_and(|hz| (hz - 440.0).abs() <= 5.0)
        {
            ok.insert(v["feed"].as_str().unwrap_or_default().to_owned());
        }
    }
    ok.len()
}

#[test]
fn a_meeting_at_the_threshold_moves_to_janus_and_media_flows_there() {
    let _serial = serial();
    if !janus_or_skip("a_meeting_at_the_threshold_moves_to_janus_and_media_flows_there") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("janus-room-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite:{}", dir.join("blende.db").display());
    let token = admin(&db, &["add-moderator", "--name", "Leitung"]);
    let token_file = dir.join("moderator-token");
    std::fs::write(&token_file, format!("{}\n", token["token"].as_str().expect("token"))).expect("token file");
    // The namespace's Janus: the server reaches its HTTP API, clients its WebSocket.
    admin(&db, &["set", "janus", "--api-url", "http://127.0.0.1:8088/janus", "--client-url", JANUS_WS, "--threshold", "2"]);
    let server = RoomServer::start(&db);
    let created = Command::new("ip")
        .args(["netns", "exec", &netns(), env!("CARGO_BIN_EXE_blende"), "meeting", "create", "--server", &server.url(), "--moderator-token-file"])
        .arg(&token_file)
        .args(["--title", "Großer Kreis", "--no-lobby"])
        .output()
        .expect("blende meeting create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).expect("meeting json");
    let meeting = created["meeting"]["id"].as_str().expect("meeting id").to_owned();
    let pw_file = dir.join("password");
    std::fs::write(&pw_file, format!("{}\n", created["password"].as_str().expect("password"))).expect("password file");
    let pw = pw_file.to_str().expect("path").to_owned();
    let args = ["--room", meeting.as_str(), "--password-file", pw.as_str()];

    let url = server.url();
    let a = Participant::spawn_with_server("Anna", &url, &args);
    a.wait_for("Anna in the meeting", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "admitted");
    let b = Participant::spawn_with_server("Bernd", &url, &args);
    let mut rooms = Vec::new();
    for p in [&a, &b] {
        let moved = p.wait_for("moved to Janus", Duration::from_secs(15), |v| v["event"] == "janus");
        rooms.push(moved["room"].as_u64().expect("room"));
        p.wait_for("published to Janus", Duration::from_secs(15), |v| v["event"] == "published");
    }
    assert_eq!(rooms[0], rooms[1], "both must be in the same VideoRoom");

    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let counts = [feeds_ok(&a), feeds_ok(&b)];
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
    a.leave();
    b.leave();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
