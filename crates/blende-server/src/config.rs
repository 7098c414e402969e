//! What `serve` runs with: its flags over the configuration file IT keeps in
//! `/etc/blende-server/server.toml` (the package's conffile), over built-in defaults. The same
//! resolved [`Serve`] feeds the privacy notice, so the notice describes what the unit runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_DB: &str = "sqlite:blende-server.db";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (`db`, `listen`, `tls_cert`, …, the names of
    /// the flags with `_`); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `sqlite:/path/file.db` (embedded default) or `postgres://user@host/db`.
    #[arg(long, env = "BLENDE_DB")]
    db: Option<String>,
    /// Address and port to listen on [default: 127.0.0.1:8443].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// PEM certificate chain. Without `--tls-cert`/`--tls-key` the server only binds loopback.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Base of invitation links, e.g. `blende+wss://meet.example.org`.
    #[arg(long)]
    public_url: Option<String>,
    /// `json` (default) or `text`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Failed joins per address before back-off starts [default: 5].
    #[arg(long)]
    address_free_failures: Option<u32>,
    /// Failed joins per address that lock it out [default: 20].
    #[arg(long)]
    address_lockout_failures: Option<u32>,
    /// [default: 10]
    #[arg(long)]
    meeting_free_failures: Option<u32>,
    /// [default: 50]
    #[arg(long)]
    meeting_lockout_failures: Option<u32>,
    /// [default: 1000]
    #[arg(long)]
    backoff_base_ms: Option<u64>,
    /// [default: 30000]
    #[arg(long)]
    backoff_max_ms: Option<u64>,
    /// Length of a lockout, and the quiet time after which failures are forgotten [default: 900].
    #[arg(long)]
    lockout_s: Option<u64>,
    /// argon2id memory for new hashes, KiB (verification uses each hash's own parameters)
    /// [default: 19456].
    #[arg(long)]
    argon2_m_kib: Option<u32>,
    /// [default: 2]
    #[arg(long)]
    argon2_t: Option<u32>,
    /// argon2id worker threads: password checks running at once (each holds `argon2_m_kib`)
    /// [default: 2].
    #[arg(long)]
    argon2_workers: Option<usize>,
    /// Seconds a connection may stay unauthenticated (no join let in, no moderator token)
    /// before it is closed [default: 30].
    #[arg(long)]
    auth_deadline_s: Option<u64>,
    /// Open connections in total; more are closed at once [default: 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Open connections per source address (IPv6: per /64) [default: 64].
    #[arg(long)]
    max_connections_per_address: Option<usize>,
    /// Seconds a connection may send nothing at all (the server pings at a third of it, and
    /// clients answer pings by themselves) before it is closed [default: 60].
    #[arg(long)]
    idle_timeout_s: Option<u64>,
    /// Members one source address (IPv6: /64) may hold in a meeting before further joins from
    /// it wait in the lobby; as many again may wait [default: 8].
    #[arg(long)]
    seats_per_address: Option<usize>,
    /// Seconds an admitted member whose connection dropped may come back to their seat
    /// (`resume`: role kept, no second lobby wait) [default: 120].
    #[arg(long)]
    resume_grace_s: Option<u64>,
    /// A reverse proxy in front of the server (repeat for several). Connections from it are
    /// keyed by the last address in its `X-Forwarded-For` header (and refused without one);
    /// the header is ignored from anyone else.
    #[arg(long = "trusted-proxy", value_name = "ADDRESS")]
    trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// The configuration file: the same settings as the flags, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<String>,
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    public_url: Option<String>,
    log_format: Option<LogFormat>,
    address_free_failures: Option<u32>,
    address_lockout_failures: Option<u32>,
    meeting_free_failures: Option<u32>,
    meeting_lockout_failures: Option<u32>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    lockout_s: Option<u64>,
    argon2_m_kib: Option<u32>,
    argon2_t: Option<u32>,
    argon2_workers: Option<usize>,
    auth_deadline_s: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    idle_timeout_s: Option<u64>,
    seats_per_address: Option<usize>,
    resume_grace_s: Option<u64>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
}

/// What the server runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serve {
    pub db: String,
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub address_free_failures: u32,
    pub address_lockout_failures: u32,
    pub meeting_free_failures: u32,
    pub meeting_lockout_failures: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub lockout_s: u64,
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    pub argon2_workers: usize,
    pub auth_deadline_s: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub idle_timeout_s: u64,
    pub seats_per_address: usize,
    pub resume_grace_s: u64,
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// The `db` a command uses: the flag, else the configuration file's, else the default.
pub fn db_of(flag: Option<String>, config: Option<&Path>) -> Result<String> {
    Ok(match flag {
        Some(db) => db,
        None => read_file(config)?.db.unwrap_or_else(|| DEFAULT_DB.to_owned()),
    })
}

fn read_file(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

impl ServeArgs {
    /// Flags over the file over defaults. A TLS certificate without its key (or the other way
    /// round) is an error, wherever each came from.
    pub fn resolve(self) -> Result<Serve> {
        let f = read_file(self.config.as_deref())?;
        let tls = match (self.tls_cert.or(f.tls_cert), self.tls_key.or(f.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!("tls_cert and tls_key go together: give both or neither"),
        };
        Ok(Serve {
            db: self.db.or(f.db).unwrap_or_else(|| DEFAULT_DB.to_owned()),
            listen: self.listen.or(f.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
            tls,
            public_url: self.public_url.or(f.public_url),
            log_format: self.log_format.or(f.log_format).unwrap_or(LogFormat::Json),
            address_free_failures: self.address_free_failures.or(f.address_free_failures).unwrap_or(5),
            address_lockout_failures: self.address_lockout_failures.or(f.address_lockout_failures).unwrap_or(20),
            meeting_free_failures: self.meeting_free_failures.or(f.meeting_free_failures).unwrap_or(10),
            meeting_lockout_failures: self.meeting_lockout_failures.or(f.meeting_lockout_failures).unwrap_or(50),
            backoff_base_ms: self.backoff_base_ms.or(f.backoff_base_ms).unwrap_or(1000),
            backoff_max_ms: self.backoff_max_ms.or(f.backoff_max_ms).unwrap_or(30_000),
            lockout_s: self.lockout_s.or(f.lockout_s).unwrap_or(900),
            argon2_m_kib: self.argon2_m_kib.or(f.argon2_m_kib).unwrap_or(19 * 1024),
            argon2_t: self.argon2_t.or(f.argon2_t).unwrap_or(2),
            argon2_workers: self.argon2_workers.or(f.argon2_workers).unwrap_or(2),
            auth_deadline_s: self.auth_deadline_s.or(f.auth_deadline_s).unwrap_or(30),
            max_connections: self.max_connections.or(f.max_connections).unwrap_or(10_000),
            max_connections_per_address: self.max_connections_per_address.or(f.max_connections_per_address).unwrap_or(64),
            idle_timeout_s: self.idle_timeout_s.or(f.idle_timeout_s).unwrap_or(60).max(3),
            seats_per_address: self.seats_per_address.or(f.seats_per_address).unwrap_or(8),
            resume_grace_s: self.resume_grace_s.or(f.resume_grace_s).unwrap_or(120),
            trusted_proxies: if self.trusted_proxies.is_empty() { f.trusted_proxies.unwrap_or_default() } else { self.trusted_proxies },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn resolve(args: &[&str]) -> Result<Serve> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))?.serve.resolve()
    }

    /// A configuration file in the temporary folder, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("blende-server-config-{}-{n}.toml", std::process::id()));
            std::fs::write(&p, text).expect("write");
            TempFile(p)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let f = TempFile::new(
            "db = \"sqlite:/var/lib/blende-server/blende-server.db\"\nlisten = \"0.0.0.0:443\"\nlockout_s = 600\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
        );
        let path = f.0.to_str().expect("utf-8");
        let s = resolve(&["--config", path, "--listen", "127.0.0.1:9000"]).expect("resolve");
        assert_eq!(s.db, "sqlite:/var/lib/blende-server/blende-server.db");
        assert_eq!(s.listen, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(s.lockout_s, 600);
        assert_eq!(s.tls, Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem"))));
        assert_eq!(s.argon2_m_kib, 19 * 1024);
        let d = resolve(&[]).expect("defaults");
        assert_eq!((d.db.as_str(), d.listen.port(), d.tls.clone(), d.log_format), (DEFAULT_DB, 8443, None, LogFormat::Json));
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        for text in ["listen = 5\n", "tls_certificate = \"/c.pem\"\n", "tls_cert = \"/c.pem\"\n"] {
            let f = TempFile::new(text);
            let path = f.0.to_str().expect("utf-8");
            let e = resolve(&["--config", path]).expect_err(text);
            let msg = format!("{e:#}");
            assert!(msg.contains("blende-server-config") || msg.contains("tls_cert and tls_key"), "{msg}");
        }
    }
}
