//! The one WebSocket driver loop for the sans-IO signalling machines (Janus, Blende rooms):
//! the only code that owns the socket and the timer. A machine takes text messages, commands
//! and the clock, and hands out messages to send and events for the engine.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::{COMMAND_QUEUE, EVENT_QUEUE, SignalCommand, SignalError, SignalEvent, SignalHandle};

/// What the driver needs of a protocol machine.
pub(crate) trait Machine: Send + 'static {
    /// Names the protocol in log lines.
    const NAME: &'static str;
    /// Whether the driver pings the server and counts the connection lost when it stays
    /// silent for [`SILENCE_LIMIT`] (for machines whose callers come back on their own).
    const WATCH_SILENCE: bool = false;
    fn poll_transmit(&mut self) -> Option<String>;
    fn poll_event(&mut self) -> Option<SignalEvent>;
    fn is_closed(&self) -> bool;
    fn handle_message(&mut self, text: &str) -> Result<(), SignalError>;
    fn handle_command(&mut self, command: SignalCommand);
    fn handle_transport_closed(&mut self, reason: &str);
    /// The next instant [`Machine::handle_timeout`] is due; `None`: no timer.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// Largest message or frame a signalling server may send us (the library's default is 64 MiB:
/// a hostile server could make us allocate that much per message).
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How long opening the connection (TCP, TLS, WebSocket handshake) may take.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a watched connection is pinged.
pub const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a watched server may send nothing at all, not even a pong, before its connection
/// counts as lost. A cut link shows no error for minutes (TCP retransmits): silence is the
/// only sign.
pub const SILENCE_LIMIT: std::time::Duration = std::time::Duration::from_secs(6);

/// Whether the server was heard recently enough, and when to ping it next.
#[derive(Debug)]
pub(crate) struct Liveness {
    heard: Instant,
    next_ping: Instant,
}

impl Liveness {
    pub fn new(now: Instant) -> Self {
        Liveness { heard: now, next_ping: now + PING_EVERY }
    }

    pub fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    pub fn deadline(&self) -> Instant {
        self.next_ping.min(self.heard + SILENCE_LIMIT)
    }

    /// At `now`: `Err` with the reason once the server was silent too long, else whether a
    /// ping is due.
    pub fn check(&mut self, now: Instant) -> Result<bool, String> {
        if now.saturating_duration_since(self.heard) >= SILENCE_LIMIT {
            return Err(format!("the server did not answer for {} s", SILENCE_LIMIT.as_secs()));
        }
        if now >= self.next_ping {
            self.next_ping = now + PING_EVERY;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Opens a signalling WebSocket with the size limit above, within [`CONNECT_TIMEOUT`].
pub(crate) async fn open<R>(request: R) -> Result<WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, String>
where
    R: tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
{
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async_with_config(request, Some(config), true)).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// Spawns the driver task for `machine` on an open WebSocket and returns the engine's end.
pub(crate) fn spawn<M, S>(ws: WebSocketStream<S>, mut machine: M) -> SignalHandle
where
    M: Machine,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (commands_tx, mut commands_rx) = mpsc::channel::<SignalCommand>(COMMAND_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        let mut commands_open = true;
        let mut liveness = M::WATCH_SILENCE.then(|| Liveness::new(Instant::now()));
        loop {
            while let Some(text) = machine.poll_transmit() {
                if let Err(e) = sink.send(Message::text(text)).await {
                    machine.handle_transport_closed(&format!("send failed: {e}"));
                    break;
                }
            }
            while let Some(event) = machine.poll_event() {
                if events_tx.send(event).await.is_err() {
                    // The engine is gone: leave politely.
                    machine.handle_command(SignalCommand::Leave);
                }
            }
            if machine.is_closed() {
                while let Some(text) = machine.poll_transmit() {
                    let _ = sink.send(Message::text(text)).await;
                }
                let _ = sink.close().await;
                break;
            }
            let deadline = machine.poll_timeout().map(tokio::time::Instant::from_std);
            let watch = liveness.as_ref().map(|l| tokio::time::Instant::from_std(l.deadline()));
            tokio::select! {
                msg = stream.next() => {
                    if let Some(l) = &mut liveness {
                        l.heard(Instant::now());
                    }
                    match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(e) = machine.handle_message(text.as_str()) {
                            log::warn!("{}: {e}", M::NAME);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => machine.handle_transport_closed("the server closed the connection"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => machine.handle_transport_closed(&format!("connection lost: {e}")),
                    }
                },
                () = async {
                    match watch {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(l) = &mut liveness {
                        match l.check(Instant::now()) {
                            Err(reason) => machine.handle_transport_closed(&reason),
                            Ok(true) => {
                                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                                    machine.handle_transport_closed(&format!("send failed: {e}"));
                                }
                            }
                            Ok(false) => {}
                        }
                    }
                },
                cmd = commands_rx.recv(), if commands_open => match cmd {
                    Some(c) => machine.handle_command(c),
                    None => {
                        commands_open = false;
                        machine.handle_command(SignalCommand::Leave);
                    }
                },
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => machine.handle_timeout(Instant::now()),
            }
        }
    });
    SignalHandle { commands: commands_tx, events: events_rx }
}

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    use crate::{JoinOptions, SignalEvent};

    fn url(addr: std::net::SocketAddr) -> blende_policy::ServerUrl {
        blende_policy::ServerUrl::parse(&format!("blende+ws://{addr}")).expect("url")
    }

    /// A server that answers the handshake and then sends one message of twice the limit: the
    /// client closes the connection instead of taking it in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversized_server_message_closes_the_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
            let big = "x".repeat(2 * super::MAX_MESSAGE_BYTES);
            let _ = ws.send(Message::text(big)).await;
            // The server keeps the connection: only the client's limit can close it.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        });
        let mut handle = crate::blende::connect(&url(addr), JoinOptions::default()).await.expect("connected");
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), handle.events.recv()).await.expect("an event in time");
        match ev {
            Some(SignalEvent::Closed { reason }) => assert!(reason.contains("limit"), "{reason}"),
            other => panic!("expected the connection to close, got {other:?}"),
        }
        server.abort();
    }

    #[test]
    fn liveness_pings_and_gives_up_after_the_silence_limit() {
        let t0 = std::time::Instant::now();
        let mut l = super::Liveness::new(t0);
        assert_eq!(l.check(t0), Ok(false));
        assert_eq!(l.deadline(), t0 + super::PING_EVERY);
        assert_eq!(l.check(t0 + super::PING_EVERY), Ok(true), "a ping is due");
        assert_eq!(l.check(t0 + super::PING_EVERY), Ok(false), "once");
        l.heard(t0 + super::PING_EVERY);
        let quiet = t0 + super::PING_EVERY + super::SILENCE_LIMIT;
        assert!(l.check(quiet - std::time::Duration::from_millis(1)).is_ok());
        assert!(l.check(quiet).expect_err("silent too long").contains("did not answer"));
    }

    /// A Janus that answers pings (as every WebSocket server does) for longer than the silence
    /// limit, then stops reading, as when the link is cut: the session is reported closed once
    /// the limit has passed, not minutes later when TCP gives up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_goes_silent_closes_the_janus_session() {
        use futures_util::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let healthy = super::SILENCE_LIMIT + std::time::Duration::from_secs(1);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            // tungstenite's callback type, not ours, decides the error's size.
            #[allow(clippy::result_large_err)]
            let protocol = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                            mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                response.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse().expect("header"));
                Ok(response)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, protocol).await.expect("handshake");
            // Reading answers pings (and Janus's `create` goes unanswered: no event).
            let _ = tokio::time::timeout(healthy, async { while let Some(Ok(_)) = ws.next().await {} }).await;
            // Nothing is read or answered from now on.
            tokio::time::sleep(super::SILENCE_LIMIT * 3).await;
        });
        let url = blende_policy::ServerUrl::parse(&format!("janus+ws://{addr}")).expect("url");
        let started = std::time::Instant::now();
        let mut handle = crate::janus_ws::connect(&url, JoinOptions::default()).await.expect("connected");
        let ev = tokio::time::timeout(super::SILENCE_LIMIT * 3, handle.events.recv()).await.expect("an event in time");
        let after = started.elapsed();
        match ev {
            Some(SignalEvent::Closed { reason }) => assert!(reason.contains("did not answer"), "{reason}"),
            other => panic!("expected the session to close, got {other:?}"),
        }
        assert!(after >= healthy, "closed after {after:?} although the server answered pings until {healthy:?}");
        assert!(after < healthy + super::SILENCE_LIMIT + std::time::Duration::from_secs(1), "closed only after {after:?}");
        server.abort();
    }

    /// A server that takes the TCP connection and never answers the handshake: connecting gives
    /// up after the timeout with a clear error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_server_times_out_the_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (_tcp, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(super::CONNECT_TIMEOUT * 2).await;
        });
        let started = std::time::Instant::now();
        let result = crate::blende::connect(&url(addr), JoinOptions::default()).await;
        let err = result.expect_err("no connection without a handshake").to_string();
        assert!(err.contains("no answer within"), "{err}");
        assert!(started.elapsed() < super::CONNECT_TIMEOUT * 2);
        server.abort();
    }
}
