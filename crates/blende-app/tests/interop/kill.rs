//! The share is a kill switch like camera and microphone, seen from an independent receiver:
//! aiortc subscribes to the shared window's feed through Janus and logs the wall-clock time
//! of every picture it decodes. After "everything off" (headless `all off`, and Ctrl+Alt+X
//! sent to the app window under Xvfb) and after Ctrl+Alt+S, no picture of the shared window
//! arrives later than 500 ms after the command.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::browser::venv_python;
use crate::harness::{Participant, janus_or_skip, netns, serial};
use crate::share::{white_window, x11_or_skip, xdotool};

/// How late a picture may still arrive after a switch-off.
const GRACE_US: u64 = 500_000;

pub fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// tests/interop/janus_subscriber.py in the namespace, its JSON lines collected.
pub struct AiortcReceiver {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl AiortcReceiver {
    pub fn start(room: u32, display: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/janus_subscriber.py");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns()])
            .arg(venv_python())
            .args([script, "--room", &room.to_string(), "--display", display, "--seconds", "90"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiortc subscriber (tests/interop/setup-browser.sh installs aiortc)");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::Builder::new()
            .name("aiortc-subscriber".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["event"] != "frame" {
                            eprintln!("[aiortc] {line}");
                        }
                        sink.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                    }
                }
            })
            .expect("reader");
        AiortcReceiver { child, lines }
    }

    /// Wall-clock times (µs) of the pictures decoded so far.
    pub fn frame_times(&self) -> Vec<u64> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().filter(|v| v["event"] == "frame").filter_map(|v| v["unix_us"].as_u64()).collect()
    }

    pub fn wait_frames(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.frame_times().len() < n {
            let errors: Vec<Value> =
                self.lines.lock().unwrap_or_else(PoisonError::into_inner).iter().filter(|v| v["event"] == "error").cloned().collect();
            assert!(errors.is_empty(), "aiortc receiver: {errors:?}");
            assert!(Instant::now() < deadline, "aiortc decoded only {} pictures of the share", self.frame_times().len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AiortcReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits long enough for anything in flight to arrive, then the pictures that came later than
/// the grace period after `command_us`.
fn late_pictures(rx: &AiortcReceiver, command_us: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(2500));
    let around_ms: Vec<i128> =
        rx.frame_times().into_iter().map(|t| (i128::from(t) - i128::from(command_us)) / 1000).filter(|ms| *ms > -2000).collect();
    eprintln!("pictures decoded in the last 2 s before the command and after it, ms from it: {around_ms:?}");
    rx.frame_times().into_iter().filter(|t| *t > command_us + GRACE_US).map(|t| t - command_us).collect()
}

#[test]
fn all_off_stops_the_shared_window_at_an_independent_receiver() {
    let _serial = serial();
    let test = "all_off_stops_the_shared_window_at_an_independent_receiver";
    if !janus_or_skip(test) || !x11_or_skip(test) {
        return;
    }
    let (_xterm, id) = white_window(&format!("Vermerk-{}.odt", std::process::id()));
    let mut a = Participant::spawn("Referent", 4242, &["--share-window", &id]);
    a.wait_for("share published", Duration::from_secs(20), |v| v["event"] == "share" && v["state"] == "published");
    let rx = AiortcReceiver::start(4242, "Referent (screen)");
    rx.wait_frames(10, Duration::from_secs(30));

    let command_us = unix_us();
    a.send("all off");
    a.wait_for("switched all off", Duration::from_secs(5), |v| v["event"] == "switch" && v["kind"] == "all");
    a.wait_for("share stopped", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "stopped");
    let late = late_pictures(&rx, command_us);
    let before = rx.frame_times().len() - late.len();
    eprintln!("aiortc: {before} pictures of the share before `all off`, {} later than 500 ms after it", late.len());
    assert!(late.is_empty(), "pictures of the shared window arrived {late:?} µs after `all off`");
    // The camera and microphone went off with it: released, as the device events say.
    for kind in ["camera", "mic"] {
        a.wait_for("device released", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == kind && v["to"] == "off");
    }
    a.leave();
}

/// The app window's global shortcuts: Ctrl+Alt+S ends the share, Ctrl+Alt+X ends everything.
#[test]
fn the_share_and_all_off_shortcuts_stop_the_shared_window_at_an_independent_receiver() {
    let _serial = serial();
    let test = "the_share_and_all_off_shortcuts_stop_the_shared_window_at_an_independent_receiver";
    if !janus_or_skip(test) || !x11_or_skip(test) {
        return;
    }
    for (room, keys) in [(4343u32, "ctrl+alt+s"), (4344, "ctrl+alt+x")] {
        let (_xterm, id) = white_window(&format!("Bescheid-{room}-{}.odt", std::process::id()));
        let app = Participant::spawn_app("Referentin", room, &["--camera", "test-pattern", "--mic", "tone", "--share-window", &id]);
        app.wait_for("share published", Duration::from_secs(25), |v| v["event"] == "share" && v["state"] == "published");
        let rx = AiortcReceiver::start(room, "Referentin (screen)");
        rx.wait_frames(10, Duration::from_secs(30));
        // Another window has the focus: the shortcut is global.
        xdotool(&["windowactivate", "--sync", &id]);
        xdotool(&["key", keys]);
        // `xdotool key` returns once the X server has the key events: the shortcut exists from
        // then on (its own start-up, tens of ms on a loaded machine, is not the app's delay).
        let command_us = unix_us();
        app.wait_for("share stopped", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "stopped");
        let late = late_pictures(&rx, command_us);
        eprintln!("{keys}: {} pictures before, {} later than 500 ms after", rx.frame_times().len() - late.len(), late.len());
        assert!(late.is_empty(), "{keys}: pictures of the shared window arrived {late:?} µs after the shortcut");
        if keys == "ctrl+alt+x" {
            app.wait_for("camera released", Duration::from_secs(5), |v| {
                v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off"
            });
        } else {
            assert!(
                !app.events().iter().any(|v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off"),
                "Ctrl+Alt+S leaves the camera on"
            );
        }
        drop(app);
    }
}
