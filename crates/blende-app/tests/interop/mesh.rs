//! Blende's own room server with three `blende join --headless` participants: a moderator
//! schedules the meeting (`blende meeting create`), enters with its token, admits the two
//! others from the lobby, and all three see and hear each other over a peer-to-peer mesh. The
//! server only relays signalling: it owns no UDP socket and moves far fewer bytes than the
//! media.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};

pub(crate) fn server_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_blende")).with_file_name("blende-server");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p blende-server` (cargo test --workspace does)", bin.display());
    bin
}

pub(crate) struct RoomServer {
    child: Child,
    addr: String,
}

impl RoomServer {
    /// `blende-server serve` on 127.0.0.1 inside the test namespace (plain WebSocket: loopback).
    pub(crate) fn start(db: &str) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns()])
            .arg(server_binary())
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0", "--argon2-m-kib", "1024", "--argon2-t", "1", "--log-format", "text"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("blende-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("blende-server did not start ({e}): {line:?}"));
        RoomServer { child, addr: v["addr"].as_str().expect("addr").to_owned() }
    }

    pub(crate) fn url(&self) -> String {
        format!("blende+ws://{}", self.addr)
    }

    /// UDP sockets the server process owns (by socket inode in its fd table).
    fn udp_sockets(&self) -> usize {
        let pid = self.child.id();
        let udp: String = ["udp", "udp6"].iter().filter_map(|f| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).ok()).collect();
        let inodes: Vec<String> = udp.lines().skip(1).filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned)).collect();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|l| l.to_str().and_then(|s| s.strip_prefix("socket:[")).map(|s| s.trim_end_matches(']').to_owned()))
                    .filter(|inode| inodes.contains(inode))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Bytes sent and received on the server's open TCP connections (`ss -tinp` in the
    /// namespace: the kernel's per-connection counters).
    fn socket_bytes(&self) -> u64 {
        let out = Command::new("ip").args(["netns", "exec", &netns(), "ss", "-tinpH"]).output().expect("ss (iproute2)");
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = format!("pid={},", self.child.id());
        // Each connection: a line naming the process, then a line of counters.
        let lines: Vec<&str> = text.lines().collect();
        let mut total = 0;
        for (i, l) in lines.iter().enumerate() {
            if l.contains(&pid)
                && let Some(info) = lines.get(i + 1)
            {
                for key in ["bytes_sent:", "bytes_received:"] {
                    total += info.split_whitespace().find_map(|f| f.strip_prefix(key)?.parse::<u64>().ok()).unwrap_or(0);
                }
            }
        }
        total
    }
}

impl Drop for RoomServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn feeds_ok(p: &Participant, after_t_ms: u64) -> usize {
    let mut ok = std::collections::HashSet::new();
    for v in p.events() {
        if v["event"] == "stats"
            && !v["feed"].is_null()
            && v["t_ms"].as_u64().unwrap_or(0) > after_t_ms
            && v["stamped_frames"].as_u64().unwrap_or(0) >= 15
            && v["audio_hz"].as_f64().is_some_and(|hz| (hz - 440.0).abs() <= 5.0)
        {
            ok.insert(v["feed"].as_str().unwrap_or_default().to_owned());
        }
    }
    ok.len()
}

#[test]
fn three_participants_mesh_through_blendes_room_server_with_lobby() {
    let _serial = serial();
    // The namespace (with 127.0.0.2 for ICE) comes with the Janus setup.
    if !janus_or_skip("three_participants_mesh_through_blendes_room_server_with_lobby") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mesh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite:{}", dir.join("blende.db").display());
    let admin = Command::new(server_binary()).args(["admin", "--db", &db, "--json", "add-moderator", "--name", "Leitung"]).output().expect("admin");
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    let token: Value = serde_json::from_slice(&admin.stdout).expect("admin json");
    let token_file = dir.join("moderator-token");
    std::fs::write(&token_file, format!("{}\n", token["token"].as_str().expect("token"))).expect("token file");
    let server = RoomServer::start(&db);

    let created = Command::new("ip")
        .args(["netns", "exec", &netns(), env!("CARGO_BIN_EXE_blende"), "meeting", "create", "--server", &server.url(), "--moderator-token-file"])
        .arg(&token_file)
        .args(["--title", "Abstimmung Haushalt"])
        .output()
        .expect("blende meeting create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).expect("meeting json");
    let meeting = created["meeting"]["id"].as_str().expect("meeting id").to_owned();
    let password = created["password"].as_str().expect("password").to_owned();
    assert!(!created["invitation"]["text"].as_str().unwrap_or_default().contains(&password), "the invitation must not carry the password");
    let pw_file = dir.join("password");
    std::fs::write(&pw_file, format!("{password}\n")).expect("password file");
    let (url, tok, pw) = (server.url(), token_file.to_str().expect("path").to_owned(), pw_file.to_str().expect("path").to_owned());

    let mut moderator = Participant::spawn_with_server("Leitung", &url, &["--room", &meeting, "--moderator-token-file", &tok]);
    moderator.wait_for("moderator in", Duration::from_secs(15), |v| v["event"] == "joined");
    let a = Participant::spawn_with_server("Anna", &url, &["--room", &meeting, "--password-file", &pw]);
    let b = Participant::spawn_with_server("Bernd", &url, &["--room", &meeting, "--password-file", &pw]);
    for p in [&a, &b] {
        p.wait_for("waiting in the lobby", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "waiting");
    }
    // The moderator sees both waiting and admits them by id.
    let waiting = moderator.wait_for("both waiting", Duration::from_secs(15), |v| v["event"] == "waiting" && v["participants"].as_array().is_some_and(|l| l.len() == 2));
    for w in waiting["participants"].as_array().expect("list") {
        moderator.send(&format!("admit {}", w["id"].as_str().expect("id")));
    }
    for p in [&a, &b] {
        p.wait_for("admitted", Duration::from_secs(15), |v| v["event"] == "lobby" && v["state"] == "admitted");
    }

    // Each one decodes the two others' test pattern and tone.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let counts = [feeds_ok(&moderator, 0), feeds_ok(&a, 0), feeds_ok(&b, 0)];
        if counts.iter().all(|&c| c == 2) {
            eprintln!("mesh: every participant decodes both others (stamped frames, 440 Hz)");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "mesh incomplete: feeds decoded per participant {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Media is peer to peer: the server has no UDP socket, and over the whole call (lobby,
    // six offers and answers with their SDP) it moves only signalling, while the media is
    // several MB.
    std::thread::sleep(Duration::from_secs(3));
    let server_bytes = server.socket_bytes();
    let udp = server.udp_sockets();
    let media_frames: u64 = [&moderator, &a, &b]
        .iter()
        .flat_map(|p| {
            let evs = p.events();
            let mut last = std::collections::HashMap::new();
            for v in evs.iter().filter(|v| v["event"] == "stats" && !v["feed"].is_null()) {
                last.insert(v["feed"].as_str().unwrap_or_default().to_owned(), v["frames_decoded"].as_u64().unwrap_or(0));
            }
            last.into_values().collect::<Vec<_>>()
        })
        .sum();
    eprintln!("server: {udp} UDP sockets, {server_bytes} bytes on its 3 signalling connections while the participants decoded {media_frames} frames in all");
    assert_eq!(udp, 0, "the room server must not carry media");
    assert!(server_bytes > 0, "no signalling counted: is `ss` reporting the server's connections?");
    assert!(server_bytes < 200_000, "the server moved {server_bytes} bytes: media through the server?");

    // The moderator removes Bernd: he is out, the others see him leave.
    let bernd_id = waiting["participants"].as_array().expect("list").iter().find(|w| w["display"] == "Bernd").and_then(|w| w["id"].as_str()).expect("Bernd").to_owned();
    moderator.send(&format!("remove {bernd_id}"));
    b.wait_for("Bernd removed", Duration::from_secs(10), |v| v["event"] == "left" && v["reason"] == "kicked");
    a.wait_for("Anna sees Bernd leave", Duration::from_secs(10), |v| v["event"] == "participant_left" && v["id"] == bernd_id.as_str());
    a.leave();
    moderator.leave();
}
