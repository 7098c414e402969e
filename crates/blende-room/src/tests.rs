//! Machine tests on virtual time, with a fake driver that "hashes" as `hash:<password>`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use blende_meeting::CountingEntropy;
use proptest::prelude::*;

use crate::limiter::{LimitPolicy, LimiterConfig};
use crate::protocol::{CLIENT_KINDS, ClientMsg, ErrorCode, LobbyState, ParticipantId, Role, Secret, ServerMsg, Stream};
use crate::{ConnId, ConnRole, Output, Room, RoomConfig, StoreCmd, Verify, VerifyOutcome};

struct Harness {
    room: Room,
    now: Instant,
    next_conn: u64,
    /// Every message sent, in order.
    log: Vec<(ConnId, ServerMsg)>,
    closed: Vec<ConnId>,
    events: Vec<crate::RoomEvent>,
    audits: Vec<&'static str>,
    /// Whether verifications are answered right away (a test can hold them).
    auto_verify: bool,
    held: Vec<(crate::Ticket, Verify)>,
    /// What a driver's database would hold: meetings and seats, as the room asked to store.
    db_meetings: Vec<crate::MeetingRecord>,
    db_seats: std::collections::BTreeMap<String, (crate::SeatRecord, Option<Instant>)>,
}

const TOKEN: &str = "tok-mod1";

fn test_config() -> RoomConfig {
    RoomConfig { max_participants: 10, ..RoomConfig::default() }
}

impl Harness {
    fn new(config: RoomConfig) -> Self {
        Harness {
            room: Room::new(config, Box::new(CountingEntropy::new(3, 7))),
            now: Instant::now(),
            next_conn: 1,
            log: Vec::new(),
            closed: Vec::new(),
            events: Vec::new(),
            audits: Vec::new(),
            auto_verify: true,
            held: Vec::new(),
            db_meetings: Vec::new(),
            db_seats: std::collections::BTreeMap::new(),
        }
    }

    fn connect(&mut self, ip: [u8; 4]) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        self.room.handle_connect(c, IpAddr::from(ip), self.now);
        c
    }

    fn verify(verify: &Verify) -> VerifyOutcome {
        match verify {
            Verify::MeetingPassword { password_hash: Some(h), password } if *h == format!("hash:{}", password.expose()) => {
                VerifyOutcome::PasswordOk
            }
            Verify::ModeratorToken { token } if token.expose() == TOKEN => VerifyOutcome::Moderator { moderator_id: "mod1".into() },
            Verify::ModeratorToken { token } if token.expose() == "tok-mod2" => VerifyOutcome::Moderator { moderator_id: "mod2".into() },
            _ => VerifyOutcome::Refused,
        }
    }

    /// Plays the driver: drains outputs, answering verifications and stores.
    fn drive(&mut self) -> Vec<Output> {
        let mut all = Vec::new();
        while let Some(o) = self.room.poll_output() {
            match &o {
                Output::Send { conn, msg } => self.log.push((*conn, msg.clone())),
                Output::Close { conn } => self.closed.push(*conn),
                Output::Verify { ticket, verify } => {
                    if self.auto_verify {
                        let outcome = Self::verify(verify);
                        self.room.handle_verified(*ticket, outcome, self.now);
                    } else {
                        self.held.push((*ticket, verify.clone()));
                    }
                }
                Output::Store(StoreCmd::CreateMeeting { info, password, created_by }) => {
                    let password_hash = format!("hash:{}", password.expose());
                    self.db_meetings.push(crate::MeetingRecord {
                        info: info.clone(),
                        created_by: created_by.clone(),
                        password_hash: password_hash.clone(),
                        ended: false,
                        locked: false,
                        chat: true,
                    });
                    self.room.handle_meeting_stored(&info.id, Ok(password_hash));
                }
                Output::Store(StoreCmd::Audit(a)) => self.audits.push(a.action),
                Output::Store(StoreCmd::EndMeeting { meeting_id }) => {
                    self.db_meetings.iter_mut().filter(|m| m.info.id.replace('-', "") == *meeting_id).for_each(|m| m.ended = true);
                }
                Output::Store(StoreCmd::MeetingSwitches { meeting_id, locked, chat }) => {
                    for m in self.db_meetings.iter_mut().filter(|m| m.info.id.replace('-', "") == *meeting_id) {
                        (m.locked, m.chat) = (*locked, *chat);
                    }
                }
                Output::Store(StoreCmd::KeepSeat { seat, away_until }) => {
                    self.db_seats.insert(seat.token_hash.clone(), (seat.clone(), *away_until));
                }
                Output::Store(StoreCmd::DropSeat { token_hash }) => {
                    self.db_seats.remove(token_hash);
                }
                Output::Event(e) => self.events.push(e.clone()),
            }
            all.push(o);
        }
        all
    }

    fn send(&mut self, conn: ConnId, msg: ClientMsg) -> Vec<Output> {
        self.room.handle_message(conn, msg, self.now);
        self.drive()
    }

    fn last_to(&self, conn: ConnId) -> Option<&ServerMsg> {
        self.log.iter().rev().find(|(c, _)| *c == conn).map(|(_, m)| m)
    }

    fn hello(&mut self, ip: [u8; 4]) -> ConnId {
        let c = self.connect(ip);
        self.send(c, ClientMsg::Hello { protocol: 1 });
        c
    }

    fn moderator(&mut self) -> ConnId {
        let c = self.hello([10, 0, 0, 1]);
        self.send(c, ClientMsg::AuthModerator { token: Secret::new(TOKEN) });
        assert_eq!(self.room.role(c), Some(ConnRole::ModeratorIdle));
        c
    }

    /// Creates a meeting; returns (grouped id, grouped password).
    fn create(&mut self, moderator: ConnId, lobby: bool) -> (String, String) {
        self.send(
            moderator,
            ClientMsg::CreateMeeting {
                title: "Rat".into(),
                starts_at_unix: Some(1_769_506_200),
                duration_min: Some(30),
                lobby: Some(lobby),
            },
        );
        match self.last_to(moderator) {
            Some(ServerMsg::MeetingCreated { meeting, password, .. }) => (meeting.id.clone(), password.expose().to_owned()),
            other => panic!("no meeting: {other:?}"),
        }
    }

    fn join(&mut self, ip: [u8; 4], id: &str, pw: &str) -> ConnId {
        let c = self.hello(ip);
        self.send(c, ClientMsg::Join { meeting_id: id.into(), password: Secret::new(pw), display_name: "Bea".into() });
        c
    }

    fn pid(&self, conn: ConnId) -> ParticipantId {
        self.room.participant(conn).expect("seated")
    }
}

/// One connection in each role, all around one meeting with the lobby on.
struct World {
    h: Harness,
    connected: ConnId,
    anonymous: ConnId,
    moderator_idle: ConnId,
    waiting: ConnId,
    participant: ConnId,
    presenter: ConnId,
    moderator: ConnId,
    meeting: String,
}

fn world() -> World {
    let mut h = Harness::new(test_config());
    let moderator = h.moderator();
    let (meeting, pw) = h.create(moderator, true);
    h.send(moderator, ClientMsg::EnterMeeting { meeting_id: meeting.clone(), display_name: "Mo".into() });
    let moderator_idle = h.moderator();
    let participant = h.join([10, 0, 0, 2], &meeting, &pw);
    let presenter = h.join([10, 0, 0, 3], &meeting, &pw);
    let waiting = h.join([10, 0, 0, 4], &meeting, &pw);
    for c in [participant, presenter] {
        let p = h.pid(c);
        h.send(moderator, ClientMsg::Admit { participant: p });
    }
    let p = h.pid(presenter);
    h.send(moderator, ClientMsg::GrantPresenter { participant: p });
    let anonymous = h.hello([10, 0, 0, 5]);
    let connected = h.connect([10, 0, 0, 6]);
    let w = World { h, connected, anonymous, moderator_idle, waiting, participant, presenter, moderator, meeting };
    for (c, r) in w.roles() {
        assert_eq!(w.h.room.role(c), Some(r), "{r:?}");
    }
    w
}

impl World {
    fn roles(&self) -> [(ConnId, ConnRole); 7] {
        [
            (self.connected, ConnRole::Connected),
            (self.anonymous, ConnRole::Anonymous),
            (self.moderator_idle, ConnRole::ModeratorIdle),
            (self.waiting, ConnRole::Waiting),
            (self.participant, ConnRole::Participant),
            (self.presenter, ConnRole::Presenter),
            (self.moderator, ConnRole::Moderator),
        ]
    }

    /// A message of `kind`, with targets chosen so that it succeeds when the role may send it.
    fn message(&self, kind: &str, sender: ConnId) -> ClientMsg {
        let pid = |c| self.h.pid(c);
        // Relay target: someone admitted other than the sender.
        let peer = if sender == self.participant { pid(self.presenter) } else { pid(self.participant) };
        match kind {
            "hello" => ClientMsg::Hello { protocol: 1 },
            "auth_moderator" => ClientMsg::AuthModerator { token: Secret::new(TOKEN) },
            "join" => ClientMsg::Join { meeting_id: self.meeting.clone(), password: Secret::new("wrong"), display_name: "X".into() },
            "resume" => ClientMsg::Resume { token: Secret::new("0".repeat(32)) },
            "enter_meeting" => ClientMsg::EnterMeeting { meeting_id: self.meeting.clone(), display_name: "Mo2".into() },
            "create_meeting" => ClientMsg::CreateMeeting { title: "T".into(), starts_at_unix: None, duration_min: None, lobby: None },
            "export_invitation" => ClientMsg::ExportInvitation { meeting_id: self.meeting.clone() },
            "admit" => ClientMsg::Admit { participant: pid(self.waiting) },
            "deny" => ClientMsg::Deny { participant: pid(self.waiting) },
            "remove" => ClientMsg::Remove { participant: pid(self.participant) },
            "grant_presenter" => ClientMsg::GrantPresenter { participant: pid(self.participant) },
            "revoke_presenter" => ClientMsg::RevokePresenter { participant: pid(self.presenter) },
            "lower_hand" => ClientMsg::LowerHand { participant: pid(self.participant) },
            "lock" => ClientMsg::Lock {},
            "unlock" => ClientMsg::Unlock {},
            "end" => ClientMsg::End {},
            "chat_off" => ClientMsg::ChatOff {},
            "chat_on" => ClientMsg::ChatOn {},
            "share_start" => ClientMsg::ShareStart {},
            "share_stop" => ClientMsg::ShareStop {},
            "document_offer" => ClientMsg::DocumentOffer { offer: "ab".repeat(16) },
            "offer" => ClientMsg::Offer { to: peer, sdp: "v=0".into(), stream: Stream::Media },
            "answer" => ClientMsg::Answer { to: peer, sdp: "v=0".into(), stream: Stream::Media },
            "candidate" => ClientMsg::Candidate {
                to: peer,
                candidate: "candidate:1".into(),
                sdp_mid: None,
                sdp_mline_index: Some(0),
                stream: Stream::Media,
            },
            "device_state" => ClientMsg::DeviceState { camera: true, microphone: false },
            "raise_hand" => ClientMsg::RaiseHand { raised: true },
            "leave" => ClientMsg::Leave {},
            "ping" => ClientMsg::Ping {},
            other => panic!("kind {other} missing from the test"),
        }
    }
}

/// The role matrix. Columns: connected (no hello), anonymous, moderator outside a meeting,
/// waiting in the lobby, participant, presenter, moderator in the meeting.
/// `Y` = allowed, `.` = refused.
const MATRIX: &[(&str, &str)] = &[
    ("hello", "Y......"),
    ("auth_moderator", ".Y....."),
    ("join", ".Y....."),
    ("resume", ".Y....."),
    ("enter_meeting", "..Y...."),
    ("create_meeting", "..Y...Y"),
    ("export_invitation", "..Y...Y"),
    ("admit", "......Y"),
    ("deny", "......Y"),
    ("remove", "......Y"),
    ("grant_presenter", "......Y"),
    ("revoke_presenter", "......Y"),
    ("lower_hand", "......Y"),
    ("lock", "......Y"),
    ("unlock", "......Y"),
    ("end", "......Y"),
    ("chat_off", "......Y"),
    ("chat_on", "......Y"),
    ("share_start", ".....Y."),
    ("share_stop", ".....Y."),
    ("document_offer", ".....Y."),
    ("offer", "....YYY"),
    ("answer", "....YYY"),
    ("candidate", "....YYY"),
    ("device_state", "....YYY"),
    ("raise_hand", "....YYY"),
    ("leave", "...YYYY"),
    ("ping", ".YYYYYY"),
];

#[test]
fn role_matrix_every_kind_by_every_role() {
    assert_eq!(MATRIX.iter().map(|(k, _)| *k).collect::<Vec<_>>(), CLIENT_KINDS, "the matrix lists every kind once, in order");
    let mut checked = 0;
    for (kind, row) in MATRIX {
        let columns: Vec<bool> = row.chars().map(|c| c == 'Y').collect();
        assert_eq!(columns.len(), 7);
        for (i, allowed) in columns.into_iter().enumerate() {
            let mut w = world();
            let (sender, role) = w.roles()[i];
            let msg = w.message(kind, sender);
            let before = w.h.room.digest();
            let log_len = w.h.log.len();
            let out = w.h.send(sender, msg);
            let replies: Vec<&ServerMsg> = w.h.log[log_len..].iter().filter(|(c, _)| *c == sender).map(|(_, m)| m).collect();
            let refusal = replies.iter().find_map(|m| match m {
                ServerMsg::Error { code: code @ (ErrorCode::NotAllowed | ErrorCode::BadState), .. } => Some(*code),
                _ => None,
            });
            if allowed {
                assert!(refusal.is_none(), "{kind} by {role:?} must be allowed: {replies:?}");
                assert!(!out.is_empty(), "{kind} by {role:?} did nothing");
                // join with a wrong password (resume with an unknown token) is allowed to try;
                // it is refused on the secret.
                if !matches!(*kind, "join" | "resume") {
                    assert!(!replies.iter().any(|m| matches!(m, ServerMsg::Error { .. })), "{kind} by {role:?}: {replies:?}");
                }
            } else {
                assert!(refusal.is_some(), "{kind} by {role:?} must be refused: {replies:?}");
                assert_eq!(w.h.room.digest(), before, "refused {kind} by {role:?} changed state");
                let others: Vec<_> = out
                    .iter()
                    .filter(|o| {
                        !matches!(o, Output::Send { conn, .. } if *conn == sender)
                            && !matches!(o, Output::Event(crate::RoomEvent::ShareRefused { .. }))
                    })
                    .collect();
                assert!(others.is_empty(), "refused {kind} by {role:?} had effects: {others:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, CLIENT_KINDS.len() * 7);
}

/// Whose hand is up, as the roster tells `conn`.
fn hands(w: &World, conn: ConnId) -> Vec<(u64, bool)> {
    w.h.log
        .iter()
        .rev()
        .find_map(|(c, m)| match m {
            ServerMsg::Participants { participants, .. } if *c == conn => Some(participants.iter().map(|p| (p.id.0, p.hand)).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_raised_hand_is_the_sender_s_own_and_a_moderator_lowers_it() {
    let mut w = world();
    let me = w.h.pid(w.participant).0;
    let before = w.h.log.len();
    w.h.send(w.participant, ClientMsg::RaiseHand { raised: true });
    assert!(hands(&w, w.presenter).contains(&(me, true)), "the others see it: {:?}", hands(&w, w.presenter));
    assert!(hands(&w, w.participant).contains(&(me, true)), "and so does the sender");
    let sent = w.h.log.len();
    assert!(sent > before);
    // Raising it again changes nothing and sends nothing.
    w.h.send(w.participant, ClientMsg::RaiseHand { raised: true });
    assert_eq!(w.h.log.len(), sent, "a repeated raise costs the room nothing");
    // Nobody else's: a participant cannot lower it, a waiting person cannot raise one.
    w.h.send(w.presenter, ClientMsg::LowerHand { participant: ParticipantId(me) });
    assert!(matches!(w.h.last_to(w.presenter), Some(ServerMsg::Error { code: ErrorCode::NotAllowed, .. })));
    w.h.send(w.waiting, ClientMsg::RaiseHand { raised: true });
    assert!(matches!(w.h.last_to(w.waiting), Some(ServerMsg::Error { code: ErrorCode::NotAllowed, .. })));
    assert!(hands(&w, w.moderator).iter().all(|(id, up)| *id == me || !up), "{:?}", hands(&w, w.moderator));
    // The moderator gives the floor and lowers it; an unknown id is a clear error.
    w.h.send(w.moderator, ClientMsg::LowerHand { participant: ParticipantId(9999) });
    assert!(matches!(w.h.last_to(w.moderator), Some(ServerMsg::Error { code: ErrorCode::UnknownParticipant, .. })));
    w.h.send(w.moderator, ClientMsg::LowerHand { participant: ParticipantId(me) });
    assert!(hands(&w, w.participant).contains(&(me, false)), "lowered for the sender too");
    assert!(w.h.audits.contains(&"lower_hand"));
    // Lowering one's own hand works without a moderator.
    w.h.send(w.participant, ClientMsg::RaiseHand { raised: true });
    w.h.send(w.participant, ClientMsg::RaiseHand { raised: false });
    assert!(hands(&w, w.moderator).contains(&(me, false)));
}

#[test]
fn lobby_admit_deny_and_roster_roles() {
    let mut w = world();
    let waiting_pid = w.h.pid(w.waiting);
    // Participants do not see who waits; moderators do.
    w.h.send(w.participant, ClientMsg::DeviceState { camera: true, microphone: true });
    match w.h.last_to(w.participant) {
        Some(ServerMsg::Participants { waiting, participants, .. }) => {
            assert!(waiting.is_empty());
            let roles: Vec<Role> = participants.iter().map(|p| p.role).collect();
            assert_eq!(roles, vec![Role::Moderator, Role::Participant, Role::Presenter]);
            assert!(participants[1].camera && participants[1].microphone);
        }
        other => panic!("{other:?}"),
    }
    match w.h.last_to(w.moderator) {
        Some(ServerMsg::Participants { waiting, .. }) => assert_eq!(waiting.len(), 1),
        other => panic!("{other:?}"),
    }
    w.h.send(w.moderator, ClientMsg::Deny { participant: waiting_pid });
    assert!(w.h.log.iter().any(|(c, m)| *c == w.waiting && matches!(m, ServerMsg::Lobby { state: LobbyState::Denied, .. })));
    assert!(w.h.closed.contains(&w.waiting));
    assert_eq!(w.h.room.role(w.waiting), Some(ConnRole::Anonymous));
    // A denied id cannot be admitted afterwards.
    w.h.send(w.moderator, ClientMsg::Admit { participant: waiting_pid });
    assert!(matches!(w.h.last_to(w.moderator), Some(ServerMsg::Error { code: ErrorCode::UnknownParticipant, .. })));
    assert!(w.h.audits.contains(&"deny") && w.h.audits.contains(&"admit") && w.h.audits.contains(&"create_meeting"));
}

#[test]
fn remove_presenter_revoke_lock_and_end() {
    let mut w = world();
    let (part, pres) = (w.h.pid(w.participant), w.h.pid(w.presenter));
    // Non-presenter share: refused, and the driver is told (for Janus moderation).
    w.h.send(w.participant, ClientMsg::ShareStart {});
    assert!(w.h.events.iter().any(|e| matches!(e, crate::RoomEvent::ShareRefused { participant, .. } if *participant == part)));
    w.h.send(w.presenter, ClientMsg::ShareStart {});
    assert!(w.h.log.iter().any(|(c, m)| *c == w.participant && matches!(m, ServerMsg::Share { from, active: true } if *from == pres)));
    // Revoking the role stops the share.
    w.h.send(w.moderator, ClientMsg::RevokePresenter { participant: pres });
    assert!(matches!(w.h.last_to(w.participant), Some(ServerMsg::Participants { .. })));
    assert!(w.h.log.iter().any(|(c, m)| *c == w.participant && matches!(m, ServerMsg::Share { active: false, .. })));
    assert_eq!(w.h.room.role(w.presenter), Some(ConnRole::Participant));
    w.h.send(w.presenter, ClientMsg::ShareStart {});
    assert!(matches!(w.h.last_to(w.presenter), Some(ServerMsg::Error { code: ErrorCode::NotAllowed, .. })));
    // Remove.
    w.h.send(w.moderator, ClientMsg::Remove { participant: part });
    assert!(matches!(w.h.last_to(w.participant), Some(ServerMsg::Removed {})));
    assert!(w.h.closed.contains(&w.participant));
    // Moderators cannot remove themselves (they leave).
    let me = w.h.pid(w.moderator);
    w.h.send(w.moderator, ClientMsg::Remove { participant: me });
    assert!(matches!(w.h.last_to(w.moderator), Some(ServerMsg::Error { code: ErrorCode::UnknownParticipant, .. })));
    // Lock: the right password no longer gets in.
    w.h.send(w.moderator, ClientMsg::Lock {});
    let meeting = w.meeting.clone();
    let pw = "unused";
    let _ = pw;
    let (id, pw) = {
        // A fresh meeting for the end test is not needed: use the world's meeting password.
        let m = w.h.log.iter().find_map(|(_, m)| match m {
            ServerMsg::MeetingCreated { meeting, password, .. } => Some((meeting.id.clone(), password.expose().to_owned())),
            _ => None,
        });
        m.expect("created")
    };
    assert_eq!(id, meeting);
    let late = w.h.join([10, 0, 0, 9], &id, &pw);
    assert!(matches!(w.h.last_to(late), Some(ServerMsg::Error { code: ErrorCode::MeetingLocked, .. })));
    w.h.send(w.moderator, ClientMsg::End {});
    for c in [w.presenter, w.waiting, w.moderator] {
        assert!(w.h.log.iter().any(|(cc, m)| *cc == c && matches!(m, ServerMsg::Ended {})), "{c:?}");
    }
    assert!(w.h.closed.contains(&w.presenter) && !w.h.closed.contains(&w.moderator));
    assert_eq!(w.h.room.role(w.moderator), Some(ConnRole::ModeratorIdle));
    let after = w.h.join([10, 0, 0, 10], &id, &pw);
    assert!(matches!(w.h.last_to(after), Some(ServerMsg::Error { code: ErrorCode::MeetingEnded, .. })));
}

fn waiting_of(h: &Harness, moderator: ConnId) -> Vec<crate::protocol::WaitingInfo> {
    match h.log.iter().rev().find(|(c, m)| *c == moderator && matches!(m, ServerMsg::Participants { .. })) {
        Some((_, ServerMsg::Participants { waiting, .. })) => waiting.clone(),
        _ => Vec::new(),
    }
}

fn lobby_state(h: &Harness, conn: ConnId) -> Option<LobbyState> {
    h.log.iter().rev().find_map(|(c, m)| match m {
        ServerMsg::Lobby { state, .. } if *c == conn => Some(*state),
        _ => None,
    })
}

#[test]
fn removed_and_denied_people_wait_in_the_lobby_when_they_return() {
    let mut h = Harness::new(test_config());
    let mo = h.moderator();
    let (id, pw) = h.create(mo, false);
    h.send(mo, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo".into() });
    let bea = h.join([10, 0, 0, 20], &id, &pw);
    assert_eq!(lobby_state(&h, bea), Some(LobbyState::Admitted), "no lobby in this meeting");
    let pid = h.pid(bea);
    h.send(mo, ClientMsg::Remove { participant: pid });
    // Back at once from the same address, under another name: waits, marked as returning.
    let again = h.hello([10, 0, 0, 20]);
    h.send(again, ClientMsg::Join { meeting_id: id.clone(), password: Secret::new(pw.as_str()), display_name: "Bernd".into() });
    assert_eq!(lobby_state(&h, again), Some(LobbyState::Waiting));
    let waiting = waiting_of(&h, mo);
    assert_eq!((waiting.len(), waiting[0].returning), (1, true), "{waiting:?}");
    // Someone else is not affected.
    let carl = h.join([10, 0, 0, 21], &id, &pw);
    assert_eq!(lobby_state(&h, carl), Some(LobbyState::Admitted));
    // A moderator who admits them lifts it.
    let again_pid = h.pid(again);
    h.send(mo, ClientMsg::Admit { participant: again_pid });
    assert_eq!(lobby_state(&h, again), Some(LobbyState::Admitted));
    let third = h.join([10, 0, 0, 20], &id, &pw);
    assert_eq!(lobby_state(&h, third), Some(LobbyState::Admitted));
}

#[test]
fn one_address_cannot_fill_a_meeting() {
    let mut h = Harness::new(RoomConfig { max_participants: 100, seats_per_address: 3, ..RoomConfig::default() });
    let mo = h.moderator();
    let (id, pw) = h.create(mo, false);
    h.send(mo, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo".into() });
    let mut states = Vec::new();
    for _ in 0..6 {
        let c = h.join([10, 0, 0, 30], &id, &pw);
        states.push(lobby_state(&h, c));
    }
    assert_eq!(states, [[Some(LobbyState::Admitted); 3], [Some(LobbyState::Waiting); 3]].concat(), "three seats, then the lobby");
    let refused = h.join([10, 0, 0, 30], &id, &pw);
    assert!(matches!(h.last_to(refused), Some(ServerMsg::Error { code: ErrorCode::MeetingFull, .. })), "{:?}", h.last_to(refused));
    let other = h.join([10, 0, 0, 31], &id, &pw);
    assert_eq!(lobby_state(&h, other), Some(LobbyState::Admitted), "another address is not affected");
}

#[test]
fn moderators_run_their_own_meetings_and_revocation_ends_their_sessions() {
    let mut h = Harness::new(test_config());
    let mo = h.moderator();
    let (id, _) = h.create(mo, false);
    let other = h.hello([10, 0, 0, 40]);
    h.send(other, ClientMsg::AuthModerator { token: Secret::new("tok-mod2") });
    assert_eq!(h.room.role(other), Some(ConnRole::ModeratorIdle));
    for msg in [
        ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Eve".into() },
        ClientMsg::ExportInvitation { meeting_id: id.clone() },
    ] {
        h.send(other, msg);
        assert!(matches!(h.last_to(other), Some(ServerMsg::Error { code: ErrorCode::UnknownMeeting, .. })), "{:?}", h.last_to(other));
    }
    assert_eq!(h.room.role(other), Some(ConnRole::ModeratorIdle), "not in the meeting");
    h.send(mo, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo".into() });
    assert_eq!(h.room.role(mo), Some(ConnRole::Moderator));
    // mod1 removed by the administrator: its session is told, closed and leaves the meeting.
    h.room.revoke_moderators(|m| m != "mod1", h.now);
    h.drive();
    assert!(matches!(h.last_to(mo), Some(ServerMsg::Error { code: ErrorCode::NotAllowed, .. })));
    assert!(h.closed.contains(&mo) && !h.closed.contains(&other));
    assert_eq!(h.room.role(mo), None);
    assert_eq!(h.room.admitted_count(&id.replace('-', "")), 0);
}

#[test]
fn relay_only_between_admitted_members_of_one_meeting() {
    let mut w = world();
    let waiting_pid = w.h.pid(w.waiting);
    let pres = w.h.pid(w.presenter);
    w.h.send(w.participant, ClientMsg::Offer { to: pres, sdp: "v=0".into(), stream: Stream::Media });
    assert!(matches!(w.h.last_to(w.presenter), Some(ServerMsg::Offer { .. })));
    w.h.send(w.participant, ClientMsg::Offer { to: waiting_pid, sdp: "v=0".into(), stream: Stream::Media });
    assert!(matches!(w.h.last_to(w.participant), Some(ServerMsg::Error { code: ErrorCode::UnknownParticipant, .. })));
    // Another meeting's member is unknown here.
    let (id2, pw2) = w.h.create(w.moderator_idle, false);
    let other = w.h.join([10, 0, 0, 7], &id2, &pw2);
    assert!(matches!(
        w.h.log.iter().rev().find(|(c, m)| *c == other && matches!(m, ServerMsg::Lobby { .. })),
        Some((_, ServerMsg::Lobby { state: LobbyState::Admitted, .. }))
    ));
    let other_pid = w.h.pid(other);
    w.h.send(
        w.participant,
        ClientMsg::Candidate { to: other_pid, candidate: "c".into(), sdp_mid: None, sdp_mline_index: None, stream: Stream::Media },
    );
    assert!(matches!(w.h.last_to(w.participant), Some(ServerMsg::Error { code: ErrorCode::UnknownParticipant, .. })));
    assert!(!w.h.log.iter().any(|(c, m)| *c == other && matches!(m, ServerMsg::Candidate { .. })));
}

/// A name that reverses or hides text ("Anna\u{202E}nimdA" reads as an admin to others) is
/// refused before any password check, and names stay as given otherwise.
#[test]
fn invisible_and_bidi_characters_are_refused_in_names() {
    let mut h = Harness::new(test_config());
    let m = h.moderator();
    let (id, pw) = h.create(m, true);
    for (i, name) in
        ["Anna\u{202E}nimdA", "Mo\u{200B}", "\u{2066}Ada\u{2069}", "\u{FEFF}Bo", "Te\u{E0041}st", "Sof\u{00AD}ia"].iter().enumerate()
    {
        let c = h.hello([10, 0, 2, u8::try_from(i).expect("small")]);
        let out = h.send(c, ClientMsg::Join { meeting_id: id.clone(), password: Secret::new(&pw), display_name: (*name).into() });
        let answer = h.last_to(c).map(ServerMsg::to_json).unwrap_or_default();
        assert!(answer.contains("bad_message") && answer.contains("invisible"), "{name:?}: {answer}");
        assert!(!out.iter().any(|o| matches!(o, Output::Verify { .. })), "{name:?} started a password check");
        assert_eq!(h.room.role(c), Some(ConnRole::Anonymous));
    }
    h.send(m, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo\u{202D}".into() });
    assert!(h.last_to(m).map(ServerMsg::to_json).unwrap_or_default().contains("bad_message"));
    let ok = h.hello([10, 0, 2, 99]);
    h.send(ok, ClientMsg::Join { meeting_id: id.clone(), password: Secret::new(&pw), display_name: "Zoë Ünal-Çelik".into() });
    assert_eq!(h.room.role(ok), Some(ConnRole::Waiting), "accented names are names like any other");
}

/// Anonymous sockets cannot pile up: a connection that has not authenticated by the deadline
/// is closed (pinging does not help), authenticated ones are not, and one who leaves a
/// meeting starts a new deadline.
#[test]
fn unauthenticated_connections_are_closed_at_the_deadline() {
    let mut h = Harness::new(test_config());
    let deadline = test_config().auth_deadline;
    let t0 = h.now;
    let m = h.moderator();
    let (id, pw) = h.create(m, false);
    let silent = h.connect([10, 0, 3, 1]);
    let pinging = h.hello([10, 0, 3, 2]);
    let bea = h.join([10, 0, 3, 3], &id, &pw);
    assert_eq!(h.room.role(bea), Some(ConnRole::Participant));
    assert_eq!(h.room.poll_timeout(), Some(t0 + deadline));

    h.now = t0 + deadline - Duration::from_millis(1);
    h.send(pinging, ClientMsg::Ping {});
    h.room.handle_timeout(h.now);
    h.drive();
    assert!(h.closed.is_empty());
    h.now = t0 + deadline;
    h.room.handle_timeout(h.now);
    h.drive();
    h.closed.sort();
    assert_eq!(h.closed, vec![silent, pinging]);
    for c in [silent, pinging] {
        h.room.handle_disconnect(c, h.now);
    }

    // Leaving makes Bea anonymous again: a new deadline from that moment.
    h.send(bea, ClientMsg::Leave {});
    h.now += deadline - Duration::from_millis(1);
    h.room.handle_timeout(h.now);
    h.drive();
    assert_eq!(h.closed.len(), 2);
    h.now += Duration::from_millis(1);
    h.room.handle_timeout(h.now);
    h.drive();
    assert_eq!(h.closed.last(), Some(&bea));
    assert!(!h.closed.contains(&m), "the moderator is authenticated");
}

#[test]
fn wrong_password_and_unknown_meeting_get_the_same_answer() {
    let mut h = Harness::new(test_config());
    let m = h.moderator();
    let (id, _pw) = h.create(m, true);
    let a = h.join([10, 0, 1, 1], &id, "wrongwrongwrongw");
    let b = h.join([10, 0, 1, 2], "zzzz-zzzz-zzzz", "wrongwrongwrongw");
    let c = h.join([10, 0, 1, 3], "not an id", "x");
    let answers: Vec<String> = [a, b, c].iter().map(|c| h.last_to(*c).map(ServerMsg::to_json).unwrap_or_default()).collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    assert!(answers[0].contains("join_refused"));
    assert!(h.events.is_empty());
}

fn quick_limits() -> LimiterConfig {
    LimiterConfig {
        per_address: LimitPolicy {
            free_failures: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            lockout_failures: 10,
            lockout: Duration::from_secs(60),
        },
        per_meeting: LimitPolicy {
            free_failures: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            lockout_failures: 20,
            lockout: Duration::from_secs(60),
        },
        max_entries: 10_000,
    }
}

#[test]
fn brute_force_on_virtual_time() {
    let mut h = Harness::new(RoomConfig { limiter: quick_limits(), ..test_config() });
    let m = h.moderator();
    let (id, pw) = h.create(m, false);
    let attacker = h.hello([192, 0, 2, 1]);
    let mut ids: Vec<String> =
        (0..99).map(|i| format!("{:04}", i).replace('0', "a").replace('1', "b")).map(|s| format!("zzzz-zzzz-{s}")).collect();
    ids.push(id.clone());
    let (mut refused, mut limited) = (0, 0);
    for i in 0..1000 {
        let target = &ids[i % ids.len()];
        h.send(
            attacker,
            ClientMsg::Join { meeting_id: target.clone(), password: Secret::new("wrongwrongwrongw"), display_name: "x".into() },
        );
        match h.last_to(attacker) {
            Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. }) => refused += 1,
            Some(ServerMsg::Error { code: ErrorCode::RateLimited, .. }) => limited += 1,
            other => panic!("attempt {i}: {other:?}"),
        }
        h.now += Duration::from_millis(50);
    }
    assert!(refused <= 10, "only the first attempts reach a password check: {refused}");
    assert_eq!(refused + limited, 1000);
    // Even the right password is refused from the locked-out address.
    h.send(attacker, ClientMsg::Join { meeting_id: id.clone(), password: Secret::new(pw.clone()), display_name: "x".into() });
    assert!(matches!(h.last_to(attacker), Some(ServerMsg::Error { code: ErrorCode::RateLimited, .. })));
    assert!(!h.events.iter().any(|e| matches!(e, crate::RoomEvent::Admitted { conn, .. } if *conn == attacker)));
    // After the window, from another address, the right password works.
    h.now += Duration::from_secs(61);
    let good = h.join([192, 0, 2, 2], &id, &pw);
    assert!(
        matches!(h.last_to(good), Some(ServerMsg::Participants { .. }) | Some(ServerMsg::Lobby { state: LobbyState::Admitted, .. })),
        "{:?}",
        h.last_to(good)
    );
    assert_eq!(h.room.role(good), Some(ConnRole::Participant));
}

#[test]
fn hammering_during_back_off_ends_in_lockout() {
    let cfg = quick_limits();
    let mut h = Harness::new(RoomConfig { limiter: cfg, ..test_config() });
    let m = h.moderator();
    let (id, pw) = h.create(m, false);
    let attacker = h.hello([192, 0, 2, 5]);
    // 1,000 attempts within one millisecond of virtual time: the back-off never expires.
    for _ in 0..1000 {
        h.send(
            attacker,
            ClientMsg::Join { meeting_id: "zzzz-zzzz-zzzz".into(), password: Secret::new("wrongwrongwrongw"), display_name: "x".into() },
        );
    }
    // Well after every back-off, still inside the lockout: the right password is refused.
    h.now += cfg.per_address.backoff_max * 4;
    h.send(attacker, ClientMsg::Join { meeting_id: id.clone(), password: Secret::new(pw.clone()), display_name: "x".into() });
    assert!(matches!(h.last_to(attacker), Some(ServerMsg::Error { code: ErrorCode::RateLimited, .. })), "{:?}", h.last_to(attacker));
    // The meeting itself is not locked by a blocked attacker's hammering.
    let good = h.join([192, 0, 2, 6], &id, &pw);
    assert_eq!(h.room.role(good), Some(ConnRole::Participant));
}

#[test]
fn parallel_attempts_cannot_race_past_the_limit() {
    let mut h = Harness::new(RoomConfig { limiter: quick_limits(), ..test_config() });
    h.auto_verify = false;
    // 50 connections from one address fire before any verification returns.
    let conns: Vec<ConnId> = (0..50).map(|_| h.hello([192, 0, 2, 9])).collect();
    for c in &conns {
        h.send(*c, ClientMsg::Join { meeting_id: "zzzz-zzzz-zzzz".into(), password: Secret::new("x"), display_name: "x".into() });
    }
    assert!(h.held.len() <= 4, "verifications started: {}", h.held.len());
}

#[test]
fn moderator_token_refused_and_hello_rules() {
    let mut h = Harness::new(test_config());
    let c = h.connect([10, 9, 9, 9]);
    h.send(c, ClientMsg::Ping {});
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::BadState, .. })));
    h.send(c, ClientMsg::Hello { protocol: 2 });
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::UnsupportedVersion, .. })));
    assert_eq!(h.room.role(c), Some(ConnRole::Connected));
    h.send(c, ClientMsg::Hello { protocol: 1 });
    h.send(c, ClientMsg::AuthModerator { token: Secret::new("guess") });
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. })));
    assert_eq!(h.room.role(c), Some(ConnRole::Anonymous));
    h.room.handle_text(c, r#"{"type":"chat","text":"hi"}"#, h.now);
    h.drive();
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::BadMessage, .. })));
}

#[test]
fn disconnect_cleans_up_and_full_meeting_refuses() {
    let mut h = Harness::new(RoomConfig { max_participants: 2, ..test_config() });
    let m = h.moderator();
    let (id, pw) = h.create(m, false);
    let a = h.join([10, 0, 2, 1], &id, &pw);
    let b = h.join([10, 0, 2, 2], &id, &pw);
    let c = h.join([10, 0, 2, 3], &id, &pw);
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::MeetingFull, .. })));
    h.room.handle_disconnect(a, h.now);
    h.drive();
    match h.last_to(b) {
        Some(ServerMsg::Participants { participants, .. }) => assert_eq!(participants.len(), 1),
        other => panic!("{other:?}"),
    }
    // A join whose verification returns after the connection dropped is dropped too.
    h.auto_verify = false;
    let d = h.join([10, 0, 2, 4], &id, &pw);
    h.room.handle_disconnect(d, h.now);
    let (t, v) = h.held.pop().expect("held");
    h.room.handle_verified(t, Harness::verify(&v), h.now);
    h.drive();
    assert_eq!(h.room.admitted_count(&id.replace('-', "")), 1);
}

// ---- resume: a dropped connection comes back to its seat ----

/// The resume token of `conn`'s last seat (in the lobby or admitted).
fn resume_token(h: &Harness, conn: ConnId) -> Secret {
    h.log
        .iter()
        .rev()
        .find_map(|(c, m)| match m {
            ServerMsg::Lobby { resume: Some(t), .. } if *c == conn => Some(t.clone()),
            _ => None,
        })
        .expect("a seat with a resume token")
}

fn resume(h: &mut Harness, ip: [u8; 4], token: &Secret) -> ConnId {
    let c = h.hello(ip);
    h.send(c, ClientMsg::Resume { token: token.clone() });
    c
}

/// A meeting with the lobby on and a presenter in it; returns (harness, moderator, presenter,
/// meeting id).
fn meeting_with_presenter() -> (Harness, ConnId, ConnId, String) {
    let mut h = Harness::new(test_config());
    let m = h.moderator();
    let (id, pw) = h.create(m, true);
    h.send(m, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo".into() });
    let bea = h.join([10, 0, 3, 2], &id, &pw);
    let p = h.pid(bea);
    h.send(m, ClientMsg::Admit { participant: p });
    h.send(m, ClientMsg::GrantPresenter { participant: p });
    assert_eq!(h.room.role(bea), Some(ConnRole::Presenter));
    (h, m, bea, id)
}

#[test]
fn resume_after_a_drop_keeps_the_role_and_skips_lobby_and_lock() {
    let (mut h, m, bea, id) = meeting_with_presenter();
    h.send(m, ClientMsg::Lock {});
    let token = resume_token(&h, bea);
    assert_eq!(token.expose().len(), 32);
    let old_pid = h.pid(bea);
    h.room.handle_disconnect(bea, h.now);
    h.drive();
    assert_eq!(h.room.admitted_count(&compact_id(&id)), 1, "gone from the roster while away");
    h.now += Duration::from_secs(30);
    h.events.clear();
    let back = resume(&mut h, [10, 0, 3, 7], &token);
    assert_eq!(h.room.role(back), Some(ConnRole::Presenter), "the role survives, past lobby and lock");
    let new_pid = h.pid(back);
    assert_ne!(new_pid, old_pid, "a new id: the others set up new connections to it");
    let new_token = resume_token(&h, back);
    assert_ne!(new_token, token);
    assert!(h.events.iter().any(|e| matches!(e, crate::RoomEvent::Admitted { conn, .. } if *conn == back)));
    assert!(h.events.iter().any(|e| matches!(e, crate::RoomEvent::RolesChanged { .. })), "Janus learns who may share");
    match h.last_to(m) {
        Some(ServerMsg::Participants { participants, .. }) => {
            assert!(participants.iter().any(|p| p.id == new_pid && p.presenter), "{participants:?}")
        }
        other => panic!("{other:?}"),
    }
    // Single use: the old token seats nobody else.
    let again = resume(&mut h, [10, 0, 3, 8], &token);
    assert!(matches!(h.last_to(again), Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. })), "{:?}", h.last_to(again));
    assert_eq!(h.room.role(again), Some(ConnRole::Anonymous));
}

#[test]
fn resume_takes_a_seat_the_server_still_holds_and_a_moderator_stays_one() {
    let (mut h, m, bea, id) = meeting_with_presenter();
    // The server has not noticed the cut yet: the old connections still hold the seats.
    let token = resume_token(&h, m);
    let back = resume(&mut h, [10, 0, 0, 1], &token);
    assert!(h.closed.contains(&m), "the old connection is closed");
    assert_eq!(h.room.role(m), Some(ConnRole::ModeratorIdle), "and holds no seat");
    assert_eq!(h.room.role(back), Some(ConnRole::Moderator));
    assert_eq!(h.room.admitted_count(&compact_id(&id)), 2, "one seat each, not two for the moderator");
    // Moderator powers work from the new connection.
    let p = h.pid(bea);
    h.send(back, ClientMsg::RevokePresenter { participant: p });
    assert!(matches!(h.last_to(back), Some(ServerMsg::Participants { .. } | ServerMsg::Done { .. })), "{:?}", h.last_to(back));
    assert_eq!(h.room.role(bea), Some(ConnRole::Participant));
    // The closed connection's late disconnect keeps nothing for a second resume.
    h.room.handle_disconnect(m, h.now);
    h.drive();
    let again = resume(&mut h, [10, 0, 0, 1], &token);
    assert!(matches!(h.last_to(again), Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. })));
}

#[test]
fn resume_ends_with_the_grace_period_and_never_follows_leave_removal_end_or_revocation() {
    let grace = test_config().resume_grace;
    // The grace period, on virtual time.
    let (mut h, _m, bea, _id) = meeting_with_presenter();
    let token = resume_token(&h, bea);
    h.room.handle_disconnect(bea, h.now);
    h.drive();
    let due = h.room.poll_timeout().expect("a timeout for the kept seat");
    assert!(due <= h.now + grace, "{due:?}");
    // Just before the end it still works (checked on a copy of the world)...
    let (mut early, _, early_bea, _) = meeting_with_presenter();
    let early_token = resume_token(&early, early_bea);
    early.room.handle_disconnect(early_bea, early.now);
    early.now += grace - Duration::from_millis(1);
    early.room.handle_timeout(early.now);
    let c = resume(&mut early, [10, 0, 3, 2], &early_token);
    assert_eq!(early.room.role(c), Some(ConnRole::Presenter));
    // ...and at the end it no longer does.
    h.now += grace;
    h.room.handle_timeout(h.now);
    let late = resume(&mut h, [10, 0, 3, 2], &token);
    assert!(matches!(h.last_to(late), Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. })));
    assert_eq!(h.room.role(late), Some(ConnRole::Anonymous));

    // Leave, removal: the seat is given up or taken, nothing is kept.
    let (mut h, m, bea, id) = meeting_with_presenter();
    let token = resume_token(&h, bea);
    h.send(bea, ClientMsg::Leave {});
    h.room.handle_disconnect(bea, h.now);
    let c = resume(&mut h, [10, 0, 3, 2], &token);
    assert_eq!(h.room.role(c), Some(ConnRole::Anonymous), "after leave");
    let (mut h2, m2, bea2, _) = meeting_with_presenter();
    let token2 = resume_token(&h2, bea2);
    let p = h2.pid(bea2);
    h2.send(m2, ClientMsg::Remove { participant: p });
    h2.room.handle_disconnect(bea2, h2.now);
    let c = resume(&mut h2, [10, 0, 3, 9], &token2);
    assert_eq!(h2.room.role(c), Some(ConnRole::Anonymous), "after removal");

    // The end: kept seats go with the meeting.
    let other = resume_token(&h, m);
    h.room.handle_disconnect(m, h.now);
    h.drive();
    let m3 = h.moderator();
    h.send(m3, ClientMsg::EnterMeeting { meeting_id: id.clone(), display_name: "Mo".into() });
    h.send(m3, ClientMsg::End {});
    let c = resume(&mut h, [10, 0, 0, 1], &other);
    assert!(matches!(h.last_to(c), Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. })), "after the end");

    // Revocation: a revoked moderator's kept seat is gone too.
    let (mut h, m, _bea, _id) = meeting_with_presenter();
    let token = resume_token(&h, m);
    h.room.handle_disconnect(m, h.now);
    h.drive();
    h.room.revoke_moderators(|_| false, h.now);
    h.drive();
    let c = resume(&mut h, [10, 0, 0, 1], &token);
    assert_eq!(h.room.role(c), Some(ConnRole::Anonymous), "after revocation");
}

#[test]
fn guessing_resume_tokens_runs_into_the_address_limit() {
    let mut h = Harness::new(RoomConfig { limiter: quick_limits(), ..test_config() });
    let attacker = h.hello([192, 0, 2, 20]);
    let (mut refused, mut limited) = (0, 0);
    for i in 0..500u32 {
        h.send(attacker, ClientMsg::Resume { token: Secret::new(format!("{i:032x}")) });
        match h.last_to(attacker) {
            Some(ServerMsg::Error { code: ErrorCode::JoinRefused, .. }) => refused += 1,
            Some(ServerMsg::Error { code: ErrorCode::RateLimited, .. }) => limited += 1,
            other => panic!("attempt {i}: {other:?}"),
        }
        h.now += Duration::from_millis(50);
    }
    assert!(refused <= 10, "only the first guesses are looked up: {refused}");
    assert_eq!(refused + limited, 500);
}

/// The server as it comes back after a crash: what its database held, loaded into a new
/// room (a seat whose member was connected gets the whole grace period from now).
fn restarted(h: &Harness) -> Harness {
    let mut n = Harness::new(test_config());
    n.room = crate::Room::new(test_config(), Box::new(CountingEntropy::new(101, 13)));
    n.now = h.now + Duration::from_secs(2);
    n.next_conn = 1000;
    for m in &h.db_meetings {
        n.room.handle_meeting_loaded(m.clone());
    }
    let grace = test_config().resume_grace;
    let seats = h.db_seats.values().map(|(seat, until)| (seat.clone(), until.unwrap_or(n.now + grace))).collect();
    n.room.handle_seats_loaded(seats);
    n.db_meetings.clone_from(&h.db_meetings);
    n.db_seats.clone_from(&h.db_seats);
    n
}

#[test]
fn after_a_restart_everyone_resumes_with_role_lobby_place_and_the_meetings_switches() {
    let (mut h, m, bea, id) = meeting_with_presenter();
    let cem = h.join([10, 0, 3, 4], &id, &test_password(&h));
    assert_eq!(h.room.role(cem), Some(ConnRole::Waiting));
    h.send(m, ClientMsg::Lock {});
    h.send(m, ClientMsg::ChatOff {});
    let tokens = [resume_token(&h, m), resume_token(&h, bea), resume_token(&h, cem)];
    assert_eq!(h.db_seats.len(), 3, "one stored seat each: {:?}", h.db_seats);
    assert!(h.db_seats.values().all(|(_, away)| away.is_none()), "all connected");
    assert!(!format!("{:?}", h.db_seats).contains(tokens[1].expose()), "only hashes are stored");

    // The process dies: no disconnect is seen. The new one knows only the database.
    let mut n = restarted(&h);
    let back: Vec<ConnId> = tokens.iter().map(|t| resume(&mut n, [10, 0, 3, 9], t)).collect();
    assert_eq!(n.room.role(back[0]), Some(ConnRole::Moderator));
    assert_eq!(n.room.role(back[1]), Some(ConnRole::Presenter));
    assert_eq!(n.room.role(back[2]), Some(ConnRole::Waiting), "back in the lobby, not admitted by the restart");
    match n.last_to(back[0]) {
        Some(ServerMsg::Participants { locked, chat, participants, waiting, .. }) => {
            assert!(*locked && !*chat, "the switches survive");
            assert_eq!((participants.len(), waiting.len()), (2, 1), "{participants:?} {waiting:?}");
        }
        other => panic!("{other:?}"),
    }
    // The moderator admits from the lobby as before; a locked meeting still refuses newcomers.
    let p = n.pid(back[2]);
    n.send(back[0], ClientMsg::Admit { participant: p });
    assert_eq!(n.room.role(back[2]), Some(ConnRole::Participant));
    let newcomer = n.join([10, 0, 3, 5], &id, &test_password(&h));
    assert!(matches!(n.last_to(newcomer), Some(ServerMsg::Error { code: ErrorCode::MeetingLocked, .. })));
    // The old tokens are spent; the store holds the three new seats only.
    assert_eq!(n.db_seats.len(), 3, "{:?}", n.db_seats);
    let again = resume(&mut n, [10, 0, 3, 9], &tokens[1]);
    assert_eq!(n.room.role(again), Some(ConnRole::Anonymous));
}

#[test]
fn stored_seats_follow_leave_removal_expiry_and_the_end() {
    let (mut h, m, bea, id) = meeting_with_presenter();
    assert_eq!(h.db_seats.len(), 2);
    h.send(bea, ClientMsg::Leave {});
    assert_eq!(h.db_seats.len(), 1, "a leave gives the seat up");
    let cem = h.join([10, 0, 3, 4], &id, &test_password(&h));
    let p = h.pid(cem);
    h.send(m, ClientMsg::Admit { participant: p });
    assert_eq!(h.db_seats.len(), 2, "the lobby seat became the admitted one");
    h.room.handle_disconnect(cem, h.now);
    h.drive();
    assert!(h.db_seats.values().any(|(s, away)| away.is_some() && s.admitted), "kept, with its end: {:?}", h.db_seats);
    h.now += test_config().resume_grace;
    h.room.handle_timeout(h.now);
    h.drive();
    assert_eq!(h.db_seats.len(), 1, "expired");
    h.send(m, ClientMsg::End {});
    assert!(h.db_seats.is_empty(), "the end takes every seat: {:?}", h.db_seats);
}

/// The password of the harness's first meeting (its fake hash is `hash:<password>`).
fn test_password(h: &Harness) -> String {
    h.db_meetings[0].password_hash.trim_start_matches("hash:").to_owned()
}

fn compact_id(id: &str) -> String {
    id.replace('-', "")
}

// ---- model-based: random sequences keep the invariants and refusals change nothing ----

fn arb_msg() -> impl Strategy<Value = (usize, u8, u64)> {
    (0usize..7, 0u8..26, 0u64..12)
}

fn pick(kind: u8, target: u64, meeting: &str, pw: &str) -> ClientMsg {
    let p = ParticipantId(target);
    match kind {
        0 => ClientMsg::Hello { protocol: 1 },
        1 => ClientMsg::AuthModerator { token: Secret::new(if target.is_multiple_of(2) { TOKEN } else { "nope" }) },
        2 => ClientMsg::Join {
            meeting_id: meeting.into(),
            password: Secret::new(if target.is_multiple_of(3) { "nope" } else { pw }),
            display_name: "R".into(),
        },
        3 => ClientMsg::EnterMeeting { meeting_id: meeting.into(), display_name: "M".into() },
        4 => {
            ClientMsg::CreateMeeting { title: "t".into(), starts_at_unix: None, duration_min: None, lobby: Some(target.is_multiple_of(2)) }
        }
        5 => ClientMsg::ExportInvitation { meeting_id: meeting.into() },
        6 => ClientMsg::Admit { participant: p },
        7 => ClientMsg::Deny { participant: p },
        8 => ClientMsg::Remove { participant: p },
        9 => ClientMsg::GrantPresenter { participant: p },
        10 => ClientMsg::RevokePresenter { participant: p },
        11 => ClientMsg::Lock {},
        12 => ClientMsg::Unlock {},
        13 => ClientMsg::End {},
        14 => ClientMsg::ShareStart {},
        15 => ClientMsg::ShareStop {},
        16 => ClientMsg::DocumentOffer { offer: "0".repeat(32) },
        17 => ClientMsg::Offer { to: p, sdp: "s".into(), stream: Stream::Media },
        18 => ClientMsg::Answer { to: p, sdp: "s".into(), stream: Stream::Media },
        19 => ClientMsg::Candidate { to: p, candidate: "c".into(), sdp_mid: None, sdp_mline_index: None, stream: Stream::Media },
        20 => ClientMsg::DeviceState { camera: target.is_multiple_of(2), microphone: true },
        21 => ClientMsg::Leave {},
        22 => ClientMsg::Resume { token: Secret::new(format!("{target:032x}")) },
        23 => ClientMsg::RaiseHand { raised: target.is_multiple_of(2) },
        24 => ClientMsg::LowerHand { participant: p },
        _ => ClientMsg::Ping {},
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_invariants(steps in proptest::collection::vec(arb_msg(), 1..120)) {
        let mut h = Harness::new(test_config());
        let m = h.moderator();
        let (meeting, pw) = h.create(m, true);
        let conns: Vec<ConnId> = (0..7).map(|i| h.connect([10, 1, 0, i])).collect();
        for (who, kind, target) in steps {
            let c = conns[who];
            let msg = pick(kind, target, &meeting, &pw);
            let role = h.room.role(c);
            let before = h.room.digest();
            let start = h.log.len();
            h.send(c, msg.clone());
            let refused = h.log[start..].iter().any(|(cc, m)| *cc == c && matches!(m, ServerMsg::Error { code: ErrorCode::NotAllowed | ErrorCode::BadState, .. }));
            if refused {
                prop_assert_eq!(&h.room.digest(), &before, "{:?} by {:?}", msg, role);
            }
            // Only presenters share; everyone with a seat is in exactly one meeting's roster.
            for cc in &conns {
                if let Some(ConnRole::Waiting | ConnRole::Participant | ConnRole::Presenter | ConnRole::Moderator) = h.room.role(*cc) {
                    prop_assert!(h.room.meeting_of(*cc).is_some());
                }
            }
            for (cc, m) in &h.log[start..] {
                if let ServerMsg::Share { active: true, from } = m {
                    let sender_role = conns.iter().find(|x| h.room.participant(**x) == Some(*from)).and_then(|x| h.room.role(*x));
                    prop_assert!(matches!(sender_role, Some(ConnRole::Presenter)), "share from {:?} seen by {:?}", sender_role, cc);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    /// Remote input never panics the machine, and unparseable input changes nothing.
    #[test]
    fn arbitrary_text_is_answered_not_crashed(texts in proptest::collection::vec(
        prop_oneof![
            any::<String>(),
            "\\{\"type\":\"[a-z_]{1,20}\"(,\"[a-z_]{1,12}\":(1|\"x\"|true|null|\\[\\]))*\\}",
        ],
        1..20,
    )) {
        let mut h = Harness::new(test_config());
        let m = h.moderator();
        h.create(m, true);
        let c = h.hello([10, 2, 0, 1]);
        for text in texts {
            let before = h.room.digest();
            let parsed = crate::protocol::parse_client(&text).is_ok();
            let start = h.log.len();
            h.room.handle_text(c, &text, h.now);
            h.drive();
            if !parsed {
                prop_assert_eq!(&h.room.digest(), &before);
                let only_errors = h.log[start..].iter().all(|(cc, m)| *cc == c && matches!(m, ServerMsg::Error { code: ErrorCode::BadMessage | ErrorCode::TooLarge, .. }));
                prop_assert!(only_errors, "unparseable input had effects");
            }
        }
    }
}
