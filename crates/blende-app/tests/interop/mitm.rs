//! The identity check against a man in the middle: a hostile room server
//! (tests/interop/mitm_relay.py, a proxy in front of the real one) terminates DTLS on both sides
//! of the direct data connection between two members with aiortc and copies the data across.
//! Both members see a working link and chat flows, yet the relay reads it; only the identity
//! codes differ. The same proxy without `--mitm` relays everything and the codes agree.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{JANUS_WS, Participant, janus_or_skip, netns, serial};
use crate::room::{RoomServer, RoomSetup, admin};

const WAIT: Duration = Duration::from_secs(30);

/// The proxy in the namespace, and what it printed.
struct Relay {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Relay {
    fn start(upstream: &str, mitm: bool) -> Self {
        let venv = std::env::var("BLENDE_VENV").unwrap_or_else(|_| "/var/tmp/blende-venv".to_owned());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/mitm_relay.py");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &netns(), &format!("{venv}/bin/python")]).arg(script).args(["--upstream", upstream]);
        if mitm {
            cmd.arg("--mitm");
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("mitm_relay.py (tests/interop/setup-browser.sh installs aiortc)");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("the relay's first line");
        let v: Value = serde_json::from_str(first.trim()).unwrap_or_else(|e| panic!("mitm_relay.py did not start ({e}): {first:?}"));
        let addr = v["listening"].as_str().expect("listening").to_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::Builder::new()
            .name("mitm-relay".into())
            .spawn(move || {
                for line in out.lines().map_while(Result::ok) {
                    eprintln!("[relay] {line}");
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        sink.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                    }
                }
            })
            .expect("reader thread");
        Relay { child, addr, lines }
    }

    fn saw_chat(&self, text: &str) -> bool {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().any(|v| v["chat"].as_array().is_some_and(|c| c.iter().any(|t| t == text)))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two members of a meeting on Janus, through the proxy; their identity codes for each other,
/// after a chat message went from Anna to Bernd.
fn codes_through(mitm: bool, text: &str) -> (Value, Value, Relay) {
    let setup = RoomSetup::new(if mitm { "mitm" } else { "mitm-control" });
    admin(&setup.db, &["set", "janus", "--api-url", "http://127.0.0.1:8088/janus", "--client-url", JANUS_WS, "--threshold", "2"]);
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Beglaubigung", false);
    let upstream = format!("ws://{}/", server.url().trim_start_matches("blende+ws://"));
    let relay = Relay::start(&upstream, mitm);
    let url = format!("blende+ws://{}", relay.addr);
    let args = ["--room", m.id.as_str(), "--password-file", m.password_path(), "--camera", "none"];
    let mut anna = Participant::spawn_with_server("Anna", &url, &args);
    anna.wait_for("Anna admitted", WAIT, |v| v["event"] == "lobby" && v["state"] == "admitted");
    let bernd = Participant::spawn_with_server("Bernd", &url, &args);
    let link = |p: &Participant| {
        p.wait_for("a direct link", WAIT, |v| v["event"] == "direct" && v["open"] == true)["participant"].as_str().expect("id").to_owned()
    };
    let (bernd_id, anna_id) = (link(&anna), link(&bernd));
    let code = |p: &Participant, other: &str| {
        p.wait_for("identity", WAIT, |v| v["event"] == "identity" && v["participant"] == other)["code"].clone()
    };
    let (a, b) = (code(&anna, &bernd_id), code(&bernd, &anna_id));
    anna.send(&format!("say {text}"));
    bernd.wait_for("the chat message", WAIT, |v| v["event"] == "chat" && v["text"] == text && v["from"] == anna_id.as_str());
    let deadline = Instant::now() + Duration::from_secs(2);
    while mitm && !relay.saw_chat(text) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    anna.leave();
    bernd.leave();
    drop(server);
    let _ = std::fs::remove_dir_all(&setup.dir);
    (a, b, relay)
}

#[test]
fn a_relay_in_the_middle_changes_the_identity_code_and_nothing_else_shows_it() {
    let _serial = serial();
    if !janus_or_skip("a_relay_in_the_middle_changes_the_identity_code_and_nothing_else_shows_it") {
        return;
    }
    let (a, b, relay) = codes_through(false, "Ausweis liegt vor");
    assert_eq!(a, b, "through an honest proxy both ends read the same code");
    assert!(!relay.saw_chat("Ausweis liegt vor"), "the honest proxy never sees the chat");

    let (a, b, relay) = codes_through(true, "Kontonummer DE02 1203 0000 0000 2020 51");
    assert!(a.is_string() && b.is_string());
    assert_ne!(a, b, "a relay that terminates DTLS on both sides must change the code");
    assert!(relay.saw_chat("Kontonummer DE02 1203 0000 0000 2020 51"), "the relay really sat in the middle and read the chat");
    eprintln!("identity codes with a man in the middle: Anna reads {a}, Bernd reads {b}");
}
