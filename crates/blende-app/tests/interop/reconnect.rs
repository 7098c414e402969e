//! Calls through the real Janus that come back after the link was cut: every packet arriving
//! in the test namespace is dropped with nftables (what a DSL line that loses sync does: our
//! packets leave and nothing comes back), then the rule goes and the two Blende clients must
//! be back in the call on their own. A camera switched off during the cut stays off.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};

const ROOM: u32 = 2626;
const TABLE: &str = "blende_cut";

/// Everything arriving in the namespace is dropped while this lives.
struct Cut;

impl Cut {
    fn start() -> Self {
        let rules = format!("table inet {TABLE} {{ chain input {{ type filter hook input priority -10; policy drop; }}; }}");
        nft(&["-f", "-"], Some(&rules));
        Cut
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        // Also while a failed assertion unwinds: the namespace must not stay cut.
        let deleted = Command::new("ip").args(["netns", "exec", &netns(), "nft", "delete", "table", "inet", TABLE]).status();
        if !deleted.is_ok_and(|s| s.success()) && !std::thread::panicking() {
            panic!("the cut could not be undone: nft delete table inet {TABLE}");
        }
    }
}

fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &netns(), "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft (Debian package nftables) in the namespace");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("rules");
    }
    drop(child.stdin.take());
    assert!(child.wait().expect("nft").success(), "nft {args:?} failed");
}

fn own_id(p: &Participant, after: Option<&str>) -> String {
    let v = p.wait_for("our id", Duration::from_secs(20), |v| v["event"] == "joined" && v["participant_id"].as_str() != after);
    v["participant_id"].as_str().expect("id").to_owned()
}

/// `p`'s first decoded `kind` from `feed`.
fn first_frame(p: &Participant, feed: &str, kind: &str, timeout: Duration) -> Value {
    p.wait_for(&format!("{kind} from {feed}"), timeout, |v| v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind)
}

fn has_first_frame(p: &Participant, feed: &str, kind: &str) -> bool {
    p.events().iter().any(|v| v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind)
}

/// Cuts the link for `cut`, then measures how long after it returned each client receives the
/// other again; asserts within `limit`. Returns the two times.
fn cut_and_come_back(test: &str, cut: Duration, limit: Duration) -> (Duration, Duration) {
    let _serial = serial();
    if !janus_or_skip(test) {
        return (Duration::ZERO, Duration::ZERO);
    }
    let small = ["--width", "160", "--height", "120"];
    let mut anna = Participant::spawn("Anna", ROOM, &small);
    let bernd = Participant::spawn("Bernd", ROOM, &small);
    let (a1, b1) = (own_id(&anna, None), own_id(&bernd, None));
    first_frame(&bernd, &a1, "video", Duration::from_secs(20));
    first_frame(&anna, &b1, "video", Duration::from_secs(20));

    let started = Instant::now();
    let guard = Cut::start();
    for p in [&anna, &bernd] {
        let v = p.wait_for("reconnecting", cut.min(Duration::from_secs(12)), |v| v["event"] == "reconnecting");
        eprintln!("[{}] lost after {:?}: {}", p.name, started.elapsed(), v["reason"]);
    }
    // The camera goes off while nothing can be sent: it must stay off in the new session.
    anna.send("camera off");
    anna.wait_for("the camera off", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off");
    std::thread::sleep(cut.saturating_sub(started.elapsed()));
    drop(guard);
    let back = Instant::now();

    let a2 = own_id(&anna, Some(&a1));
    let b2 = own_id(&bernd, Some(&b1));
    let heard = first_frame(&bernd, &a2, "audio", limit + Duration::from_secs(10));
    let anna_heard = bernd.instant_of(&heard).saturating_duration_since(back);
    let seen = first_frame(&anna, &b2, "video", limit + Duration::from_secs(10));
    let bernd_seen = anna.instant_of(&seen).saturating_duration_since(back);
    eprintln!("{test}: cut {cut:?}; Bernd hears Anna {anna_heard:?} and Anna sees Bernd {bernd_seen:?} after the link returned");
    for p in [&anna, &bernd] {
        assert!(p.events().iter().any(|v| v["event"] == "reconnected"), "{}: no `reconnected`", p.name);
    }
    assert!(anna_heard <= limit, "Bernd heard Anna again only {anna_heard:?} after the link returned (limit {limit:?})");
    assert!(bernd_seen <= limit, "Anna saw Bernd again only {bernd_seen:?} after the link returned (limit {limit:?})");

    // Anna's camera stayed off: a second of her new feed brings no picture, and her camera was
    // never opened again.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_first_frame(&bernd, &a2, "video"), "Bernd received video from Anna's camera, switched off during the cut");
    let camera_after: Vec<Value> = anna
        .events()
        .into_iter()
        .skip_while(|v| !(v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off"))
        .filter(|v| v["event"] == "device" && v["kind"] == "camera" && v["to"] != "off")
        .collect();
    assert!(camera_after.is_empty(), "the camera came back: {camera_after:?}");
    for p in [&anna, &bernd] {
        let errors: Vec<Value> = p.events().into_iter().filter(|v| v["event"] == "error" && v["fatal"] == true).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
    (anna_heard, bernd_seen)
}

#[test]
fn a_plain_janus_call_comes_back_after_a_10_s_cut() {
    cut_and_come_back("a_plain_janus_call_comes_back_after_a_10_s_cut", Duration::from_secs(10), Duration::from_secs(3));
}

#[test]
fn a_plain_janus_call_comes_back_after_a_60_s_cut_on_new_sessions() {
    cut_and_come_back("a_plain_janus_call_comes_back_after_a_60_s_cut_on_new_sessions", Duration::from_secs(60), Duration::from_secs(5));
}
