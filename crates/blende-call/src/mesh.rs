//! Which mesh PeerConnection to each participant is current, whether its answer came and
//! whether it came up, and the answers still owed to replaced ones.

use std::collections::{BTreeMap, HashMap};

use crate::PeerId;

/// The mesh's replace-and-offer-again rules as pure bookkeeping. Keys are mesh routes: a
/// participant id for our camera and microphone, `"ID/screen"` for our share to them.
#[derive(Debug, Default)]
pub struct MeshBook {
    current: BTreeMap<String, MeshState>,
    /// Answers still to come for offers of PeerConnections replaced before their answer
    /// arrived. Answers come in the order of our offers (the other side answers each offer in
    /// turn, over one relay), so the next that many answers on that route are stale.
    stale_answers: HashMap<String, u32>,
}

#[derive(Debug, Clone, Copy)]
struct MeshState {
    peer: PeerId,
    answered: bool,
    connected: bool,
}

impl MeshBook {
    /// `peer`'s offer on `route` was sent: it replaces any earlier PeerConnection there.
    pub fn opened(&mut self, route: &str, peer: PeerId) {
        let fresh = MeshState { peer, answered: false, connected: false };
        if let Some(old) = self.current.insert(route.to_owned(), fresh)
            && !old.answered
        {
            *self.stale_answers.entry(route.to_owned()).or_default() += 1;
        }
    }

    /// An answer on `route` arrived: the PeerConnection it belongs to, when that is the
    /// current one and it had no answer yet.
    pub fn answer(&mut self, route: &str) -> Option<PeerId> {
        if let Some(n) = self.stale_answers.get_mut(route).filter(|n| **n > 0) {
            *n -= 1;
            return None;
        }
        match self.current.get_mut(route) {
            Some(m) if !m.answered => {
                m.answered = true;
                Some(m.peer)
            }
            _ => None,
        }
    }

    #[must_use]
    pub fn current(&self, route: &str) -> Option<PeerId> {
        self.current.get(route).map(|m| m.peer)
    }

    #[must_use]
    pub fn is_current(&self, route: &str, peer: PeerId) -> bool {
        self.current(route) == Some(peer)
    }

    pub fn connected(&mut self, route: &str, peer: PeerId) {
        if let Some(m) = self.current.get_mut(route).filter(|m| m.peer == peer) {
            m.connected = true;
        }
    }

    /// Routes whose current PeerConnection never came up (to be made again when TURN servers
    /// arrive), in a stable order.
    #[must_use]
    pub fn not_connected(&self) -> Vec<String> {
        self.current.iter().filter(|(_, m)| !m.connected).map(|(r, _)| r.clone()).collect()
    }

    /// Forgets `route`; returns its PeerConnection.
    pub fn remove(&mut self, route: &str) -> Option<PeerId> {
        self.stale_answers.remove(route);
        self.current.remove(route).map(|m| m.peer)
    }

    /// Every route and its PeerConnection.
    pub fn routes(&self) -> impl Iterator<Item = (&str, PeerId)> {
        self.current.iter().map(|(r, m)| (r.as_str(), m.peer))
    }
}

#[cfg(test)]
mod tests {
    use super::MeshBook;
    use crate::PeerId;

    #[test]
    fn a_replaced_connection_s_late_answer_is_not_applied_to_its_successor() {
        let mut book = MeshBook::default();
        book.opened("3", PeerId(1));
        // TURN servers arrive before the answer: made again and offered again.
        assert_eq!(book.not_connected(), vec!["3".to_owned()]);
        book.opened("3", PeerId(2));
        assert!(!book.is_current("3", PeerId(1)), "events of the replaced connection are stale");
        assert!(book.is_current("3", PeerId(2)));
        // The answer to the first offer comes first and is dropped; the second is ours.
        assert_eq!(book.answer("3"), None);
        assert_eq!(book.answer("3"), Some(PeerId(2)));
        assert_eq!(book.answer("3"), None, "a duplicate answer is not applied twice");
        book.connected("3", PeerId(1));
        assert_eq!(book.not_connected(), vec!["3".to_owned()], "a stale `connected` counts for nothing");
        book.connected("3", PeerId(2));
        assert!(book.not_connected().is_empty(), "a connection that is up stays");
    }

    #[test]
    fn an_answered_connection_leaves_no_stale_answer_and_removal_forgets_everything() {
        let mut book = MeshBook::default();
        book.opened("5", PeerId(1));
        assert_eq!(book.answer("5"), Some(PeerId(1)));
        // Answered but not up yet (relay only without TURN): replaced, and no answer is owed.
        book.opened("5", PeerId(2));
        assert_eq!(book.answer("5"), Some(PeerId(2)), "the next answer belongs to the new connection");
        // Replaced before its answer, then the participant left and came back.
        book.opened("5", PeerId(3));
        assert_eq!(book.remove("5"), Some(PeerId(3)));
        book.opened("5", PeerId(4));
        assert_eq!(book.answer("5"), Some(PeerId(4)), "nothing stale is owed to a participant who left");
        assert_eq!(book.answer("7"), None, "an answer from someone we never offered to is dropped");
    }
}
