//! Sockets: TLS (rustls with the `ring` provider) and WebSocket framing. One task per
//! connection; all decisions are the hub's.

use std::collections::HashMap;
use std::net::SocketAddr;
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
    /// A slot for a connection from `ip`, or `None` when a cap is reached.
    fn take(open: &Arc<Mutex<Open>>, ip: std::net::IpAddr, caps: Caps) -> Option<Slot> {
        let key = LimitKey::address(ip);
        let mut o = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let here = o.by_address.get(&key).copied().unwrap_or(0);
        if o.total >= caps.total || here >= caps.per_address {
            return None;
        }
        o.total += 1;
        *o.by_address.entry(key.clone()).or_insert(0) += 1;
        Some(Slot { open: Arc::clone(open), key })
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

pub async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, hub: mpsc::Sender<HubInput>, caps: Caps) -> Result<()> {
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
        let Some(slot) = Slot::take(&open, peer.ip(), caps) else {
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
            let _slot = slot;
            let _ = tcp.set_nodelay(true);
            if let Err(e) = connection(tcp, peer, tls, hub, conn, caps).await {
                debug!(conn = conn.0, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
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

async fn websocket<S>(stream: S, peer: SocketAddr, hub: mpsc::Sender<HubInput>, conn: ConnId, caps: Caps) -> Result<()>
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
    let ws = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_async_with_config(stream, Some(config)))
        .await
        .context("WebSocket handshake timed out")??;
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel(CONN_QUEUE);
    let roster = RosterSlot::default();
    hub.send(HubInput::Connect { conn, addr: peer.ip(), tx, roster: Arc::clone(&roster) }).await?;
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
