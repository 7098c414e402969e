//! WHEP receive over HTTPS from an independent WebRTC stack: aiortc serves a WHEP endpoint
//! (tests/interop/whep_server.py) with TLS; Blende offers receive-only media, decodes the
//! picture and the tone, and DELETEs the session when it leaves. Certificates are verified:
//! without the test CA the connection is refused with a clear error.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::venv_python;
use crate::harness::{Participant, janus_or_skip, netns, serial};

struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    fn start(port: u16, cert: &Path, key: &Path, token: &str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/whep_server.py");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns()])
            .arg(venv_python())
            .arg(script)
            .args(["--port", &port.to_string(), "--token", token, "--tls"])
            .args([cert, key])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("whep_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::Builder::new()
            .name("whep-server".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    eprintln!("[whep-server] {line}");
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        sink.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                    }
                }
            })
            .expect("reader");
        let server = Server { child, lines };
        server.wait_for("listening", Duration::from_secs(30));
        server
    }

    fn wait_for(&self, event: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.lines.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|v| v["event"] == event) {
                return v.clone();
            }
            assert!(Instant::now() < deadline, "WHEP server: no `{event}` within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for 127.0.0.1 (its own CA), made with Debian's openssl.
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

#[test]
fn blende_receives_from_an_aiortc_whep_endpoint_over_https() {
    let _serial = serial();
    // The namespace comes with Janus; the endpoint itself is aiortc.
    if !janus_or_skip("blende_receives_from_an_aiortc_whep_endpoint_over_https") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("whep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = test_certificate(&dir);
    let token_file = dir.join("token");
    std::fs::write(&token_file, "whep-secret\n").expect("token");
    let server = Server::start(7443, &cert, &key, "whep-secret");
    let url = "whep+https://127.0.0.1:7443/whep/ep1";
    let token = token_file.to_str().expect("path");

    // Without the test CA the certificate is not trusted: a clear, fatal error.
    let untrusted = Participant::spawn_with_env(
        "Untrusted",
        url,
        &["--password-file", token, "--camera", "none", "--mic", "none"],
        &[("SSL_CERT_FILE", "/dev/null")],
    );
    let refused = untrusted.wait_for("TLS refusal", Duration::from_secs(15), |v| {
        v["event"] == "error" && v["fatal"] == true && v["message"].as_str().is_some_and(|m| m.contains("127.0.0.1:7443"))
    });
    eprintln!("untrusted certificate: {}", refused["message"]);
    assert!(refused["message"].as_str().is_some_and(|m| m.to_lowercase().contains("certificate")), "{refused}");
    drop(untrusted);

    let cert_env = cert.to_str().expect("path");
    let viewer = Participant::spawn_with_env(
        "Viewer",
        url,
        &["--password-file", token, "--camera", "test-pattern", "--mic", "tone"],
        &[("SSL_CERT_FILE", cert_env)],
    );
    // WHEP only receives: the devices stay closed.
    viewer.wait_for("receive-only notice", Duration::from_secs(10), |v| v["event"] == "error" && v["fatal"] == false);
    let stats = viewer.wait_feed_stats("Viewer decodes the endpoint", Duration::from_secs(30), 0, |v| {
        v["frames_decoded"].as_u64().unwrap_or(0) >= 30 && v["audio_hz"].as_f64().is_some_and(|hz| (hz - 440.0).abs() <= 5.0)
    });
    eprintln!(
        "WHEP: {} frames {}x{}, {:.1} Hz at {:.1} dBFS",
        stats["frames_decoded"],
        stats["width"],
        stats["height"],
        stats["audio_hz"].as_f64().unwrap_or(0.0),
        stats["audio_dbfs"].as_f64().unwrap_or(f64::NAN)
    );
    assert_eq!((stats["width"].as_u64(), stats["height"].as_u64()), (Some(320), Some(240)));
    assert!(viewer.events().iter().all(|v| v["event"] != "device" || v["to"] != "on"), "a device was opened for a receive-only call");
    server.wait_for("session", Duration::from_secs(1));
    viewer.leave();
    server.wait_for("deleted", Duration::from_secs(10));
}
