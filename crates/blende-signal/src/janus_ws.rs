//! The WebSocket driver for [`JanusMachine`]: the only code that owns the socket and the timer.

use std::time::Instant;

use blende_policy::ServerUrl;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::janus::{JanusAccess, JanusMachine};
use crate::{COMMAND_QUEUE, EVENT_QUEUE, JoinOptions, SignalCommand, SignalError, SignalHandle};

/// `ws[s]://host:port/path` for a `janus+ws[s]://` address (Janus's defaults: 8188 / 8989).
pub fn websocket_url(url: &ServerUrl) -> String {
    let scheme = if url.tls { "wss" } else { "ws" };
    let port = url.port.unwrap_or(if url.tls { 8989 } else { 8188 });
    format!("{scheme}://{}:{port}{}", url.host, url.path)
}

/// Connects, starts the machine and spawns the driver task.
///
/// # Errors
/// [`SignalError::Connect`] when the WebSocket cannot be opened.
pub async fn connect(url: &ServerUrl, options: JoinOptions) -> Result<SignalHandle, SignalError> {
    connect_with_access(url, options, JanusAccess::default()).await
}

/// [`connect`] for a room with an ACL (a Blende meeting that moved to Janus): every join carries
/// the token, the publisher joins with the given feed id.
///
/// # Errors
/// [`SignalError::Connect`] when the WebSocket cannot be opened.
pub async fn connect_with_access(url: &ServerUrl, options: JoinOptions, access: JanusAccess) -> Result<SignalHandle, SignalError> {
    let ws_url = websocket_url(url);
    let connect_err = |message: String| SignalError::Connect { url: ws_url.clone(), message };
    let mut request = ws_url.as_str().into_client_request().map_err(|e| connect_err(e.to_string()))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("janus-protocol"));
    let (ws, _response) = tokio_tungstenite::connect_async(request).await.map_err(|e| connect_err(e.to_string()))?;

    let (commands_tx, mut commands_rx) = mpsc::channel::<SignalCommand>(COMMAND_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let mut machine = JanusMachine::with_access(options, access);
    machine.start(Instant::now());
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
                            log::warn!("janus: {e}");
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
    Ok(SignalHandle { commands: commands_tx, events: events_rx })
}
