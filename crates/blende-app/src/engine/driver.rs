//! The driver loop and the actions it carries out.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blende_call::{
    Action, Call, CallCommand, CallConfig, CallEvent, ConnState, End, MediaKind, PeerEvent, PeerId, Purpose, Route, ShareReport,
    SwitchKind, TransferReport,
};
use blende_devices::{DriverEvent, DriverOutputs, clock};
use blende_media::DeviceKind;
use blende_rtc::{ConnectionState, ContentKind, Peer, PeerConfig, PeerRole, RtcEvent, TurnServer};
use blende_signal::janus::JanusAccess;
use blende_signal::{JoinOptions, SignalCommand, SignalEvent, SignalHandle};
use tokio::sync::mpsc;

use super::direct::DirectIo;
use super::media::{MediaSend, Receiving};
use super::share::{CANVAS, ShareCapture};
use super::{CallSpec, Hooks, Queued, Switches};

/// What reaches the loop besides signalling.
enum Input {
    Command(Option<Queued>),
    Peer(PeerId, RtcEvent),
    Device(DriverEvent),
    Share(ShareReport),
    /// A new session to the server we joined, or why there is none ([`Action::Reconnect`]).
    Reconnected(Result<SignalHandle, String>),
    Tick,
}

/// Everything the call owns; only [`run`]'s loop touches it.
struct Driver {
    call: Call,
    spec: CallSpec,
    switches: Switches,
    hooks: Hooks,
    /// Publisher configuration; TURN servers join it when they arrive.
    publisher_config: PeerConfig,
    /// The session to the server we joined; `None` while it is lost.
    main: Option<SignalHandle>,
    janus: Option<SignalHandle>,
    share_signal: Option<SignalHandle>,
    peers: HashMap<PeerId, (Peer, Purpose)>,
    media: Option<MediaSend>,
    share: Option<ShareCapture>,
    receiving: Receiving,
    keyframe_requests: u64,
    /// The last statistics of each connection we send on.
    links: HashMap<PeerId, blende_rtc::LinkStats>,
    /// Data channels, file streams and document writers.
    direct: DirectIo,
    transfer_reports: mpsc::Receiver<TransferReport>,
    input_tx: mpsc::Sender<Input>,
    end: Option<End>,
}

/// Runs the call until it ends (leave, end of commands, the server ends it, a fatal error).
/// `start` is what `t_ms` counts from. Devices are switched on as `spec` asks and all off —
/// the share too — before this returns.
///
/// # Errors
/// The first signalling connection failed, or a media thread could not be started; errors
/// during the call are `Error` events and decide the exit status.
pub async fn run(
    mut spec: CallSpec,
    switches: Switches,
    outputs: DriverOutputs,
    commands: mpsc::Receiver<Queued>,
    hooks: Hooks,
) -> anyhow::Result<ExitCode> {
    let main = blende_signal::connect(&spec.url, spec.join.clone()).await?;
    let mut secret = [0u8; 32];
    blende_meeting::EntropySource::fill(&mut blende_meeting::OsEntropy, &mut secret)?;
    let config = CallConfig {
        url: spec.url.clone(),
        join: spec.join.clone(),
        camera: spec.camera,
        mic: spec.mic,
        relay_only: spec.policy.servers().relay_only,
        servers: spec.policy.servers().clone(),
        documents: {
            let d = spec.policy.documents();
            blende_p2p::Limits { enabled: d.enabled, max_bytes: d.max_bytes() }
        },
        secret,
    };
    let call = Call::new(config, Instant::now());
    if spec.url.kind == blende_policy::ServerKind::Whep {
        // WHEP only receives (the machine reported it): no device is opened for nothing.
        (spec.camera, spec.mic) = (false, false);
    }
    let (input_tx, mut input_rx) = mpsc::channel::<Input>(256);
    let DriverOutputs { video, audio, events: device_events } = outputs;
    let media =
        MediaSend::start(spec.camera.then(|| (video, hooks.local_video.clone())), spec.mic.then(|| (audio, hooks.local_audio.clone())))?;
    let threads = spawn_inputs(&input_tx, commands, device_events, spec.stats_interval_ms)?;
    let publisher_config = PeerConfig {
        role: PeerRole::Publisher,
        ice_servers: spec.ice_servers.clone(),
        relay_only: spec.policy.servers().relay_only,
        ice_bind_ip: spec.ice_ip,
        video: spec.camera.then_some((spec.width, spec.height)),
        audio: spec.mic,
        initial_bitrate_bps: spec.bitrate_bps,
        congestion_control: spec.congestion_control,
        // One certificate for all our connections: one identity code per person.
        certificate: Some(blende_rtc::DtlsCertificate::generate()?),
        ..PeerConfig::default()
    };
    // The devices the call sends, on from the start.
    for (kind, on) in [(DeviceKind::Camera, spec.camera), (DeviceKind::Microphone, spec.mic)] {
        if on {
            switches.driver.set_enabled(kind, true)?;
        }
    }
    let share = spec.share;
    let (direct, transfer_reports) = DirectIo::new();
    let mut d = Driver {
        call,
        spec,
        switches,
        hooks,
        publisher_config,
        main: Some(main),
        janus: None,
        share_signal: None,
        peers: HashMap::new(),
        media: Some(media),
        share: None,
        receiving: Receiving::default(),
        keyframe_requests: 0,
        links: HashMap::new(),
        direct,
        transfer_reports,
        input_tx,
        end: None,
    };
    if let Some(source) = share {
        d.switches.share.requested();
        d.call.handle_command(CallCommand::ShareStart(source), Instant::now());
    }
    d.step().await;
    while d.end.is_none() {
        d.next(&mut input_rx).await;
        d.step().await;
    }
    let end = d.end.clone().unwrap_or(End::Left("ended".into()));
    d.tear_down().await;
    stop_threads(threads);
    Ok(ExitCode::from(end.exit_status()))
}

/// Threads and tasks that turn the caller's commands, device events and the statistics
/// interval into inputs.
fn spawn_inputs(
    input_tx: &mpsc::Sender<Input>,
    mut commands: mpsc::Receiver<Queued>,
    device_events: std::sync::mpsc::Receiver<DriverEvent>,
    stats_interval_ms: u64,
) -> std::io::Result<(Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Driver events: a blocking receiver, so a thread forwards them.
    let thread = {
        let (tx, stop) = (input_tx.clone(), Arc::clone(&stop));
        std::thread::Builder::new().name("blende-device-events".into()).spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(ev) = device_events.recv_timeout(Duration::from_millis(100))
                    && tx.blocking_send(Input::Device(ev)).is_err()
                {
                    break;
                }
            }
        })?
    };
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
    let tx = input_tx.clone();
    let interval = Duration::from_millis(stats_interval_ms.max(50));
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
    Ok((stop, thread))
}

fn stop_threads((stop, thread): (Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)) {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = thread.join();
}

async fn recv_opt(handle: Option<&mut SignalHandle>) -> Option<SignalEvent> {
    match handle {
        Some(h) => h.events.recv().await,
        None => std::future::pending().await,
    }
}

fn conn_state(s: ConnectionState) -> ConnState {
    match s {
        ConnectionState::Connecting => ConnState::Connecting,
        ConnectionState::Connected => ConnState::Connected,
        ConnectionState::Disconnected => ConnState::Disconnected,
        ConnectionState::Failed => ConnState::Failed,
        _ => ConnState::Closed,
    }
}

fn media_kind(k: blende_rtc::MediaKind) -> MediaKind {
    match k {
        blende_rtc::MediaKind::Audio => MediaKind::Audio,
        blende_rtc::MediaKind::Video => MediaKind::Video,
    }
}

impl Driver {
    /// Waits for the next input and hands it to the machine (the one `select!`).
    async fn next(&mut self, input_rx: &mut mpsc::Receiver<Input>) {
        let deadline = self.call.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = recv_opt(self.main.as_mut()) => self.signal(Route::Main, ev),
            ev = recv_opt(self.janus.as_mut()) => self.signal(Route::Janus, ev),
            ev = recv_opt(self.share_signal.as_mut()) => self.signal(Route::Share, ev),
            Some(input) = input_rx.recv() => self.input(input).await,
            Some(report) = self.transfer_reports.recv() => self.call.handle_transfer(report, Instant::now()),
            () = sleep => self.call.handle_timeout(Instant::now()),
        }
    }

    fn signal(&mut self, route: Route, ev: Option<SignalEvent>) {
        let now = Instant::now();
        match ev {
            Some(ev) => self.call.handle_signal(route, ev, now),
            None => {
                match route {
                    Route::Janus => self.janus = None,
                    Route::Share => self.share_signal = None,
                    Route::Main => self.main = None,
                }
                self.call.handle_signal_closed(route, now);
            }
        }
    }

    async fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            // A switch-on queued before a switch-off of the same device is stale: the off,
            // done in the caller's thread, stands.
            Input::Command(Some(Queued { command: CallCommand::Switch { kind, on: true }, at_us }))
                if self.switches.off_since(kind, at_us) => {}
            Input::Command(Some(q)) => self.call.handle_command(q.command, now),
            Input::Command(None) => self.call.handle_command(CallCommand::InputClosed, now),
            Input::Share(report) => self.call.handle_share(report, now),
            Input::Device(DriverEvent::State(e)) => {
                self.emit(&CallEvent::Device { kind: e.kind, from: e.from, to: e.to, at_us: e.at_us });
            }
            Input::Device(_) => {}
            Input::Tick => self.report_stats(true),
            Input::Reconnected(result) => {
                let result = result.map(|handle| self.main = Some(handle));
                self.call.handle_reconnect(result, now);
            }
            Input::Peer(peer, ev) => self.peer_event(peer, ev, now).await,
        }
    }

    async fn peer_event(&mut self, peer: PeerId, ev: RtcEvent, now: Instant) {
        let Some((pc, purpose)) = self.peers.get(&peer) else { return };
        // Pictures and sound: the feed id is borrowed, not copied (this runs per frame).
        let feed = match purpose {
            Purpose::Subscriber { feed, .. } => Some(feed.as_str()),
            _ => None,
        };
        match ev {
            RtcEvent::State(s) => {
                let state = conn_state(s);
                let candidates = if state == ConnState::Connected { pc.selected_candidate_types().await } else { None };
                self.call.handle_peer(peer, PeerEvent::State { state, candidates }, now);
            }
            RtcEvent::KeyframeRequested => self.keyframe_requests += 1,
            RtcEvent::Link(link) => match feed {
                Some(feed) => self.receiving.link(feed, &link),
                None => {
                    self.links.insert(peer, link);
                }
            },
            RtcEvent::DataOpen(link) => {
                self.direct.link_open(peer, link);
                let fingerprints = pc.dtls_fingerprints().await;
                self.call.handle_peer(peer, PeerEvent::DataOpen, now);
                if let Some((ours, theirs)) = fingerprints {
                    self.call.handle_peer(peer, PeerEvent::Fingerprints { ours, theirs }, now);
                }
            }
            RtcEvent::Data(message) => self.call.handle_peer(peer, PeerEvent::Data(message), now),
            RtcEvent::DataClosed => {
                self.direct.link_closed(peer);
                self.call.handle_peer(peer, PeerEvent::DataClosed, now);
            }
            RtcEvent::TrackStarted { kind, .. } => self.call.handle_peer(peer, PeerEvent::TrackStarted(media_kind(kind)), now),
            RtcEvent::TrackEnded { .. } => self.call.handle_peer(peer, PeerEvent::TrackEnded, now),
            RtcEvent::Video { frame, .. } => {
                let Some(feed) = feed else { return };
                if let Some(h) = &self.hooks.remote_video {
                    h(feed, &frame);
                }
                if let Some(first) = self.receiving.video(feed, &frame, unix_us())
                    && let Some(h) = &mut self.hooks.event
                {
                    h(&first);
                }
            }
            RtcEvent::Audio { frame, origin, playout_delay_ms, .. } => {
                let Some(feed) = feed else { return };
                if let Some(h) = &self.hooks.remote_audio {
                    h(feed, &frame);
                }
                if let Some(first) = self.receiving.audio(feed, &frame, origin, playout_delay_ms)
                    && let Some(h) = &mut self.hooks.event
                {
                    h(&first);
                }
            }
            _ => {}
        }
    }

    /// Carries out the machine's actions in order and passes its events on.
    async fn step(&mut self) {
        loop {
            while let Some(ev) = self.call.poll_event() {
                self.emit(&ev);
            }
            let Some(action) = self.call.poll_action() else { break };
            self.execute(action).await;
        }
    }

    fn emit(&mut self, ev: &CallEvent) {
        if let Some(h) = &mut self.hooks.event {
            h(ev);
        }
    }

    fn report_stats(&mut self, reset: bool) {
        if let Some(media) = &self.media {
            let mut stats = media.snapshot(self.keyframe_requests);
            stats.rtt_ms = self.links.values().filter_map(|l| l.rtt_ms).max();
            stats.remote_loss_pct =
                self.links.values().filter_map(|l| l.remote_loss_pct).reduce(f64::max).map(|p| p.round().clamp(0.0, 100.0) as u8);
            self.emit(&CallEvent::SendStats(stats));
        }
        for ev in self.receiving.report(reset) {
            self.emit(&ev);
        }
    }

    async fn execute(&mut self, action: Action) {
        let now = Instant::now();
        match action {
            Action::Signal { route, command } => self.send_signal(route, command).await,
            Action::OpenPeer { peer, purpose, remote_offer } => {
                let result = self.open_peer(peer, purpose, remote_offer.as_deref()).await;
                let ev = result.map_or_else(|e| PeerEvent::Failed(e.to_string()), PeerEvent::LocalDescription);
                self.call.handle_peer(peer, ev, now);
            }
            Action::ApplyAnswer { peer, sdp } => {
                if let Some((pc, _)) = self.peers.get(&peer)
                    && let Err(e) = pc.apply_answer(&sdp).await
                {
                    self.call.handle_peer(peer, PeerEvent::Failed(format!("answer: {e}")), now);
                }
            }
            Action::RestartIce { peer } => {
                if let Some((pc, _)) = self.peers.get(&peer) {
                    log::info!("{peer}: ICE failed, restarting it");
                    let ev =
                        pc.restart_ice().await.map_or_else(|e| PeerEvent::Failed(format!("ICE restart: {e}")), PeerEvent::LocalDescription);
                    self.call.handle_peer(peer, ev, now);
                }
            }
            Action::AddCandidate { peer, candidate, sdp_mid, sdp_mline_index } => {
                if let Some((pc, _)) = self.peers.get(&peer) {
                    let _ = pc.add_remote_candidate(&candidate, sdp_mid, sdp_mline_index).await;
                }
            }
            Action::ClosePeer(peer) => self.close_peer(peer).await,
            Action::UseTurn(servers) => {
                self.publisher_config.turn =
                    servers.into_iter().map(|s| TurnServer { urls: s.urls, username: s.username, credential: s.credential }).collect();
            }
            Action::Reconnect { options } => {
                // The old session is over; the loop goes on while the new one connects.
                self.main = None;
                let (url, tx) = (self.spec.url.clone(), self.input_tx.clone());
                tokio::spawn(async move {
                    let attempt = tokio::time::timeout(blende_call::ATTEMPT_TIMEOUT, blende_signal::connect(&url, options)).await;
                    let result = match attempt {
                        Ok(connected) => connected.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer within {} s", blende_call::ATTEMPT_TIMEOUT.as_secs())),
                    };
                    let _ = tx.send(Input::Reconnected(result)).await;
                });
            }
            Action::ConnectJanus { url, options, room } => {
                let access = JanusAccess { token: Some(room.token), feed: Some(room.feed) };
                match blende_signal::janus_ws::connect_with_access(&url, options, access).await {
                    Ok(h) => self.janus = Some(h),
                    Err(e) => {
                        let ev = SignalEvent::Error { message: format!("the meeting moved to Janus: {e}"), fatal: true };
                        self.call.handle_signal(Route::Janus, ev, now);
                    }
                }
            }
            Action::StartShare { source, peer, .. } => self.start_share(source, peer).await,
            Action::ConnectShare { url, options, access } => self.connect_share(&url, options, access).await,
            Action::MoveShare { peer } => self.open_share_publisher(peer).await,
            Action::StopShare => self.stop_share().await,
            Action::SetDevice { kind, on } => {
                match self.switches.driver.set_enabled(kind, on) {
                    // Taken after the gate closed: nothing captured later is sent.
                    Ok(()) => self.emit(&CallEvent::Switch { kind: SwitchKind::Device(kind), on, at_us: clock::now_us() }),
                    Err(e) => self.emit(&CallEvent::Error { message: e.to_string(), fatal: false }),
                }
            }
            Action::AllDevicesOff => match self.switches.all_off() {
                Ok(()) => self.emit(&CallEvent::Switch { kind: SwitchKind::All, on: false, at_us: clock::now_us() }),
                Err(e) => self.emit(&CallEvent::Error { message: e, fatal: false }),
            },
            Action::ReportStats => self.report_stats(false),
            Action::SendData { peer, message } => {
                if let Err(e) = self.direct.send(peer, message) {
                    self.emit(&CallEvent::Error { message: e, fatal: false });
                }
            }
            Action::OpenDocument { doc, path } => self.direct.open(doc, path),
            Action::ForgetDocument { doc } => self.direct.forget(doc),
            Action::StreamDocument { transfer, doc, peer, id, from, size } => self.direct.stream(transfer, doc, peer, id, from, size),
            Action::StopStream { transfer } => self.direct.stop_stream(transfer),
            Action::PrepareDocument { transfer, folder, name, .. } => {
                let report = match self.direct.prepare(transfer, &folder, &name) {
                    Ok(()) => TransferReport::Prepared(transfer),
                    Err(reason) => TransferReport::Failed { transfer, reason },
                };
                self.call.handle_transfer(report, now);
            }
            Action::WriteChunk { transfer, data, offset } => self.direct.write(transfer, offset, data).await,
            Action::SaveDocument { transfer } => self.direct.save(transfer).await,
            Action::DiscardDocument { transfer } => self.direct.discard(transfer).await,
            Action::End(end) => self.end = Some(end),
            _ => {}
        }
    }

    async fn send_signal(&mut self, route: Route, command: SignalCommand) {
        let handle = match route {
            Route::Main => self.main.as_ref(),
            Route::Janus => self.janus.as_ref(),
            Route::Share => self.share_signal.as_ref(),
        };
        if let Some(h) = handle {
            // A closed session reports itself through its event channel.
            let _ = h.commands.send(command).await;
        }
    }

    /// A PeerConnection for `purpose`; its encoders join the media threads; its events come
    /// back as inputs. Returns our offer, or our answer to `remote_offer`.
    async fn open_peer(&mut self, peer: PeerId, purpose: Purpose, remote_offer: Option<&str>) -> Result<String, blende_rtc::RtcError> {
        let base = &self.publisher_config;
        let config = match &purpose {
            Purpose::Publisher | Purpose::MeshPublisher { .. } => base.clone(),
            Purpose::Share | Purpose::MeshShare { .. } => screen_config(base),
            // Data only: our offer carries the channel, an answer takes theirs.
            Purpose::Direct { .. } if remote_offer.is_none() => {
                PeerConfig { role: PeerRole::Publisher, data_channel: true, ..receive_config(base) }
            }
            Purpose::Direct { .. } | Purpose::Subscriber { .. } => receive_config(base),
        };
        // Chat and documents ride on our own mesh connection to each participant.
        let data_channel = config.data_channel || matches!(purpose, Purpose::MeshPublisher { .. }) || self.call.relays_on_server(&purpose);
        let config = PeerConfig { data_channel, ..config };
        let (pc, events) = Peer::new(config).await?;
        let sdp = match remote_offer {
            Some(offer) => pc.answer_offer(offer).await?,
            None => pc.create_offer().await?,
        };
        match &purpose {
            Purpose::Publisher | Purpose::MeshPublisher { .. } => {
                let video = if self.spec.camera { Some(pc.video_input()?) } else { None };
                let audio = if self.spec.mic { Some(pc.audio_input(1)?) } else { None };
                if let Some(media) = &self.media {
                    media.add(peer, video, audio);
                }
            }
            Purpose::Share | Purpose::MeshShare { .. } => {
                if let Some(share) = &self.share {
                    share.add(peer, pc.video_input()?);
                }
            }
            Purpose::Subscriber { feed, display } => self.receiving.add(feed, display.clone()),
            Purpose::Direct { .. } => {}
        }
        self.forward_events(peer, events);
        self.peers.insert(peer, (pc, purpose));
        Ok(sdp)
    }

    fn forward_events(&self, peer: PeerId, mut events: mpsc::Receiver<RtcEvent>) {
        let tx = self.input_tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                // Media is dropped when the loop is behind; state changes wait.
                let is_media = matches!(&ev, RtcEvent::Video { .. } | RtcEvent::Audio { .. });
                let msg = Input::Peer(peer, ev);
                let sent = if is_media { tx.try_send(msg).map_err(|_| ()) } else { tx.send(msg).await.map_err(|_| ()) };
                if sent.is_err() && tx.is_closed() {
                    break;
                }
            }
        });
    }

    async fn close_peer(&mut self, peer: PeerId) {
        self.direct.link_closed(peer);
        self.links.remove(&peer);
        let Some((pc, purpose)) = self.peers.remove(&peer) else { return };
        match &purpose {
            Purpose::Publisher | Purpose::MeshPublisher { .. } => {
                if let Some(media) = &self.media {
                    media.remove(peer);
                }
            }
            Purpose::Share | Purpose::MeshShare { .. } => {
                if let Some(share) = &self.share {
                    share.remove(peer);
                }
            }
            Purpose::Subscriber { feed, .. } => {
                // What arrived until the end counts: a final report of the feed.
                if let Some(last) = self.receiving.remove(feed) {
                    self.emit(&last);
                }
            }
            Purpose::Direct { .. } => {}
        }
        pc.close().await;
    }

    /// The share's capture (the policy decides first), then its own publisher when it has one.
    async fn start_share(&mut self, source: blende_call::ShareSource, peer: Option<PeerId>) {
        let now = Instant::now();
        let gate = self.switches.share.open();
        let tx = self.input_tx.clone();
        let report: super::share::ReportHook = Arc::new(move |r| {
            // Guard events may be dropped when the loop is behind: the state repeats. The end
            // waits.
            let ended = matches!(r, ShareReport::Ended);
            if ended {
                tx.blocking_send(Input::Share(r)).ok()
            } else {
                tx.try_send(Input::Share(r)).ok()
            };
        });
        let policy = self.spec.policy.clone();
        let preview = self.hooks.share_preview.clone();
        match ShareCapture::start(policy, source, gate, report, preview) {
            Ok(capture) => {
                self.share = Some(capture);
                self.call.handle_share(ShareReport::Started, now);
                if let Some(peer) = peer {
                    self.open_share_publisher(peer).await;
                }
            }
            Err(report) => self.call.handle_share(report, now),
        }
    }

    async fn open_share_publisher(&mut self, peer: PeerId) {
        let result = self.open_peer(peer, Purpose::Share, None).await;
        let ev = result.map_or_else(|e| PeerEvent::Failed(e.to_string()), PeerEvent::LocalDescription);
        self.call.handle_peer(peer, ev, Instant::now());
    }

    async fn connect_share(&mut self, url: &blende_policy::ServerUrl, options: JoinOptions, access: Option<JanusAccess>) {
        let connected = match access {
            Some(access) => blende_signal::janus_ws::connect_with_access(url, options, access).await,
            None => blende_signal::connect(url, options).await,
        };
        match connected {
            Ok(h) => self.share_signal = Some(h),
            Err(e) => self.call.handle_signal(Route::Share, SignalEvent::Closed { reason: e.to_string() }, Instant::now()),
        }
    }

    /// The gate first (if a switch did not close it already), then the capture, the share's
    /// PeerConnections and its session.
    async fn stop_share(&mut self) {
        self.switches.share.close();
        if let Some(capture) = self.share.take() {
            capture.stop().await;
        }
        let share_peers: Vec<PeerId> =
            self.peers.iter().filter(|(_, (_, p))| matches!(p, Purpose::Share | Purpose::MeshShare { .. })).map(|(id, _)| *id).collect();
        for peer in share_peers {
            self.close_peer(peer).await;
        }
        if let Some(signal) = self.share_signal.take() {
            let _ = signal.commands.send(SignalCommand::Leave).await;
        }
    }

    /// Devices and the share off first (privacy), then media threads, then the network.
    async fn tear_down(mut self) {
        let _ = self.switches.all_off();
        self.stop_share().await;
        if let Some(media) = self.media.take() {
            media.stop();
        }
        // Partial documents are removed before the process goes.
        self.direct.shut_down().await;
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.close_peer(peer).await;
        }
        drop(self.main);
        drop(self.janus);
        // Give the signalling tasks a moment to flush `leave`/`destroy`.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Receives only (a server's feed, or the answer to a member's data-only offer): no tracks of
/// ours, the publisher's ICE settings and certificate.
fn receive_config(base: &PeerConfig) -> PeerConfig {
    PeerConfig {
        role: PeerRole::Subscriber,
        ice_servers: base.ice_servers.clone(),
        turn: base.turn.clone(),
        relay_only: base.relay_only,
        ice_bind_ip: base.ice_bind_ip,
        certificate: base.certificate.clone(),
        video: None,
        audio: false,
        ..PeerConfig::default()
    }
}

/// A shared window's publisher: one VP8 track in screen-content mode on the fixed canvas.
fn screen_config(base: &PeerConfig) -> PeerConfig {
    PeerConfig {
        role: PeerRole::Publisher,
        video: Some(CANVAS),
        video_content: ContentKind::Screen,
        audio: false,
        initial_bitrate_bps: PeerConfig::default().initial_bitrate_bps,
        ..base.clone()
    }
}

/// Unix time now, in µs.
#[must_use]
pub fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
