//! Janus-backed rooms against a private Janus (Debian's `janus`, HTTP transport and VideoRoom
//! only, on a free loopback port). Skips when `janus` is not installed, unless
//! `BLENDE_REQUIRE_JANUS=1`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Server;

struct Janus {
    child: Child,
    port: u16,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ADMIN_KEY: &str = "blende-test-admin-key";

fn start_janus(dir: &Path) -> Option<Janus> {
    if Command::new("janus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        assert!(std::env::var("BLENDE_REQUIRE_JANUS").as_deref() != Ok("1"), "BLENDE_REQUIRE_JANUS=1 but `janus` is not installed");
        println!("SKIPPED Janus test: `janus` is not installed (apt-get install janus)");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let lib = "/usr/lib/x86_64-linux-gnu/janus";
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            "general: {{\n plugins_folder = \"{lib}/plugins\"\n transports_folder = \"{lib}/transports\"\n events_folder = \"{lib}/events\"\n loggers_folder = \"{lib}/loggers\"\n debug_level = 3\n interface = \"127.0.0.1\"\n session_timeout = 60\n}}\nmedia: {{\n ipv6 = false\n}}\nnat: {{\n ignore_mdns = true\n}}\nplugins: {{\n disable = \"libjanus_voicemail.so,libjanus_recordplay.so,libjanus_streaming.so,libjanus_sip.so,libjanus_nosip.so,libjanus_duktape.so,libjanus_lua.so,libjanus_audiobridge.so,libjanus_videocall.so,libjanus_textroom.so,libjanus_echotest.so\"\n}}\ntransports: {{\n disable = \"libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_websockets.so\"\n}}\nloggers: {{\n disable = \"libjanus_jsonlog.so\"\n}}\nevents: {{\n broadcast = false\n}}\n"
        ),
    )
    .expect("janus.jcfg");
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!("general: {{\n json = \"plain\"\n base_path = \"/janus\"\n http = true\n port = {port}\n ip = \"127.0.0.1\"\n https = false\n}}\nadmin: {{\n admin_http = false\n admin_https = false\n}}\n"),
    )
    .expect("http cfg");
    // Room creation locked with an admin key: only blende-server can create rooms.
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), format!("general: {{\n admin_key = \"{ADMIN_KEY}\"\n}}\n"))
        .expect("videoroom cfg");
    let child = Command::new("janus")
        .arg("-F")
        .arg(dir)
        .args(["-o", "-N", "-L"])
        .arg(dir.join("janus.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn janus");
    let janus = Janus { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Janus did not start; see {}", dir.join("janus.log").display());
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(janus)
}

/// A raw Janus HTTP client, as an attacker or a client would use it.
fn http(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect janus");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    // HTTP/1.0: no chunked encoding to undo.
    write!(tcp, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .expect("write");
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).expect("read");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("janus json ({e}): {raw}"))
}

/// A Janus session with the VideoRoom plugin attached, as a client (or an attacker) holds it.
struct Session {
    port: u16,
    session: u64,
    handle: u64,
}

impl Session {
    fn open(port: u16) -> Session {
        let session =
            http(port, "POST", "/janus", Some(json!({"janus": "create", "transaction": "c"})))["data"]["id"].as_u64().expect("session");
        let handle = http(
            port,
            "POST",
            &format!("/janus/{session}"),
            Some(json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"})),
        )["data"]["id"]
            .as_u64()
            .expect("handle");
        Session { port, session, handle }
    }

    /// A VideoRoom request; for asynchronous ones the event's data, else the reply's.
    fn message(&self, body: Value) -> Value {
        let ack = http(
            self.port,
            "POST",
            &format!("/janus/{}/{}", self.session, self.handle),
            Some(json!({"janus": "message", "transaction": "m", "body": body})),
        );
        if ack["janus"] == "ack" {
            self.event(Duration::from_secs(5)).unwrap_or_else(|| panic!("no answer to {ack}"))
        } else {
            ack["plugindata"]["data"].clone()
        }
    }

    fn join_publisher(&self, room: u64, pin: &str, token: &str, feed: u64, display: &str) -> Value {
        self.message(
            json!({"request": "join", "ptype": "publisher", "room": room, "pin": pin, "token": token, "id": feed, "display": display}),
        )
    }

    /// The next plugin event on the session's long poll, if one comes within `wait`.
    fn event(&self, wait: Duration) -> Option<Value> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).expect("connect janus");
        tcp.set_read_timeout(Some(wait)).expect("timeout");
        write!(tcp, "GET /janus/{}?maxev=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", self.session).expect("write");
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).ok()?;
        let body = raw.split_once("\r\n\r\n")?.1;
        let v: Value = serde_json::from_str(body).ok()?;
        (v["janus"] == "event").then(|| v["plugindata"]["data"].clone())
    }

    /// Waits up to `within` for the VideoRoom to say this publisher was kicked.
    fn kicked_within(&self, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < within {
            match self.event(within.saturating_sub(start.elapsed())) {
                Some(e) if e["leaving"] == "ok" && e["reason"] == "kicked" => return Some(start.elapsed()),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        http(self.port, "POST", &format!("/janus/{}", self.session), Some(json!({"janus": "destroy", "transaction": "d"})));
    }
}

/// Tries to join `room` as a publisher; returns the VideoRoom event data.
fn try_join(port: u16, room: u64, pin: &str, token: &str, feed: u64, display: &str) -> Value {
    Session::open(port).join_publisher(room, pin, token, feed, display)
}

/// The feed ids Janus lists in a room (no secret needed: only the room id).
fn listed(port: u16, room: u64) -> Vec<u64> {
    let s = Session::open(port);
    let data = s.message(json!({"request": "listparticipants", "room": room}));
    data["participants"].as_array().map(|l| l.iter().filter_map(|p| p["id"].as_u64()).collect()).unwrap_or_default()
}

/// A Janus-backed server (threshold 2) with a moderator in one meeting.
async fn janus_server(name: &str, janus_api: Option<String>) -> Option<(Server, Option<Janus>, crate::support::Client, String, String)> {
    let mut server = Server::start(name, None, &[]);
    let (janus, api) = match janus_api {
        Some(api) => (None, api),
        None => {
            let janus = start_janus(&server.dir)?;
            let api = format!("http://127.0.0.1:{}/janus", janus.port);
            (Some(janus), api)
        }
    };
    let client_url = "janus+ws://127.0.0.1:8188/";
    let key_file = server.dir.join("janus-admin-key");
    std::fs::write(&key_file, format!("{ADMIN_KEY}\n")).expect("key file");
    let key_file = key_file.display().to_string();
    server.admin(&["set", "janus", "--api-url", &api, "--client-url", client_url, "--admin-key-file", &key_file, "--threshold", "2"]);
    server.restart();
    let (mo, id, pw) = server.hosted_meeting(true).await;
    Some((server, janus, mo, id, pw))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_moves_to_janus_at_the_threshold() {
    let Some((server, Some(janus), mut mo, id, pw)) = janus_server("janus", None).await else { return };
    assert!(mo.drain().await.iter().all(|m| m["type"] != "janus"), "one member: still peer to peer");

    let mut a = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 31)).await;
    a.hello().await;
    assert_eq!(a.join(&id, &pw).await["state"], "admitted");
    let (ja, _) = a.until("janus").await;
    let (jm, _) = mo.until("janus").await;
    assert_eq!(ja["url"], "janus+ws://127.0.0.1:8188/");
    assert_eq!(ja["room"], jm["room"]);
    assert_ne!(ja["token"], jm["token"], "a token per participant");
    let (a_feed, a_screen) = (ja["feed"].as_u64().expect("feed"), ja["screen_feed"].as_u64().expect("screen feed"));
    assert!(a_feed != a_screen && Some(a_feed) != a.pid && ja["feed"] != jm["feed"], "random feed ids: {ja} {jm}");
    let room = ja["room"].as_u64().expect("room");
    let (pin, a_token) = (ja["pin"].as_str().expect("pin").to_owned(), ja["token"].as_str().expect("token").to_owned());

    // Guessed token, wrong PIN: refused by Janus. The handed-out token and PIN: joined.
    let guessed = try_join(janus.port, room, &pin, "00112233445566778899aabbccddeeff", a_feed, "Bea");
    assert_eq!(guessed["error_code"], 433, "{guessed}");
    let wrong_pin = try_join(janus.port, room, "nope", &a_token, a_feed, "Bea");
    assert!(wrong_pin["error_code"].as_u64().is_some(), "{wrong_pin}");
    let ok = try_join(janus.port, room, &pin, &a_token, a_feed, "Bea");
    assert_eq!(ok["videoroom"], "joined", "{ok}");
    // Subscriptions need a member publisher's private_id.
    let rooms = Session::open(janus.port).message(json!({"request": "list", "admin_key": ADMIN_KEY}));
    let ours = rooms["list"].as_array().and_then(|l| l.iter().find(|r| r["room"] == room).cloned()).expect("room listed");
    assert_eq!(ours["require_pvtid"], true, "{ours}");

    // A third member gets their own token; removing them revokes it.
    let mut b = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 32)).await;
    b.hello().await;
    assert_eq!(b.join(&id, &pw).await["state"], "admitted");
    let (jb, _) = b.until("janus").await;
    let b_token = jb["token"].as_str().expect("token").to_owned();
    mo.drain().await;
    mo.send(json!({"type": "remove", "participant": b.pid})).await;
    mo.until("done").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked = try_join(janus.port, room, &pin, &b_token, jb["feed"].as_u64().expect("feed"), "Bea");
    assert_eq!(revoked["error_code"], 433, "removed participant's token is revoked: {revoked}");

    // Ending the meeting destroys the room.
    mo.send(json!({"type": "end"})).await;
    mo.until("done").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gone = try_join(janus.port, room, &pin, &a_token, a_feed, "Bea");
    assert!(gone["error_code"].as_u64().is_some(), "room destroyed: {gone}");
    let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains(&pin) && !log.contains(&a_token), "no Janus secrets in the log");
}

/// A hostile member with a valid token and PIN tries to publish as someone else, to share
/// without the right, and to stay after being removed: each such publisher is kicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_member_loses_janus_media() {
    let Some((server, Some(janus), mut mo, id, pw)) = janus_server("janus-hostile", None).await else { return };
    let mut a = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 41)).await;
    a.hello().await;
    assert_eq!(a.join(&id, &pw).await["state"], "admitted");
    let (ja, _) = a.until("janus").await;
    let (jm, _) = mo.until("janus").await;
    let room = ja["room"].as_u64().expect("room");
    let (pin, token) = (ja["pin"].as_str().expect("pin").to_owned(), ja["token"].as_str().expect("token").to_owned());
    let (feed, screen) = (ja["feed"].as_u64().expect("feed"), ja["screen_feed"].as_u64().expect("screen"));
    let port = janus.port;
    let within = Duration::from_secs(2);

    // The moderator publishes as a Blende client does: own feed, own name. Not kicked.
    let mo_session = Session::open(port);
    let joined = mo_session.join_publisher(room, &pin, jm["token"].as_str().expect("token"), jm["feed"].as_u64().expect("feed"), "Mo");
    assert_eq!(joined["videoroom"], "joined", "{joined}");

    // Another id with the victim's name; own id with the victim's name; the share feed without
    // the presenter role: each joins, then is kicked.
    for (what, id, display) in
        [("an id nobody was given", 4242, "Mo"), ("someone else's name", feed, "Mo"), ("a share without the role", screen, "Bea (screen)")]
    {
        let s = Session::open(port);
        let j = s.join_publisher(room, &pin, &token, id, display);
        assert_eq!(j["videoroom"], "joined", "{what}: {j}");
        let t = s.kicked_within(within);
        println!("janus: {what}: kicked after {t:?}");
        assert!(t.is_some(), "{what}: still in the room after {within:?}");
    }
    // Own feed under own name stays; the presenter role makes the share feed legitimate.
    let own = Session::open(port);
    assert_eq!(own.join_publisher(room, &pin, &token, feed, "Bea")["videoroom"], "joined");
    mo.send(json!({"type": "grant_presenter", "participant": a.pid})).await;
    mo.until("done").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let share = Session::open(port);
    assert_eq!(share.join_publisher(room, &pin, &token, screen, "Bea (screen)")["videoroom"], "joined");
    // Four audit rounds later (no long poll here: Janus hands an event to an abandoned poll).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut present = listed(port, room);
    present.sort_unstable();
    let mut expected = vec![feed, screen, jm["feed"].as_u64().expect("feed")];
    expected.sort_unstable();
    assert_eq!(present, expected, "the members' own feeds stay, nothing else");

    // Revoking the role ends the share feed; removal ends the rest.
    mo.send(json!({"type": "revoke_presenter", "participant": a.pid})).await;
    mo.until("done").await;
    let t = share.kicked_within(within);
    println!("janus: share feed after revoke_presenter: kicked after {t:?}");
    assert!(t.is_some(), "the share feed outlived the presenter role");
    mo.send(json!({"type": "remove", "participant": a.pid})).await;
    mo.until("done").await;
    let t = own.kicked_within(within);
    println!("janus: removed member's publisher: kicked after {t:?}");
    assert!(t.is_some(), "the removed member still publishes");
    assert_eq!(listed(port, room), vec![jm["feed"].as_u64().expect("feed")], "only the moderator's feed is left");
    let again = try_join(port, room, &pin, &token, feed, "Bea");
    assert_eq!(again["error_code"], 433, "the removed member's token no longer opens the room: {again}");
}

/// Janus stops answering (connections accepted, nothing said): a non-presenter's 200
/// `share_start` and the members coming and going leave the hub answering everyone at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_outage_leaves_the_hub_answering() {
    let mute = TcpListener::bind("127.0.0.1:0").expect("bind");
    let api = format!("http://{}/janus", mute.local_addr().expect("addr"));
    let held = std::thread::Builder::new()
        .name("mute-janus".into())
        .spawn(move || mute.incoming().take(64).filter_map(Result::ok).collect::<Vec<_>>())
        .expect("thread");
    let Some((server, None, mut mo, id, pw)) = janus_server("janus-outage", Some(api)).await else { return };
    let mut a = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 51)).await;
    a.hello().await;
    assert_eq!(a.join(&id, &pw).await["state"], "admitted");
    for _ in 0..200 {
        a.send(json!({"type": "share_start"})).await;
    }
    for c in [&mut mo, &mut a] {
        let t = Instant::now();
        let _ = c.drain().await;
        println!("janus outage: pong after {} ms", t.elapsed().as_millis());
        assert!(t.elapsed() < Duration::from_secs(1), "hub stalled: {:?}", t.elapsed());
    }
    let mut b = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 52)).await;
    b.hello().await;
    let t = Instant::now();
    assert_eq!(b.join(&id, &pw).await["state"], "admitted");
    assert!(t.elapsed() < Duration::from_secs(2), "joining took {:?}", t.elapsed());
    drop(server);
    drop(held);
}
