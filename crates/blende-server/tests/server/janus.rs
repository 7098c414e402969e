//! Janus-backed rooms against a private Janus (Debian's `janus`, HTTP transport and VideoRoom
//! only, on a free loopback port). Skips when `janus` is not installed, unless
//! `BLENDE_REQUIRE_JANUS=1`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Server, error_code};

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

/// Tries to join `room` as a publisher; returns the VideoRoom event data.
fn try_join(port: u16, room: u64, pin: &str, token: &str, feed: u64) -> Value {
    let s = http(port, "POST", "/janus", Some(json!({"janus": "create", "transaction": "c"})))["data"]["id"].as_u64().expect("session");
    let h = http(
        port,
        "POST",
        &format!("/janus/{s}"),
        Some(json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"})),
    )["data"]["id"]
        .as_u64()
        .expect("handle");
    let join = json!({"janus": "message", "transaction": "j", "body": {"request": "join", "ptype": "publisher", "room": room, "pin": pin, "token": token, "id": feed}});
    let ack = http(port, "POST", &format!("/janus/{s}/{h}"), Some(join));
    let data = if ack["janus"] == "ack" {
        http(port, "GET", &format!("/janus/{s}?maxev=1"), None)["plugindata"]["data"].clone()
    } else {
        ack["plugindata"]["data"].clone()
    };
    http(port, "POST", &format!("/janus/{s}"), Some(json!({"janus": "destroy", "transaction": "d"})));
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_moves_to_janus_at_the_threshold() {
    let mut server = Server::start("janus", None, &[]);
    let Some(janus) = start_janus(&server.dir) else { return };
    let api = format!("http://127.0.0.1:{}/janus", janus.port);
    let client_url = format!("janus+ws://127.0.0.1:{}/", janus.port);
    let key_file = server.dir.join("janus-admin-key");
    std::fs::write(&key_file, format!("{ADMIN_KEY}\n")).expect("key file");
    let key_file = key_file.display().to_string();
    server.admin(&["set", "janus", "--api-url", &api, "--client-url", &client_url, "--admin-key-file", &key_file, "--threshold", "2"]);
    server.restart();
    let token = server.add_moderator();

    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (id, pw) = mo.create_meeting(false).await;
    mo.enter(&id).await;
    assert!(mo.drain().await.iter().all(|m| m["type"] != "janus"), "one member: still peer to peer");

    let mut a = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 31)).await;
    a.hello().await;
    assert_eq!(a.join(&id, &pw).await["state"], "admitted");
    let (ja, _) = a.until("janus").await;
    let (jm, _) = mo.until("janus").await;
    assert_eq!(ja["url"], client_url.as_str());
    assert_eq!(ja["room"], jm["room"]);
    assert_eq!(ja["feed"].as_u64(), a.pid);
    assert_ne!(ja["token"], jm["token"], "a token per participant");
    let room = ja["room"].as_u64().expect("room");
    let (pin, a_token) = (ja["pin"].as_str().expect("pin").to_owned(), ja["token"].as_str().expect("token").to_owned());

    // Guessed token, wrong PIN: refused by Janus. The handed-out token and PIN: joined.
    let guessed = try_join(janus.port, room, &pin, "00112233445566778899aabbccddeeff", 999);
    assert_eq!(guessed["error_code"], 433, "{guessed}");
    let wrong_pin = try_join(janus.port, room, "nope", &a_token, 999);
    assert!(wrong_pin["error_code"].as_u64().is_some(), "{wrong_pin}");
    let ok = try_join(janus.port, room, &pin, &a_token, a.pid.expect("pid"));
    assert_eq!(ok["videoroom"], "joined", "{ok}");

    // A third member gets their own token; removing them revokes it.
    let mut b = server.client_from(std::net::Ipv4Addr::new(127, 0, 0, 32)).await;
    b.hello().await;
    assert_eq!(b.join(&id, &pw).await["state"], "admitted");
    let (jb, _) = b.until("janus").await;
    let b_token = jb["token"].as_str().expect("token").to_owned();
    mo.drain().await;
    mo.send(json!({"type": "remove", "participant": b.pid})).await;
    mo.until("done").await;
    let revoked = try_join(janus.port, room, &pin, &b_token, 777);
    assert_eq!(revoked["error_code"], 433, "removed participant's token is revoked: {revoked}");

    // A non-presenter's share is refused; the server tries Janus moderation (nothing
    // published here) and stays responsive.
    a.drain().await;
    a.send(json!({"type": "share_start"})).await;
    assert_eq!(error_code(&a.recv().await), Some("not_allowed"));
    assert!(a.drain().await.is_empty());

    // Ending the meeting destroys the room.
    mo.send(json!({"type": "end"})).await;
    mo.until("done").await;
    let gone = try_join(janus.port, room, &pin, &a_token, 1234);
    assert!(gone["error_code"].as_u64().is_some(), "room destroyed: {gone}");
    let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains(&pin) && !log.contains(&a_token), "no Janus secrets in the log");
}
