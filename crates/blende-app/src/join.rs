//! `blende join --headless`: one participant without a window. JSON-lines events on stdout,
//! commands on stdin; the formats are documented in `crates/blende-app/JOIN.md`.
//!
//! The call itself is [`crate::call::run`]; this front reads stdin lines into
//! [`CallCommand`]s and prints the engine's events.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use blende_devices::{DriverConfig, DriverHandle, clock};
use blende_policy::ServerUrl;
use blende_signal::JoinOptions;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::call::{CallCommand, CallSpec, Hooks, unix_us};
use crate::config::load_policy;
/// What `--camera` may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CameraChoice {
    TestPattern,
    None,
}

/// What `--mic` may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MicChoice {
    Tone,
    None,
}

/// Everything `blende join` was given.
#[derive(Clone, Debug, clap::Args)]
pub struct JoinArgs {
    /// Run without a window: JSON-lines events on stdout, commands on stdin. Without it the
    /// app window opens in the call (and prints the same events on stdout).
    #[arg(long)]
    pub headless: bool,
    /// `janus+wss://host[:port]/path`, `whip+https://…` (`janus+ws://`, `whip+http://` on loopback only).
    #[arg(long)]
    pub server: String,
    /// Room id (Janus).
    #[arg(long)]
    pub room: Option<String>,
    /// File whose first line is the room PIN (Janus) or bearer token (WHIP).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Blende room server: enter as a moderator with the token in this file (first line), as
    /// `blende-server admin add-moderator` printed it.
    #[arg(long, value_name = "FILE")]
    pub moderator_token_file: Option<PathBuf>,
    /// Display name shown to the others.
    #[arg(long, default_value = "Blende")]
    pub name: String,
    #[arg(long, value_enum, default_value = "test-pattern")]
    pub camera: CameraChoice,
    #[arg(long, value_enum, default_value = "tone")]
    pub mic: MicChoice,
    /// Bind ICE to this address only (127.0.0.2 inside the test namespace).
    #[arg(long, value_name = "IP")]
    pub ice_ip: Option<IpAddr>,
    #[arg(long, default_value_t = 320)]
    pub width: u32,
    #[arg(long, default_value_t = 240)]
    pub height: u32,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// How often to print `stats` events.
    #[arg(long, default_value_t = 1000)]
    pub stats_interval_ms: u64,
    /// Use this file as the administrator's policy instead of the system one.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keep the encoder at `--bitrate-bps` instead of letting send-side congestion control
    /// (GCC over TWCC feedback, with its pacer) drive it.
    #[arg(long)]
    pub no_congestion_control: bool,
    /// Share this X window (decimal or 0x-hex id, as `blende windows` shows it) as its own
    /// feed "<name> (screen)", through the share guard; `share stop` on stdin ends it.
    #[arg(long, value_name = "ID", value_parser = crate::cli::parse_window_id)]
    pub share_window: Option<u32>,
    /// Diagnostic, as behind a strict firewall: use only TURN-relayed ICE candidates (ICE
    /// transport policy "relay"), never a host address. Without a TURN server (from the policy
    /// or the room server) no connection comes up.
    #[arg(long)]
    pub relay_only: bool,
    /// Start (and, without congestion control, fixed) video bitrate.
    #[arg(long, default_value_t = 800_000)]
    pub bitrate_bps: u32,
}

/// Runs the participant until `leave`, end of stdin, or the server ends the session; without
/// `--headless`, opens the app window in the call.
///
/// # Errors
/// Bad arguments, a server the policy refuses, a failed connection.
pub fn run(args: JoinArgs) -> anyhow::Result<ExitCode> {
    if !args.headless {
        let started = Instant::now();
        let (spec, policy) = spec_from_args(&args)?;
        let devices = crate::ui::Devices {
            camera_id: if spec.camera { blende_devices::SYNTHETIC_CAMERA_ID.to_owned() } else { String::new() },
            microphone_id: if spec.mic { blende_devices::SYNTHETIC_MICROPHONE_ID.to_owned() } else { String::new() },
            speaker_id: None,
            synthetic_size: Some((args.width, args.height, args.fps)),
        };
        let options = crate::ui::AppOptions {
            policy,
            start_in_demo: false,
            autojoin: Some(crate::ui::AutoJoin { spec, devices, print_events: true }),
            started,
            admin_policy: args.policy.clone(),
            ..crate::ui::AppOptions::from_system()
        };
        return crate::ui::run_with(options);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("blende-rt")
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run_async(args))
}

/// One JSON line on stdout. Every line carries `t_ms` since start.
fn print_event(v: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not kill the call; the harness may stop reading.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reads the first line of a password file (never the command line, where `ps` shows it).
pub fn read_password_file(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.lines().next().unwrap_or_default().to_owned())
}

/// The call `args` describe, checked against the policy (which is returned too).
fn spec_from_args(args: &JoinArgs) -> anyhow::Result<(CallSpec, blende_policy::Policy)> {
    let url = ServerUrl::parse(&args.server).map_err(|e| anyhow!("{e}"))?;
    let mut policy = load_policy(args.policy.as_deref());
    policy.servers().check(&url).map_err(|e| anyhow!(e))?;
    if args.relay_only {
        // Through the policy, so the app window's call honours it too.
        policy.set_relay_only();
    }
    let password = args.password_file.as_deref().map(read_password_file).transpose()?;
    let moderator_token = args.moderator_token_file.as_deref().map(read_password_file).transpose()?;
    let spec = CallSpec {
        url,
        join: JoinOptions { room: args.room.clone(), password, display_name: args.name.clone(), moderator_token },
        camera: args.camera == CameraChoice::TestPattern,
        mic: args.mic == MicChoice::Tone,
        ice_servers: policy.servers().ice_servers.clone(),
        ice_ip: args.ice_ip,
        width: args.width,
        height: args.height,
        bitrate_bps: args.bitrate_bps,
        congestion_control: !args.no_congestion_control,
        stats_interval_ms: args.stats_interval_ms,
        policy: policy.clone(),
        share: args.share_window.map(crate::preview::Source::Window),
    };
    Ok((spec, policy))
}

async fn run_async(args: JoinArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let (spec, _policy) = spec_from_args(&args)?;
    let media_epoch_unix_us = unix_us().saturating_sub(clock::now_us());
    print_event(
        &json!({"event": "ready", "pid": std::process::id(), "media_epoch_unix_us": media_epoch_unix_us, "t_ms": elapsed_ms(start)}),
    );

    // Devices: the kill-switch driver owns them; everything starts off.
    let (driver, outputs) = DriverHandle::start(DriverConfig {
        synthetic_camera_size: (args.width, args.height),
        synthetic_camera_fps: args.fps,
        ..DriverConfig::default()
    })?;
    // Commands on stdin; a line that is no command is reported and skipped.
    let (tx, commands) = mpsc::channel::<CallCommand>(16);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match line.parse::<CallCommand>() {
                Ok(cmd) => {
                    if tx.send(cmd).await.is_err() {
                        break;
                    }
                }
                Err(message) => print_event(&json!({"event": "error", "message": message, "fatal": false, "t_ms": elapsed_ms(start)})),
            }
        }
    });

    let hooks = Hooks { event: Some(Box::new(print_event)), ..Hooks::default() };
    crate::call::run(spec, start, Arc::new(driver), outputs, commands, hooks).await
}
