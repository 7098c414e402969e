//! `blende share-preview` against real X windows under Xvfb + openbox: what would be encoded
//! never shows a blocked window, a covering window or a window that turned into webmail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{BLENDE, Windows, display_or_skip, run};

const SHARED_BG: [u8; 3] = [0x33, 0x66, 0xcc];
const BLOCKED_BG: [u8; 3] = [0x00, 0xff, 0x00];
const ALLOWED_BG: [u8; 3] = [0xff, 0x88, 0x00];

pub(crate) fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_micros() as u64
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

pub(crate) fn xterm(class: &str, title: &str, bg: [u8; 3], geometry: &str) -> Child {
    Command::new("xterm")
        .args(["-class", class, "-T", title, "-bg", &hex(bg), "-geometry", geometry, "-e", "sleep 120"])
        .stderr(Stdio::null())
        .spawn()
        .expect("xterm")
}

fn xdotool(args: &[&str]) -> String {
    let out = Command::new("xdotool").args(args).output().expect("xdotool (apt-get install xdotool)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) fn window_id(title: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(id) = xdotool(&["search", "--name", &regex_escape(title)]).lines().next() {
            // Wait until the window manager has mapped it.
            std::thread::sleep(Duration::from_millis(300));
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "window {title:?} did not appear");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if "()[].*+?^$|\\".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

pub(crate) fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("blende-share-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[derive(Debug)]
pub(crate) struct FrameLine {
    pub(crate) captured_at_us: u64,
    pub(crate) decision: String,
    pub(crate) reason: Option<String>,
    pub(crate) file: Option<String>,
}

/// Starts a preview; `during` runs once `warmup` frames were sent; returns every frame line.
pub(crate) fn preview(id: &str, frames: u32, dir: &Path, warmup: usize, during: impl FnOnce()) -> Vec<FrameLine> {
    let mut child = Command::new(BLENDE)
        .args(["share-preview", "--window", id, "--frames", &frames.to_string(), "--fps", "20", "--policy", "/dev/null", "--out"])
        .arg(dir)
        .env("XDG_CONFIG_HOME", "/nonexistent-blende-test")
        .stdout(Stdio::piped())
        .spawn()
        .expect("blende share-preview");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut frames_seen = Vec::new();
    let mut during = Some(during);
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json line");
        if v.get("frame").is_none() {
            continue; // an event
        }
        frames_seen.push(FrameLine {
            captured_at_us: v["captured_at_us"].as_u64().expect("time"),
            decision: v["decision"].as_str().expect("decision").to_owned(),
            reason: v["reason"].as_str().map(str::to_owned),
            file: v["file"].as_str().map(str::to_owned),
        });
        if frames_seen.len() == warmup
            && let Some(f) = during.take()
        {
            f();
        }
    }
    assert!(child.wait().expect("wait").success());
    frames_seen
}

fn pixels(path: &Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf[..info.buffer_size()].chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect()
}

fn contains(path: &Path, colour: [u8; 3]) -> bool {
    pixels(path).contains(&colour)
}

#[test]
fn a_blocked_window_cannot_be_shared_by_id() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Posteingang - Mozilla Thunderbird {}", std::process::id());
    let _w = Windows(vec![xterm("Thunderbird", &title, BLOCKED_BG, "40x10+50+50")]);
    let id = window_id(&title);
    let out = run(
        &["share-preview", "--window", &id, "--frames", "3", "--out", out_dir("refused").to_str().expect("path"), "--policy", "/dev/null"],
        "",
    );
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(mail)"));
    assert!(!out_dir("refused").join("frame-00001.png").exists(), "no frame written");
}

#[test]
fn renamed_to_webmail_pauses_from_the_next_frame_and_resumes_when_allowed() {
    if !display_or_skip() {
        return;
    }
    // xdotool sets `_NET_WM_NAME` (UTF-8) and `WM_NAME`.
    renamed_to_webmail("rename", "Word", "60x20+300+300", |id, title| {
        xdotool(&["set_window", "--name", title, id]);
    });
}

/// The same with titles only in a COMPOUND_TEXT `WM_NAME`, as xterm and other Xlib programs
/// set them: the dashes and umlauts arrive as escape sequences the guard must decode.
#[test]
fn renamed_to_webmail_in_compound_text_pauses_and_resumes_too() {
    if !display_or_skip() {
        return;
    }
    renamed_to_webmail("rename-ctext", "Planung", "60x20+1400+700", |id, title| {
        xprop(&["-id", id, "-remove", "_NET_WM_NAME"]);
        xprop(&["-id", id, "-f", "WM_NAME", "8t", "-set", "WM_NAME", title]);
    });
}

fn xprop(args: &[&str]) {
    // A UTF-8 locale, so xprop's Xlib encodes what Latin-1 lacks (the dashes) as UTF-8 segments.
    let ok = Command::new("xprop").env("LC_ALL", "C.UTF-8").args(args).status().expect("xprop (apt-get install x11-utils)");
    assert!(ok.success(), "xprop {args:?}");
}

/// A shared document window renamed to a webmail tab for 600 ms, then to another document (with
/// umlauts and dashes), by `rename`: the frames before are sent, every frame while it is webmail
/// is a pause, sharing resumes after.
fn renamed_to_webmail(out: &str, program: &str, geometry: &str, rename: impl Fn(&str, &str)) {
    let title = format!("Bauantrag_{}.docx - {program}", std::process::id());
    // Apart from every other test's windows, which would cover it.
    let _w = Windows(vec![xterm("XTerm", &title, SHARED_BG, geometry)]);
    let id = window_id(&title);
    let dir = out_dir(out);
    let mut renamed_at = 0;
    let mut restored_at = 0;
    // Eight frames of warm-up: the first few come in a burst, and at least three must be sent
    // well before the rename.
    let frames = preview(&id, 44, &dir, 8, || {
        rename(&id, "Posteingang (3) – Gmail — Mozilla Firefox");
        renamed_at = now_us();
        std::thread::sleep(Duration::from_millis(600));
        restored_at = now_us();
        rename(&id, &format!("{title} – Entwurf Straßenbau"));
    });
    let before: Vec<&FrameLine> = frames.iter().filter(|f| f.captured_at_us < renamed_at.saturating_sub(100_000)).collect();
    let while_webmail: Vec<&FrameLine> =
        frames.iter().filter(|f| f.captured_at_us >= renamed_at && f.captured_at_us < restored_at).collect();
    assert!(before.len() >= 3 && while_webmail.len() >= 5, "{frames:?}");
    for f in &before {
        assert_eq!(f.decision, "send");
        assert!(contains(&dir.join(f.file.as_ref().expect("file")), SHARED_BG), "the window is really captured");
    }
    for f in &while_webmail {
        assert_eq!((f.decision.as_str(), f.reason.as_deref()), ("pause", Some("blocked")), "{f:?}");
        assert!(!contains(&dir.join(f.file.as_ref().expect("slate file")), SHARED_BG), "a paused frame shows the window");
    }
    // Allowed again: sharing resumes by itself.
    let last = frames.last().expect("frames");
    assert_eq!(last.decision, "send", "{frames:?}");
}

#[test]
fn windows_on_top_never_leak_into_the_picture_even_while_moving() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let shared = format!("Haushalt_{tag}.xlsx - Excel");
    let blocked = format!("Signal {tag}");
    let allowed = format!("Notizen_{tag}.txt - Editor");
    let mut w = Windows(vec![xterm("XTerm", &shared, SHARED_BG, "80x24+100+100")]);
    let id = window_id(&shared);
    // Opened later, so stacked above the shared window.
    w.0.push(xterm("Signal", &blocked, BLOCKED_BG, "30x8+150+150"));
    w.0.push(xterm("XTerm", &allowed, ALLOWED_BG, "30x8+400+250"));
    let blocked_id = window_id(&blocked);
    window_id(&allowed);
    let dir = out_dir("cover");
    let mover = std::thread::Builder::new()
        .name("mover".into())
        .spawn(move || {
            for step in 0..12 {
                std::thread::sleep(Duration::from_millis(60));
                xdotool(&["windowmove", &blocked_id, &(120 + step * 25).to_string(), &(140 + step * 10).to_string()]);
            }
        })
        .expect("thread");
    let frames = preview(&id, 30, &dir, 1, || {});
    mover.join().expect("mover");
    let sent: Vec<&FrameLine> = frames.iter().filter(|f| f.decision == "send").collect();
    assert!(sent.len() >= 20, "{frames:?}");
    for f in &sent {
        let px = pixels(&dir.join(f.file.as_ref().expect("file")));
        assert!(!px.contains(&BLOCKED_BG), "blocked window leaked into {f:?}");
        assert!(!px.contains(&ALLOWED_BG), "covering window leaked into {f:?}");
        assert!(px.contains(&SHARED_BG), "shared window missing in {f:?}");
        assert!(px.contains(&[0x80, 0x80, 0x80]), "no mask in {f:?}");
    }
}

#[test]
fn minimise_and_close_pause_and_restore_resumes() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Vortrag_{}.odp - LibreOffice Impress", std::process::id());
    let mut w = Windows(vec![xterm("XTerm", &title, SHARED_BG, "60x20+500+400")]);
    let id = window_id(&title);
    let dir = out_dir("minimise");
    let (mut minimised_at, mut restored_at, mut closed_at) = (0, 0, 0);
    let frames = preview(&id, 50, &dir, 4, || {
        xdotool(&["windowminimize", "--sync", &id]);
        minimised_at = now_us();
        std::thread::sleep(Duration::from_millis(500));
        restored_at = now_us();
        xdotool(&["windowactivate", "--sync", &id]);
        std::thread::sleep(Duration::from_millis(600));
        let _ = w.0[0].kill();
        let _ = w.0[0].wait();
        std::thread::sleep(Duration::from_millis(200));
        closed_at = now_us();
    });
    let between = |a: u64, b: u64| frames.iter().filter(move |f| f.captured_at_us >= a && f.captured_at_us < b);
    assert!(between(minimised_at, restored_at).count() >= 5);
    assert!(between(minimised_at, restored_at).all(|f| f.decision == "pause" && f.reason.as_deref() == Some("minimized")), "{frames:?}");
    assert!(between(restored_at + 300_000, restored_at + 500_000).any(|f| f.decision == "send"), "restore resumes: {frames:?}");
    let after_close: Vec<&FrameLine> = between(closed_at, u64::MAX).collect();
    assert!(
        !after_close.is_empty() && after_close.iter().all(|f| f.decision == "pause" && f.reason.as_deref() == Some("closed")),
        "{frames:?}"
    );
    for f in between(minimised_at, restored_at).chain(after_close.iter().copied()) {
        assert!(!contains(&dir.join(f.file.as_ref().expect("file")), SHARED_BG));
    }
}

#[test]
fn whole_screen_only_when_allowed_and_then_blocked_windows_are_masked() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let mail = format!("Posteingang {tag} - Mozilla Thunderbird");
    let doc = format!("Protokoll_{tag}.odt - LibreOffice Writer");
    let _w = Windows(vec![xterm("Thunderbird", &mail, BLOCKED_BG, "40x12+700+500"), xterm("XTerm", &doc, SHARED_BG, "40x12+60+600")]);
    window_id(&mail);
    window_id(&doc);
    // The built-in policy forbids it.
    let out = run(
        &[
            "share-preview",
            "--screen",
            "--frames",
            "2",
            "--out",
            out_dir("screen-refused").to_str().expect("path"),
            "--policy",
            "/dev/null",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    // An administrator allows it.
    let dir = out_dir("screen");
    std::fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[share]\nallow_full_screen = true\n").expect("policy");
    let out = run(
        &[
            "share-preview",
            "--screen",
            "--frames",
            "10",
            "--fps",
            "5",
            "--out",
            dir.to_str().expect("path"),
            "--policy",
            policy.to_str().expect("path"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Other tests move blocked windows about meanwhile: frames read while one moved are
    // dropped (no file); every frame written shows no blocked window at all.
    let written: Vec<PathBuf> = (1..=10).map(|n| dir.join(format!("frame-{n:05}.png"))).filter(|f| f.exists()).collect();
    assert!(!written.is_empty(), "no frame was sent: {}", String::from_utf8_lossy(&out.stdout));
    for f in &written {
        let px = pixels(f);
        assert!(px.contains(&SHARED_BG), "the allowed window is shared");
        assert!(!px.contains(&BLOCKED_BG), "a mail window leaked into {f:?}");
    }
}

#[test]
fn picker_thumbnails_never_capture_blocked_or_covering_windows() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let mail = format!("Inbox {tag} - Mozilla Thunderbird");
    let doc = format!("Thumb_{tag}.odt - LibreOffice Writer");
    let signal = format!("Signal {tag} thumb");
    let mut w = Windows(vec![xterm("Thunderbird", &mail, BLOCKED_BG, "30x8+40+700"), xterm("XTerm", &doc, SHARED_BG, "80x24+900+80")]);
    let mail_id = window_id(&mail);
    let doc_id = window_id(&doc);
    w.0.push(xterm("Signal", &signal, BLOCKED_BG, "20x6+950+120"));
    window_id(&signal);
    let id = |s: &str| s.parse::<u32>().expect("xdotool prints decimal ids");
    let policy = blende_policy::Policy::builtin();
    assert!(blende_windows::share::thumbnail(id(&mail_id), &policy, 160).expect("thumbnail").is_none(), "a mail window is never captured");
    let thumb = blende_windows::share::thumbnail(id(&doc_id), &policy, 160).expect("thumbnail").expect("allowed window");
    assert!(thumb.width <= 160 && thumb.width >= 100);
    let greenish = thumb.data.chunks_exact(4).any(|p| p[1] > 0xc0 && p[0] < 0x40 && p[2] < 0x40);
    assert!(!greenish, "the covering messenger window leaked into the thumbnail");
    // BGRA: the shared window's blue is there.
    assert!(thumb.data.chunks_exact(4).any(|p| p[0] == 0xcc && p[1] == 0x66 && p[2] == 0x33));
}
