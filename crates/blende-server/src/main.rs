//! `blende-server`: Blende's room server. `serve` runs the TLS WebSocket signalling server
//! around the sans-IO `blende_room::Room` (one hub task drives it, see `hub`); `admin` is the
//! administrator's CLI on the same database.
//!
//! On start, `serve` prints one JSON line on stdout, `{"event":"listening","addr":…,"tls":…}`,
//! so scripts and tests can bind port 0. Logs go to stderr, without display names, passwords
//! or addresses at info level.

mod admin;
mod config;
mod db;
mod hub;
mod inbox;
mod janus;
mod janus_sync;
mod net;
mod notice;
mod secrets;
mod tag;
mod turn;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use blende_meeting::OsEntropy;
use blende_room::limiter::{LimitPolicy, LimiterConfig};
use blende_room::protocol::Secret;
use blende_room::{Room, RoomConfig};
use clap::{CommandFactory as _, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::info;

use crate::config::{LogFormat, Serve, ServeArgs};
use crate::db::Store;
use crate::secrets::Cost;
use crate::turn::TurnConfig;

#[derive(Debug, Parser)]
#[command(name = "blende-server", version, about = "Blende's room server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the signalling server.
    Serve(ServeArgs),
    /// Administrator commands on the server's database.
    Admin(admin::AdminArgs),
    /// Print the text for the authority's privacy notice and record of processing (Art. 13
    /// and 30 GDPR), written from the same configuration `serve` would run with and the
    /// settings in the database; the parts only the authority knows are marked for it.
    PrivacyNotice {
        #[arg(long, value_enum, default_value = "de")]
        lang: NoticeLang,
        #[arg(long, value_enum, default_value = "md")]
        format: NoticeFormat,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Write the man pages and shell completions into DIR (used when packaging).
    #[command(hide = true)]
    PackageFiles {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NoticeLang {
    De,
    En,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NoticeFormat {
    Md,
    Html,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("blende-server").build()?;
    match cli.cmd {
        Cmd::Serve(args) => {
            let serve = args.resolve()?;
            init_logs(serve.log_format);
            runtime.block_on(run(serve))
        }
        Cmd::Admin(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(admin::run(args))
        }
        Cmd::PrivacyNotice { lang, format, serve } => {
            let serve = serve.resolve()?;
            let settings = runtime.block_on(async { settings(&Store::open(&serve.db).await?).await })?;
            let facts = notice::server_facts(&serve, &settings)?;
            let lang = match lang {
                NoticeLang::De => blende_notice::Lang::De,
                NoticeLang::En => blende_notice::Lang::En,
            };
            let format = match format {
                NoticeFormat::Md => blende_notice::Format::Markdown,
                NoticeFormat::Html => blende_notice::Format::Html,
            };
            print!("{}", blende_notice::server_notice(&facts, lang).render(format));
            Ok(())
        }
        Cmd::PackageFiles { out } => package_files(&out),
    }
}

/// Man pages and bash, zsh and fish completions from the parser's own definitions.
fn package_files(out: &std::path::Path) -> Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "blende-server", &completions)?;
    }
    Ok(())
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BLENDE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Server-wide parameters the administrator set with `blende-server admin set …`.
pub(crate) struct Settings {
    max_participants: usize,
    lobby_default: bool,
    turn: TurnConfig,
    janus: Option<janus::JanusConfig>,
    audit_retention_days: Option<u64>,
}

async fn settings(store: &Store) -> Result<Settings> {
    let s = store.settings().await?;
    let get = |k: &str| s.get(k).map(String::as_str);
    Ok(Settings {
        max_participants: get("max_participants").map(str::parse).transpose().context("setting max_participants")?.unwrap_or(100),
        lobby_default: get("lobby_default").is_none_or(|v| v == "on"),
        turn: TurnConfig {
            urls: get("turn_urls").map(|u| u.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default(),
            secret: get("turn_secret").map(Secret::new),
            ttl_s: get("turn_ttl_s").map(str::parse).transpose().context("setting turn_ttl_s")?.unwrap_or(300),
        },
        janus: match (get("janus_api_url"), get("janus_client_url")) {
            (Some(api_url), Some(client_url)) => Some(janus::JanusConfig {
                api_url: api_url.to_owned(),
                client_url: client_url.to_owned(),
                admin_key: get("janus_admin_key").map(Secret::new),
                threshold: get("janus_threshold").map(str::parse).transpose().context("setting janus_threshold")?.unwrap_or(10),
            }),
            _ => None,
        },
        audit_retention_days: get("audit_retention_days").map(str::parse).transpose().context("setting audit_retention_days")?,
    })
}

async fn run(args: Serve) -> Result<()> {
    let tls = match &args.tls {
        Some((cert, key)) => Some(net::tls_acceptor(cert, key)?),
        None => None,
    };
    anyhow::ensure!(
        tls.is_some() || args.listen.ip().is_loopback(),
        "plain ws:// is only allowed on a loopback address; give --tls-cert and --tls-key"
    );
    let store = Store::open(&args.db).await?;
    let settings = settings(&store).await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "blende+wss" } else { "blende+ws" };
    let policy = |free, lockout_failures| LimitPolicy {
        free_failures: free,
        backoff_base: Duration::from_millis(args.backoff_base_ms),
        backoff_max: Duration::from_millis(args.backoff_max_ms),
        lockout_failures,
        lockout: Duration::from_secs(args.lockout_s),
    };
    let config = RoomConfig {
        max_participants: settings.max_participants,
        lobby_default: settings.lobby_default,
        public_url: args.public_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}")),
        limiter: LimiterConfig {
            per_address: policy(args.address_free_failures, args.address_lockout_failures),
            per_meeting: policy(args.meeting_free_failures, args.meeting_lockout_failures),
            ..LimiterConfig::default()
        },
        auth_deadline: Duration::from_secs(args.auth_deadline_s),
        seats_per_address: args.seats_per_address,
        resume_grace: Duration::from_secs(args.resume_grace_s),
    };
    let mut room = Room::new(config, Box::new(OsEntropy));
    let meetings = store.meetings().await?;
    let count = meetings.len();
    for m in meetings {
        room.handle_meeting_loaded(m);
    }
    // Seats of meetings that ran when the server stopped: their members come back with
    // `resume` (a member connected at the stop gets the whole grace period from now).
    let now = std::time::Instant::now();
    let seats: Vec<_> = store
        .seats()
        .await?
        .into_iter()
        .map(|(seat, away_until)| {
            let left = away_until.map_or(args.resume_grace_s, |u| u64::try_from(u.saturating_sub(db::unix_now())).unwrap_or(0));
            (seat, now + Duration::from_secs(left))
        })
        .collect();
    let kept = seats.len();
    room.handle_seats_loaded(seats);
    let cost = Cost { m_kib: args.argon2_m_kib, t: args.argon2_t };
    let argon2 = secrets::Pool::new(args.argon2_workers)?;
    let dummy_hash = argon2.hash("blende-dummy".to_owned(), cost).await?;
    let janus = settings.janus.map(|j| (j, janus_sync::JanusSync::default()));
    let (hub, hub_tx) =
        hub::Hub::new(room, store.clone(), cost, settings.turn, janus.as_ref().map(|(_, sync)| sync.clone()), dummy_hash, argon2);
    if let Some((j, sync)) = janus {
        info!(threshold = j.threshold, "Janus-backed rooms enabled");
        tokio::spawn(janus_sync::Worker::new(j, settings.max_participants, sync, hub_tx.clone()).run());
    }
    info!(db = db::kind_of(&args.db), meetings = count, seats = kept, tls = tls.is_some(), %addr, "listening");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({ "event": "listening", "addr": addr.to_string(), "tls": tls.is_some() }))?;
        out.flush()?;
    }
    if let Some(days) = settings.audit_retention_days {
        tokio::spawn(prune_audit(store, days));
    }
    let hub_task = tokio::spawn(hub.run());
    tokio::select! {
        r = net::accept_loop(listener, tls, hub_tx, net::Caps {
            total: args.max_connections,
            per_address: args.max_connections_per_address,
            send: blende_room::rate::SendLimits::default(),
            idle: Duration::from_secs(args.idle_timeout_s),
        }, args.trusted_proxies.into()) => r?,
        r = tokio::signal::ctrl_c() => { r?; info!("interrupted; shutting down"); }
        _ = hub_task => anyhow::bail!("the hub stopped"),
    }
    Ok(())
}

async fn prune_audit(store: Store, days: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = db::unix_now().saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX));
        match store.prune_audit(cutoff).await {
            Ok(n) => info!(removed = n, "audit log pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
    }
}
