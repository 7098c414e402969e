//! Sender and receiver machines talking through encoded frames, with the receiver's "disk" a
//! plain vector: what it holds when the machine says "verified" must be the sender's file.

use super::*;
use crate::wire::{Frame, decode, encode_chunk, encode_control};

fn document(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn offer_for(data: &[u8]) -> Offer {
    Offer { id: 1, name: "../../etc/passwd".into(), size: data.len() as u64, sha256: sha256(data) }
}

/// The receiving side: the machine plus the bytes its driver wrote.
struct Receiver {
    incoming: Incoming,
    disk: Vec<u8>,
    sent: Vec<Control>,
    verdict: Option<Verdict>,
}

impl Receiver {
    fn new(offer_frame: &[u8]) -> Self {
        let Ok(Frame::Control(Control::Offer { id, name, size, sha256, .. })) = decode(offer_frame) else { panic!("no offer") };
        let offer = Offer::parse(id, &name, size, &sha256).expect("offer");
        Self { incoming: Incoming::new(offer, &Limits::default()).expect("limits"), disk: Vec::new(), sent: Vec::new(), verdict: None }
    }

    /// One frame from the sender, as the driver handles it.
    fn frame(&mut self, bytes: &[u8]) {
        match decode(bytes).expect("well-formed") {
            Frame::Chunk { offset, data, .. } => match self.incoming.chunk(offset, data) {
                Ok(()) => {
                    self.disk.truncate(usize::try_from(offset).expect("small"));
                    self.disk.extend_from_slice(data);
                }
                Err(TransferError::NotReceiving) => {}
                Err(e) => {
                    self.sent.push(self.incoming.failure(&e));
                    self.verdict = Some(Verdict::Failed(e));
                }
            },
            Frame::Control(Control::Done { .. }) => {
                let v = self.incoming.done();
                self.sent.push(self.incoming.verdict_control(&v));
                self.verdict = Some(v);
            }
            Frame::Control(Control::Cancel { .. }) => self.incoming.cancelled_by_peer(),
            Frame::Control(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends everything the sender machine asks for, with `tamper` applied to each chunk's data.
fn send_all(out: &mut Outgoing, data: &[u8], mut tamper: impl FnMut(u64, &mut Vec<u8>)) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some((offset, len)) = out.next_chunk() {
        let start = usize::try_from(offset).expect("small");
        let mut piece = data[start..start + len].to_vec();
        tamper(offset, &mut piece);
        encode_chunk(out.offer().id, offset, &piece, &mut buf);
        frames.push(buf.clone());
        if let Some(done) = out.chunk_sent(len) {
            frames.push(encode_control(&done));
        }
    }
    frames
}

fn start(data: &[u8]) -> (Outgoing, Receiver) {
    let mut out = Outgoing::new(offer_for(data));
    let mut rx = Receiver::new(&encode_control(&out.offer().to_control()));
    let accept = rx.incoming.accept().expect("on offer");
    assert_eq!(out.handle(&accept), Sending::StartAt(0));
    (out, rx)
}

#[test]
fn a_document_arrives_whole_and_verified() {
    let data = document(3 * wire::MAX_CHUNK_BYTES + 17);
    let (mut out, mut rx) = start(&data);
    assert_eq!(rx.incoming.safe_name(), "passwd");
    for f in send_all(&mut out, &data, |_, _| {}) {
        rx.frame(&f);
    }
    assert_eq!(rx.verdict, Some(Verdict::Verified));
    assert_eq!(rx.disk, data);
    assert_eq!(out.handle(&rx.sent[0]), Sending::Over);
    assert_eq!(out.stage(), &Stage::Verified);
}

#[test]
fn an_empty_document_is_done_at_once() {
    let (mut out, mut rx) = start(&[]);
    assert_eq!(out.next_chunk(), None);
    let done = out.finished().expect("done");
    rx.frame(&encode_control(&done));
    assert_eq!(rx.verdict, Some(Verdict::Verified));
}

#[test]
fn a_flipped_bit_is_caught_before_the_file_is_named() {
    let data = document(2 * wire::MAX_CHUNK_BYTES);
    let (mut out, mut rx) = start(&data);
    let frames = send_all(&mut out, &data, |offset, piece| {
        if offset == wire::MAX_CHUNK_BYTES as u64 {
            piece[100] ^= 0x04;
        }
    });
    for f in frames {
        rx.frame(&f);
    }
    assert_eq!(rx.verdict, Some(Verdict::Failed(TransferError::Mismatch)));
    assert!(matches!(rx.incoming.stage(), Stage::Failed(TransferError::Mismatch)));
    assert!(matches!(&rx.sent[0], Control::Failed { reason, .. } if reason.contains("SHA-256")));
    out.handle(&rx.sent[0]);
    assert!(matches!(out.stage(), Stage::Failed(TransferError::Refused(_))));
}

#[test]
fn a_truncated_transfer_is_not_done() {
    let data = document(wire::MAX_CHUNK_BYTES + 5);
    let (mut out, mut rx) = start(&data);
    let frames = send_all(&mut out, &data, |_, _| {});
    // The last chunk never arrives; Done does.
    rx.frame(&frames[0]);
    rx.frame(&frames[2]);
    assert_eq!(
        rx.verdict,
        Some(Verdict::Failed(TransferError::Truncated { announced: data.len() as u64, received: wire::MAX_CHUNK_BYTES as u64 }))
    );
}

#[test]
fn a_sender_that_lies_about_the_size() {
    // Announces 10 bytes, sends 20: refused at the first byte too many.
    let data = document(20);
    let mut offer = offer_for(&data[..10]);
    offer.size = 10;
    let mut rx = Receiver::new(&encode_control(&offer.to_control()));
    rx.incoming.accept();
    let mut buf = Vec::new();
    encode_chunk(1, 0, &data, &mut buf);
    rx.frame(&buf);
    assert_eq!(rx.verdict, Some(Verdict::Failed(TransferError::PastEnd { announced: 10 })));
    assert!(rx.disk.is_empty(), "nothing past the announced size is written");
    // What follows changes nothing.
    rx.frame(&encode_control(&Control::Done { id: 1 }));
    assert!(matches!(rx.incoming.stage(), Stage::Failed(TransferError::PastEnd { .. })));
}

#[test]
fn chunks_out_of_order_or_unasked_are_refused() {
    let data = document(100);
    let offer = offer_for(&data);
    let mut incoming = Incoming::new(offer, &Limits::default()).expect("ok");
    assert_eq!(incoming.chunk(0, &data), Err(TransferError::NotReceiving), "before accept");
    incoming.accept();
    assert_eq!(incoming.chunk(10, &data[10..]), Err(TransferError::OutOfOrder { expected: 0, got: 10 }));
    assert_eq!(incoming.chunk(0, &data), Err(TransferError::NotReceiving), "after the failure");
}

#[test]
fn limits_refuse_before_anything_moves() {
    let data = document(1000);
    let limits = Limits { enabled: true, max_bytes: 999 };
    let err = Incoming::new(offer_for(&data), &limits).expect_err("too large");
    assert_eq!(err, TransferError::TooLarge { size: 1000, limit: 999 });
    assert!(matches!(Incoming::refusal(1, &err), Control::Decline { reason: Some(r), .. } if r.contains("999")));
    let off = Limits { enabled: false, ..Limits::default() };
    assert_eq!(Incoming::new(offer_for(&data), &off).expect_err("off"), TransferError::Disabled);
    assert!(matches!(Offer::parse(1, "x", 1, "abc"), Err(TransferError::BadOffer(_))));
}

#[test]
fn decline_and_cancel_end_both_sides() {
    let data = document(10);
    let mut out = Outgoing::new(offer_for(&data));
    let mut incoming = Incoming::new(offer_for(&data), &Limits::default()).expect("ok");
    let no = incoming.decline().expect("on offer");
    assert_eq!(incoming.accept(), None, "declined is final");
    assert_eq!(out.handle(&no), Sending::Over);
    assert_eq!(out.stage(), &Stage::Declined(None));
    assert_eq!(out.next_chunk(), None);

    let (mut out, mut rx) = start(&document(wire::MAX_CHUNK_BYTES * 2));
    let cancel = out.cancel().expect("running");
    assert_eq!(out.cancel(), None);
    rx.frame(&encode_control(&cancel));
    assert_eq!(rx.incoming.stage(), &Stage::Cancelled { by_us: false });
    assert_eq!(rx.incoming.resume(), None, "a cancelled transfer does not resume");
}

#[test]
fn a_dropped_connection_resumes_from_the_last_written_byte() {
    let data = document(5 * wire::MAX_CHUNK_BYTES + 3);
    let (mut out, mut rx) = start(&data);
    let frames = send_all(&mut out, &data, |_, _| {});
    // Two chunks arrive, then the channel drops: the rest is lost in flight.
    rx.frame(&frames[0]);
    rx.frame(&frames[1]);
    let resume = rx.incoming.resume().expect("moving");
    assert_eq!(resume, Control::Accept { id: 1, from: 2 * wire::MAX_CHUNK_BYTES as u64 });
    assert_eq!(out.handle(&resume), Sending::StartAt(2 * wire::MAX_CHUNK_BYTES as u64));
    for f in send_all(&mut out, &data, |_, _| {}) {
        rx.frame(&f);
    }
    assert_eq!(rx.verdict, Some(Verdict::Verified));
    assert_eq!(rx.disk, data);
}

#[test]
fn a_resume_beyond_the_document_is_refused() {
    let data = document(10);
    let mut out = Outgoing::new(offer_for(&data));
    assert_eq!(out.handle(&Control::Accept { id: 1, from: 11 }), Sending::Over);
    assert!(matches!(out.stage(), Stage::Failed(_)));
}

proptest::proptest! {
    /// Any pattern of drops and resumes ends with the sender's exact bytes, verified.
    #[test]
    fn drops_and_resumes_end_verified(len in 0usize..400_000, drops in proptest::collection::vec(0usize..8, 0..6)) {
        let data = document(len);
        let (mut out, mut rx) = start(&data);
        let mut drops = drops.into_iter();
        let mut buf = Vec::new();
        let mut sent_in_this_connection = 0usize;
        let mut drop_after = drops.next();
        loop {
            if let Some(done) = out.finished() {
                rx.frame(&encode_control(&done));
                break;
            }
            let Some((offset, n)) = out.next_chunk() else { break };
            let start = usize::try_from(offset).expect("small");
            encode_chunk(1, offset, &data[start..start + n], &mut buf);
            let done = out.chunk_sent(n);
            if drop_after == Some(sent_in_this_connection) {
                // The frame (and Done) are lost with the connection; a new one resumes.
                drop_after = drops.next();
                sent_in_this_connection = 0;
                let resume = rx.incoming.resume().expect("moving");
                proptest::prop_assert!(matches!(out.handle(&resume), Sending::StartAt(_)));
                continue;
            }
            sent_in_this_connection += 1;
            rx.frame(&buf);
            if let Some(done) = done {
                rx.frame(&encode_control(&done));
                break;
            }
        }
        proptest::prop_assert_eq!(rx.verdict, Some(Verdict::Verified));
        proptest::prop_assert_eq!(rx.disk, data);
    }
}
