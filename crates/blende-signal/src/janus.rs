//! The Janus VideoRoom protocol as a sans-IO state machine.
//!
//! Driven like str0m/quinn-proto: [`JanusMachine::handle_message`] takes each text frame from
//! the server, [`JanusMachine::handle_command`] the engine's requests, [`JanusMachine::handle_timeout`]
//! the clock; out come frames to send ([`JanusMachine::poll_transmit`]), events
//! ([`JanusMachine::poll_event`]) and the next deadline ([`JanusMachine::poll_timeout`]). It never
//! reads the clock or touches a socket.
//!
//! Protocol: <https://janus.conf.meetecho.com/docs/rest.html> (session, handle, transaction
//! ids) and <https://janus.conf.meetecho.com/docs/videoroom.html> (publisher/subscriber requests).
//! One plugin handle publishes; each remote feed gets its own subscriber handle.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{JoinOptions, Participant, SignalCommand, SignalError, SignalEvent};

const PLUGIN: &str = "janus.plugin.videoroom";
/// Janus drops sessions idle for 60 s by default.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);

/// What a transaction we sent was for, so its answer can be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    CreateSession,
    AttachPublisher,
    JoinPublisher,
    Publish,
    Unpublish,
    AttachSubscriber {
        feed: String,
    },
    JoinSubscriber {
        feed: String,
    },
    Start {
        feed: String,
    },
    Leave,
    Destroy,
    /// Destroying the session a reconnect replaces (it may be gone already: no error).
    DropOld,
    Keepalive,
    Detach,
}

impl Pending {
    fn describe(&self) -> &'static str {
        match self {
            Pending::CreateSession => "creating the session",
            Pending::AttachPublisher | Pending::AttachSubscriber { .. } => "attaching to the VideoRoom plugin",
            Pending::JoinPublisher => "joining the room",
            Pending::Publish => "publishing",
            Pending::Unpublish => "unpublishing",
            Pending::JoinSubscriber { .. } => "subscribing",
            Pending::Start { .. } => "starting a subscription",
            Pending::Leave => "leaving",
            Pending::Destroy => "closing the session",
            Pending::DropOld => "closing the earlier session",
            Pending::Keepalive => "keepalive",
            Pending::Detach => "detaching",
        }
    }

    /// Errors on these end the session: nothing useful can follow.
    fn is_fatal(&self) -> bool {
        matches!(self, Pending::CreateSession | Pending::AttachPublisher | Pending::JoinPublisher)
    }
}

/// Access to a VideoRoom with an ACL, as a Blende room server hands it out (`janus` message):
/// the participant's own `allowed` token and the feed id to publish with.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JanusAccess {
    /// Sent as `token` in every `join` (publisher and subscriber). Never logged.
    pub token: Option<String>,
    /// Publish with this feed id (`id` in the publisher `join`), so the server can moderate it.
    pub feed: Option<u64>,
}

impl std::fmt::Debug for JanusAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JanusAccess").field("token", &self.token.as_ref().map(|_| "***")).field("feed", &self.feed).finish()
    }
}

/// The VideoRoom's answer to a subscription for a feed it does not know (yet).
const NO_SUCH_FEED: i64 = 428;

/// The Janus VideoRoom client state.
#[derive(Debug)]
pub struct JanusMachine {
    options: JoinOptions,
    access: JanusAccess,
    next_transaction: u64,
    pending: HashMap<String, Pending>,
    session_id: Option<u64>,
    publisher_handle: Option<u64>,
    /// feed id → subscriber handle (None while attaching).
    subscriptions: HashMap<String, Option<u64>>,
    handle_feed: HashMap<u64, String>,
    /// Feed ids as Janus sent them (number or string), to send them back the same way.
    feed_ids: HashMap<String, Value>,
    participant_id: Option<String>,
    private_id: Option<Value>,
    /// A publish request waiting for the publisher handle.
    queued_publish: Option<String>,
    /// Whether our publisher handle carries a PeerConnection: a further offer on it is a
    /// renegotiation (an ICE restart), sent as `configure`.
    published: bool,
    transmit: VecDeque<String>,
    events: VecDeque<SignalEvent>,
    next_keepalive: Option<Instant>,
    closed: bool,
}

fn id_key(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn room_value(room: &str) -> Value {
    room.parse::<u64>().map_or_else(|_| Value::String(room.to_owned()), |n| json!(n))
}

impl JanusMachine {
    /// A machine that will create a session, attach and join as a publisher.
    pub fn new(options: JoinOptions) -> Self {
        Self::with_access(options, JanusAccess::default())
    }

    /// A machine for a room with an ACL: every join carries `access.token`, the publisher joins
    /// with feed id `access.feed`.
    pub fn with_access(options: JoinOptions, access: JanusAccess) -> Self {
        Self {
            options,
            access,
            next_transaction: 1,
            pending: HashMap::new(),
            session_id: None,
            publisher_handle: None,
            subscriptions: HashMap::new(),
            handle_feed: HashMap::new(),
            feed_ids: HashMap::new(),
            participant_id: None,
            private_id: None,
            queued_publish: None,
            published: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_keepalive: None,
            closed: false,
        }
    }

    // ---- getters

    pub fn session_id(&self) -> Option<u64> {
        self.session_id
    }

    pub fn participant_id(&self) -> Option<&str> {
        self.participant_id.as_deref()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---- inputs

    /// Starts the session (call once, after the transport is up).
    /// A reconnect ([`JoinOptions::resume`] names our earlier session) destroys that session
    /// first: its publisher would otherwise stay in the room, frozen, until Janus times it out.
    pub fn start(&mut self, now: Instant) {
        if let Some(old) = self.options.resume.as_deref().and_then(|r| r.parse::<u64>().ok()) {
            self.send(json!({"janus": "destroy", "session_id": old}), Pending::DropOld);
        }
        self.send(json!({"janus": "create"}), Pending::CreateSession);
        self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
    }

    /// One request from the engine.
    pub fn handle_command(&mut self, command: SignalCommand) {
        if self.closed {
            return;
        }
        match command {
            SignalCommand::Publish { sdp } => {
                if self.publisher_handle.is_some() && self.participant_id.is_some() {
                    self.publish(sdp);
                } else {
                    self.queued_publish = Some(sdp);
                }
            }
            SignalCommand::Subscribe { feed } => self.subscribe(feed),
            SignalCommand::AnswerSubscription { feed, sdp } => {
                if let Some(Some(handle)) = self.subscriptions.get(&feed).copied() {
                    self.message(
                        handle,
                        json!({"request": "start"}),
                        Some(json!({"type": "answer", "sdp": sdp, "trickle": false})),
                        Pending::Start { feed },
                    );
                }
            }
            SignalCommand::Unsubscribe { feed } => self.unsubscribe(&feed),
            SignalCommand::Unpublish => {
                if let Some(handle) = self.publisher_handle {
                    self.published = false;
                    self.message(handle, json!({"request": "unpublish"}), None, Pending::Unpublish);
                }
            }
            SignalCommand::Leave => self.leave(),
            // Janus offers subscriptions itself; a client offer is a caller's mistake.
            SignalCommand::OfferSubscription { .. } | SignalCommand::PublishTo { .. } | SignalCommand::Room(_) => {
                self.events.push_back(SignalEvent::Error { message: "not available on a Janus server".into(), fatal: false });
            }
        }
    }

    /// The keepalive clock.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.next_keepalive
            && now >= at
        {
            if self.session_id.is_some() && !self.closed {
                self.send(json!({"janus": "keepalive"}), Pending::Keepalive);
            }
            self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
        }
    }

    /// The transport closed under us.
    pub fn handle_transport_closed(&mut self, reason: &str) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(SignalEvent::Closed { reason: reason.to_owned() });
        }
    }

    /// One text frame from Janus.
    ///
    /// # Errors
    /// [`SignalError::Protocol`] for frames that are not Janus JSON; the machine's state is
    /// unchanged then, and the driver may go on.
    pub fn handle_message(&mut self, text: &str) -> Result<(), SignalError> {
        let msg: Value = serde_json::from_str(text).map_err(|e| SignalError::Protocol(e.to_string()))?;
        let kind = msg.get("janus").and_then(Value::as_str).ok_or_else(|| SignalError::Protocol("no \"janus\" field".into()))?;
        let transaction = msg.get("transaction").and_then(Value::as_str).map(str::to_owned);
        let sender = msg.get("sender").and_then(Value::as_u64);
        match kind {
            "ack" => {
                // Requests that only get an ack are done; plugin messages wait for their event.
                if let Some(t) = &transaction
                    && matches!(self.pending.get(t), Some(Pending::Keepalive))
                {
                    self.pending.remove(t);
                }
            }
            "success" => {
                let pending = transaction.and_then(|t| self.pending.remove(&t));
                self.on_success(pending, &msg);
            }
            "error" => {
                let pending = transaction.and_then(|t| self.pending.remove(&t));
                if pending == Some(Pending::DropOld) {
                    return Ok(());
                }
                let code = msg.pointer("/error/code").and_then(Value::as_i64).unwrap_or(0);
                let reason = msg.pointer("/error/reason").and_then(Value::as_str).unwrap_or("unknown error");
                self.fail(pending.as_ref(), &format!("Janus error {code}: {reason}"));
            }
            "event" => {
                let pending = transaction.as_ref().and_then(|t| self.pending.remove(t));
                self.on_event(pending, sender, &msg);
            }
            "webrtcup" => {
                if sender.is_some() && sender == self.publisher_handle {
                    self.events.push_back(SignalEvent::PublishUp);
                } else if let Some(feed) = sender.and_then(|h| self.handle_feed.get(&h)) {
                    self.events.push_back(SignalEvent::SubscriptionUp { feed: feed.clone() });
                }
            }
            "hangup" => {
                if let Some(feed) = sender.and_then(|h| self.handle_feed.get(&h)).cloned() {
                    self.events.push_back(SignalEvent::ParticipantLeft { id: feed });
                }
            }
            "trickle" => {
                let feed = sender.and_then(|h| self.handle_feed.get(&h)).cloned();
                let Some(c) = msg.get("candidate") else { return Ok(()) };
                if let Some(candidate) = c.get("candidate").and_then(Value::as_str) {
                    self.events.push_back(SignalEvent::RemoteCandidate {
                        feed,
                        candidate: candidate.to_owned(),
                        sdp_mid: c.get("sdpMid").and_then(Value::as_str).map(str::to_owned),
                        sdp_mline_index: c.get("sdpMLineIndex").and_then(Value::as_u64).and_then(|i| u16::try_from(i).ok()),
                    });
                }
            }
            "timeout" => self.handle_transport_closed("Janus closed the session (timeout)"),
            "detached" | "media" | "slowlink" | "server_info" => {}
            other => log::debug!("janus: ignoring {other}"),
        }
        Ok(())
    }

    // ---- outputs

    /// The next text frame to send.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SignalEvent> {
        self.events.pop_front()
    }

    /// When [`JanusMachine::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed { None } else { self.next_keepalive }
    }

    // ---- internals

    fn send(&mut self, mut body: Value, pending: Pending) -> String {
        let transaction = format!("t{}", self.next_transaction);
        self.next_transaction += 1;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("transaction".into(), json!(transaction));
            if let Some(s) = self.session_id
                && !obj.contains_key("session_id")
                && pending != Pending::CreateSession
            {
                obj.insert("session_id".into(), json!(s));
            }
        }
        self.transmit.push_back(body.to_string());
        self.pending.insert(transaction.clone(), pending);
        transaction
    }

    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>, pending: Pending) {
        let mut msg = json!({"janus": "message", "handle_id": handle, "body": body});
        if let (Some(j), Some(obj)) = (jsep, msg.as_object_mut()) {
            obj.insert("jsep".into(), j);
        }
        self.send(msg, pending);
    }

    fn room(&self) -> Value {
        room_value(self.options.room.as_deref().unwrap_or("1234"))
    }

    /// The room's PIN and, for rooms with an ACL, our token: both go into every `join`.
    fn with_pin(&self, mut body: Value) -> Value {
        if let Some(obj) = body.as_object_mut() {
            if let Some(pin) = &self.options.password {
                obj.insert("pin".into(), json!(pin));
            }
            if let Some(token) = &self.access.token {
                obj.insert("token".into(), json!(token));
            }
        }
        body
    }

    fn publish(&mut self, sdp: String) {
        if let Some(handle) = self.publisher_handle {
            // Janus answers both the same way ("configured": "ok" with the answer); a restart
            // offer (new ICE credentials) makes it restart ICE on its side of the connection.
            let body =
                if self.published { json!({"request": "configure"}) } else { json!({"request": "publish", "audio": true, "video": true}) };
            self.published = true;
            self.message(handle, body, Some(json!({"type": "offer", "sdp": sdp, "trickle": false})), Pending::Publish);
        }
    }

    fn subscribe(&mut self, feed: String) {
        if self.subscriptions.contains_key(&feed) || self.session_id.is_none() {
            return;
        }
        self.subscriptions.insert(feed.clone(), None);
        self.send(json!({"janus": "attach", "plugin": PLUGIN}), Pending::AttachSubscriber { feed });
    }

    fn unsubscribe(&mut self, feed: &str) {
        if let Some(Some(handle)) = self.subscriptions.remove(feed) {
            self.handle_feed.remove(&handle);
            self.send(json!({"janus": "detach", "handle_id": handle}), Pending::Detach);
        }
    }

    fn leave(&mut self) {
        if self.closed {
            return;
        }
        if let Some(handle) = self.publisher_handle {
            self.message(handle, json!({"request": "leave"}), None, Pending::Leave);
        }
        if self.session_id.is_some() {
            self.send(json!({"janus": "destroy"}), Pending::Destroy);
        }
        self.closed = true;
        self.events.push_back(SignalEvent::Closed { reason: "left".into() });
    }

    fn fail(&mut self, pending: Option<&Pending>, what: &str) {
        let (message, fatal) = match pending {
            Some(p) => (format!("{} failed: {what}", p.describe()), p.is_fatal()),
            None => (what.to_owned(), false),
        };
        self.events.push_back(SignalEvent::Error { message, fatal });
        if let Some(Pending::AttachSubscriber { feed } | Pending::JoinSubscriber { feed } | Pending::Start { feed }) = pending {
            self.subscriptions.remove(feed);
        }
    }

    fn on_success(&mut self, pending: Option<Pending>, msg: &Value) {
        let id = msg.pointer("/data/id").and_then(Value::as_u64);
        match (pending, id) {
            (Some(Pending::CreateSession), Some(session)) => {
                self.session_id = Some(session);
                self.events.push_back(SignalEvent::Session { resume: session.to_string() });
                self.send(json!({"janus": "attach", "plugin": PLUGIN}), Pending::AttachPublisher);
            }
            (Some(Pending::AttachPublisher), Some(handle)) => {
                self.publisher_handle = Some(handle);
                let mut body = self.with_pin(json!({
                    "request": "join",
                    "ptype": "publisher",
                    "room": self.room(),
                    "display": self.options.display_name,
                }));
                if let (Some(feed), Some(obj)) = (self.access.feed, body.as_object_mut()) {
                    obj.insert("id".into(), json!(feed));
                }
                self.message(handle, body, None, Pending::JoinPublisher);
            }
            (Some(Pending::AttachSubscriber { feed }), Some(handle)) => {
                if !self.subscriptions.contains_key(&feed) {
                    // Unsubscribed while attaching.
                    self.send(json!({"janus": "detach", "handle_id": handle}), Pending::Detach);
                    return;
                }
                self.subscriptions.insert(feed.clone(), Some(handle));
                self.handle_feed.insert(handle, feed.clone());
                let feed_value = self.feed_ids.get(&feed).cloned().unwrap_or_else(|| room_value(&feed));
                let mut body = self.with_pin(json!({
                    "request": "join",
                    "ptype": "subscriber",
                    "room": self.room(),
                    "streams": [{"feed": feed_value}],
                }));
                if let (Some(p), Some(obj)) = (&self.private_id, body.as_object_mut()) {
                    obj.insert("private_id".into(), p.clone());
                }
                self.message(handle, body, None, Pending::JoinSubscriber { feed });
            }
            (Some(Pending::Destroy | Pending::DropOld), _) => {}
            (Some(p), None) if matches!(p, Pending::CreateSession | Pending::AttachPublisher | Pending::AttachSubscriber { .. }) => {
                self.fail(Some(&p), "no id in the answer");
            }
            _ => {}
        }
    }

    fn learn_publishers(&mut self, list: Option<&Value>) -> Vec<Participant> {
        let mut out = Vec::new();
        for p in list.and_then(Value::as_array).into_iter().flatten() {
            let Some(raw) = p.get("id") else { continue };
            let Some(id) = id_key(raw) else { continue };
            if Some(&id) == self.participant_id.as_ref() {
                continue;
            }
            self.feed_ids.insert(id.clone(), raw.clone());
            out.push(Participant { id, display: p.get("display").and_then(Value::as_str).map(str::to_owned) });
        }
        out
    }

    fn on_event(&mut self, pending: Option<Pending>, sender: Option<u64>, msg: &Value) {
        let Some(data) = msg.pointer("/plugindata/data") else { return };
        let jsep_sdp = msg.pointer("/jsep/sdp").and_then(Value::as_str).map(str::to_owned);
        let jsep_type = msg.pointer("/jsep/type").and_then(Value::as_str);
        if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
            let reason = data.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            if let (NO_SUCH_FEED, Some(Pending::JoinSubscriber { feed })) = (code, &pending) {
                // Asked before the publisher's PeerConnection was up: the call asks again
                // (`RESUBSCRIBE_AFTER`); nothing for the user to read.
                log::debug!("janus: feed {feed} not ready yet");
                if let Some(Some(handle)) = self.subscriptions.remove(feed) {
                    self.handle_feed.remove(&handle);
                    self.send(json!({"janus": "detach", "handle_id": handle}), Pending::Detach);
                }
                return;
            }
            let what = format!("VideoRoom error {code}: {reason}");
            self.fail(pending.as_ref(), &what);
            if matches!(pending, Some(Pending::JoinPublisher)) {
                self.closed = true;
            }
            return;
        }
        let from_feed = sender.and_then(|h| self.handle_feed.get(&h)).cloned();
        match data.get("videoroom").and_then(Value::as_str) {
            Some("joined") => {
                self.participant_id = data.get("id").and_then(id_key);
                self.private_id = data.get("private_id").cloned();
                let participants = self.learn_publishers(data.get("publishers"));
                self.events
                    .push_back(SignalEvent::Joined { participant_id: self.participant_id.clone().unwrap_or_default(), participants });
                if let Some(sdp) = self.queued_publish.take() {
                    self.publish(sdp);
                }
            }
            Some("attached") => {
                if let (Some(feed), Some(sdp), Some("offer")) = (from_feed, jsep_sdp, jsep_type) {
                    self.events.push_back(SignalEvent::SubscriptionOffer { feed, sdp });
                }
            }
            Some("destroyed") => {
                self.events.push_back(SignalEvent::RoomDestroyed);
                self.closed = true;
            }
            Some("event") => {
                for p in self.learn_publishers(data.get("publishers")) {
                    self.events.push_back(SignalEvent::ParticipantJoined(p));
                }
                for key in ["leaving", "unpublished"] {
                    if let Some(id) = data.get(key).and_then(id_key) {
                        if id == "ok" {
                            continue; // our own leave/unpublish confirmed
                        }
                        if Some(&id) == self.participant_id.as_ref() {
                            continue;
                        }
                        self.events.push_back(SignalEvent::ParticipantLeft { id: id.clone() });
                        self.unsubscribe(&id);
                    }
                }
                if let Some(id) = data.get("kicked").and_then(id_key) {
                    if Some(&id) == self.participant_id.as_ref() {
                        self.events.push_back(SignalEvent::Kicked);
                        self.closed = true;
                    } else {
                        self.events.push_back(SignalEvent::ParticipantLeft { id: id.clone() });
                        self.unsubscribe(&id);
                    }
                }
                if data.get("leaving").and_then(Value::as_str) == Some("ok") && from_feed.is_none() && pending.is_none() {
                    // Janus tells a publisher "leaving: ok" when it was removed from outside.
                    log::debug!("janus: our publisher handle left the room");
                }
                if let (Some(sdp), Some("answer")) = (jsep_sdp, jsep_type) {
                    self.events.push_back(SignalEvent::PublishAnswer { sdp });
                } else if matches!(pending, Some(Pending::Publish)) {
                    self.fail(pending.as_ref(), "Janus sent no answer");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> (JanusMachine, Instant) {
        let now = Instant::now();
        let mut m = JanusMachine::new(JoinOptions {
            moderator_token: None,
            resume: None,
            room: Some("1234".into()),
            password: Some("s3cret".into()),
            display_name: "Amt A".into(),
        });
        m.start(now);
        (m, now)
    }

    fn sent(m: &mut JanusMachine) -> Value {
        let text = m.poll_transmit().expect("a frame to send");
        serde_json::from_str(&text).expect("json")
    }

    fn tx(v: &Value) -> String {
        v["transaction"].as_str().expect("transaction").to_owned()
    }

    /// Runs create → attach → join; returns the machine after `joined`.
    fn joined(publishers: Value) -> JanusMachine {
        let (mut m, _) = machine();
        let create = sent(&mut m);
        assert_eq!(create["janus"], "create");
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 11}}).to_string()).expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::Session { resume: "11".into() }), "what a reconnect names");
        let attach = sent(&mut m);
        assert_eq!(attach["janus"], "attach");
        assert_eq!(attach["plugin"], PLUGIN);
        assert_eq!(attach["session_id"], 11);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "session_id": 11, "data": {"id": 22}}).to_string())
            .expect("ok");
        let join = sent(&mut m);
        assert_eq!(join["body"]["request"], "join");
        assert_eq!(join["body"]["ptype"], "publisher");
        assert_eq!(join["body"]["room"], 1234);
        assert_eq!(join["body"]["pin"], "s3cret");
        assert_eq!(join["handle_id"], 22);
        m.handle_message(&json!({"janus": "ack", "session_id": 11, "transaction": tx(&join)}).to_string()).expect("ok");
        let ev = json!({"janus": "event", "session_id": 11, "transaction": tx(&join), "sender": 22,
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "joined", "room": 1234, "id": 777, "private_id": 4242,
                "publishers": publishers}}});
        m.handle_message(&ev.to_string()).expect("ok");
        m
    }

    #[test]
    fn joins_and_lists_existing_publishers() {
        let mut m = joined(json!([{"id": 555, "display": "Amt B", "streams": []}]));
        assert_eq!(
            m.poll_event(),
            Some(SignalEvent::Joined {
                participant_id: "777".into(),
                participants: vec![Participant { id: "555".into(), display: Some("Amt B".into()) }]
            })
        );
    }

    #[test]
    fn publish_before_join_is_sent_after_join() {
        let (mut m, _) = machine();
        m.handle_command(SignalCommand::Publish { sdp: "v=0 offer".into() });
        let create = sent(&mut m);
        assert!(m.poll_transmit().is_none(), "publish must wait for the join");
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 1}}).to_string()).expect("ok");
        let attach = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 2}}).to_string()).expect("ok");
        let join = sent(&mut m);
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&join), "sender": 2,
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "joined", "id": 3, "publishers": []}}})
            .to_string(),
        )
        .expect("ok");
        let publish = sent(&mut m);
        assert_eq!(publish["body"]["request"], "publish");
        assert_eq!(publish["jsep"]["type"], "offer");
        assert_eq!(publish["jsep"]["sdp"], "v=0 offer");
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&publish), "sender": 2,
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "event", "configured": "ok"}},
            "jsep": {"type": "answer", "sdp": "v=0 answer"}})
            .to_string(),
        )
        .expect("ok");
        let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
        assert!(events.contains(&SignalEvent::PublishAnswer { sdp: "v=0 answer".into() }), "{events:?}");
        m.handle_message(&json!({"janus": "webrtcup", "session_id": 1, "sender": 2}).to_string()).expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::PublishUp));
    }

    /// An ICE restart: a second offer on the published handle goes as `configure`, its answer
    /// comes back as a publish answer; after an unpublish, an offer publishes afresh.
    #[test]
    fn a_second_offer_renegotiates_with_configure() {
        let mut m = joined(json!([]));
        while m.poll_event().is_some() {}
        m.handle_command(SignalCommand::Publish { sdp: "v=0 first".into() });
        let publish = sent(&mut m);
        assert_eq!(publish["body"]["request"], "publish");
        m.handle_command(SignalCommand::Publish { sdp: "v=0 restart".into() });
        let configure = sent(&mut m);
        assert_eq!(configure["body"]["request"], "configure");
        assert_eq!(configure["jsep"]["sdp"], "v=0 restart");
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&configure),
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "event", "configured": "ok"}},
            "jsep": {"type": "answer", "sdp": "v=0 restarted"}, "sender": 22})
            .to_string(),
        )
        .expect("ok");
        let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
        assert!(events.contains(&SignalEvent::PublishAnswer { sdp: "v=0 restarted".into() }), "{events:?}");
        m.handle_command(SignalCommand::Unpublish);
        assert_eq!(sent(&mut m)["body"]["request"], "unpublish");
        m.handle_command(SignalCommand::Publish { sdp: "v=0 again".into() });
        assert_eq!(sent(&mut m)["body"]["request"], "publish");
    }

    #[test]
    fn acl_token_and_feed_id_go_into_every_join() {
        let now = Instant::now();
        let options = JoinOptions {
            room: Some("88".into()),
            password: Some("pin".into()),
            display_name: "A".into(),
            moderator_token: None,
            resume: None,
        };
        let access = JanusAccess { token: Some("tok3n".into()), feed: Some(7) };
        assert!(!format!("{access:?}").contains("tok3n"));
        let mut m = JanusMachine::with_access(options, access);
        m.start(now);
        let create = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 1}}).to_string()).expect("ok");
        assert!(matches!(m.poll_event(), Some(SignalEvent::Session { .. })));
        let attach = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 2}}).to_string()).expect("ok");
        let join = sent(&mut m);
        assert_eq!((join["body"]["ptype"].as_str(), join["body"]["room"].as_u64()), (Some("publisher"), Some(88)));
        assert_eq!(
            (join["body"]["token"].as_str(), join["body"]["id"].as_u64(), join["body"]["pin"].as_str()),
            (Some("tok3n"), Some(7), Some("pin"))
        );
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&join), "sender": 2,
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "joined", "room": 88, "id": 7, "private_id": 9,
                "publishers": [{"id": 8, "display": "B"}]}}})
            .to_string(),
        )
        .expect("ok");
        assert!(matches!(m.poll_event(), Some(SignalEvent::Joined { participant_id, .. }) if participant_id == "7"));
        m.handle_command(SignalCommand::Subscribe { feed: "8".into() });
        let attach = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 3}}).to_string()).expect("ok");
        let join = sent(&mut m);
        assert_eq!((join["body"]["ptype"].as_str(), join["body"]["token"].as_str()), (Some("subscriber"), Some("tok3n")));
        assert!(join["body"].get("id").is_none(), "a subscriber join names no feed id of its own");
    }

    #[test]
    fn subscribes_with_own_handle_and_answers() {
        let mut m = joined(json!([{"id": 555, "display": "B"}]));
        let _ = m.poll_event();
        m.handle_command(SignalCommand::Subscribe { feed: "555".into() });
        let attach = sent(&mut m);
        assert_eq!(attach["janus"], "attach");
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 33}}).to_string()).expect("ok");
        let join = sent(&mut m);
        assert_eq!(join["handle_id"], 33);
        assert_eq!(join["body"]["ptype"], "subscriber");
        assert_eq!(join["body"]["streams"][0]["feed"], 555);
        assert_eq!(join["body"]["private_id"], 4242);
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&join), "sender": 33,
            "plugindata": {"plugin": PLUGIN, "data": {"videoroom": "attached", "room": 1234}},
            "jsep": {"type": "offer", "sdp": "v=0 sub offer"}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::SubscriptionOffer { feed: "555".into(), sdp: "v=0 sub offer".into() }));
        m.handle_command(SignalCommand::AnswerSubscription { feed: "555".into(), sdp: "v=0 sub answer".into() });
        let start = sent(&mut m);
        assert_eq!(start["body"]["request"], "start");
        assert_eq!(start["jsep"]["type"], "answer");
        m.handle_message(&json!({"janus": "webrtcup", "sender": 33}).to_string()).expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::SubscriptionUp { feed: "555".into() }));
    }

    /// Joined with feed 555 published; a subscription to it attached as handle 33 and
    /// answered with VideoRoom error `code`.
    fn subscription_refused(code: u32, error: &str) -> JanusMachine {
        let mut m = joined(json!([{"id": 555, "display": "B"}]));
        let _ = m.poll_event();
        m.handle_command(SignalCommand::Subscribe { feed: "555".into() });
        let attach = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 33}}).to_string()).expect("ok");
        let join = sent(&mut m);
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&join), "sender": 33, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "event", "error_code": code, "error": error}}})
            .to_string(),
        )
        .expect("ok");
        m
    }

    /// Asked before the publisher is up, Janus answers "No such feed": no error for the user
    /// (the call asks again), the handle is detached, and the next request starts anew.
    #[test]
    fn a_feed_not_ready_yet_is_no_error_and_can_be_asked_again() {
        let mut m = subscription_refused(428, "No such feed (555)");
        assert_eq!(m.poll_event(), None);
        let detach = sent(&mut m);
        assert_eq!((detach["janus"].as_str(), detach["handle_id"].as_u64()), (Some("detach"), Some(33)));
        m.handle_command(SignalCommand::Subscribe { feed: "555".into() });
        assert_eq!(sent(&mut m)["janus"], "attach");
        // Another error on a subscription is still reported.
        let mut m = subscription_refused(433, "Unauthorized");
        assert!(matches!(m.poll_event(), Some(SignalEvent::Error { fatal: false, .. })));
    }

    #[test]
    fn new_publishers_leaving_and_kick_are_reported() {
        let mut m = joined(json!([]));
        let _ = m.poll_event();
        m.handle_message(
            &json!({"janus": "event", "sender": 22, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "event", "room": 1234, "publishers": [{"id": 9, "display": "C"}]}}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::ParticipantJoined(Participant { id: "9".into(), display: Some("C".into()) })));
        m.handle_message(
            &json!({"janus": "event", "sender": 22, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "event", "room": 1234, "unpublished": 9}}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::ParticipantLeft { id: "9".into() }));
        m.handle_message(
            &json!({"janus": "event", "sender": 22, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "event", "room": 1234, "kicked": 777}}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::Kicked));
        assert!(m.is_closed());
    }

    #[test]
    fn wrong_pin_is_a_clear_fatal_error() {
        let (mut m, _) = machine();
        let create = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 1}}).to_string()).expect("ok");
        assert!(matches!(m.poll_event(), Some(SignalEvent::Session { .. })));
        let attach = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&attach), "data": {"id": 2}}).to_string()).expect("ok");
        let join = sent(&mut m);
        m.handle_message(
            &json!({"janus": "event", "transaction": tx(&join), "sender": 2, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "event", "error_code": 433, "error": "Unauthorized (wrong pin)"}}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(
            m.poll_event(),
            Some(SignalEvent::Error {
                message: "joining the room failed: VideoRoom error 433: Unauthorized (wrong pin)".into(),
                fatal: true
            })
        );
    }

    #[test]
    fn janus_level_errors_and_room_destroyed() {
        let (mut m, _) = machine();
        let create = sent(&mut m);
        m.handle_message(
            &json!({"janus": "error", "transaction": tx(&create), "error": {"code": 403, "reason": "Unauthorized request"}}).to_string(),
        )
        .expect("ok");
        assert_eq!(
            m.poll_event(),
            Some(SignalEvent::Error { message: "creating the session failed: Janus error 403: Unauthorized request".into(), fatal: true })
        );
        let mut m = joined(json!([]));
        let _ = m.poll_event();
        m.handle_message(
            &json!({"janus": "event", "sender": 22, "plugindata": {"plugin": PLUGIN,
            "data": {"videoroom": "destroyed", "room": 1234}}})
            .to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::RoomDestroyed));
    }

    /// A reconnect destroys the session it replaces first (so its publisher leaves the room at
    /// once); that session may be gone already, which is no error.
    #[test]
    fn a_reconnect_destroys_the_old_session_first() {
        let options = JoinOptions { room: Some("1234".into()), resume: Some("4711".into()), ..JoinOptions::default() };
        assert!(!format!("{options:?}").contains("4711"), "the resume token is not logged");
        let mut m = JanusMachine::new(options);
        m.start(Instant::now());
        let destroy = sent(&mut m);
        assert_eq!((destroy["janus"].as_str(), destroy["session_id"].as_u64()), (Some("destroy"), Some(4711)));
        let create = sent(&mut m);
        assert_eq!(create["janus"], "create");
        assert!(create.get("session_id").is_none());
        m.handle_message(
            &json!({"janus": "error", "transaction": tx(&destroy), "error": {"code": 458, "reason": "No such session 4711"}}).to_string(),
        )
        .expect("ok");
        assert_eq!(m.poll_event(), None, "an old session already gone is what we wanted");
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 12}}).to_string()).expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::Session { resume: "12".into() }));
        assert!(!m.is_closed());
        // A resume that is no session id (another server kind's token) sends nothing extra.
        let mut m = JanusMachine::new(JoinOptions { resume: Some("tok".into()), ..JoinOptions::default() });
        m.start(Instant::now());
        assert_eq!(sent(&mut m)["janus"], "create");
    }

    #[test]
    fn keepalive_on_virtual_time_and_leave() {
        let (mut m, now) = machine();
        let create = sent(&mut m);
        m.handle_message(&json!({"janus": "success", "transaction": tx(&create), "data": {"id": 5}}).to_string()).expect("ok");
        assert_eq!(m.poll_event(), Some(SignalEvent::Session { resume: "5".into() }));
        let _attach = sent(&mut m);
        assert_eq!(m.poll_timeout(), Some(now + KEEPALIVE_INTERVAL));
        m.handle_timeout(now + Duration::from_secs(1));
        assert!(m.poll_transmit().is_none());
        m.handle_timeout(now + KEEPALIVE_INTERVAL);
        let ka = sent(&mut m);
        assert_eq!(ka["janus"], "keepalive");
        assert_eq!(ka["session_id"], 5);
        m.handle_command(SignalCommand::Leave);
        let destroy = sent(&mut m);
        assert_eq!(destroy["janus"], "destroy");
        assert_eq!(m.poll_event(), Some(SignalEvent::Closed { reason: "left".into() }));
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (mut m, _) = machine();
        assert!(m.handle_message("not json").is_err());
        assert!(m.handle_message("{\"x\":1}").is_err());
        assert!(m.handle_message("{\"janus\":\"event\",\"plugindata\":7}").is_ok());
    }
}
