//! (e) WHIP: Blende publishes through simple-whip-server (Meetecho, in front of Janus VideoRoom);
//! a second Blende in the room receives it. Needs tests/interop/setup-whip.sh (Node.js).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Participant, janus_or_skip, netns, serial};

fn whip_server_js() -> PathBuf {
    let dir = std::env::var("BLENDE_WHIP_DIR").unwrap_or_else(|_| "/var/tmp/blende-whip".to_owned());
    PathBuf::from(dir).join("usr/share/simple-whip-server/src/server.js")
}

struct WhipServer(Child);

impl Drop for WhipServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP request inside the namespace (the server listens there only), via `ip netns exec`
/// running a tiny client: `bash`'s /dev/tcp.
fn http_in_ns(request: &str) -> String {
    let script = "exec 3<>/dev/tcp/127.0.0.1/7080; printf '%s' \"$REQ\" >&3; cat <&3";
    let out =
        Command::new("ip").args(["netns", "exec", &netns(), "bash", "-c", script]).env("REQ", request).output().expect("http request");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn blende_publishes_over_whip() {
    let _serial = serial();
    if !janus_or_skip("blende_publishes_over_whip") {
        return;
    }
    let js = whip_server_js();
    if !js.exists() {
        let msg = format!("blende_publishes_over_whip: {} missing; run tests/interop/setup-whip.sh", js.display());
        if std::env::var("BLENDE_REQUIRE_JANUS").is_ok_and(|v| v == "1") {
            panic!("{msg}; BLENDE_REQUIRE_JANUS=1 is set");
        }
        eprintln!("SKIPPED {msg}");
        return;
    }
    let server = WhipServer(
        Command::new("ip")
            .args(["netns", "exec", &netns(), "node"])
            .arg(&js)
            .current_dir(js.parent().expect("src dir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start simple-whip-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = r#"{"id":"blende-ep","room":1234,"token":"whip-token"}"#;
    let create = format!(
        "POST /whip/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    loop {
        let answer = http_in_ns(&create);
        if answer.starts_with("HTTP/1.1 200") || answer.contains("already exists") {
            break;
        }
        assert!(Instant::now() < deadline, "could not create the WHIP endpoint: {answer}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let viewer = Participant::spawn("Viewer", 1234, &["--camera", "none", "--mic", "none"]);
    viewer.wait_for("viewer joined", Duration::from_secs(10), |v| v["event"] == "joined");
    let dir = std::env::temp_dir().join(format!("blende-whip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let token = dir.join("token");
    std::fs::write(&token, "whip-token\n").expect("token");
    let token = token.to_string_lossy().into_owned();
    let mut publisher =
        Participant::spawn_with_server("WHIP", "whip+http://127.0.0.1:7080/whip/endpoint/blende-ep", &["--password-file", &token]);
    publisher.wait_for("WHIP publisher connected", Duration::from_secs(15), |v| {
        v["event"] == "connection" && v["feed"].is_null() && v["state"] == "connected"
    });
    let s = viewer.wait_feed_stats("viewer decodes the WHIP publisher", Duration::from_secs(30), 0, |v| {
        v["stamped_frames"].as_u64().unwrap_or(0) >= 15 && v["audio_hz"].as_f64().is_some_and(|hz| (hz - 440.0).abs() <= 5.0)
    });
    eprintln!("viewer receives the WHIP publisher: {s}");
    // A share is its own WHIP session on the same endpoint. simple-whip-server takes one
    // publisher per endpoint: it refuses the second session, and the share stops with the
    // server's reason while the call goes on.
    if crate::share::x11_or_skip("blende_publishes_over_whip (share)") {
        let (_xterm, id) = crate::share::white_window(&format!("Anlage-{}.odt", std::process::id()));
        publisher.send(&format!("share window {id}"));
        let stopped = publisher.wait_for("the endpoint refuses a second session", Duration::from_secs(15), |v| {
            v["event"] == "share" && v["state"] == "stopped"
        });
        let reason = stopped["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("already in use"), "the server's reason is shown: {stopped}");
        let t = viewer.last_t_ms();
        viewer.wait_feed_stats("the camera goes on", Duration::from_secs(10), t, |v| v["frames_since_last"].as_u64().unwrap_or(0) > 0);
    }
    // DELETE on leave: the viewer sees the publisher go.
    publisher.send("leave");
    viewer.wait_for("publisher gone after DELETE", Duration::from_secs(10), |v| v["event"] == "participant_left");
    drop(publisher);
    viewer.leave();
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
