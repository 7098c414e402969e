//! Chat, documents and identity codes between `Call`s on virtual time: the real room server and
//! signalling machines, fake data channels that carry each `SendData` to the other end of the
//! same mesh connection, and files as byte vectors.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use blende_p2p::wire;

/// A participant's fake data layer: what it sent, its files, what it stored.
#[derive(Debug, Default)]
pub(super) struct FakeData {
    /// (our peer, message) not yet delivered.
    outbox: Vec<(PeerId, Vec<u8>)>,
    /// The sender's disk (path → content) and the files opened from it.
    disk: BTreeMap<String, Vec<u8>>,
    files: BTreeMap<DocId, Vec<u8>>,
    /// Temporary files of accepted documents.
    partial: BTreeMap<TransferId, Vec<u8>>,
    /// Stored documents (final name → content).
    saved: BTreeMap<String, Vec<u8>>,
    discarded: Vec<TransferId>,
    forgotten: Vec<DocId>,
    /// Flip one bit in the chunk at this offset.
    tamper_at: Option<u64>,
    /// Send only this many chunks of the next stream, then stop (the link drops).
    cut_after_chunks: Option<usize>,
    /// `Done` still owed for a stream that was cut: never sent.
    cut: bool,
}

impl FakeData {
    pub(super) fn execute(&mut self, call: &mut Call, action: Action, now: Instant) {
        match action {
            Action::SendData { peer, message } => self.outbox.push((peer, message)),
            Action::OpenDocument { doc, path } => match self.disk.get(&path) {
                Some(data) => {
                    self.files.insert(doc, data.clone());
                    let (size, sha256) = (data.len() as u64, blende_p2p::transfer::sha256(data));
                    call.handle_transfer(TransferReport::Opened { doc, name: path, size, sha256 }, now);
                }
                None => call.handle_transfer(TransferReport::OpenFailed { doc, reason: format!("{path}: no such file") }, now),
            },
            Action::StreamDocument { transfer, doc, peer, id, from, size } => {
                let data = self.files[&doc].clone();
                assert_eq!(data.len() as u64, size);
                let mut offset = from;
                let mut chunks = 0;
                let mut buf = Vec::new();
                while offset < size {
                    if self.cut_after_chunks.is_some_and(|n| chunks >= n) {
                        self.cut_after_chunks = None;
                        self.cut = true;
                        return;
                    }
                    let end = (offset + wire::MAX_CHUNK_BYTES as u64).min(size);
                    let mut piece = data[offset as usize..end as usize].to_vec();
                    if self.tamper_at == Some(offset) {
                        piece[0] ^= 1;
                    }
                    wire::encode_chunk(id, offset, &piece, &mut buf);
                    self.outbox.push((peer, buf.clone()));
                    offset = end;
                    chunks += 1;
                }
                call.handle_transfer(TransferReport::Streamed(transfer), now);
            }
            Action::PrepareDocument { transfer, name, .. } => {
                assert!(!name.contains('/'), "a safe name");
                self.partial.insert(transfer, Vec::new());
                call.handle_transfer(TransferReport::Prepared(transfer), now);
            }
            Action::WriteChunk { transfer, offset, data } => {
                let file = self.partial.get_mut(&transfer).expect("a temporary file");
                assert_eq!(file.len() as u64, offset.min(file.len() as u64));
                file.truncate(offset as usize);
                file.extend_from_slice(&data);
            }
            Action::SaveDocument { transfer } => {
                let content = self.partial.remove(&transfer).expect("a temporary file");
                let path = format!("/in/{transfer}");
                self.saved.insert(path.clone(), content);
                call.handle_transfer(TransferReport::Saved { transfer, path }, now);
            }
            Action::DiscardDocument { transfer } => {
                self.partial.remove(&transfer);
                self.discarded.push(transfer);
            }
            Action::ForgetDocument { doc } => self.forgotten.push(doc),
            _ => {}
        }
    }
}

fn fp(name: &str) -> [u8; 32] {
    blende_p2p::identity::fingerprint(name.as_bytes())
}

impl Net {
    /// The other end of `client`'s `peer`: (client, its peer) of the same mesh connection.
    fn far_end(&self, client: usize, peer: PeerId) -> Option<(usize, PeerId)> {
        let me = self.clients[client].me();
        let purpose = &self.clients[client].peers.get(&peer)?.purpose;
        // A direct data connection (a meeting on Janus) ends at theirs with us.
        if let Purpose::Direct { with } = purpose {
            let other = (0..self.clients.len()).find(|&i| i != client && self.clients[i].me() == *with)?;
            let far = self.clients[other]
                .peers
                .iter()
                .rev()
                .find(|(_, p)| matches!(&p.purpose, Purpose::Direct { with } if *with == me))
                .map(|(id, _)| *id)?;
            return Some((other, far));
        }
        // Our publisher to them ends at their subscriber for us, and the other way round.
        let (other_id, ours_is_publisher) = match purpose {
            Purpose::MeshPublisher { to } => (to.clone(), true),
            Purpose::Subscriber { feed, .. } => (feed.clone(), false),
            _ => return None,
        };
        let want = |p: &Purpose| match p {
            Purpose::Subscriber { feed, .. } => ours_is_publisher && *feed == me,
            Purpose::MeshPublisher { to } => !ours_is_publisher && *to == me,
            _ => false,
        };
        let other = (0..self.clients.len()).find(|&i| i != client && self.clients[i].me() == other_id)?;
        let far = self.clients[other].peers.iter().find(|(_, p)| want(&p.purpose)).map(|(id, _)| *id)?;
        Some((other, far))
    }

    /// Opens the data channels of every mesh connection between `a` and `b`; `relay` makes
    /// each side see a different certificate for the other (a man in the middle).
    fn open_direct(&mut self, a: usize, b: usize, relay: bool) {
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            let (mx, my) = (self.clients[x].me(), self.clients[y].me());
            let peers: Vec<PeerId> = self.clients[x]
                .peers
                .iter()
                .filter(|(_, p)| {
                    matches!(&p.purpose, Purpose::MeshPublisher { to } if *to == my)
                        || matches!(&p.purpose, Purpose::Subscriber { feed, .. } if *feed == my)
                })
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(peers.len(), 2, "ours to them and theirs to us");
            let theirs = if relay { fp(&format!("relay for {mx}")) } else { fp(&my) };
            for peer in peers {
                let call = &mut self.clients[x].call;
                call.handle_peer(peer, PeerEvent::DataOpen, now);
                call.handle_peer(peer, PeerEvent::Fingerprints { ours: fp(&mx), theirs }, now);
            }
        }
        self.settle();
    }

    /// Opens the data channel of the direct data connection (a meeting on Janus) between `a`
    /// and `b`, both ends.
    fn open_direct_data(&mut self, a: usize, b: usize) {
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            let (mx, my) = (self.clients[x].me(), self.clients[y].me());
            let peers: Vec<PeerId> = self.clients[x]
                .peers
                .iter()
                .filter(|(_, p)| matches!(&p.purpose, Purpose::Direct { with } if *with == my))
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(peers.len(), 1, "one direct data connection between each pair");
            let call = &mut self.clients[x].call;
            call.handle_peer(peers[0], PeerEvent::DataOpen, now);
            call.handle_peer(peers[0], PeerEvent::Fingerprints { ours: fp(&mx), theirs: fp(&my) }, now);
        }
        self.settle();
    }

    /// `client`'s own mesh connection to `to` (the one its data channel is offered on).
    fn mesh_publisher(&self, client: usize, to: usize) -> PeerId {
        let to = self.clients[to].me();
        self.clients[client]
            .peers
            .iter()
            .find(|(_, f)| matches!(&f.purpose, Purpose::MeshPublisher { to: t } if *t == to))
            .map(|(id, _)| *id)
            .expect("a mesh connection")
    }

    /// Delivers every queued data message to the far end of its connection.
    pub(super) fn deliver_data(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.clients.len() {
            let outbox = std::mem::take(&mut self.clients[i].data.outbox);
            for (peer, message) in outbox {
                moved = true;
                let Some((j, far)) = self.far_end(i, peer) else { continue };
                let now = self.now;
                let call = &mut self.clients[j].call;
                call.handle_peer(far, PeerEvent::Data(Bytes::from(message)), now);
                while let Some(action) = self.clients[j].call.poll_action() {
                    self.clients[j].execute(action, now);
                }
                while let Some(ev) = self.clients[j].call.poll_event() {
                    self.clients[j].events.push(ev);
                }
            }
        }
        moved
    }

    fn trio() -> (Net, usize, usize, usize) {
        let (mut net, m, p) = Net::pair();
        let q = net.join("Cem", false);
        let waiting = net.clients[m]
            .events
            .iter()
            .rev()
            .find_map(|e| if let CallEvent::Waiting { participants } = e { participants.first().cloned() } else { None })
            .expect("Cem waits");
        net.command(m, CallCommand::Room(RoomAction::Admit(waiting.id)));
        net.step();
        (net, m, p, q)
    }

    fn documents(&self, client: usize) -> Vec<&DocumentEvent> {
        self.clients[client].events.iter().filter_map(|e| if let CallEvent::Document(d) = e { Some(d) } else { None }).collect()
    }

    fn offered(&self, client: usize) -> TransferId {
        self.documents(client)
            .iter()
            .rev()
            .find_map(|d| if let DocumentEvent::Offered { transfer, .. } = d { Some(*transfer) } else { None })
            .expect("an offer arrived")
    }

    fn errors(&self, client: usize) -> Vec<String> {
        self.clients[client]
            .events
            .iter()
            .filter_map(|e| if let CallEvent::Error { message, .. } = e { Some(message.clone()) } else { None })
            .collect()
    }
}

fn chats(net: &Net, client: usize) -> Vec<(Option<String>, Option<String>, String)> {
    net.clients[client]
        .events
        .iter()
        .filter_map(|e| {
            if let CallEvent::Chat { from, private_with, text } = e {
                Some((from.clone(), private_with.clone(), text.clone()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn chat_to_everyone_and_privately() {
    let (mut net, m, p, q) = Net::trio();
    for (a, b) in [(m, p), (m, q), (p, q)] {
        net.open_direct(a, b, false);
    }
    let (mo, bea) = (net.clients[m].me(), net.clients[p].me());
    net.command(m, CallCommand::Chat { to: None, text: "Guten Morgen".into() });
    net.command(p, CallCommand::Chat { to: Some(mo.clone()), text: "Az. 4711\u{202E}".into() });

    assert_eq!(chats(&net, m), [(None, None, "Guten Morgen".into()), (Some(bea.clone()), Some(bea.clone()), "Az. 4711".into())]);
    assert_eq!(chats(&net, p), [(Some(mo.clone()), None, "Guten Morgen".into()), (None, Some(mo.clone()), "Az. 4711".into())]);
    assert_eq!(chats(&net, q), [(Some(mo), None, "Guten Morgen".into())], "the private message reached only Mo");
    // Each message went once per receiver, on a data channel: never to the room server.
    let data_sent = net.clients[m].actions.iter().filter(|a| matches!(a, Action::SendData { .. })).count();
    assert_eq!(data_sent, 2);
    assert!(
        !net.clients[m]
            .actions
            .iter()
            .any(|a| matches!(a, Action::Signal { command: SignalCommand::Room(_), .. }) && format!("{a:?}").contains("Guten"))
    );
}

#[test]
fn chat_needs_a_direct_connection_and_a_real_text() {
    let (mut net, m, p) = Net::pair();
    net.command(m, CallCommand::Chat { to: None, text: "Hallo".into() });
    assert!(net.errors(m).iter().any(|e| e.contains("nobody to write to")));
    net.open_direct(m, p, false);
    net.command(m, CallCommand::Chat { to: Some("999".into()), text: "Hallo".into() });
    net.command(m, CallCommand::Chat { to: None, text: " \u{200B} ".into() });
    let errors = net.errors(m);
    assert!(errors.iter().any(|e| e.contains("no direct connection to 999")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("empty")), "{errors:?}");
    assert!(chats(&net, p).is_empty());
}

#[test]
fn identity_codes_agree_and_a_relay_shows() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    let code = |net: &Net, c: usize| {
        net.clients[c]
            .events
            .iter()
            .rev()
            .find_map(|e| {
                if let CallEvent::Identity { code, checked, changed, .. } = e { Some((code.clone(), *checked, *changed)) } else { None }
            })
            .expect("a code")
    };
    let (cm, cp) = (code(&net, m), code(&net, p));
    assert_eq!(cm.0, cp.0, "both ends read the same code");
    assert_eq!((cm.1, cm.2), (false, false));
    let bea = net.clients[p].me();
    net.command(m, CallCommand::IdentityChecked { participant: bea.clone(), checked: true });
    assert_eq!(code(&net, m), (cm.0.clone(), true, false));

    // A connection that shows other certificates (a relay in between): a new code, not
    // checked, marked as changed; and it differs between the two ends.
    net.open_direct(m, p, true);
    let (rm, rp) = (code(&net, m), code(&net, p));
    assert_ne!(rm.0, cm.0);
    assert_eq!((rm.1, rm.2), (false, true));
    assert_ne!(rm.0, rp.0, "through a relay the two ends read different codes");
}

fn document(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Bea offers `data` to Mo, Mo accepts; returns the transfer ids (Bea's, Mo's).
fn offer_and_accept(net: &mut Net, from: usize, to: usize, data: &[u8]) -> (TransferId, TransferId) {
    // The fake driver offers it under its path: a hostile sender's name.
    net.clients[from].data.disk.insert("../../etc/passwd".into(), data.to_vec());
    let to_id = net.clients[to].me();
    net.command(from, CallCommand::SendFile { path: "../../etc/passwd".into(), to: Some(to_id) });
    let incoming = net.offered(to);
    let sending = net
        .documents(from)
        .iter()
        .find_map(|d| if let DocumentEvent::Sending { transfer, .. } = d { Some(*transfer) } else { None })
        .expect("sending");
    net.command(to, CallCommand::AcceptDocument { transfer: incoming, folder: "/in".into() });
    (sending, incoming)
}

#[test]
fn a_document_arrives_checked_and_named_safely() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    let data = document(3 * wire::MAX_CHUNK_BYTES + 11);
    let (sending, incoming) = offer_and_accept(&mut net, p, m, &data);
    let offered = net.documents(m).into_iter().find(|d| matches!(d, DocumentEvent::Offered { .. })).cloned();
    assert!(
        matches!(offered, Some(DocumentEvent::Offered { ref safe_name, size, .. }) if safe_name == "passwd" && size == data.len() as u64)
    );
    assert_eq!(net.clients[m].data.saved.get(&format!("/in/{incoming}")), Some(&data));
    assert!(net.documents(m).contains(&&DocumentEvent::Saved { transfer: incoming, path: format!("/in/{incoming}") }));
    assert!(net.documents(p).contains(&&DocumentEvent::Delivered { transfer: sending }));
    assert_eq!(net.clients[p].data.forgotten, [DocId(1)], "the file is closed when no transfer needs it");
}

#[test]
fn a_flipped_bit_is_never_saved() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    net.clients[p].data.tamper_at = Some(wire::MAX_CHUNK_BYTES as u64);
    let data = document(2 * wire::MAX_CHUNK_BYTES + 1);
    let (sending, incoming) = offer_and_accept(&mut net, p, m, &data);
    assert!(net.clients[m].data.saved.is_empty());
    assert_eq!(net.clients[m].data.discarded, [incoming], "the temporary file is removed");
    assert!(net.documents(m).iter().any(|d| matches!(d, DocumentEvent::Failed { reason, .. } if reason.contains("SHA-256"))));
    assert!(
        net.documents(p)
            .iter()
            .any(|d| matches!(d, DocumentEvent::Failed { transfer, reason } if *transfer == sending && reason.contains("SHA-256")))
    );
}

#[test]
fn a_cut_transfer_resumes_on_the_next_link() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    net.clients[p].data.cut_after_chunks = Some(2);
    let data = document(5 * wire::MAX_CHUNK_BYTES);
    let (_, incoming) = offer_and_accept(&mut net, p, m, &data);
    assert!(net.clients[p].data.cut && net.clients[m].data.saved.is_empty());
    assert_eq!(net.clients[m].data.partial[&incoming].len(), 2 * wire::MAX_CHUNK_BYTES);
    // The burst's last progress is owed, and comes at its deadline on the call's clock.
    let progress = |net: &Net| {
        net.documents(m).iter().filter_map(|d| if let DocumentEvent::Progress { bytes, .. } = d { Some(*bytes) } else { None }).next_back()
    };
    assert_eq!(progress(&net), Some(wire::MAX_CHUNK_BYTES as u64));
    let before = net.now;
    net.step();
    assert_eq!(net.now - before, PROGRESS_EVERY);
    assert_eq!(progress(&net), Some(2 * wire::MAX_CHUNK_BYTES as u64));
    // Every data channel between them closes, then new ones open.
    let now = net.now;
    for c in [m, p] {
        let peers: Vec<PeerId> = net.clients[c].peers.keys().copied().collect();
        for peer in peers {
            net.clients[c].call.handle_peer(peer, PeerEvent::DataClosed, now);
        }
    }
    net.settle();
    assert!(net.clients[m].events.iter().any(|e| matches!(e, CallEvent::DirectLink { open: false, .. })));
    net.open_direct(m, p, false);
    assert_eq!(net.clients[m].data.saved.get(&format!("/in/{incoming}")), Some(&data));
    let resumed = net.clients[m].actions.iter().any(|a| match a {
        Action::SendData { message, .. } => {
            message.starts_with(b"J") && String::from_utf8_lossy(message).contains(&format!("\"from\":{}", 2 * wire::MAX_CHUNK_BYTES))
        }
        _ => false,
    });
    assert!(resumed, "the receiver asked for the rest, not for everything");
}

#[test]
fn leaving_mid_transfer_removes_the_partial_file() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    net.clients[p].data.cut_after_chunks = Some(1);
    let (_, incoming) = offer_and_accept(&mut net, p, m, &document(3 * wire::MAX_CHUNK_BYTES));
    net.command(p, CallCommand::Leave);
    net.step();
    assert_eq!(net.clients[m].data.discarded, [incoming]);
    assert!(net.documents(m).contains(&&DocumentEvent::Cancelled { transfer: incoming, by_us: false }));
}

#[test]
fn declining_and_limits() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    net.clients[p].data.disk.insert("a.txt".into(), document(10));
    let mo = net.clients[m].me();
    net.command(p, CallCommand::SendFile { path: "a.txt".into(), to: Some(mo.clone()) });
    let t = net.offered(m);
    net.command(m, CallCommand::DeclineDocument { transfer: t });
    assert!(net.documents(p).iter().any(|d| matches!(d, DocumentEvent::Declined { reason: None, .. })));
    assert!(!net.clients[p].actions.iter().any(|a| matches!(a, Action::StreamDocument { .. })), "nothing was read");

    // To everyone: only a presenter (the server's role decides).
    net.command(p, CallCommand::SendFile { path: "a.txt".into(), to: None });
    assert!(net.errors(p).iter().any(|e| e.contains("presenter")));
    net.command(p, CallCommand::SendFile { path: "missing.txt".into(), to: Some(mo.clone()) });
    assert!(net.errors(p).iter().any(|e| e.contains("missing.txt: no such file")));

    // A hostile peer: garbage and a second offer with the same id change nothing.
    let peer = net.mesh_publisher(m, p);
    let now = net.now;
    net.clients[m].call.handle_peer(peer, PeerEvent::Data(Bytes::from_static(b"J{\"type\":\"exec\"}")), now);
    net.clients[m].call.handle_peer(peer, PeerEvent::Data(Bytes::from_static(b"\x00")), now);
    net.settle();
    let dropped = net.errors(m).iter().filter(|e| e.contains("malformed")).count();
    assert_eq!(dropped, 2);
}

#[test]
fn too_many_offers_are_declined_unseen() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    let mo = net.clients[m].me();
    for i in 0..(MAX_PENDING_OFFERS + 2) {
        net.clients[p].data.disk.insert(format!("{i}.txt"), vec![1]);
        net.command(p, CallCommand::SendFile { path: format!("{i}.txt"), to: Some(mo.clone()) });
    }
    let offered = net.documents(m).iter().filter(|d| matches!(d, DocumentEvent::Offered { .. })).count();
    let refused = net.documents(m).iter().filter(|d| matches!(d, DocumentEvent::Refused { .. })).count();
    assert_eq!((offered, refused), (MAX_PENDING_OFFERS, 2));
    assert_eq!(net.documents(p).iter().filter(|d| matches!(d, DocumentEvent::Declined { reason: Some(_), .. })).count(), 2);
}

#[test]
fn a_moderator_switches_chat_off_for_everyone() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    net.command(m, CallCommand::Room(RoomAction::ChatOff));
    for c in [m, p] {
        assert!(net.clients[c].events.contains(&CallEvent::ChatEnabled { enabled: false }), "client {c} hears chat is off");
    }
    net.command(p, CallCommand::Chat { to: None, text: "trotzdem".into() });
    assert!(net.errors(p).iter().any(|e| e.contains("switched chat off")));
    assert!(chats(&net, m).is_empty() && chats(&net, p).is_empty());
    // A client that ignores the switch: its message is dropped where it arrives.
    let peer = net.mesh_publisher(p, m);
    let message = wire::encode_control(&blende_p2p::Control::Chat { text: "ignoriert".into(), private: false });
    net.clients[p].data.outbox.push((peer, message));
    net.settle();
    assert!(chats(&net, m).is_empty());
    assert!(net.errors(m).iter().any(|e| e.contains("dropped: the moderator switched chat off")));
    // Only moderators may switch it: the server refuses Bea.
    net.command(p, CallCommand::Room(RoomAction::ChatOn));
    assert!(!net.clients[p].events.contains(&CallEvent::ChatEnabled { enabled: true }));
    net.command(m, CallCommand::Room(RoomAction::ChatOn));
    net.command(p, CallCommand::Chat { to: None, text: "wieder da".into() });
    assert_eq!(chats(&net, m), [(Some(net.clients[p].me()), None, "wieder da".into())]);
}

#[test]
fn on_janus_chat_and_documents_go_on_over_direct_data_connections() {
    let (mut net, m, p) = Net::pair();
    net.open_direct(m, p, false);
    let code_before =
        net.clients[m].events.iter().rev().find_map(|e| if let CallEvent::Identity { code, .. } = e { Some(code.clone()) } else { None });
    // A document is under way when the meeting moves.
    net.clients[p].data.cut_after_chunks = Some(2);
    let data = document(4 * wire::MAX_CHUNK_BYTES);
    let (_, incoming) = offer_and_accept(&mut net, p, m, &data);
    let (mo, bea) = (net.clients[m].me(), net.clients[p].me());
    for (c, me) in [(m, &mo), (p, &bea)] {
        let feed: u64 = me.parse().expect("numeric id");
        let msg = ServerMsg::Janus {
            url: "janus+ws://127.0.0.1:8188/".into(),
            room: 77,
            pin: Secret::new("pin"),
            token: Secret::new("token"),
            feed,
            screen_feed: feed + 1000,
        };
        let conn = net.clients[c].conn;
        net.deliver(conn, &msg);
    }
    net.settle();
    // The mesh is gone; of the pair, the lower id offered a data-only connection, the other
    // answered, through the room server (route `ID/data`).
    let (low, high) = if mo.parse::<u64>().expect("id") < bea.parse::<u64>().expect("id") { (m, p) } else { (p, m) };
    let high_id = net.clients[high].me();
    let low_id = net.clients[low].me();
    assert!(
        net.clients[low]
            .actions
            .iter()
            .any(|a| matches!(a, Action::OpenPeer { purpose: Purpose::Direct { with }, remote_offer: None, .. } if *with == high_id))
    );
    assert!(
        net.clients[high]
            .actions
            .iter()
            .any(|a| matches!(a, Action::OpenPeer { purpose: Purpose::Direct { with }, remote_offer: Some(_), .. } if *with == low_id))
    );
    assert!(
        !net.clients[high]
            .actions
            .iter()
            .any(|a| matches!(a, Action::OpenPeer { purpose: Purpose::Direct { .. }, remote_offer: None, .. })),
        "only one side offers"
    );
    for c in [m, p] {
        assert!(
            !net.clients[c].peers.values().any(|f| matches!(f.purpose, Purpose::MeshPublisher { .. })),
            "the mesh media connections closed"
        );
    }
    net.open_direct_data(m, p);
    // The same certificates: the same identity code as in the mesh.
    let code_after =
        net.clients[m].events.iter().rev().find_map(|e| if let CallEvent::Identity { code, .. } = e { Some(code.clone()) } else { None });
    assert_eq!(code_before, code_after);
    // The cut document resumed on the new connection and arrived whole.
    assert_eq!(net.clients[m].data.saved.get(&format!("/in/{incoming}")), Some(&data));
    net.command(m, CallCommand::Chat { to: None, text: "nach dem Umzug".into() });
    assert_eq!(chats(&net, p).last(), Some(&(Some(mo.clone()), None, "nach dem Umzug".into())));
}

#[test]
fn a_document_to_everyone_shows_only_what_the_room_server_confirmed() {
    let (mut net, m, p, q) = Net::trio();
    for (a, b) in [(m, p), (m, q), (p, q)] {
        net.open_direct(a, b, false);
    }
    let (bea, cem) = (net.clients[p].me(), net.clients[q].me());
    net.command(m, CallCommand::Room(RoomAction::GrantPresenter(bea.clone())));
    net.clients[p].data.disk.insert("Plan.pdf".into(), document(1000));
    net.command(p, CallCommand::SendFile { path: "Plan.pdf".into(), to: None });
    // The room server heard a token and nothing about the file.
    let tokens: Vec<String> = net.clients[p]
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { command: SignalCommand::Room(RoomAction::DocumentOffer { offer }), .. } => Some(offer.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{:?} {bea} {:?}", net.errors(p), net.errors(m));
    assert!(tokens[0].len() == 32 && tokens[0].bytes().all(|b| b.is_ascii_hexdigit()), "{tokens:?}");
    for i in [m, q] {
        let offered = net.documents(i).into_iter().find(|d| matches!(d, DocumentEvent::Offered { .. })).cloned();
        assert!(
            matches!(&offered, Some(DocumentEvent::Offered { from, to_all: true, name, .. }) if *from == bea && name == "Plan.pdf"),
            "{offered:?}"
        );
    }

    // Cem is no presenter and skips the client's own check: an offer to everyone straight on
    // his connection to Mo waits for a confirmation that never comes, then is declined unseen.
    let sha = blende_p2p::wire::hex(&blende_p2p::transfer::sha256(b"x"));
    let fake = wire::Control::Offer { id: 99, name: "Rechnung.pdf".into(), size: 1, sha256: sha, to_all: Some("ab".repeat(16)) };
    let peer = net.mesh_publisher(m, q);
    let now = net.now;
    net.clients[m].call.handle_peer(peer, PeerEvent::Data(Bytes::from(wire::encode_control(&fake))), now);
    net.settle();
    let shown = |net: &Net| net.documents(m).iter().filter(|d| matches!(d, DocumentEvent::Offered { .. })).count();
    assert_eq!(shown(&net), 1, "only Bea's offer is shown");
    let deadline = net.clients[m].call.poll_timeout().expect("the held offer's deadline");
    assert!(deadline <= now + CONFIRM_WITHIN);
    while net.now < now + CONFIRM_WITHIN {
        net.step();
    }
    assert_eq!(shown(&net), 1);
    assert!(
        net.documents(m)
            .iter()
            .any(|d| matches!(d, DocumentEvent::Refused { from, reason, .. } if *from == cem && reason.contains("presenter"))),
        "{:?}",
        net.documents(m)
    );
    let declined = net.clients[m].actions.iter().any(|a| {
        matches!(a, Action::SendData { peer: to, message } if *to == peer
            && matches!(wire::decode(message), Ok(wire::Frame::Control(wire::Control::Decline { id: 99, .. }))))
    });
    assert!(declined, "Cem hears the decline");

    // The server refuses a sender it does not see as presenter: the open offers are withdrawn.
    let now = net.now;
    let refused = SignalEvent::Refused { request: "document_offer".into(), not_allowed: true, message: "not allowed".into() };
    net.clients[p].call.handle_signal(Route::Main, refused, now);
    net.settle();
    for i in [m, q] {
        assert!(net.documents(i).iter().any(|d| matches!(d, DocumentEvent::Cancelled { by_us: false, .. })), "{:?}", net.documents(i));
    }
    assert!(net.errors(p).iter().any(|e| e.starts_with("document to everyone: not allowed")));
}
