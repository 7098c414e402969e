//! The role matrix over the wire: every client message kind sent by every role, against the
//! real server. Refused pairs: the sender gets `not_allowed`/`bad_state` for that request and
//! no client (the sender included) receives anything else — nothing changed. Allowed pairs
//! run in a fresh meeting each and must get their characteristic reply.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::support::{Client, Server, error_code};

const ROLES: [&str; 7] = ["connected", "anonymous", "moderator_idle", "waiting", "participant", "presenter", "moderator"];

/// Same table as `blende-room`'s unit test, kept separate on purpose: this one is the wire's
/// contract. `Y` = allowed.
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

struct World {
    /// Indexed like `ROLES`.
    clients: Vec<Client>,
    meeting: String,
    token: String,
}

impl World {
    async fn build(server: &Server, token: &str, n: u8) -> World {
        let ip = |k: u8| Ipv4Addr::new(127, 0, n, k);
        let mut moderator = server.client_from(ip(1)).await;
        moderator.hello().await;
        moderator.auth(token).await;
        let (meeting, pw) = moderator.create_meeting(true).await;
        moderator.enter(&meeting).await;
        let mut idle = server.client_from(ip(1)).await;
        idle.hello().await;
        idle.auth(token).await;
        let mut seats = Vec::new();
        for k in 2..=4 {
            let mut c = server.client_from(ip(k)).await;
            c.hello().await;
            let m = c.join(&meeting, &pw).await;
            assert_eq!(m["state"], "waiting", "{m}");
            seats.push(c);
        }
        let (mut participant, mut presenter, waiting) = {
            let mut it = seats.into_iter();
            (it.next().expect("p"), it.next().expect("p"), it.next().expect("p"))
        };
        for c in [&mut participant, &mut presenter] {
            moderator.send(json!({"type": "admit", "participant": c.pid})).await;
            moderator.until("done").await;
            let (m, _) = c.until("lobby").await;
            assert_eq!(m["state"], "admitted");
        }
        moderator.send(json!({"type": "grant_presenter", "participant": presenter.pid})).await;
        moderator.until("done").await;
        let mut anonymous = server.client_from(ip(5)).await;
        anonymous.hello().await;
        let connected = server.client_from(ip(6)).await;
        let mut w = World {
            clients: vec![connected, anonymous, idle, waiting, participant, presenter, moderator],
            meeting,
            token: token.to_owned(),
        };
        // Roster updates from the setup are still queued: read them away.
        for c in w.clients.iter_mut().skip(1) {
            c.drain().await;
        }
        w.quiet(None).await;
        w
    }

    fn pid(&self, role: &str) -> Option<u64> {
        self.clients[index(role)].pid
    }

    fn message(&self, kind: &str, sender: &str) -> Value {
        let peer = if sender == "participant" { self.pid("presenter") } else { self.pid("participant") };
        match kind {
            "hello" => json!({"type": "hello", "protocol": 1}),
            "auth_moderator" => json!({"type": "auth_moderator", "token": self.token}),
            "join" => json!({"type": "join", "meeting_id": self.meeting, "password": "wrong", "display_name": "X"}),
            "resume" => json!({"type": "resume", "token": "0".repeat(32)}),
            "enter_meeting" => json!({"type": "enter_meeting", "meeting_id": self.meeting, "display_name": "Mo2"}),
            "create_meeting" => json!({"type": "create_meeting", "title": "T"}),
            "export_invitation" => json!({"type": "export_invitation", "meeting_id": self.meeting}),
            "admit" | "deny" => json!({"type": kind, "participant": self.pid("waiting")}),
            "remove" | "grant_presenter" | "lower_hand" => json!({"type": kind, "participant": self.pid("participant")}),
            "revoke_presenter" => json!({"type": kind, "participant": self.pid("presenter")}),
            "document_offer" => json!({"type": kind, "offer": "ab".repeat(16)}),
            "offer" | "answer" => json!({"type": kind, "to": peer, "sdp": "v=0"}),
            "candidate" => json!({"type": kind, "to": peer, "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdp_mline_index": 0}),
            "device_state" => json!({"type": kind, "camera": true, "microphone": false}),
            "raise_hand" => json!({"type": kind, "raised": true}),
            other => json!({"type": other}),
        }
    }

    /// Every client (but `skip`) pings; nothing may arrive before its pong. The connected
    /// client has not said hello, so its ping is answered with `bad_state` and nothing else.
    async fn quiet(&mut self, context: Option<&str>) {
        for (i, c) in self.clients.iter_mut().enumerate() {
            c.send(json!({"type": "ping"})).await;
            let m = c.recv().await;
            if i == 0 {
                assert_eq!(error_code(&m), Some("bad_state"), "{context:?}: {m}");
            } else {
                assert_eq!(m["type"], "pong", "{context:?}: {} received {m}", ROLES[i]);
            }
        }
    }
}

fn index(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).expect("role")
}

/// What an allowed message must produce, read by the sender (or the relay target).
async fn check_allowed(w: &mut World, kind: &str, role: &str) {
    let s = index(role);
    let what = format!("{kind} by {role}");
    let reply_type = match kind {
        "hello" => "welcome",
        "auth_moderator" => "authenticated",
        "join" | "resume" => "error",
        "enter_meeting" => "lobby",
        "create_meeting" => "meeting_created",
        "export_invitation" => "invitation",
        "device_state" | "raise_hand" => "participants",
        "ping" => "pong",
        "offer" | "answer" | "candidate" => "",
        _ => "done",
    };
    if reply_type.is_empty() {
        // Relayed: the peer receives it, naming the sender.
        let target = if role == "participant" { index("presenter") } else { index("participant") };
        let from = w.clients[s].pid;
        let (m, _) = w.clients[target].until(kind).await;
        assert_eq!(m["from"].as_u64(), from, "{what}: {m}");
        return;
    }
    let (m, before) = w.clients[s].until(reply_type).await;
    for b in before.iter().chain(std::iter::once(&m)) {
        assert!(!matches!(error_code(b), Some("not_allowed" | "bad_state")), "{what} refused: {b}");
    }
    if kind == "join" || kind == "resume" {
        assert_eq!(error_code(&m), Some("join_refused"), "{what}: wrong password or token in the matrix: {m}");
    }
    if reply_type == "done" {
        assert_eq!(m["request"], kind, "{what}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix_over_the_wire() {
    let server = Server::start("matrix", None, &[]);
    let token = server.add_moderator();
    assert_eq!(MATRIX.len(), blende_room::protocol::CLIENT_KINDS.len());
    let mut refused_world = World::build(&server, &token, 1).await;
    let (mut allowed, mut refused) = (0, 0);
    for (n, (kind, row)) in MATRIX.iter().enumerate() {
        assert_eq!(*kind, blende_room::protocol::CLIENT_KINDS[n]);
        for (i, allowed_here) in row.chars().map(|c| c == 'Y').enumerate() {
            let role = ROLES[i];
            if allowed_here {
                // Fresh meeting: an allowed message may change everything (end, remove …).
                let mut w = World::build(&server, &token, 2 + (allowed % 200) as u8).await;
                let msg = w.message(kind, role);
                w.clients[i].send(msg).await;
                check_allowed(&mut w, kind, role).await;
                allowed += 1;
            } else {
                let msg = refused_world.message(kind, role);
                refused_world.clients[i].send(msg).await;
                let m = refused_world.clients[i].recv().await;
                assert!(matches!(error_code(&m), Some("not_allowed" | "bad_state")), "{kind} by {role} must be refused: {m}");
                assert_eq!(m["request"], *kind, "{m}");
                refused_world.quiet(Some(&format!("{kind} by {role}"))).await;
                refused += 1;
            }
        }
    }
    println!("role matrix over the wire: {allowed} allowed and {refused} refused pairs checked");
    assert_eq!(allowed + refused, MATRIX.len() * ROLES.len());
}
