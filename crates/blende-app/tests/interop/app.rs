//! The app itself (its window under Xvfb, not headless) in a Janus room with a headless
//! Blende participant: each receives the other's video, and a screenshot of the in-call
//! screen is kept as a test artifact.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, serial};

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
        || !crate::share::x11_or_skip("app_window_and_headless_participant_see_each_other_through_janus")
    {
        return;
    }
    let app = Participant::spawn_app(
        "Sachbearbeiterin",
        2468,
        &["--width", "640", "--height", "360", "--camera", "test-pattern", "--mic", "tone"],
    );
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

/// Plays a sine into PulseAudio's null sink (whose monitor is the default source) until dropped.
struct Tone {
    child: std::process::Child,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Tone {
    fn play(hz: f64) -> Self {
        use std::io::Write;
        let mut child = Command::new("pacat")
            .args(["--playback", "--raw", "--format=s16le", "--rate=48000", "--channels=1", "--device=blende_null", "--latency-msec=50"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("pacat (pulseaudio-utils)");
        let mut stdin = child.stdin.take().expect("stdin");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let writer = std::thread::Builder::new().name("tone".into()).spawn(move || {
            let mut n = 0u64;
            let mut block = Vec::with_capacity(960 * 2);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                block.clear();
                for _ in 0..960 {
                    let s = (0.25 * (2.0 * std::f64::consts::PI * hz * n as f64 / 48_000.0).sin() * f64::from(i16::MAX)) as i16;
                    block.extend_from_slice(&s.to_le_bytes());
                    n += 1;
                }
                // pacat paces us: the write blocks while its buffer is full.
                if stdin.write_all(&block).is_err() {
                    break;
                }
            }
        });
        Tone { child, stop, writer: writer.ok() }
    }
}

impl Drop for Tone {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// `blende join` in the window uses the devices a user would get: the system's default
/// microphone is PulseAudio's null-sink monitor here, and the other side decodes the tone
/// played into that sink (660 Hz: not the built-in 440 Hz test tone).
#[test]
fn the_app_window_sends_the_system_default_microphone() {
    let _serial = serial();
    let test = "the_app_window_sends_the_system_default_microphone";
    if !janus_or_skip(test) || !crate::share::x11_or_skip(test) {
        return;
    }
    if std::env::var_os("PULSE_SERVER").is_none() {
        assert!(std::env::var_os("BLENDE_REQUIRE_PULSE").is_none(), "{test}: BLENDE_REQUIRE_PULSE is set but PULSE_SERVER is not");
        eprintln!("SKIPPED {test}: no PulseAudio (scripts/test.sh starts one)");
        return;
    }
    let _tone = Tone::play(660.0);
    // No --mic: the window's default. No camera on this machine, and none asked for.
    let app = Participant::spawn_app("Sachbearbeiter", 2470, &["--camera", "none"]);
    app.wait_for("microphone on", Duration::from_secs(20), |v| v["event"] == "device" && v["kind"] == "mic" && v["to"] == "on");
    app.wait_for("app published", Duration::from_secs(20), |v| v["event"] == "published");
    let peer = Participant::spawn("Gast", 2470, &["--camera", "none", "--mic", "none"]);
    let heard = peer.wait_feed_stats("the other side decodes the system microphone", Duration::from_secs(30), 0, |v| {
        v["display"] == "Sachbearbeiter" && v["audio_hz"].as_f64().is_some_and(|hz| (hz - 660.0).abs() <= 5.0)
    });
    eprintln!(
        "app with the default microphone: {:.1} Hz at {:.1} dBFS at the other side",
        heard["audio_hz"].as_f64().unwrap_or(0.0),
        heard["audio_dbfs"].as_f64().unwrap_or(f64::NAN)
    );
    peer.leave();
}
