//! WHIP publishing (RFC 9725): POST the offer, read the answer and the `Location` of the session
//! resource, DELETE it to leave (§4.2, §4.3). Publish only: subscriptions are refused.
//!
//! The HTTP exchange is split sans-IO style: [`offer_request`] / [`parse_offer_response`] build
//! and read raw HTTP/1.1 (tested without a network); the driver only moves bytes. Plain HTTP is
//! for loopback servers only (checked by [`crate::connect`]); `https` is not wired up yet.

use blende_policy::ServerUrl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::{COMMAND_QUEUE, EVENT_QUEUE, JoinOptions, SignalCommand, SignalError, SignalEvent, SignalHandle};

/// The largest answer we accept (an SDP answer is a few kB).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

fn host_header(url: &ServerUrl) -> String {
    match url.port {
        Some(p) => format!("{}:{p}", url.host),
        None => url.host.clone(),
    }
}

/// The POST carrying our offer.
pub fn offer_request(url: &ServerUrl, token: Option<&str>, sdp: &str) -> String {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/sdp\r\nAccept: application/sdp\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
        url.path,
        host_header(url),
        sdp.len()
    )
}

/// The DELETE that ends the session.
pub fn delete_request(url: &ServerUrl, resource: &str, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("DELETE {resource} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n", host_header(url))
}

/// What the server answered to our offer.
#[derive(Debug, PartialEq, Eq)]
pub struct OfferResponse {
    pub answer_sdp: String,
    /// The session resource (absolute path or URL) from `Location`.
    pub resource: String,
}

/// Reads the raw HTTP response to [`offer_request`].
///
/// # Errors
/// [`SignalError::Server`] for a non-201 status (with the body as message),
/// [`SignalError::Protocol`] for a malformed response.
pub fn parse_offer_response(raw: &[u8]) -> Result<OfferResponse, SignalError> {
    let text = std::str::from_utf8(raw).map_err(|_| SignalError::Protocol("response is not UTF-8".into()))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| SignalError::Protocol("no end of headers".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| SignalError::Protocol(format!("bad status line `{status_line}`")))?;
    let mut location = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("location") {
                location = Some(v.trim().to_owned());
            } else if k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let decoded;
    let body = if chunked {
        decoded = dechunk(body)?;
        decoded.as_str()
    } else {
        body
    };
    if status != 201 {
        let reason = body.trim();
        return Err(SignalError::Server(format!("WHIP server answered {status}: {}", if reason.is_empty() { status_line } else { reason })));
    }
    let resource = location.ok_or_else(|| SignalError::Protocol("201 without Location".into()))?;
    Ok(OfferResponse { answer_sdp: body.to_owned(), resource })
}

/// Undoes `Transfer-Encoding: chunked` (RFC 9112 §7.1).
fn dechunk(mut body: &str) -> Result<String, SignalError> {
    let bad = || SignalError::Protocol("bad chunked body".into());
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").ok_or_else(bad)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad())?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or_else(bad)?;
        out.push_str(chunk);
        body = rest.get(size..).and_then(|r| r.strip_prefix("\r\n")).ok_or_else(bad)?;
    }
}

async fn exchange(url: &ServerUrl, request: String) -> Result<Vec<u8>, SignalError> {
    if url.tls {
        return Err(SignalError::Unsupported(format!("{url} (WHIP over https is not implemented yet)")));
    }
    let addr = format!("{}:{}", url.host, url.port.unwrap_or(80));
    let err = |e: std::io::Error| SignalError::Connect { url: url.to_string(), message: e.to_string() };
    let mut stream = TcpStream::connect(&addr).await.map_err(err)?;
    stream.write_all(request.as_bytes()).await.map_err(err)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(err)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(SignalError::Protocol("response too large".into()));
        }
    }
    Ok(buf)
}

/// Starts the WHIP adapter. No network traffic until the engine publishes.
///
/// # Errors
/// Never at present; kept fallible like the other adapters.
pub fn connect(url: &ServerUrl, options: JoinOptions) -> Result<SignalHandle, SignalError> {
    let (commands_tx, mut commands_rx) = mpsc::channel::<SignalCommand>(COMMAND_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let url = url.clone();
    tokio::spawn(async move {
        let token = options.password.clone();
        let _ = events_tx.send(SignalEvent::Joined { participant_id: "whip".into(), participants: Vec::new() }).await;
        let mut resource: Option<String> = None;
        while let Some(cmd) = commands_rx.recv().await {
            match cmd {
                SignalCommand::Publish { sdp } => {
                    let result = exchange(&url, offer_request(&url, token.as_deref(), &sdp))
                        .await
                        .and_then(|raw| parse_offer_response(&raw));
                    match result {
                        Ok(r) => {
                            resource = Some(r.resource);
                            let _ = events_tx.send(SignalEvent::PublishAnswer { sdp: r.answer_sdp }).await;
                        }
                        Err(e) => {
                            let _ = events_tx.send(SignalEvent::Error { message: e.to_string(), fatal: true }).await;
                        }
                    }
                }
                SignalCommand::Subscribe { .. } | SignalCommand::AnswerSubscription { .. } => {
                    let _ = events_tx
                        .send(SignalEvent::Error { message: "WHIP only publishes; use WHEP to receive".into(), fatal: false })
                        .await;
                }
                SignalCommand::Unpublish | SignalCommand::Leave => break,
                _ => {}
            }
        }
        if let Some(res) = resource {
            let path = strip_origin(&res);
            if let Err(e) = exchange(&url, delete_request(&url, &path, token.as_deref())).await {
                log::debug!("WHIP DELETE: {e}");
            }
        }
        let _ = events_tx.send(SignalEvent::Closed { reason: "left".into() }).await;
    });
    Ok(SignalHandle { commands: commands_tx, events: events_rx })
}

/// `http://host:port/path` → `/path`; a relative `Location` stays as it is.
fn strip_origin(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned()),
        None => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> ServerUrl {
        ServerUrl::parse("whip+http://127.0.0.1:7080/whip/endpoint/ep1").expect("url")
    }

    #[test]
    fn offer_request_carries_sdp_and_token() {
        let r = offer_request(&url(), Some("tok"), "v=0\r\n");
        assert!(r.starts_with("POST /whip/endpoint/ep1 HTTP/1.1\r\n"));
        assert!(r.contains("Content-Type: application/sdp\r\n"));
        assert!(r.contains("Authorization: Bearer tok\r\n"));
        assert!(r.contains("Content-Length: 5\r\n"));
        assert!(r.ends_with("\r\n\r\nv=0\r\n"));
    }

    #[test]
    fn parses_created_answer_and_location() {
        let raw = b"HTTP/1.1 201 Created\r\nLocation: /whip/endpoint/ep1/res\r\nContent-Type: application/sdp\r\n\r\nv=0 answer";
        let r = parse_offer_response(raw).expect("ok");
        assert_eq!(r.resource, "/whip/endpoint/ep1/res");
        assert_eq!(r.answer_sdp, "v=0 answer");
        assert_eq!(strip_origin("http://h:1/a/b"), "/a/b");
    }

    #[test]
    fn reads_chunked_answers() {
        let raw = b"HTTP/1.1 201 Created\r\nLocation: /r/1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nv=0 \r\n6\r\nanswer\r\n0\r\n\r\n";
        assert_eq!(parse_offer_response(raw).expect("ok").answer_sdp, "v=0 answer");
    }

    #[test]
    fn errors_are_clear() {
        let e = parse_offer_response(b"HTTP/1.1 403 Forbidden\r\n\r\nUnauthorized").expect_err("403");
        assert_eq!(e.to_string(), "WHIP server answered 403: Unauthorized");
        assert!(parse_offer_response(b"garbage").is_err());
    }
}
