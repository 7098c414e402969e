//! The JOIN.md event format: JSON exists only here, at the process edge (`blende join` prints
//! it, in the window too). Everything inside speaks [`CallEvent`].

use blende_call::{CallEvent, ConnState, DocumentEvent, Link, Participant, ShareState, SwitchKind};
use blende_guard::{GuardEvent, PauseReason};
use blende_media::{DeviceKind, DeviceState};
use serde_json::{Value, json};

fn participants(list: &[Participant]) -> Value {
    list.iter().map(|p| json!({"id": p.id, "display": p.display})).collect()
}

fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Camera => "camera",
        DeviceKind::Microphone => "mic",
        DeviceKind::ScreenShare => "screen",
    }
}

fn state_name(state: &DeviceState) -> String {
    match state {
        DeviceState::Off => "off".into(),
        DeviceState::Opening => "opening".into(),
        DeviceState::On => "on".into(),
        DeviceState::Closing => "closing".into(),
        DeviceState::Failed(why) => format!("failed: {why}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn role_name(role: blende_call::Role) -> &'static str {
    match role {
        blende_call::Role::Moderator => "moderator",
        blende_call::Role::Presenter => "presenter",
        blende_call::Role::Participant => "participant",
    }
}

fn guard_json(ev: &GuardEvent) -> Value {
    match ev {
        GuardEvent::Paused { window_id, at_us, reason } => {
            let category = match reason {
                PauseReason::Blocked { category, .. } => Some(category.as_str()),
                _ => None,
            };
            json!({"state": "paused", "reason": reason.as_str(), "category": category, "window": window_id, "at_us": at_us})
        }
        GuardEvent::Resumed { window_id, at_us } => json!({"state": "sending", "window": window_id, "at_us": at_us}),
        GuardEvent::Masking { window_id, at_us, regions } => {
            json!({"state": "masking", "regions": regions, "window": window_id, "at_us": at_us})
        }
    }
}

fn share_json(state: &ShareState) -> Value {
    match state {
        ShareState::Requested => json!({"state": "requested"}),
        ShareState::Starting { display } => json!({"state": "starting", "display": display}),
        ShareState::Published { feed } => json!({"state": "published", "feed": feed}),
        ShareState::Guard(ev) => guard_json(ev),
        ShareState::Refused { by, reason } => json!({"state": "refused", "by": by.as_str(), "reason": reason}),
        ShareState::Stopped { reason: Some(reason) } => json!({"state": "stopped", "reason": reason}),
        ShareState::Stopped { reason: None } => json!({"state": "stopped"}),
        ShareState::Ended => json!({"state": "ended", "reason": "closed"}),
        other => json!({"state": format!("{other:?}").to_lowercase()}),
    }
}

fn document_json(ev: &DocumentEvent) -> Value {
    match ev {
        DocumentEvent::Offered { transfer, from, name, safe_name, size, to_all } => {
            json!({"state": "offered", "id": transfer.0, "from": from, "name": name, "safe_name": safe_name, "size": size, "to_all": to_all})
        }
        DocumentEvent::Refused { from, size, reason } => json!({"state": "refused", "from": from, "size": size, "reason": reason}),
        DocumentEvent::Sending { transfer, to, name, size } => {
            json!({"state": "sending", "id": transfer.0, "to": to, "name": name, "size": size})
        }
        DocumentEvent::Accepted { transfer } => json!({"state": "accepted", "id": transfer.0}),
        DocumentEvent::Progress { transfer, bytes, size } => json!({"state": "progress", "id": transfer.0, "bytes": bytes, "size": size}),
        DocumentEvent::Saved { transfer, path } => json!({"state": "saved", "id": transfer.0, "path": path}),
        DocumentEvent::Delivered { transfer } => json!({"state": "delivered", "id": transfer.0}),
        DocumentEvent::Declined { transfer, reason } => json!({"state": "declined", "id": transfer.0, "reason": reason}),
        DocumentEvent::Cancelled { transfer, by_us } => json!({"state": "cancelled", "id": transfer.0, "by_us": by_us}),
        DocumentEvent::Failed { transfer, reason } => json!({"state": "failed", "id": transfer.0, "reason": reason}),
        other => json!({"state": format!("{other:?}").to_lowercase()}),
    }
}

fn connection_json(link: &Link, state: ConnState, candidates: Option<&(String, Option<String>)>) -> Value {
    let mut v = match link {
        Link::Publisher => json!({"feed": null}),
        Link::Feed(feed) => json!({"feed": feed}),
        Link::Mesh(to) => json!({"to": to}),
        Link::MeshShare(to) => json!({"to": to, "share": true}),
    };
    v["state"] = json!(state.as_str());
    if let Some((local, remote)) = candidates {
        v["local_candidate"] = json!(local);
        v["remote_candidate"] = json!(remote);
    }
    v
}

/// One event as its JSON line (without `t_ms`, which the caller adds).
#[must_use]
pub fn event(ev: &CallEvent) -> Value {
    let (name, mut body) = match ev {
        CallEvent::Joined { participant_id, participants: list } => {
            ("joined", json!({"participant_id": participant_id, "participants": participants(list)}))
        }
        CallEvent::Published => ("published", json!({})),
        CallEvent::Reconnecting { attempt, reason } => ("reconnecting", json!({"attempt": attempt, "reason": reason})),
        CallEvent::Reconnected => ("reconnected", json!({})),
        CallEvent::Connection { link, state, candidates } => ("connection", connection_json(link, *state, candidates.as_ref())),
        CallEvent::ParticipantJoined(p) => ("participant_joined", json!({"id": p.id, "display": p.display})),
        CallEvent::ParticipantLeft { id } => ("participant_left", json!({"id": id})),
        CallEvent::Subscribed { feed } => ("subscribed", json!({"feed": feed})),
        CallEvent::Track { feed, kind } => ("track", json!({"feed": feed, "kind": kind.as_str()})),
        CallEvent::TrackEnded { feed } => ("track_ended", json!({"feed": feed})),
        CallEvent::FirstFrame { feed, kind, since_subscribe_ms, size } => {
            let mut v = json!({"feed": feed, "kind": kind.as_str(), "since_subscribe_ms": since_subscribe_ms});
            if let Some((w, h)) = size {
                v["width"] = json!(w);
                v["height"] = json!(h);
            }
            ("first_frame", v)
        }
        CallEvent::Device { kind, from, to, at_us } => {
            ("device", json!({"kind": kind_name(*kind), "from": state_name(from), "to": state_name(to), "at_us": at_us}))
        }
        CallEvent::Switch { kind, on, at_us } => {
            let kind = match kind {
                SwitchKind::Device(k) => kind_name(*k),
                SwitchKind::All => "all",
            };
            ("switch", json!({"kind": kind, "on": on, "at_us": at_us}))
        }
        CallEvent::Share(state) => ("share", share_json(state)),
        CallEvent::Lobby { state } => ("lobby", json!({"state": state})),
        CallEvent::Waiting { participants: list } => ("waiting", json!({"participants": participants(list)})),
        CallEvent::Role { participant, role } => ("role", json!({"participant": participant, "role": role_name(*role)})),
        CallEvent::Hand { participant, raised } => ("hand", json!({"participant": participant, "raised": raised})),
        CallEvent::RemoteDevices { participant, camera, microphone, sharing } => {
            ("devices", json!({"participant": participant, "camera": camera, "mic": microphone, "sharing": sharing}))
        }
        CallEvent::IceServers { turn, relay_only } => ("ice_servers", json!({"turn": turn, "relay_only": relay_only})),
        CallEvent::Janus { room, feed } => ("janus", json!({"room": room, "feed": feed.to_string()})),
        CallEvent::SendStats(s) => (
            "stats",
            json!({"feed": null, "video_sent": s.video_sent, "last_sent_counter": s.last_sent_counter, "audio_sent": s.audio_sent,
                "bitrate_bps": s.bitrate_bps, "keyframe_requests": s.keyframe_requests,
                "video_width": s.video_size.map(|v| v.0), "video_height": s.video_size.map(|v| v.1), "video_fps_div": s.video_fps_div,
                "rtt_ms": s.rtt_ms, "remote_loss_pct": s.remote_loss_pct, "bytes_sent": s.bytes_sent}),
        ),
        CallEvent::FeedStats(s) => (
            "stats",
            json!({
                "feed": s.feed, "display": s.display, "frames_decoded": s.frames_decoded, "frames_since_last": s.frames_since_last, "picture_gap_max_ms": s.picture_gap_max_ms,
                "stamped_frames": s.stamped_frames, "width": s.width, "height": s.height, "last_counter": s.last_counter,
                "last_capture_us": s.last_capture_us, "max_capture_us": s.max_capture_us, "last_recv_unix_us": s.last_recv_unix_us, "last_picture_unix_us": s.last_picture_unix_us,
                "centre_luma": s.centre_luma, "first_video_ms": s.first_video_ms, "audio_frames": s.audio_frames,
                "audio_frames_since_last": s.audio_frames_since_last, "audio_recovered": s.audio_recovered, "audio_concealed": s.audio_concealed, "audio_stretched": s.audio_stretched, "audio_playout_delay_ms": s.audio_playout_delay_ms,
                "rtt_ms": s.rtt_ms, "packets_received": s.packets_received, "packets_lost": s.packets_lost, "audio_hz": s.audio_hz, "audio_dbfs": s.audio_dbfs,
            }),
        ),
        CallEvent::Chat { from, private_with, text } => ("chat", json!({"from": from, "private_with": private_with, "text": text})),
        CallEvent::ChatEnabled { enabled } => ("chat_state", json!({"enabled": enabled})),
        CallEvent::DirectLink { participant, open } => ("direct", json!({"participant": participant, "open": open})),
        CallEvent::Identity { participant, code, checked, changed } => {
            ("identity", json!({"participant": participant, "code": code, "checked": checked, "changed": changed}))
        }
        CallEvent::Document(d) => ("document", document_json(d)),
        CallEvent::Error { message, fatal } => ("error", json!({"message": message, "fatal": fatal})),
        CallEvent::Left { reason } => ("left", json!({"reason": reason})),
        other => ("unknown", json!({"debug": format!("{other:?}")})),
    };
    body["event"] = json!(name);
    body
}

/// The line `blende join` prints, with `t_ms` since `start`.
#[must_use]
pub fn line(ev: &CallEvent, start: std::time::Instant) -> String {
    let mut v = event(ev);
    v["t_ms"] = json!(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    v.to_string()
}

/// Prints one event line on stdout; a closed stdout must not end the call.
pub fn print(ev: &CallEvent, start: std::time::Instant) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line(ev, start));
    let _ = out.flush();
}

/// The window's line when a tile's first picture was drawn (`first_frame_drawn`, JOIN.md).
#[must_use]
pub fn first_frame_drawn_line(tile: &str, since_start_ms: u64) -> String {
    json!({"event": "first_frame_drawn", "tile": tile, "since_start_ms": since_start_ms, "t_ms": since_start_ms}).to_string()
}

/// The window's last line when the engine thread ends (`ended`, JOIN.md).
#[must_use]
pub fn ended_line(ok: bool, message: Option<&str>, t_ms: u64) -> String {
    let mut v = json!({"event": "ended", "ok": ok, "t_ms": t_ms});
    if let Some(m) = message {
        v["message"] = json!(m);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_join_md_names_and_fields() {
        let v = event(&CallEvent::Connection {
            link: Link::Mesh("3".into()),
            state: ConnState::Connected,
            candidates: Some(("host".into(), None)),
        });
        assert_eq!(v, json!({"event": "connection", "to": "3", "state": "connected", "local_candidate": "host", "remote_candidate": null}));
        let v = event(&CallEvent::Switch { kind: SwitchKind::All, on: false, at_us: 5 });
        assert_eq!(v, json!({"event": "switch", "kind": "all", "on": false, "at_us": 5}));
        let v = event(&CallEvent::Share(ShareState::Refused { by: blende_call::Refusal::Role, reason: "room server: no".into() }));
        assert_eq!((v["state"].as_str(), v["by"].as_str()), (Some("refused"), Some("role")));
        assert_eq!(event(&CallEvent::Lobby { state: blende_call::LobbyState::Waiting }), json!({"event": "lobby", "state": "waiting"}));
        let v = event(&CallEvent::Share(ShareState::Guard(GuardEvent::Paused {
            window_id: 9,
            at_us: 1,
            reason: PauseReason::Blocked { category: blende_policy::Category::Webmail, rule: "gmail".into() },
        })));
        assert_eq!((v["state"].as_str(), v["reason"].as_str(), v["category"].as_str()), (Some("paused"), Some("blocked"), Some("webmail")));
    }
}
