//! What flows into the hub and out to a connection: a leaf module, so the connection tasks
//! (`net`), the Janus worker (`janus_sync`) and the hub share it without importing each other.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use blende_room::protocol::{ParticipantId, ServerMsg};
use blende_room::{ConnId, Ticket, VerifyOutcome};
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum HubInput {
    Connect {
        conn: ConnId,
        addr: IpAddr,
        tx: mpsc::Sender<Outgoing>,
        roster: RosterSlot,
    },
    Text {
        conn: ConnId,
        text: String,
    },
    Disconnect {
        conn: ConnId,
    },
    Verified {
        ticket: Ticket,
        outcome: VerifyOutcome,
    },
    /// From the Janus worker: how this member joins the meeting's Janus room.
    Deliver {
        conn: ConnId,
        participant: ParticipantId,
        msg: ServerMsg,
    },
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

/// Queue depth towards one client. A client that lets it fill up is dropped rather than
/// allowed to stall the hub.
pub const CONN_QUEUE: usize = 256;
/// Queue depth into the hub.
pub const HUB_QUEUE: usize = 4096;
