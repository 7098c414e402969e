//! (c) and (d): Blende and headless Chromium (Debian's, driven by selenium/chromedriver,
//! janus.js) in one Janus VideoRoom.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};

pub fn venv_python() -> PathBuf {
    let venv = std::env::var("BLENDE_VENV").unwrap_or_else(|_| "/var/tmp/blende-venv".to_owned());
    PathBuf::from(venv).join("bin/python")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/chromium_janus.py")
}

/// `true` when Chromium, chromedriver and selenium are there; skips or panics like Janus.
fn browser_or_skip(test: &str) -> bool {
    let have = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
        && Command::new(venv_python()).args(["-c", "import selenium"]).status().is_ok_and(|s| s.success());
    if have {
        return true;
    }
    let msg = format!(
        "{test}: chromium, chromedriver or selenium (venv {}) missing; run tests/interop/setup-browser.sh",
        venv_python().display()
    );
    if std::env::var("BLENDE_REQUIRE_JANUS").is_ok_and(|v| v == "1") {
        panic!("{msg}; BLENDE_REQUIRE_JANUS=1 is set");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// Runs the Chromium script in the namespace; returns its JSON verdict.
pub fn run_chromium(mode: &str, room: u32, seconds: u32, min_frames: u32, early_exit: bool) -> Value {
    run_chromium_capture(mode, room, seconds, min_frames, early_exit, "stdres")
}

/// As [`run_chromium`], with the fake camera's size: `stdres` 640x480, `hires` 1280x720.
pub fn run_chromium_capture(mode: &str, room: u32, seconds: u32, min_frames: u32, early_exit: bool, capture: &str) -> Value {
    let out = Command::new("ip")
        .args(["netns", "exec", &netns()])
        .arg(venv_python())
        .arg(script())
        .args([
            mode,
            "--room",
            &room.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--min-frames",
            &min_frames.to_string(),
            "--capture",
            capture,
        ])
        .env("SE_OFFLINE", "true")
        .env("BLENDE_CHROMIUM_EARLY_EXIT", if early_exit { "1" } else { "0" })
        .stderr(Stdio::inherit())
        .output()
        .expect("run chromium_janus.py");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("[chromium {mode}] {}", text.trim());
    text.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null)
}

/// (c) Blende publishes; Chromium subscribes and decodes (getStats framesDecoded > 0).
#[test]
fn chromium_decodes_blende() {
    let _serial = serial();
    if !janus_or_skip("chromium_decodes_blende") || !browser_or_skip("chromium_decodes_blende") {
        return;
    }
    let blende = Participant::spawn("Blende", 6666, &[]);
    blende.wait_for("published", Duration::from_secs(10), |v| v["event"] == "published");
    let verdict = run_chromium("subscribe", 6666, 30, 30, true);
    assert_eq!(verdict["ok"], true, "Chromium did not decode Blende's video: {verdict}");
    let decoded = verdict["stats"]["framesDecoded"].as_u64().unwrap_or(0);
    assert!(decoded >= 30, "{verdict}");
    assert_eq!(verdict["stats"]["frameWidth"], 320);
    assert!(verdict["stats"]["audioBytesReceived"].as_u64().unwrap_or(0) > 0, "no audio: {verdict}");
    blende.leave();
}

/// (d) Chromium publishes its fake camera and microphone; Blende subscribes and decodes.
#[test]
fn blende_decodes_chromium() {
    let _serial = serial();
    if !janus_or_skip("blende_decodes_chromium") || !browser_or_skip("blende_decodes_chromium") {
        return;
    }
    let blende = Participant::spawn("Blende", 7777, &["--camera", "none", "--mic", "none"]);
    blende.wait_for("joined", Duration::from_secs(10), |v| v["event"] == "joined");
    let chromium =
        std::thread::Builder::new().name("chromium".into()).spawn(|| run_chromium("publish", 7777, 15, 0, false)).expect("thread");
    let s = blende.wait_feed_stats("Blende decodes Chromium", Duration::from_secs(30), 0, |v| {
        v["frames_decoded"].as_u64().unwrap_or(0) >= 30 && v["audio_frames"].as_u64().unwrap_or(0) > 25
    });
    eprintln!("Blende receives Chromium: {s}");
    assert!(s["width"].as_u64().unwrap_or(0) > 0);
    let verdict = chromium.join().expect("chromium thread");
    assert_eq!(verdict["ok"], true, "Chromium did not publish: {verdict}");
    blende.leave();
}
