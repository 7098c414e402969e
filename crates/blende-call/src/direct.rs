//! What participants send each other directly: chat, documents and the identity check, over the
//! `blende-p2p/1` data channels of the mesh PeerConnections.
//!
//! [`Direct`] is the [`crate::Call`]'s bookkeeping for it, as pure as the rest of the machine:
//! which data links are open to whom, the identity code each pair of certificates gives, and
//! one [`Outgoing`]/[`Incoming`] transfer machine per document and person. The driver reads and
//! writes files only when an [`Action`] says so and reports back with
//! [`crate::Call::handle_transfer`]; chunk data passes through as [`Bytes`] slices of the
//! received message (no copy).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use blende_p2p::transfer::{Sending, Stage};
use blende_p2p::wire::{self, Control, Frame};
use blende_p2p::{IdentityCode, Incoming, Limits, Offer, Outgoing, TransferError, Verdict};
use bytes::Bytes;

use blende_signal::SignalCommand;
use blende_signal::blende::RoomAction;

use crate::event::{CallEvent, DocumentEvent};
use crate::{Action, DocId, PeerId, Route, TransferId};

/// A progress event per transfer at most this often.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Offers from one participant still waiting for an answer; more are declined unseen.
pub const MAX_PENDING_OFFERS: usize = 16;
/// A document offered to everyone in a Blende room waits this long for the room server's
/// confirmation that its sender is a presenter; without it, it is declined unseen.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(10);
/// Confirmations kept for offers still on their way.
const MAX_CONFIRMED: usize = 64;

/// An offer to everyone that waits for the room server's word.
#[derive(Debug)]
struct Held {
    from: String,
    peer: PeerId,
    id: u32,
    name: String,
    size: u64,
    sha256: String,
    token: String,
    until: Instant,
}

/// The queues a [`Direct`] step writes into (the call's own).
pub(crate) struct Out<'a> {
    pub actions: &'a mut VecDeque<Action>,
    pub events: &'a mut VecDeque<CallEvent>,
}

impl Out<'_> {
    fn send(&mut self, peer: PeerId, control: &Control) {
        self.actions.push_back(Action::SendData { peer, message: wire::encode_control(control) });
    }

    fn doc(&mut self, event: DocumentEvent) {
        self.events.push_back(CallEvent::Document(event));
    }

    fn error(&mut self, message: String) {
        self.events.push_back(CallEvent::Error { message, fatal: false });
    }
}

/// At most one progress event per [`PROGRESS_EVERY`]; one owed after a burst comes at the
/// deadline ([`Direct::poll_timeout`]).
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    /// Bytes not yet reported.
    owed: Option<u64>,
}

impl Throttle {
    /// `Some(bytes)` to report now.
    fn update(&mut self, bytes: u64, now: Instant) -> Option<u64> {
        if self.last.is_none_or(|t| now.saturating_duration_since(t) >= PROGRESS_EVERY) {
            self.last = Some(now);
            self.owed = None;
            Some(bytes)
        } else {
            self.owed = Some(bytes);
            None
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.owed.and(self.last).map(|t| t + PROGRESS_EVERY)
    }

    fn due(&mut self, now: Instant) -> Option<u64> {
        if self.deadline().is_some_and(|d| now >= d) {
            self.last = Some(now);
            return self.owed.take();
        }
        None
    }
}

#[derive(Debug)]
struct Identity {
    ours: [u8; 32],
    theirs: [u8; 32],
    checked: bool,
}

#[derive(Debug)]
struct Sent {
    to: String,
    doc: DocId,
    machine: Outgoing,
    /// The link the bytes go on (chunks and `Done` on one channel keep their order).
    link: Option<PeerId>,
    /// The receiver has accepted once (for the `Accepted` event).
    accepted: bool,
    progress: Throttle,
    /// Offered to everyone under this token.
    token: Option<String>,
}

#[derive(Debug)]
struct Received {
    from: String,
    machine: Incoming,
    /// The temporary file exists (the driver reported it).
    prepared: bool,
    progress: Throttle,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Direct {
    /// Open data links per participant, oldest first: we send on the first.
    links: BTreeMap<String, Vec<PeerId>>,
    identities: BTreeMap<String, Identity>,
    sent: BTreeMap<TransferId, Sent>,
    received: BTreeMap<TransferId, Received>,
    /// (sender, their wire id) → our id for it.
    incoming_ids: BTreeMap<(String, u32), TransferId>,
    next_transfer: u64,
    next_wire_id: u32,
    /// Files being opened, and to whom they go (`None`: everyone).
    opening: BTreeMap<DocId, Option<String>>,
    next_doc: u64,
    limits: Limits,
    /// A moderator switched the meeting's chat off (Blende rooms).
    chat_off: bool,
    /// A Blende room: its server confirms offers to everyone (presenters only).
    server_confirms: bool,
    /// Random bytes of this call, for the tokens of our offers to everyone.
    secret: [u8; 32],
    next_token: u64,
    /// (sender, token) the room server confirmed, newest last.
    confirmed: VecDeque<(String, String)>,
    held: Vec<Held>,
}

impl Direct {
    /// `server_confirms`: a Blende room, whose server must confirm every offer to everyone.
    pub fn new(limits: Limits, secret: [u8; 32], server_confirms: bool) -> Self {
        Self { limits, secret, server_confirms, ..Self::default() }
    }

    /// A token for our next offer to everyone: 128 bits the server cannot link to the file.
    fn new_token(&mut self) -> String {
        self.next_token += 1;
        let mut input = self.secret.to_vec();
        input.extend_from_slice(&self.next_token.to_be_bytes());
        let digest = blende_p2p::transfer::sha256(&input);
        digest[..16].iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    // ---- links and identity ----

    /// A data link to `participant` opened on `peer`: transfers that stopped mid-way resume.
    pub fn link_open(&mut self, participant: &str, peer: PeerId, out: &mut Out<'_>) {
        let links = self.links.entry(participant.to_owned()).or_default();
        if links.contains(&peer) {
            return;
        }
        links.push(peer);
        if links.len() == 1 {
            out.events.push_back(CallEvent::DirectLink { participant: participant.to_owned(), open: true });
        }
        for r in self.received.values().filter(|r| r.from == participant && r.prepared) {
            if let Some(resume) = r.machine.resume() {
                out.send(peer, &resume);
            }
        }
    }

    /// `peer`'s data link closed (or the PeerConnection went away).
    pub fn link_closed(&mut self, peer: PeerId, out: &mut Out<'_>) {
        let mut emptied = None;
        for (participant, links) in &mut self.links {
            if let Some(i) = links.iter().position(|p| *p == peer) {
                links.remove(i);
                if links.is_empty() {
                    emptied = Some(participant.clone());
                }
            }
        }
        if let Some(participant) = emptied {
            self.links.remove(&participant);
            out.events.push_back(CallEvent::DirectLink { participant, open: false });
        }
        for s in self.sent.values_mut().filter(|s| s.link == Some(peer)) {
            s.link = None;
        }
    }

    /// The certificates a link's handshake showed. The same pair on every link to a person
    /// gives the same code; a different one replaces the code and clears the "checked" mark.
    pub fn fingerprints(&mut self, participant: &str, ours: [u8; 32], theirs: [u8; 32], out: &mut Out<'_>) {
        let code = IdentityCode::new(&ours, &theirs);
        let changed = match self.identities.get(participant) {
            Some(known) if known.ours == ours && known.theirs == theirs => return,
            Some(_) => true,
            None => false,
        };
        self.identities.insert(participant.to_owned(), Identity { ours, theirs, checked: false });
        out.events.push_back(CallEvent::Identity { participant: participant.to_owned(), code: code.digits(), checked: false, changed });
    }

    /// The user compared the code aloud and marks the person as checked (or takes it back).
    pub fn identity_checked(&mut self, participant: &str, checked: bool, out: &mut Out<'_>) {
        let Some(identity) = self.identities.get_mut(participant) else {
            out.error(format!("no identity code for {participant} yet: it appears once the direct connection is up"));
            return;
        };
        identity.checked = checked;
        let code = IdentityCode::new(&identity.ours, &identity.theirs).digits();
        out.events.push_back(CallEvent::Identity { participant: participant.to_owned(), code, checked, changed: false });
    }

    /// A participant left: their links, code and transfers go.
    pub fn participant_left(&mut self, participant: &str, out: &mut Out<'_>) {
        if self.links.remove(participant).is_some() {
            out.events.push_back(CallEvent::DirectLink { participant: participant.to_owned(), open: false });
        }
        self.identities.remove(participant);
        let sent: Vec<TransferId> = self.sent.iter().filter(|(_, s)| s.to == participant).map(|(t, _)| *t).collect();
        for t in sent {
            if let Some(s) = self.sent.get_mut(&t)
                && s.machine.cancel().is_some()
            {
                out.actions.push_back(Action::StopStream { transfer: t });
                out.doc(DocumentEvent::Cancelled { transfer: t, by_us: false });
            }
            self.forget_sent(t, out);
        }
        let received: Vec<TransferId> = self.received.iter().filter(|(_, r)| r.from == participant).map(|(t, _)| *t).collect();
        for t in received {
            if let Some(r) = self.received.get_mut(&t)
                && !r.machine.stage().is_over()
            {
                r.machine.cancelled_by_peer();
                out.doc(DocumentEvent::Cancelled { transfer: t, by_us: false });
            }
            self.forget_received(t, out);
        }
    }

    fn link_to(&self, participant: &str) -> Option<PeerId> {
        self.links.get(participant).and_then(|l| l.first().copied())
    }

    // ---- chat ----

    /// The room server reports the meeting's chat switch: while it is off nothing is sent, and
    /// what arrives anyway (from a client that ignores the switch) is dropped unshown.
    pub fn set_chat(&mut self, enabled: bool, out: &mut Out<'_>) {
        self.chat_off = !enabled;
        out.events.push_back(CallEvent::ChatEnabled { enabled });
    }

    /// Our chat message, to one participant or to everyone we have a link to.
    pub fn chat(&mut self, to: Option<&str>, text: &str, out: &mut Out<'_>) {
        if self.chat_off {
            return out.error("chat: the moderator switched chat off for this meeting".into());
        }
        let text = match blende_p2p::chat::clean_text(text) {
            Ok(t) => t,
            Err(e) => return out.error(format!("chat: {e}")),
        };
        let targets: Vec<(String, PeerId)> = match to {
            Some(id) => match self.link_to(id) {
                Some(peer) => vec![(id.to_owned(), peer)],
                None => return out.error(format!("chat: no direct connection to {id}")),
            },
            None => self.links.iter().filter_map(|(p, l)| l.first().map(|peer| (p.clone(), *peer))).collect(),
        };
        if targets.is_empty() {
            return out.error("chat: nobody to write to yet".into());
        }
        let control = Control::Chat { text: text.clone(), private: to.is_some() };
        for (_, peer) in &targets {
            out.send(*peer, &control);
        }
        out.events.push_back(CallEvent::Chat { from: None, private_with: to.map(str::to_owned), text });
    }

    // ---- documents: sending ----

    /// The user wants to send the file at `path`: the driver opens and hashes it first.
    pub fn open(&mut self, path: String, to: Option<String>, out: &mut Out<'_>) {
        if let Some(id) = &to
            && self.link_to(id).is_none()
        {
            return out.error(format!("document: no direct connection to {id}"));
        }
        self.next_doc += 1;
        let doc = DocId(self.next_doc);
        self.opening.insert(doc, to);
        out.actions.push_back(Action::OpenDocument { doc, path });
    }

    pub fn open_failed(&mut self, doc: DocId, reason: &str, out: &mut Out<'_>) {
        if self.opening.remove(&doc).is_some() {
            out.error(format!("document: {reason}"));
        }
        out.actions.push_back(Action::ForgetDocument { doc });
    }

    /// `doc` is open: offer it to whom [`Direct::open`] was asked, or to everyone we have a
    /// link to.
    pub fn offer(&mut self, doc: DocId, name: &str, size: u64, sha256: [u8; 32], out: &mut Out<'_>) {
        let Some(to) = self.opening.remove(&doc) else {
            return out.actions.push_back(Action::ForgetDocument { doc });
        };
        let to = to.as_deref();
        let targets: Vec<(String, PeerId)> = match to {
            Some(id) => match self.link_to(id) {
                Some(peer) => vec![(id.to_owned(), peer)],
                None => {
                    out.error(format!("document: no direct connection to {id}"));
                    return out.actions.push_back(Action::ForgetDocument { doc });
                }
            },
            None => self.links.iter().filter_map(|(p, l)| l.first().map(|peer| (p.clone(), *peer))).collect(),
        };
        if targets.is_empty() {
            out.error("document: nobody to send it to yet".into());
            return out.actions.push_back(Action::ForgetDocument { doc });
        }
        // To everyone: the room server hears the token first (and checks our role).
        let token = to.is_none().then(|| self.new_token());
        if let (Some(offer), true) = (&token, self.server_confirms) {
            let command = SignalCommand::Room(RoomAction::DocumentOffer { offer: offer.clone() });
            out.actions.push_back(Action::Signal { route: Route::Main, command });
        }
        for (participant, peer) in targets {
            self.next_wire_id = self.next_wire_id.wrapping_add(1);
            let offer = Offer { id: self.next_wire_id, name: name.to_owned(), size, sha256 };
            let mut control = offer.to_control();
            if let Control::Offer { to_all, .. } = &mut control {
                to_all.clone_from(&token);
            }
            out.send(peer, &control);
            let transfer = self.new_transfer();
            out.doc(DocumentEvent::Sending { transfer, to: participant.clone(), name: name.to_owned(), size });
            let sent = Sent {
                to: participant,
                doc,
                machine: Outgoing::new(offer),
                link: Some(peer),
                accepted: false,
                progress: Throttle::default(),
                token: token.clone(),
            };
            self.sent.insert(transfer, sent);
        }
    }

    /// The driver's stream of `transfer` has handed `bytes` (from the start of the file) to
    /// the channel.
    pub fn sent_progress(&mut self, transfer: TransferId, bytes: u64, now: Instant, out: &mut Out<'_>) {
        let Some(s) = self.sent.get_mut(&transfer) else { return };
        if let Some(bytes) = s.progress.update(bytes, now) {
            out.doc(DocumentEvent::Progress { transfer, bytes, size: s.machine.offer().size });
        }
    }

    /// The room server refused our offer to everyone (we are no presenter): the offers that
    /// nobody answered yet are withdrawn.
    pub fn broadcast_refused(&mut self, message: &str, out: &mut Out<'_>) {
        out.error(format!("document to everyone: {message}"));
        let open: Vec<TransferId> =
            self.sent.iter().filter(|(_, s)| s.token.is_some() && *s.machine.stage() == Stage::Offered).map(|(t, _)| *t).collect();
        for transfer in open {
            self.cancel(transfer, out);
        }
    }

    /// The room server confirmed that `participant` offers a document to everyone under
    /// `token`: an offer that waited for it is shown now, one still on its way will be.
    pub fn confirmed(&mut self, participant: &str, token: String, out: &mut Out<'_>) {
        if let Some(i) = self.held.iter().position(|h| h.from == participant && h.token == token) {
            let h = self.held.remove(i);
            return self.offered(&h.from, h.peer, h.id, &h.name, h.size, &h.sha256, true, out);
        }
        if self.confirmed.len() == MAX_CONFIRMED {
            self.confirmed.pop_front();
        }
        self.confirmed.push_back((participant.to_owned(), token));
    }

    /// When a progress event is owed next, or a held offer runs out of time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sent = self.sent.values().filter_map(|s| s.progress.deadline());
        let received = self.received.values().filter_map(|r| r.progress.deadline());
        let held = self.held.iter().map(|h| h.until);
        sent.chain(received).chain(held).min()
    }

    /// Progress owed after a burst; held offers the server never confirmed are declined.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Out<'_>) {
        let (expired, held): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held).into_iter().partition(|h| now >= h.until);
        self.held = held;
        for h in expired {
            let reason = "the room server did not confirm an offer to everyone (only presenters may make one)".to_owned();
            out.send(h.peer, &Control::Decline { id: h.id, reason: Some(reason.clone()) });
            out.doc(DocumentEvent::Refused { from: h.from, size: h.size, reason });
        }
        for (t, s) in &mut self.sent {
            if let Some(bytes) = s.progress.due(now) {
                out.doc(DocumentEvent::Progress { transfer: *t, bytes, size: s.machine.offer().size });
            }
        }
        for (t, r) in &mut self.received {
            if let Some(bytes) = r.progress.due(now) {
                out.doc(DocumentEvent::Progress { transfer: *t, bytes, size: r.machine.offer().size });
            }
        }
    }

    /// The driver has sent every byte of `transfer` from where it started.
    pub fn streamed(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        let Some(s) = self.sent.get_mut(&transfer) else { return };
        let (Some(done), Some(link)) = (s.machine.all_sent(), s.link) else { return };
        out.send(link, &done);
        let size = s.machine.offer().size;
        s.progress.owed = None;
        out.doc(DocumentEvent::Progress { transfer, bytes: size, size });
    }

    fn control_for_sent(&mut self, transfer: TransferId, peer: PeerId, control: &Control, out: &mut Out<'_>) {
        let Some(s) = self.sent.get_mut(&transfer) else { return };
        match s.machine.handle(control) {
            Sending::StartAt(from) => {
                s.link = Some(peer);
                if !s.accepted {
                    s.accepted = true;
                    out.doc(DocumentEvent::Accepted { transfer });
                }
                let id = s.machine.offer().id;
                let size = s.machine.offer().size;
                out.actions.push_back(Action::StreamDocument { transfer, doc: s.doc, peer, id, from, size });
            }
            Sending::Over => {
                out.actions.push_back(Action::StopStream { transfer });
                let event = match s.machine.stage() {
                    Stage::Verified => DocumentEvent::Delivered { transfer },
                    Stage::Declined(reason) => DocumentEvent::Declined { transfer, reason: reason.clone() },
                    Stage::Cancelled { by_us } => DocumentEvent::Cancelled { transfer, by_us: *by_us },
                    Stage::Failed(e) => DocumentEvent::Failed { transfer, reason: e.to_string() },
                    _ => return,
                };
                out.doc(event);
                self.forget_sent(transfer, out);
            }
            Sending::Nothing => {}
        }
    }

    /// The file of `doc` is closed by the driver once no transfer needs it.
    fn forget_sent(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        let Some(s) = self.sent.remove(&transfer) else { return };
        if !self.sent.values().any(|o| o.doc == s.doc) {
            out.actions.push_back(Action::ForgetDocument { doc: s.doc });
        }
    }

    // ---- documents: receiving ----

    /// The user accepts `transfer` into `folder`: the driver makes the temporary file first.
    pub fn accept(&mut self, transfer: TransferId, folder: String, out: &mut Out<'_>) {
        match self.received.get(&transfer) {
            Some(r) if *r.machine.stage() == Stage::Offered && !r.prepared => {
                let name = r.machine.safe_name().to_owned();
                let size = r.machine.offer().size;
                out.actions.push_back(Action::PrepareDocument { transfer, folder, name, size });
            }
            _ => out.error(format!("document {transfer}: nothing on offer to accept")),
        }
    }

    /// The temporary file exists: tell the sender to start.
    pub fn prepared(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        let Some(r) = self.received.get_mut(&transfer) else { return };
        r.prepared = true;
        let Some(accept) = r.machine.accept() else { return };
        // Without a link (it dropped meanwhile) the next one sends the resume, from 0.
        if let Some(peer) = self.links.get(&r.from).and_then(|l| l.first()) {
            out.send(*peer, &accept);
        }
    }

    pub fn decline(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        let Some(r) = self.received.get_mut(&transfer) else {
            return out.error(format!("document {transfer}: nothing on offer to decline"));
        };
        let Some(no) = r.machine.decline() else {
            return out.error(format!("document {transfer}: already answered"));
        };
        let from = r.from.clone();
        if let Some(peer) = self.link_to(&from) {
            out.send(peer, &no);
        }
        out.doc(DocumentEvent::Declined { transfer, reason: None });
        self.forget_received(transfer, out);
    }

    /// The user stops a transfer in either direction.
    pub fn cancel(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        if let Some(s) = self.sent.get_mut(&transfer) {
            if let Some(control) = s.machine.cancel() {
                let to = s.to.clone();
                out.actions.push_back(Action::StopStream { transfer });
                if let Some(peer) = self.link_to(&to) {
                    out.send(peer, &control);
                }
                out.doc(DocumentEvent::Cancelled { transfer, by_us: true });
            }
            return self.forget_sent(transfer, out);
        }
        if let Some(r) = self.received.get_mut(&transfer) {
            if let Some(control) = r.machine.cancel() {
                let from = r.from.clone();
                if let Some(peer) = self.link_to(&from) {
                    out.send(peer, &control);
                }
                out.doc(DocumentEvent::Cancelled { transfer, by_us: true });
            }
            return self.forget_received(transfer, out);
        }
        out.error(format!("document {transfer}: no such transfer"));
    }

    /// The driver stored the verified document under its final name.
    pub fn saved(&mut self, transfer: TransferId, path: String, out: &mut Out<'_>) {
        let Some(r) = self.received.get(&transfer) else { return };
        if let Some(peer) = self.link_to(&r.from) {
            out.send(peer, &r.machine.verdict_control(&Verdict::Verified));
        }
        out.doc(DocumentEvent::Saved { transfer, path });
        self.received.remove(&transfer);
        self.incoming_ids.retain(|_, t| *t != transfer);
    }

    /// The driver could not read (sending) or store (receiving) the document.
    pub fn local_failure(&mut self, transfer: TransferId, reason: String, out: &mut Out<'_>) {
        if let Some(s) = self.sent.get_mut(&transfer) {
            if let Some(control) = s.machine.local_failure(reason.clone()) {
                let to = s.to.clone();
                out.actions.push_back(Action::StopStream { transfer });
                if let Some(peer) = self.link_to(&to) {
                    out.send(peer, &control);
                }
                out.doc(DocumentEvent::Failed { transfer, reason });
            }
            return self.forget_sent(transfer, out);
        }
        if let Some(r) = self.received.get_mut(&transfer) {
            if r.machine.stage().is_over() && *r.machine.stage() != Stage::Verified {
                return;
            }
            let control = r.machine.local_failure(reason.clone());
            let from = r.from.clone();
            if let Some(peer) = self.link_to(&from) {
                out.send(peer, &control);
            }
            out.doc(DocumentEvent::Failed { transfer, reason });
            self.forget_received(transfer, out);
        }
    }

    fn forget_received(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        if let Some(r) = self.received.remove(&transfer)
            && r.prepared
        {
            out.actions.push_back(Action::DiscardDocument { transfer });
        }
        self.incoming_ids.retain(|_, t| *t != transfer);
    }

    // ---- what a peer sent ----

    /// One data-channel message from `participant` on `peer`. Anything malformed is reported
    /// and dropped; it never ends a transfer that did nothing wrong.
    pub fn data(&mut self, participant: &str, peer: PeerId, message: &Bytes, now: Instant, out: &mut Out<'_>) {
        let frame = match wire::decode(message) {
            Ok(f) => f,
            Err(e) => return out.error(format!("a malformed message from {participant} was dropped: {e}")),
        };
        match frame {
            Frame::Chunk { id, offset, data } => {
                let Some(&transfer) = self.incoming_ids.get(&(participant.to_owned(), id)) else { return };
                let data = message.slice_ref(data);
                self.chunk(transfer, offset, data, now, out);
            }
            Frame::Control(Control::Chat { .. }) if self.chat_off => {
                out.error(format!("a chat message from {participant} was dropped: the moderator switched chat off"));
            }
            Frame::Control(Control::Chat { text, private }) => match blende_p2p::chat::clean_text(&text) {
                Ok(text) => out.events.push_back(CallEvent::Chat {
                    from: Some(participant.to_owned()),
                    private_with: private.then(|| participant.to_owned()),
                    text,
                }),
                Err(e) => out.error(format!("a chat message from {participant} was dropped: {e}")),
            },
            Frame::Control(Control::Offer { id, name, size, sha256, to_all: None }) => {
                self.offered(participant, peer, id, &name, size, &sha256, false, out);
            }
            Frame::Control(Control::Offer { id, name, size, sha256, to_all: Some(token) }) => {
                let held = Held { from: participant.to_owned(), peer, id, name, size, sha256, token, until: now + CONFIRM_WITHIN };
                self.offered_to_all(held, out);
            }
            Frame::Control(Control::Done { id }) => {
                if let Some(&transfer) = self.incoming_ids.get(&(participant.to_owned(), id)) {
                    self.sender_done(transfer, out);
                }
            }
            Frame::Control(Control::Cancel { id }) => {
                if let Some(&transfer) = self.incoming_ids.get(&(participant.to_owned(), id)) {
                    if let Some(r) = self.received.get_mut(&transfer) {
                        r.machine.cancelled_by_peer();
                        out.doc(DocumentEvent::Cancelled { transfer, by_us: false });
                    }
                    self.forget_received(transfer, out);
                } else if let Some(transfer) = self.sent_by_wire(participant, id) {
                    self.control_for_sent(transfer, peer, &Control::Cancel { id }, out);
                }
            }
            Frame::Control(
                control
                @ (Control::Accept { id, .. } | Control::Decline { id, .. } | Control::Verified { id } | Control::Failed { id, .. }),
            ) => {
                if let Some(transfer) = self.sent_by_wire(participant, id) {
                    self.control_for_sent(transfer, peer, &control, out);
                }
            }
        }
    }

    fn sent_by_wire(&self, participant: &str, id: u32) -> Option<TransferId> {
        self.sent.iter().find(|(_, s)| s.to == participant && s.machine.offer().id == id).map(|(t, _)| *t)
    }

    #[allow(clippy::too_many_arguments)]
    /// An offer to everyone: shown at once where no server decides roles (a plain Janus room)
    /// or when its token was confirmed already; otherwise it waits for the confirmation.
    fn offered_to_all(&mut self, h: Held, out: &mut Out<'_>) {
        let key = (h.from.clone(), h.token.clone());
        if let Some(i) = self.confirmed.iter().position(|c| *c == key) {
            self.confirmed.remove(i);
        } else if self.server_confirms {
            if self.held.iter().filter(|o| o.from == h.from).count() >= MAX_PENDING_OFFERS {
                return out.send(h.peer, &Control::Decline { id: h.id, reason: Some("too many offers are waiting".into()) });
            }
            return self.held.push(h);
        }
        self.offered(&h.from, h.peer, h.id, &h.name, h.size, &h.sha256, true, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn offered(&mut self, participant: &str, peer: PeerId, id: u32, name: &str, size: u64, sha256: &str, to_all: bool, out: &mut Out<'_>) {
        let key = (participant.to_owned(), id);
        if self.incoming_ids.contains_key(&key) {
            return out.error(format!("{participant} offered document {id} twice; the second offer was dropped"));
        }
        let pending = self.received.values().filter(|r| r.from == participant && *r.machine.stage() == Stage::Offered).count();
        let result = if pending >= MAX_PENDING_OFFERS {
            Err(TransferError::Local(format!("{MAX_PENDING_OFFERS} offers are waiting already")))
        } else {
            Offer::parse(id, name, size, sha256).and_then(|offer| Incoming::new(offer, &self.limits))
        };
        match result {
            Ok(machine) => {
                let transfer = self.new_transfer();
                out.doc(DocumentEvent::Offered {
                    transfer,
                    from: participant.to_owned(),
                    name: name.chars().filter(|c| !blende_p2p::chat::is_hidden(*c)).collect(),
                    safe_name: machine.safe_name().to_owned(),
                    size,
                    to_all,
                });
                self.incoming_ids.insert(key, transfer);
                self.received
                    .insert(transfer, Received { from: participant.to_owned(), machine, prepared: false, progress: Throttle::default() });
            }
            Err(e) => {
                out.send(peer, &Incoming::refusal(id, &e));
                out.doc(DocumentEvent::Refused { from: participant.to_owned(), size, reason: e.to_string() });
            }
        }
    }

    fn chunk(&mut self, transfer: TransferId, offset: u64, data: Bytes, now: Instant, out: &mut Out<'_>) {
        let Some(r) = self.received.get_mut(&transfer) else { return };
        match r.machine.chunk(offset, &data) {
            Ok(()) => {
                let bytes = r.machine.received();
                let size = r.machine.offer().size;
                out.actions.push_back(Action::WriteChunk { transfer, offset, data });
                if let Some(bytes) = r.progress.update(bytes, now) {
                    out.doc(DocumentEvent::Progress { transfer, bytes, size });
                }
            }
            // Late chunks after an end: no news.
            Err(TransferError::NotReceiving) => {}
            Err(e) => self.fail_received(transfer, &e, out),
        }
    }

    /// A received document failed its checks: the sender hears why, the partial file goes.
    fn fail_received(&mut self, transfer: TransferId, e: &TransferError, out: &mut Out<'_>) {
        let Some(r) = self.received.get(&transfer) else { return };
        let control = r.machine.failure(e);
        if let Some(peer) = self.link_to(&r.from) {
            out.send(peer, &control);
        }
        out.doc(DocumentEvent::Failed { transfer, reason: e.to_string() });
        self.forget_received(transfer, out);
    }

    fn sender_done(&mut self, transfer: TransferId, out: &mut Out<'_>) {
        let Some(r) = self.received.get_mut(&transfer) else { return };
        match r.machine.done() {
            // The sender hears "verified" once the file has its name (`saved`).
            Verdict::Verified => out.actions.push_back(Action::SaveDocument { transfer }),
            Verdict::Failed(TransferError::NotReceiving) => {}
            Verdict::Failed(e) => self.fail_received(transfer, &e, out),
        }
    }

    fn new_transfer(&mut self) -> TransferId {
        self.next_transfer += 1;
        TransferId(self.next_transfer)
    }

    /// Transfers that are not over (for leaving: the driver removes partial files).
    pub fn cancel_all(&mut self, out: &mut Out<'_>) {
        let all: Vec<TransferId> = self.sent.keys().chain(self.received.keys()).copied().collect();
        for t in all {
            self.cancel(t, out);
        }
    }
}
