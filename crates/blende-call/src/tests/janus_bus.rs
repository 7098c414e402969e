//! Blende clients in a plain Janus room on virtual time: a fake VideoRoom that relays what a
//! publisher sends on its data channel to the subscriptions whose data channel is open (and
//! drops it for the others, as Janus does), and fake direct connections that come up when the
//! answer is applied.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use blende_p2p::wire;

enum Input {
    Peer(PeerId, PeerEvent),
    Signal(SignalEvent),
}

struct Member {
    feed: String,
    call: Call,
    publisher: Option<PeerId>,
    publisher_open: bool,
    /// feed → our subscription to it, and whether its data channel is open.
    subs: BTreeMap<String, (PeerId, bool)>,
    /// member → our current direct connection to them, and how many we made in all.
    direct: BTreeMap<String, PeerId>,
    direct_made: BTreeMap<String, usize>,
    events: Vec<CallEvent>,
}

struct Sfu {
    now: Instant,
    members: Vec<Member>,
    inputs: VecDeque<(usize, Input)>,
    /// Every message Janus relayed.
    relayed: Vec<Vec<u8>>,
    /// Feeds that publish without a data channel (a browser), with what they send.
    foreign: Vec<String>,
}

fn janus_config(name: &str) -> CallConfig {
    CallConfig {
        url: ServerUrl::parse("janus+ws://127.0.0.1:8188/").expect("url"),
        ..config(JoinOptions { room: Some("1234".into()), password: None, display_name: name.into(), moderator_token: None, resume: None })
    }
}

impl Sfu {
    fn new() -> Self {
        Sfu { now: Instant::now(), members: Vec::new(), inputs: VecDeque::new(), relayed: Vec::new(), foreign: Vec::new() }
    }

    /// A Blende client joins with feed id `feed`: it learns the room's publishers, they learn it.
    fn join(&mut self, feed: &str) -> usize {
        let call = Call::new(janus_config(feed), self.now);
        let others: Vec<Participant> = self
            .members
            .iter()
            .map(|m| m.feed.clone())
            .chain(self.foreign.iter().cloned())
            .map(|id| Participant { id, display: None })
            .collect();
        let i = self.members.len();
        for j in 0..i {
            self.inputs.push_back((j, Input::Signal(SignalEvent::ParticipantJoined(Participant { id: feed.into(), display: None }))));
        }
        self.members.push(Member {
            feed: feed.into(),
            call,
            publisher: None,
            publisher_open: false,
            subs: BTreeMap::new(),
            direct: BTreeMap::new(),
            direct_made: BTreeMap::new(),
            events: Vec::new(),
        });
        self.inputs.push_back((i, Input::Signal(SignalEvent::Joined { participant_id: feed.into(), participants: others })));
        self.settle();
        i
    }

    /// Runs until nobody has anything left to do.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some((i, input)) = self.inputs.pop_front() {
                busy = true;
                let m = &mut self.members[i];
                match input {
                    Input::Peer(peer, event) => m.call.handle_peer(peer, event, self.now),
                    Input::Signal(event) => m.call.handle_signal(Route::Main, event, self.now),
                }
            }
            for i in 0..self.members.len() {
                while let Some(action) = self.members[i].call.poll_action() {
                    busy = true;
                    self.execute(i, action);
                }
                while let Some(event) = self.members[i].call.poll_event() {
                    self.members[i].events.push(event);
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the room never settles");
    }

    fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::OpenPeer { peer, purpose, remote_offer } => {
                let m = &mut self.members[i];
                match &purpose {
                    Purpose::Publisher => m.publisher = Some(peer),
                    Purpose::Subscriber { feed, .. } => {
                        m.subs.insert(feed.clone(), (peer, false));
                    }
                    Purpose::Direct { with } => {
                        m.direct.insert(with.clone(), peer);
                        *m.direct_made.entry(with.clone()).or_default() += 1;
                    }
                    other => panic!("{other:?} in a plain Janus room"),
                }
                let sdp = if remote_offer.is_some() { "answer" } else { "offer" };
                self.inputs.push_back((i, Input::Peer(peer, PeerEvent::LocalDescription(sdp.into()))));
            }
            Action::Signal { command: SignalCommand::Subscribe { feed }, .. } => {
                self.inputs.push_back((i, Input::Signal(SignalEvent::SubscriptionOffer { feed, sdp: "janus offer".into() })));
            }
            Action::SendData { peer, message } if Some(peer) == self.members[i].publisher => {
                assert!(self.members[i].publisher_open, "sent on a closed publisher channel");
                self.relayed.push(message.clone());
                let feed = self.members[i].feed.clone();
                for (j, m) in self.members.iter().enumerate() {
                    if let Some((sub, true)) = m.subs.get(&feed) {
                        self.inputs.push_back((j, Input::Peer(*sub, PeerEvent::Data(Bytes::from(message.clone())))));
                    }
                }
            }
            Action::SendData { peer, message } => {
                let (from, with) = self.direct_end(i, peer).expect("data on a direct connection");
                if let Some(j) = self.index(&with)
                    && let Some(theirs) = self.members[j].direct.get(&from)
                {
                    self.inputs.push_back((j, Input::Peer(*theirs, PeerEvent::Data(Bytes::from(message)))));
                }
            }
            // Our offer's answer: the direct connection comes up at both ends.
            Action::ApplyAnswer { peer, .. } => {
                let (from, with) = self.direct_end(i, peer).expect("only direct connections get answers here");
                let j = self.index(&with).expect("member");
                let theirs = self.members[j].direct[&from];
                self.inputs.push_back((i, Input::Peer(peer, PeerEvent::DataOpen)));
                self.inputs.push_back((j, Input::Peer(theirs, PeerEvent::DataOpen)));
            }
            _ => {}
        }
    }

    fn index(&self, feed: &str) -> Option<usize> {
        self.members.iter().position(|m| m.feed == feed)
    }

    fn direct_end(&self, i: usize, peer: PeerId) -> Option<(String, String)> {
        let m = &self.members[i];
        m.direct.iter().find(|(_, p)| **p == peer).map(|(with, _)| (m.feed.clone(), with.clone()))
    }

    /// Member `i`'s publisher data channel opens.
    fn open_publisher(&mut self, i: usize) {
        let m = &mut self.members[i];
        m.publisher_open = true;
        let peer = m.publisher.expect("a publisher");
        self.inputs.push_back((i, Input::Peer(peer, PeerEvent::DataOpen)));
        self.settle();
    }

    /// Member `i`'s subscription to `feed` has its data channel open (and Janus relays to it).
    fn open_subscription(&mut self, i: usize, feed: &str) {
        self.open_subscription_early(i, feed);
        self.janus_ready(i, feed);
    }

    /// Our end of the subscription's data channel opened, Janus does not relay to it yet.
    fn open_subscription_early(&mut self, i: usize, feed: &str) {
        let peer = self.members[i].subs[feed].0;
        self.inputs.push_back((i, Input::Peer(peer, PeerEvent::DataOpen)));
        self.settle();
    }

    /// Janus counts the subscription ready: what it relays from now on arrives.
    fn janus_ready(&mut self, i: usize, feed: &str) {
        self.members[i].subs.get_mut(feed).expect("subscribed").1 = true;
    }

    /// The clock moves on by `by`: every call's timers run.
    fn tick(&mut self, by: Duration) {
        self.now += by;
        for m in &mut self.members {
            m.call.handle_timeout(self.now);
        }
        self.settle();
    }

    fn open_links(&self, i: usize) -> BTreeSet<String> {
        let mut open = BTreeSet::new();
        for e in &self.members[i].events {
            if let CallEvent::DirectLink { participant, open: o } = e {
                if *o {
                    open.insert(participant.clone());
                } else {
                    open.remove(participant);
                }
            }
        }
        open
    }

    fn chats(&self, i: usize) -> Vec<(Option<String>, Option<String>, String)> {
        self.members[i]
            .events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Chat { from: Some(f), private_with, text } => Some((Some(f.clone()), private_with.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    fn command(&mut self, i: usize, command: CallCommand) {
        self.members[i].call.handle_command(command, self.now);
        self.settle();
    }

    fn errors(&self, i: usize) -> Vec<String> {
        self.members[i]
            .events
            .iter()
            .filter_map(|e| if let CallEvent::Error { message, .. } = e { Some(message.clone()) } else { None })
            .collect()
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn three_blende_clients_find_each_other_over_janus_and_chat_only_directly() {
    let mut sfu = Sfu::new();
    let (a, b, c) = (sfu.join("7"), sfu.join("12"), sfu.join("30"));
    // Publishers and subscriptions open in an awkward order: A's publisher last, so every hello
    // A owes waits for it, and B hears C before C hears B.
    for (i, feed) in [(b, "30"), (c, "12"), (b, "7"), (c, "7")] {
        sfu.open_subscription(i, feed);
    }
    sfu.open_publisher(b);
    sfu.open_publisher(c);
    for (i, feed) in [(a, "12"), (a, "30")] {
        sfu.open_subscription(i, feed);
    }
    sfu.open_publisher(a);
    assert_eq!(sfu.open_links(a), set(&["12", "30"]));
    assert_eq!(sfu.open_links(b), set(&["7", "30"]));
    assert_eq!(sfu.open_links(c), set(&["7", "12"]));
    // One connection per pair, offered by the lower feed id.
    for (i, with) in [(a, "12"), (a, "30"), (b, "30"), (b, "7"), (c, "7"), (c, "12")] {
        assert_eq!(sfu.members[i].direct_made.get(with), Some(&1), "{} to {with}", sfu.members[i].feed);
    }
    let mut offers_to = BTreeMap::new();
    for bus in sfu.relayed.iter().filter_map(|m| blende_p2p::bus::decode(m).ok()) {
        if let blende_p2p::bus::Bus::Offer { to, .. } = bus {
            *offers_to.entry(to).or_insert(0) += 1;
        }
    }
    assert_eq!(offers_to, BTreeMap::from([("12".to_owned(), 1), ("30".to_owned(), 2)]), "7 offers to both, 12 to 30");

    sfu.command(a, CallCommand::Chat { to: None, text: "Die Akte liegt bei Frau Kaya".into() });
    sfu.command(c, CallCommand::Chat { to: Some("12".into()), text: "Nur für dich: Termin verschoben".into() });
    assert_eq!(
        sfu.chats(b),
        vec![
            (Some("7".into()), None, "Die Akte liegt bei Frau Kaya".into()),
            (Some("30".into()), Some("30".into()), "Nur für dich: Termin verschoben".into()),
        ]
    );
    assert_eq!(sfu.chats(c), vec![(Some("7".into()), None, "Die Akte liegt bei Frau Kaya".into())]);
    assert!(sfu.chats(a).is_empty(), "A never sees the private message");
    // Janus relayed signalling only: no chat text, no `blende-p2p/1` frame.
    for m in &sfu.relayed {
        assert!(m.starts_with(blende_p2p::bus::MAGIC), "only bus messages on the relay");
        assert!(!String::from_utf8_lossy(m).contains("Akte") && !String::from_utf8_lossy(m).contains("Termin"));
        assert!(wire::decode(m).is_err());
    }
    for i in [a, b, c] {
        assert!(sfu.errors(i).is_empty(), "{:?}", sfu.errors(i));
    }

    // B leaves: the others close their connections to B and report the link gone.
    for i in [a, c] {
        sfu.inputs.push_back((i, Input::Signal(SignalEvent::ParticipantLeft { id: "12".into() })));
    }
    sfu.settle();
    assert_eq!(sfu.open_links(a), set(&["30"]));
    assert_eq!(sfu.open_links(c), set(&["7"]));
}

#[test]
fn a_browser_feed_and_hostile_relay_messages_open_nothing() {
    let mut sfu = Sfu::new();
    sfu.foreign.push("99".into());
    let a = sfu.join("7");
    sfu.open_publisher(a);
    let sub = sfu.members[a].subs["99"].0;
    sfu.members[a].subs.get_mut("99").expect("sub").1 = true;
    let hello_to_someone_else = blende_p2p::bus::Bus::Hello { to: "8".into(), reply: false }.encode();
    for (event, quiet) in [
        (PeerEvent::DataOpen, true),
        // A browser's own data (a Janus demo's chat): not ours, ignored quietly.
        (PeerEvent::Data(Bytes::from_static(b"hi from the demo page")), true),
        // A Blende message for someone else: ignored.
        (PeerEvent::Data(Bytes::from(hello_to_someone_else)), true),
        // A broken one: an error that names the sender, nothing opened.
        (PeerEvent::Data(Bytes::from_static(b"blende-bus/1 {\"type\":\"offer\",\"to\":\"7\"}")), false),
    ] {
        let before = sfu.errors(a).len();
        sfu.inputs.push_back((a, Input::Peer(sub, event)));
        sfu.settle();
        assert_eq!(sfu.errors(a).len() == before, quiet, "{:?}", sfu.errors(a));
    }
    assert!(sfu.errors(a).last().is_some_and(|e| e.starts_with("99 on the Janus relay: malformed")), "{:?}", sfu.errors(a));
    assert!(sfu.members[a].direct.is_empty(), "no direct connection to a browser");
    // Our hello to the browser went out, once: the browser never answers it.
    let hellos = sfu.relayed.iter().filter(|m| blende_p2p::bus::decode(m).is_ok_and(|b| b.to() == "99")).count();
    assert_eq!(hellos, 1);
}

#[test]
fn hellos_lost_while_janus_is_not_ready_are_sent_again() {
    let mut sfu = Sfu::new();
    let (a, b) = (sfu.join("7"), sfu.join("12"));
    sfu.open_publisher(a);
    sfu.open_publisher(b);
    // Both ends of both subscriptions open before Janus relays to either: both hellos are lost.
    sfu.open_subscription_early(a, "12");
    sfu.open_subscription_early(b, "7");
    assert_eq!(sfu.relayed.len(), 2);
    assert!(sfu.open_links(a).is_empty() && sfu.open_links(b).is_empty());
    sfu.janus_ready(a, "12");
    sfu.janus_ready(b, "7");
    let due = sfu.members.iter().filter_map(|m| m.call.poll_timeout()).min().expect("a hello is due again");
    assert_eq!(due, sfu.now + crate::bus::HELLO_EVERY);
    sfu.tick(crate::bus::HELLO_EVERY);
    assert_eq!(sfu.open_links(a), set(&["12"]));
    assert_eq!(sfu.open_links(b), set(&["7"]));
    // Linked: no more hellos, however long the call runs.
    let relayed = sfu.relayed.len();
    for _ in 0..5 {
        sfu.tick(crate::bus::HELLO_EVERY);
    }
    assert_eq!(sfu.relayed.len(), relayed);
}
