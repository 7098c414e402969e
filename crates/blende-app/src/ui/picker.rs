//! Choosing a file to offer or a folder to save in, inside the app: a small browser of the
//! local file system, translated, usable with Tab, Enter and a screen reader (every entry is a
//! button with its name), and the same on every desktop (an Xvfb session has no portal).
//!
//! Reading a folder is the only IO: it lists names and kinds, never opens a file. Hidden
//! entries (a leading dot) are left out, and a folder with more than [`MAX_ENTRIES`] shows the
//! first ones in name order with a note.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::i18n::I18n;

/// Entries shown per folder at most.
pub const MAX_ENTRIES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    /// A document to offer.
    File,
    /// Where received documents go.
    Folder,
}

/// What the user did in the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    Chosen(PathBuf),
    Cancelled,
}

#[derive(Debug)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// One open picker.
#[derive(Debug)]
pub struct Picker {
    kind: PickKind,
    dir: PathBuf,
    entries: Vec<Entry>,
    /// More entries than shown.
    cut: bool,
    error: Option<String>,
    selected: Option<String>,
}

impl Picker {
    /// A picker starting in `start` (or the nearest folder above it that exists).
    pub fn new(kind: PickKind, start: &Path) -> Self {
        let mut dir = start.to_path_buf();
        while !dir.is_dir() {
            if !dir.pop() {
                dir = PathBuf::from("/");
                break;
            }
        }
        let mut picker = Picker { kind, dir, entries: Vec::new(), cut: false, error: None, selected: None };
        picker.read();
        picker
    }

    pub fn kind(&self) -> PickKind {
        self.kind
    }

    fn read(&mut self) {
        self.entries.clear();
        self.cut = false;
        self.error = None;
        self.selected = None;
        match std::fs::read_dir(&self.dir) {
            Ok(list) => {
                for item in list.flatten() {
                    let name = item.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    // Follows symlinks: a link to a folder is entered like one.
                    let is_dir = item.path().is_dir();
                    if self.kind == PickKind::Folder && !is_dir {
                        continue;
                    }
                    self.entries.push(Entry { name, is_dir });
                }
                self.entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));
                if self.entries.len() > MAX_ENTRIES {
                    self.entries.truncate(MAX_ENTRIES);
                    self.cut = true;
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn enter(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.read();
    }

    /// Draws the picker's content; `Some` once the user chose or cancelled.
    pub fn ui(&mut self, ui: &mut egui::Ui, i18n: &I18n) -> Option<Picked> {
        let mut outcome = None;
        ui.label(i18n.t1("picker-in", "path", &self.dir.display().to_string()));
        ui.horizontal(|ui| {
            if let Some(parent) = self.dir.parent().map(Path::to_path_buf)
                && ui.button(i18n.t("picker-up")).clicked()
            {
                self.enter(parent);
            }
            if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
                && ui.button(i18n.t("picker-home")).clicked()
            {
                self.enter(home);
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(200, 60, 0), i18n.t1("picker-error", "reason", e));
        }
        let mut enter = None;
        egui::ScrollArea::vertical().max_height(260.0).show(ui, |ui| {
            if self.entries.is_empty() && self.error.is_none() {
                ui.label(i18n.t("picker-empty"));
            }
            for entry in &self.entries {
                if entry.is_dir {
                    if ui.button(i18n.t1("picker-folder", "name", &entry.name)).clicked() {
                        enter = Some(self.dir.join(&entry.name));
                    }
                } else {
                    let on = self.selected.as_deref() == Some(entry.name.as_str());
                    if ui.selectable_label(on, i18n.t1("picker-file", "name", &entry.name)).clicked() {
                        self.selected = Some(entry.name.clone());
                    }
                }
            }
            if self.cut {
                ui.label(i18n.t1("picker-cut", "n", &MAX_ENTRIES.to_string()));
            }
        });
        if let Some(dir) = enter {
            self.enter(dir);
        }
        ui.horizontal(|ui| {
            let choice = match self.kind {
                PickKind::File => self.selected.as_ref().map(|name| self.dir.join(name)),
                PickKind::Folder => Some(self.dir.clone()),
            };
            let label = match self.kind {
                PickKind::File => i18n.t("picker-choose-file"),
                PickKind::Folder => i18n.t("picker-choose-folder"),
            };
            if ui.add_enabled(choice.is_some(), egui::Button::new(label)).clicked()
                && let Some(path) = choice
            {
                outcome = Some(Picked::Chosen(path));
            }
            if ui.button(i18n.t("picker-cancel")).clicked() {
                outcome = Some(Picked::Cancelled);
            }
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("blende-picker-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch folder");
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn lists_folders_first_without_hidden_entries_and_starts_where_it_can() {
        let dir = Scratch::new("list");
        std::fs::create_dir(dir.path().join("Akten")).expect("dir");
        std::fs::write(dir.path().join("bescheid.pdf"), b"x").expect("file");
        std::fs::write(dir.path().join("Antrag.pdf"), b"x").expect("file");
        std::fs::write(dir.path().join(".geheim"), b"x").expect("file");
        let p = Picker::new(PickKind::File, &dir.path().join("gone/too"));
        assert_eq!(p.dir, dir.path(), "the nearest existing folder");
        let names: Vec<(&str, bool)> = p.entries.iter().map(|e| (e.name.as_str(), e.is_dir)).collect();
        assert_eq!(names, [("Akten", true), ("Antrag.pdf", false), ("bescheid.pdf", false)]);
        let folders = Picker::new(PickKind::Folder, dir.path());
        assert_eq!(folders.entries.len(), 1, "a folder picker lists folders only");
    }

    /// The picker as a user meets it: buttons named for the screen reader, a folder entered,
    /// a file chosen, with the keyboard for the last step.
    #[test]
    fn choosing_a_file_by_its_buttons_and_the_keyboard() {
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable;

        let dir = Scratch::new("ui");
        std::fs::create_dir(dir.path().join("Akten")).expect("dir");
        std::fs::write(dir.path().join("Akten").join("Stellungnahme.odt"), b"x").expect("file");
        let i18n = I18n::new(super::super::i18n::Language::German);
        let mut picker = Picker::new(PickKind::File, dir.path());
        let mut outcome = None;
        let mut h = Harness::new_ui(|ui| {
            if let Some(o) = picker.ui(ui, &i18n) {
                outcome = Some(o);
            }
        });
        h.get_by_label("Ordner Akten").click();
        h.run();
        h.get_by_label("Datei Stellungnahme.odt").click();
        h.run();
        h.get_by_label("Diese Datei nehmen").focus();
        h.run();
        h.key_press(egui::Key::Enter);
        h.run();
        drop(h);
        assert_eq!(outcome, Some(Picked::Chosen(dir.path().join("Akten").join("Stellungnahme.odt"))));
    }

    #[test]
    fn a_huge_folder_is_cut_with_a_note_and_an_unreadable_one_says_why() {
        let dir = Scratch::new("huge");
        for i in 0..=MAX_ENTRIES {
            std::fs::write(dir.path().join(format!("{i:04}.txt")), b"").expect("file");
        }
        let p = Picker::new(PickKind::File, dir.path());
        assert_eq!((p.entries.len(), p.cut), (MAX_ENTRIES, true));
        let mut p = Picker::new(PickKind::File, dir.path());
        p.enter(dir.path().join("0001.txt"));
        assert!(p.error.is_some(), "a file is no folder to list");
    }
}
