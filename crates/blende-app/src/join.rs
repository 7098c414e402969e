//! `blende join --headless`: one participant without a window. JSON-lines events on stdout,
//! commands on stdin; the formats are documented in `crates/blende-app/JOIN.md`.
//!
//! The call itself is [`crate::engine::run`]; this front reads stdin lines into
//! [`CallCommand`]s (through [`Control`], so a switch-off closes its gate as the line
//! arrives) and prints the engine's events as JSON.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use blende_call::RoomAction;
use blende_devices::{DriverConfig, DriverHandle, SYNTHETIC_CAMERA_ID, SYNTHETIC_MICROPHONE_ID, clock};
use blende_media::DeviceKind;
use blende_policy::ServerUrl;
use blende_signal::JoinOptions;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::config::load_policy;
use crate::engine::{CallCommand, CallEvent, CallSpec, Control, Hooks, ShareSource, Switches, json as event_json};
use crate::preview::parse_window_id;

/// A device as `--camera` / `--mic` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// What the system would give: the first camera, the default microphone.
    Default,
    /// The test pattern (camera) or the 440 Hz tone (microphone).
    Synthetic,
    None,
    /// An id as `blende devices` lists it.
    Id(String),
}

fn parse_camera(s: &str) -> Result<DeviceChoice, String> {
    parse_device(s, "test-pattern")
}

fn parse_mic(s: &str) -> Result<DeviceChoice, String> {
    parse_device(s, "tone")
}

fn parse_device(s: &str, synthetic: &str) -> Result<DeviceChoice, String> {
    Ok(match s {
        "" => return Err("empty device".into()),
        "default" => DeviceChoice::Default,
        "none" => DeviceChoice::None,
        s if s == synthetic => DeviceChoice::Synthetic,
        id => DeviceChoice::Id(id.to_owned()),
    })
}

/// The headless command lines (JOIN.md).
///
/// # Errors
/// A line that is no command, with what was wrong.
pub fn parse_command(line: &str) -> Result<CallCommand, String> {
    if let Some(command) = parse_direct(line.trim())? {
        return Ok(command);
    }
    Ok(match line.trim() {
        "camera off" => CallCommand::Switch { kind: DeviceKind::Camera, on: false },
        "camera on" => CallCommand::Switch { kind: DeviceKind::Camera, on: true },
        "mic off" => CallCommand::Switch { kind: DeviceKind::Microphone, on: false },
        "mic on" => CallCommand::Switch { kind: DeviceKind::Microphone, on: true },
        "all off" => CallCommand::AllOff,
        "stats" => CallCommand::Stats,
        "leave" => CallCommand::Leave,
        "share stop" => CallCommand::ShareStop,
        "lock" => CallCommand::Room(RoomAction::Lock),
        "unlock" => CallCommand::Room(RoomAction::Unlock),
        "end" => CallCommand::Room(RoomAction::End),
        "chat off" => CallCommand::Room(RoomAction::ChatOff),
        "chat on" => CallCommand::Room(RoomAction::ChatOn),
        "hand up" => CallCommand::Room(RoomAction::RaiseHand(true)),
        "hand down" => CallCommand::Room(RoomAction::RaiseHand(false)),
        "share screen" => CallCommand::ShareStart(ShareSource::Screen),
        other => {
            let (verb, arg) = other.rsplit_once(' ').unwrap_or((other, ""));
            let arg = arg.trim().to_owned();
            match verb.trim() {
                "share window" => CallCommand::ShareStart(ShareSource::Window(parse_window_id(&arg)?)),
                "admit" => CallCommand::Room(RoomAction::Admit(arg)),
                "deny" => CallCommand::Room(RoomAction::Deny(arg)),
                "remove" => CallCommand::Room(RoomAction::Remove(arg)),
                "presenter on" => CallCommand::Room(RoomAction::GrantPresenter(arg)),
                "presenter off" => CallCommand::Room(RoomAction::RevokePresenter(arg)),
                "lower hand" => CallCommand::Room(RoomAction::LowerHand(arg)),
                _ => return Err(format!("unknown command `{other}`")),
            }
        }
    })
}

/// Chat, documents and the identity mark: their last argument is free text or a path and may
/// contain spaces.
fn parse_direct(line: &str) -> Result<Option<CallCommand>, String> {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim_start();
    let id_and_rest = |what: &str| -> Result<(String, String), String> {
        let (id, tail) = rest.split_once(' ').ok_or_else(|| format!("`{verb}` needs {what}"))?;
        let tail = tail.trim_start();
        if id.is_empty() || tail.is_empty() {
            return Err(format!("`{verb}` needs {what}"));
        }
        Ok((id.to_owned(), tail.to_owned()))
    };
    let transfer = || rest.trim().parse::<u64>().map(blende_call::TransferId).map_err(|_| format!("`{verb}` needs a document number"));
    Ok(Some(match verb {
        "say" if !rest.is_empty() => CallCommand::Chat { to: None, text: rest.to_owned() },
        "say-to" => {
            let (to, text) = id_and_rest("a participant id and a text")?;
            CallCommand::Chat { to: Some(to), text }
        }
        "send" if !rest.is_empty() => CallCommand::SendFile { path: rest.to_owned(), to: None },
        "send-to" => {
            let (to, path) = id_and_rest("a participant id and a file")?;
            CallCommand::SendFile { path, to: Some(to) }
        }
        "accept" => {
            let (id, folder) = id_and_rest("a document number and a folder")?;
            let transfer = id.parse::<u64>().map(blende_call::TransferId).map_err(|_| "`accept` needs a document number".to_owned())?;
            CallCommand::AcceptDocument { transfer, folder }
        }
        "decline" => CallCommand::DeclineDocument { transfer: transfer()? },
        "cancel" => CallCommand::CancelDocument { transfer: transfer()? },
        "identity" => match rest.split_once(' ') {
            Some(("checked", id)) if !id.trim().is_empty() => {
                CallCommand::IdentityChecked { participant: id.trim().to_owned(), checked: true }
            }
            Some(("unchecked", id)) if !id.trim().is_empty() => {
                CallCommand::IdentityChecked { participant: id.trim().to_owned(), checked: false }
            }
            _ => return Err("`identity checked ID` or `identity unchecked ID`".into()),
        },
        _ => return Ok(None),
    }))
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
    /// `default` (the first camera), `test-pattern`, `none`, or an id from `blende devices`.
    /// Default: `test-pattern` with `--headless`, `default` in the window.
    #[arg(long, value_parser = parse_camera)]
    pub camera: Option<DeviceChoice>,
    /// `default` (the system's default input), `tone`, `none`, or an id from `blende devices`.
    /// Default: `tone` with `--headless`, `default` in the window.
    #[arg(long, value_parser = parse_mic)]
    pub mic: Option<DeviceChoice>,
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
    /// Refused: a call always runs under the system policy (a file of the user's own must not
    /// lift the administrator's blocks or server list). Check a file with `blende policy show
    /// --policy FILE` instead.
    #[arg(long, value_name = "FILE", hide = true)]
    pub policy: Option<PathBuf>,
    /// Keep the encoder at `--bitrate-bps` instead of letting send-side congestion control
    /// (GCC over TWCC feedback, with its pacer) drive it.
    #[arg(long)]
    pub no_congestion_control: bool,
    /// Share this X window (decimal or 0x-hex id, as `blende windows` shows it) as its own
    /// feed "<name> (screen)", through the share guard; `share stop` on stdin ends it.
    #[arg(long, value_name = "ID", value_parser = parse_window_id)]
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
        let (spec, policy, devices) = spec_from_args(&args)?;
        let devices = crate::ui::Devices {
            camera_id: devices.camera_id,
            microphone_id: devices.microphone_id,
            speaker_id: None,
            synthetic_size: Some((args.width, args.height, args.fps)),
        };
        let options = crate::ui::AppOptions {
            policy,
            start_in_demo: false,
            autojoin: Some(crate::ui::AutoJoin { spec, devices, print_events: true }),
            started,
            admin_policy: None,
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
    let result = runtime.block_on(run_async(args));
    // The stdin reader may sit in a blocking read for ever: do not wait for it.
    runtime.shutdown_background();
    result
}

/// Reads the first line of a password file (never the command line, where `ps` shows it).
pub fn read_password_file(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.lines().next().unwrap_or_default().to_owned())
}

/// Device ids for the driver (empty: not used).
struct DeviceIds {
    camera_id: String,
    microphone_id: String,
}

/// The devices `args` ask for: without a choice, the test devices with `--headless` and the
/// system's in the window.
fn device_ids(args: &JoinArgs) -> DeviceIds {
    let fallback = |synthetic| if args.headless { synthetic } else { DeviceChoice::Default };
    let camera = args.camera.clone().unwrap_or_else(|| fallback(DeviceChoice::Synthetic));
    let mic = args.mic.clone().unwrap_or_else(|| fallback(DeviceChoice::Synthetic));
    let camera_id = match camera {
        // The first real camera; none on a machine without one (the call goes on without).
        DeviceChoice::Default => blende_devices::enumerate()
            .into_iter()
            .find(|d| d.kind == blende_devices::MediaKind::Camera && !d.synthetic)
            .map(|d| d.id)
            .unwrap_or_default(),
        DeviceChoice::Synthetic => SYNTHETIC_CAMERA_ID.to_owned(),
        DeviceChoice::None => String::new(),
        DeviceChoice::Id(id) => id,
    };
    let microphone_id = match mic {
        DeviceChoice::Default => "default".to_owned(),
        DeviceChoice::Synthetic => SYNTHETIC_MICROPHONE_ID.to_owned(),
        DeviceChoice::None => String::new(),
        DeviceChoice::Id(id) => id,
    };
    DeviceIds { camera_id, microphone_id }
}

/// The call `args` describe, checked against the policy (which is returned too).
fn spec_from_args(args: &JoinArgs) -> anyhow::Result<(CallSpec, blende_policy::Policy, DeviceIds)> {
    if let Some(file) = &args.policy {
        anyhow::bail!(
            "--policy {}: a call always runs under the administrator's policy; check a file with `blende policy show --policy FILE`",
            file.display()
        );
    }
    let url = ServerUrl::parse(&args.server).map_err(|e| anyhow!("{e}"))?;
    let mut policy = load_policy(None);
    policy.servers().check(&url).map_err(|e| anyhow!(e))?;
    if args.relay_only {
        // Through the policy, so the app window's call honours it too.
        policy.set_relay_only();
    }
    let password = args.password_file.as_deref().map(read_password_file).transpose()?;
    let moderator_token = args.moderator_token_file.as_deref().map(read_password_file).transpose()?;
    let devices = device_ids(args);
    let spec = CallSpec {
        url,
        join: JoinOptions { room: args.room.clone(), password, display_name: args.name.clone(), moderator_token, resume: None },
        camera: !devices.camera_id.is_empty(),
        mic: !devices.microphone_id.is_empty(),
        ice_servers: policy.servers().ice_servers.clone(),
        ice_ip: args.ice_ip,
        width: args.width,
        height: args.height,
        bitrate_bps: args.bitrate_bps,
        congestion_control: !args.no_congestion_control,
        stats_interval_ms: args.stats_interval_ms,
        policy: policy.clone(),
        share: args.share_window.map(ShareSource::Window),
    };
    Ok((spec, policy, devices))
}

/// One JSON line on stdout, outside the call's event stream.
fn print_line(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout must not kill the call; the harness may stop reading.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn run_async(args: JoinArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let (spec, _policy, devices) = spec_from_args(&args)?;
    let media_epoch_unix_us = crate::engine::unix_us().saturating_sub(clock::now_us());
    print_line(
        &json!({"event": "ready", "pid": std::process::id(), "media_epoch_unix_us": media_epoch_unix_us, "t_ms": elapsed_ms(start)}),
    );

    // Devices: the kill-switch driver owns them; everything starts off.
    let (driver, outputs) = DriverHandle::start(DriverConfig {
        camera_id: devices.camera_id,
        microphone_id: devices.microphone_id,
        synthetic_camera_size: (args.width, args.height),
        synthetic_camera_fps: args.fps,
        ..DriverConfig::default()
    })?;
    let (control, commands) = Control::new(Switches::new(Arc::new(driver)));
    // Commands on stdin, through the control: a switch-off closes its gate here, as the line
    // arrives. A line that is no command is reported and skipped.
    let stdin_control = control.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            let sent = parse_command(&line).and_then(|cmd| stdin_control.send(cmd));
            if let Err(message) = sent {
                event_json::print(&CallEvent::Error { message, fatal: false }, start);
            }
        }
        // End of stdin counts as `leave` (the engine's queue closes with this task).
        let _ = stdin_control.send(CallCommand::InputClosed);
    });
    let switches = control.switches.clone();
    drop(control);
    let hooks = Hooks { event: Some(Box::new(move |ev: &CallEvent| event_json::print(ev, start))), ..Hooks::default() };
    crate::engine::run(spec, switches, outputs, commands, hooks).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use blende_call::TransferId;

    #[test]
    fn direct_commands_keep_spaces_in_their_last_argument() {
        let ok = |line: &str| parse_command(line).expect(line);
        assert_eq!(ok("say Guten Morgen  zusammen"), CallCommand::Chat { to: None, text: "Guten Morgen  zusammen".into() });
        assert_eq!(ok("say-to 7 Az. 4711"), CallCommand::Chat { to: Some("7".into()), text: "Az. 4711".into() });
        assert_eq!(ok("send /tmp/Akte 4711.pdf"), CallCommand::SendFile { path: "/tmp/Akte 4711.pdf".into(), to: None });
        assert_eq!(ok("send-to 7 /tmp/a b.pdf"), CallCommand::SendFile { path: "/tmp/a b.pdf".into(), to: Some("7".into()) });
        assert_eq!(
            ok("accept 3 /home/x/Eingang neu"),
            CallCommand::AcceptDocument { transfer: TransferId(3), folder: "/home/x/Eingang neu".into() }
        );
        assert_eq!(ok("decline 3"), CallCommand::DeclineDocument { transfer: TransferId(3) });
        assert_eq!(ok("cancel 4"), CallCommand::CancelDocument { transfer: TransferId(4) });
        assert_eq!(ok("identity checked 7"), CallCommand::IdentityChecked { participant: "7".into(), checked: true });
        assert_eq!(ok("identity unchecked 7"), CallCommand::IdentityChecked { participant: "7".into(), checked: false });
        for bad in ["say", "say-to 7", "send", "accept 3", "accept x /tmp", "decline", "decline x", "identity 7", "identity checked"] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
        assert_eq!(ok("camera off"), CallCommand::Switch { kind: DeviceKind::Camera, on: false });
    }
}
