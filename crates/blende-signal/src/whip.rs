//! WHIP publishing (RFC 9725): POST the offer, read the answer and the `Location` of the session
//! resource, DELETE it to leave (§4.2, §4.3). Publish only: subscriptions are refused.
//! The HTTP exchange (and TLS for `whip+https`) is [`crate::http`].
//!
//! Trickle and ICE restart by PATCH (§4.3.1) are not sent: our offer carries every candidate
//! (gathering completes before the POST), which every WHIP server must accept.

use blende_policy::ServerUrl;
use tokio::sync::mpsc;

use crate::http::{delete_session, post_offer};
use crate::{COMMAND_QUEUE, EVENT_QUEUE, JoinOptions, SignalCommand, SignalError, SignalEvent, SignalHandle};

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
                    let result = post_offer(&url, token.as_deref(), &sdp).await;
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
            delete_session(&url, &res, token.as_deref()).await;
        }
        let _ = events_tx.send(SignalEvent::Closed { reason: "left".into() }).await;
    });
    Ok(SignalHandle { commands: commands_tx, events: events_rx })
}
