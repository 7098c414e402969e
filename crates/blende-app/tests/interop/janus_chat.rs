//! Chat between Blende clients in a plain Janus VideoRoom (no Blende server): the clients find
//! each other over Janus's data relay, then chat on direct connections. Janus's own counters
//! (the admin API's `handle_info`, inside the namespace) show what it carried on data channels:
//! the signalling of three direct connections, none of the chat.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Participant, janus_or_skip, netns, serial};

const ROOM: u32 = 2525;

/// One Janus admin API request inside the namespace.
fn admin(body: Value) -> Value {
    let mut body = body;
    body["transaction"] = json!("blende-test");
    body["admin_secret"] = json!("blende-admin");
    let out = Command::new("ip")
        .args(["netns", "exec", &netns(), "curl", "-sf", "--max-time", "5", "-d", &body.to_string(), "http://127.0.0.1:7088/admin"])
        .output()
        .expect("curl in the namespace");
    assert!(out.status.success(), "Janus admin API: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("admin API JSON")
}

/// The data-channel bytes Janus received and sent, summed over every handle of every session.
fn janus_data_bytes() -> u64 {
    let mut total = 0;
    for session in admin(json!({"janus": "list_sessions"}))["sessions"].as_array().cloned().unwrap_or_default() {
        let handles = admin(json!({"janus": "list_handles", "session_id": session}));
        for handle in handles["handles"].as_array().cloned().unwrap_or_default() {
            let info = admin(json!({"janus": "handle_info", "session_id": session, "handle_id": handle}));
            total += data_bytes(&info["info"]);
        }
    }
    total
}

/// The bytes of a handle's data-channel m-line (`webrtc.media.N` with `type: data`), both ways:
/// Janus 1.1 counts every SCTP packet of it there.
fn data_bytes(info: &Value) -> u64 {
    let media = info.pointer("/webrtc/media").and_then(Value::as_object).cloned().unwrap_or_default();
    media
        .values()
        .filter(|m| m["type"] == "data")
        .map(|m| ["in", "out"].iter().filter_map(|way| m["stats"][*way]["bytes"].as_u64()).sum::<u64>())
        .sum()
}

fn own_id(p: &Participant) -> String {
    p.wait_for("joined", Duration::from_secs(15), |v| v["event"] == "joined")["participant_id"].as_str().expect("id").to_owned()
}

#[test]
fn blende_clients_in_a_plain_janus_room_chat_on_direct_connections() {
    let _serial = serial();
    if !janus_or_skip("blende_clients_in_a_plain_janus_room_chat_on_direct_connections") {
        return;
    }
    let small = ["--width", "160", "--height", "120"];
    let mut anna = Participant::spawn("Anna", ROOM, &small);
    let mut bernd = Participant::spawn("Bernd", ROOM, &small);
    let mut cem = Participant::spawn("Cem", ROOM, &small);
    let people = [&anna, &bernd, &cem];
    let ids: Vec<String> = people.iter().map(|p| own_id(p)).collect();
    let (a, b, c) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

    // Everyone gets a direct connection to both others, and each pair reads the same code.
    let link = |p: &Participant, other: &str| {
        p.wait_for(&format!("a direct link to {other}"), Duration::from_secs(30), |v| {
            v["event"] == "direct" && v["open"] == true && v["participant"] == other
        });
        p.wait_for("identity", Duration::from_secs(10), |v| v["event"] == "identity" && v["participant"] == other)["code"].clone()
    };
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let (here, there) = (link(people[i], &ids[j]), link(people[j], &ids[i]));
        assert_eq!(here, there, "{} and {}: the identity codes differ", people[i].name, people[j].name);
        assert!(here.as_str().is_some_and(|s| s.len() == 15), "{here}");
    }

    let before = janus_data_bytes();
    anna.send("say Die Akte liegt bei Frau Kaya");
    cem.send(&format!("say-to {b} Nur für dich: Termin verschoben"));
    bernd.wait_for("Anna's message", Duration::from_secs(10), |v| {
        v["event"] == "chat" && v["from"] == a.as_str() && v["text"] == "Die Akte liegt bei Frau Kaya" && v["private_with"].is_null()
    });
    cem.wait_for("Anna's message", Duration::from_secs(10), |v| v["event"] == "chat" && v["from"] == a.as_str());
    bernd.wait_for("Cem's private message", Duration::from_secs(10), |v| {
        v["event"] == "chat" && v["from"] == c.as_str() && v["private_with"] == c.as_str() && v["text"] == "Nur für dich: Termin verschoben"
    });
    // 40 × 2000 characters from Anna to both others: 160 kB delivered on direct connections.
    let long = "Vertraulich ".repeat(166);
    for i in 0..40 {
        anna.send(&format!("say {i:02} {long}"));
    }
    for p in [&bernd, &cem] {
        p.wait_for("the last long message", Duration::from_secs(20), |v| {
            v["event"] == "chat" && v["text"].as_str().is_some_and(|t| t.starts_with("39 Vertraulich"))
        });
    }
    let relayed = janus_data_bytes() - before;
    eprintln!("Janus data-channel bytes: {before} for the signalling of three direct connections, {relayed} while 160 kB of chat went out");
    assert!(relayed < 4_000, "Janus relayed {relayed} data bytes during the chat: it went through the SFU");
    assert!(before > 0, "Janus relayed the signalling of the direct connections (its counters work)");
    assert!(!anna.events().iter().any(|v| v["event"] == "chat" && v["from"] == c.as_str()), "Anna saw Cem's private message");
    // A document to everyone: a plain Janus room has no roles, so anyone may; it goes on the
    // direct connections too.
    let dir = std::env::temp_dir().join(format!("blende-janus-chat-{}", std::process::id()));
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).expect("folders");
    let file = dir.join("Protokoll.txt");
    std::fs::write(&file, "Protokoll der Sitzung\n".repeat(5000)).expect("file");
    anna.send(&format!("send {}", file.display()));
    for p in [&bernd, &cem] {
        p.wait_for("the offer to everyone", Duration::from_secs(15), |v| {
            v["event"] == "document" && v["state"] == "offered" && v["to_all"] == true && v["from"] == a.as_str()
        });
    }
    let offer = bernd.wait_for("the offer", Duration::from_secs(1), |v| v["event"] == "document" && v["state"] == "offered");
    bernd.send(&format!("accept {} {}", offer["id"], inbox.display()));
    bernd.wait_for("saved", Duration::from_secs(20), |v| v["event"] == "document" && v["state"] == "saved");
    assert_eq!(std::fs::read(inbox.join("Protokoll.txt")).expect("saved"), std::fs::read(&file).expect("file"));
    let through_janus = janus_data_bytes() - before;
    assert!(through_janus < 4_000, "Janus carried {through_janus} data bytes during chat and a 110 kB document");
    let _ = std::fs::remove_dir_all(&dir);
    let log = std::fs::read_to_string("/tmp/blende-janus.log").unwrap_or_default();
    assert!(!log.contains("Akte") && !log.contains("Vertraulich"), "the chat text is in Janus's log");
    for p in [&anna, &bernd, &cem] {
        let errors: Vec<Value> = p.events().into_iter().filter(|v| v["event"] == "error").collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
}
