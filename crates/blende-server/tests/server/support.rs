//! Starting the real `blende-server` binary and talking to it like a client.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_blende-server");
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh directory per test under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("blende-server-test-{}-{}-{name}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A self-signed test certificate for `localhost`, written as PEM files; returns the
/// connector that trusts exactly it.
pub fn test_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, TlsConnector) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (cert, key, TlsConnector::from(Arc::new(config)))
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub db: String,
    pub connector: TlsConnector,
    cert: PathBuf,
    key: PathBuf,
    extra: Vec<String>,
}

/// Fast hashing and a quick lockout for tests; callers add or override flags.
pub fn test_flags() -> Vec<String> {
    ["--argon2-m-kib", "1024", "--argon2-t", "1", "--log-format", "text"].iter().map(|s| (*s).to_owned()).collect()
}

impl Server {
    pub fn start(name: &str, db: Option<String>, extra: &[&str]) -> Server {
        let dir = temp_dir(name);
        let (cert, key, connector) = test_certificate(&dir);
        let db = db.unwrap_or_else(|| format!("sqlite:{}", dir.join("blende.db").display()));
        // Defaults first, minus any flag the caller sets itself (clap refuses repeats).
        let defaults = test_flags();
        let mut extra_flags: Vec<String> =
            defaults.chunks(2).filter(|pair| !extra.contains(&pair[0].as_str())).flatten().cloned().collect();
        extra_flags.extend(extra.iter().map(|s| (*s).to_owned()));
        let (child, addr) = spawn(&dir, &db, &cert, &key, &extra_flags);
        Server { child, addr, dir, db, connector, cert, key, extra: extra_flags }
    }

    /// Stops the process and starts it again on the same database (new port).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = spawn(&self.dir, &self.db, &self.cert, &self.key, &self.extra);
        self.child = child;
        self.addr = addr;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `blende-server admin --json …` on this server's database.
    pub fn admin(&self, args: &[&str]) -> String {
        admin(&self.db, args)
    }

    /// Adds a moderator; returns its token.
    pub fn add_moderator(&self) -> String {
        let out = self.admin(&["add-moderator", "--name", "Test Moderator"]);
        let v: Value = serde_json::from_str(out.trim()).expect("admin json");
        v["token"].as_str().expect("token").to_owned()
    }

    /// A new moderator, authenticated, with a meeting of their own without a lobby, which they
    /// are in when `enter`: (moderator, meeting ID, password).
    pub async fn hosted_meeting(&self, enter: bool) -> (Client, String, String) {
        let token = self.add_moderator();
        let mut mo = self.client().await;
        mo.hello().await;
        mo.auth(&token).await;
        let (id, pw) = mo.create_meeting(false).await;
        if enter {
            mo.enter(&id).await;
        }
        (mo, id, pw)
    }

    pub async fn client(&self) -> Client {
        self.client_from(Ipv4Addr::LOCALHOST).await
    }

    /// A client whose TCP source address is `ip` (any 127.0.0.0/8 address works on Linux).
    pub async fn client_from(&self, ip: Ipv4Addr) -> Client {
        self.try_client_from(ip).await.expect("connect")
    }

    /// A client from `ip` whose WebSocket request carries `X-Forwarded-For: forwarded`, as a
    /// reverse proxy sends it (or as anyone could claim it).
    pub async fn try_client_forwarded(&self, ip: Ipv4Addr, forwarded: Option<&str>) -> Result<Client, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket.bind(SocketAddr::from((ip, 0))).map_err(|e| e.to_string())?;
        let tcp = socket.connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost".to_owned()).expect("name");
        let tls = self.connector.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
        let mut request = "wss://localhost/".into_client_request().map_err(|e| e.to_string())?;
        if let Some(f) = forwarded {
            request.headers_mut().insert("x-forwarded-for", f.parse().map_err(|_| "header".to_owned())?);
        }
        let (ws, _) = tokio_tungstenite::client_async(request, tls).await.map_err(|e| format!("websocket: {e}"))?;
        Ok(Client { ws, pid: None })
    }

    /// As [`Server::client_from`], with the failure (closed before or during TLS) returned.
    pub async fn try_client_from(&self, ip: Ipv4Addr) -> Result<Client, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket.bind(SocketAddr::from((ip, 0))).map_err(|e| e.to_string())?;
        let tcp = socket.connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost".to_owned()).expect("name");
        let tls = self.connector.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
        let (ws, _) = tokio_tungstenite::client_async("wss://localhost/", tls).await.map_err(|e| format!("websocket: {e}"))?;
        Ok(Client { ws, pid: None })
    }
}

pub fn admin(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN).args(["admin", "--db", db, "--json"]).args(args).output().expect("run admin");
    assert!(out.status.success(), "admin {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn spawn(dir: &std::path::Path, db: &str, cert: &std::path::Path, key: &std::path::Path, extra: &[String]) -> (Child, SocketAddr) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("log file");
    let mut child = Command::new(BIN)
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn blende-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read listening line");
    let v: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("server did not start ({e}): {line:?}; see {}", dir.join("server.log").display()));
    assert_eq!(v["event"], "listening");
    assert_eq!(v["tls"], true);
    (child, v["addr"].as_str().expect("addr").parse().expect("socket addr"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep database and log of a failed test for inspection.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct Client {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    pub pid: Option<u64>,
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn try_send_raw(&mut self, text: String) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::text(text)).await
    }

    /// The next server message, or `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(RECV_TIMEOUT, self.ws.next()).await.expect("timed out waiting for the server") {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.next().await.expect("connection closed")
    }

    /// Reads until a message of `kind` arrives; returns it and what came before.
    pub async fn until(&mut self, kind: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return (m, before);
            }
            before.push(m);
        }
    }

    /// Pings and returns everything that arrived before the pong.
    pub async fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        self.until("pong").await.1
    }

    /// True when the server closes the connection (after any messages still queued).
    pub async fn closed(&mut self) -> bool {
        while let Ok(m) = tokio::time::timeout(RECV_TIMEOUT, self.next()).await {
            if m.is_none() {
                return true;
            }
        }
        false
    }

    pub async fn hello(&mut self) {
        self.send(json!({"type": "hello", "protocol": 1})).await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
    }

    pub async fn auth(&mut self, token: &str) {
        self.send(json!({"type": "auth_moderator", "token": token})).await;
        let (_, before) = self.until("authenticated").await;
        assert!(before.is_empty(), "{before:?}");
    }

    /// Creates a meeting; returns (id, password).
    pub async fn create_meeting(&mut self, lobby: bool) -> (String, String) {
        self.send(
            json!({"type": "create_meeting", "title": "Gemeinderat", "starts_at_unix": 1_769_506_200, "duration_min": 45, "lobby": lobby}),
        )
        .await;
        let (m, _) = self.until("meeting_created").await;
        (m["meeting"]["id"].as_str().expect("id").to_owned(), m["password"].as_str().expect("pw").to_owned())
    }

    /// Sends `join` and returns the first answer (lobby message or error).
    pub async fn join(&mut self, id: &str, pw: &str) -> Value {
        self.send(json!({"type": "join", "meeting_id": id, "password": pw, "display_name": "Bea"})).await;
        let m = self.recv().await;
        if let Some(p) = m["participant_id"].as_u64() {
            self.pid = Some(p);
        }
        m
    }

    pub async fn enter(&mut self, id: &str) {
        self.send(json!({"type": "enter_meeting", "meeting_id": id, "display_name": "Mo"})).await;
        let (m, _) = self.until("lobby").await;
        assert_eq!(m["state"], "admitted");
        self.pid = m["participant_id"].as_u64();
    }
}

pub fn error_code(v: &Value) -> Option<&str> {
    (v["type"] == "error").then(|| v["code"].as_str()).flatten()
}
