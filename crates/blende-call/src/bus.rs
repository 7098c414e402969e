//! A plain Janus room: what the [`crate::Call`] knows about the relay on which Blende clients
//! find each other and exchange the offers of their direct connections
//! ([`blende_p2p::bus`] has the messages and the rules).
//!
//! Our publisher's data channel is where we send; each subscription's data channel is where one
//! member's messages arrive. Messages for a closed publisher channel wait here (a few: a hello
//! and an offer per member), so a subscription that opens first loses nothing.
//!
//! Janus drops what it relays to a subscription it does not count as ready yet, and it counts
//! one ready a little after our end of it opened: two hellos sent at the moments each side's
//! subscription opened can both be lost. So a hello is sent again every [`HELLO_EVERY`] until a
//! direct connection to that member exists, [`MAX_HELLOS`] times at most.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use blende_p2p::bus::Bus;

use crate::PeerId;

/// Messages waiting for the publisher's channel at most; older ones are dropped.
const MAX_WAITING: usize = 64;
/// How often an unanswered hello goes out again.
pub const HELLO_EVERY: Duration = Duration::from_secs(1);
/// Hellos to one member at most (a browser never answers).
pub const MAX_HELLOS: u32 = 30;

#[derive(Debug, Default)]
pub(crate) struct JanusBus {
    /// Our publisher, once its data channel is open.
    open: Option<PeerId>,
    waiting: Vec<Bus>,
    /// Members to greet again: when, and how many hellos went out.
    hellos: BTreeMap<String, (Instant, u32)>,
}

impl JanusBus {
    /// We hear `feed` now (its subscription's data channel opened) and sent the first hello.
    pub fn greeting(&mut self, feed: &str, now: Instant) {
        self.hellos.insert(feed.to_owned(), (now + HELLO_EVERY, 1));
    }

    /// No more hellos to `feed` (a direct connection exists, or they left).
    pub fn greeted(&mut self, feed: &str) {
        self.hellos.remove(feed);
    }

    /// Members whose hello is due again now.
    pub fn due_hellos(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        self.hellos.retain(|feed, (at, sent)| {
            if now < *at {
                return true;
            }
            due.push(feed.clone());
            *sent += 1;
            *at = now + HELLO_EVERY;
            *sent < MAX_HELLOS
        });
        due
    }

    pub fn next_hello(&self) -> Option<Instant> {
        self.hellos.values().map(|(at, _)| *at).min()
    }

    /// `message` to send now on the returned publisher, or kept until it opens.
    pub fn send(&mut self, message: Bus) -> Option<(PeerId, Bus)> {
        if let Some(peer) = self.open {
            return Some((peer, message));
        }
        if self.waiting.len() == MAX_WAITING {
            self.waiting.remove(0);
        }
        self.waiting.push(message);
        None
    }

    /// The publisher's data channel opened: what waited goes out on it.
    pub fn opened(&mut self, publisher: PeerId) -> Vec<Bus> {
        self.open = Some(publisher);
        std::mem::take(&mut self.waiting)
    }

    /// `peer` closed (or its channel did): nothing more is sent on it.
    pub fn closed(&mut self, peer: PeerId) {
        if self.open == Some(peer) {
            self.open = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_publisher_and_drops_the_oldest_past_the_limit() {
        let mut bus = JanusBus::default();
        for i in 0..=MAX_WAITING {
            assert_eq!(bus.send(Bus::Hello { to: i.to_string(), reply: false }), None);
        }
        let sent = bus.opened(PeerId(3));
        assert_eq!(sent.len(), MAX_WAITING);
        assert_eq!(sent[0].to(), "1", "the oldest was dropped");
        assert_eq!(bus.send(Bus::Hello { to: "x".into(), reply: true }).map(|(p, _)| p), Some(PeerId(3)));
        bus.closed(PeerId(2));
        assert!(bus.send(Bus::Hello { to: "y".into(), reply: true }).is_some(), "another peer's close changes nothing");
        bus.closed(PeerId(3));
        assert_eq!(bus.send(Bus::Hello { to: "z".into(), reply: true }), None);
    }

    #[test]
    fn hellos_repeat_until_greeted_and_give_up() {
        let mut bus = JanusBus::default();
        let t0 = Instant::now();
        bus.greeting("7", t0);
        bus.greeting("9", t0);
        assert!(bus.due_hellos(t0).is_empty());
        assert_eq!(bus.next_hello(), Some(t0 + HELLO_EVERY));
        assert_eq!(bus.due_hellos(t0 + HELLO_EVERY), ["7", "9"]);
        bus.greeted("7");
        let mut sent = 2;
        let mut now = t0 + HELLO_EVERY;
        while let Some(at) = bus.next_hello() {
            now = at;
            sent += bus.due_hellos(now).len();
        }
        assert_eq!(sent, MAX_HELLOS as usize, "9 gets {MAX_HELLOS} hellos in all, then no more");
        assert!(now <= t0 + HELLO_EVERY * MAX_HELLOS);
    }
}
