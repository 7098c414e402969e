//! What the operating system says an application is: freedesktop desktop entries on Linux
//! (their `Categories`), and the same facts other platforms give ([`AppFacts`]). Pure: a driver
//! reads the files and hands their text in.
//!
//! A mail or chat program nobody listed still installs a desktop entry that says
//! `Categories=Network;Email;` — so it is blocked on the day it is installed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::verdict::Category;

/// What the platform says about a window's application, beyond the name the window carries.
/// Linux: its desktop entry; Windows: the executable's file description and product name, a
/// Store app's AUMID; macOS: the bundle id and `LSApplicationCategoryType`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AppFacts {
    /// Where the facts come from, for reasons ("desktop entry org.example.Postkutsche.desktop").
    pub source: String,
    /// More names of the application, matched like the window's own application name.
    pub names: Vec<String>,
    /// The platform's categories (desktop-entry `Categories`, macOS `LSApplicationCategoryType`).
    pub categories: Vec<String>,
}

/// Platform categories that mean mail or chat, and what the policy calls them.
pub(crate) const BLOCKED_CATEGORIES: &[(&str, Category)] = &[
    ("email", Category::Mail),
    ("instantmessaging", Category::Messenger),
    ("chat", Category::Messenger),
    ("ircclient", Category::Messenger),
    // macOS: what Apple files WhatsApp, Telegram, Signal and Threema under.
    ("public.app-category.social-networking", Category::Messenger),
];

impl AppFacts {
    /// The facts as `blende policy classify` and the window corpus write them: categories
    /// separated by `;` (a desktop entry's `Categories` value), names by `|`. `None` when both
    /// are empty. A name ending in `.desktop` is the source.
    pub fn from_columns(categories: &str, names: &str) -> Option<Arc<Self>> {
        let categories: Vec<String> = categories.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
        let names: Vec<String> = names.split('|').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
        if categories.is_empty() && names.is_empty() {
            return None;
        }
        let source =
            names.iter().find(|n| n.ends_with(".desktop")).map_or_else(|| "platform facts".to_owned(), |d| format!("desktop entry {d}"));
        Some(Arc::new(AppFacts { source, names, categories }))
    }

    /// The first category that means mail or chat, with the platform's own spelling.
    pub(crate) fn blocked_category(&self) -> Option<(&str, Category)> {
        self.categories.iter().find_map(|c| {
            let lower = c.trim().to_ascii_lowercase();
            BLOCKED_CATEGORIES.iter().find(|(name, _)| *name == lower).map(|(_, category)| (c.trim(), *category))
        })
    }
}

/// One desktop entry's `[Desktop Entry]` group, as far as identity goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesktopEntry {
    /// The desktop file id (`org.gnome.Evolution.desktop`; subfolders joined with `-`).
    pub id: String,
    pub name: String,
    /// The program `Exec` starts, without its folder (`evolution`).
    pub exec: String,
    pub startup_wm_class: Option<String>,
    /// `X-Flatpak`: the Flatpak app id.
    pub flatpak: Option<String>,
    pub categories: Vec<String>,
}

/// Programs that only start another one: `Exec=env FOO=1 geary`, `sh -c …`.
const WRAPPERS: &[&str] = &["env", "sh", "bash", "dash", "python", "python3", "perl", "java", "mono", "wine", "gtk-launch"];

impl DesktopEntry {
    /// Parses a desktop entry's text. `None` for anything that is not a visible application
    /// (`Type` other than `Application`, `Hidden=true`) or has no `[Desktop Entry]` group.
    pub fn parse(id: &str, text: &str) -> Option<Self> {
        let mut in_main = false;
        let mut seen_main = false;
        let (mut kind, mut hidden) = (None, false);
        let mut e = DesktopEntry {
            id: id.to_owned(),
            name: String::new(),
            exec: String::new(),
            startup_wm_class: None,
            flatpak: None,
            categories: Vec::new(),
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_main = line == "[Desktop Entry]";
                seen_main |= in_main;
                continue;
            }
            if !in_main || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "Type" => kind = Some(value == "Application"),
                "Hidden" => hidden = value == "true",
                "Name" => e.name = value.to_owned(),
                "Exec" => e.exec = exec_program(value),
                "StartupWMClass" if !value.is_empty() => e.startup_wm_class = Some(value.to_owned()),
                "X-Flatpak" if !value.is_empty() => e.flatpak = Some(value.to_owned()),
                "Categories" => e.categories = value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                _ => {}
            }
        }
        (seen_main && kind == Some(true) && !hidden).then_some(e)
    }

    /// The names a window of this application may carry, lower-case, most specific first:
    /// `StartupWMClass`, the Flatpak id, the desktop file id, the program, the id's last part.
    fn keys(&self) -> Vec<String> {
        let stem = self.id.strip_suffix(".desktop").unwrap_or(&self.id);
        let mut keys: Vec<String> = [self.startup_wm_class.as_deref(), self.flatpak.as_deref(), Some(stem), Some(self.exec.as_str())]
            .into_iter()
            .flatten()
            .map(str::to_lowercase)
            .collect();
        if let Some(last) = stem.rsplit('.').next().filter(|l| *l != stem) {
            keys.push(last.to_lowercase());
        }
        keys.retain(|k| !k.is_empty());
        keys
    }

    fn facts(&self) -> AppFacts {
        let stem = self.id.strip_suffix(".desktop").unwrap_or(&self.id);
        let mut names: Vec<String> = vec![stem.to_owned()];
        for n in [Some(self.name.as_str()), Some(self.exec.as_str()), self.flatpak.as_deref(), self.startup_wm_class.as_deref()]
            .into_iter()
            .flatten()
        {
            if !n.is_empty() && !names.iter().any(|m| m == n) {
                names.push(n.to_owned());
            }
        }
        AppFacts { source: format!("desktop entry {}", self.id), names, categories: self.categories.clone() }
    }
}

/// The program an `Exec` line starts: its first word that is not a wrapper or an assignment,
/// without folder. For `flatpak run … <app-id>` the app id.
fn exec_program(exec: &str) -> String {
    let words = exec_words(exec);
    let mut words = words.iter().map(String::as_str);
    while let Some(w) = words.next() {
        let base = w.rsplit('/').next().unwrap_or(w);
        if base.contains('=') || WRAPPERS.contains(&base) || base.starts_with('-') {
            continue;
        }
        if base == "flatpak" {
            return words.find(|a| !a.starts_with('-') && *a != "run").map(str::to_owned).unwrap_or_default();
        }
        return base.to_owned();
    }
    String::new()
}

/// The words of an `Exec` value; double quotes group (the spec's quoting, without escapes).
fn exec_words(exec: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in exec.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Every installed application the desktop entries describe, looked up by the names its
/// windows carry. Earlier entries win (the user's own folder comes first, as in the XDG spec).
#[derive(Clone, Debug, Default)]
pub struct AppDirectory {
    by_key: HashMap<String, Arc<AppFacts>>,
    entries: usize,
}

impl AppDirectory {
    /// Builds the directory from parsed entries, in precedence order. An id seen before is
    /// skipped, so a user's entry hides the system's.
    pub fn new(entries: impl IntoIterator<Item = DesktopEntry>) -> Self {
        let mut ids = std::collections::HashSet::new();
        let kept: Vec<(Vec<String>, Arc<AppFacts>)> =
            entries.into_iter().filter(|e| ids.insert(e.id.clone())).map(|e| (e.keys(), Arc::new(e.facts()))).collect();
        let mut dir = AppDirectory { by_key: HashMap::new(), entries: kept.len() };
        // Most specific keys of every entry first, so one entry's `StartupWMClass` beats
        // another's program name.
        let depth = kept.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for level in 0..depth {
            for (keys, facts) in &kept {
                if let Some(k) = keys.get(level) {
                    dir.by_key.entry(k.clone()).or_insert_with(|| Arc::clone(facts));
                }
            }
        }
        dir
    }

    /// The facts of the application whose window carries one of `names` (X11: `WM_CLASS`
    /// class and instance; Wayland: the app id), compared without case.
    pub fn lookup<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<Arc<AppFacts>> {
        let mut key = String::new();
        names.into_iter().find_map(|n| {
            key.clear();
            key.extend(n.chars().flat_map(char::to_lowercase));
            self.by_key.get(&key).cloned()
        })
    }

    /// How many desktop entries it was built from.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTKUTSCHE: &str = "[Desktop Entry]\nType=Application\nName=Postkutsche\nExec=/opt/postkutsche/bin/postkutsche %u\n\
        StartupWMClass=Postkutsche\nCategories=Network;Email;\n\n[Desktop Action compose]\nName=Verfassen\nCategories=Game;\n";

    #[test]
    fn entries_parse_their_main_group_only() {
        let e = DesktopEntry::parse("de.example.Postkutsche.desktop", POSTKUTSCHE).expect("entry");
        assert_eq!(e.exec, "postkutsche");
        assert_eq!(e.startup_wm_class.as_deref(), Some("Postkutsche"));
        assert_eq!(e.categories, ["Network", "Email"]);
        assert_eq!(e.name, "Postkutsche");
        assert!(DesktopEntry::parse("x.desktop", "[Desktop Entry]\nType=Link\nName=x\n").is_none());
        assert!(DesktopEntry::parse("x.desktop", "[Desktop Entry]\nType=Application\nHidden=true\n").is_none());
        assert!(DesktopEntry::parse("x.desktop", "Type=Application\n").is_none(), "no group");
        assert!(DesktopEntry::parse("x.desktop", "\u{0}\u{1}[[[==\n").is_none());
    }

    #[test]
    fn exec_lines_name_the_program_behind_wrappers_and_flatpak() {
        assert_eq!(exec_program("env GDK_BACKEND=x11 /usr/bin/geary %U"), "geary");
        assert_eq!(
            exec_program("/usr/bin/flatpak run --branch=stable --arch=x86_64 --command=signal-desktop org.signal.Signal"),
            "org.signal.Signal"
        );
        assert_eq!(exec_program("\"/opt/Mail Tool/mt\" --x"), "mt");
        assert_eq!(exec_program(""), "");
    }

    #[test]
    fn windows_find_their_entry_by_class_id_or_program_and_users_win() {
        let system = DesktopEntry::parse("de.example.Postkutsche.desktop", POSTKUTSCHE).expect("entry");
        let user = DesktopEntry::parse(
            "de.example.Postkutsche.desktop",
            "[Desktop Entry]\nType=Application\nName=P\nExec=postkutsche\nCategories=Office;\n",
        )
        .expect("entry");
        let geary = DesktopEntry::parse(
            "org.gnome.Geary.desktop",
            "[Desktop Entry]\nType=Application\nName=Geary\nExec=geary %U\nCategories=Network;Email;\n",
        )
        .expect("entry");
        let dir = AppDirectory::new([user, system, geary]);
        assert_eq!(dir.len(), 2, "the user's entry hides the system's of the same id");
        assert_eq!(dir.lookup(["postkutsche"]).expect("by program").categories, ["Office"]);
        let g = dir.lookup(["nothing", "GEARY"]).expect("by program, any case");
        assert_eq!(g.blocked_category(), Some(("Email", Category::Mail)));
        assert_eq!(g.source, "desktop entry org.gnome.Geary.desktop");
        assert!(dir.lookup(["org.gnome.geary"]).is_some(), "by desktop id");
        assert!(dir.lookup(["evince"]).is_none());
    }
}
