//! Sockets: TLS (rustls with the `ring` provider) and WebSocket framing. One task per
//! connection; all decisions are the hub's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use blende_room::ConnId;
use blende_room::limiter::LimitKey;
use blende_room::protocol::MAX_MESSAGE_BYTES;
use blende_room::rate::{SendBudget, SendLimits};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::debug;

use crate::inbox::{CONN_QUEUE, HubInput, Outgoing, RosterSlot};

/// Handshakes (TLS + WebSocket) that take longer are dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the private key {}", key.display()))?;
    // An explicit provider: other crates in the build may enable aws-lc-rs as well.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Limits on open connections, checked before the TLS handshake.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub total: usize,
    /// Per source address; IPv6 per /64 (the join limiter's key).
    pub per_address: usize,
    /// What each connection may send.
    pub send: SendLimits,
    /// A connection that sends nothing (not even the pong to our pings) this long is closed:
    /// a client whose network vanished without a FIN does not keep its seat.
    pub idle: Duration,
}

/// Open connections, in total and per address key. A [`Slot`] holds one until dropped.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<LimitKey, usize>,
}

#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    key: LimitKey,
}

impl Slot {
    /// A slot for a connection from `ip`, or `None` when a cap is reached. A trusted proxy's
    /// connections count in total only until [`Slot::rekey`] names the client behind them.
    fn take(open: &Arc<Mutex<Open>>, ip: IpAddr, caps: Caps, proxy: bool) -> Option<Slot> {
        let key = LimitKey::address(ip);
        let mut o = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let here = o.by_address.get(&key).copied().unwrap_or(0);
        if o.total >= caps.total || (!proxy && here >= caps.per_address) {
            return None;
        }
        o.total += 1;
        *o.by_address.entry(key.clone()).or_insert(0) += 1;
        Some(Slot { open: Arc::clone(open), key })
    }

    /// Moves this slot to the client behind a proxy; `false` when that client is at its cap.
    fn rekey(&mut self, ip: IpAddr, caps: Caps) -> bool {
        let key = LimitKey::address(ip);
        let mut o = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if o.by_address.get(&key).copied().unwrap_or(0) >= caps.per_address {
            return false;
        }
        if let Some(n) = o.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                o.by_address.remove(&self.key);
            }
        }
        *o.by_address.entry(key.clone()).or_insert(0) += 1;
        self.key = key;
        true
    }
}

/// The client a trusted proxy speaks for: the last entry of `X-Forwarded-For` (the one the
/// proxy itself appended; earlier ones are whatever the client claimed).
fn forwarded_client(header: &str) -> Option<IpAddr> {
    let last = header.rsplit(',').next()?.trim();
    let bare = last.strip_prefix('[').and_then(|r| r.split(']').next()).unwrap_or(last);
    bare.parse().ok().or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The handshake callback that keeps the request's `X-Forwarded-For` (all its lines, joined).
// The callback's type is tungstenite's; its error is an HTTP response.
#[allow(clippy::result_large_err)]
fn forwarded_header(seen: Arc<Mutex<Option<String>>>) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> {
    move |request: &Request, response: Response| {
        let value = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
        *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (!value.is_empty()).then_some(value);
        Ok(response)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                o.by_address.remove(&self.key);
            }
        }
    }
}

pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    hub: mpsc::Sender<HubInput>,
    caps: Caps,
    proxies: Arc<[IpAddr]>,
) -> Result<()> {
    let next = AtomicU64::new(1);
    let open = Arc::new(Mutex::new(Open::default()));
    let mut refused: u64 = 0;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let proxy = proxies.iter().any(|p| p.to_canonical() == peer.ip().to_canonical());
        let Some(slot) = Slot::take(&open, peer.ip(), caps, proxy) else {
            // Closed before any TLS work; logged once per 1000 so a flood cannot flood the log.
            refused += 1;
            if refused % 1000 == 1 {
                tracing::warn!(refused, "connection cap reached; closing new connections");
            }
            drop(tcp);
            continue;
        };
        let conn = ConnId(next.fetch_add(1, Ordering::Relaxed));
        let (tls, hub) = (tls.clone(), hub.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let from = Peer { addr: peer, proxy, slot };
            if let Err(e) = connection(tcp, from, tls, hub, conn, caps).await {
                debug!(conn = conn.0, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Who is on the other end: the TCP peer, whether it is a trusted proxy, and the connection's
/// place under the caps.
#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    proxy: bool,
    slot: Slot,
}

async fn connection(
    tcp: TcpStream,
    peer: Peer,
    tls: Option<TlsAcceptor>,
    hub: mpsc::Sender<HubInput>,
    conn: ConnId,
    caps: Caps,
) -> Result<()> {
    match tls {
        Some(acceptor) => {
            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await.context("TLS handshake timed out")??;
            websocket(stream, peer, hub, conn, caps).await
        }
        None => websocket(tcp, peer, hub, conn, caps).await,
    }
}

async fn websocket<S>(stream: S, mut peer: Peer, hub: mpsc::Sender<HubInput>, conn: ConnId, caps: Caps) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Twice the protocol limit at the transport, so the machine can still answer `too_large`
    // for moderately oversized messages; anything bigger ends the connection.
    // Small buffers: signalling messages are small and there may be thousands of connections
    // (tungstenite's 128 KiB defaults cost 256 KiB per idle client).
    let config = WebSocketConfig::default()
        .max_message_size(Some(2 * MAX_MESSAGE_BYTES))
        .max_frame_size(Some(2 * MAX_MESSAGE_BYTES))
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20);
    let forwarded: Arc<Mutex<Option<String>>> = Arc::default();
    let read_header = forwarded_header(Arc::clone(&forwarded));
    let ws = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_hdr_async_with_config(stream, read_header, Some(config)))
        .await
        .context("WebSocket handshake timed out")??;
    let addr = if peer.proxy {
        let header = forwarded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let client = header.as_deref().and_then(forwarded_client).context("a trusted proxy sent no usable X-Forwarded-For")?;
        anyhow::ensure!(peer.slot.rekey(client, caps), "connection cap reached for a client behind the proxy");
        client
    } else {
        peer.addr.ip()
    };
    let _slot = peer.slot;
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel(CONN_QUEUE);
    let roster = RosterSlot::default();
    hub.send(HubInput::Connect { conn, addr, tx, roster: Arc::clone(&roster) }).await?;
    let writer = async move {
        // Pings at a third of the idle timeout: a live client's pong keeps its reader going.
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + caps.idle / 3, caps.idle / 3);
        loop {
            let out = tokio::select! {
                out = rx.recv() => out,
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let Some(out) = out else { break };
            let text = match out {
                Outgoing::Text(text) => text,
                Outgoing::Roster => match roster.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                    Some(text) => text,
                    None => continue,
                },
                Outgoing::Close => break,
            };
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    };
    let hub_in = hub.clone();
    let reader = async move {
        // A client that says nothing is not kept around: the first frame (its `hello`) must
        // come within the handshake timeout.
        let mut wait = HANDSHAKE_TIMEOUT.min(caps.idle);
        let mut budget = SendBudget::new(caps.send, std::time::Instant::now());
        loop {
            let Ok(next) = tokio::time::timeout(wait, source.next()).await else {
                debug!(conn = conn.0, "idle too long; closing");
                return;
            };
            wait = caps.idle;
            let Some(msg) = next else { return };
            let size = match &msg {
                Ok(Message::Text(t)) => t.len(),
                Ok(Message::Binary(b)) => b.len(),
                _ => 0,
            };
            // Every frame spends from the connection's budget, pings too; overdrawing closes
            // the sender before its flood reaches anyone else.
            if !budget.spend(size, std::time::Instant::now()) {
                tracing::warn!(conn = conn.0, "client sends faster than its budget; closing it");
                return;
            }
            match msg {
                Ok(Message::Text(text)) => {
                    if hub_in.send(HubInput::Text { conn, text: text.as_str().to_owned() }).await.is_err() {
                        return;
                    }
                }
                // The protocol is text only; a binary frame gets the same answer as bad JSON.
                Ok(Message::Binary(_)) => {
                    if hub_in.send(HubInput::Text { conn, text: String::new() }).await.is_err() {
                        return;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    hub.send(HubInput::Disconnect { conn }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;

    #[test]
    fn the_proxy_appended_address_counts() {
        assert_eq!(forwarded_client("203.0.113.7").map(|a| a.to_string()).as_deref(), Some("203.0.113.7"));
        assert_eq!(
            forwarded_client("1.1.1.1, 203.0.113.7").map(|a| a.to_string()).as_deref(),
            Some("203.0.113.7"),
            "the client's own claim comes first"
        );
        assert_eq!(forwarded_client("[2001:db8::1]:443").map(|a| a.to_string()).as_deref(), Some("2001:db8::1"));
        assert_eq!(forwarded_client("203.0.113.7:5000").map(|a| a.to_string()).as_deref(), Some("203.0.113.7"));
        assert_eq!(forwarded_client("2001:db8::2").map(|a| a.to_string()).as_deref(), Some("2001:db8::2"));
        assert!(forwarded_client("unknown").is_none() && forwarded_client("").is_none());
    }
}
