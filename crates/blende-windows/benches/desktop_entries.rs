//! How long reading the installed desktop entries takes: this machine's own folders, and a
//! typical desktop's worth (300 entries with 60 translations each, about 5 KB apiece, as
//! Debian's GNOME and KDE packages ship them) written to a temporary folder. Prints figures.
//!
//! Run: `cargo bench -p blende-windows --bench desktop_entries`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blende_windows::apps::{application_dirs, read_directory};

const LANGUAGES: [&str; 60] = [
    "af", "ar", "ast", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en_GB", "eo", "es", "et", "eu", "fa", "fi", "fr", "ga",
    "gl", "gu", "he", "hi", "hr", "hu", "id", "is", "it", "ja", "ka", "kk", "km", "kn", "ko", "lt", "lv", "mk", "ml", "mr", "ms", "nb",
    "nl", "nn", "pa", "pl", "pt", "pt_BR", "ro", "ru", "sk", "sl", "sr", "sv", "ta", "th", "tr", "uk",
];

fn typical_folder(count: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blende-bench-entries-{}", std::process::id()));
    let apps = dir.join("applications");
    std::fs::create_dir_all(&apps).expect("temp folder");
    for i in 0..count {
        let mut text = format!(
            "[Desktop Entry]\nType=Application\nName=Program {i}\nExec=/usr/bin/program-{i} %U\nIcon=program-{i}\n\
             StartupWMClass=Program{i}\nCategories={};\n",
            ["Office;WordProcessor", "Network;Email", "Graphics", "Development;IDE", "Network;InstantMessaging"][i % 5]
        );
        for l in LANGUAGES {
            text.push_str(&format!("Name[{l}]=Programm {i} ({l})\nComment[{l}]=Ein Programm, das etwas Nützliches tut ({l})\n"));
        }
        text.push_str("\n[Desktop Action new-window]\nName=New Window\nExec=/usr/bin/program --new-window\n");
        std::fs::write(apps.join(format!("org.example.Program{i}.desktop")), text).expect("entry");
    }
    apps
}

fn median_read(dirs: &[PathBuf], rounds: usize) -> (usize, Duration) {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let d = read_directory(dirs);
            std::hint::black_box(d.len());
            t.elapsed()
        })
        .collect();
    times.sort();
    (read_directory(dirs).len(), times[rounds / 2])
}

fn main() {
    let own = application_dirs();
    let (n, t) = median_read(&own, 21);
    println!("desktop_entries: this machine: {n} entries in {} folders, median read {:.2} ms", own.len(), t.as_secs_f64() * 1e3);
    let folder = typical_folder(300);
    let bytes: u64 = std::fs::read_dir(&folder).expect("folder").flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    let (n, t) = median_read(std::slice::from_ref(&folder), 21);
    println!("desktop_entries: typical desktop: {n} entries, {} KB, median read {:.2} ms", bytes / 1024, t.as_secs_f64() * 1e3);
    let _ = std::fs::remove_dir_all(folder.parent().expect("parent"));
}
