//! Blende's room server for the interop tests: the real `blende-server` in the test namespace,
//! its admin CLI, meetings made with `blende meeting create`, and what a participant decodes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{Participant, netns};

pub fn server_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_blende")).with_file_name("blende-server");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p blende-server` (cargo test --workspace does)", bin.display());
    bin
}

pub struct RoomServer {
    child: Child,
    addr: String,
    /// The namespace it runs in; `None`: this process's own (for a client in the test process).
    netns: Option<String>,
}

/// `program` inside the namespace, or as it is.
fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// `blende-server serve` on `listen` (cheap hashing for tests); the process and the address
/// it reports.
fn serve(db: &str, netns: Option<&str>, listen: &str) -> (Child, String) {
    let mut child = command_in(netns, &server_binary())
        .args(["serve", "--db", db, "--listen", listen, "--argon2-m-kib", "1024", "--argon2-t", "1", "--log-format", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("blende-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("blende-server did not start ({e}): {line:?}"));
    (child, v["addr"].as_str().expect("addr").to_owned())
}

impl RoomServer {
    /// `blende-server serve` on 127.0.0.1 inside the test namespace (plain WebSocket: loopback).
    pub fn start(db: &str) -> Self {
        Self::start_in(db, Some(&netns()))
    }

    /// The same in the namespace given (`None`: on this process's own loopback).
    pub fn start_in(db: &str, netns: Option<&str>) -> Self {
        let (child, addr) = serve(db, netns, "127.0.0.1:0");
        RoomServer { child, addr, netns: netns.map(str::to_owned) }
    }

    pub fn url(&self) -> String {
        format!("blende+ws://{}", self.addr)
    }

    /// Kills the server (SIGKILL: a crash, nothing is saved on the way out) and starts it again
    /// on the same address and database.
    pub fn restart(&mut self, db: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = serve(db, self.netns.as_deref(), &self.addr);
        assert_eq!(addr, self.addr, "the same address");
        self.child = child;
    }

    /// UDP sockets the server process owns (by socket inode in its fd table).
    pub fn udp_sockets(&self) -> usize {
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
    pub fn socket_bytes(&self) -> u64 {
        let out = command_in(self.netns.as_deref(), Path::new("ss")).arg("-tinpH").output().expect("ss (iproute2)");
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

/// `blende-server admin --db DB --json ARGS…`, its JSON answer.
pub fn admin(db: &str, args: &[&str]) -> Value {
    let out = Command::new(server_binary()).args(["admin", "--db", db, "--json"]).args(args).output().expect("blende-server admin");
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A fresh database with one moderator, in a folder of the test's own.
pub struct RoomSetup {
    pub dir: PathBuf,
    pub db: String,
    pub token_file: PathBuf,
}

impl RoomSetup {
    pub fn new(name: &str) -> Self {
        // A folder per setup: a server of the test before may still hold its database.
        static SETUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SETUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let db = format!("sqlite:{}", dir.join("blende.db").display());
        let token = admin(&db, &["add-moderator", "--name", "Leitung"]);
        let token_file = dir.join("moderator-token");
        std::fs::write(&token_file, format!("{}\n", token["token"].as_str().expect("token"))).expect("token file");
        RoomSetup { dir, db, token_file }
    }

    pub fn token_path(&self) -> &str {
        self.token_file.to_str().expect("path")
    }

    /// `blende meeting create` as the moderator; the password goes to a file of its own.
    pub fn create_meeting(&self, server: &RoomServer, title: &str, lobby: bool) -> Meeting {
        let mut cmd = command_in(server.netns.as_deref(), Path::new(env!("CARGO_BIN_EXE_blende")));
        cmd.args(["meeting", "create", "--server", &server.url(), "--moderator-token-file"]).arg(&self.token_file).args(["--title", title]);
        if !lobby {
            cmd.arg("--no-lobby");
        }
        let out = cmd.output().expect("blende meeting create");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).expect("meeting json");
        let id = created["meeting"]["id"].as_str().expect("meeting id").to_owned();
        let password = created["password"].as_str().expect("password").to_owned();
        let password_file = self.dir.join(format!("password-{id}"));
        std::fs::write(&password_file, format!("{password}\n")).expect("password file");
        Meeting { id, password, password_file, created }
    }
}

/// A meeting as `blende meeting create` printed it.
pub struct Meeting {
    pub id: String,
    pub password: String,
    pub password_file: PathBuf,
    pub created: Value,
}

impl Meeting {
    pub fn password_path(&self) -> &str {
        self.password_file.to_str().expect("path")
    }
}

/// Remote feeds `p` decodes with readable test-pattern stamps and the 440 Hz tone, counting
/// only stats newer than `after_t_ms`.
pub fn feeds_ok(p: &Participant, after_t_ms: u64) -> usize {
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

/// The app window joining `meeting` on `server` as `name`, without camera or microphone, in
/// `language`; `ice_ip` binds ICE (the test process's own loopback needs 127.0.0.1), `share`
/// starts sharing at once.
pub fn app_in_meeting(
    server: &RoomServer,
    meeting: &Meeting,
    name: &str,
    language: blende_app::ui::Language,
    ice_ip: Option<std::net::IpAddr>,
    share: Option<blende_app::engine::ShareSource>,
) -> blende_app::ui::AppOptions {
    use blende_app::ui::{AppOptions, AutoJoin, Devices};
    let policy = blende_policy::Policy::builtin();
    let spec = blende_app::engine::CallSpec {
        url: blende_policy::ServerUrl::parse(&server.url()).expect("url"),
        join: blende_signal::JoinOptions {
            room: Some(meeting.id.clone()),
            password: Some(meeting.password.clone()),
            display_name: name.into(),
            moderator_token: None,
            resume: None,
        },
        camera: false,
        mic: false,
        ice_servers: Vec::new(),
        ice_ip,
        width: 320,
        height: 240,
        bitrate_bps: 300_000,
        congestion_control: true,
        stats_interval_ms: 1000,
        policy: policy.clone(),
        share,
    };
    let devices = Devices { camera_id: String::new(), microphone_id: String::new(), speaker_id: None, synthetic_size: None };
    AppOptions {
        language,
        start_in_demo: false,
        policy,
        autojoin: Some(AutoJoin { spec, devices, print_events: false }),
        started: std::time::Instant::now(),
        user_settings: None,
        admin_policy: None,
        secrets: std::sync::Arc::new(blende_app::secrets::OsKeychain),
    }
}
