//! The app through its accessibility tree (egui_kittest): what a screen reader can find, a
//! test can find and press.

use std::time::{Duration, Instant};

use blende_app::ui::{AppOptions, BlendeApp, Language};
use blende_policy::Policy;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::{Windows, display_or_skip, xterm};

/// One app at a time: global shortcuts and their event queue are process-wide.
pub(crate) static ONE_APP: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn app(language: Language, start_in_demo: bool) -> Harness<'static, BlendeApp> {
    app_with_settings(language, start_in_demo, None)
}

fn app_with_settings(language: Language, start_in_demo: bool, user_settings: Option<std::path::PathBuf>) -> Harness<'static, BlendeApp> {
    Harness::builder().with_size(egui::vec2(1100.0, 720.0)).build_eframe(move |cc| {
        BlendeApp::new(
            &cc.egui_ctx,
            AppOptions {
                language,
                start_in_demo,
                policy: Policy::builtin(),
                autojoin: None,
                started: std::time::Instant::now(),
                user_settings: user_settings.clone(),
                admin_policy: None,
                secrets: std::sync::Arc::new(blende_app::secrets::OsKeychain),
            },
        )
    })
}

/// Steps the UI until a widget with exactly this label exists (devices and workers answer on
/// their own threads).
pub(crate) fn wait_for(h: &mut Harness<'static, BlendeApp>, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        h.step();
        if h.query_all_by_label(label).next().is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "no widget labelled {label:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn join_the_demo_and_the_camera_switch_shows_the_real_device_state() {
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::English, false);
    h.get_by_label("Join").click();
    wait_for(&mut h, "Camera: on");
    wait_for(&mut h, "Microphone: on");
    h.get_by_label("Camera: on").click();
    // Off only once the driver reports the device released.
    wait_for(&mut h, "Camera: off");
    h.get_by_label("Camera: off").click();
    wait_for(&mut h, "Camera: on");
    h.get_by_label("Everything off").click();
    wait_for(&mut h, "Camera: off");
    wait_for(&mut h, "Microphone: off");
}

#[test]
fn the_share_picker_shows_a_mail_window_disabled_with_its_reason() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Posteingang {} - Mozilla Thunderbird", std::process::id());
    let _w = Windows(vec![xterm("Thunderbird", &title)]);
    std::thread::sleep(Duration::from_millis(800));
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::German, true);
    wait_for(&mut h, "Fenster teilen");
    h.get_by_label("Fenster teilen").click();
    let entry = format!("Thunderbird – {title}");
    wait_for(&mut h, &entry);
    assert!(h.get_by_label(&entry).accesskit_node().is_disabled(), "a mail window must not be selectable");
    // Other tests may have mail windows open too: at least one such reason is shown.
    assert!(h.query_all_by_label("gesperrt: E-Mail-Programm").next().is_some());
    // The whole screen is not offered under the built-in policy.
    assert!(h.query_by_label("Ganzen Bildschirm teilen").is_none());
}

#[test]
fn switching_language_changes_every_label() {
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::English, false);
    wait_for(&mut h, "Join");
    h.get_by_label("Deutsch").click();
    wait_for(&mut h, "Beitreten");
    assert!(h.query_by_label("Join").is_none());
    assert!(h.query_by_label("Besprechungs-ID").is_some());
}

#[test]
fn the_global_shortcut_switches_the_camera_off_while_another_window_has_focus() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Focus {} - Editor", std::process::id());
    let _w = Windows(vec![xterm("XTerm", &title)]);
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::English, true);
    wait_for(&mut h, "Camera: on");
    assert!(
        h.query_by_label_contains("Global shortcuts unavailable").is_none(),
        "{:?}",
        h.query_by_label_contains("Global shortcuts unavailable").map(|n| format!("{n:?}"))
    );
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("xdotool")
        .args(["search", "--name", &title, "windowactivate", "--sync", "key", "ctrl+alt+v"])
        .status()
        .expect("xdotool");
    assert!(status.success());
    wait_for(&mut h, "Camera: off");
}

#[test]
fn sharing_a_window_shows_what_is_shared_and_the_guards_pause() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Antrag_{}.odt - LibreOffice Writer", std::process::id());
    let _w = Windows(vec![xterm("XTerm", &title)]);
    std::thread::sleep(Duration::from_millis(800));
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::English, true);
    wait_for(&mut h, "Share a window");
    h.get_by_label("Share a window").click();
    let entry = format!("XTerm – {title}");
    wait_for(&mut h, &entry);
    h.get_by_label(&entry).click();
    wait_for(&mut h, &format!("You are sharing: {entry}"));
    let status = std::process::Command::new("xdotool")
        .args(["search", "--name", &title, "set_window", "--name", "Posteingang (3) - Gmail — Mozilla Firefox"])
        .status()
        .expect("xdotool");
    assert!(status.success());
    wait_for(&mut h, "Sharing paused: webmail in a browser");
    h.get_by_label("Stop sharing").click();
    wait_for(&mut h, "Share a window");
}

/// Snapshot images of the main screens (rendered by wgpu on the software adapter). A changed
/// screen fails with a `.new.png` and a `.diff.png` beside the snapshot under
/// `tests/snapshots/`; `UPDATE_SNAPSHOTS=1` accepts the new look.
#[test]
fn snapshots_of_the_main_screens() {
    use egui_kittest::SnapshotOptions;
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut results = egui_kittest::SnapshotResults::new();
    for (language, name, label) in [(Language::English, "join_screen_en", "Join"), (Language::German, "join_screen_de", "Beitreten")] {
        let mut h = app(language, false);
        wait_for(&mut h, label);
        h.run();
        results.add(h.try_snapshot(name));
    }
    // The call with everything switched off: the bar shows both devices off and the own tile
    // "Camera off". The demo participant's moving picture (480x270) is the one part allowed
    // to differ.
    let mut h = app(Language::English, true);
    wait_for(&mut h, "Camera: on");
    h.get_by_label("Everything off").click();
    wait_for(&mut h, "Camera: off");
    wait_for(&mut h, "Microphone: off");
    h.run();
    results.add(h.try_snapshot_options("call_screen_all_off", &SnapshotOptions::new().max_failed_pixels(480 * 270 + 2_000)));
    results.unwrap();
}

/// A personal rule added in the settings is written to the user's settings file, applies at
/// once, and the picker then shows the matching window disabled with "blocked by you".
#[test]
fn a_block_rule_added_in_settings_disables_the_window_in_the_picker() {
    if !display_or_skip() {
        return;
    }
    let title = format!("Geheimprojekt {} - Editor", std::process::id());
    let _w = Windows(vec![xterm("XTerm", &title)]);
    let dir = std::env::temp_dir().join(format!("blende-settings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = dir.join("blende").join("settings.toml");
    std::thread::sleep(Duration::from_millis(800));
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app_with_settings(Language::English, true, Some(settings.clone()));
    wait_for(&mut h, "Settings…");
    h.get_by_label("Settings…").click();
    wait_for(&mut h, "Add rule");
    h.get_by_label("Text").focus();
    h.step();
    h.get_by_label("Text").type_text("Geheimprojekt");
    h.step();
    h.get_by_label("Add rule").click();
    wait_for(&mut h, "Added: windows with “Geheimprojekt” can no longer be shared.");
    let written = std::fs::read_to_string(&settings).expect("settings written");
    assert!(written.contains("[[share.block]]") && written.contains("title_contains = \"Geheimprojekt\""), "{written}");
    // Rules are shown as they match: normalised (case folded).
    wait_for(&mut h, "• Title contains: geheimprojekt");
    // Close the settings (its shortcut list names "Share a window" too), then open the picker.
    h.get_by_label("Settings…").click();
    h.run();
    h.get_by_label("Share a window").click();
    let entry = format!("XTerm – {title}");
    wait_for(&mut h, &entry);
    assert!(h.get_by_label(&entry).accesskit_node().is_disabled(), "a window the user blocked must not be selectable");
    assert!(h.query_all_by_label("blocked: blocked by you").next().is_some(), "the reason names the user's own rule");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The device check on the join screen opens camera and microphone only when asked, shows
/// the level, and closes them again.
#[test]
fn the_device_check_opens_devices_only_on_request() {
    let _one = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = app(Language::English, false);
    wait_for(&mut h, "Test camera and microphone");
    assert!(h.query_by_label_contains("Microphone level").is_none(), "no device is open before the user asks");
    h.get_by_label("Test camera and microphone").click();
    wait_for(&mut h, "Stop test");
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.query_by_label_contains("Microphone level").is_none() {
        assert!(Instant::now() < deadline, "no microphone level shown");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.get_by_label("Stop test").click();
    wait_for(&mut h, "Test camera and microphone");
    h.run();
    assert!(h.query_by_label_contains("Microphone level").is_none());
}
