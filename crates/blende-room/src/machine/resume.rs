//! Coming back after a lost connection: every seat (in the lobby or admitted) gets a
//! single-use resume token; a connection that drops leaves its seat kept for the grace period,
//! and a `resume` within it seats the new connection as the old one was. Seats are stored
//! ([`StoreCmd::KeepSeat`]) so that they outlive a restart of the server: the driver loads them
//! back with [`Room::handle_seats_loaded`]. Only the token's SHA-256 is ever kept.

use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{Away, ConnId, Member, Output, Room, RoomEvent, Seat, SeatRecord, StoreCmd};
use crate::limiter::LimitKey;
use crate::protocol::{ErrorCode, Secret, ServerMsg};

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Room {
    /// Seats stored before a restart, with the instant each one's grace ends (the driver maps
    /// the stored time, or gives a seat whose member was connected at the restart the whole
    /// grace period from now). Seats of unknown or ended meetings are ignored.
    pub fn handle_seats_loaded(&mut self, seats: Vec<(SeatRecord, Instant)>) {
        for (seat, until) in seats {
            if self.meetings.get(&seat.meeting).is_none_or(|m| m.ended) {
                continue;
            }
            self.away_expiry.insert((until, seat.token_hash.clone()));
            self.away.insert(seat.token_hash.clone(), Away { seat, until });
        }
    }

    /// A fresh token for `seat` (its old one, if any, is dropped), stored with the seat.
    pub(super) fn issue_resume(&mut self, seat: &Seat) -> Option<Secret> {
        let mut bytes = [0u8; 16];
        self.entropy.fill(&mut bytes).ok()?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let member = self.member_mut(seat)?;
        let old = member.resume.replace(token_hash(&token));
        if let Some(token_hash) = old {
            self.out.push_back(Output::Store(StoreCmd::DropSeat { token_hash }));
        }
        self.store_seat(seat, None);
        Some(Secret::new(token))
    }

    /// What a resume of `seat` would restore, as it stands.
    fn record_of(&self, seat: &Seat) -> Option<SeatRecord> {
        let member = self.meetings.get(&seat.meeting)?.members.get(&seat.pid)?;
        let moderator = if member.moderator { self.conns.get(&member.conn).and_then(|c| c.moderator.clone()) } else { None };
        Some(SeatRecord {
            token_hash: member.resume.clone()?,
            meeting: seat.meeting.clone(),
            display_name: member.display_name.clone(),
            moderator,
            presenter: member.presenter,
            admitted: member.admitted,
        })
    }

    /// Stores `seat` as it stands (after its role changed, or when it goes away).
    pub(super) fn store_seat(&mut self, seat: &Seat, away_until: Option<Instant>) {
        if let Some(record) = self.record_of(seat) {
            self.out.push_back(Output::Store(StoreCmd::KeepSeat { seat: record, away_until }));
        }
    }

    /// A member left their seat: unless it is kept for a resume, its token goes.
    pub(super) fn seat_gone(&mut self, member: &Member) {
        if let Some(token_hash) = member.resume.clone().filter(|h| !self.away.contains_key(h)) {
            self.out.push_back(Output::Store(StoreCmd::DropSeat { token_hash }));
        }
    }

    /// Kept seats for which `gone` holds are given up.
    pub(super) fn forget_seats(&mut self, gone: impl Fn(&Away) -> bool) {
        let hashes: Vec<String> = self.away.iter().filter(|(_, a)| gone(a)).map(|(h, _)| h.clone()).collect();
        for token_hash in hashes {
            if let Some(a) = self.away.remove(&token_hash) {
                self.away_expiry.remove(&(a.until, token_hash.clone()));
            }
            self.out.push_back(Output::Store(StoreCmd::DropSeat { token_hash }));
        }
    }

    pub(super) fn expire_seats(&mut self, now: Instant) {
        while let Some((at, token_hash)) = self.away_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.away_expiry.pop_first();
            if self.away.remove(&token_hash).is_some() {
                self.out.push_back(Output::Store(StoreCmd::DropSeat { token_hash }));
            }
        }
    }

    /// A member's connection dropped: their seat is kept for a `resume` (not after a leave,
    /// a removal or the end, which take the seat first). Call before the seat is emptied.
    pub(super) fn keep_for_resume(&mut self, seat: &Seat, now: Instant) {
        if self.meetings.get(&seat.meeting).is_none_or(|m| m.ended) {
            return;
        }
        let Some(record) = self.record_of(seat) else { return };
        let until = now + self.config.resume_grace;
        self.out.push_back(Output::Store(StoreCmd::KeepSeat { seat: record.clone(), away_until: Some(until) }));
        self.away_expiry.insert((until, record.token_hash.clone()));
        self.away.insert(record.token_hash.clone(), Away { seat: record, until });
    }

    /// `resume`: the seat a token names, kept after a dropped connection or still held by a
    /// connection the server has not yet seen drop (which is closed), is taken by `conn` under
    /// a new participant id, as it was: in the lobby, or admitted with its role (past lobby
    /// and lock).
    pub(super) fn resume(&mut self, conn: ConnId, token: &str, now: Instant) {
        const KIND: &str = "resume";
        let Some(addr) = self.conns.get(&conn).map(|c| c.addr) else { return };
        let keys = [LimitKey::address(addr)];
        if self.limited(conn, &keys, KIND, now) {
            return;
        }
        let hash = token_hash(token);
        let kept = match self.away.remove(&hash) {
            Some(away) => {
                self.away_expiry.remove(&(away.until, hash.clone()));
                self.out.push_back(Output::Store(StoreCmd::DropSeat { token_hash: hash.clone() }));
                Some(away.seat).filter(|_| away.until > now)
            }
            None => self.take_held_seat(&hash),
        };
        let Some(seat) = kept else {
            self.record_attempt(&keys, now);
            self.send(conn, ServerMsg::error(ErrorCode::JoinRefused, "this session cannot be resumed", Some(KIND)));
            return;
        };
        if self.meetings.get(&seat.meeting).is_none_or(|m| m.ended) {
            self.send(conn, ServerMsg::error(ErrorCode::MeetingEnded, "the meeting has ended", Some(KIND)));
            return;
        }
        self.limiter.forgive(&keys);
        let moderator = seat.moderator.is_some();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.moderator = seat.moderator;
        }
        self.add_member(conn, &seat.meeting, seat.display_name, seat.admitted, moderator, seat.presenter);
        if seat.presenter && seat.admitted {
            self.out.push_back(Output::Event(RoomEvent::RolesChanged { meeting_id: seat.meeting }));
        }
    }

    /// The seated member whose token hashes to `hash`: their old connection loses the seat
    /// and is closed; what a resume restores is returned.
    fn take_held_seat(&mut self, hash: &str) -> Option<SeatRecord> {
        let seat = self.meetings.iter().find_map(|(id, m)| {
            m.members.iter().find(|(_, mem)| mem.resume.as_deref() == Some(hash)).map(|(pid, _)| Seat { meeting: id.clone(), pid: *pid })
        })?;
        let record = self.record_of(&seat)?;
        let old = self.meetings.get(&seat.meeting)?.members.get(&seat.pid)?.conn;
        if let Some(c) = self.conns.get_mut(&old) {
            c.seat = None;
        }
        self.unseat(old, &seat);
        self.out.push_back(Output::Close { conn: old });
        Some(record)
    }
}
