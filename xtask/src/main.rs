//! Project automation, run as `cargo xtask <task>`.
//!
//! - `check-deps`: fails when a pure crate pulls in IO or UI dependencies, directly or
//!   transitively (the idea of rerun's `check_forbidden_dependencies.py`).

use std::process::{Command, ExitCode};

use serde_json::Value;

/// Crates that must stay sans-IO, and what they may never depend on.
const PURE: &[&str] = &["blende-policy", "blende-meeting", "blende-guard", "blende-media", "blende-room"];
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
    "global-hotkey",
];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "check-deps" => check_deps(),
        _ => Err("usage: cargo xtask check-deps".to_owned()),
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
    let out =
        Command::new(cargo).args(["metadata", "--format-version", "1", "--locked"]).output().map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let violations = forbidden_paths(&meta, PURE, FORBIDDEN)?;
    if violations.is_empty() {
        println!("check-deps: {} pure crates free of {} forbidden dependencies", PURE.len(), FORBIDDEN.len());
        Ok(())
    } else {
        Err(format!("forbidden dependencies:\n  {}", violations.join("\n  ")))
    }
}

/// For each pure crate in the workspace, every forbidden crate reachable through normal
/// (non-dev, non-build) dependencies, with the path that reaches it.
fn forbidden_paths(meta: &Value, pure: &[&str], forbidden: &[&str]) -> Result<Vec<String>, String> {
    let packages = meta["packages"].as_array().ok_or("no packages")?;
    let name_of = |id: &str| packages.iter().find(|p| p["id"] == id).and_then(|p| p["name"].as_str()).unwrap_or(id).to_owned();
    let nodes = meta["resolve"]["nodes"].as_array().ok_or("no resolve graph")?;
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id);
    let mut violations = Vec::new();
    for root in pure {
        // A pure crate that was renamed away must not make the check pass silently.
        let root_pkg = packages
            .iter()
            .find(|p| p["name"] == *root && p["source"].is_null())
            .ok_or(format!("pure crate {root} not in the workspace"))?;
        let mut stack = vec![(root_pkg["id"].as_str().unwrap_or_default().to_owned(), vec![(*root).to_owned()])];
        let mut seen = std::collections::HashSet::new();
        while let Some((id, path)) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(n) = node(&id) else { continue };
            for dep in n["deps"].as_array().into_iter().flatten() {
                let normal = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
                if !normal {
                    continue;
                }
                let dep_id = dep["pkg"].as_str().unwrap_or_default().to_owned();
                let dep_name = name_of(&dep_id);
                let mut p = path.clone();
                p.push(dep_name.clone());
                if forbidden.contains(&dep_name.as_str()) {
                    violations.push(p.join(" -> "));
                } else {
                    stack.push((dep_id, p));
                }
            }
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(edges: &[(&str, &str, &str)]) -> Value {
        let names: std::collections::BTreeSet<&str> = edges.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        let packages: Vec<Value> = names.iter().map(|n| serde_json::json!({"id": n, "name": n, "source": if n.starts_with("blende") { Value::Null } else { "registry".into() }})).collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|n| {
                let deps: Vec<Value> = edges
                    .iter()
                    .filter(|(a, _, _)| a == n)
                    .map(|(_, b, kind)| serde_json::json!({"pkg": b, "dep_kinds": [{"kind": if kind.is_empty() { Value::Null } else { (*kind).into() }}]}))
                    .collect();
                serde_json::json!({"id": n, "deps": deps})
            })
            .collect();
        serde_json::json!({"packages": packages, "resolve": {"nodes": nodes}})
    }

    #[test]
    fn finds_transitive_forbidden_dependency() {
        let m = meta(&[("blende-policy", "helper", ""), ("helper", "tokio", "")]);
        assert_eq!(forbidden_paths(&m, &["blende-policy"], &["tokio"]), Ok(vec!["blende-policy -> helper -> tokio".to_owned()]));
    }

    #[test]
    fn dev_dependencies_are_allowed() {
        let m = meta(&[("blende-policy", "tokio", "dev"), ("blende-policy", "toml", "")]);
        assert_eq!(forbidden_paths(&m, &["blende-policy"], &["tokio"]), Ok(vec![]));
        assert!(forbidden_paths(&m, &["blende-gone"], &["tokio"]).is_err());
    }
}
