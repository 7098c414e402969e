//! The frames on a `blende-p2p/1` data channel.
//!
//! One data-channel message is one frame. Its first byte says what follows:
//! - `J`: a UTF-8 JSON [`Control`] message of at most [`MAX_CONTROL_BYTES`];
//! - `C`: a document chunk: transfer id (u32, big endian), offset (u64, big endian), then at
//!   most [`MAX_CHUNK_BYTES`] of data.
//!
//! Chunks are binary so a 500 MB document is not inflated by base64; control messages are JSON
//! so they stay readable in a capture and extensible (unknown fields are refused, unknown
//! message types too: a newer peer gets an error, not a silent misreading).

use serde::{Deserialize, Serialize};

/// The data channel's label and subprotocol.
pub const PROTOCOL: &str = "blende-p2p/1";
/// Control messages are small; a chat text of [`crate::chat::MAX_CHARS`] fits.
pub const MAX_CONTROL_BYTES: usize = 16 * 1024;
/// `C`, id, offset.
pub const CHUNK_HEADER_BYTES: usize = 1 + 4 + 8;
/// A whole frame fits the 64 KiB that webrtc-rs and every browser accept as one SCTP message
/// (`a=max-message-size` defaults to 65536 in webrtc-rs).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Data per chunk: what is left of a frame after the header.
pub const MAX_CHUNK_BYTES: usize = MAX_FRAME_BYTES - CHUNK_HEADER_BYTES;

const TAG_CONTROL: u8 = b'J';
const TAG_CHUNK: u8 = b'C';

/// What one participant tells another about chat and documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// A chat message. `private`: meant for the receiver alone (a message to everyone is sent
    /// on every participant's channel with `private: false`).
    Chat { text: String, private: bool },
    /// A document on offer: its name as the sender calls it, its size and the SHA-256 of the
    /// whole file (64 lowercase hex digits). `to_all`: offered to everyone, under this token,
    /// which a Blende room server confirms only for a presenter (`document_offered`).
    Offer {
        id: u32,
        name: String,
        size: u64,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_all: Option<String>,
    },
    /// The receiver accepts: send from byte `from` (0, or where a dropped transfer stopped).
    Accept { id: u32, from: u64 },
    /// The receiver does not want it (or may not take it: `reason`).
    Decline {
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The sender has sent every byte.
    Done { id: u32 },
    /// Either side stops the transfer.
    Cancel { id: u32 },
    /// The receiver checked size and SHA-256: the document is complete.
    Verified { id: u32 },
    /// The receiver threw the data away: `reason` says why.
    Failed { id: u32, reason: String },
}

/// One decoded frame. Chunk data borrows from the message (no copy on the receive path).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Control(Control),
    Chunk { id: u32, offset: u64, data: &'a [u8] },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("unknown frame type 0x{0:02x}")]
    UnknownFrame(u8),
    #[error("control message of {0} bytes (at most {MAX_CONTROL_BYTES})")]
    ControlTooLong(usize),
    #[error("malformed control message: {0}")]
    Malformed(String),
    #[error("chunk header cut short ({0} bytes)")]
    ShortChunk(usize),
    #[error("chunk of {0} bytes (at most {MAX_CHUNK_BYTES})")]
    ChunkTooLong(usize),
}

/// Parses one message a peer sent.
///
/// # Errors
/// Anything that is not a well-formed frame of this protocol.
pub fn decode(message: &[u8]) -> Result<Frame<'_>, WireError> {
    let (&tag, rest) = message.split_first().ok_or(WireError::Empty)?;
    match tag {
        TAG_CONTROL => {
            if rest.len() > MAX_CONTROL_BYTES {
                return Err(WireError::ControlTooLong(rest.len()));
            }
            serde_json::from_slice(rest).map(Frame::Control).map_err(|e| WireError::Malformed(e.to_string()))
        }
        TAG_CHUNK => {
            if message.len() < CHUNK_HEADER_BYTES {
                return Err(WireError::ShortChunk(message.len()));
            }
            let data = &message[CHUNK_HEADER_BYTES..];
            if data.len() > MAX_CHUNK_BYTES {
                return Err(WireError::ChunkTooLong(data.len()));
            }
            let id = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let mut offset = [0u8; 8];
            offset.copy_from_slice(&rest[4..12]);
            Ok(Frame::Chunk { id, offset: u64::from_be_bytes(offset), data })
        }
        other => Err(WireError::UnknownFrame(other)),
    }
}

/// A control message as one data-channel message.
#[must_use]
pub fn encode_control(control: &Control) -> Vec<u8> {
    let mut out = vec![TAG_CONTROL];
    // Serializing these plain types cannot fail.
    serde_json::to_writer(&mut out, control).unwrap_or_default();
    out
}

/// Writes a chunk frame into `out` (cleared first, its allocation reused): the header, then
/// `data`.
pub fn encode_chunk(id: u32, offset: u64, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(CHUNK_HEADER_BYTES + data.len());
    out.push(TAG_CHUNK);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(data);
}

/// A SHA-256 as the wire carries it.
#[must_use]
pub fn hex(digest: &[u8; 32]) -> String {
    use std::fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses 64 lowercase hex digits.
///
/// # Errors
/// Anything else.
pub fn parse_hex(text: &str) -> Result<[u8; 32], WireError> {
    let bad = || WireError::Malformed("sha256 must be 64 lowercase hex digits".into());
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(bad());
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_round_trip() {
        let msgs = [
            Control::Chat { text: "Aktenzeichen 4711 – bitte nicht laut".into(), private: true },
            Control::Offer { id: 7, name: "Bescheid.pdf".into(), size: 1234, sha256: hex(&[0xab; 32]), to_all: None },
            Control::Offer { id: 8, name: "Plan.pdf".into(), size: 1, sha256: hex(&[0xab; 32]), to_all: Some("0f".repeat(16)) },
            Control::Accept { id: 7, from: 65_536 },
            Control::Decline { id: 7, reason: None },
            Control::Decline { id: 7, reason: Some("too large".into()) },
            Control::Done { id: 7 },
            Control::Cancel { id: 7 },
            Control::Verified { id: 7 },
            Control::Failed { id: 7, reason: "SHA-256".into() },
        ];
        for m in msgs {
            assert_eq!(decode(&encode_control(&m)), Ok(Frame::Control(m)));
        }
    }

    #[test]
    fn chunk_round_trip_reuses_the_buffer() {
        let mut buf = Vec::with_capacity(CHUNK_HEADER_BYTES + 10);
        let cap = buf.capacity();
        encode_chunk(3, 1 << 40, b"0123456789", &mut buf);
        assert_eq!(buf.capacity(), cap);
        assert_eq!(decode(&buf), Ok(Frame::Chunk { id: 3, offset: 1 << 40, data: b"0123456789" }));
    }

    #[test]
    fn hostile_frames_are_errors() {
        assert_eq!(decode(b""), Err(WireError::Empty));
        assert_eq!(decode(b"X{}"), Err(WireError::UnknownFrame(b'X')));
        assert_eq!(decode(b"C\0\0\0\x01\0\0"), Err(WireError::ShortChunk(7)));
        let mut big = vec![b'C'; CHUNK_HEADER_BYTES + MAX_CHUNK_BYTES + 1];
        big[0] = b'C';
        assert_eq!(decode(&big), Err(WireError::ChunkTooLong(MAX_CHUNK_BYTES + 1)));
        let mut long = vec![b'J'];
        long.extend(std::iter::repeat_n(b' ', MAX_CONTROL_BYTES + 1));
        assert_eq!(decode(&long), Err(WireError::ControlTooLong(MAX_CONTROL_BYTES + 1)));
        for bad in [
            &br#"J{"type":"chat","text":"x"}"#[..],
            br#"J{"type":"chat","text":"x","private":false,"extra":1}"#,
            br#"J{"type":"exec","cmd":"rm"}"#,
            br#"J{"type":"accept","id":-1,"from":0}"#,
            br#"J[1,2]"#,
            b"J\xff\xfe",
        ] {
            assert!(matches!(decode(bad), Err(WireError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn hex_is_strict() {
        let d = [0x0f; 32];
        assert_eq!(parse_hex(&hex(&d)), Ok(d));
        assert!(parse_hex(&hex(&d).to_uppercase()).is_err());
        assert!(parse_hex("00").is_err());
        assert!(parse_hex(&"g".repeat(64)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
