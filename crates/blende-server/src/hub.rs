//! The hub: the one task that owns the [`Room`] machine (quinn's `ConnectionDriver` shape).
//! Connection tasks feed it through one bounded channel; it answers through one bounded
//! channel per connection. Password checks run on the argon2 worker pool and come back as [`HubInput::Verified`]; storage is awaited in order, so the
//! machine sees a stored meeting before any later input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blende_room::protocol::{ParticipantId, Secret, ServerMsg};
use blende_room::{ConnId, ConnRole, Output, Room, RoomEvent, StoreCmd, Ticket, Verify, VerifyOutcome};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::db::{Store, unix_now};
use crate::inbox::{HUB_QUEUE, HubInput, Outgoing, RosterSlot};
use crate::janus_sync::{JanusSync, Wanted};
use crate::secrets::{self, Cost};
use crate::tag::log_tag;
use crate::turn::TurnConfig;

/// The hub's end of one connection.
#[derive(Debug)]
struct ConnOut {
    tx: mpsc::Sender<Outgoing>,
    roster: RosterSlot,
}

/// How often the hub rereads the moderators, so a removed one's live sessions end.
pub const MODERATOR_CHECK: Duration = Duration::from_secs(2);

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
    /// Janus-backed rooms, when configured: the worker that keeps them in line.
    janus: Option<JanusSync>,
    /// Refusals sent so far (logged in aggregate).
    refused: u64,
    /// When each admitted member last got TURN credentials: renewed at half their lifetime,
    /// so credentials stay short-lived (a removed member's expire soon) and calls keep valid ones.
    turn_issued: HashMap<ConnId, (ParticipantId, Instant)>,
    /// Seat and switch writes, done in order on a task of their own: an admission never waits
    /// for the database.
    writes: mpsc::Sender<Write>,
}

/// A database write the hub hands off.
#[derive(Debug)]
enum Write {
    KeepSeat(blende_room::SeatRecord, Option<i64>),
    DropSeat(String),
    Switches { meeting_id: String, locked: bool, chat: bool },
}

/// Writes the seats may queue before one is dropped (it then only misses a restart).
const WRITE_QUEUE: usize = 4096;

fn spawn_writer(store: Store) -> mpsc::Sender<Write> {
    let (tx, mut rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(async move {
        while let Some(write) = rx.recv().await {
            let result = match &write {
                Write::KeepSeat(seat, until) => store.keep_seat(seat, *until).await,
                Write::DropSeat(token_hash) => store.drop_seat(token_hash).await,
                Write::Switches { meeting_id, locked, chat } => store.set_meeting_switches(meeting_id, *locked, *chat).await,
            };
            if let Err(e) = result {
                warn!(error = %e, "storing a seat or a meeting's switches failed");
            }
        }
    });
    tx
}

impl Hub {
    pub fn new(
        room: Room,
        store: Store,
        cost: Cost,
        turn: TurnConfig,
        janus: Option<JanusSync>,
        dummy_hash: String,
        argon2: secrets::Pool,
    ) -> (Self, mpsc::Sender<HubInput>) {
        let (tx, rx) = mpsc::channel(HUB_QUEUE);
        let writes = spawn_writer(store.clone());
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
            refused: 0,
            turn_issued: HashMap::new(),
            writes,
        };
        (hub, tx)
    }

    pub async fn run(mut self) {
        let mut moderators = tokio::time::interval(MODERATOR_CHECK);
        moderators.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.room.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                input = self.rx.recv() => match input {
                    Some(input) => self.handle(input),
                    None => break,
                },
                _ = moderators.tick() => {
                    self.check_moderators().await;
                    self.renew_turn();
                }
                () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    self.room.handle_timeout(Instant::now());
                }
            }
            self.drain().await;
        }
    }

    /// Sessions of moderators the administrator removed (`admin moderator remove`, another
    /// process) end here: the store is the truth, read every [`MODERATOR_CHECK`].
    async fn check_moderators(&mut self) {
        match self.store.moderators().await {
            Ok(rows) => {
                let ids: std::collections::HashSet<String> = rows.into_iter().map(|m| m.id).collect();
                self.room.revoke_moderators(|id| ids.contains(id), Instant::now());
            }
            Err(e) => warn!(error = %e, "reading the moderators failed; live sessions unchanged"),
        }
    }

    /// TURN credentials past half their lifetime are replaced for members still admitted.
    fn renew_turn(&mut self) {
        let half = Duration::from_secs(self.turn.ttl_s / 2);
        let now = Instant::now();
        let due: Vec<(ConnId, ParticipantId)> =
            self.turn_issued.iter().filter(|(_, (_, at))| now.duration_since(*at) >= half).map(|(c, (p, _))| (*c, *p)).collect();
        for (conn, participant) in due {
            if self.room.participant(conn) == Some(participant) {
                self.issue_turn(conn, participant);
            } else {
                self.turn_issued.remove(&conn);
            }
        }
    }

    fn issue_turn(&mut self, conn: ConnId, participant: ParticipantId) {
        if let Some(server) = self.turn.credentials(&format!("p{}", participant.0), unix_now()) {
            self.send(conn, &ServerMsg::IceServers { servers: vec![server] });
            self.turn_issued.insert(conn, (participant, Instant::now()));
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
                self.turn_issued.remove(&conn);
                self.room.handle_disconnect(conn, now);
            }
            HubInput::Verified { ticket, outcome } => {
                info!(ticket = ticket.0, accepted = !matches!(outcome, VerifyOutcome::Refused), "verification done");
                self.room.handle_verified(ticket, outcome, now);
            }
            HubInput::Deliver { conn, participant, msg } => {
                // Only to a connection still holding that admitted seat.
                if self.room.participant(conn) == Some(participant)
                    && matches!(self.room.role(conn), Some(ConnRole::Moderator | ConnRole::Presenter | ConnRole::Participant))
                {
                    self.send(conn, &msg);
                }
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
                Output::Event(event) => self.event(event),
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
            StoreCmd::MeetingSwitches { meeting_id, locked, chat } => self.write(Write::Switches { meeting_id, locked, chat }),
            StoreCmd::KeepSeat { seat, away_until } => {
                let until = away_until.map(|at| unix_now().saturating_add(secs_from_now(at)));
                self.write(Write::KeepSeat(seat, until));
            }
            StoreCmd::DropSeat { token_hash } => self.write(Write::DropSeat(token_hash)),
            StoreCmd::Audit(entry) => {
                info!(moderator = %entry.moderator_id, action = entry.action, meeting = %entry.meeting_id.as_deref().map_or_else(|| "-".to_owned(), log_tag), "moderator action");
                let id = secrets::random_bytes::<12>().map(|b| secrets::hex(&b)).unwrap_or_default();
                if let Err(e) = self.store.audit(&id, &entry).await {
                    warn!(error = %e, "writing the audit log failed");
                }
            }
        }
    }

    fn write(&self, write: Write) {
        if self.writes.try_send(write).is_err() {
            warn!("the database falls behind: a seat write was dropped (that seat will not survive a restart)");
        }
    }

    fn event(&mut self, event: RoomEvent) {
        let meeting_id = match event {
            RoomEvent::Admitted { conn, meeting_id, participant } => {
                self.issue_turn(conn, participant);
                meeting_id
            }
            RoomEvent::ShareRefused { meeting_id, participant } => {
                debug!(meeting = %log_tag(&meeting_id), participant = participant.0, "share refused");
                meeting_id
            }
            RoomEvent::Left { meeting_id, conn, .. } => {
                self.turn_issued.remove(&conn);
                meeting_id
            }
            RoomEvent::RolesChanged { meeting_id } => meeting_id,
            RoomEvent::MeetingEnded { meeting_id } => {
                info!(meeting = %log_tag(&meeting_id), "meeting ended");
                if let Some(sync) = &self.janus {
                    sync.want(&meeting_id, Wanted { members: Vec::new(), ended: true });
                }
                return;
            }
        };
        // Whatever changed, the worker gets the meeting's whole membership.
        if let Some(sync) = &self.janus {
            sync.want(&meeting_id, Wanted { members: self.room.janus_members(&meeting_id), ended: false });
        }
    }
}

/// Whole seconds from now until `at` (rounded up: a kept seat never ends early), 0 if past.
fn secs_from_now(at: std::time::Instant) -> i64 {
    let d = at.saturating_duration_since(std::time::Instant::now());
    i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
}
