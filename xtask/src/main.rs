//! Project automation, run as `cargo xtask <task>`.
//!
//! - `check-deps`: fails when a pure crate pulls in IO or UI dependencies, directly or
//!   transitively (the idea of rerun's `check_forbidden_dependencies.py`). Each pure crate's
//!   tree is resolved on its own (`cargo tree -p`), so a feature that only the app turns on
//!   (`blende-signal/io`) does not count against a crate that does not.
//! - `check-layers`: fails when the modules of a crate import each other in a circle, when
//!   anything imports the command-line module, or when the UI speaks JSON.

mod layers;

use std::process::{Command, ExitCode};

/// Crates that must stay sans-IO.
const PURE: &[&str] =
    &["blende-policy", "blende-meeting", "blende-guard", "blende-media", "blende-room", "blende-call", "blende-notice", "blende-p2p"];
/// What a pure crate may never depend on: runtimes, sockets and TLS, UI, devices, windows,
/// WebRTC, storage and password hashing.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "mio",
    "egui",
    "eframe",
    "winit",
    "xcap",
    "x11rb",
    "webrtc",
    "rtc",
    "cpal",
    "nokhwa",
    "keyring",
    "reqwest",
    "tungstenite",
    "tokio-tungstenite",
    "native-tls",
    "rustls",
    "global-hotkey",
    "sqlx",
    "argon2",
];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "check-deps" => check_deps(),
        // An optional path checks another checkout (for a look at an old tree).
        "check-layers" => {
            // `cargo run` names the invoking checkout at run time; the compile-time path would be
            // whichever checkout last built this binary into a shared target folder.
            let manifest =
                std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from);
            let root = std::env::args().nth(2).map_or_else(|| manifest.join(".."), Into::into);
            layers::check(&root)
        }
        _ => Err("usage: cargo xtask check-deps | check-layers".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_deps() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut violations = Vec::new();
    for root in PURE {
        let out = Command::new(&cargo)
            .args(["tree", "-p", root, "-e", "normal", "--prefix", "depth", "--format", "{p}", "--locked"])
            .output()
            .map_err(|e| format!("cargo tree: {e}"))?;
        if !out.status.success() {
            // A pure crate that was renamed away must not make the check pass silently.
            return Err(format!("cargo tree -p {root}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        violations.extend(forbidden_paths(&String::from_utf8_lossy(&out.stdout), FORBIDDEN));
    }
    if violations.is_empty() {
        println!("check-deps: {} pure crates free of {} forbidden dependencies", PURE.len(), FORBIDDEN.len());
        Ok(())
    } else {
        Err(format!("forbidden dependencies:\n  {}", violations.join("\n  ")))
    }
}

/// Every forbidden crate in one `cargo tree --prefix depth --format {p}` listing, with the path
/// that reaches it.
fn forbidden_paths(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut violations = Vec::new();
    for line in tree.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else { continue };
        let name = line[digits..].split_whitespace().next().unwrap_or_default();
        path.truncate(depth);
        path.push(name);
        if depth > 0 && forbidden.contains(&name) {
            violations.push(path.join(" -> "));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_transitive_forbidden_dependency_with_its_path() {
        let tree = "0blende-policy v0.1.0 (/x)\n1helper v1.0.0\n2tokio v1.0.0\n1toml v0.9.0\n";
        assert_eq!(forbidden_paths(tree, &["tokio"]), vec!["blende-policy -> helper -> tokio".to_owned()]);
        assert!(forbidden_paths("0blende-policy v0.1.0\n1toml v0.9.0\n", &["tokio"]).is_empty());
        let tree = "0blende-call v0.1.0\n1blende-signal v0.1.0\n2serde v1\n1blende-room v0.1.0\n2sqlx v0.8\n";
        assert_eq!(forbidden_paths(tree, &["sqlx"]), vec!["blende-call -> blende-room -> sqlx".to_owned()]);
    }
}
