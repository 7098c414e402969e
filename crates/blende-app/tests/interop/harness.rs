//! Process harness: Janus availability, `blende join --headless` participants in the test
//! namespace, and reading their JSON-lines events.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const NETNS_DEFAULT: &str = "blende-ns";
pub const JANUS_WS: &str = "janus+ws://127.0.0.1:8188/";
pub const ICE_IP: &str = "127.0.0.2";

/// The interop tests share two cores and one Janus: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn netns() -> String {
    std::env::var("BLENDE_NETNS").unwrap_or_else(|_| NETNS_DEFAULT.to_owned())
}

fn janus_reachable() -> bool {
    Command::new("ip")
        .args(["netns", "exec", &netns(), "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8188"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when Janus runs in the namespace. Otherwise skips (returns `false`) with a message,
/// or panics when `BLENDE_REQUIRE_JANUS=1` (as `scripts/test.sh` sets).
pub fn janus_or_skip(test: &str) -> bool {
    if janus_reachable() {
        return true;
    }
    let msg = format!(
        "{test}: Janus is not reachable on 127.0.0.1:8188 in network namespace `{}` \
         (start it with tests/interop/janus-netns.sh, as root)",
        netns()
    );
    if std::env::var("BLENDE_REQUIRE_JANUS").is_ok_and(|v| v == "1") {
        panic!("{msg}; BLENDE_REQUIRE_JANUS=1 is set");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// A running `blende join --headless` inside the namespace.
pub struct Participant {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    /// Just after the process was started (its `t_ms` count from a moment a little later).
    spawned: Instant,
}

impl Participant {
    pub fn spawn(name: &str, room: u32, extra: &[&str]) -> Self {
        let room = room.to_string();
        let mut args = vec!["--room", room.as_str()];
        args.extend_from_slice(extra);
        Self::spawn_with_server(name, JANUS_WS, &args)
    }

    pub fn spawn_with_server(name: &str, server: &str, extra: &[&str]) -> Self {
        Self::spawn_mode(name, server, true, extra, &[])
    }

    /// Headless in this process's own network namespace (ICE on 127.0.0.1): for tests whose
    /// other peer runs in the test process itself.
    pub fn spawn_local(name: &str, server: &str, extra: &[&str]) -> Self {
        Self::spawn_in(None, name, server, true, extra, &[])
    }

    /// Headless, with extra environment variables (e.g. `SSL_CERT_FILE` for a test CA).
    pub fn spawn_with_env(name: &str, server: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_mode(name, server, true, extra, env)
    }

    /// The app with its window (`blende join` without `--headless`) on `$DISPLAY`, inside the
    /// namespace; it prints the same events and `first_frame_drawn`.
    pub fn spawn_app(name: &str, room: u32, extra: &[&str]) -> Self {
        let room = room.to_string();
        let mut args = vec!["--room", room.as_str()];
        args.extend_from_slice(extra);
        Self::spawn_mode(name, JANUS_WS, false, &args, &[])
    }

    fn spawn_mode(name: &str, server: &str, headless: bool, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_in(Some(&netns()), name, server, headless, extra, env)
    }

    fn spawn_in(ns: Option<&str>, name: &str, server: &str, headless: bool, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let bin = env!("CARGO_BIN_EXE_blende");
        let ice_ip = if ns.is_some() { ICE_IP } else { "127.0.0.1" };
        let mut args = ["join", "--server", server, "--name", name, "--ice-ip", ice_ip, "--stats-interval-ms", "500"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if headless {
            args.push("--headless".to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn blende join");
        let spawned = Instant::now();
        let stdout = child.stdout.take().expect("stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let label = name.to_owned();
        std::thread::Builder::new()
            .name(format!("events-{name}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => {
                            if v["event"] != "stats" {
                                eprintln!("[{label}] {line}");
                            }
                            sink.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                        }
                        Err(_) => eprintln!("[{label}] non-JSON: {line}"),
                    }
                }
            })
            .expect("reader thread");
        let stdin = child.stdin.take();
        Self { name: name.to_owned(), child, stdin, events, spawned }
    }

    pub fn send(&mut self, command: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
        }
    }

    /// When the process printed event `v` (by its `t_ms`; at most the process's start-up
    /// time early).
    pub fn instant_of(&self, v: &Value) -> Instant {
        self.spawned + Duration::from_millis(v["t_ms"].as_u64().unwrap_or(0))
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The first event matching `pred`, waiting up to `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_since(0, what, timeout, pred)
    }

    /// How many events have arrived so far: a mark for [`Participant::wait_for_since`].
    pub fn mark(&self) -> usize {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The first event from index `mark` on matching `pred`, waiting up to `timeout`.
    pub fn wait_for_since(&self, mark: usize, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events().into_iter().skip(mark).find(|v| pred(v)) {
                return v;
            }
            if let Some(v) = self.events().into_iter().find(|v| v["event"] == "error" && v["fatal"] == true) {
                panic!("{}: fatal error while waiting for {what}: {v}", self.name);
            }
            assert!(Instant::now() < deadline, "{}: timed out after {timeout:?} waiting for {what}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a `stats` event about a remote feed, newer than `after_t_ms`, matching `pred`.
    pub fn wait_feed_stats(&self, what: &str, timeout: Duration, after_t_ms: u64, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(what, timeout, |v| {
            v["event"] == "stats" && !v["feed"].is_null() && v["t_ms"].as_u64().unwrap_or(0) > after_t_ms && pred(v)
        })
    }

    pub fn last_t_ms(&self) -> u64 {
        self.events().last().and_then(|v| v["t_ms"].as_u64()).unwrap_or(0)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `leave` and waits for the process to end; its exit status.
    pub fn leave(mut self) -> Option<i32> {
        self.send("leave");
        self.stdin = None;
        self.exit_status(Duration::from_secs(5))
    }

    /// The exit status once the process ended by itself, waiting up to `timeout`.
    pub fn exit_status(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(300));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
