//! A mail program the built-in list has never heard of is blocked by its desktop entry alone
//! (`Categories=Network;Email;`), in `blende windows`, in the share picker and for a share, and
//! allowed again once the entry is gone. The entry goes where this machine's desktop looks first
//! (`$XDG_DATA_HOME/applications`, else `~/.local/share/applications`) and is removed afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blende_app::ui::Language;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::share::{FrameLine, now_us, out_dir, preview, window_id};
use crate::{Windows, display_or_skip, run, windows_json, xterm};

/// The installed entry, removed when dropped.
struct Entry(PathBuf);
impl Drop for Entry {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn verdict_of(title: &str) -> Option<serde_json::Value> {
    windows_json().into_iter().find(|w| w["title"] == title)
}

/// Waits until `blende windows --json` judges the window as `verdict` (entries are re-read
/// within a second of a change).
fn wait_for_verdict(title: &str, verdict: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(w) = verdict_of(title).filter(|w| w["verdict"] == verdict) {
            return w;
        }
        assert!(Instant::now() < deadline, "{title}: never {verdict}: {:?}", verdict_of(title));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_desktop_entry_in_the_email_category_blocks_a_program_nobody_listed() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let title = format!("Vorgang {tag} - Postkutsche");
    let _w = Windows(vec![xterm("Postkutsche", &title)]);
    let id = window_id(&title);
    // Without an entry nothing says what Postkutsche is.
    assert_eq!(wait_for_verdict(&title, "allow")["verdict"], "allow");

    let folder = blende_windows::apps::application_dirs().into_iter().next().expect("an applications folder");
    std::fs::create_dir_all(&folder).expect("applications folder");
    let entry = Entry(folder.join(format!("de.example.blende-test-{tag}.desktop")));

    // Installed while the window is being shared: the guard re-reads the entries within a
    // second and pauses from then on.
    let mut installed_at = 0;
    let frames = preview(&id, 60, &out_dir("entry-installed"), 5, || {
        std::fs::write(
            &entry.0,
            "[Desktop Entry]\nType=Application\nName=Postkutsche\nExec=postkutsche %u\nStartupWMClass=Postkutsche\nCategories=Network;Email;\n",
        )
        .expect("write the entry");
        installed_at = now_us();
    });
    let before: Vec<&FrameLine> = frames.iter().filter(|f| f.captured_at_us < installed_at).collect();
    let after: Vec<&FrameLine> = frames.iter().filter(|f| f.captured_at_us > installed_at + 1_200_000).collect();
    let decisions = |fs: &[&FrameLine]| fs.iter().map(|f| format!("{}/{:?}", f.decision, f.reason)).collect::<Vec<_>>();
    assert!(before.len() >= 3 && before.iter().all(|f| f.decision == "send"), "{:?}", decisions(&before));
    assert!(
        after.len() >= 10 && after.iter().all(|f| f.decision == "pause" && f.reason.as_deref() == Some("blocked")),
        "{:?}",
        decisions(&after)
    );

    let judged = wait_for_verdict(&title, "block");
    assert_eq!(judged["category"], "mail", "{judged}");
    assert_eq!(judged["rule"], "os:category:Email", "{judged}");
    let reason = judged["reason"].as_str().expect("reason");
    assert!(reason.contains(&format!("de.example.blende-test-{tag}.desktop")) && reason.contains("Email"), "{reason}");

    // A share of it is refused before any frame is taken.
    let dir = out_dir("entry-refused");
    let out = run(&["share-preview", "--window", &id, "--frames", "3", "--out", dir.to_str().expect("path"), "--policy", "/dev/null"], "");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(mail)"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.join("frame-00001.png").exists(), "no frame written");

    // The picker shows it disabled, with the category as the reason.
    {
        let _one = crate::ui::ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut h = crate::ui::app(Language::English, true);
        crate::ui::wait_for(&mut h, "Share a window");
        h.get_by_label("Share a window").click();
        let label = format!("Postkutsche – {title}");
        crate::ui::wait_for(&mut h, &label);
        assert!(h.get_by_label(&label).accesskit_node().is_disabled(), "a mail program must not be selectable");
    }

    // Removed: allowed again.
    drop(entry);
    assert_eq!(wait_for_verdict(&title, "allow")["verdict"], "allow");
}
