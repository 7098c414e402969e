//! Blende's room server, sans IO: the versioned JSON wire protocol ([`protocol`]), the
//! room/roles state machine ([`Room`]), the join-attempt limiter ([`limiter`]), the
//! per-connection send budget ([`rate`]) and invitation text/`.ics` rendering ([`invite`]).
//!
//! How it is driven: `blende-server` owns one [`Room`] in one task. It numbers connections
//! ([`ConnId`]) and feeds every event in through the `handle_*` methods with its own
//! `Instant`; then it drains [`Room::poll_output`]: messages addressed to connections, closes,
//! password/token verifications (argon2 is the driver's job, off the loop), storage commands
//! and events (TURN, Janus), and sleeps until [`Room::poll_timeout`]. Nothing here reads a
//! clock, opens a socket or spawns a thread, so tests run on virtual time.

pub mod invite;
pub mod limiter;
mod machine;
pub mod protocol;
pub mod rate;

pub use machine::{
    AuditEntry, ConnId, ConnRole, JanusMember, MeetingRecord, Output, Room, RoomConfig, RoomEvent, SeatRecord, StoreCmd, Ticket, Verify,
    VerifyOutcome, invitation_for, permission,
};

#[cfg(test)]
mod tests;
