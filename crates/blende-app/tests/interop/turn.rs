//! TURN through Debian's coturn: two `blende join --headless --relay-only` participants of a
//! Blende room (host candidates not allowed, as behind a strict firewall) connect only through
//! the TURN server whose short-lived credentials the room server handed out.
//!
//! First without TURN on the room server: the two join but no connection comes up within a
//! bounded wait. Then with `blende-server admin set turn` (coturn's shared-secret scheme) and
//! our own `turnserver` (its own config and log in a temp dir, never the system service's):
//! both decode each other's test pattern and tone, every connection's selected pair has a
//! relayed local candidate on both ends, and coturn's log shows allocations and permissions
//! under the usernames the server made for exactly these two participants.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};
use crate::room::{RoomServer, RoomSetup, admin, feeds_ok};

const TURN_SECRET: &str = "blende-turn-test-secret";
const TURN_URL: &str = "turn:127.0.0.1:3478?transport=udp";

/// `turnserver` inside the test namespace with a config of our own.
struct Coturn {
    child: Child,
    log: PathBuf,
}

impl Coturn {
    fn start(dir: &Path) -> Self {
        let log = dir.join("turnserver.log");
        let config = dir.join("turnserver.conf");
        let text = format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port=3478\nuse-auth-secret\nstatic-auth-secret={TURN_SECRET}\n\
             realm=blende.test\nno-tls\nno-dtls\nno-cli\nallow-loopback-peers\nfingerprint\nverbose\nsimple-log\nno-stdout-log\n\
             log-file={}\npidfile={}\nuserdb={}\n",
            log.display(),
            dir.join("turnserver.pid").display(),
            dir.join("turndb").display(),
        );
        std::fs::write(&config, text).expect("turnserver.conf");
        let child = Command::new("ip")
            .args(["netns", "exec", &netns(), "turnserver", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (Debian package coturn, scripts/deps.sh test)");
        let coturn = Coturn { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !coturn.log_text().contains("Total General servers") {
            assert!(Instant::now() < deadline, "coturn did not start: {}", coturn.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        coturn
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines of successful `what` requests (ALLOCATE, CREATE_PERMISSION, …) by `username`.
    fn successes(&self, what: &str, username_suffix: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(&format!("incoming packet {what} processed, success")))
            .filter(|l| l.split("user <").nth(1).and_then(|u| u.split('>').next()).is_some_and(|u| u.ends_with(username_suffix)))
            .count()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connected(p: &Participant) -> Vec<Value> {
    p.events().into_iter().filter(|v| v["event"] == "connection" && v["state"] == "connected").collect()
}

fn frames_decoded(p: &Participant) -> u64 {
    p.events()
        .iter()
        .filter(|v| v["event"] == "stats" && !v["feed"].is_null())
        .filter_map(|v| v["frames_decoded"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn relay_only_participants_connect_through_coturn_with_the_servers_credentials() {
    let _serial = serial();
    // The namespace comes with the Janus setup.
    if !janus_or_skip("relay_only_participants_connect_through_coturn_with_the_servers_credentials") {
        return;
    }
    let setup = RoomSetup::new("turn");
    let (dir, db) = (setup.dir.clone(), setup.db.clone());

    // 1. No TURN on the room server: relay-only participants have no candidate to offer.
    let server = RoomServer::start(&db);
    let m = setup.create_meeting(&server, "Hinter der Firewall", false);
    let (meeting, pw) = (m.id.clone(), m.password_path().to_owned());
    let args = ["--room", meeting.as_str(), "--password-file", pw.as_str(), "--relay-only"];

    let url = server.url();
    let a = Participant::spawn_with_server("Anna", &url, &args);
    let b = Participant::spawn_with_server("Bernd", &url, &args);
    for p in [&a, &b] {
        p.wait_for("joined", Duration::from_secs(15), |v| v["event"] == "joined");
    }
    // Bounded wait: long enough for host-candidate ICE on loopback (well under a second in
    // mesh.rs) and for ICE to give up.
    std::thread::sleep(Duration::from_secs(10));
    for p in [&a, &b] {
        assert!(connected(p).is_empty(), "{} connected without TURN in relay-only mode: {:?}", p.name, connected(p));
        assert_eq!(frames_decoded(p), 0, "{} decoded media without TURN in relay-only mode", p.name);
        assert!(!p.events().iter().any(|v| v["event"] == "ice_servers"), "{}: ICE servers without TURN configured", p.name);
    }
    eprintln!("without TURN: both joined, no connection and no frame within 10 s (relay only)");
    a.leave();
    b.leave();
    drop(server);

    // 2. TURN on the room server (settings are read at start) and our own coturn.
    let coturn = Coturn::start(&dir);
    let secret_file = dir.join("turn-secret");
    std::fs::write(&secret_file, format!("{TURN_SECRET}\n")).expect("secret file");
    admin(&db, &["set", "turn", "--url", TURN_URL, "--secret-file", &secret_file.display().to_string(), "--ttl-s", "600"]);
    let server = RoomServer::start(&db);
    let url = server.url();
    let a = Participant::spawn_with_server("Anna", &url, &args);
    let b = Participant::spawn_with_server("Bernd", &url, &args);
    let mut ids = Vec::new();
    for p in [&a, &b] {
        let joined = p.wait_for("joined", Duration::from_secs(15), |v| v["event"] == "joined");
        ids.push(joined["participant_id"].as_str().expect("participant id").to_owned());
        let ice = p.wait_for("ICE servers from the room server", Duration::from_secs(5), |v| v["event"] == "ice_servers");
        assert_eq!((ice["turn"].as_u64(), ice["relay_only"].as_bool()), (Some(1), Some(true)), "{ice}");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let counts = [feeds_ok(&a, 0), feeds_ok(&b, 0)];
        if counts == [1, 1] {
            break;
        }
        assert!(Instant::now() < deadline, "no media through TURN: feeds decoded per participant {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("with TURN: both decode the other's test pattern (stamped) and 440 Hz tone");

    // Every connection (our publisher to the other, the other's to us) runs relay to relay.
    for p in [&a, &b] {
        let up = connected(p);
        assert_eq!(up.len(), 2, "{}: expected the mesh publisher and the subscriber connected: {up:?}", p.name);
        for c in &up {
            // Our end is the relay; the far end is the other participant's connection, whose
            // own event says relay too (the remote type is null where the stack has no stats).
            assert_eq!(c["local_candidate"].as_str(), Some("relay"), "{}: {c}", p.name);
            assert!(c["remote_candidate"].is_null() || c["remote_candidate"] == "relay", "{}: {c}", p.name);
        }
        let remote: Vec<&Value> = up.iter().map(|c| &c["remote_candidate"]).collect();
        eprintln!("{}: {} connections, local candidate relay on each (remote: {remote:?})", p.name, up.len());
    }
    // coturn saw both participants, each under the short-lived username the room server made
    // for them (`<expiry>:p<id>`): allocations and permissions for the peer's relay address.
    for id in &ids {
        let suffix = format!(":p{id}");
        let allocs = coturn.successes("ALLOCATE", &suffix);
        let perms = coturn.successes("CREATE_PERMISSION", &suffix) + coturn.successes("CHANNEL_BIND", &suffix);
        eprintln!("coturn, participant {id}: {allocs} allocations, {perms} permissions/channel binds");
        assert!(allocs >= 1, "no TURN allocation for participant {id}:\n{}", coturn.log_text());
        assert!(perms >= 1, "no TURN permission for participant {id}:\n{}", coturn.log_text());
    }
    a.leave();
    b.leave();
    drop(server);
    drop(coturn);
    let _ = std::fs::remove_dir_all(&dir);
}
