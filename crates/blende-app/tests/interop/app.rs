//! The app itself (its window under Xvfb, not headless) in a Janus room with a headless
//! Blende participant: each receives the other's video, and a screenshot of the in-call
//! screen is kept as a test artifact.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, serial};

fn display_or_skip(test: &str) -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    assert!(std::env::var_os("BLENDE_REQUIRE_X11").is_none(), "{test}: BLENDE_REQUIRE_X11 is set but there is no DISPLAY");
    eprintln!("SKIPPED {test}: no DISPLAY (scripts/test.sh starts Xvfb)");
    false
}

/// Where screenshots are kept: `$BLENDE_ARTIFACTS`, or `test-artifacts` in the target folder.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("BLENDE_ARTIFACTS")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..").join("test-artifacts"), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// The X window id of the app process `pid`, from `blende windows --json`.
fn window_of(pid: u32) -> Option<u64> {
    let out = Command::new(env!("CARGO_BIN_EXE_blende")).args(["windows", "--json"]).output().ok()?;
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
    // `ip netns exec` runs the app as a child of the process we started: accept its children.
    list.into_iter()
        .find(|w| w["pid"].as_u64().is_some_and(|p| p == u64::from(pid) || parent_of(p) == Some(u64::from(pid))))
        .and_then(|w| w["id"].as_u64())
}

fn parent_of(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

/// Captures the app's window through `blende share-preview` (the same guarded capture a share
/// uses) into `dest`; returns the number of distinct colours in the picture.
fn screenshot(window: u64, dest: &std::path::Path) -> usize {
    let dir = tempdir("app-shot");
    let out = Command::new(env!("CARGO_BIN_EXE_blende"))
        .args(["share-preview", "--window", &window.to_string(), "--frames", "1", "--policy", "/dev/null", "--out"])
        .arg(&dir)
        .output()
        .expect("blende share-preview");
    assert!(out.status.success(), "share-preview failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read_dir(&dir)
        .expect("shot dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("a PNG");
    std::fs::copy(&png, dest).expect("keep screenshot");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dest).expect("open png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let colours: std::collections::HashSet<[u8; 3]> =
        buf[..info.buffer_size()].chunks_exact(4).map(|p| [p[0] & 0xF0, p[1] & 0xF0, p[2] & 0xF0]).collect();
    colours.len()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tempdir");
    dir
}

#[test]
fn app_window_and_headless_participant_see_each_other_through_janus() {
    let _serial = serial();
    if !janus_or_skip("app_window_and_headless_participant_see_each_other_through_janus")
        || !display_or_skip("app_window_and_headless_participant_see_each_other_through_janus")
    {
        return;
    }
    let app = Participant::spawn_app("Sachbearbeiterin", 2468, &["--width", "640", "--height", "360"]);
    app.wait_for("app joined", Duration::from_secs(20), |v| v["event"] == "joined");
    app.wait_for("app published", Duration::from_secs(20), |v| v["event"] == "published");
    let peer = Participant::spawn("Gast", 2468, &[]);

    let timeout = Duration::from_secs(30);
    // The headless participant decodes the app's test pattern (readable stamps).
    let seen = peer.wait_feed_stats("headless decodes the app", timeout, 0, |v| {
        v["frames_decoded"].as_u64().unwrap_or(0) >= 30 && v["stamped_frames"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(seen["width"], 640);
    assert_eq!(seen["display"], "Sachbearbeiterin");
    // The app decodes the headless participant's pictures and draws them in its window.
    let decoded = app.wait_feed_stats("app decodes the headless participant", timeout, 0, |v| {
        v["frames_decoded"].as_u64().unwrap_or(0) >= 30 && v["stamped_frames"].as_u64().unwrap_or(0) > 0
    });
    let feed = decoded["feed"].as_str().expect("feed id").to_owned();
    let drawn = app.wait_for("remote tile drawn", timeout, |v| v["event"] == "first_frame_drawn" && v["tile"] == feed.as_str());
    eprintln!("app: first remote picture drawn {} ms after start", drawn["since_start_ms"]);

    let window = (0..50)
        .find_map(|_| {
            let w = window_of(app.pid());
            if w.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            w
        })
        .expect("the app's window is listed");
    let dest = crate::app::artifacts_dir().join("app-in-call.png");
    let colours = screenshot(window, &dest);
    eprintln!("in-call screenshot: {} ({colours} colours)", dest.display());
    // Two test patterns (colour bars) and the bar: far more than a blank or all-grey window.
    assert!(colours > 12, "the in-call screenshot looks empty ({colours} colours)");

    peer.leave();
    app.wait_for("app sees the peer leave", Duration::from_secs(10), |v| v["event"] == "participant_left");
}
