//! WHEP receiving (draft-ietf-wish-whep): the client offers receive-only media, the server
//! answers with the stream it serves, DELETE ends the session. The endpoint is one "feed":
//! [`connect`] reports it as the only participant; the engine asks for it with
//! [`SignalCommand::Subscribe`], gets [`SignalEvent::SubscriptionNeedsOffer`], sends its offer as
//! [`SignalCommand::OfferSubscription`] and receives [`SignalEvent::SubscriptionAnswer`].
//! The HTTP exchange (and TLS for `whep+https`) is [`crate::http`]. Receive only.

use blende_policy::ServerUrl;
use tokio::sync::mpsc;

use crate::http::{delete_session, post_offer};
use crate::{COMMAND_QUEUE, EVENT_QUEUE, JoinOptions, Participant, SignalCommand, SignalError, SignalEvent, SignalHandle};

/// The feed id of the endpoint's stream.
pub const FEED: &str = crate::WHEP_FEED;

/// Starts the WHEP adapter. No network traffic until the engine subscribes.
///
/// # Errors
/// Never at present; kept fallible like the other adapters.
pub fn connect(url: &ServerUrl, options: JoinOptions) -> Result<SignalHandle, SignalError> {
    let (commands_tx, mut commands_rx) = mpsc::channel::<SignalCommand>(COMMAND_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let url = url.clone();
    tokio::spawn(async move {
        let token = options.password.clone();
        let stream = Participant { id: FEED.to_owned(), display: Some(url.host.clone()) };
        let _ = events_tx.send(SignalEvent::Joined { participant_id: "whep-viewer".into(), participants: vec![stream] }).await;
        let mut resource: Option<String> = None;
        while let Some(cmd) = commands_rx.recv().await {
            match cmd {
                SignalCommand::Subscribe { feed } => {
                    let _ = events_tx.send(SignalEvent::SubscriptionNeedsOffer { feed }).await;
                }
                SignalCommand::OfferSubscription { feed, sdp } => {
                    let result = post_offer(&url, token.as_deref(), &sdp).await;
                    match result {
                        Ok(r) => {
                            resource = Some(r.resource);
                            let _ = events_tx.send(SignalEvent::SubscriptionAnswer { feed, sdp: r.answer_sdp }).await;
                        }
                        Err(e) => {
                            let _ = events_tx.send(SignalEvent::Error { message: e.to_string(), fatal: true }).await;
                        }
                    }
                }
                SignalCommand::Publish { .. } => {
                    let _ = events_tx
                        .send(SignalEvent::Error { message: "WHEP only receives; use WHIP or Janus to publish".into(), fatal: false })
                        .await;
                }
                SignalCommand::Unsubscribe { .. } | SignalCommand::Leave => break,
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
