//! The call engine: one participant in a room, shared by `blende join --headless` and the app.
//!
//! [`run`] is the one loop that owns the call: one publisher PeerConnection for our camera and
//! microphone (fed through the kill-switch driver's gates), one subscriber PeerConnection per
//! remote publisher, the signalling adapter. It takes [`CallCommand`]s on a bounded channel and
//! reports JSON events (the format `crates/blende-app/JOIN.md` documents) through [`Hooks`];
//! decoded pictures and sound go to the hooks as they arrive, for the UI's latest-frame slots
//! and the speaker. Media threads encode; the tokio runtime does signalling and the network.
//!
//! The kill switches do not go through here: the caller holds the [`DriverHandle`] and closes
//! a gate synchronously; this loop only reports what the driver did.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use blende_devices::{DriverEvent, DriverHandle, DriverOutputs, clock};
use blende_media::frame::{AudioFrame, VideoFrame};
use blende_media::synthetic::{measure_frequency_hz, read_stamp, rms_dbfs};
use blende_media::{DeviceKind, DeviceState};
use blende_policy::ServerUrl;
use blende_rtc::{ConnectionState, MediaKind, Peer, PeerConfig, PeerRole, RtcEvent, TurnServer};
use blende_signal::blende::RoomAction;
use blende_signal::{JoinOptions, Participant, SignalCommand, SignalEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::preview::Source;
use crate::share_send::{ShareSender, StartError};

/// What to join and what to send.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub url: ServerUrl,
    pub join: JoinOptions,
    /// Publish a camera track (the driver's camera, switched on at start).
    pub camera: bool,
    /// Publish a microphone track.
    pub mic: bool,
    pub ice_servers: Vec<String>,
    pub ice_ip: Option<IpAddr>,
    pub width: u32,
    pub height: u32,
    pub bitrate_bps: u32,
    pub congestion_control: bool,
    pub stats_interval_ms: u64,
    /// The policy a share is checked against (the guard re-checks every frame).
    pub policy: blende_policy::Policy,
    /// Start sharing this at once (`--share-window`).
    pub share: Option<Source>,
}

/// What the caller may ask of a running call.
#[derive(Clone, Debug)]
pub enum CallCommand {
    /// A request to a Blende room server (moderators: admit, deny, remove, presenter, lock, end).
    Room(blende_signal::blende::RoomAction),
    /// Share a window (or the screen, if the administrator allows it); the policy decides.
    ShareStart(Source),
    /// Stop sharing at once.
    ShareStop,
    /// A kill switch (the same as calling the driver directly, plus a `switch` event).
    Switch {
        kind: DeviceKind,
        on: bool,
    },
    AllOff,
    /// Print the `stats` events now.
    Stats,
    Leave,
}

impl std::str::FromStr for CallCommand {
    type Err = String;

    /// The stdin command lines of `blende join --headless`.
    fn from_str(line: &str) -> Result<Self, String> {
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
            "share screen" => CallCommand::ShareStart(Source::Screen),
            other => {
                let (verb, arg) = other.rsplit_once(' ').unwrap_or((other, ""));
                let arg = arg.trim().to_owned();
                match verb.trim() {
                    "share window" => CallCommand::ShareStart(Source::Window(crate::cli::parse_window_id(&arg)?)),
                    "admit" => CallCommand::Room(RoomAction::Admit(arg)),
                    "deny" => CallCommand::Room(RoomAction::Deny(arg)),
                    "remove" => CallCommand::Room(RoomAction::Remove(arg)),
                    "presenter on" => CallCommand::Room(RoomAction::GrantPresenter(arg)),
                    "presenter off" => CallCommand::Room(RoomAction::RevokePresenter(arg)),
                    _ => return Err(format!("unknown command `{other}`")),
                }
            }
        })
    }
}

type FrameHook = Arc<dyn Fn(&VideoFrame) + Send + Sync>;
type EventHook = Box<dyn FnMut(&Value) + Send>;
type AudioHook = Arc<dyn Fn(&AudioFrame) + Send + Sync>;
type FeedFrameHook = Arc<dyn Fn(&str, &VideoFrame) + Send + Sync>;
type FeedAudioHook = Arc<dyn Fn(&str, &AudioFrame) + Send + Sync>;

/// Where the call's output goes. Hooks run on the engine's threads: keep them short (store a
/// latest frame, push into a ring) and never block.
#[derive(Default)]
pub struct Hooks {
    /// Every event, as one JSON object (JOIN.md); `t_ms` is added.
    pub event: Option<EventHook>,
    /// Each camera picture we are about to send (the self view), on the video send thread.
    pub local_video: Option<FrameHook>,
    /// Each microphone block we are about to send (for a level meter), on the audio send thread.
    pub local_audio: Option<AudioHook>,
    /// Each picture of our share as it goes to the encoder (after the guard), for the banner.
    pub share_preview: Option<crate::share_send::PictureHook>,
    /// Each decoded remote picture, by feed id.
    pub remote_video: Option<FeedFrameHook>,
    /// Each decoded remote 20 ms audio block, by feed id.
    pub remote_audio: Option<FeedAudioHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// The event sink with the call's start time.
struct Events {
    start: Instant,
    sink: Option<EventHook>,
}

impl Events {
    fn emit(&mut self, mut v: Value) {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("t_ms".into(), json!(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)));
        }
        if let Some(sink) = &mut self.sink {
            sink(&v);
        }
    }
}

/// Unix time now, in µs.
#[must_use]
pub fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
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

/// Decoded media from one remote participant.
#[derive(Debug)]
struct FeedStats {
    display: Option<String>,
    subscribed_at: Instant,
    first_video_ms: Option<u64>,
    first_audio_ms: Option<u64>,
    frames_decoded: u64,
    stamped_frames: u64,
    frames_since_tick: u64,
    size: (u32, u32),
    last_counter: Option<u32>,
    last_capture_us: Option<u64>,
    max_capture_us: Option<u64>,
    last_recv_unix_us: Option<u64>,
    /// Mean luma (0–255) of the central 1/8 × 1/8 of the last picture.
    centre_luma: Option<f64>,
    audio_frames: u64,
    audio_window: VecDeque<f32>,
    audio_frames_since_tick: u64,
}

/// Half a second at 48 kHz: enough for a stable frequency estimate.
const AUDIO_WINDOW_SAMPLES: usize = 24_000;

impl FeedStats {
    fn new(display: Option<String>) -> Self {
        Self {
            display,
            subscribed_at: Instant::now(),
            first_video_ms: None,
            first_audio_ms: None,
            frames_decoded: 0,
            stamped_frames: 0,
            frames_since_tick: 0,
            size: (0, 0),
            last_counter: None,
            last_capture_us: None,
            max_capture_us: None,
            last_recv_unix_us: None,
            centre_luma: None,
            audio_frames: 0,
            audio_window: VecDeque::with_capacity(AUDIO_WINDOW_SAMPLES),
            audio_frames_since_tick: 0,
        }
    }
}

/// What the media threads tell the stats.
#[derive(Debug, Default)]
struct SendStats {
    video_frames: AtomicU64,
    last_counter: AtomicU64,
    audio_frames: AtomicU64,
    bitrate_bps: AtomicU64,
}

enum Input {
    Signal(Option<SignalEvent>),
    /// From the Janus adapter of a Blende meeting that moved to Janus.
    Janus(Option<SignalEvent>),
    Publisher(Option<RtcEvent>),
    Subscriber(String, RtcEvent),
    Device(DriverEvent),
    Command(Option<CallCommand>),
    /// An event of a mesh publisher: participant, generation (events of a replaced
    /// PeerConnection are stale), event.
    MeshPublisher(String, u64, RtcEvent),
    Tick,
    ShareSignal(Option<SignalEvent>),
    ShareEvent(Value),
}

/// The encoders' receivers: one per publisher PeerConnection (one for a server, one per
/// participant in a mesh). The media threads encode each picture once per receiver.
#[derive(Clone, Default)]
struct Sinks {
    video: Arc<std::sync::Mutex<Vec<(String, blende_rtc::VideoInput)>>>,
    audio: Arc<std::sync::Mutex<Vec<(String, blende_rtc::AudioInput)>>>,
}

impl Sinks {
    fn add(&self, name: &str, peer: &Peer, video: bool, audio: bool) -> Result<(), blende_rtc::RtcError> {
        if video {
            let input = peer.video_input()?;
            if let Ok(mut v) = self.video.lock() {
                v.push((name.to_owned(), input));
            }
        }
        if audio {
            let input = peer.audio_input(1)?;
            if let Ok(mut a) = self.audio.lock() {
                a.push((name.to_owned(), input));
            }
        }
        Ok(())
    }

    fn remove(&self, name: &str) {
        if let Ok(mut v) = self.video.lock() {
            v.retain(|(n, _)| n != name);
        }
        if let Ok(mut a) = self.audio.lock() {
            a.retain(|(n, _)| n != name);
        }
    }
}

/// Hands one frame to every receiver's encoder; a receiver whose connection closed is dropped
/// from the list, the others go on. Returns whether any of them queued the frame.
fn fan_out<I>(inputs: &mut Vec<(String, I)>, mut send: impl FnMut(&mut I) -> Result<bool, blende_rtc::RtcError>) -> bool {
    let mut queued = false;
    inputs.retain_mut(|(_, input)| match send(input) {
        Ok(q) => {
            queued |= q;
            true
        }
        Err(_) => false,
    });
    queued
}

/// The share's own publisher session (see `share_send`).
struct Share {
    sender: ShareSender,
    signal: blende_signal::SignalHandle,
    participant_id: Option<String>,
}

impl Share {
    async fn stop(self) {
        self.signal.commands.send(SignalCommand::Leave).await.ok();
        self.sender.stop().await;
    }
}

/// Runs the call until [`CallCommand::Leave`], the end of `commands`, or the server ends it.
/// `start` is what `t_ms` counts from. Devices are switched on as `spec` asks and all off
/// before this returns.
///
/// # Errors
/// A failed connection or PeerConnection; errors during the call are `error` events.
#[allow(clippy::too_many_lines)]
pub async fn run(
    spec: CallSpec,
    start: Instant,
    driver: Arc<DriverHandle>,
    outputs: DriverOutputs,
    mut commands: mpsc::Receiver<CallCommand>,
    hooks: Hooks,
) -> anyhow::Result<ExitCode> {
    let mut out = Events { start, sink: hooks.event };
    let mut spec = spec;
    if spec.url.kind == blende_policy::ServerKind::Whep && (spec.camera || spec.mic) {
        // WHEP only receives: no device is opened for nothing.
        out.emit(json!({"event": "error", "message": "WHEP only receives: camera and microphone stay off", "fatal": false}));
        spec.camera = false;
        spec.mic = false;
    }
    let hooks = Hooks { event: None, ..hooks };
    let mut signal = blende_signal::connect(&spec.url, spec.join.clone()).await?;
    // Where media signalling goes: the server we joined, or the Janus VideoRoom a Blende
    // meeting moved to (whose adapter is `janus`; the Blende session stays for roles and
    // the end of the meeting).
    let mut media_cmds = signal.commands.clone();
    let mut janus: Option<blende_signal::SignalHandle> = None;

    // TURN servers arrive from a Blende room server (`IceServers`) and go into this config
    // for every PeerConnection made after that.
    let mut peer_config = PeerConfig {
        role: PeerRole::Publisher,
        ice_servers: spec.ice_servers.clone(),
        relay_only: spec.policy.servers().relay_only,
        ice_bind_ip: spec.ice_ip,
        video: spec.camera.then_some((spec.width, spec.height)),
        audio: spec.mic,
        initial_bitrate_bps: spec.bitrate_bps,
        congestion_control: spec.congestion_control,
        ..PeerConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let send_stats = Arc::new(SendStats::default());
    // A Blende room is a mesh: one publisher PeerConnection per other participant, created on
    // `PublishTo`. Elsewhere one publisher for the server.
    let mesh = spec.url.kind == blende_policy::ServerKind::Blende;
    let sinks = Sinks::default();
    let mut publisher: Option<Peer> = None;
    let mut publisher_events: Option<mpsc::Receiver<RtcEvent>> = None;
    if (spec.camera || spec.mic) && !mesh {
        let (peer, events) = Peer::new(peer_config.clone()).await?;
        let offer = peer.create_offer().await?;
        signal.commands.send(SignalCommand::Publish { sdp: offer }).await.map_err(|_| anyhow!("signalling closed"))?;
        sinks.add("server", &peer, spec.camera, spec.mic)?;
        publisher = Some(peer);
        publisher_events = Some(events);
    }
    let mut mesh_out: HashMap<String, Peer> = HashMap::new();
    let mut book = MeshBook::default();

    // Media threads: blocking receive from the driver, encode once per receiver, hand to the
    // network tasks.
    let blende_devices::DriverOutputs { video, audio, events: device_events } = outputs;
    let local_video = hooks.local_video.clone();
    let local_audio = hooks.local_audio.clone();
    let mut threads = Vec::new();
    if spec.camera {
        let stop = Arc::clone(&stop);
        let stats = Arc::clone(&send_stats);
        let sinks = sinks.video.clone();
        threads.push(std::thread::Builder::new().name("blende-video-send".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(frame) = video.recv_timeout(Duration::from_millis(100)) else { continue };
                if let Some(h) = &local_video {
                    h(&frame);
                }
                let counter = read_stamp(&frame).map(|s| s.sequence);
                let Ok(mut inputs) = sinks.lock() else { break };
                let queued = fan_out(&mut inputs, |input| {
                    let q = input.send(&frame);
                    stats.bitrate_bps.store(input.bitrate_bps(), Ordering::Relaxed);
                    q
                });
                if queued {
                    stats.video_frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(c) = counter {
                        stats.last_counter.store(u64::from(c), Ordering::Relaxed);
                    }
                }
            }
        })?);
    }
    if spec.mic {
        let stop = Arc::clone(&stop);
        let stats = Arc::clone(&send_stats);
        let sinks = sinks.audio.clone();
        threads.push(std::thread::Builder::new().name("blende-audio-send".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(frame) = audio.recv_timeout(Duration::from_millis(100)) else { continue };
                if let Some(h) = &local_audio {
                    h(&frame);
                }
                let Ok(mut inputs) = sinks.lock() else { break };
                if fan_out(&mut inputs, |input| input.send(&frame)) {
                    stats.audio_frames.fetch_add(1, Ordering::Relaxed);
                }
            }
        })?);
    }

    let (input_tx, mut input_rx) = mpsc::channel::<Input>(256);
    // Driver events: a blocking receiver, so a thread forwards them.
    {
        let tx = input_tx.clone();
        let stop = Arc::clone(&stop);
        threads.push(std::thread::Builder::new().name("blende-device-events".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(ev) = device_events.recv_timeout(Duration::from_millis(100))
                    && tx.blocking_send(Input::Device(ev)).is_err()
                {
                    break;
                }
            }
        })?);
    }
    // Commands from the caller.
    {
        let tx = input_tx.clone();
        tokio::spawn(async move {
            loop {
                let cmd = commands.recv().await;
                let end = cmd.is_none();
                if tx.send(Input::Command(cmd)).await.is_err() || end {
                    break;
                }
            }
        });
    }
    // Stats ticks.
    {
        let tx = input_tx.clone();
        let interval = Duration::from_millis(spec.stats_interval_ms.max(50));
        tokio::spawn(async move {
            let mut t = tokio::time::interval(interval);
            t.tick().await;
            loop {
                t.tick().await;
                if tx.send(Input::Tick).await.is_err() {
                    break;
                }
            }
        });
    }

    if spec.camera {
        driver.set_enabled(DeviceKind::Camera, true)?;
    }
    if spec.mic {
        driver.set_enabled(DeviceKind::Microphone, true)?;
    }

    let mut subscribers: HashMap<String, Peer> = HashMap::new();
    let mut feeds: HashMap<String, FeedStats> = HashMap::new();
    let mut wanted: HashMap<String, (Option<String>, Instant)> = HashMap::new();
    let mut offered: HashSet<String> = HashSet::new();
    let mut keyframe_requests = 0u64;
    let mut share: Option<Share> = None;
    // Guard events from the share's capture thread.
    let (share_tx, mut share_rx) = mpsc::channel::<Value>(64);
    {
        let tx = input_tx.clone();
        tokio::spawn(async move {
            while let Some(v) = share_rx.recv().await {
                if tx.send(Input::ShareEvent(v)).await.is_err() {
                    break;
                }
            }
        });
    }
    if let Some(source) = spec.share {
        input_tx.send(Input::Command(Some(CallCommand::ShareStart(source)))).await.ok();
    }
    let mut exit = ExitCode::SUCCESS;

    loop {
        let input = tokio::select! {
            ev = signal.events.recv() => Input::Signal(ev),
            ev = async {
                match janus.as_mut() {
                    Some(j) => j.events.recv().await,
                    None => std::future::pending().await,
                }
            } => Input::Janus(ev),
            ev = async {
                match share.as_mut() {
                    Some(sh) => sh.signal.events.recv().await,
                    None => std::future::pending().await,
                }
            } => Input::ShareSignal(ev),
            ev = async {
                match publisher_events.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Input::Publisher(ev),
            Some(i) = input_rx.recv() => i,
        };
        // The Janus adapter's events drive the media exactly as a Janus server's would.
        let input = match input {
            Input::Janus(Some(ev)) => Input::Signal(Some(ev)),
            Input::Janus(None) => {
                out.emit(json!({"event": "error", "message": "the connection to the meeting's Janus server ended", "fatal": true}));
                exit = ExitCode::FAILURE;
                break;
            }
            other => other,
        };
        match input {
            Input::Signal(None) => {
                out.emit(json!({"event": "left", "reason": "signalling ended"}));
                break;
            }
            Input::Signal(Some(ev)) => match ev {
                SignalEvent::Joined { participant_id, participants } => {
                    out.emit(json!({"event": "joined", "participant_id": participant_id,
                        "participants": participants.iter().map(participant_json).collect::<Vec<_>>()}));
                    for p in participants {
                        if is_own_share(&share, &p) {
                            continue;
                        }
                        wanted.insert(p.id.clone(), (p.display.clone(), Instant::now()));
                        media_cmds.send(SignalCommand::Subscribe { feed: p.id }).await.ok();
                    }
                }
                SignalEvent::PublishAnswer { sdp } => {
                    if let Some(peer) = &publisher
                        && let Err(e) = peer.apply_answer(&sdp).await
                    {
                        out.emit(json!({"event": "error", "message": format!("publish answer: {e}"), "fatal": true}));
                        exit = ExitCode::FAILURE;
                        break;
                    }
                }
                SignalEvent::PublishUp => out.emit(json!({"event": "published"})),
                SignalEvent::ParticipantJoined(p) if is_own_share(&share, &p) => {}
                SignalEvent::ParticipantJoined(p) => {
                    out.emit(json!({"event": "participant_joined", "id": p.id, "display": p.display}));
                    wanted.insert(p.id.clone(), (p.display.clone(), Instant::now()));
                    media_cmds.send(SignalCommand::Subscribe { feed: p.id }).await.ok();
                }
                SignalEvent::ParticipantLeft { id } => {
                    sinks.remove(&id);
                    book.remove(&id);
                    if let Some(pc) = mesh_out.remove(&id) {
                        pc.close().await;
                    }
                    // Janus may say it three ways (unpublished, leaving, hangup): report it once.
                    let known = wanted.remove(&id).is_some();
                    offered.remove(&id);
                    feeds.remove(&id);
                    if let Some(peer) = subscribers.remove(&id) {
                        peer.close().await;
                    }
                    if known {
                        out.emit(json!({"event": "participant_left", "id": id}));
                    }
                }
                SignalEvent::SubscriptionOffer { feed, sdp } => {
                    offered.insert(feed.clone());
                    let display = wanted.get(&feed).and_then(|(d, _)| d.clone());
                    match subscribe(&feed, Offer::FromServer(&sdp), &peer_config, &input_tx).await {
                        Ok((peer, answer)) => {
                            media_cmds.send(SignalCommand::AnswerSubscription { feed: feed.clone(), sdp: answer }).await.ok();
                            if let Some(old) = subscribers.insert(feed.clone(), peer) {
                                old.close().await;
                            }
                            feeds.insert(feed, FeedStats::new(display));
                        }
                        Err(e) => out.emit(json!({"event": "error", "message": format!("subscribing to {feed}: {e}"), "fatal": false})),
                    }
                }
                SignalEvent::PublishTo { peer } => {
                    if !(spec.camera || spec.mic) {
                        continue;
                    }
                    let generation = book.next_generation();
                    let opened = open_mesh_publisher(&peer, generation, &peer_config, &sinks, (spec.camera, spec.mic), &input_tx).await;
                    match opened {
                        Ok((pc, offer)) => {
                            media_cmds.send(SignalCommand::PublishTo { peer: peer.clone(), sdp: offer }).await.ok();
                            book.opened(&peer, generation);
                            if let Some(old) = mesh_out.insert(peer, pc) {
                                old.close().await;
                            }
                        }
                        Err(e) => out.emit(json!({"event": "error", "message": format!("sending to {peer}: {e}"), "fatal": false})),
                    }
                }
                SignalEvent::PeerAnswer { peer, sdp } => {
                    if !book.answer(&peer) {
                        continue;
                    }
                    if let Some(pc) = mesh_out.get(&peer)
                        && let Err(e) = pc.apply_answer(&sdp).await
                    {
                        out.emit(json!({"event": "error", "message": format!("sending to {peer}: {e}"), "fatal": false}));
                    }
                }
                SignalEvent::IceServers(servers) => {
                    let turn: Vec<TurnServer> =
                        servers.into_iter().map(|s| TurnServer { urls: s.urls, username: s.username, credential: s.credential }).collect();
                    if turn == peer_config.turn {
                        continue;
                    }
                    peer_config.turn = turn;
                    out.emit(json!({"event": "ice_servers", "turn": peer_config.turn.len(), "relay_only": peer_config.relay_only}));
                    // Mesh connections made before the TURN servers arrived that are not up yet
                    // may never come up without them (relay only, or hosts that cannot reach
                    // each other): make them again with TURN and offer again. The other side
                    // replaces its subscriber on the new offer. Connections already up stay.
                    for peer in book.not_connected() {
                        let generation = book.next_generation();
                        match open_mesh_publisher(&peer, generation, &peer_config, &sinks, (spec.camera, spec.mic), &input_tx).await {
                            Ok((pc, offer)) => {
                                media_cmds.send(SignalCommand::PublishTo { peer: peer.clone(), sdp: offer }).await.ok();
                                book.opened(&peer, generation);
                                if let Some(old) = mesh_out.insert(peer, pc) {
                                    old.close().await;
                                }
                            }
                            Err(e) => out.emit(json!({"event": "error", "message": format!("sending to {peer}: {e}"), "fatal": false})),
                        }
                    }
                }
                SignalEvent::MovedToJanus(room) => {
                    if janus.is_some() {
                        continue;
                    }
                    let url = match ServerUrl::parse(&room.url)
                        .map_err(|e| e.to_string())
                        .and_then(|u| spec.policy.servers().check(&u).map(|()| u))
                    {
                        Ok(u) if u.kind == blende_policy::ServerKind::Janus => u,
                        Ok(_) => {
                            out.emit(
                                json!({"event": "error", "message": "the meeting moved to a server that is not Janus", "fatal": true}),
                            );
                            exit = ExitCode::FAILURE;
                            break;
                        }
                        Err(why) => {
                            out.emit(json!({"event": "error", "message": format!("the meeting moved to Janus: {why}"), "fatal": true}));
                            exit = ExitCode::FAILURE;
                            break;
                        }
                    };
                    // The mesh ends: our media goes to Janus once, the others' comes from there.
                    for (peer, pc) in mesh_out.drain() {
                        sinks.remove(&peer);
                        pc.close().await;
                    }
                    book = MeshBook::default();
                    for (_, pc) in subscribers.drain() {
                        pc.close().await;
                    }
                    feeds.clear();
                    wanted.clear();
                    offered.clear();
                    let options = JoinOptions {
                        room: Some(room.room.to_string()),
                        password: Some(room.pin),
                        display_name: spec.join.display_name.clone(),
                        moderator_token: None,
                    };
                    let access = blende_signal::janus::JanusAccess { token: Some(room.token), feed: Some(room.feed) };
                    let handle = match blende_signal::janus_ws::connect_with_access(&url, options, access).await {
                        Ok(h) => h,
                        Err(e) => {
                            out.emit(json!({"event": "error", "message": format!("the meeting moved to Janus: {e}"), "fatal": true}));
                            exit = ExitCode::FAILURE;
                            break;
                        }
                    };
                    media_cmds = handle.commands.clone();
                    janus = Some(handle);
                    out.emit(json!({"event": "janus", "room": room.room, "feed": room.feed.to_string()}));
                    if spec.camera || spec.mic {
                        let published = async {
                            let (peer, events) = Peer::new(peer_config.clone()).await?;
                            let offer = peer.create_offer().await?;
                            sinks.add("server", &peer, spec.camera, spec.mic)?;
                            Ok::<_, blende_rtc::RtcError>((peer, events, offer))
                        }
                        .await;
                        match published {
                            Ok((peer, events, offer)) => {
                                media_cmds.send(SignalCommand::Publish { sdp: offer }).await.ok();
                                publisher = Some(peer);
                                publisher_events = Some(events);
                            }
                            Err(e) => {
                                out.emit(json!({"event": "error", "message": format!("publishing to Janus: {e}"), "fatal": true}));
                                exit = ExitCode::FAILURE;
                                break;
                            }
                        }
                    }
                }
                SignalEvent::Lobby { state } => out.emit(json!({"event": "lobby", "state": state})),
                SignalEvent::Waiting { participants } => {
                    out.emit(json!({"event": "waiting", "participants": participants.iter().map(participant_json).collect::<Vec<_>>()}));
                }
                SignalEvent::Role { participant, role } => out.emit(json!({"event": "role", "participant": participant, "role": role})),
                SignalEvent::SubscriptionNeedsOffer { feed } => {
                    offered.insert(feed.clone());
                    let display = wanted.get(&feed).and_then(|(d, _)| d.clone());
                    match subscribe(&feed, Offer::Ours, &peer_config, &input_tx).await {
                        Ok((peer, offer)) => {
                            media_cmds.send(SignalCommand::OfferSubscription { feed: feed.clone(), sdp: offer }).await.ok();
                            if let Some(old) = subscribers.insert(feed.clone(), peer) {
                                old.close().await;
                            }
                            feeds.insert(feed, FeedStats::new(display));
                        }
                        Err(e) => out.emit(json!({"event": "error", "message": format!("subscribing to {feed}: {e}"), "fatal": false})),
                    }
                }
                SignalEvent::SubscriptionAnswer { feed, sdp } => {
                    if let Some(peer) = subscribers.get(&feed)
                        && let Err(e) = peer.apply_answer(&sdp).await
                    {
                        out.emit(json!({"event": "error", "message": format!("subscribing to {feed}: {e}"), "fatal": false}));
                    }
                }
                SignalEvent::SubscriptionUp { feed } => out.emit(json!({"event": "subscribed", "feed": feed})),
                SignalEvent::RemoteCandidate { feed, candidate, sdp_mid, sdp_mline_index } => {
                    let peer = match &feed {
                        Some(f) => subscribers.get(f),
                        None => publisher.as_ref(),
                    };
                    if let Some(peer) = peer {
                        let _ = peer.add_remote_candidate(&candidate, sdp_mid, sdp_mline_index).await;
                    }
                }
                SignalEvent::Kicked => {
                    out.emit(json!({"event": "left", "reason": "kicked"}));
                    exit = ExitCode::from(4);
                    break;
                }
                SignalEvent::RoomDestroyed => {
                    out.emit(json!({"event": "left", "reason": "room destroyed"}));
                    exit = ExitCode::from(4);
                    break;
                }
                SignalEvent::Error { message, fatal } => {
                    out.emit(json!({"event": "error", "message": message, "fatal": fatal}));
                    if fatal {
                        exit = ExitCode::FAILURE;
                        break;
                    }
                }
                SignalEvent::Closed { reason } => {
                    out.emit(json!({"event": "left", "reason": reason}));
                    break;
                }
                _ => {}
            },
            Input::ShareEvent(v) => {
                let ended = v["state"] == "ended";
                out.emit(v);
                if ended && let Some(sh) = share.take() {
                    sh.stop().await;
                }
            }
            Input::ShareSignal(ev) => {
                let Some(sh) = share.as_mut() else { continue };
                let failure = match ev {
                    Some(SignalEvent::Joined { participant_id, .. }) => {
                        sh.participant_id = Some(participant_id);
                        None
                    }
                    Some(SignalEvent::PublishAnswer { sdp }) => sh.sender.peer.apply_answer(&sdp).await.err().map(|e| e.to_string()),
                    Some(SignalEvent::PublishUp) => {
                        out.emit(json!({"event": "share", "state": "published", "feed": sh.participant_id}));
                        None
                    }
                    Some(SignalEvent::RemoteCandidate { feed: None, candidate, sdp_mid, sdp_mline_index }) => {
                        let _ = sh.sender.peer.add_remote_candidate(&candidate, sdp_mid, sdp_mline_index).await;
                        None
                    }
                    Some(SignalEvent::Error { message, fatal: true }) => Some(message),
                    Some(SignalEvent::Kicked | SignalEvent::RoomDestroyed) => Some("the server ended the share".to_owned()),
                    Some(SignalEvent::Closed { reason }) => Some(reason),
                    None => Some("signalling ended".to_owned()),
                    Some(_) => None,
                };
                if let Some(reason) = failure
                    && let Some(sh) = share.take()
                {
                    sh.stop().await;
                    out.emit(json!({"event": "share", "state": "stopped", "reason": reason}));
                }
            }
            Input::MeshPublisher(peer, generation, ev) => {
                if !book.is_current(&peer, generation) {
                    continue;
                }
                let Some(pc) = mesh_out.get(&peer) else { continue };
                match ev {
                    RtcEvent::State(s) => {
                        let mut event = json!({"event": "connection", "to": peer, "state": conn_name(s)});
                        if s == ConnectionState::Connected {
                            book.connected(&peer, generation);
                            // Whether media goes through TURN: the selected pair's candidate types.
                            if let Some((local, remote)) = pc.selected_candidate_types().await {
                                event["local_candidate"] = json!(local);
                                event["remote_candidate"] = json!(remote);
                            }
                        }
                        out.emit(event);
                    }
                    RtcEvent::KeyframeRequested => keyframe_requests += 1,
                    _ => {}
                }
            }
            Input::Publisher(None) => publisher_events = None,
            Input::Publisher(Some(ev)) => match ev {
                RtcEvent::State(s) => out.emit(json!({"event": "connection", "feed": null, "state": conn_name(s)})),
                RtcEvent::KeyframeRequested => keyframe_requests += 1,
                _ => {}
            },
            Input::Subscriber(feed, ev) => {
                let Some(stats) = feeds.get_mut(&feed) else { continue };
                match ev {
                    RtcEvent::State(s) => {
                        let mut event = json!({"event": "connection", "feed": feed, "state": conn_name(s)});
                        if s == ConnectionState::Connected
                            && let Some((local, remote)) = match subscribers.get(&feed) {
                                Some(pc) => pc.selected_candidate_types().await,
                                None => None,
                            }
                        {
                            event["local_candidate"] = json!(local);
                            event["remote_candidate"] = json!(remote);
                        }
                        out.emit(event);
                    }
                    RtcEvent::TrackStarted { kind, .. } => {
                        out.emit(json!({"event": "track", "feed": feed, "kind": media_name(kind)}));
                    }
                    RtcEvent::Video { frame, .. } => {
                        let recv_unix = unix_us();
                        if let Some(h) = &hooks.remote_video {
                            h(&feed, &frame);
                        }
                        stats.frames_decoded += 1;
                        stats.frames_since_tick += 1;
                        stats.size = (frame.width(), frame.height());
                        stats.centre_luma = centre_luma(&frame);
                        if stats.first_video_ms.is_none() {
                            let ms = u64::try_from(stats.subscribed_at.elapsed().as_millis()).unwrap_or(0);
                            stats.first_video_ms = Some(ms);
                            out.emit(json!({"event": "first_frame", "feed": feed, "kind": "video", "since_subscribe_ms": ms,
                                "width": frame.width(), "height": frame.height()}));
                        }
                        if let Some(stamp) = read_stamp(&frame) {
                            stats.stamped_frames += 1;
                            stats.last_counter = Some(stamp.sequence);
                            stats.last_capture_us = Some(stamp.capture_time_us);
                            stats.max_capture_us = Some(stats.max_capture_us.unwrap_or(0).max(stamp.capture_time_us));
                            stats.last_recv_unix_us = Some(recv_unix);
                        }
                    }
                    RtcEvent::Audio { frame, .. } => {
                        if let Some(h) = &hooks.remote_audio {
                            h(&feed, &frame);
                        }
                        stats.audio_frames += 1;
                        stats.audio_frames_since_tick += 1;
                        if stats.first_audio_ms.is_none() {
                            let ms = u64::try_from(stats.subscribed_at.elapsed().as_millis()).unwrap_or(0);
                            stats.first_audio_ms = Some(ms);
                            out.emit(json!({"event": "first_frame", "feed": feed, "kind": "audio", "since_subscribe_ms": ms}));
                        }
                        let samples = frame.samples().to_f32();
                        let channels = usize::from(frame.channels().max(1));
                        for s in samples.iter().step_by(channels) {
                            if stats.audio_window.len() == AUDIO_WINDOW_SAMPLES {
                                stats.audio_window.pop_front();
                            }
                            stats.audio_window.push_back(*s);
                        }
                    }
                    RtcEvent::TrackEnded { .. } => out.emit(json!({"event": "track_ended", "feed": feed})),
                    _ => {}
                }
            }
            Input::Device(DriverEvent::State(e)) => {
                out.emit(json!({"event": "device", "kind": kind_name(e.kind), "from": state_name(&e.from), "to": state_name(&e.to), "at_us": e.at_us}));
            }
            Input::Device(_) => {}
            // Turned into `Signal` above.
            Input::Janus(_) => {}
            Input::Command(None) => {
                signal.commands.send(SignalCommand::Leave).await.ok();
                if let Some(j) = &janus {
                    j.commands.send(SignalCommand::Leave).await.ok();
                }
                out.emit(json!({"event": "left", "reason": "end of input"}));
                break;
            }
            Input::Command(Some(cmd)) => {
                let result = match cmd {
                    CallCommand::Switch { kind, on } => {
                        let available = match kind {
                            DeviceKind::Camera => spec.camera,
                            DeviceKind::Microphone => spec.mic,
                            DeviceKind::ScreenShare => false,
                        };
                        if on && !available {
                            Err(format!("{} was started with `none`", kind_name(kind)))
                        } else {
                            driver.set_enabled(kind, on).map_err(|e| e.to_string()).map(|()| {
                                // Taken after the gate closed: nothing captured later is sent.
                                out.emit(json!({"event": "switch", "kind": kind_name(kind), "on": on, "at_us": clock::now_us()}));
                            })
                        }
                    }
                    CallCommand::AllOff => driver.panic_all_off().map_err(|e| e.to_string()).map(|()| {
                        out.emit(json!({"event": "switch", "kind": "all", "on": false, "at_us": clock::now_us()}));
                    }),
                    CallCommand::Stats => {
                        print_stats(&mut out, &feeds, &send_stats, keyframe_requests);
                        Ok(())
                    }
                    CallCommand::ShareStart(source) => {
                        if share.is_some() {
                            Err("already sharing; `share stop` first".to_owned())
                        } else {
                            match start_share(&spec, source, &share_tx, hooks.share_preview.clone()).await {
                                Ok(sh) => {
                                    out.emit(json!({"event": "share", "state": "starting", "display": sh.sender.display}));
                                    share = Some(sh);
                                    Ok(())
                                }
                                Err(StartError::Refused(reason)) => {
                                    out.emit(json!({"event": "share", "state": "refused", "reason": reason}));
                                    Ok(())
                                }
                                Err(StartError::Failed(why)) => Err(format!("sharing failed: {why}")),
                            }
                        }
                    }
                    CallCommand::Room(action) => {
                        signal.commands.send(SignalCommand::Room(action)).await.map_err(|_| "signalling closed".to_owned())
                    }
                    CallCommand::ShareStop => {
                        if let Some(sh) = share.take() {
                            sh.stop().await;
                            out.emit(json!({"event": "share", "state": "stopped"}));
                        }
                        Ok(())
                    }
                    CallCommand::Leave => {
                        signal.commands.send(SignalCommand::Leave).await.ok();
                        if let Some(j) = &janus {
                            j.commands.send(SignalCommand::Leave).await.ok();
                        }
                        out.emit(json!({"event": "left", "reason": "leave"}));
                        break;
                    }
                };
                if let Err(message) = result {
                    out.emit(json!({"event": "error", "message": message, "fatal": false}));
                }
            }
            Input::Tick => {
                print_stats(&mut out, &feeds, &send_stats, keyframe_requests);
                for stats in feeds.values_mut() {
                    stats.frames_since_tick = 0;
                    stats.audio_frames_since_tick = 0;
                    stats.audio_window.clear();
                }
                // "No such feed" when we asked too early: ask again.
                for (feed, (_, since)) in &mut wanted {
                    if !offered.contains(feed) && since.elapsed() > Duration::from_secs(2) {
                        *since = Instant::now();
                        media_cmds.send(SignalCommand::Subscribe { feed: feed.clone() }).await.ok();
                    }
                }
            }
        }
    }

    // Teardown: devices and the share off first (privacy), then media threads, then the network.
    let _ = driver.panic_all_off();
    if let Some(sh) = share.take() {
        sh.stop().await;
    }
    stop.store(true, Ordering::Relaxed);
    for peer in subscribers.values() {
        peer.close().await;
    }
    if let Some(peer) = &publisher {
        peer.close().await;
    }
    for pc in mesh_out.values() {
        pc.close().await;
    }
    drop(signal);
    drop(janus);
    for t in threads {
        let _ = t.join();
    }
    // Give the signalling task a moment to flush `leave`/`destroy`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(exit)
}

fn participant_json(p: &Participant) -> Value {
    json!({"id": p.id, "display": p.display})
}

fn conn_name(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Connected => "connected",
        ConnectionState::Disconnected => "disconnected",
        ConnectionState::Failed => "failed",
        ConnectionState::Closed => "closed",
        _ => "unknown",
    }
}

fn media_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// Which mesh PeerConnection (publisher to one participant) is current, whether its answer
/// came and whether it came up, and the answers still owed to replaced ones. Kept apart from
/// the PeerConnections so the replace-and-offer-again rules are tested without a network.
#[derive(Debug, Default)]
struct MeshBook {
    last_generation: u64,
    current: HashMap<String, MeshState>,
    /// Answers still to come for offers of PeerConnections replaced before their answer
    /// arrived. Answers come in the order of our offers (the other side answers each offer in
    /// turn, over one relay), so the next that many answers from that participant are stale.
    stale_answers: HashMap<String, u32>,
}

#[derive(Debug, Clone, Copy)]
struct MeshState {
    generation: u64,
    answered: bool,
    connected: bool,
}

impl MeshBook {
    /// A number for the next PeerConnection (its events carry it).
    fn next_generation(&mut self) -> u64 {
        self.last_generation += 1;
        self.last_generation
    }

    /// The PeerConnection `generation` now carries our media to `peer`, replacing any earlier
    /// one; its offer was sent.
    fn opened(&mut self, peer: &str, generation: u64) {
        let fresh = MeshState { generation, answered: false, connected: false };
        if let Some(old) = self.current.insert(peer.to_owned(), fresh)
            && !old.answered
        {
            *self.stale_answers.entry(peer.to_owned()).or_default() += 1;
        }
    }

    /// An answer from `peer` arrived: `true` when it belongs to the current PeerConnection.
    fn answer(&mut self, peer: &str) -> bool {
        if let Some(n) = self.stale_answers.get_mut(peer).filter(|n| **n > 0) {
            *n -= 1;
            return false;
        }
        match self.current.get_mut(peer) {
            Some(m) if !m.answered => {
                m.answered = true;
                true
            }
            _ => false,
        }
    }

    fn is_current(&self, peer: &str, generation: u64) -> bool {
        self.current.get(peer).is_some_and(|m| m.generation == generation)
    }

    fn connected(&mut self, peer: &str, generation: u64) {
        if let Some(m) = self.current.get_mut(peer).filter(|m| m.generation == generation) {
            m.connected = true;
        }
    }

    /// Participants whose current PeerConnection never came up (to be made again when TURN
    /// servers arrive), in a stable order.
    fn not_connected(&self) -> Vec<String> {
        let mut peers: Vec<String> = self.current.iter().filter(|(_, m)| !m.connected).map(|(p, _)| p.clone()).collect();
        peers.sort();
        peers
    }

    fn remove(&mut self, peer: &str) {
        self.current.remove(peer);
        self.stale_answers.remove(peer);
    }
}

/// A publisher PeerConnection to one mesh participant: its encoders join the media threads'
/// receivers (replacing an earlier connection's), its events are forwarded into the main loop
/// with `generation`. Returns the PeerConnection and its offer.
async fn open_mesh_publisher(
    peer: &str,
    generation: u64,
    config: &PeerConfig,
    sinks: &Sinks,
    (camera, mic): (bool, bool),
    input_tx: &mpsc::Sender<Input>,
) -> Result<(Peer, String), blende_rtc::RtcError> {
    let (pc, mut events) = Peer::new(config.clone()).await?;
    let offer = pc.create_offer().await?;
    sinks.remove(peer);
    sinks.add(peer, &pc, camera, mic)?;
    let tx = input_tx.clone();
    let name = peer.to_owned();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if tx.send(Input::MeshPublisher(name.clone(), generation, ev)).await.is_err() {
                break;
            }
        }
    });
    Ok((pc, offer))
}

/// Who makes the offer for a subscription.
enum Offer<'a> {
    /// The server offered (Janus): we answer.
    FromServer(&'a str),
    /// We offer receive-only media (WHEP).
    Ours,
}

/// A receive-only PeerConnection for `feed`, its events forwarded into the main loop; returns
/// our answer (to the server's offer) or our offer.
async fn subscribe(
    feed: &str,
    offer: Offer<'_>,
    base: &PeerConfig,
    input_tx: &mpsc::Sender<Input>,
) -> Result<(Peer, String), blende_rtc::RtcError> {
    let (peer, mut events) = Peer::new(PeerConfig {
        role: PeerRole::Subscriber,
        ice_servers: base.ice_servers.clone(),
        turn: base.turn.clone(),
        relay_only: base.relay_only,
        ice_bind_ip: base.ice_bind_ip,
        video: None,
        audio: false,
        ..PeerConfig::default()
    })
    .await?;
    let sdp = match offer {
        Offer::FromServer(offer) => peer.answer_offer(offer).await?,
        Offer::Ours => peer.create_offer().await?,
    };
    let tx = input_tx.clone();
    let feed = feed.to_owned();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            // Media is dropped when the main loop is behind; state changes wait.
            let msg = Input::Subscriber(feed.clone(), ev);
            let is_media = matches!(&msg, Input::Subscriber(_, RtcEvent::Video { .. } | RtcEvent::Audio { .. }));
            let sent = if is_media { tx.try_send(msg).map_err(|_| ()) } else { tx.send(msg).await.map_err(|_| ()) };
            if sent.is_err() && tx.is_closed() {
                break;
            }
        }
    });
    Ok((peer, sdp))
}

fn print_stats(out: &mut Events, feeds: &HashMap<String, FeedStats>, send: &SendStats, keyframe_requests: u64) {
    out.emit(json!({
        "event": "stats",
        "feed": null,
        "video_sent": send.video_frames.load(Ordering::Relaxed),
        "last_sent_counter": send.last_counter.load(Ordering::Relaxed),
        "audio_sent": send.audio_frames.load(Ordering::Relaxed),
        "bitrate_bps": send.bitrate_bps.load(Ordering::Relaxed),
        "keyframe_requests": keyframe_requests,
    }));
    for (feed, s) in feeds {
        let window: Vec<f32> = s.audio_window.iter().copied().collect();
        let hz = if window.is_empty() { None } else { measure_frequency_hz(&window, 48_000) };
        let dbfs = if window.is_empty() { None } else { Some(rms_dbfs(&window)).filter(|d| d.is_finite()) };
        out.emit(json!({
            "event": "stats",
            "feed": feed,
            "display": s.display,
            "frames_decoded": s.frames_decoded,
            "frames_since_last": s.frames_since_tick,
            "stamped_frames": s.stamped_frames,
            "width": s.size.0,
            "height": s.size.1,
            "last_counter": s.last_counter,
            "last_capture_us": s.last_capture_us,
            "max_capture_us": s.max_capture_us,
            "last_recv_unix_us": s.last_recv_unix_us,
            "centre_luma": s.centre_luma,
            "first_video_ms": s.first_video_ms,
            "audio_frames": s.audio_frames,
            "audio_frames_since_last": s.audio_frames_since_tick,
            "audio_hz": hz,
            "audio_dbfs": dbfs,
        }));
    }
}

/// Our own share's feed: never subscribed (it would show us our own screen, and cost a decoder).
fn is_own_share(share: &Option<Share>, p: &Participant) -> bool {
    share
        .as_ref()
        .is_some_and(|sh| sh.participant_id.as_deref() == Some(p.id.as_str()) || p.display.as_deref() == Some(sh.sender.display.as_str()))
}

/// Starts a share: policy and capture first, then its own signalling session, then the offer.
async fn start_share(
    spec: &CallSpec,
    source: Source,
    events: &mpsc::Sender<Value>,
    preview: Option<crate::share_send::PictureHook>,
) -> Result<Share, StartError> {
    let display = format!("{} (screen)", spec.join.display_name);
    let peer_config = PeerConfig {
        ice_servers: spec.ice_servers.clone(),
        relay_only: spec.policy.servers().relay_only,
        ice_bind_ip: spec.ice_ip,
        congestion_control: spec.congestion_control,
        ..PeerConfig::default()
    };
    if spec.url.kind != blende_policy::ServerKind::Janus {
        return Err(StartError::Failed("sharing is available on Janus servers so far".to_owned()));
    }
    let sender = ShareSender::start(spec.policy.clone(), source, peer_config, display.clone(), events.clone(), preview).await?;
    let signal = blende_signal::connect(&spec.url, JoinOptions { display_name: display, ..spec.join.clone() })
        .await
        .map_err(|e| StartError::Failed(e.to_string()))?;
    let offer = sender.peer.create_offer().await.map_err(|e| StartError::Failed(e.to_string()))?;
    signal.commands.send(SignalCommand::Publish { sdp: offer }).await.map_err(|_| StartError::Failed("signalling closed".to_owned()))?;
    Ok(Share { sender, signal, participant_id: None })
}

/// Mean luma of the picture's central 1/8 × 1/8 (I420 pictures only): lets a test tell a
/// shared window's background from the guard's slate without looking at every pixel.
fn centre_luma(frame: &VideoFrame) -> Option<f64> {
    let (y, _, _) = frame.i420_planes()?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (bw, bh) = ((w / 8).max(1), (h / 8).max(1));
    let (x0, y0) = ((w - bw) / 2, (h - bh) / 2);
    let sum: u64 = (y0..y0 + bh).flat_map(|row| y[row * w + x0..row * w + x0 + bw].iter()).map(|&v| u64::from(v)).sum();
    Some(sum as f64 / (bw * bh) as f64)
}

#[cfg(test)]
mod tests {
    use super::MeshBook;

    #[test]
    fn fan_out_drops_closed_receivers_and_reports_queueing() {
        // (name, state): 0 = queues, 1 = skips this frame (busy), 2 = closed.
        let mut inputs = vec![("a".to_owned(), 1u8), ("b".to_owned(), 2), ("c".to_owned(), 0)];
        let send = |state: &mut u8| match *state {
            0 => Ok(true),
            1 => Ok(false),
            _ => Err(blende_rtc::RtcError::Closed),
        };
        assert!(super::fan_out(&mut inputs, send));
        assert_eq!(inputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        inputs.retain(|(n, _)| n == "a");
        assert!(!super::fan_out(&mut inputs, send), "nobody queued the frame");
    }

    #[test]
    fn a_replaced_connection_s_late_answer_is_not_applied_to_its_successor() {
        let mut book = MeshBook::default();
        let g1 = book.next_generation();
        book.opened("3", g1);
        // TURN servers arrive before the answer: made again and offered again.
        assert_eq!(book.not_connected(), vec!["3".to_owned()]);
        let g2 = book.next_generation();
        book.opened("3", g2);
        assert!(!book.is_current("3", g1), "events of the replaced connection are stale");
        assert!(book.is_current("3", g2));
        // The answer to the first offer comes first and is dropped; the second is ours.
        assert!(!book.answer("3"));
        assert!(book.answer("3"));
        // A duplicate answer is not applied twice.
        assert!(!book.answer("3"));
        book.connected("3", g1);
        assert_eq!(book.not_connected(), vec!["3".to_owned()], "a stale `connected` counts for nothing");
        book.connected("3", g2);
        assert!(book.not_connected().is_empty(), "a connection that is up stays");
    }

    #[test]
    fn an_answered_connection_leaves_no_stale_answer_and_removal_forgets_everything() {
        let mut book = MeshBook::default();
        let g1 = book.next_generation();
        book.opened("5", g1);
        assert!(book.answer("5"));
        // Answered but not up yet (relay only without TURN): replaced, and no answer is owed.
        let g2 = book.next_generation();
        book.opened("5", g2);
        assert!(book.answer("5"), "the next answer belongs to the new connection");
        // Replaced before its answer, then the participant left and came back.
        let g3 = book.next_generation();
        book.opened("5", g3);
        book.remove("5");
        let g4 = book.next_generation();
        book.opened("5", g4);
        assert!(book.answer("5"), "nothing stale is owed to a participant who left");
        assert!(!book.answer("7"), "an answer from someone we never offered to is dropped");
    }
}
