//! The `blende-p2p/1` data channel: chat and documents between two participants.
//!
//! A publisher peer made with [`crate::PeerConfig::data_channel`] opens it; the answering side
//! gets it from the offer. Either way one task polls it and turns its events into
//! [`RtcEvent::DataOpen`] (with the [`DataLink`] to send on), [`RtcEvent::Data`] and
//! [`RtcEvent::DataClosed`]. Received messages wait for room in the peer's event channel rather
//! than being dropped: a slow consumer slows the sender down (SCTP flow control), it never
//! loses a chunk.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use crate::{RtcError, RtcEvent};

/// The channel's label and subprotocol (the protocol version on it).
pub const LABEL: &str = "blende-p2p/1";
/// Unacknowledged bytes a channel may hold before [`DataLink::send`] waits.
pub const SEND_BUFFER_BYTES: usize = 1024 * 1024;

/// Where to send on an open data channel. Cheap to clone.
#[derive(Clone)]
pub struct DataLink {
    channel: Arc<dyn DataChannel>,
}

impl std::fmt::Debug for DataLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLink").field("id", &self.channel.id()).finish()
    }
}

impl DataLink {
    /// Sends one message (copied once: the stack owns what it queues, the caller keeps its
    /// buffer); waits while [`SEND_BUFFER_BYTES`] are unacknowledged.
    ///
    /// # Errors
    /// [`RtcError::DataClosed`] once the channel or its connection is gone.
    pub async fn send(&self, message: &[u8]) -> Result<(), RtcError> {
        self.channel.send(BytesMut::from(message)).await.map_err(|_| RtcError::DataClosed)
    }

    /// Closes the channel (the connection stays).
    pub async fn close(&self) {
        let _ = self.channel.close().await;
    }
}

/// Polls `channel` until it closes.
pub(crate) async fn run(channel: Arc<dyn DataChannel>, events: mpsc::Sender<RtcEvent>) {
    while let Some(event) = channel.poll().await {
        let out = match event {
            DataChannelEvent::OnOpen => RtcEvent::DataOpen(DataLink { channel: Arc::clone(&channel) }),
            DataChannelEvent::OnMessage(message) => RtcEvent::Data(message.data.freeze()),
            DataChannelEvent::OnClose => break,
            _ => continue,
        };
        if events.send(out).await.is_err() {
            return;
        }
    }
    let _ = events.send(RtcEvent::DataClosed).await;
}
