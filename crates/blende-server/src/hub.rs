//! The hub: the one task that owns the [`Room`] machine (quinn's `ConnectionDriver` shape).
//! Connection tasks feed it through one bounded channel; it answers through one bounded
//! channel per connection. Password checks run on the argon2 worker pool and come back as [`HubInput::Verified`]; storage is awaited in order, so the
//! machine sees a stored meeting before any later input.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use blende_room::protocol::{ParticipantId, Secret, ServerMsg};
use blende_room::{ConnId, Output, Room, RoomEvent, StoreCmd, Ticket, Verify, VerifyOutcome};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::db::{Store, unix_now};
use crate::janus::{self, JanusConfig, JanusRoom};
use crate::secrets::{self, Cost};
use crate::turn::TurnConfig;

#[derive(Debug)]
pub enum HubInput {
    Connect { conn: ConnId, addr: IpAddr, tx: mpsc::Sender<Outgoing>, roster: RosterSlot },
    Text { conn: ConnId, text: String },
    Disconnect { conn: ConnId },
    Verified { ticket: Ticket, outcome: VerifyOutcome },
}

#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    /// The latest roster in the connection's [`RosterSlot`]: rosters are whole snapshots, so
    /// one not yet written is replaced by the next instead of queueing behind it.
    Roster,
    Close,
}

/// The roster waiting to be written to one connection.
pub type RosterSlot = Arc<Mutex<Option<String>>>;

/// The hub's end of one connection.
#[derive(Debug)]
struct ConnOut {
    tx: mpsc::Sender<Outgoing>,
    roster: RosterSlot,
}

/// Queue depth towards one client. A client that lets it fill up is dropped rather than
/// allowed to stall the hub.
pub const CONN_QUEUE: usize = 256;
/// Queue depth into the hub.
pub const HUB_QUEUE: usize = 4096;

#[derive(Debug)]
pub struct Hub {
    room: Room,
    store: Store,
    conns: HashMap<ConnId, ConnOut>,
    rx: mpsc::Receiver<HubInput>,
    tx: mpsc::Sender<HubInput>,
    /// Verifies against this when the meeting or moderator is unknown, so both cost the same.
    dummy_hash: Arc<str>,
    argon2: secrets::Pool,
    cost: Cost,
    turn: TurnConfig,
    janus: Option<JanusConfig>,
    /// Janus rooms by meeting (compact id), with each admitted member's token.
    janus_rooms: HashMap<String, (JanusRoom, HashMap<ParticipantId, Secret>)>,
    /// Refusals sent so far (logged in aggregate).
    refused: u64,
}

impl Hub {
    pub fn new(
        room: Room,
        store: Store,
        cost: Cost,
        turn: TurnConfig,
        janus: Option<JanusConfig>,
        dummy_hash: String,
        argon2: secrets::Pool,
    ) -> (Self, mpsc::Sender<HubInput>) {
        let (tx, rx) = mpsc::channel(HUB_QUEUE);
        let hub = Hub {
            room,
            store,
            conns: HashMap::new(),
            rx,
            tx: tx.clone(),
            dummy_hash: dummy_hash.into(),
            argon2,
            cost,
            turn,
            janus,
            janus_rooms: HashMap::new(),
            refused: 0,
        };
        (hub, tx)
    }

    pub async fn run(mut self) {
        loop {
            let deadline = self.room.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                input = self.rx.recv() => match input {
                    Some(input) => self.handle(input),
                    None => break,
                },
                () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    self.room.handle_timeout(Instant::now());
                }
            }
            self.drain().await;
        }
    }

    fn handle(&mut self, input: HubInput) {
        let now = Instant::now();
        match input {
            HubInput::Connect { conn, addr, tx, roster } => {
                debug!(conn = conn.0, %addr, "connected");
                self.conns.insert(conn, ConnOut { tx, roster });
                self.room.handle_connect(conn, addr, now);
            }
            HubInput::Text { conn, text } => self.room.handle_text(conn, &text, now),
            HubInput::Disconnect { conn } => {
                debug!(conn = conn.0, "disconnected");
                self.conns.remove(&conn);
                self.room.handle_disconnect(conn, now);
            }
            HubInput::Verified { ticket, outcome } => {
                info!(ticket = ticket.0, accepted = !matches!(outcome, VerifyOutcome::Refused), "verification done");
                self.room.handle_verified(ticket, outcome, now);
            }
        }
    }

    async fn drain(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                Output::Send { conn, msg } => self.send(conn, &msg),
                Output::Close { conn } => {
                    if let Some(out) = self.conns.get(&conn) {
                        let _ = out.tx.try_send(Outgoing::Close);
                    }
                }
                Output::Verify { ticket, verify } => self.spawn_verify(ticket, verify),
                Output::Store(cmd) => self.store(cmd).await,
                Output::Event(event) => self.event(event).await,
            }
        }
    }

    fn send(&mut self, conn: ConnId, msg: &ServerMsg) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if let ServerMsg::Error { code, request, .. } = msg {
            // Each refusal at debug; at info one line per thousand, so a client cannot flood
            // the log by being refused.
            debug!(conn = conn.0, ?code, request = request.as_deref().unwrap_or("-"), "refused");
            self.refused += 1;
            if self.refused % 1000 == 1 {
                info!(total = self.refused, ?code, "messages refused (every 1000th logged at info; all at debug)");
            }
        }
        let Some(out) = self.conns.get(&conn) else { return };
        let queued = if matches!(msg, ServerMsg::Participants { .. }) {
            let mut slot = out.roster.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // A roster still waiting is replaced in place; only a new one takes a queue place.
            let waiting = slot.replace(msg.to_json()).is_some();
            waiting || out.tx.try_send(Outgoing::Roster).is_ok()
        } else {
            out.tx.try_send(Outgoing::Text(msg.to_json())).is_ok()
        };
        if !queued {
            // Full or gone: dropping the sender ends the writer, which closes the socket.
            warn!(conn = conn.0, "client too slow or gone; dropping the connection");
            self.conns.remove(&conn);
            self.room.handle_disconnect(conn, Instant::now());
        }
    }

    fn spawn_verify(&self, ticket: Ticket, verify: Verify) {
        let (pool, dummy, store, tx) = (self.argon2.clone(), self.dummy_hash.clone(), self.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let outcome = match verify {
                Verify::MeetingPassword { password_hash, password } => {
                    let known = password_hash.is_some();
                    let hash = password_hash.unwrap_or_else(|| dummy.to_string());
                    let ok = pool.verify(password.expose().to_owned(), hash).await;
                    if ok && known { VerifyOutcome::PasswordOk } else { VerifyOutcome::Refused }
                }
                Verify::ModeratorToken { token } => {
                    let (id, secret) = match secrets::split_token(token.expose()) {
                        Some((id, secret)) => (id.to_owned(), Secret::new(secret)),
                        None => (String::new(), Secret::new("")),
                    };
                    let hash = if id.is_empty() {
                        None
                    } else {
                        store.moderator_token_hash(&id).await.unwrap_or_else(|e| {
                            warn!(error = %e, "moderator lookup failed");
                            None
                        })
                    };
                    let known = hash.is_some();
                    let ok = pool.verify(secret.expose().to_owned(), hash.unwrap_or_else(|| dummy.to_string())).await;
                    if ok && known { VerifyOutcome::Moderator { moderator_id: id } } else { VerifyOutcome::Refused }
                }
            };
            let _ = tx.send(HubInput::Verified { ticket, outcome }).await;
        });
    }

    async fn store(&mut self, cmd: StoreCmd) {
        match cmd {
            StoreCmd::CreateMeeting { info, created_by, password } => {
                let hashed = self.argon2.hash(password.expose().to_owned(), self.cost).await;
                let result = match hashed {
                    Ok(hash) => match self.store.insert_meeting(&info, &created_by, &hash).await {
                        Ok(()) => {
                            info!(meeting = %log_tag(&info.id), moderator = %created_by, "meeting created");
                            Ok(hash)
                        }
                        Err(e) => {
                            warn!(error = %e, "storing a meeting failed");
                            Err(())
                        }
                    },
                    _ => Err(()),
                };
                self.room.handle_meeting_stored(&info.id, result);
            }
            StoreCmd::EndMeeting { meeting_id } => {
                if let Err(e) = self.store.end_meeting(&meeting_id).await {
                    warn!(error = %e, "storing a meeting's end failed");
                }
            }
            StoreCmd::Audit(entry) => {
                info!(moderator = %entry.moderator_id, action = entry.action, meeting = %entry.meeting_id.as_deref().map_or_else(|| "-".to_owned(), log_tag), "moderator action");
                let id = secrets::random_bytes::<12>().map(|b| secrets::hex(&b)).unwrap_or_default();
                if let Err(e) = self.store.audit(&id, &entry).await {
                    warn!(error = %e, "writing the audit log failed");
                }
            }
        }
    }

    async fn event(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::Admitted { conn, meeting_id, participant } => {
                if let Some(server) = self.turn.credentials(&format!("p{}", participant.0), unix_now()) {
                    self.send(conn, &ServerMsg::IceServers { servers: vec![server] });
                }
                if let Err(e) = self.janus_admitted(&meeting_id).await {
                    warn!(meeting = %log_tag(&meeting_id), error = %e, "Janus room setup failed; the meeting stays peer to peer");
                }
            }
            RoomEvent::ShareRefused { meeting_id, participant } => {
                info!(meeting = %log_tag(&meeting_id), participant = participant.0, "share refused");
                if let (Some(cfg), Some((room, _))) = (&self.janus, self.janus_rooms.get(&meeting_id)) {
                    match janus::mute_video(cfg, room, participant).await {
                        Ok(n) => info!(meeting = %log_tag(&meeting_id), participant = participant.0, streams = n, "muted in Janus"),
                        Err(e) => {
                            info!(meeting = %log_tag(&meeting_id), participant = participant.0, error = %e, "nothing to mute in Janus")
                        }
                    }
                }
            }
            RoomEvent::Left { meeting_id, participant, .. } => {
                if let (Some(cfg), Some((room, tokens))) = (&self.janus, self.janus_rooms.get_mut(&meeting_id))
                    && let Some(token) = tokens.remove(&participant)
                {
                    if let Err(e) = janus::allow(cfg, room, &token, false).await {
                        warn!(meeting = %log_tag(&meeting_id), error = %e, "revoking a Janus token failed");
                    }
                    // Only fails when the participant never published: nothing to kick then.
                    let _ = janus::kick(cfg, room, participant).await;
                }
            }
            RoomEvent::MeetingEnded { meeting_id } => {
                info!(meeting = %log_tag(&meeting_id), "meeting ended");
                if let (Some(cfg), Some((room, _))) = (&self.janus, self.janus_rooms.remove(&meeting_id))
                    && let Err(e) = janus::destroy(cfg, &room).await
                {
                    warn!(meeting = %log_tag(&meeting_id), error = %e, "destroying the Janus room failed");
                }
            }
        }
    }

    /// At the threshold the meeting moves to Janus: create the room once, then give every
    /// admitted member without one a token of their own.
    async fn janus_admitted(&mut self, meeting_id: &str) -> anyhow::Result<()> {
        let Some(cfg) = self.janus.clone() else { return Ok(()) };
        let members = self.room.admitted_members(meeting_id);
        if members.len() < cfg.threshold && !self.janus_rooms.contains_key(meeting_id) {
            return Ok(());
        }
        let mut fresh = Vec::new();
        if !self.janus_rooms.contains_key(meeting_id) {
            let tokens: HashMap<ParticipantId, Secret> =
                members.iter().map(|(_, p)| Ok((*p, janus::new_token()?))).collect::<anyhow::Result<_>>()?;
            let allowed: Vec<Secret> = tokens.values().cloned().collect();
            let room = janus::create_room(&cfg, &allowed, self.room.config().max_participants).await?;
            info!(meeting = %log_tag(meeting_id), members = members.len(), "meeting moved to Janus");
            fresh.extend(members.iter().copied());
            self.janus_rooms.insert(meeting_id.to_owned(), (room, tokens));
        } else if let Some((room, tokens)) = self.janus_rooms.get_mut(meeting_id) {
            for (conn, p) in &members {
                if !tokens.contains_key(p) {
                    let token = janus::new_token()?;
                    janus::allow(&cfg, room, &token, true).await?;
                    tokens.insert(*p, token);
                    fresh.push((*conn, *p));
                }
            }
        }
        let Some((room, tokens)) = self.janus_rooms.get(meeting_id) else { return Ok(()) };
        let msgs: Vec<(ConnId, ServerMsg)> = fresh
            .into_iter()
            .filter_map(|(conn, p)| {
                let token = tokens.get(&p)?.clone();
                Some((conn, ServerMsg::Janus { url: cfg.client_url.clone(), room: room.room, pin: room.pin.clone(), token, feed: p }))
            })
            .collect();
        for (conn, msg) in msgs {
            self.send(conn, &msg);
        }
        Ok(())
    }
}

/// How a meeting appears in logs: a short tag of its ID, enough to follow one meeting through
/// a log, not the ID someone reading the log could join with (the audit log keeps the ID).
fn log_tag(meeting_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, meeting_id.as_bytes());
    digest.as_ref()[..3].iter().map(|b| format!("{b:02x}")).collect()
}
