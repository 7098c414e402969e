//! A document receiver fed what a hostile peer could send on the `blende-p2p/1` channel:
//! frames of two-byte little-endian length + bytes. It may refuse any of them and never
//! panics; what it accepts never passes the announced size, and it says "verified" only for
//! bytes whose SHA-256 is the one the offer announced.
#![no_main]

use blende_p2p::transfer::{Incoming, Limits, Offer, Verdict, sha256};
use blende_p2p::wire::{Control, Frame, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut incoming: Option<Incoming> = None;
    let mut accepted = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let message = &rest[2..end];
        rest = &rest[end..];
        let Ok(frame) = decode(message) else { continue };
        match (frame, incoming.as_mut()) {
            (Frame::Control(Control::Offer { id, name, size, sha256, .. }), None) => {
                let limits = Limits { enabled: true, max_bytes: 1 << 20 };
                if let Ok(mut i) = Offer::parse(id, &name, size, &sha256).and_then(|o| Incoming::new(o, &limits)) {
                    assert!(!i.safe_name().contains(['/', '\\']));
                    let _ = i.accept();
                    incoming = Some(i);
                }
            }
            (Frame::Chunk { offset, data, .. }, Some(i)) => {
                if i.chunk(offset, data).is_ok() {
                    accepted.extend_from_slice(data);
                }
                assert!(i.received() <= i.offer().size);
                assert_eq!(i.received(), accepted.len() as u64);
            }
            (Frame::Control(Control::Done { .. }), Some(i)) => {
                if i.done() == Verdict::Verified {
                    assert_eq!(sha256(&accepted), i.offer().sha256);
                    assert_eq!(accepted.len() as u64, i.offer().size);
                }
            }
            _ => {}
        }
    }
});
