//! The HTTP/1.1 exchange WHIP and WHEP share (RFC 9725 §4.2, §4.3; WHEP draft): POST an SDP
//! offer, read the answer and the session resource's `Location`, DELETE it to leave.
//!
//! Sans-IO style: [`offer_request`] / [`parse_offer_response`] build and read raw HTTP (tested
//! without a network); [`exchange`] only moves bytes, over TLS for `https` (the system's trust
//! store; `SSL_CERT_FILE` names another CA bundle, as OpenSSL reads it) and in plain text for
//! loopback `http` only (checked by [`crate::connect`]).

use blende_policy::ServerUrl;
#[cfg(feature = "io")]
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
#[cfg(feature = "io")]
use tokio::net::TcpStream;

use crate::SignalError;

/// The largest answer we accept (an SDP answer is a few kB).
#[cfg(feature = "io")]
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

pub(crate) fn host_header(url: &ServerUrl) -> String {
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
        return Err(SignalError::Server(format!("the server answered {status}: {}", if reason.is_empty() { status_line } else { reason })));
    }
    let resource = location.ok_or_else(|| SignalError::Protocol("201 without Location".into()))?;
    Ok(OfferResponse { answer_sdp: body.to_owned(), resource })
}

/// Undoes `Transfer-Encoding: chunked` (RFC 9112 §7.1).
pub(crate) fn dechunk(mut body: &str) -> Result<String, SignalError> {
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

#[cfg(feature = "io")]
/// Sends one request and reads the whole response (the requests say `Connection: close`).
///
/// # Errors
/// [`SignalError::Connect`] for network or TLS failures, [`SignalError::Protocol`] for an
/// oversized response.
pub async fn exchange(url: &ServerUrl, request: String) -> Result<Vec<u8>, SignalError> {
    let port = url.port.unwrap_or(if url.tls { 443 } else { 80 });
    let addr = format!("{}:{port}", url.host);
    let err = |e: &dyn std::fmt::Display| SignalError::Connect { url: url.to_string(), message: e.to_string() };
    let tcp = TcpStream::connect(&addr).await.map_err(|e| err(&e))?;
    if url.tls {
        let connector = native_tls::TlsConnector::new().map_err(|e| err(&e))?;
        let connector = tokio_native_tls::TlsConnector::from(connector);
        // Certificate and host name are verified; there is no switch to turn that off.
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let tls = connector.connect(host, tcp).await.map_err(|e| err(&e))?;
        round_trip(tls, request.as_bytes()).await.map_err(|e| match e {
            Io::Net(e) => err(&e),
            Io::TooLarge => SignalError::Protocol("response too large".into()),
        })
    } else {
        round_trip(tcp, request.as_bytes()).await.map_err(|e| match e {
            Io::Net(e) => err(&e),
            Io::TooLarge => SignalError::Protocol("response too large".into()),
        })
    }
}

#[cfg(feature = "io")]
/// POSTs an SDP offer and reads the answer and the session resource (WHIP §4.2; WHEP alike).
///
/// # Errors
/// As [`exchange`] and [`parse_offer_response`].
pub async fn post_offer(url: &ServerUrl, token: Option<&str>, sdp: &str) -> Result<OfferResponse, SignalError> {
    exchange(url, offer_request(url, token, sdp)).await.and_then(|raw| parse_offer_response(&raw))
}

#[cfg(feature = "io")]
/// DELETEs the session resource when leaving; a failure is only logged (the server times the
/// session out anyway, and leaving must not wait for it).
pub async fn delete_session(url: &ServerUrl, resource: &str, token: Option<&str>) {
    let path = strip_origin(resource);
    if let Err(e) = exchange(url, delete_request(url, &path, token)).await {
        log::debug!("DELETE {path}: {e}");
    }
}

#[cfg(feature = "io")]
enum Io {
    Net(std::io::Error),
    TooLarge,
}

#[cfg(feature = "io")]
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Result<Vec<u8>, Io> {
    stream.write_all(request).await.map_err(Io::Net)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // Servers that close without TLS close_notify: what arrived is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(Io::Net(e)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(Io::TooLarge);
        }
    }
    Ok(buf)
}

/// `http://host:port/path` → `/path`; a relative `Location` stays as it is.
pub fn strip_origin(location: &str) -> String {
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
        assert_eq!(e.to_string(), "the server answered 403: Unauthorized");
        assert!(parse_offer_response(b"garbage").is_err());
    }
}
