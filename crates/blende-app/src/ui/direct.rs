//! The chat, documents and identity panel of a live call.
//!
//! Everything here comes from typed [`CallEvent`]s and goes out as [`CallCommand`]s; the chat
//! history lives in a [`ChatLog`] in memory and is dropped with the call. Saving it is an
//! explicit button, and the file is written on a worker thread (the UI never waits on a disk).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use blende_call::{CallEvent, DocumentEvent, TransferId};
use blende_p2p::ChatLog;
use eframe::egui;

use super::i18n::I18n;
use super::picker::{PickKind, Picked, Picker};
use crate::engine::CallCommand;

#[derive(Debug)]
struct Offered {
    transfer: TransferId,
    from: String,
    name: String,
    safe_name: String,
    size: u64,
    to_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Waiting,
    Moving,
    Done(String),
    Failed(String),
    Stopped(String),
}

#[derive(Debug)]
struct Transfer {
    outgoing: bool,
    peer: String,
    name: String,
    size: u64,
    bytes: u64,
    stage: Stage,
    /// When bytes first moved (for speed and time left).
    moving_since: Option<(Instant, u64)>,
}

#[derive(Debug)]
struct Identity {
    code: String,
    checked: bool,
    changed: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct DirectView {
    pub open: bool,
    started: Instant,
    log: ChatLog,
    input: String,
    /// `None`: to everyone.
    chat_to: Option<String>,
    links: BTreeSet<String>,
    identities: BTreeMap<String, Identity>,
    offers: Vec<Offered>,
    transfers: BTreeMap<TransferId, Transfer>,
    /// Where received documents (and a saved chat) go.
    folder: String,
    send_path: String,
    send_to: Option<String>,
    notice: Option<String>,
    saving: Option<Receiver<Result<String, String>>>,
    /// A moderator switched the meeting's chat off.
    chat_off: bool,
    /// Choosing the file to offer or the folder to save in.
    picker: Option<Picker>,
}

fn default_folder() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let downloads = std::env::var("XDG_DOWNLOAD_DIR").unwrap_or_else(|_| format!("{home}/Downloads"));
    if std::path::Path::new(&downloads).is_dir() { downloads } else { home }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

impl DirectView {
    pub fn new(started: Instant) -> Self {
        DirectView {
            open: false,
            started,
            log: ChatLog::default(),
            input: String::new(),
            chat_to: None,
            links: BTreeSet::new(),
            identities: BTreeMap::new(),
            offers: Vec::new(),
            transfers: BTreeMap::new(),
            folder: default_folder(),
            send_path: String::new(),
            send_to: None,
            notice: None,
            saving: None,
            chat_off: false,
            picker: None,
        }
    }

    /// Unread chat messages (the panel counts as read while it is open).
    pub fn unread(&self) -> usize {
        self.log.unread()
    }

    /// Transfers still moving ("Everything off" says they go on).
    pub fn running(&self) -> usize {
        self.transfers.values().filter(|t| matches!(t.stage, Stage::Waiting | Stage::Moving)).count()
    }

    fn at_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes the events this panel shows; `false` for any other.
    pub fn apply(&mut self, ev: &CallEvent) -> bool {
        let at = self.at_ms();
        match ev {
            CallEvent::Chat { from: None, private_with, text } => self.log.sent(private_with.clone(), text.clone(), at),
            CallEvent::Chat { from: Some(from), private_with, text } => {
                self.log.received(from.clone(), private_with.is_some(), text.clone(), at);
                if self.open {
                    self.log.mark_read();
                }
            }
            CallEvent::ChatEnabled { enabled } => self.chat_off = !enabled,
            CallEvent::DirectLink { participant, open } => {
                if *open {
                    self.links.insert(participant.clone());
                } else {
                    self.links.remove(participant);
                }
            }
            CallEvent::Identity { participant, code, checked, changed } => {
                let changed = *changed || self.identities.get(participant).is_some_and(|i| i.changed && i.code == *code);
                self.identities.insert(participant.clone(), Identity { code: code.clone(), checked: *checked, changed });
            }
            CallEvent::ParticipantLeft { id } => {
                self.links.remove(id);
                self.identities.remove(id);
            }
            CallEvent::Document(d) => self.document(d),
            _ => return false,
        }
        true
    }

    fn document(&mut self, d: &DocumentEvent) {
        let now = Instant::now();
        match d {
            DocumentEvent::Offered { transfer, from, name, safe_name, size, to_all } => {
                self.offers.push(Offered {
                    transfer: *transfer,
                    from: from.clone(),
                    name: name.clone(),
                    safe_name: safe_name.clone(),
                    size: *size,
                    to_all: *to_all,
                });
            }
            DocumentEvent::Refused { from, reason, .. } => self.notice = Some(format!("{from}: {reason}")),
            DocumentEvent::Sending { transfer, to, name, size } => {
                let t = Transfer {
                    outgoing: true,
                    peer: to.clone(),
                    name: name.clone(),
                    size: *size,
                    bytes: 0,
                    stage: Stage::Waiting,
                    moving_since: None,
                };
                self.transfers.insert(*transfer, t);
            }
            DocumentEvent::Accepted { transfer } => {
                if let Some(t) = self.transfers.get_mut(transfer) {
                    t.stage = Stage::Moving;
                }
            }
            DocumentEvent::Progress { transfer, bytes, .. } => {
                if let Some(t) = self.transfers.get_mut(transfer) {
                    t.bytes = *bytes;
                    t.stage = Stage::Moving;
                    t.moving_since.get_or_insert((now, *bytes));
                }
            }
            DocumentEvent::Saved { transfer, path } => self.end(*transfer, Stage::Done(path.clone())),
            DocumentEvent::Delivered { transfer } => self.end(*transfer, Stage::Done(String::new())),
            DocumentEvent::Declined { transfer, reason } => {
                self.offers.retain(|o| o.transfer != *transfer);
                self.end(*transfer, Stage::Stopped(reason.clone().unwrap_or_default()));
            }
            DocumentEvent::Cancelled { transfer, .. } => {
                self.offers.retain(|o| o.transfer != *transfer);
                self.end(*transfer, Stage::Stopped(String::new()));
            }
            DocumentEvent::Failed { transfer, reason } => {
                self.offers.retain(|o| o.transfer != *transfer);
                self.end(*transfer, Stage::Failed(reason.clone()));
            }
            _ => {}
        }
    }

    fn end(&mut self, transfer: TransferId, stage: Stage) {
        if let Some(t) = self.transfers.get_mut(&transfer) {
            if matches!(stage, Stage::Done(_)) {
                t.bytes = t.size;
            }
            t.stage = stage;
        }
    }

    /// The panel. `name_of` turns a participant id into the name to show.
    pub fn ui(&mut self, ui: &mut egui::Ui, i18n: &I18n, name_of: &dyn Fn(&str) -> String, commands: &mut Vec<CallCommand>) {
        self.log.mark_read();
        if let Some(rx) = &self.saving
            && let Ok(result) = rx.try_recv()
        {
            self.saving = None;
            self.notice = Some(match result {
                Ok(path) => i18n.t1("chat-saved", "path", &path),
                Err(e) => i18n.t1("chat-save-failed", "reason", &e),
            });
        }
        egui::ScrollArea::vertical().id_salt("direct-panel").show(ui, |ui| {
            self.chat_ui(ui, i18n, name_of, commands);
            ui.separator();
            self.documents_ui(ui, i18n, name_of, commands);
            ui.separator();
            self.identity_ui(ui, i18n, name_of, commands);
            if let Some(n) = &self.notice {
                ui.separator();
                ui.label(n);
            }
        });
    }

    fn recipient_box(
        ui: &mut egui::Ui,
        id: &str,
        label: &str,
        links: &BTreeSet<String>,
        to: &mut Option<String>,
        i18n: &I18n,
        name_of: &dyn Fn(&str) -> String,
    ) {
        let everyone = i18n.t("chat-everyone");
        let shown = to.as_deref().map_or_else(|| everyone.clone(), name_of);
        egui::ComboBox::new(id, label).selected_text(shown).show_ui(ui, |ui| {
            ui.selectable_value(to, None, &everyone);
            for p in links {
                ui.selectable_value(to, Some(p.clone()), name_of(p));
            }
        });
    }

    fn chat_ui(&mut self, ui: &mut egui::Ui, i18n: &I18n, name_of: &dyn Fn(&str) -> String, commands: &mut Vec<CallCommand>) {
        ui.heading(i18n.t("chat-heading"));
        if self.chat_off {
            ui.colored_label(egui::Color32::from_rgb(200, 60, 0), i18n.t("chat-off"));
        } else if self.links.is_empty() {
            ui.label(i18n.t("chat-no-links"));
        }
        let me = i18n.t("call-you");
        let everyone = i18n.t("chat-everyone");
        for e in self.log.entries() {
            let secs = e.at_ms / 1000;
            let from = e.from.as_deref().map_or_else(|| me.clone(), name_of);
            let to = match (&e.from, &e.private_with) {
                (_, None) => everyone.clone(),
                (None, Some(to)) => name_of(to),
                (Some(_), Some(_)) => me.clone(),
            };
            let time = format!("{:02}:{:02}", secs / 60, secs % 60);
            ui.label(i18n.tn("chat-line", &[("time", &time), ("from", &from), ("to", &to), ("text", &e.text)]));
        }
        if self.chat_to.as_ref().is_some_and(|t| !self.links.contains(t)) {
            self.chat_to = None;
        }
        Self::recipient_box(ui, "chat-to", &i18n.t("chat-to"), &self.links, &mut self.chat_to, i18n, name_of);
        let mut send = false;
        ui.horizontal(|ui| {
            let label = ui.label(i18n.t("chat-input"));
            let input = ui
                .add(egui::TextEdit::singleline(&mut self.input).hint_text(i18n.t("chat-hint")).desired_width(220.0))
                .labelled_by(label.id);
            if input.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                send = true;
                input.request_focus();
            }
            if ui.button(i18n.t("chat-send")).clicked() {
                send = true;
            }
        });
        if send && !self.input.trim().is_empty() {
            commands.push(CallCommand::Chat { to: self.chat_to.clone(), text: std::mem::take(&mut self.input) });
        }
        if !self.log.entries().is_empty() && self.saving.is_none() && ui.button(i18n.t("chat-save")).clicked() {
            let text = self.log.to_text(&me, &everyone, name_of);
            let folder = std::path::PathBuf::from(&self.folder);
            let (tx, rx) = sync_channel(1);
            let spawned = std::thread::Builder::new().name("blende-save-chat".into()).spawn(move || {
                let _ = tx.send(save_chat(&folder, &text));
            });
            if spawned.is_ok() {
                self.saving = Some(rx);
            }
        }
    }

    fn documents_ui(&mut self, ui: &mut egui::Ui, i18n: &I18n, name_of: &dyn Fn(&str) -> String, commands: &mut Vec<CallCommand>) {
        ui.heading(i18n.t("docs-heading"));
        ui.horizontal(|ui| {
            let label = ui.label(i18n.t("docs-folder"));
            ui.add(egui::TextEdit::singleline(&mut self.folder).desired_width(220.0)).labelled_by(label.id);
            if ui.button(i18n.t("docs-browse-folder")).clicked() {
                self.picker = Some(Picker::new(PickKind::Folder, Path::new(&self.folder)));
            }
        });
        self.picker_ui(ui, i18n);
        let mut answered = Vec::new();
        for o in &self.offers {
            let from = name_of(&o.from);
            let key = if o.to_all { "docs-offered-all" } else { "docs-offered" };
            ui.label(i18n.tn(key, &[("from", &from), ("name", &o.name), ("mb", &megabytes(o.size))]));
            if o.safe_name != o.name {
                ui.label(i18n.t1("docs-saved-as", "name", &o.safe_name));
            }
            ui.horizontal(|ui| {
                if ui.button(i18n.t1("docs-accept", "name", &o.safe_name)).clicked() {
                    commands.push(CallCommand::AcceptDocument { transfer: o.transfer, folder: self.folder.clone() });
                    answered.push((o.transfer, true, from.clone(), o.safe_name.clone(), o.size));
                }
                if ui.button(i18n.t1("docs-decline", "name", &o.safe_name)).clicked() {
                    commands.push(CallCommand::DeclineDocument { transfer: o.transfer });
                    answered.push((o.transfer, false, from.clone(), o.safe_name.clone(), o.size));
                }
            });
        }
        for (transfer, accepted, from, name, size) in answered {
            self.offers.retain(|o| o.transfer != transfer);
            if accepted {
                let t = Transfer { outgoing: false, peer: from, name, size, bytes: 0, stage: Stage::Waiting, moving_since: None };
                self.transfers.insert(transfer, t);
            }
        }
        for (id, t) in &self.transfers {
            let (key, peer) = if t.outgoing { ("docs-line-out", name_of(&t.peer)) } else { ("docs-line-in", t.peer.clone()) };
            ui.label(i18n.tn(key, &[("name", &t.name), ("peer", &peer)]));
            let fraction = if t.size == 0 { 1.0 } else { t.bytes as f32 / t.size as f32 };
            let detail = match &t.stage {
                Stage::Waiting => i18n.t("docs-waiting"),
                Stage::Moving => {
                    let (speed, left) = t.moving_since.map_or((0.0, None), |(since, from)| {
                        let secs = since.elapsed().as_secs_f64().max(0.001);
                        let speed = (t.bytes.saturating_sub(from)) as f64 / secs;
                        (speed, (speed > 0.0).then(|| (t.size.saturating_sub(t.bytes)) as f64 / speed))
                    });
                    let left = left.map_or_else(|| "…".to_owned(), |s| format!("{s:.0} s"));
                    format!("{} / {} MB · {:.1} MB/s · {left}", megabytes(t.bytes), megabytes(t.size), speed / 1e6)
                }
                Stage::Done(path) if path.is_empty() => i18n.t("docs-delivered"),
                Stage::Done(path) => i18n.t1("docs-saved", "path", path),
                Stage::Failed(reason) => i18n.t1("docs-failed", "reason", reason),
                Stage::Stopped(_) => i18n.t("docs-stopped"),
            };
            ui.add(egui::ProgressBar::new(fraction).text(detail).desired_width(300.0));
            if matches!(t.stage, Stage::Waiting | Stage::Moving) && ui.button(i18n.t1("docs-cancel", "name", &t.name)).clicked() {
                commands.push(CallCommand::CancelDocument { transfer: *id });
            }
        }
        if self.send_to.as_ref().is_some_and(|t| !self.links.contains(t)) {
            self.send_to = None;
        }
        ui.horizontal(|ui| {
            let label = ui.label(i18n.t("docs-file"));
            ui.add(egui::TextEdit::singleline(&mut self.send_path).desired_width(200.0)).labelled_by(label.id);
            if ui.button(i18n.t("docs-browse-file")).clicked() {
                // Where the typed path points, or the documents folder.
                let typed = Path::new(self.send_path.trim());
                let start = if typed.is_dir() { typed } else { typed.parent().filter(|p| p.is_dir()).unwrap_or(Path::new(&self.folder)) };
                self.picker = Some(Picker::new(PickKind::File, start));
            }
        });
        Self::recipient_box(ui, "docs-to", &i18n.t("chat-to"), &self.links, &mut self.send_to, i18n, name_of);
        if ui.button(i18n.t("docs-offer")).clicked() && !self.send_path.trim().is_empty() {
            commands.push(CallCommand::SendFile { path: self.send_path.trim().to_owned(), to: self.send_to.clone() });
        }
    }

    /// The open picker, framed; what it chose goes into its field.
    fn picker_ui(&mut self, ui: &mut egui::Ui, i18n: &I18n) {
        let Some(picker) = &mut self.picker else { return };
        let title = match picker.kind() {
            PickKind::File => i18n.t("picker-title-file"),
            PickKind::Folder => i18n.t("picker-title-folder"),
        };
        let outcome = ui
            .group(|ui| {
                ui.strong(title);
                picker.ui(ui, i18n)
            })
            .inner;
        match outcome {
            Some(Picked::Chosen(path)) => {
                let path = path.display().to_string();
                match picker.kind() {
                    PickKind::File => self.send_path = path,
                    PickKind::Folder => self.folder = path,
                }
                self.picker = None;
            }
            Some(Picked::Cancelled) => self.picker = None,
            None => {}
        }
    }

    fn identity_ui(&mut self, ui: &mut egui::Ui, i18n: &I18n, name_of: &dyn Fn(&str) -> String, commands: &mut Vec<CallCommand>) {
        ui.heading(i18n.t("identity-heading"));
        ui.label(i18n.t("identity-explain"));
        for (participant, identity) in &self.identities {
            let name = name_of(participant);
            ui.label(i18n.t1("identity-code", "what", &format!("{name}: {}", identity.code)));
            if identity.changed {
                ui.colored_label(egui::Color32::from_rgb(200, 60, 0), i18n.t1("identity-changed", "name", &name));
            }
            let mut checked = identity.checked;
            if ui.checkbox(&mut checked, i18n.t1("identity-checked", "name", &name)).changed() {
                commands.push(CallCommand::IdentityChecked { participant: participant.clone(), checked });
            }
        }
    }
}

/// Writes the chat into `folder` under a new name; never over an existing file.
fn save_chat(folder: &std::path::Path, text: &str) -> Result<String, String> {
    use std::io::Write;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for candidate in blende_p2p::names::candidates(&format!("blende-chat-{stamp}.txt")) {
        let path = folder.join(candidate);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => return f.write_all(text.as_bytes()).map(|()| path.display().to_string()).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", folder.display())),
        }
    }
    Err(format!("{}: no free name", folder.display()))
}
