//! What participants send each other directly: chat, documents and the identity check.
//!
//! Everything here travels on a data channel of a PeerConnection between two participants
//! (DTLS, end to end): never through the room server, Janus or TURN in the clear. This crate is
//! the protocol on that channel and the rules around it, without IO:
//!
//! - [`wire`]: the frames on the channel (`blende-p2p/1`): JSON control messages and binary
//!   document chunks. [`wire::decode`] parses what a peer sent, strictly: a hostile peer gets a
//!   [`wire::WireError`], never a panic.
//! - [`chat`]: what a chat text may contain ([`chat::clean_text`]), and the in-memory history
//!   ([`chat::ChatLog`]) that is gone when the call ends.
//! - [`transfer`]: one document in each direction as a sans-IO machine. [`transfer::Incoming`]
//!   checks every chunk against the offer (order, announced size) and the whole file against its
//!   announced SHA-256 before the driver may give it its final name; [`transfer::Outgoing`]
//!   follows the receiver's accept, resume and verdict. The driver reads and writes the files.
//! - [`names`]: a file name a peer sent, made safe for the receiver's folder
//!   ([`names::safe_file_name`]) and never overwriting a file ([`names::candidates`]).
//! - [`bus`]: how Blende clients in a plain Janus room find each other and exchange the offers
//!   of their direct connections over Janus's data relay (signalling only, never chat).
//! - [`identity`]: the short authentication string both ends derive from the two DTLS
//!   certificate fingerprints seen on the wire ([`identity::IdentityCode`]).
//!
//! **Architecture invariant:** this crate knows nothing about files, sockets, threads or clocks;
//! a receiver never accepts a byte past the announced size, and only [`transfer::Incoming`]
//! decides that a document is complete (checked by `cargo xtask check-deps` and the tests here).

pub mod bus;
pub mod chat;
pub mod identity;
pub mod names;
pub mod transfer;
pub mod wire;

pub use chat::{ChatEntry, ChatError, ChatLog};
pub use identity::IdentityCode;
pub use names::{NameError, safe_file_name};
pub use transfer::{Incoming, Limits, Offer, Outgoing, TransferError, Verdict};
pub use wire::{Control, Frame, WireError};
