//! Janus-backed rooms through the Janus HTTP API (plain `http://`, meant for loopback or a
//! private network between blende-server and Janus: the room secret travels over it).
//!
//! Each operation opens a Janus session, attaches the VideoRoom plugin, sends its requests and
//! destroys the session again: no keep-alives, and nothing breaks when Janus restarts
//! between operations. Rooms are not tied to the session that created them.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use blende_room::protocol::Secret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::secrets;

const TIMEOUT: Duration = Duration::from_secs(3);
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug)]
pub struct JanusConfig {
    /// Server side: `http://127.0.0.1:8088/janus`.
    pub api_url: String,
    /// Client side, handed to admitted participants: e.g. `janus+wss://media.example.org/`.
    pub client_url: String,
    /// The VideoRoom plugin's `admin_key`, when room creation is locked with one.
    pub admin_key: Option<Secret>,
    /// A meeting moves to Janus when this many members are admitted.
    pub threshold: usize,
}

/// A Janus room of one meeting. Secret and PIN never leave the server except the PIN, which
/// admitted members need.
#[derive(Debug)]
pub struct JanusRoom {
    pub room: u64,
    pub secret: Secret,
    pub pin: Secret,
}

/// What one admitted member gets.
pub fn new_token() -> Result<Secret> {
    Ok(Secret::new(secrets::hex(&secrets::random_bytes::<16>()?)))
}

/// A room or feed id: random, so nobody can take a member's feed id before they publish.
/// Below 2^53 so JavaScript clients keep it exact.
pub fn random_id() -> Result<u64> {
    Ok((u64::from_le_bytes(secrets::random_bytes::<8>()?) & ((1 << 53) - 1)).max(1))
}

struct Url {
    host_port: String,
    path: String,
}

fn parse_http_url(url: &str) -> Result<Url> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("the Janus API URL must be http://host:port/path"))?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:80") };
    Ok(Url { host_port, path: path.trim_end_matches('/').to_owned() })
}

/// One HTTP/1.1 request with `Connection: close`; returns the JSON body.
async fn http(method: &str, host_port: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let run = async {
        let mut tcp = TcpStream::connect(host_port).await.context("connecting to Janus")?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        tcp.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw).await?;
        parse_response(&raw)
    };
    tokio::time::timeout(TIMEOUT, run).await.map_err(|_| anyhow!("Janus did not answer in time"))?
}

fn parse_response(raw: &[u8]) -> Result<Value> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("malformed HTTP response from Janus"))?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP head")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("Janus answered HTTP {status}");
    }
    let mut body = raw[split + 4..].to_vec();
    if head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")) {
        body = dechunk(&body)?;
    }
    serde_json::from_slice(&body).context("Janus sent invalid JSON")
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size_text = std::str::from_utf8(&data[..line_end])?.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or_else(|| anyhow!("short chunk"))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

fn transaction() -> String {
    secrets::random_bytes::<8>().map(|b| secrets::hex(&b)).unwrap_or_else(|_| "t".to_owned())
}

/// A Janus session with the VideoRoom plugin attached; destroyed on [`Session::close`].
pub struct Session {
    host_port: String,
    base: String,
    session: u64,
    handle: u64,
}

impl Session {
    pub async fn open(api_url: &str) -> Result<Session> {
        let url = parse_http_url(api_url)?;
        let created = http("POST", &url.host_port, &url.path, Some(&json!({"janus": "create", "transaction": transaction()}))).await?;
        let session = created["data"]["id"].as_u64().ok_or_else(|| anyhow!("Janus did not create a session: {created}"))?;
        let path = format!("{}/{session}", url.path);
        let attached = http(
            "POST",
            &url.host_port,
            &path,
            Some(&json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": transaction()})),
        )
        .await?;
        let handle = attached["data"]["id"].as_u64().ok_or_else(|| anyhow!("Janus did not attach the VideoRoom plugin: {attached}"))?;
        Ok(Session { host_port: url.host_port, base: url.path, session, handle })
    }

    /// A synchronous VideoRoom request; returns `plugindata.data`, or the plugin's error.
    async fn request(&self, body: Value) -> Result<Value> {
        let path = format!("{}/{}/{}", self.base, self.session, self.handle);
        let reply =
            http("POST", &self.host_port, &path, Some(&json!({"janus": "message", "transaction": transaction(), "body": body}))).await?;
        let data = reply["plugindata"]["data"].clone();
        if let Some(code) = data["error_code"].as_u64() {
            bail!("Janus VideoRoom error {code}: {}", data["error"].as_str().unwrap_or(""));
        }
        if reply["janus"] == "error" {
            bail!("Janus error: {}", reply["error"]["reason"].as_str().unwrap_or(""));
        }
        Ok(data)
    }

    /// Everyone who joined `room` as a publisher (publishing or not).
    pub async fn list_participants(&self, room: &JanusRoom) -> Result<Vec<Publisher>> {
        let body = json!({"request": "listparticipants", "room": room.room, "secret": room.secret.expose()});
        Ok(parse_participants(&self.request(body).await?))
    }

    /// Kicks one publisher (by feed id) out of `room`. With `require_pvtid` Janus also stops
    /// every subscription that publisher's session opened.
    pub async fn kick(&self, room: &JanusRoom, feed: u64) -> Result<()> {
        let body = json!({"request": "kick", "room": room.room, "secret": room.secret.expose(), "id": feed});
        self.request(body).await.map(|_| ())
    }

    pub async fn close(self) {
        let path = format!("{}/{}", self.base, self.session);
        let _ = http("POST", &self.host_port, &path, Some(&json!({"janus": "destroy", "transaction": transaction()}))).await;
    }
}

/// Runs `f` in a fresh session and always closes it.
async fn with_session<T>(cfg: &JanusConfig, f: impl AsyncFnOnce(&Session) -> Result<T>) -> Result<T> {
    let s = Session::open(&cfg.api_url).await?;
    let r = f(&s).await;
    s.close().await;
    r
}

pub async fn create_room(cfg: &JanusConfig, allowed: &[Secret], publishers: usize) -> Result<JanusRoom> {
    let room = JanusRoom { room: random_id()?, secret: new_token()?, pin: new_token()? };
    let mut body = json!({
        "request": "create",
        "room": room.room,
        "description": "Blende meeting",
        "is_private": true,
        "secret": room.secret.expose(),
        "pin": room.pin.expose(),
        "allowed": allowed.iter().map(Secret::expose).collect::<Vec<_>>(),
        "publishers": publishers,
        // Subscriptions need a publisher's private_id, so kicking a publisher ends its
        // subscriptions too, and nobody subscribes without having joined as a member.
        "require_pvtid": true,
        "audiocodec": "opus",
        "videocodec": "vp8",
    });
    if let Some(key) = &cfg.admin_key {
        body["admin_key"] = json!(key.expose());
    }
    with_session(cfg, async |s| s.request(body).await.map(|_| ())).await?;
    Ok(room)
}

pub async fn allow(cfg: &JanusConfig, room: &JanusRoom, token: &Secret, add: bool) -> Result<()> {
    let body = json!({
        "request": "allowed", "room": room.room, "secret": room.secret.expose(),
        "action": if add { "add" } else { "remove" }, "allowed": [token.expose()],
    });
    with_session(cfg, async |s| s.request(body).await.map(|_| ())).await
}

/// [`Session::kick`] in a session of its own.
pub async fn kick(cfg: &JanusConfig, room: &JanusRoom, feed: u64) -> Result<()> {
    with_session(cfg, async |s| s.kick(room, feed).await).await
}

/// A publisher Janus reports in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    pub feed: u64,
    pub display: Option<String>,
}

fn parse_participants(data: &Value) -> Vec<Publisher> {
    data["participants"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| Some(Publisher { feed: p["id"].as_u64()?, display: p["display"].as_str().map(str::to_owned) }))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn destroy(cfg: &JanusConfig, room: &JanusRoom) -> Result<()> {
    let body = json!({"request": "destroy", "room": room.room, "secret": room.secret.expose()});
    with_session(cfg, async |s| s.request(body).await.map(|_| ())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_responses() {
        let u = parse_http_url("http://127.0.0.1:8088/janus/").expect("url");
        assert_eq!((u.host_port.as_str(), u.path.as_str()), ("127.0.0.1:8088", "/janus"));
        assert!(parse_http_url("https://x/janus").is_err());
        let v = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").expect("plain");
        assert_eq!(v, json!({}));
        let v =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").expect("chunked");
        assert_eq!(v, json!({"a": 1}));
        assert!(parse_response(b"HTTP/1.1 500 Oops\r\n\r\n").is_err());
        let listed =
            json!({"videoroom": "participants", "participants": [{"id": 5, "display": "A", "publisher": true}, {"id": "x"}, {"id": 6}]});
        assert_eq!(
            parse_participants(&listed),
            vec![Publisher { feed: 5, display: Some("A".into()) }, Publisher { feed: 6, display: None }],
            "ids that are not numbers are skipped"
        );
        assert!(random_id().expect("id") < 1 << 53);
    }
}
