//! Finding each other in a plain Janus room: the `blende-bus/1` messages.
//!
//! A plain Janus VideoRoom has no Blende server to relay the offers of direct connections.
//! Every Blende client there publishes with a data channel; Janus relays what a publisher sends
//! on it to everyone subscribed to that publisher. Blende clients use that relay only to find
//! each other and to exchange the SDP of a direct data connection ([`Bus::Offer`],
//! [`Bus::Answer`]); chat and documents then travel on the direct connection, which Janus never
//! sees. What goes over the relay is signalling, like what a Blende room server relays: a
//! hostile Janus could rewrite the DTLS fingerprints in it, and the identity check
//! ([`crate::identity`]) is what shows that.
//!
//! Each message names its receiver (`to`, a feed id): everyone subscribed to the sender gets
//! it, the others ignore it. The sender is the feed whose subscription it arrived on, never a
//! field of the message.
//!
//! Finding each other: when our subscription to feed X has its data channel open, we send
//! `hello` to X. It arrives when X's subscription to us is open too; of two hellos at least the
//! later one arrives. Whoever receives a hello knows both relays work: the member with the lower
//! feed id offers, the other replies with a `hello` marked `reply` so the lower one offers.

use serde::{Deserialize, Serialize};

/// The first bytes of every bus message, so a Blende client never mistakes a browser's data
/// (a Janus demo's chat text) for one of ours.
pub const MAGIC: &[u8] = b"blende-bus/1 ";
/// An SDP offer with its candidates is a few kilobytes.
pub const MAX_BUS_BYTES: usize = 32 * 1024;

/// One message on the Janus relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Bus {
    /// "I am a Blende client and hear you." `reply`: an answer to the receiver's hello.
    Hello { to: String, reply: bool },
    /// The offer of a direct data connection.
    Offer { to: String, sdp: String },
    /// The answer to the receiver's offer.
    Answer { to: String, sdp: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusError {
    /// Not a Blende bus message at all (another client's data): ignore it quietly.
    #[error("not a blende-bus/1 message")]
    Foreign,
    #[error("bus message of {0} bytes (at most {MAX_BUS_BYTES})")]
    TooLong(usize),
    #[error("malformed bus message: {0}")]
    Malformed(String),
}

impl Bus {
    /// The feed this message is meant for.
    pub fn to(&self) -> &str {
        match self {
            Bus::Hello { to, .. } | Bus::Offer { to, .. } | Bus::Answer { to, .. } => to,
        }
    }

    /// `MAGIC` followed by the JSON message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        // Serializing these plain enums cannot fail.
        out.extend_from_slice(serde_json::to_string(self).unwrap_or_default().as_bytes());
        out
    }
}

/// Parses one message from the relay, strictly.
///
/// # Errors
/// [`BusError::Foreign`] for data that does not start with [`MAGIC`], [`BusError::TooLong`] and
/// [`BusError::Malformed`] for a Blende message that cannot be one.
pub fn decode(message: &[u8]) -> Result<Bus, BusError> {
    let Some(json) = message.strip_prefix(MAGIC) else { return Err(BusError::Foreign) };
    if message.len() > MAX_BUS_BYTES {
        return Err(BusError::TooLong(message.len()));
    }
    let bus: Bus = serde_json::from_slice(json).map_err(|e| BusError::Malformed(e.to_string()))?;
    let (Bus::Hello { to, .. } | Bus::Offer { to, .. } | Bus::Answer { to, .. }) = &bus;
    if to.is_empty() || to.len() > 64 {
        return Err(BusError::Malformed("`to` is not a feed id".into()));
    }
    Ok(bus)
}

/// Whose turn it is to offer between two feed ids: numeric ids compare as numbers (Janus's
/// own), anything else as text; both ends decide the same.
pub fn offers_first(me: &str, them: &str) -> bool {
    match (me.parse::<u64>(), them.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => me < them,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_the_receiver() {
        for bus in [
            Bus::Hello { to: "4711".into(), reply: false },
            Bus::Offer { to: "12".into(), sdp: "v=0\r\n".into() },
            Bus::Answer { to: "12".into(), sdp: "v=0\r\n".into() },
        ] {
            let bytes = bus.encode();
            assert!(bytes.starts_with(MAGIC));
            assert_eq!(decode(&bytes), Ok(bus.clone()));
        }
        assert_eq!(Bus::Hello { to: "9".into(), reply: true }.to(), "9");
    }

    #[test]
    fn foreign_long_and_malformed_messages_are_refused() {
        assert_eq!(decode(b"hello from a browser"), Err(BusError::Foreign));
        assert_eq!(decode(b""), Err(BusError::Foreign));
        let mut long = MAGIC.to_vec();
        long.resize(MAX_BUS_BYTES + 1, b' ');
        assert_eq!(decode(&long), Err(BusError::TooLong(MAX_BUS_BYTES + 1)));
        for bad in [
            &br#"blende-bus/1 {"type":"hello","to":"1"}"#[..],
            br#"blende-bus/1 {"type":"hello","to":"1","reply":false,"from":"2"}"#,
            br#"blende-bus/1 {"type":"chat","to":"1","text":"x"}"#,
            br#"blende-bus/1 {"type":"offer","to":"","sdp":"v=0"}"#,
            b"blende-bus/1 \xff\xfe",
        ] {
            assert!(matches!(decode(bad), Err(BusError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn exactly_one_of_two_offers() {
        for (a, b) in [("7", "12"), ("100", "99"), ("abc", "abd"), ("5", "x")] {
            assert_ne!(offers_first(a, b), offers_first(b, a), "{a} {b}");
        }
        assert!(offers_first("9", "10"), "numbers compare as numbers");
        assert!(!offers_first("3", "3"));
    }
}
