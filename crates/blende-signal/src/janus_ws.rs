//! Connecting to Janus over WebSocket (subprotocol `janus-protocol`); the loop that then drives
//! [`JanusMachine`] is the shared `ws_driver` (shared with the Blende room client).

use std::time::Instant;

use blende_policy::ServerUrl;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::janus::{JanusAccess, JanusMachine};
use crate::{JoinOptions, SignalCommand, SignalError, SignalHandle};

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
    let ws = crate::ws_driver::open(request).await.map_err(connect_err)?;

    let mut machine = JanusMachine::with_access(options, access);
    machine.start(Instant::now());
    Ok(crate::ws_driver::spawn(ws, machine))
}

impl crate::ws_driver::Machine for JanusMachine {
    const NAME: &'static str = "janus";
    // The call comes back on a new session when this one goes quiet.
    const WATCH_SILENCE: bool = true;

    fn poll_transmit(&mut self) -> Option<String> {
        JanusMachine::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<crate::SignalEvent> {
        JanusMachine::poll_event(self)
    }
    fn is_closed(&self) -> bool {
        JanusMachine::is_closed(self)
    }
    fn handle_message(&mut self, text: &str) -> Result<(), SignalError> {
        JanusMachine::handle_message(self, text)
    }
    fn handle_command(&mut self, command: SignalCommand) {
        JanusMachine::handle_command(self, command);
    }
    fn handle_transport_closed(&mut self, reason: &str) {
        JanusMachine::handle_transport_closed(self, reason);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        JanusMachine::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        JanusMachine::handle_timeout(self, now);
    }
}
