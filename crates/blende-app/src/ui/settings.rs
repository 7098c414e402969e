//! The settings window: language, devices, the global shortcuts (set by IT, shown here) and
//! the user's own block rules, which can only be added, never loosened
//! (`blende_policy::add_user_block`).

use blende_policy::NewBlock;
use eframe::egui;

use super::{BlendeApp, Language, RuleKind};

impl RuleKind {
    fn key(self) -> &'static str {
        match self {
            RuleKind::TitleContains => "rule-title",
            RuleKind::App => "rule-app",
            RuleKind::Site => "rule-site",
        }
    }
}

impl BlendeApp {
    pub(super) fn settings_window(&mut self, ctx: &egui::Context) {
        if !self.settings.open {
            return;
        }
        let mut open = true;
        let mut add = false;
        egui::Window::new(self.i18n.t("settings-heading")).open(&mut open).collapsible(false).show(ctx, |ui| {
            ui.heading(self.i18n.t("settings-language"));
            ui.horizontal(|ui| {
                for lang in [Language::German, Language::English] {
                    if ui.selectable_label(self.i18n.language() == lang, lang.native_name()).clicked() {
                        self.i18n = super::I18n::new(lang);
                    }
                }
            });
            ui.separator();
            ui.heading(self.i18n.t("settings-devices"));
            self.device_choices(ui);
            ui.separator();
            ui.heading(self.i18n.t("settings-hotkeys"));
            let keys = self.policy.hotkeys().clone();
            egui::Grid::new("hotkeys").num_columns(2).show(ui, |ui| {
                for (key, value) in [
                    ("switch-camera", &keys.camera),
                    ("switch-microphone", &keys.microphone),
                    ("switch-share", &keys.screen_share),
                    ("switch-all-off", &keys.all_off),
                ] {
                    ui.label(self.i18n.t(key));
                    ui.monospace(value.to_string());
                    ui.end_row();
                }
            });
            ui.small(self.i18n.t("settings-hotkeys-hint"));
            ui.separator();
            ui.heading(self.i18n.t("settings-blocks"));
            ui.small(self.i18n.t("settings-blocks-hint"));
            for rule in self.policy.user_blocks() {
                let m = &rule.matcher;
                let what = m
                    .app
                    .as_ref()
                    .map(|v| format!("{}: {v}", self.i18n.t("rule-app")))
                    .or_else(|| m.title_contains.as_ref().map(|v| format!("{}: {v}", self.i18n.t("rule-title"))))
                    .or_else(|| m.site.as_ref().map(|v| format!("{}: {v}", self.i18n.t("rule-site"))))
                    .unwrap_or_default();
                ui.label(format!("• {what}"));
            }
            egui::Grid::new("new-rule").num_columns(2).show(ui, |ui| {
                let label = ui.label(self.i18n.t("settings-rule-kind"));
                let current = self.i18n.t(self.settings.kind.key());
                egui::ComboBox::from_id_salt("rule-kind")
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        for kind in [RuleKind::TitleContains, RuleKind::App, RuleKind::Site] {
                            ui.selectable_value(&mut self.settings.kind, kind, self.i18n.t(kind.key()));
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label(self.i18n.t("settings-rule-value"));
                ui.text_edit_singleline(&mut self.settings.value).labelled_by(label.id);
                ui.end_row();
                let label = ui.label(self.i18n.t("settings-rule-reason"));
                ui.text_edit_singleline(&mut self.settings.reason).labelled_by(label.id);
                ui.end_row();
            });
            if ui.button(self.i18n.t("settings-rule-add")).clicked() {
                add = true;
            }
            match &self.settings.message {
                Some(Ok(m)) => {
                    ui.colored_label(egui::Color32::from_rgb(0, 140, 60), m);
                }
                Some(Err(m)) => {
                    ui.colored_label(egui::Color32::RED, m);
                }
                None => {}
            }
        });
        if add {
            self.add_user_rule();
        }
        self.settings.open = open;
    }

    fn add_user_rule(&mut self) {
        let Some(path) = self.user_settings.clone() else {
            self.settings.message = Some(Err(self.i18n.t("settings-no-file")));
            return;
        };
        let value = self.settings.value.trim().to_owned();
        let rule = match self.settings.kind {
            RuleKind::TitleContains => NewBlock::TitleContains(value.clone()),
            RuleKind::App => NewBlock::App(value.clone()),
            RuleKind::Site => NewBlock::Site(value.clone()),
        };
        let reason = self.settings.reason.trim();
        match crate::config::add_user_block(&path, &rule, (!reason.is_empty()).then_some(reason)) {
            Ok(()) => {
                // The new rule applies at once: to the picker, thumbnails and a running share's
                // guard from its next share on.
                self.policy = crate::config::load_policy_with(self.admin_policy.as_deref(), Some(&path));
                self.settings.message = Some(Ok(self.i18n.t1("settings-rule-added", "rule", &value)));
                self.settings.value.clear();
                self.settings.reason.clear();
            }
            Err(e) => self.settings.message = Some(Err(e)),
        }
    }
}
