//! A window whose title is only a COMPOUND_TEXT `WM_NAME` (as xterm, terminal mail programs and
//! other Xlib clients set it; here with xprop's `8t`, em dashes and umlauts): the window
//! listing and the share guard's snapshot read the same text the policy judges from
//! `blende policy classify`. Runs under Xvfb; skips without a display unless
//! `BLENDE_REQUIRE_X11` is set.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use blende_guard::TargetRead;
use blende_policy::{Os, Policy, WindowInfo};
use blende_windows::share::X11WindowShare;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn display_or_skip() -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    assert!(std::env::var_os("BLENDE_REQUIRE_X11").is_none(), "BLENDE_REQUIRE_X11 is set but there is no DISPLAY");
    eprintln!("SKIPPED: no DISPLAY (scripts/test.sh starts Xvfb)");
    false
}

fn xprop(args: &[&str]) {
    // A UTF-8 locale, so xprop's Xlib encodes non-Latin-1 characters as UTF-8 segments.
    let ok = Command::new("xprop").env("LC_ALL", "C.UTF-8").args(args).status().expect("xprop (apt-get install x11-utils)");
    assert!(ok.success(), "xprop {args:?}");
}

fn window_with_title(placeholder: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = blende_windows::list_windows().expect("list");
        if let Some(w) = list.iter().find(|w| w.title == placeholder) {
            return w.id;
        }
        assert!(Instant::now() < deadline, "the xterm did not show up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn compound_text_titles_read_as_the_policy_reads_them() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let placeholder = format!("placeholder {tag}");
    let _xterm = Kill(
        Command::new("xterm")
            .args(["-class", "firefox", "-T", &placeholder, "-geometry", "40x10+30+30", "-e", "sleep 60"])
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm"),
    );
    let id = window_with_title(&placeholder);
    let hex = format!("{id:#x}");
    let policy = Policy::builtin();
    for title in [
        format!("WhatsApp — Mozilla Firefox {tag}"),
        format!("Posteingang (3) — Gmail — Mozilla Firefox {tag}"),
        format!("Bauamt Straße {tag} — Mozilla Firefox"),
    ] {
        xprop(&["-id", &hex, "-remove", "_NET_WM_NAME"]);
        xprop(&["-id", &hex, "-f", "WM_NAME", "8t", "-set", "WM_NAME", &title]);
        let expected = policy.classify(&WindowInfo::new(Os::Linux, "firefox", title.as_str()));
        // The listing, as `blende windows` and the share picker see it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listed = loop {
            let list = blende_windows::list_windows().expect("list");
            let w = list.into_iter().find(|w| w.id == id).expect("the window is listed");
            if w.title != placeholder {
                break w;
            }
            assert!(Instant::now() < deadline, "the title never changed");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(listed.title, title, "the listing decodes COMPOUND_TEXT");
        let judged = blende_windows::JudgedWindow::new(listed, &policy);
        assert_eq!(judged.is_allowed(), expected.is_allowed(), "{title}: listing and policy disagree");
        // The share guard's snapshot of the same window.
        let share = X11WindowShare::open(id).expect("share");
        match share.snapshot().target {
            TargetRead::Present { info, .. } => {
                assert_eq!(info.title, title, "the guard decodes COMPOUND_TEXT");
                assert_eq!(policy.classify(&info), expected);
            }
            other => panic!("{title}: snapshot {other:?}"),
        }
        println!("compound text: {title:?} -> {}", if expected.is_allowed() { "allow" } else { "block" });
    }
    assert!(!policy.classify(&WindowInfo::new(Os::Linux, "firefox", format!("WhatsApp — Mozilla Firefox {tag}"))).is_allowed());
}
