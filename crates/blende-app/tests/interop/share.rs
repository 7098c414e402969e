//! A shared window travels through Janus as its own feed, "<name> (screen)", and the share
//! guard acts on what the other side decodes: a window that turns into webmail is replaced by
//! the slate from the next frame on, and `share stop` ends the feed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Participant, janus_or_skip, serial};

pub struct Xterm(pub Child);
impl Drop for Xterm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn xdotool(args: &[&str]) -> String {
    let out = Command::new("xdotool").args(args).output().expect("xdotool");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn window_id(title: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(id) = xdotool(&["search", "--name", title]).lines().next() {
            std::thread::sleep(Duration::from_millis(300));
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "window {title:?} did not appear");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A white xterm titled `title` (a document to share), and its X window id.
pub fn white_window(title: &str) -> (Xterm, String) {
    let xterm = Xterm(
        Command::new("xterm")
            .args(["-class", "XTerm", "-T", title, "-bg", "#ffffff", "-geometry", "100x30+40+40", "-e", "sleep 150"])
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm"),
    );
    let id = window_id(title);
    (xterm, id)
}

/// `true` with an X display; otherwise skips with a message, or fails when
/// `BLENDE_REQUIRE_X11` is set (as `scripts/test.sh` does).
pub fn x11_or_skip(test: &str) -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    assert!(std::env::var_os("BLENDE_REQUIRE_X11").is_none(), "{test}: BLENDE_REQUIRE_X11 is set but there is no DISPLAY");
    eprintln!("SKIPPED {test}: no DISPLAY (scripts/test.sh starts Xvfb)");
    false
}

#[test]
fn shared_window_reaches_the_other_side_and_the_guard_acts_on_it() {
    let _serial = serial();
    if !janus_or_skip("shared_window_reaches_the_other_side_and_the_guard_acts_on_it") {
        return;
    }
    if !x11_or_skip("shared_window_reaches_the_other_side_and_the_guard_acts_on_it") {
        return;
    }
    let title = format!("Haushaltsplan-{}.ods", std::process::id());
    let (_xterm, id) = white_window(&title);

    let mut a = Participant::spawn("Referent", 3579, &["--camera", "none", "--mic", "none", "--share-window", &id]);
    let b = Participant::spawn("Zuschauer", 3579, &["--camera", "none", "--mic", "none"]);
    a.wait_for("share published", Duration::from_secs(20), |v| v["event"] == "share" && v["state"] == "published");
    let timeout = Duration::from_secs(30);
    let white = b.wait_feed_stats("B decodes the shared window", timeout, 0, |v| {
        v["display"] == "Referent (screen)"
            && v["frames_decoded"].as_u64().unwrap_or(0) >= 5
            && v["centre_luma"].as_f64().unwrap_or(0.0) > 200.0
    });
    assert_eq!((white["width"].as_u64(), white["height"].as_u64()), (Some(1280), Some(720)));
    // Our own share is never subscribed by ourselves.
    assert!(a.events().iter().all(|v| v["event"] != "participant_joined" || v["display"] != "Referent (screen)"));

    // The tab switches to webmail: the guard pauses, B sees the dark slate, not the window.
    xdotool(&["set_window", "--name", "Posteingang (3) - Gmail — Mozilla Firefox", &id]);
    let paused = a.wait_for("guard pauses", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "paused");
    assert_eq!(paused["reason"], "blocked");
    assert_eq!(paused["category"], "webmail");
    assert!(a.events().iter().all(|v| !v.to_string().contains("Gmail")), "a title leaked into an event");
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = b.last_t_ms();
    let slate = b.wait_feed_stats("B decodes the slate", timeout, t0, |v| {
        v["display"] == "Referent (screen)" && v["frames_since_last"].as_u64().unwrap_or(0) > 0
    });
    let luma = slate["centre_luma"].as_f64().expect("luma");
    eprintln!("centre luma at B: window {:.0}, slate {luma:.0}", white["centre_luma"].as_f64().unwrap_or(0.0));
    assert!(luma < 100.0, "after the pause B still sees a bright picture (centre luma {luma})");

    // Back to the document: sending resumes.
    xdotool(&["set_window", "--name", &title, &id]);
    a.wait_for("guard resumes", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "sending");
    let t1 = b.last_t_ms();
    b.wait_feed_stats("B sees the window again", timeout, t1, |v| {
        v["display"] == "Referent (screen)" && v["centre_luma"].as_f64().unwrap_or(0.0) > 200.0
    });

    // `share stop`: the feed leaves.
    a.send("share stop");
    a.wait_for("share stopped", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "stopped");
    b.wait_for("B sees the share leave", Duration::from_secs(10), |v| v["event"] == "participant_left");
    b.leave();
    a.leave();
}
