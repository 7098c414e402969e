//! Interop tests against real WebRTC peers: Janus VideoRoom in the `blende-ns` network
//! namespace (tests/interop/janus-netns.sh), `blende join --headless` processes, and headless
//! Chromium (tests/interop/chromium_janus.py). They skip with a message unless Janus is up;
//! `BLENDE_REQUIRE_JANUS=1` (scripts/test.sh) turns the skip into a failure.

mod app;
mod bench;
mod browser;
mod direct;
mod hand;
mod harness;
mod janus_chat;
mod janus_room;
mod kill;
mod loss;
mod mesh;
mod mesh_share;
mod mitm;
mod reconnect;
mod room;
mod share;
mod thin;
mod turn;
mod whep;
mod whip;

use std::time::Duration;

use harness::{Participant, janus_or_skip, serial};
use serde_json::Value;

const TONE_HZ: f64 = 440.0;

fn feed_ok(v: &Value, min_frames: u64) -> bool {
    v["frames_decoded"].as_u64().unwrap_or(0) >= min_frames
        && v["stamped_frames"].as_u64().unwrap_or(0) > 0
        && v["audio_hz"].as_f64().is_some_and(|hz| (hz - TONE_HZ).abs() <= 5.0)
}

/// (a) Two Blende participants in one room see (readable test-pattern counters) and hear
/// (440 Hz ± 5) each other.
#[test]
fn two_blende_participants_see_and_hear_each_other() {
    let _serial = serial();
    if !janus_or_skip("two_blende_participants_see_and_hear_each_other") {
        return;
    }
    let a = Participant::spawn("A", 1234, &[]);
    a.wait_for("A joined", Duration::from_secs(10), |v| v["event"] == "joined");
    a.wait_for("A published", Duration::from_secs(10), |v| v["event"] == "published");
    let b = Participant::spawn("B", 1234, &[]);
    let timeout = Duration::from_secs(30);
    let sa = a.wait_feed_stats("A decodes B", timeout, 0, |v| feed_ok(v, 30));
    let sb = b.wait_feed_stats("B decodes A", timeout, 0, |v| feed_ok(v, 30));
    for (who, s) in [("A", &sa), ("B", &sb)] {
        eprintln!(
            "{who} receives: {} frames ({} stamped), last counter {}, {:.1} Hz at {:.1} dBFS",
            s["frames_decoded"],
            s["stamped_frames"],
            s["last_counter"],
            s["audio_hz"].as_f64().unwrap_or(0.0),
            s["audio_dbfs"].as_f64().unwrap_or(f64::NAN)
        );
        assert_eq!(s["width"], 320);
        assert_eq!(s["height"], 240);
    }
    // Counters keep increasing: the stream is live, not one frozen picture.
    let c1 = sb["last_counter"].as_u64().unwrap_or(0);
    let later =
        b.wait_feed_stats("B still decoding", timeout, sb["t_ms"].as_u64().unwrap_or(0), |v| v["last_counter"].as_u64().unwrap_or(0) > c1);
    assert!(later["last_counter"].as_u64().unwrap_or(0) > c1);
    b.leave();
    a.wait_for("A sees B leave", Duration::from_secs(10), |v| v["event"] == "participant_left");
    a.leave();
}

/// (b) The kill switch seen from the other side: after `camera off` the receiver decodes no
/// picture captured after the kill; after `mic off` only silence (or nothing) arrives.
#[test]
fn kill_switch_is_seen_by_the_other_participant() {
    let _serial = serial();
    if !janus_or_skip("kill_switch_is_seen_by_the_other_participant") {
        return;
    }
    let mut a = Participant::spawn("A", 5555, &[]);
    a.wait_for("A published", Duration::from_secs(10), |v| v["event"] == "published");
    let b = Participant::spawn("B", 5555, &["--camera", "none", "--mic", "none"]);
    b.wait_feed_stats("B decodes A", Duration::from_secs(30), 0, |v| feed_ok(v, 15));

    a.send("camera off");
    let kill = a.wait_for("camera off", Duration::from_secs(5), |v| v["event"] == "switch" && v["kind"] == "camera");
    let kill_us = kill["at_us"].as_u64().expect("at_us");
    a.wait_for("camera released", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off");
    // Let everything in flight arrive, then look at two full stats periods.
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = b.last_t_ms();
    let s1 = b.wait_feed_stats("B stats after kill", Duration::from_secs(5), t0, |_| true);
    let s2 = b.wait_feed_stats("B stats after kill (2)", Duration::from_secs(5), s1["t_ms"].as_u64().unwrap_or(0), |_| true);
    let max_capture = s2["max_capture_us"].as_u64().unwrap_or(0);
    eprintln!("kill at {kill_us} µs; newest picture B ever decoded was captured at {max_capture} µs");
    assert!(max_capture <= kill_us, "B decoded a picture captured {} µs after the kill", max_capture - kill_us);
    assert_eq!(s2["frames_since_last"], 0, "pictures still arrive after camera off: {s2}");
    // Audio still flows while the camera is off.
    assert!(s2["audio_hz"].as_f64().is_some_and(|hz| (hz - TONE_HZ).abs() <= 5.0), "tone lost with the camera: {s2}");

    a.send("mic off");
    a.wait_for("mic released", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "mic" && v["to"] == "off");
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = b.last_t_ms();
    let s = b.wait_feed_stats("B stats after mic off", Duration::from_secs(5), t0, |_| true);
    let silent = s["audio_frames_since_last"].as_u64().unwrap_or(0) == 0 || s["audio_dbfs"].as_f64().is_none_or(|d| d < -60.0);
    assert!(silent, "B still hears A after mic off: {s}");

    // And back on: pictures flow again.
    a.send("camera on");
    let t0 = b.last_t_ms();
    b.wait_feed_stats("pictures again after camera on", Duration::from_secs(15), t0, |v| {
        v["max_capture_us"].as_u64().unwrap_or(0) > kill_us
    });
    b.leave();
    a.leave();
}

/// A wrong room PIN is reported in clear text and ends the process with status 1.
#[test]
fn wrong_pin_is_a_clear_error() {
    let _serial = serial();
    if !janus_or_skip("wrong_pin_is_a_clear_error") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("blende-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("pin");
    std::fs::write(&file, "not-the-pin\n").expect("pin file");
    let path = file.to_string_lossy().into_owned();
    let mut p = Participant::spawn("P", 4321, &["--password-file", &path, "--camera", "none", "--mic", "none"]);
    let err = p.wait_for("an error", Duration::from_secs(10), |v| v["event"] == "error");
    let msg = err["message"].as_str().unwrap_or_default().to_owned();
    assert!(msg.contains("433") || msg.to_lowercase().contains("pin"), "unclear message: {msg}");
    assert_eq!(p.exit_status(Duration::from_secs(10)), Some(1), "a fatal error exits with status 1 (JOIN.md)");
    // The right PIN joins.
    std::fs::write(&file, "blende-pin\n").expect("pin file");
    let p2 = Participant::spawn("P2", 4321, &["--password-file", &path, "--camera", "none", "--mic", "none"]);
    p2.wait_for("joined with the right PIN", Duration::from_secs(10), |v| v["event"] == "joined");
    assert_eq!(p2.leave(), Some(0), "`leave` exits with status 0");
    let _ = std::fs::remove_dir_all(dir);
}
