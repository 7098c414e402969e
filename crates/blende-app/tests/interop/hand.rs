//! A raised hand in a Blende room, between two `blende join --headless` processes on the real
//! room server: Anna raises hers, the moderator sees it within a second, gives her the floor
//! and lowers it, and Anna's own client hears that it is down.

use std::time::{Duration, Instant};

use crate::harness::{Participant, janus_or_skip, serial};
use crate::room::{RoomServer, RoomSetup};

#[test]
fn a_raised_hand_reaches_the_moderator_who_lowers_it() {
    let _serial = serial();
    // The namespace (with 127.0.0.2 for ICE) comes with the Janus setup.
    if !janus_or_skip("a_raised_hand_reaches_the_moderator_who_lowers_it") {
        return;
    }
    let setup = RoomSetup::new("hand");
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Sprechstunde", false);
    let (url, tok, pw) = (server.url(), setup.token_path().to_owned(), m.password_path().to_owned());
    let quiet = ["--camera", "none", "--mic", "none"];
    let mut moderator =
        Participant::spawn_with_server("Leitung", &url, &[&["--room", &m.id, "--moderator-token-file", &tok][..], &quiet].concat());
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let mut anna = Participant::spawn_with_server("Anna", &url, &[&["--room", &m.id, "--password-file", &pw][..], &quiet].concat());
    let joined = anna.wait_for("Anna in", Duration::from_secs(15), |v| v["event"] == "joined");
    let id = joined["participant_id"].as_str().expect("Anna's id").to_owned();
    moderator.wait_for("Anna's role", Duration::from_secs(10), |v| v["event"] == "role" && v["participant"] == id.as_str());
    assert!(!moderator.events().iter().any(|v| v["event"] == "hand"), "nobody's hand is up at first");

    let raised_at = Instant::now();
    anna.send("hand up");
    let seen = moderator.wait_for("Anna's hand", Duration::from_secs(5), |v| v["event"] == "hand" && v["participant"] == id.as_str());
    // Seen by the test at most 50 ms after the moderator printed it: an upper bound (the
    // process's own `t_ms` cannot be set against the test's clock closer than its start-up).
    let latency = raised_at.elapsed();
    eprintln!("hand: raised by Anna, seen by the moderator within {} ms", latency.as_millis());
    assert_eq!(seen["raised"], true);
    assert!(latency < Duration::from_secs(1), "the moderator saw the hand after {latency:?}");
    anna.wait_for("her own hand up", Duration::from_secs(5), |v| {
        v["event"] == "hand" && v["participant"] == id.as_str() && v["raised"] == true
    });

    // Anna cannot lower the moderator's hand: the server refuses, and says so.
    let mark = anna.events().len();
    let moderator_id = moderator.wait_for("own id", Duration::from_secs(1), |v| v["event"] == "joined")["participant_id"]
        .as_str()
        .expect("moderator id")
        .to_owned();
    anna.send(&format!("lower hand {moderator_id}"));
    anna.wait_for_since(mark, "refusal", Duration::from_secs(5), |v| v["event"] == "error" && v["fatal"] == false);

    moderator.send(&format!("lower hand {id}"));
    for (who, p) in [("Anna", &anna), ("the moderator", &moderator)] {
        p.wait_for(&format!("lowered, for {who}"), Duration::from_secs(5), |v| {
            v["event"] == "hand" && v["participant"] == id.as_str() && v["raised"] == false
        });
    }
    anna.leave();
    moderator.leave();
}

/// The app window's button: "Hand heben" raises it for the moderator to see, and once the
/// moderator lowered it the button offers to raise it again.
#[test]
fn the_app_raises_a_hand_with_its_button_and_shows_it_lowered() {
    use blende_app::ui::{BlendeApp, Language};
    use eframe::egui;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{Queryable, by};

    let _serial = serial();
    if !crate::share::x11_or_skip("the_app_raises_a_hand_with_its_button_and_shows_it_lowered") {
        return;
    }
    // The app runs in this process: the server and the moderator on this process's loopback.
    let setup = RoomSetup::new("hand-ui");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Sprechstunde", false);
    let (url, tok) = (server.url(), setup.token_path().to_owned());
    let mut moderator =
        Participant::spawn_local("Leitung", &url, &["--room", &m.id, "--moderator-token-file", &tok, "--camera", "none", "--mic", "none"]);
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let options = crate::room::app_in_meeting(&server, &m, "Gast", Language::German, None, None);
    let mut h =
        Harness::builder().with_size(egui::vec2(1100.0, 720.0)).build_eframe(move |cc| BlendeApp::new(&cc.egui_ctx, options.clone()));
    let until = |h: &mut Harness<'_, BlendeApp>, what: &str, label: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while h.query_all(by().label(label)).next().is_none() {
            assert!(Instant::now() < deadline, "{what}: no `{label}`");
            h.step();
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(&mut h, "in the meeting", "Hand heben");
    h.get_by_label("Hand heben").click();
    h.step();
    let raised = moderator.wait_for("the guest's hand", Duration::from_secs(5), |v| v["event"] == "hand" && v["raised"] == true);
    until(&mut h, "raised", "Hand senken");
    let guest = raised["participant"].as_str().expect("id").to_owned();
    moderator.send(&format!("lower hand {guest}"));
    until(&mut h, "lowered by the moderator", "Hand heben");
    moderator.leave();
}
