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
