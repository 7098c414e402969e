//! Sharing into a Blende room's mesh: the room server decides by role (a participant's
//! request is refused, a presenter's accepted), the window then goes to each participant on a
//! PeerConnection of its own, every frame through the share guard, and "everything off" stops
//! it at the other participant within half a second.

use std::time::Duration;

use crate::harness::{Participant, janus_or_skip, serial};
use crate::kill::unix_us;
use crate::room::{RoomServer, RoomSetup};
use crate::share::{white_window, x11_or_skip, xdotool};

#[test]
fn a_window_shared_into_a_mesh_room_reaches_the_other_participant_only_as_presenter() {
    let _serial = serial();
    let test = "a_window_shared_into_a_mesh_room_reaches_the_other_participant_only_as_presenter";
    if !janus_or_skip(test) || !x11_or_skip(test) {
        return;
    }
    let title = format!("Stellungnahme-{}.odt", std::process::id());
    let (_xterm, id) = white_window(&title);
    let setup = RoomSetup::new("mesh-share");
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Stellungnahme", false);
    let (url, tok, pw) = (server.url(), setup.token_path().to_owned(), m.password_path().to_owned());
    let mut moderator =
        Participant::spawn_with_server("Leitung", &url, &["--room", &m.id, "--moderator-token-file", &tok, "--mic", "none"]);
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let mut sharer = Participant::spawn_with_server("Referent", &url, &["--room", &m.id, "--password-file", &pw, "--mic", "none"]);
    let joined = sharer.wait_for("sharer in", Duration::from_secs(15), |v| v["event"] == "joined");
    let me = joined["participant_id"].as_str().expect("id").to_owned();
    sharer.wait_for("mesh up", Duration::from_secs(20), |v| v["event"] == "connection" && v["state"] == "connected" && !v["to"].is_null());

    // Without the presenter role the server says no, and nothing is captured.
    sharer.send(&format!("share window {id}"));
    let refused = sharer.wait_for("share refused", Duration::from_secs(10), |v| v["event"] == "share" && v["state"] == "refused");
    assert_eq!(refused["by"], "role", "{refused}");
    assert!(!sharer.events().iter().any(|v| v["event"] == "share" && v["state"] == "starting"), "no capture without the server's yes");

    // The moderator makes them presenter: the share goes to the moderator, peer to peer.
    moderator.send(&format!("presenter on {me}"));
    moderator.wait_for("role granted", Duration::from_secs(10), |v| {
        v["event"] == "role" && v["participant"] == me.as_str() && v["role"] == "presenter"
    });
    sharer.send(&format!("share window {id}"));
    sharer.wait_for("share starts", Duration::from_secs(10), |v| v["event"] == "share" && v["state"] == "starting");
    let feed = format!("{me}/screen");
    let timeout = Duration::from_secs(30);
    let white = moderator.wait_feed_stats("moderator decodes the window", timeout, 0, |v| {
        v["feed"] == feed.as_str() && v["frames_decoded"].as_u64().unwrap_or(0) >= 5 && v["centre_luma"].as_f64().unwrap_or(0.0) > 200.0
    });
    assert_eq!(
        (white["width"].as_u64(), white["height"].as_u64(), white["display"].as_str()),
        (Some(1280), Some(720), Some("Referent (screen)"))
    );

    // Webmail in the window: the guard pauses, the moderator decodes the slate.
    xdotool(&["set_window", "--name", "Posteingang (3) - Gmail — Mozilla Firefox", &id]);
    let paused = sharer.wait_for("guard pauses", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "paused");
    assert_eq!((paused["reason"].as_str(), paused["category"].as_str()), (Some("blocked"), Some("webmail")));
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = moderator.last_t_ms();
    let slate = moderator.wait_feed_stats("moderator decodes the slate", timeout, t0, |v| {
        v["feed"] == feed.as_str() && v["frames_since_last"].as_u64().unwrap_or(0) > 0
    });
    let luma = slate["centre_luma"].as_f64().expect("luma");
    assert!(luma < 100.0, "after the pause the moderator still sees a bright picture (centre luma {luma})");
    xdotool(&["set_window", "--name", &title, &id]);
    sharer.wait_for("guard resumes", Duration::from_secs(5), |v| v["event"] == "share" && v["state"] == "sending");
    let t1 = moderator.last_t_ms();
    moderator.wait_feed_stats("the window again", timeout, t1, |v| {
        v["feed"] == feed.as_str() && v["centre_luma"].as_f64().unwrap_or(0.0) > 200.0
    });

    // "Everything off": the moderator's last picture of the share is at most 500 ms later.
    let command_us = unix_us();
    sharer.send("all off");
    moderator.wait_for("the share's feed ends", Duration::from_secs(10), |v| v["event"] == "participant_left" && v["id"] == feed.as_str());
    std::thread::sleep(Duration::from_millis(1000));
    let last = moderator
        .events()
        .iter()
        .filter(|v| v["event"] == "stats" && v["feed"] == feed.as_str())
        .filter_map(|v| v["last_picture_unix_us"].as_u64())
        .max()
        .expect("pictures of the share were decoded");
    let late_ms = last.saturating_sub(command_us) as f64 / 1000.0;
    eprintln!("mesh: last picture of the share at the moderator {late_ms:.0} ms after `all off`");
    assert!(last <= command_us + 500_000, "a picture of the share arrived {late_ms:.0} ms after `all off`");
    // Media went peer to peer: the room server has no UDP socket.
    assert_eq!(server.udp_sockets(), 0);
    // Removed by the moderator: the participant's process ends with status 4 (JOIN.md).
    moderator.send(&format!("remove {me}"));
    assert_eq!(sharer.exit_status(Duration::from_secs(10)), Some(4), "a removed participant exits with status 4");
    moderator.leave();
}

/// The app (through its accessibility tree) asks a Blende room to share without the presenter
/// role: the room server refuses, and the app says why, in English and in German.
#[test]
fn the_app_shows_the_room_servers_refusal_of_a_share_in_both_languages() {
    use blende_app::engine::ShareSource;
    use blende_app::ui::{BlendeApp, Language};
    use eframe::egui;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{Queryable, by};

    let _serial = serial();
    let test = "the_app_shows_the_room_servers_refusal_of_a_share_in_both_languages";
    if !x11_or_skip(test) {
        return;
    }
    let (_xterm, window) = white_window(&format!("Entwurf-{}.odt", std::process::id()));
    let window: u32 = window.parse().expect("window id");
    // The app runs in this process: the server on this process's loopback, not the namespace's.
    let setup = RoomSetup::new("share-refused-ui");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Entwurf", false);
    for (language, reason) in [(Language::English, "only presenters may share"), (Language::German, "Nur Präsentierende dürfen teilen")] {
        let options = crate::room::app_in_meeting(&server, &m, "Gast", language, None, Some(ShareSource::Window(window)));
        let mut h =
            Harness::builder().with_size(egui::vec2(1100.0, 720.0)).build_eframe(move |cc| BlendeApp::new(&cc.egui_ctx, options.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            h.step();
            if h.query_all(by().label_contains(reason)).next().is_some() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{language:?}: the refusal ({reason:?}) is not shown");
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{language:?}: the app shows the refusal");
    }
}
