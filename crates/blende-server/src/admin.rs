//! `blende-server admin …`: the administrator's role. It works on the database directly;
//! a running server reads settings at start, so restart it after `set`.

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::db::Store;
use crate::secrets::{self, Cost};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The database [default: the configuration file's `db`, else `sqlite:blende-server.db`].
    #[arg(long, env = "BLENDE_DB")]
    db: Option<String>,
    /// The server's configuration file (`serve --config`), for its `db`.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Print machine-readable JSON lines.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Name a moderator; prints the moderator's secret token once.
    AddModerator {
        #[arg(long)]
        name: String,
    },
    RemoveModerator {
        id: String,
    },
    ListModerators,
    ListMeetings,
    /// Moderator actions, oldest first.
    Audit,
    /// Set a server-wide parameter.
    #[command(subcommand)]
    Set(SetCmd),
    /// Show the server-wide parameters (the TURN secret as `***`).
    Show,
}

#[derive(Debug, Subcommand)]
enum SetCmd {
    MaxParticipants {
        n: usize,
    },
    LobbyDefault {
        value: OnOff,
    },
    /// TURN server(s) for coturn's shared-secret REST scheme (`use-auth-secret`).
    Turn {
        /// e.g. `turn:turn.example.org:3478?transport=udp`; repeat for several.
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        /// File whose first line is coturn's `static-auth-secret` (`-`: standard input). Never
        /// on the command line, where `ps` and shell history would show it.
        #[arg(long, value_name = "FILE")]
        secret_file: std::path::PathBuf,
        /// Credential lifetime; the server hands out fresh ones at half of it.
        #[arg(long, default_value_t = 300)]
        ttl_s: u64,
    },
    AuditRetentionDays {
        days: u64,
    },
    /// Janus-backed rooms for meetings with at least `threshold` admitted members.
    Janus {
        /// The Janus HTTP API as the server reaches it, e.g. `http://127.0.0.1:8088/janus`.
        #[arg(long)]
        api_url: String,
        /// What clients connect to, e.g. `janus+wss://media.example.org/`.
        #[arg(long)]
        client_url: String,
        /// File whose first line is the VideoRoom plugin's `admin_key`, if set there (`-`:
        /// standard input).
        #[arg(long, value_name = "FILE")]
        admin_key_file: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 10)]
        threshold: usize,
    },
}

/// The first line of `path` (`-`: standard input), trimmed; empty is an error.
fn read_secret(path: &std::path::Path) -> Result<String> {
    use anyhow::Context as _;
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin().lock()).context("reading the secret from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        bail!("{}: the first line is empty", path.display());
    }
    Ok(line)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnOff {
    On,
    Off,
}

pub async fn run(args: AdminArgs) -> Result<()> {
    let store = Store::open(&crate::config::db_of(args.db, args.config.as_deref())?).await?;
    match args.cmd {
        AdminCmd::AddModerator { name } => {
            if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("the name must be 1-100 printable characters");
            }
            let t = secrets::new_moderator_token()?;
            let hash = secrets::hash(&t.secret, Cost::default())?;
            store.add_moderator(&t.moderator_id, &name, &hash).await?;
            if args.json {
                println!("{}", serde_json::json!({ "moderator_id": t.moderator_id, "token": t.token }));
            } else {
                println!("moderator {} added.", t.moderator_id);
                println!("token (shown only now; hand it over through a secure channel):");
                println!("{}", t.token);
            }
        }
        AdminCmd::RemoveModerator { id } => {
            if !store.remove_moderator(&id).await? {
                bail!("no moderator {id}");
            }
            println!("moderator {id} removed.");
        }
        AdminCmd::ListModerators => {
            for m in store.moderators().await? {
                if args.json {
                    println!("{}", serde_json::json!({ "moderator_id": m.id, "name": m.name, "created_at": m.created_at }));
                } else {
                    println!("{}\t{}\t{}", m.id, m.created_at, m.name);
                }
            }
        }
        AdminCmd::ListMeetings => {
            for m in store.meetings().await? {
                let j = serde_json::json!({
                    "id": m.info.id, "title": m.info.title, "starts_at_unix": m.info.starts_at_unix,
                    "duration_min": m.info.duration_min, "lobby": m.info.lobby, "created_by": m.created_by, "ended": m.ended,
                });
                println!("{j}");
            }
        }
        AdminCmd::Audit => {
            for (at, moderator, action, meeting) in store.audit_entries().await? {
                println!("{}", serde_json::json!({ "at": at, "moderator_id": moderator, "action": action, "meeting_id": meeting }));
            }
        }
        AdminCmd::Set(cmd) => {
            match cmd {
                SetCmd::MaxParticipants { n } => {
                    if n == 0 {
                        bail!("max participants must be at least 1");
                    }
                    store.set_setting("max_participants", &n.to_string()).await?;
                }
                SetCmd::LobbyDefault { value } => {
                    store.set_setting("lobby_default", if matches!(value, OnOff::On) { "on" } else { "off" }).await?;
                }
                SetCmd::Turn { urls, secret_file, ttl_s } => {
                    let secret = read_secret(&secret_file)?;
                    if let Some(bad) = urls.iter().find(|u| !(u.starts_with("turn:") || u.starts_with("turns:"))) {
                        bail!("not a TURN URL: {bad}");
                    }
                    if secret.len() < 16 {
                        bail!("the shared secret should be at least 16 characters");
                    }
                    if !(10..=86_400).contains(&ttl_s) {
                        bail!("ttl must be 10-86400 seconds");
                    }
                    store.set_setting("turn_urls", &urls.join(",")).await?;
                    store.set_setting("turn_secret", &secret).await?;
                    store.set_setting("turn_ttl_s", &ttl_s.to_string()).await?;
                }
                SetCmd::AuditRetentionDays { days } => store.set_setting("audit_retention_days", &days.to_string()).await?,
                SetCmd::Janus { api_url, client_url, admin_key_file, threshold } => {
                    let admin_key = admin_key_file.as_deref().map(read_secret).transpose()?;
                    if !api_url.starts_with("http://") {
                        bail!("the Janus API URL must be http:// (loopback or a private network)");
                    }
                    if threshold < 2 {
                        bail!("the threshold must be at least 2");
                    }
                    store.set_setting("janus_api_url", &api_url).await?;
                    store.set_setting("janus_client_url", &client_url).await?;
                    store.set_setting("janus_threshold", &threshold.to_string()).await?;
                    if let Some(key) = admin_key {
                        store.set_setting("janus_admin_key", &key).await?;
                    }
                }
            }
            println!("saved; restart the server to apply.");
        }
        AdminCmd::Show => {
            for (k, v) in store.settings().await? {
                let v = if k.contains("secret") || k.contains("key") { "***".to_owned() } else { v };
                println!("{k} = {v}");
            }
        }
    }
    Ok(())
}
