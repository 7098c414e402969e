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
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(e) = machine.handle_message(text.as_str()) {
                            log::warn!("{}: {e}", M::NAME);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => machine.handle_transport_closed("the server closed the connection"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => machine.handle_transport_closed(&format!("connection lost: {e}")),
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
