//! Calls that come back after the link was cut, through the real Janus and through Blende's
//! own room server (a peer-to-peer mesh): every packet arriving in the test namespace is
//! dropped with nftables (what a DSL line that loses sync does: our packets leave and nothing
//! comes back), then the rule goes and the two Blende clients must be back in the call on
//! their own. A camera switched off during the cut stays off.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};
use crate::room::{RoomServer, RoomSetup};

const ROOM: u32 = 2626;
/// An nftables table in the test namespace, deleted again however the test ends.
pub(crate) struct NftTable(&'static str);

impl NftTable {
    /// Creates `table inet NAME` with one input chain holding `rules` (its policy included).
    pub(crate) fn input(name: &'static str, rules: &str) -> Self {
        let table = format!("table inet {name} {{ chain input {{ type filter hook input priority -10; {rules} }}; }}");
        nft(&["-f", "-"], Some(&table));
        NftTable(name)
    }

    /// Creates `table inet NAME` with one output chain holding `rules` (its policy included).
    pub(crate) fn output(name: &'static str, rules: &str) -> Self {
        let table = format!("table inet {name} {{ chain output {{ type filter hook output priority -10; {rules} }}; }}");
        nft(&["-f", "-"], Some(&table));
        NftTable(name)
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        // Also while a failed assertion unwinds: the namespace must not stay cut or lossy.
        let deleted = Command::new("ip").args(["netns", "exec", &netns(), "nft", "delete", "table", "inet", self.0]).status();
        if !deleted.is_ok_and(|s| s.success()) && !std::thread::panicking() {
            panic!("nft delete table inet {} failed", self.0);
        }
    }
}

/// Everything arriving in the namespace is dropped while this lives.
fn cut_link() -> NftTable {
    NftTable::input("blende_cut", "policy drop;")
}

fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &netns(), "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft (Debian package nftables) in the namespace");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("rules");
    }
    drop(child.stdin.take());
    assert!(child.wait().expect("nft").success(), "nft {args:?} failed");
}

pub(crate) fn own_id(p: &Participant) -> String {
    let v = p.wait_for("our id", Duration::from_secs(20), |v| v["event"] == "joined");
    v["participant_id"].as_str().expect("id").to_owned()
}

/// `p`'s first decoded `kind` from `feed`.
pub(crate) fn first_frame(p: &Participant, feed: &str, kind: &str, timeout: Duration) -> Value {
    p.wait_for(&format!("{kind} from {feed}"), timeout, |v| v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind)
}

fn has_first_frame(p: &Participant, mark: usize, feed: &str, kind: &str) -> bool {
    p.events().iter().skip(mark).any(|v| v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind)
}

/// Where each client's events stood just before the link (or server) came back.
struct Marks {
    at: Instant,
    anna: usize,
    bernd: usize,
}

impl Marks {
    fn now(anna: &Participant, bernd: &Participant) -> Self {
        Marks { at: Instant::now(), anna: anna.mark(), bernd: bernd.mark() }
    }
}

/// `p`'s id once it is back in the call (its `joined` comes just before `reconnected`; a
/// restarted room server numbers afresh, so the id may be the old one).
fn rejoined_id(p: &Participant, mark: usize, timeout: Duration) -> String {
    p.wait_for_since(mark, "reconnected", timeout, |v| v["event"] == "reconnected");
    let events: Vec<Value> = p.events().into_iter().skip(mark).collect();
    let at = events.iter().rposition(|v| v["event"] == "reconnected").unwrap_or(0);
    events[..at]
        .iter()
        .rev()
        .find_map(|v| (v["event"] == "joined").then(|| v["participant_id"].as_str()).flatten())
        .expect("joined")
        .to_owned()
}

/// Both clients back in the call after `back`: their ids, once Bernd hears Anna and Anna sees
/// Bernd again, each within `limit` of `back` (printed under `what`).
fn both_back(what: &str, anna: &Participant, bernd: &Participant, back: &Marks, limit: Duration) -> (String, String) {
    let wait = limit + Duration::from_secs(15);
    let (a2, b2) = (rejoined_id(anna, back.anna, wait), rejoined_id(bernd, back.bernd, wait));
    let first = |p: &Participant, mark: usize, feed: &str, kind: &str| {
        let v = p.wait_for_since(mark, &format!("{kind} from {feed}"), wait, |v| {
            v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind
        });
        p.instant_of(&v).saturating_duration_since(back.at)
    };
    let anna_heard = first(bernd, back.bernd, &a2, "audio");
    let bernd_seen = first(anna, back.anna, &b2, "video");
    eprintln!("{what}: Bernd hears Anna {anna_heard:?} and Anna sees Bernd {bernd_seen:?} after it came back");
    assert!(anna_heard <= limit, "{what}: Bernd heard Anna again only {anna_heard:?} after (limit {limit:?})");
    assert!(bernd_seen <= limit, "{what}: Anna saw Bernd again only {bernd_seen:?} after (limit {limit:?})");
    (a2, b2)
}

/// Two clients in a call, and the server that holds it (kept alive with them).
pub(crate) struct Pair {
    pub anna: Participant,
    pub bernd: Participant,
    pub _room: Option<(RoomSetup, RoomServer)>,
}

pub(crate) const SMALL: [&str; 4] = ["--width", "160", "--height", "120"];

/// Anna and Bernd in Janus room [`ROOM`].
fn janus_pair() -> Pair {
    Pair { anna: Participant::spawn("Anna", ROOM, &SMALL), bernd: Participant::spawn("Bernd", ROOM, &SMALL), _room: None }
}

/// A meeting on Blende's room server (lobby off): Bernd is its moderator, Anna a participant.
pub(crate) fn room_pair() -> Pair {
    room_pair_with(&SMALL)
}

/// [`room_pair`] with the clients' own media flags.
pub(crate) fn room_pair_with(media: &[&str]) -> Pair {
    let setup = RoomSetup::new("reconnect");
    let server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Sprechstunde", false);
    let url = server.url();
    let bernd_args = [media, &["--room", &m.id, "--moderator-token-file", setup.token_path()]].concat();
    let bernd = Participant::spawn_with_server("Bernd", &url, &bernd_args);
    bernd.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let anna_args = [media, &["--room", &m.id, "--password-file", m.password_path()]].concat();
    let anna = Participant::spawn_with_server("Anna", &url, &anna_args);
    Pair { anna, bernd, _room: Some((setup, server)) }
}

/// The call after it came back: both clients with their new ids.
struct Back {
    pair: Pair,
    anna_id: String,
    bernd_id: String,
    /// The test keeps the namespace to itself until it has looked at the call after the return
    /// (and its server is gone).
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// Cuts the link for `cut`, then measures how long after it returned each client receives the
/// other again; asserts within `limit`. `None` when the services are missing (which fails
/// under `scripts/test.sh`).
fn cut_and_come_back(test: &str, pair: fn() -> Pair, cut: Duration, limit: Duration) -> Option<Back> {
    let _serial = serial();
    if !janus_or_skip(test) {
        return None;
    }
    let Pair { mut anna, bernd, _room } = pair();
    let (a1, b1) = (own_id(&anna), own_id(&bernd));
    first_frame(&bernd, &a1, "video", Duration::from_secs(20));
    first_frame(&anna, &b1, "video", Duration::from_secs(20));

    let started = Instant::now();
    let guard = cut_link();
    for p in [&anna, &bernd] {
        let v = p.wait_for("reconnecting", cut.min(Duration::from_secs(12)), |v| v["event"] == "reconnecting");
        eprintln!("[{}] lost after {:?}: {}", p.name, started.elapsed(), v["reason"]);
    }
    // The camera goes off while nothing can be sent: it must stay off in the new session.
    anna.send("camera off");
    anna.wait_for("the camera off", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off");
    std::thread::sleep(cut.saturating_sub(started.elapsed()));
    // Marked before the rule goes: a client can be back within the milliseconds nft takes.
    let back = Marks::now(&anna, &bernd);
    drop(guard);
    let (a2, b2) = both_back(&format!("{test}, cut {cut:?}"), &anna, &bernd, &back, limit);

    // Anna's camera stayed off: a second of her new feed brings no picture, and her camera was
    // never opened again.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_first_frame(&bernd, back.bernd, &a2, "video"), "Bernd received video from Anna's camera, switched off during the cut");
    let camera_after: Vec<Value> = anna
        .events()
        .into_iter()
        .skip_while(|v| !(v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off"))
        .filter(|v| v["event"] == "device" && v["kind"] == "camera" && v["to"] != "off")
        .collect();
    assert!(camera_after.is_empty(), "the camera came back: {camera_after:?}");
    for p in [&anna, &bernd] {
        let errors: Vec<Value> = p.events().into_iter().filter(|v| v["event"] == "error" && v["fatal"] == true).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
    Some(Back { pair: Pair { anna, bernd, _room }, anna_id: a2, bernd_id: b2, _serial })
}

#[test]
fn a_plain_janus_call_comes_back_after_a_10_s_cut() {
    let test = "a_plain_janus_call_comes_back_after_a_10_s_cut";
    cut_and_come_back(test, janus_pair, Duration::from_secs(10), Duration::from_secs(3));
}

#[test]
fn a_plain_janus_call_comes_back_after_a_60_s_cut_on_new_sessions() {
    let test = "a_plain_janus_call_comes_back_after_a_60_s_cut_on_new_sessions";
    cut_and_come_back(test, janus_pair, Duration::from_secs(60), Duration::from_secs(5));
}

#[test]
fn a_mesh_call_on_blendes_room_server_comes_back_after_a_10_s_cut() {
    let test = "a_mesh_call_on_blendes_room_server_comes_back_after_a_10_s_cut";
    cut_and_come_back(test, room_pair, Duration::from_secs(10), Duration::from_secs(3));
}

/// Longer than the server's idle timeout (60 s): it has dropped both connections by the time
/// the link returns, and kept their seats for the resume.
#[test]
fn a_mesh_call_on_blendes_room_server_comes_back_after_a_60_s_cut_with_the_moderator_still_moderator() {
    let test = "a_mesh_call_on_blendes_room_server_comes_back_after_a_60_s_cut_with_the_moderator_still_moderator";
    let Some(back) = cut_and_come_back(test, room_pair, Duration::from_secs(65), Duration::from_secs(5)) else { return };
    let Back { pair: Pair { anna, mut bernd, .. }, anna_id, bernd_id, _serial } = back;
    bernd.wait_for("still moderator", Duration::from_secs(5), |v| {
        v["event"] == "role" && v["participant"] == bernd_id.as_str() && v["role"] == "moderator"
    });
    // And the server takes it as such: the presenter role goes to Anna's new seat.
    bernd.send(&format!("presenter on {anna_id}"));
    anna.wait_for("Anna presenter", Duration::from_secs(10), |v| {
        v["event"] == "role" && v["participant"] == anna_id.as_str() && v["role"] == "presenter"
    });
}

/// Only UDP is cut, for `cut` (longer than ICE's 30 s to `failed`): the WebSocket stays up, so
/// nobody reconnects, and every connection's ICE fails. The clients must bring them back on
/// the same session, under the same ids, within `limit` of the link's return (on Janus our
/// publisher restarts ICE and subscriptions are made anew; on the mesh each side offers
/// again); a camera switched off during the cut stays off.
fn udp_cut_and_come_back(test: &str, pair: fn() -> Pair, cut: Duration, limit: Duration) {
    let _serial = serial();
    if !janus_or_skip(test) {
        return;
    }
    let Pair { mut anna, bernd, _room } = pair();
    let (a1, b1) = (own_id(&anna), own_id(&bernd));
    first_frame(&bernd, &a1, "video", Duration::from_secs(20));
    first_frame(&anna, &b1, "video", Duration::from_secs(20));
    let (anna_mark, bernd_mark) = (anna.mark(), bernd.mark());

    let started = Instant::now();
    let guard = NftTable::input("blende_udp_cut", "policy accept; meta l4proto udp drop;");
    for p in [&anna, &bernd] {
        p.wait_for("ICE failed", cut, |v| v["event"] == "connection" && v["state"] == "failed");
        eprintln!("[{}] a connection failed {:?} into the cut", p.name, started.elapsed());
    }
    anna.send("camera off");
    anna.wait_for("the camera off", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off");
    std::thread::sleep(cut.saturating_sub(started.elapsed()));
    let back = Marks::now(&anna, &bernd);
    drop(guard);

    let first = |p: &Participant, mark: usize, feed: &str, kind: &str| {
        let v = p.wait_for_since(mark, &format!("{kind} from {feed}"), limit + Duration::from_secs(15), |v| {
            v["event"] == "first_frame" && v["feed"] == feed && v["kind"] == kind
        });
        p.instant_of(&v).saturating_duration_since(back.at)
    };
    let anna_heard = first(&bernd, back.bernd, &a1, "audio");
    let bernd_seen = first(&anna, back.anna, &b1, "video");
    eprintln!("{test}, UDP cut {cut:?}: Bernd hears Anna {anna_heard:?} and Anna sees Bernd {bernd_seen:?} after it came back");
    assert!(anna_heard <= limit, "Bernd heard Anna again only {anna_heard:?} after (limit {limit:?})");
    assert!(bernd_seen <= limit, "Anna saw Bernd again only {bernd_seen:?} after (limit {limit:?})");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_first_frame(&bernd, back.bernd, &a1, "video"), "Bernd received video from Anna's camera, switched off during the cut");
    for (p, mark) in [(&anna, anna_mark), (&bernd, bernd_mark)] {
        let events: Vec<Value> = p.events().into_iter().skip(mark).collect();
        let gone: Vec<&Value> = events.iter().filter(|v| matches!(v["event"].as_str(), Some("reconnecting" | "joined" | "left"))).collect();
        assert!(gone.is_empty(), "{}: signalling was never cut, yet {gone:?}", p.name);
        let errors: Vec<&Value> = events.iter().filter(|v| v["event"] == "error" && v["fatal"] == true).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
}

#[test]
fn a_plain_janus_call_restarts_ice_after_a_40_s_udp_cut() {
    let test = "a_plain_janus_call_restarts_ice_after_a_40_s_udp_cut";
    udp_cut_and_come_back(test, janus_pair, Duration::from_secs(40), Duration::from_secs(5));
}

#[test]
fn a_mesh_call_offers_its_connections_again_after_a_40_s_udp_cut() {
    let test = "a_mesh_call_offers_its_connections_again_after_a_40_s_udp_cut";
    udp_cut_and_come_back(test, room_pair, Duration::from_secs(40), Duration::from_secs(5));
}

/// `tests/interop/janus-netns.sh ARG` (the script the test services start Janus with).
fn janus_script(arg: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/janus-netns.sh");
    let ok = Command::new("bash").arg(script).arg(arg).env("BLENDE_NETNS", netns()).status();
    assert!(ok.is_ok_and(|s| s.success()), "janus-netns.sh {arg} failed");
}

/// Janus is stopped while this lives; it is started again however the test ends.
struct JanusDown;

impl Drop for JanusDown {
    fn drop(&mut self) {
        janus_script("start");
    }
}

/// Janus itself goes away (a restart for an update, a crash) and comes back with its rooms
/// from the configuration: both clients rejoin by themselves, in new sessions.
#[test]
fn a_plain_janus_call_comes_back_after_janus_restarted() {
    let _serial = serial();
    if !janus_or_skip("a_plain_janus_call_comes_back_after_janus_restarted") {
        return;
    }
    let Pair { mut anna, bernd, .. } = janus_pair();
    let (a1, b1) = (own_id(&anna), own_id(&bernd));
    first_frame(&bernd, &a1, "video", Duration::from_secs(20));
    first_frame(&anna, &b1, "video", Duration::from_secs(20));

    janus_script("stop");
    let down = JanusDown;
    for p in [&anna, &bernd] {
        let v = p.wait_for("reconnecting", Duration::from_secs(10), |v| v["event"] == "reconnecting");
        eprintln!("[{}] lost: {}", p.name, v["reason"]);
    }
    anna.send("camera off");
    anna.wait_for("the camera off", Duration::from_secs(5), |v| v["event"] == "device" && v["kind"] == "camera" && v["to"] == "off");
    // Down long enough for several refused attempts.
    std::thread::sleep(Duration::from_secs(5));
    let back = Marks::now(&anna, &bernd);
    drop(down);
    let (a2, _) = both_back("janus restart", &anna, &bernd, &back, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !has_first_frame(&bernd, back.bernd, &a2, "video"),
        "Bernd received video from Anna's camera, switched off while Janus was down"
    );
    for p in [&anna, &bernd] {
        let errors: Vec<Value> = p.events().into_iter().filter(|v| v["event"] == "error" && v["fatal"] == true).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
}

/// Blende's room server crashes in a running meeting (SIGKILL) and starts again on its
/// database: the members resume as they were (the moderator still moderates, the presenter
/// keeps the role, the one in the lobby waits there), and media flows again.
#[test]
fn a_mesh_meeting_survives_a_crash_of_the_room_server() {
    let _serial = serial();
    if !janus_or_skip("a_mesh_meeting_survives_a_crash_of_the_room_server") {
        return;
    }
    let setup = RoomSetup::new("restart");
    let mut server = RoomServer::start(&setup.db);
    let m = setup.create_meeting(&server, "Bauausschuss", true);
    let url = server.url();
    let mut bernd = Participant::spawn_with_server(
        "Bernd",
        &url,
        &[&SMALL[..], &["--room", &m.id, "--moderator-token-file", setup.token_path()]].concat(),
    );
    let b1 = own_id(&bernd);
    let guest = |name: &str| {
        Participant::spawn_with_server(name, &url, &[&SMALL[..], &["--room", &m.id, "--password-file", m.password_path()]].concat())
    };
    let anna = guest("Anna");
    anna.wait_for("Anna waits", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "waiting");
    let waiting = bernd.wait_for("Anna in the lobby list", Duration::from_secs(15), |v| {
        v["event"] == "waiting" && v["participants"].as_array().is_some_and(|l| l.len() == 1)
    });
    let a0 = waiting["participants"][0]["id"].as_str().expect("id").to_owned();
    bernd.send(&format!("admit {a0}"));
    let a1 = own_id(&anna);
    bernd.send(&format!("presenter on {a1}"));
    anna.wait_for("presenter", Duration::from_secs(10), |v| {
        v["event"] == "role" && v["participant"] == a1.as_str() && v["role"] == "presenter"
    });
    let carla = guest("Carla");
    carla.wait_for("Carla waits", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "waiting");
    first_frame(&bernd, &a1, "video", Duration::from_secs(20));
    first_frame(&anna, &b1, "video", Duration::from_secs(20));

    let (before, carla_mark) = (Marks::now(&anna, &bernd), carla.mark());
    server.restart(&setup.db);
    eprintln!("room server restarted in {:?}", before.at.elapsed());
    let back = Marks { at: Instant::now(), ..before };
    let (a2, _) = both_back("room server crash", &anna, &bernd, &back, Duration::from_secs(5));
    // Roles and the lobby as before.
    bernd.wait_for_since(back.bernd, "Anna still presenter", Duration::from_secs(5), |v| {
        v["event"] == "role" && v["participant"] == a2.as_str() && v["role"] == "presenter"
    });
    carla.wait_for_since(carla_mark, "Carla back", Duration::from_secs(10), |v| v["event"] == "reconnected");
    carla.wait_for_since(carla_mark, "Carla in the lobby again", Duration::from_secs(5), |v| {
        v["event"] == "lobby" && v["state"] == "waiting"
    });
    let waiting = bernd.wait_for_since(back.bernd, "Carla in the lobby list again", Duration::from_secs(10), |v| {
        v["event"] == "waiting" && v["participants"].as_array().is_some_and(|l| l.len() == 1 && l[0]["display"] == "Carla")
    });
    assert!(!carla.events().iter().any(|v| v["event"] == "joined"), "the restart let nobody in");
    // The moderator still moderates: Carla is admitted now.
    bernd.send(&format!("admit {}", waiting["participants"][0]["id"].as_str().expect("id")));
    carla.wait_for("Carla in", Duration::from_secs(10), |v| v["event"] == "joined");
    for p in [&anna, &bernd, &carla] {
        let errors: Vec<Value> = p.events().into_iter().filter(|v| v["event"] == "error" && v["fatal"] == true).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.name);
    }
}
