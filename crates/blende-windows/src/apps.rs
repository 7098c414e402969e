//! The installed applications as their desktop entries describe them (Linux), read from the
//! XDG folders, Flatpak's and Snap's export folders. Read once, then again whenever one of
//! those folders changes (an entry installed or removed), checked at most once a second, so
//! the share guard may ask on every frame.
//!
//! This is the IO half; parsing and lookup are `blende_policy::{DesktopEntry, AppDirectory}`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use blende_policy::{AppDirectory, DesktopEntry};

/// How often the folders' modification times are compared.
const RECHECK: Duration = Duration::from_secs(1);
/// Desktop entries are small; anything larger is not one.
const MAX_ENTRY_BYTES: u64 = 256 * 1024;
/// Folders below an applications folder that are still read (`kde4/`), and how deep.
const MAX_DEPTH: usize = 3;

/// The applications folders, in XDG precedence order (the user's own first): `$XDG_DATA_HOME`
/// (default `~/.local/share`), each of `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`),
/// the user's and the system's Flatpak exports, and Snap's.
pub fn application_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let data_dirs = std::env::var("XDG_DATA_DIRS").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    let mut dirs: Vec<PathBuf> = data_home.iter().cloned().collect();
    dirs.extend(data_dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    if let Some(h) = &home {
        dirs.push(h.join(".local/share/flatpak/exports/share"));
    }
    dirs.push("/var/lib/flatpak/exports/share".into());
    let mut out: Vec<PathBuf> = dirs.into_iter().map(|d| d.join("applications")).collect();
    out.push("/var/lib/snapd/desktop/applications".into());
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| seen.insert(d.clone()));
    out
}

/// Reads every desktop entry under `dirs` (earlier folders win for the same desktop file id).
/// Unreadable files and folders are skipped: a missing entry only means less is known.
pub fn read_directory(dirs: &[PathBuf]) -> AppDirectory {
    let mut entries = Vec::new();
    for dir in dirs {
        collect(dir, "", 0, &mut entries);
    }
    AppDirectory::new(entries)
}

fn collect(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<DesktopEntry>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut children: Vec<_> = read.flatten().collect();
    // A stable order, so the same files always give the same directory.
    children.sort_by_key(std::fs::DirEntry::file_name);
    for child in children {
        let name = child.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(meta) = child.metadata() else { continue };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                collect(&child.path(), &format!("{prefix}{name}-"), depth + 1, out);
            }
        } else if name.ends_with(".desktop") && meta.len() <= MAX_ENTRY_BYTES {
            let Ok(text) = std::fs::read_to_string(child.path()) else { continue };
            if let Some(e) = DesktopEntry::parse(&format!("{prefix}{name}"), &text) {
                out.push(e);
            }
        }
    }
}

struct Cache {
    dirs: Vec<PathBuf>,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
    apps: Arc<AppDirectory>,
}

fn stamps(dirs: &[PathBuf]) -> Vec<Option<SystemTime>> {
    dirs.iter().map(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok()).collect()
}

static CACHE: LazyLock<Mutex<Option<Cache>>> = LazyLock::new(|| Mutex::new(None));

/// The installed applications: read on first use, then again when a folder changed. Cheap
/// between re-reads (a pointer copy; once a second a `stat` per folder).
pub fn installed() -> Arc<AppDirectory> {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    match cache.as_mut() {
        Some(c) if now.duration_since(c.checked) < RECHECK => {}
        Some(c) => {
            c.checked = now;
            let fresh = stamps(&c.dirs);
            if fresh != c.stamps {
                c.stamps = fresh;
                c.apps = Arc::new(read_directory(&c.dirs));
            }
        }
        None => {
            let dirs = application_dirs();
            let stamps = stamps(&dirs);
            let apps = Arc::new(read_directory(&dirs));
            *cache = Some(Cache { dirs, stamps, checked: now, apps });
        }
    }
    cache.as_ref().map(|c| Arc::clone(&c.apps)).unwrap_or_default()
}
