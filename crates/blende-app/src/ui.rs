//! The egui app. For now it shows the desktop's windows with their sharing verdicts; the call
//! screens come with the media and connection layers.
//!
//! The UI never blocks: a named worker thread lists the windows and sends snapshots over a
//! bounded channel; the UI drains it each frame and the worker requests a repaint.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use blende_windows::JudgedWindow;
use eframe::egui;

use crate::config::load_policy;

const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

type Snapshot = Result<Vec<JudgedWindow>, String>;

pub fn run() -> anyhow::Result<std::process::ExitCode> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("Blende").with_inner_size([900.0, 560.0]).with_app_id("blende"),
        ..Default::default()
    };
    eframe::run_native("Blende", options, Box::new(|cc| Ok(Box::new(WindowsApp::new(&cc.egui_ctx)))))
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(std::process::ExitCode::SUCCESS)
}

struct WindowsApp {
    snapshots: Receiver<Snapshot>,
    latest: Option<Snapshot>,
    policy_error: Option<String>,
}

impl WindowsApp {
    fn new(ctx: &egui::Context) -> Self {
        let (tx, rx) = sync_channel(1);
        let policy_error = load_policy(None).failure().map(ToString::to_string);
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("blende-window-lister".into()).spawn(move || lister(&tx, &ctx));
        let latest = spawned.err().map(|e| Err(format!("cannot start the window lister: {e}")));
        WindowsApp { snapshots: rx, latest, policy_error }
    }
}

fn lister(tx: &SyncSender<Snapshot>, ctx: &egui::Context) {
    loop {
        let policy = load_policy(None);
        let snapshot = blende_windows::judge_windows(&policy).map_err(|e| e.to_string());
        match tx.try_send(snapshot) {
            // The UI has not drained the last one yet: it is busy or hidden; skip this one.
            Ok(()) | Err(TrySendError::Full(_)) => ctx.request_repaint(),
            Err(TrySendError::Disconnected(_)) => return,
        }
        std::thread::sleep(REFRESH_INTERVAL);
    }
}

impl eframe::App for WindowsApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        while let Ok(s) = self.snapshots.try_recv() {
            self.latest = Some(s);
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Blende");
            ui.label("Windows on this desktop and whether they may be shared:");
            if let Some(e) = &self.policy_error {
                ui.colored_label(egui::Color32::RED, format!("The sharing policy is broken, nothing can be shared: {e}"));
            }
            ui.separator();
            match &self.latest {
                None => {
                    ui.spinner();
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::RED, e);
                }
                Some(Ok(windows)) => window_table(ui, windows),
            }
        });
    }
}

fn window_table(ui: &mut egui::Ui, windows: &[JudgedWindow]) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        egui::Grid::new("windows").striped(true).num_columns(3).show(ui, |ui| {
            ui.strong("Application");
            ui.strong("Title");
            ui.strong("Sharing");
            ui.end_row();
            for j in windows.iter().rev() {
                ui.label(&j.window.app_name);
                ui.label(&j.window.title);
                if j.is_allowed() {
                    ui.colored_label(egui::Color32::from_rgb(0, 140, 60), "may be shared");
                } else {
                    let reason = j.reason.as_deref().unwrap_or("blocked");
                    ui.colored_label(egui::Color32::from_rgb(190, 40, 40), format!("blocked: {reason}"));
                }
                ui.end_row();
            }
        });
    });
}
