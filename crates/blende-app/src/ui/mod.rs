//! The egui app: join screen, call screen with the kill-switch bar, the safe share picker.
//!
//! The UI never blocks: devices run on the driver's threads, window listing on a worker
//! thread; results come back over bounded channels that the UI drains each frame, and the
//! workers request repaints.

mod demo;
mod direct;
mod frames;
mod hotkeys;
pub mod i18n;
mod live;
mod picker;
mod settings;
mod share;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use blende_call::{CallEvent, LobbyState, Refusal, Role, ShareState};

use blende_call::RoomAction;
use blende_devices::{DeviceInfo, MediaKind, enumerate};
use blende_media::kill_switch::{DeviceKind, DeviceState};
use blende_policy::{Category, Policy, ServerUrl, Verdict};
use blende_signal::JoinOptions;
use blende_windows::JudgedWindow;
use blende_windows::share::thumbnail;
use eframe::egui;

use crate::config::load_policy;
use crate::engine::{CallCommand, CallSpec, Switches};
pub use demo::Demo;
use frames::{LatestFrame, bgra_image};
pub use i18n::{I18n, Language};
pub use live::{Devices, LiveCall, looks_like_loudspeakers};

/// How the app starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub language: Language,
    /// Go straight into the local demo meeting (the embedded default).
    pub start_in_demo: bool,
    pub policy: Policy,
    /// Join this call right away (`blende join` without `--headless`).
    pub autojoin: Option<AutoJoin>,
    /// When the process started: `t_ms` of printed events and "first frame drawn" count from here.
    pub started: Instant,
    /// The user's settings file (personal block rules); `None`: none can be added.
    pub user_settings: Option<std::path::PathBuf>,
    /// The administrator's policy file when not the system one (`--policy`), for reloading.
    pub admin_policy: Option<std::path::PathBuf>,
    /// Where remembered meeting passwords live (the OS keychain).
    pub secrets: std::sync::Arc<dyn crate::secrets::SecretStore>,
}

/// A call to join at start, and whether to print its events (JOIN.md) on stdout.
#[derive(Clone, Debug)]
pub struct AutoJoin {
    pub spec: CallSpec,
    pub devices: Devices,
    pub print_events: bool,
}

impl AppOptions {
    pub fn from_system() -> Self {
        let policy = load_policy(None);
        // With no server configured there is nothing to join: show the demo right away.
        let start_in_demo = policy.servers().known.is_empty();
        AppOptions {
            language: Language::from_system(),
            start_in_demo,
            policy,
            autojoin: None,
            started: Instant::now(),
            user_settings: crate::config::user_settings_path(),
            admin_policy: None,
            secrets: std::sync::Arc::new(crate::secrets::OsKeychain),
        }
    }
}

/// Opens the app window with the system's settings.
///
/// # Errors
/// No window could be opened.
pub fn run() -> anyhow::Result<std::process::ExitCode> {
    run_with(AppOptions::from_system())
}

/// Opens the app window.
///
/// # Errors
/// No window could be opened.
pub fn run_with(app_options: AppOptions) -> anyhow::Result<std::process::ExitCode> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("Blende").with_inner_size([1100.0, 720.0]).with_app_id("blende"),
        ..Default::default()
    };
    eframe::run_native("Blende", options, Box::new(move |cc| Ok(Box::new(BlendeApp::new(&cc.egui_ctx, app_options)))))
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(std::process::ExitCode::SUCCESS)
}

const DEMO_SERVER: &str = "demo";
/// The demo participant's feed: its picture's slot and its tile.
const DEMO_FEED: &str = "demo";

/// What a click in the kill-switch bar does, run once the bar is drawn.
type BarAction = Box<dyn FnOnce(&mut BlendeApp)>;

struct JoinForm {
    server: String,
    meeting_id: String,
    password: String,
    name: String,
    /// Blende room servers: a moderator's token (enters without password and lobby).
    moderator_token: String,
    devices: Vec<DeviceInfo>,
    camera_id: String,
    microphone_id: String,
    speaker_id: String,
    message: Option<String>,
    /// The device check (camera preview and mic level), while the user runs it.
    check: Option<Demo>,
    check_texture: Option<(u64, egui::TextureHandle)>,
    /// Keep the typed password in the OS keychain for this server and meeting.
    remember: bool,
    /// The keychain worker's answer for the join under way: (password, warning).
    pending: Option<Receiver<(Option<String>, Option<String>)>>,
}

/// What runs the call: the local demo or a real server.
enum Engine {
    Demo(Demo),
    Live(LiveCall),
}

impl Engine {
    fn set_enabled(&self, kind: DeviceKind, on: bool) -> Result<(), String> {
        match self {
            Engine::Demo(d) => d.set_enabled(kind, on).map_err(|e| e.to_string()),
            Engine::Live(l) => l.set_enabled(kind, on),
        }
    }

    fn all_off(&self) -> Result<(), String> {
        match self {
            Engine::Demo(d) => d.all_off().map_err(|e| e.to_string()),
            Engine::Live(l) => l.all_off(),
        }
    }

    fn mic_level_dbfs(&self) -> f32 {
        match self {
            Engine::Demo(d) => d.mic_level_dbfs(),
            Engine::Live(l) => l.mic_level_dbfs(),
        }
    }

    /// The switches the global shortcuts flip.
    fn hotkey_target(&self) -> Option<hotkeys::Target> {
        match self {
            Engine::Demo(d) => d.driver().map(|driver| hotkeys::Target::Local(Switches::new(driver))),
            Engine::Live(l) => Some(hotkeys::Target::Call(l.control.clone())),
        }
    }
}

/// Where a live call stands, from the engine's events.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CallStatus {
    Connecting,
    Joined,
    /// The session was lost; this attempt to come back runs.
    Reconnecting(u32),
    Ended(String),
}

struct Call {
    /// Dropped before `engine`: the shortcuts' thread holds the driver.
    hotkeys: Result<hotkeys::GlobalSwitches, String>,
    /// The switches the shortcuts flip (the share's gate among them).
    switches: Option<Switches>,
    /// Set by the share shortcut when nothing is shared: open the picker.
    picker_request: Arc<AtomicBool>,
    engine: Engine,
    states: [DeviceState; 3],
    /// Tile key → (picture counter, texture), updated in place.
    textures: HashMap<String, (u64, egui::TextureHandle)>,
    status: CallStatus,
    /// Feeds whose first picture was drawn (reported once each when events are printed).
    drawn: std::collections::HashSet<String>,
    print_events: bool,
    sharing: Option<Sharing>,
    /// Blende rooms: we wait in the lobby.
    lobby: bool,
    /// Blende rooms, moderators: who waits (id, name).
    waiting: Vec<(String, String)>,
    /// Blende rooms: each participant's role by id.
    roles: HashMap<String, Role>,
    /// Blende rooms: each participant's camera and microphone, as they report them.
    remote_devices: HashMap<String, (bool, bool)>,
    /// Whose hands are up (ours included), as the room server reports them.
    hands: HashSet<String>,
    /// How each feed's connection is doing, from its statistics.
    quality: HashMap<String, (blende_call::QualityMeter, Option<blende_call::Quality>)>,
    /// Blende rooms: id of our own participant.
    me: Option<String>,
    /// Chat, documents and identity codes.
    direct: direct::DirectView,
    /// Display names by participant id, as the server reported them (also of those who send
    /// no picture).
    names: HashMap<String, String>,
}

/// What the settings window (`settings`, an extension of the app) keeps between frames.
#[derive(Debug, Default)]
struct SettingsState {
    open: bool,
    kind: RuleKind,
    value: String,
    reason: String,
    message: Option<Result<String, String>>,
}

/// Which kind of personal block rule the settings window adds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    #[default]
    TitleContains,
    App,
    Site,
}

/// The i18n key of a role's name.
fn role_key(role: Role) -> &'static str {
    match role {
        Role::Moderator => "role-moderator",
        Role::Presenter => "role-presenter",
        Role::Participant => "role-participant",
    }
}

/// The meeting-wide buttons a moderator has, with their i18n keys.
const MODERATOR_ACTIONS: [(&str, RoomAction); 5] = [
    ("mod-lock", RoomAction::Lock),
    ("mod-unlock", RoomAction::Unlock),
    ("mod-chat-off", RoomAction::ChatOff),
    ("mod-chat-on", RoomAction::ChatOn),
    ("mod-end", RoomAction::End),
];

/// Key of our own picture among the tiles.
const LOCAL_TILE: &str = "local";

/// A running share: what it is, the guard's state, the guarded picture.
struct Sharing {
    name: String,
    /// The demo's local share pipeline; in a live call the engine runs it.
    session: Option<share::ShareSession>,
    /// The guarded picture as it goes to the encoder.
    frame: LatestFrame,
    paused: Option<blende_guard::PauseReason>,
    texture: Option<(u64, egui::TextureHandle)>,
}

impl Call {
    /// Stops the share at once: its gate closes here; a live engine gets `ShareStop`.
    fn stop_sharing(&mut self) {
        if self.sharing.take().is_some() {
            match &self.engine {
                Engine::Live(live) => {
                    let _ = live.command(CallCommand::ShareStop);
                }
                Engine::Demo(_) => {
                    if let Some(s) = &self.switches {
                        s.share.close();
                    }
                }
            }
        }
    }

    /// One typed event of a live call: what the screen shows changes here.
    fn apply_event(&mut self, feeds: &live::Feeds, ev: CallEvent, i18n: &I18n) -> Option<String> {
        self.direct.apply(&ev);
        match ev {
            CallEvent::Joined { participant_id, participants } => {
                self.status = CallStatus::Joined;
                self.me = Some(participant_id);
                self.names.extend(participants.into_iter().filter_map(|p| Some((p.id, p.display?))));
            }
            CallEvent::Lobby { state } => self.lobby = state == LobbyState::Waiting,
            CallEvent::Waiting { participants } => {
                self.waiting = participants.into_iter().map(|p| (p.id, p.display.unwrap_or_default())).collect();
            }
            CallEvent::Role { participant, role } => {
                self.roles.insert(participant, role);
            }
            CallEvent::RemoteDevices { participant, camera, microphone, .. } => {
                self.remote_devices.insert(participant, (camera, microphone));
            }
            CallEvent::Hand { participant, raised: true } => {
                self.hands.insert(participant);
            }
            CallEvent::Hand { participant, raised: false } => {
                self.hands.remove(&participant);
            }
            CallEvent::Reconnecting { attempt, .. } => {
                self.status = CallStatus::Reconnecting(attempt);
                // The old session's feeds are gone; the new one brings new ids.
                if let Ok(mut feeds) = feeds.lock() {
                    feeds.clear();
                }
                self.quality.clear();
            }
            CallEvent::Reconnected => self.status = CallStatus::Joined,
            CallEvent::FeedStats(s) => {
                let (meter, quality) = self.quality.entry(s.feed.clone()).or_default();
                *quality = meter.update(&s);
            }
            CallEvent::Left { reason } => self.status = CallStatus::Ended(reason),
            CallEvent::Error { message, fatal: true } => self.status = CallStatus::Ended(message),
            CallEvent::Error { message, fatal: false } => return Some(message),
            CallEvent::Share(state) => return self.share_event(state, i18n),
            CallEvent::ParticipantLeft { id } => {
                if let Ok(mut feeds) = feeds.lock() {
                    feeds.remove(&id);
                }
                self.quality.remove(&id);
            }
            CallEvent::ParticipantJoined(p) => {
                if let Some(d) = &p.display {
                    self.names.insert(p.id.clone(), d.clone());
                }
                if let Ok(mut feeds) = feeds.lock() {
                    feeds.entry(p.id).or_default().display = p.display;
                }
            }
            _ => {}
        }
        None
    }

    /// The share's state as the engine reports it; a message for the user when it ended
    /// other than by their own hand.
    fn share_event(&mut self, state: ShareState, i18n: &I18n) -> Option<String> {
        match state {
            ShareState::Guard(blende_guard::GuardEvent::Paused { reason, .. }) => {
                if let Some(sh) = &mut self.sharing {
                    sh.paused = Some(reason);
                }
            }
            ShareState::Guard(blende_guard::GuardEvent::Resumed { .. }) => {
                if let Some(sh) = &mut self.sharing {
                    sh.paused = None;
                }
            }
            ShareState::Refused { by, reason } => {
                self.sharing = None;
                return Some(match by {
                    Refusal::Role => i18n.t("share-refused-role"),
                    Refusal::Policy => i18n.t1("share-refused-policy", "reason", &reason),
                    _ => i18n.t1("share-refused", "reason", &reason),
                });
            }
            ShareState::Stopped { reason } => {
                self.sharing = None;
                return reason;
            }
            ShareState::Ended => self.sharing = None,
            _ => {}
        }
        None
    }
}

/// What the call is doing, unless it simply runs.
/// What a tile says under its picture: name, role, what they switched off, and a weak
/// connection (with the colour it is shown in).
fn tile_label(call: &Call, id: Option<&str>, name: &str, i18n: &I18n) -> (String, Option<egui::Color32>) {
    let mut label = match id.and_then(|id| call.roles.get(id)) {
        Some(r) => format!("{name} ({})", i18n.t(role_key(*r))),
        None => name.to_owned(),
    };
    // What they switched off themselves, as their client reports it.
    if let Some((camera, mic)) = id.and_then(|id| call.remote_devices.get(id)) {
        for (on, key) in [(*camera, "tile-camera-off"), (*mic, "tile-mic-off")] {
            if !on {
                label.push_str(" · ");
                label.push_str(&i18n.t(key));
            }
        }
    }
    if id.is_some_and(|id| call.hands.contains(id)) {
        label.push_str(" · ");
        label.push_str(&i18n.t("tile-hand-raised"));
    }
    // A weak connection is named on the tile (and read out with it).
    let weak = match id.and_then(|id| call.quality.get(id)).and_then(|(_, q)| *q) {
        Some(blende_call::Quality::Fair) => Some(("tile-connection-fair", egui::Color32::from_rgb(190, 120, 0))),
        Some(blende_call::Quality::Poor) => Some(("tile-connection-poor", egui::Color32::from_rgb(200, 40, 40))),
        _ => None,
    };
    match weak {
        Some((key, colour)) => {
            label.push_str(" · ");
            label.push_str(&i18n.t(key));
            (label, Some(colour))
        }
        None => (label, None),
    }
}

fn status_line(ui: &mut egui::Ui, status: &CallStatus, i18n: &I18n) {
    match status {
        CallStatus::Connecting => {
            ui.label(i18n.t("call-connecting"));
        }
        CallStatus::Reconnecting(attempt) => {
            ui.colored_label(egui::Color32::from_rgb(200, 60, 0), i18n.t1("call-reconnecting", "attempt", &attempt.to_string()));
        }
        CallStatus::Ended(reason) => {
            ui.colored_label(egui::Color32::RED, i18n.t1("call-ended", "reason", reason));
        }
        CallStatus::Joined => {}
    }
}

struct Picker {
    rx: Receiver<Result<Vec<JudgedWindow>, String>>,
    windows: Option<Result<Vec<JudgedWindow>, String>>,
    thumbs_rx: Receiver<(u32, egui::ColorImage)>,
    thumbs: std::collections::HashMap<u32, egui::TextureHandle>,
}

const THUMB_WIDTH: u32 = 160;

#[allow(missing_debug_implementations)] // holds egui textures and Fluent bundles
pub struct BlendeApp {
    i18n: I18n,
    policy: Policy,
    started: Instant,
    settings: SettingsState,
    user_settings: Option<std::path::PathBuf>,
    admin_policy: Option<std::path::PathBuf>,
    secrets: std::sync::Arc<dyn crate::secrets::SecretStore>,
    join: JoinForm,
    call: Option<Call>,
    picker: Option<Picker>,
    /// The share shortcut asked for the picker (nothing was shared).
    picker_requested: bool,
    error: Option<String>,
}

impl BlendeApp {
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Self {
        let devices = enumerate();
        let first = |kind: MediaKind| devices.iter().find(|d| d.kind == kind).map(|d| d.id.clone()).unwrap_or_default();
        let join = JoinForm {
            server: DEMO_SERVER.to_owned(),
            meeting_id: String::new(),
            password: String::new(),
            name: String::new(),
            moderator_token: String::new(),
            camera_id: first(MediaKind::Camera),
            microphone_id: first(MediaKind::Microphone),
            speaker_id: first(MediaKind::Speaker),
            devices,
            message: None,
            check: None,
            check_texture: None,
            remember: false,
            pending: None,
        };
        let mut app = BlendeApp {
            i18n: I18n::new(options.language),
            policy: options.policy,
            started: options.started,
            settings: SettingsState::default(),
            user_settings: options.user_settings,
            admin_policy: options.admin_policy,
            secrets: options.secrets,
            join,
            call: None,
            picker: None,
            picker_requested: false,
            error: None,
        };
        if let Some(auto) = options.autojoin {
            app.start_live(ctx, auto.spec, &auto.devices, auto.print_events);
        } else if options.start_in_demo {
            app.start_demo(ctx);
        }
        app
    }

    fn enter_call(&mut self, ctx: &egui::Context, engine: Engine, status: CallStatus, print_events: bool) {
        let off = DeviceState::Off;
        let picker_request = Arc::new(AtomicBool::new(false));
        let target = engine.hotkey_target();
        let switches = target.as_ref().map(|t| match t {
            hotkeys::Target::Local(s) => s.clone(),
            hotkeys::Target::Call(c) => c.switches.clone(),
        });
        let hotkeys = match target {
            Some(t) => hotkeys::GlobalSwitches::start(self.policy.hotkeys(), t, Arc::clone(&picker_request), ctx.clone()),
            None => Err("device driver stopped".into()),
        };
        self.call = Some(Call {
            hotkeys,
            switches,
            picker_request,
            engine,
            states: [off.clone(), off.clone(), off],
            textures: HashMap::new(),
            status,
            drawn: std::collections::HashSet::new(),
            print_events,
            sharing: None,
            lobby: false,
            waiting: Vec::new(),
            roles: HashMap::new(),
            remote_devices: HashMap::new(),
            hands: HashSet::new(),
            quality: HashMap::new(),
            me: None,
            direct: direct::DirectView::new(Instant::now()),
            names: HashMap::new(),
        });
    }

    fn start_demo(&mut self, ctx: &egui::Context) {
        match Demo::start(ctx, &self.join.camera_id, &self.join.microphone_id) {
            Ok(demo) => self.enter_call(ctx, Engine::Demo(demo), CallStatus::Joined, false),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn start_live(&mut self, ctx: &egui::Context, spec: CallSpec, devices: &Devices, print_events: bool) {
        match LiveCall::start(ctx, spec, devices, self.started, print_events) {
            Ok(live) => self.enter_call(ctx, Engine::Live(live), CallStatus::Connecting, print_events),
            Err(e) => self.error = Some(e),
        }
    }

    /// The join form's server, checked against the policy, as a call to start.
    fn spec_from_form(&self, password: Option<String>) -> Result<CallSpec, String> {
        let url = ServerUrl::parse(self.join.server.trim()).map_err(|e| e.to_string())?;
        self.policy.servers().check(&url)?;
        let room = self.join.meeting_id.trim();
        Ok(CallSpec {
            url,
            join: JoinOptions {
                room: (!room.is_empty()).then(|| room.to_owned()),
                password,
                display_name: if self.join.name.trim().is_empty() { "Blende".to_owned() } else { self.join.name.trim().to_owned() },
                moderator_token: (!self.join.moderator_token.trim().is_empty()).then(|| self.join.moderator_token.trim().to_owned()),
                resume: None,
            },
            camera: !self.join.camera_id.is_empty(),
            mic: !self.join.microphone_id.is_empty(),
            ice_servers: self.policy.servers().ice_servers.clone(),
            ice_ip: None,
            width: 640,
            height: 360,
            bitrate_bps: 800_000,
            congestion_control: true,
            stats_interval_ms: 1000,
            policy: self.policy.clone(),
            share: None,
        })
    }

    fn state_text(&self, state: &DeviceState) -> String {
        match state {
            DeviceState::Off => self.i18n.t("state-off"),
            DeviceState::Opening => self.i18n.t("state-opening"),
            DeviceState::On => self.i18n.t("state-on"),
            DeviceState::Closing => self.i18n.t("state-closing"),
            DeviceState::Failed(reason) => self.i18n.t1("state-failed", "reason", reason),
            other => format!("{other:?}"),
        }
    }

    fn pause_text(&self, reason: &blende_guard::PauseReason) -> String {
        match reason {
            blende_guard::PauseReason::Blocked { category, .. } => self.category_text(*category),
            other => self.i18n.t(&format!("pause-{}", other.as_str())),
        }
    }

    fn category_text(&self, category: Category) -> String {
        self.i18n.t(&format!("category-{}", category.as_str()))
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.i18n.t("app-title"));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                for lang in [Language::English, Language::German] {
                    if ui.selectable_label(self.i18n.language() == lang, lang.native_name()).clicked() {
                        self.i18n = I18n::new(lang);
                    }
                }
                ui.label(self.i18n.t("settings-language"));
                if ui.button(self.i18n.t("settings-button")).clicked() {
                    self.settings.open = !self.settings.open;
                }
            });
        });
        if let Some(e) = self.policy.failure() {
            ui.colored_label(egui::Color32::RED, self.i18n.t1("policy-broken", "error", &e.to_string()));
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        ui.separator();
    }

    /// Camera preview and microphone level before joining. Devices open only on request and
    /// close again with "Stop test" or on joining.
    fn device_check(&mut self, ui: &mut egui::Ui) {
        let running = self.join.check.is_some();
        let label = if running { self.i18n.t("check-stop") } else { self.i18n.t("check-start") };
        if ui.button(label).clicked() {
            if running {
                self.join.check = None;
                self.join.check_texture = None;
            } else {
                match Demo::device_check(ui.ctx(), &self.join.camera_id, &self.join.microphone_id) {
                    Ok(check) => self.join.check = Some(check),
                    Err(e) => self.join.message = Some(e.to_string()),
                }
            }
        }
        let Some(check) = &self.join.check else { return };
        let latest = check.local.lock().ok().and_then(|s| s.clone());
        match (latest, &mut self.join.check_texture) {
            (Some((n, img)), Some((seen, tex))) if *seen != n => {
                tex.set(img, egui::TextureOptions::LINEAR);
                *seen = n;
            }
            (Some((n, img)), None) => {
                self.join.check_texture = Some((n, ui.ctx().load_texture("check", img, egui::TextureOptions::LINEAR)))
            }
            _ => {}
        }
        ui.horizontal(|ui| {
            if let Some((_, tex)) = &self.join.check_texture {
                ui.add(egui::Image::new(tex).max_size(egui::vec2(240.0, 135.0))).on_hover_text(self.i18n.t("check-preview"));
            }
            ui.vertical(|ui| {
                let level = check.mic_level_dbfs();
                ui.label(self.i18n.t1("check-level", "dbfs", &format!("{level:.0}")));
                ui.add(egui::ProgressBar::new(((level + 60.0) / 60.0).clamp(0.0, 1.0)).desired_width(160.0));
            });
        });
    }

    /// Camera, microphone and speaker choice (join screen and settings).
    fn device_choices(&mut self, ui: &mut egui::Ui) {
        let t = |k: &str| self.i18n.t(k);
        egui::Grid::new(ui.next_auto_id()).num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            for (key, kind) in
                [("join-camera", MediaKind::Camera), ("join-microphone", MediaKind::Microphone), ("join-speaker", MediaKind::Speaker)]
            {
                let label = ui.label(t(key));
                let slot = match kind {
                    MediaKind::Camera => &mut self.join.camera_id,
                    MediaKind::Microphone => &mut self.join.microphone_id,
                    _ => &mut self.join.speaker_id,
                };
                let current = self.join.devices.iter().find(|d| &d.id == slot).map_or_else(String::new, |d| d.name.clone());
                egui::ComboBox::from_id_salt((ui.scope_id(), key))
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        for d in self.join.devices.iter().filter(|d| d.kind == kind) {
                            ui.selectable_value(slot, d.id.clone(), &d.name);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
            }
        });
    }

    fn join_screen(&mut self, ui: &mut egui::Ui) {
        let t = |k: &str| self.i18n.t(k);
        ui.heading(t("join-heading"));
        let servers: Vec<String> = self.policy.servers().known.iter().map(ToString::to_string).collect();
        egui::Grid::new("join").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            let label = ui.label(t("join-server"));
            let demo_label = t("join-server-demo");
            let shown = if self.join.server == DEMO_SERVER { demo_label.clone() } else { self.join.server.clone() };
            egui::ComboBox::from_id_salt("server")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.join.server, DEMO_SERVER.to_owned(), demo_label);
                    for s in &servers {
                        ui.selectable_value(&mut self.join.server, s.clone(), s);
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            for (key, value, password) in [
                ("join-meeting-id", &mut self.join.meeting_id, false),
                ("join-password", &mut self.join.password, true),
                ("join-name", &mut self.join.name, false),
                ("join-moderator-token", &mut self.join.moderator_token, true),
            ] {
                let label = ui.label(t(key));
                ui.add(egui::TextEdit::singleline(value).password(password)).labelled_by(label.id);
                ui.end_row();
            }
        });
        ui.checkbox(&mut self.join.remember, self.i18n.t("join-remember"));
        self.device_choices(ui);
        self.device_check(ui);
        let t = |k: &str| self.i18n.t(k);
        ui.small(t("join-password-hint"));
        let speaker_name =
            self.join.devices.iter().find(|d| d.kind == MediaKind::Speaker && d.id == self.join.speaker_id).map(|d| d.name.clone());
        if speaker_name.as_deref().is_some_and(looks_like_loudspeakers) {
            ui.label(t("join-headset-hint"));
        }
        if let Some(m) = &self.join.message {
            ui.colored_label(egui::Color32::from_rgb(190, 120, 0), m);
        }
        if ui.button(t("join-button")).clicked() {
            // The call opens the devices itself: the check releases them first.
            self.join.check = None;
            self.join.check_texture = None;
            if self.join.server == DEMO_SERVER {
                self.start_demo(ui.ctx());
            } else {
                self.ask_keychain(ui.ctx());
            }
        }
        // The keychain answered: join with what it gave.
        let answer = self.join.pending.as_ref().and_then(|rx| rx.try_recv().ok());
        if let Some((password, warning)) = answer {
            self.join.pending = None;
            if let Some(w) = warning {
                self.error = Some(self.i18n.t1("keychain-unavailable", "reason", &w));
            }
            match self.spec_from_form(password) {
                Ok(spec) => {
                    let devices = Devices {
                        camera_id: self.join.camera_id.clone(),
                        microphone_id: self.join.microphone_id.clone(),
                        speaker_id: (!self.join.speaker_id.is_empty()).then(|| self.join.speaker_id.clone()),
                        synthetic_size: None,
                    };
                    self.start_live(ui.ctx(), spec, &devices, false);
                }
                Err(e) => self.join.message = Some(e),
            }
        } else if self.join.pending.is_some() {
            ui.label(self.i18n.t("call-connecting"));
        }
    }

    /// The keychain (a D-Bus call) on a worker: the UI never waits for it.
    fn ask_keychain(&mut self, ctx: &egui::Context) {
        let key = crate::secrets::meeting_key(&self.join.server, &self.join.meeting_id);
        let (store, typed, remember, ctx) = (Arc::clone(&self.secrets), self.join.password.clone(), self.join.remember, ctx.clone());
        let (tx, rx) = sync_channel(1);
        let spawned = std::thread::Builder::new().name("blende-keychain".into()).spawn(move || {
            let _ = tx.send(crate::secrets::password_for_join(&*store, &key, &typed, remember));
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.join.pending = Some(rx),
            Err(e) => self.join.message = Some(e.to_string()),
        }
    }

    /// Takes what the engine and the devices reported since the last frame: states, events,
    /// pictures into textures (updated in place), the share's state.
    fn update_call(&mut self, ctx: &egui::Context) {
        let Some(call) = &mut self.call else { return };
        let mut slots: Vec<(String, LatestFrame)> = Vec::new();
        let mut messages: Vec<String> = Vec::new();
        let (mut live_events, mut live_feeds) = (Vec::new(), None);
        match &call.engine {
            Engine::Demo(demo) => {
                while let Ok(u) = demo.updates.try_recv() {
                    let i = match u.kind {
                        DeviceKind::Camera => 0,
                        DeviceKind::Microphone => 1,
                        DeviceKind::ScreenShare => 2,
                    };
                    call.states[i] = u.state;
                }
                slots.push((LOCAL_TILE.to_owned(), demo.local.clone()));
                slots.push((DEMO_FEED.to_owned(), demo.remote.clone()));
            }
            Engine::Live(live) => {
                live_events.extend(live.events.try_iter());
                live_feeds = Some(live.feeds.clone());
                // The engine thread ended without a `left` before it (e.g. no connection).
                let ended = live.ended.lock().ok().and_then(|e| e.clone());
                if let Some(end) = ended
                    && !matches!(call.status, CallStatus::Ended(_))
                {
                    call.status = CallStatus::Ended(end.message.unwrap_or_default());
                }
                if let Some(why) = live.speaker_error.lock().ok().and_then(|mut e| e.take()) {
                    messages.push(self.i18n.t1("speaker-unavailable", "reason", &why));
                }
                // The driver's real state, not what we asked for.
                let driver = live.driver();
                call.states =
                    [driver.state(DeviceKind::Camera), driver.state(DeviceKind::Microphone), driver.state(DeviceKind::ScreenShare)];
                slots.push((LOCAL_TILE.to_owned(), live.local.clone()));
                if let Ok(feeds) = live.feeds.lock() {
                    slots.extend(feeds.iter().map(|(id, f)| (id.clone(), f.picture.clone())));
                }
            }
        }
        for (key, slot) in &slots {
            let latest = slot.lock().ok().and_then(|s| s.clone());
            match latest {
                None => {
                    call.textures.remove(key);
                }
                Some((n, img)) => match call.textures.get_mut(key) {
                    Some((seen, t)) if *seen != n => {
                        t.set(img, egui::TextureOptions::LINEAR);
                        *seen = n;
                    }
                    Some(_) => {}
                    None => {
                        call.textures.insert(key.clone(), (n, ctx.load_texture(key.as_str(), img, egui::TextureOptions::LINEAR)));
                    }
                },
            }
        }
        call.textures.retain(|k, _| slots.iter().any(|(key, _)| key == k));
        if let Some(feeds) = &live_feeds {
            for ev in live_events {
                messages.extend(call.apply_event(feeds, ev, &self.i18n));
            }
        }
        if let Some(message) = messages.pop() {
            self.error = Some(message);
        }
        // A shortcut switched the share off while the window was hidden.
        if call.switches.as_ref().is_some_and(|s| !s.share.is_open()) && matches!(call.engine, Engine::Demo(_)) {
            call.sharing = None;
        }
        if call.picker_request.swap(false, Ordering::Relaxed) && call.sharing.is_none() {
            self.picker_requested = true;
        }
        if let Some(sh) = &mut call.sharing {
            if let Some(session) = &sh.session {
                while let Ok(status) = session.status.try_recv() {
                    sh.paused = status;
                }
            }
            let latest = sh.frame.lock().ok().and_then(|s| s.clone());
            if let Some((n, img)) = latest {
                match &mut sh.texture {
                    Some((seen, t)) if *seen != n => {
                        t.set(img, egui::TextureOptions::LINEAR);
                        *seen = n;
                    }
                    Some(_) => {}
                    None => sh.texture = Some((n, ctx.load_texture("shared", img, egui::TextureOptions::LINEAR))),
                }
            }
        }
    }

    fn call_screen(&mut self, ui: &mut egui::Ui) {
        let started = self.started;
        self.update_call(ui.ctx());
        self.kill_switch_bar(ui);
        self.direct_panel(ui);
        let Some(call) = &self.call else { return };
        if let Err(e) = &call.hotkeys {
            ui.colored_label(egui::Color32::from_rgb(190, 120, 0), self.i18n.t1("hotkeys-unavailable", "reason", e));
        }
        ui.separator();
        if let Some(shared) = &call.sharing {
            let banner = match &shared.paused {
                Some(reason) => self.i18n.t1("sharing-paused", "reason", &self.pause_text(reason)),
                None => self.i18n.t1("sharing-banner", "window", &shared.name),
            };
            ui.colored_label(egui::Color32::from_rgb(200, 60, 0), banner);
            if let Some((_, t)) = &shared.texture {
                ui.add(egui::Image::new(t).max_size(egui::vec2(960.0, 540.0)));
            }
        }
        status_line(ui, &call.status, &self.i18n);
        let mut tiles = vec![(None, self.i18n.t("call-you"), call.textures.get(LOCAL_TILE).map(|(_, t)| t.clone()))];
        match &call.engine {
            Engine::Demo(_) => tiles.push((
                Some(DEMO_FEED.to_owned()),
                self.i18n.t("call-demo-participant"),
                call.textures.get(DEMO_FEED).map(|(_, t)| t.clone()),
            )),
            Engine::Live(live) => {
                if let Ok(feeds) = live.feeds.lock() {
                    for (id, feed) in feeds.iter() {
                        let name = feed.display.clone().unwrap_or_else(|| id.clone());
                        tiles.push((Some(id.clone()), name, call.textures.get(id).map(|(_, t)| t.clone())));
                    }
                }
            }
        }
        let moderator = call.me.as_ref().and_then(|me| call.roles.get(me)).is_some_and(|r| *r == Role::Moderator);
        let mut room_actions: Vec<RoomAction> = Vec::new();
        if call.lobby {
            ui.heading(self.i18n.t("lobby-waiting"));
        }
        if moderator {
            ui.horizontal(|ui| {
                ui.label(self.i18n.t("mod-heading"));
                for (key, action) in MODERATOR_ACTIONS {
                    if ui.button(self.i18n.t(key)).clicked() {
                        room_actions.push(action);
                    }
                }
            });
            for (id, name) in &call.waiting {
                ui.horizontal(|ui| {
                    ui.label(self.i18n.t1("lobby-someone-waits", "name", name));
                    // A self-chosen name is all there is before admission.
                    ui.label(self.i18n.t("lobby-identity-later"));
                    if ui.button(self.i18n.t1("lobby-admit", "name", name)).clicked() {
                        room_actions.push(RoomAction::Admit(id.clone()));
                    }
                    if ui.button(self.i18n.t1("lobby-deny", "name", name)).clicked() {
                        room_actions.push(RoomAction::Deny(id.clone()));
                    }
                });
            }
        }
        let newly_drawn: Vec<String> = call.textures.keys().filter(|k| !call.drawn.contains(*k)).cloned().collect();
        ui.horizontal_wrapped(|ui| {
            for (id, name, tex) in tiles {
                ui.vertical(|ui| {
                    let size = egui::vec2(480.0, 270.0);
                    match tex {
                        Some(t) => {
                            // Keep the sender's aspect ratio (4:3 cameras in a 16:9 tile).
                            ui.add_sized(size, egui::Image::new(&t).maintain_aspect_ratio(true).max_size(size)).on_hover_text(&name);
                        }
                        None => {
                            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
                            ui.painter().rect_filled(rect, 4.0, egui::Color32::from_gray(30));
                            ui.painter().text(
                                rect.center(),
                                egui::Align2::CENTER_CENTER,
                                self.i18n.t("call-camera-off"),
                                egui::FontId::proportional(18.0),
                                egui::Color32::GRAY,
                            );
                        }
                    }
                    match tile_label(call, id.as_deref(), &name, &self.i18n) {
                        (label, Some(colour)) => ui.colored_label(colour, label),
                        (label, None) => ui.label(label),
                    };
                    if let (true, Some(id)) = (moderator, &id) {
                        ui.horizontal(|ui| {
                            let presenter = call.roles.get(id).is_some_and(|r| *r == Role::Presenter);
                            let (key, action) = if presenter {
                                ("mod-presenter-off", RoomAction::RevokePresenter(id.clone()))
                            } else {
                                ("mod-presenter-on", RoomAction::GrantPresenter(id.clone()))
                            };
                            if ui.button(self.i18n.t1(key, "name", &name)).clicked() {
                                room_actions.push(action);
                            }
                            if ui.button(self.i18n.t1("mod-remove", "name", &name)).clicked() {
                                room_actions.push(RoomAction::Remove(id.clone()));
                            }
                            if call.hands.contains(id) && ui.button(self.i18n.t1("mod-lower-hand", "name", &name)).clicked() {
                                room_actions.push(RoomAction::LowerHand(id.clone()));
                            }
                        });
                    }
                });
            }
        });
        if let Engine::Live(live) = &call.engine {
            for action in room_actions {
                if let Err(e) = live.command(CallCommand::Room(action)) {
                    self.error = Some(e);
                }
            }
        }
        ui.separator();
        // Blende rooms (the ones that tell roles) take a raised hand.
        if let (Some(me), Engine::Live(live)) = (call.me.as_ref().filter(|me| call.roles.contains_key(*me)), &call.engine) {
            let raised = call.hands.contains(me);
            let key = if raised { "call-lower-hand" } else { "call-raise-hand" };
            if ui.button(self.i18n.t(key)).clicked()
                && let Err(e) = live.command(CallCommand::Room(RoomAction::RaiseHand(!raised)))
            {
                self.error = Some(e);
            }
        }
        if ui.button(self.i18n.t("call-leave")).clicked() {
            self.call = None;
            self.picker = None;
            return;
        }
        // Pictures uploaded this frame are drawn this frame: report each feed's first one.
        if let Some(call) = &mut self.call {
            for key in newly_drawn {
                if call.print_events {
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    println!("{}", crate::engine::json::first_frame_drawn_line(&key, ms));
                }
                call.drawn.insert(key);
            }
        }
    }

    /// The chat, documents and identity panel on the right of a live call, and its toggle.
    fn direct_panel(&mut self, ui: &mut egui::Ui) {
        let Some(call) = &mut self.call else { return };
        let Engine::Live(live) = &call.engine else { return };
        let unread = call.direct.unread();
        let label = if unread > 0 { self.i18n.t1("chat-toggle-unread", "count", &unread.to_string()) } else { self.i18n.t("chat-toggle") };
        if ui.selectable_label(call.direct.open, label).clicked() {
            call.direct.open = !call.direct.open;
        }
        if !call.direct.open {
            return;
        }
        let mut names: HashMap<String, String> = live
            .feeds
            .lock()
            .map(|f| f.iter().filter_map(|(id, feed)| Some((id.clone(), feed.display.clone()?))).collect())
            .unwrap_or_default();
        names.extend(call.names.iter().map(|(k, v)| (k.clone(), v.clone())));
        let roles = call.roles.clone();
        let i18n = &self.i18n;
        let name_of = |id: &str| {
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
            match roles.get(id) {
                Some(r) => format!("{name} ({})", i18n.t(role_key(*r))),
                None => name,
            }
        };
        let mut commands = Vec::new();
        egui::Panel::right("direct-panel").resizable(true).default_size(360.0).show(ui, |ui| {
            call.direct.ui(ui, i18n, &name_of, &mut commands);
        });
        for command in commands {
            if let Err(e) = live.command(command) {
                self.error = Some(e);
            }
        }
    }

    fn kill_switch_bar(&mut self, ui: &mut egui::Ui) {
        let Some(call) = &self.call else { return };
        let states = call.states.clone();
        let sharing = call.sharing.is_some();
        let level = call.engine.mic_level_dbfs();
        let ctx = ui.ctx().clone();
        let mut action: Option<BarAction> = None;
        ui.horizontal(|ui| {
            ui.label(self.i18n.t("bar-label"));
            let keys = self.policy.hotkeys();
            for (i, key, kind, shortcut) in
                [(0, "switch-camera", DeviceKind::Camera, &keys.camera), (1, "switch-microphone", DeviceKind::Microphone, &keys.microphone)]
            {
                let on = matches!(states[i], DeviceState::On | DeviceState::Opening);
                let text = format!("{}: {}", self.i18n.t(key), self.state_text(&states[i]));
                let colour = if states[i] == DeviceState::On { egui::Color32::from_rgb(0, 120, 50) } else { egui::Color32::from_gray(70) };
                if ui
                    .add(egui::Button::new(egui::RichText::new(text).color(egui::Color32::WHITE)).fill(colour))
                    .on_hover_text(shortcut.to_string())
                    .clicked()
                {
                    action = Some(Box::new(move |app: &mut BlendeApp| app.switch(kind, !on)));
                }
            }
            if states[1] == DeviceState::On {
                ui.add(egui::ProgressBar::new(((level + 60.0) / 60.0).clamp(0.0, 1.0)).desired_width(60.0));
            }
            let share_text = if sharing { self.i18n.t("sharing-stop") } else { self.i18n.t("switch-share") };
            if ui.button(share_text).clicked() {
                action = Some(Box::new(move |app: &mut BlendeApp| {
                    if sharing {
                        if let Some(c) = &mut app.call {
                            c.stop_sharing();
                        }
                    } else {
                        app.open_picker(Some(ctx));
                    }
                }));
            }
            if ui
                .add(
                    egui::Button::new(egui::RichText::new(self.i18n.t("switch-all-off")).color(egui::Color32::WHITE))
                        .fill(egui::Color32::from_rgb(170, 30, 30)),
                )
                .clicked()
            {
                action = Some(Box::new(|app: &mut BlendeApp| {
                    if let Some(c) = &mut app.call {
                        c.stop_sharing();
                        if let Err(e) = c.engine.all_off() {
                            app.error = Some(e);
                        } else if c.direct.running() > 0 {
                            // Documents are not media: they go on, and the user is told so.
                            app.error = Some(app.i18n.t("all-off-transfers-continue"));
                        }
                    }
                }));
            }
        });
        if let Some(a) = action {
            a(self);
        }
    }

    fn switch(&mut self, kind: DeviceKind, on: bool) {
        if let Some(c) = &self.call
            && let Err(e) = c.engine.set_enabled(kind, on)
        {
            self.error = Some(e);
        }
    }

    fn open_picker(&mut self, ctx: Option<egui::Context>) {
        let (tx, rx) = sync_channel(1);
        let (thumbs_tx, thumbs_rx) = sync_channel(64);
        let policy = self.policy.clone();
        let spawned = std::thread::Builder::new().name("blende-share-picker".into()).spawn(move || {
            let listed = blende_windows::judge_windows(&policy).map_err(|e| e.to_string());
            let allowed: Vec<u32> = listed
                .iter()
                .flatten()
                .filter(|j| j.is_allowed() && j.window.pid != Some(std::process::id()))
                .map(|j| j.window.id)
                .collect();
            let _ = tx.send(listed);
            let repaint = || {
                if let Some(ctx) = &ctx {
                    ctx.request_repaint();
                }
            };
            repaint();
            // Thumbnails go through the share guard: blocked windows are never captured.
            for id in allowed {
                if let Ok(Some(t)) = thumbnail(id, &policy, THUMB_WIDTH) {
                    if thumbs_tx.send((id, bgra_image(&t))).is_err() {
                        return; // the picker was closed
                    }
                    repaint();
                }
            }
        });
        let windows = spawned.err().map(|e| Err(e.to_string()));
        self.picker = Some(Picker { rx, windows, thumbs_rx, thumbs: std::collections::HashMap::new() });
    }

    /// The demo's share: the same capture → guard pipeline, behind the same kind of gate.
    fn demo_share(&self, source: crate::engine::ShareSource, ctx: &egui::Context) -> Result<share::ShareSession, String> {
        let Some(switches) = self.call.as_ref().and_then(|c| c.switches.as_ref()) else { return Err("no call".into()) };
        switches.share.requested();
        share::ShareSession::start(self.policy.clone(), source, switches.share.open(), ctx.clone())
    }

    fn picker_window(&mut self, ctx: &egui::Context) {
        let Some(picker) = &mut self.picker else { return };
        if let Ok(w) = picker.rx.try_recv() {
            picker.windows = Some(w);
        }
        while let Ok((id, img)) = picker.thumbs_rx.try_recv() {
            let tex = ctx.load_texture(format!("thumb-{id}"), img, egui::TextureOptions::LINEAR);
            picker.thumbs.insert(id, tex);
        }
        let Some(picker) = &self.picker else { return };
        let own_pid = std::process::id();
        let mut chosen = None;
        let mut close = false;
        egui::Window::new(self.i18n.t("picker-heading")).collapsible(false).show(ctx, |ui| {
            match &picker.windows {
                None => {
                    ui.label(self.i18n.t("picker-loading"));
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::RED, e);
                }
                Some(Ok(windows)) => {
                    egui::ScrollArea::vertical().max_height(400.0).show(ui, |ui| {
                        // Our own windows are never offered: they show the call itself.
                        for j in windows.iter().rev().filter(|j| j.window.pid != Some(own_pid)) {
                            ui.horizontal(|ui| {
                                let slot = egui::vec2(THUMB_WIDTH as f32, THUMB_WIDTH as f32 * 9.0 / 16.0);
                                match picker.thumbs.get(&j.window.id) {
                                    Some(t) => {
                                        ui.add(egui::Image::new(t).max_size(slot));
                                    }
                                    None => {
                                        let (rect, _) = ui.allocate_exact_size(slot, egui::Sense::hover());
                                        ui.painter().rect_filled(rect, 2.0, egui::Color32::from_gray(40));
                                    }
                                }
                                let name = format!("{} – {}", j.window.app_name, j.window.title);
                                if ui.add_enabled(j.is_allowed(), egui::Button::new(&name)).clicked() {
                                    chosen = Some((name.clone(), crate::preview::Source::Window(j.window.id)));
                                }
                                if let (false, Some(c)) = (j.is_allowed(), j.category) {
                                    let category = Category::ALL
                                        .into_iter()
                                        .find(|x| x.as_str() == c)
                                        .map_or_else(|| c.to_owned(), |x| self.category_text(x));
                                    ui.colored_label(
                                        egui::Color32::from_rgb(170, 40, 40),
                                        self.i18n.t1("picker-blocked", "reason", &category),
                                    );
                                }
                            });
                        }
                    });
                    if self.policy.screen_verdict() == Verdict::Allow {
                        let screen = self.i18n.t("picker-screen");
                        if ui.button(&screen).clicked() {
                            chosen = Some((screen, crate::preview::Source::Screen));
                        }
                    }
                }
            }
            if ui.button(self.i18n.t("picker-close")).clicked() {
                close = true;
            }
        });
        if let Some((name, source)) = chosen {
            // The guard checks the window again when the share starts: the picker's list may be old.
            match self.call.as_mut().map(|c| &c.engine) {
                Some(Engine::Live(live)) => match live.command(CallCommand::ShareStart(source)) {
                    Ok(()) => {
                        let frame = live.share_frame.clone();
                        if let Some(c) = &mut self.call {
                            c.sharing = Some(Sharing { name, session: None, frame, paused: None, texture: None });
                        }
                    }
                    Err(why) => self.error = Some(why),
                },
                Some(Engine::Demo(_)) => match self.demo_share(source, ctx) {
                    Ok(session) => {
                        let frame = session.frame.clone();
                        if let Some(c) = &mut self.call {
                            c.sharing = Some(Sharing { name, session: Some(session), frame, paused: None, texture: None });
                        }
                    }
                    Err(why) => self.error = Some(why),
                },
                None => {}
            }
            close = true;
        }
        if close {
            self.picker = None;
        }
    }
}

impl eframe::App for BlendeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if std::mem::take(&mut self.picker_requested) && self.picker.is_none() {
            self.open_picker(Some(ui.ctx().clone()));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.top_bar(ui);
            if self.call.is_some() {
                self.call_screen(ui);
            } else {
                self.join_screen(ui);
            }
        });
        let ctx = ui.ctx().clone();
        self.picker_window(&ctx);
        self.settings_window(&ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    fn demo_call(language: Language) -> Harness<'static, BlendeApp> {
        Harness::builder().with_size(egui::vec2(1100.0, 720.0)).build_eframe(move |cc| {
            BlendeApp::new(
                &cc.egui_ctx,
                AppOptions {
                    language,
                    start_in_demo: true,
                    policy: Policy::builtin(),
                    autojoin: None,
                    started: Instant::now(),
                    user_settings: None,
                    admin_policy: None,
                    secrets: std::sync::Arc::new(crate::secrets::MemoryStore::default()),
                },
            )
        })
    }

    /// What the engine would report, straight into the call screen.
    fn report(h: &mut Harness<'static, BlendeApp>, ev: CallEvent) {
        let app = h.state_mut();
        let call = app.call.as_mut().expect("in the demo call");
        let _ = call.apply_event(&live::Feeds::default(), ev, &app.i18n);
        h.step();
        h.step();
    }

    fn stats(lost: u64, received: u64) -> CallEvent {
        CallEvent::FeedStats(Box::new(blende_call::FeedStats {
            feed: DEMO_FEED.to_owned(),
            packets_received: received,
            packets_lost: lost,
            rtt_ms: Some(40),
            ..blende_call::FeedStats::default()
        }))
    }

    #[test]
    fn a_lost_connection_and_a_weak_participant_are_named_on_the_call_screen() {
        let mut h = demo_call(Language::English);
        h.step();
        assert!(h.query_all_by_label("Demo participant").next().is_some(), "the demo tile");
        assert!(h.query_by_label_contains("connection").is_none(), "no connection mark before statistics");
        report(&mut h, CallEvent::Reconnecting { attempt: 2, reason: "signalling lost".into() });
        assert!(h.query_by_label_contains("Connection lost – trying again (2)").is_some());
        report(&mut h, CallEvent::Reconnected);
        assert!(h.query_by_label_contains("Connection lost").is_none(), "the banner goes when the call is back");
        report(&mut h, stats(0, 1000));
        report(&mut h, stats(80, 1500));
        assert!(h.query_by_label("Demo participant · connection poor").is_some(), "80 of 580 lost in the last interval");
        report(&mut h, stats(80, 2000));
        assert!(h.query_by_label_contains("connection").is_none(), "good again: no mark");
    }

    #[test]
    fn the_connection_mark_is_german_in_the_german_app() {
        let mut h = demo_call(Language::German);
        h.step();
        report(&mut h, stats(0, 1000));
        report(&mut h, stats(20, 1500));
        assert!(h.query_by_label_contains("Verbindung schwach").is_some(), "20 of 520 lost: fair");
    }
}
