//! `check-layers`: the modules of each crate form no import circle; rules for the app crate.
//!
//! Each source file is a module (`src/a.rs`, `src/a/mod.rs` → `a`; `src/a/b.rs` → `a::b`).
//! An edge goes from a file to every module it names: `crate::x::…`, `super::…` (resolved),
//! and its own child modules (`child::…`). Comments and the `#[cfg(test)]` tail of a file do
//! not count. A circle between modules is an error, and so is any import of the app's `cli`
//! module (the command line is a front, nothing builds on it) or JSON in the app's `ui`. In the
//! app and the call machine no function is longer than [`MAX_FN_LINES`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The longest function the app and the call machine may have (tests aside).
pub const MAX_FN_LINES: usize = 150;

/// Crates whose functions are held to [`MAX_FN_LINES`].
const SHORT_FUNCTIONS: &[&str] = &["blende-app", "blende-call"];

/// One crate's modules and what each names.
#[derive(Debug, Default)]
struct Graph {
    /// Module path → the modules it references.
    edges: BTreeMap<String, BTreeSet<String>>,
    /// Module path → its source text (comments and tests stripped).
    text: BTreeMap<String, String>,
}

pub fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut crates = std::fs::read_dir(root.join("crates")).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect::<Vec<_>>();
    crates.sort();
    let mut modules = 0;
    for dir in crates {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let graph = load(&dir.join("src"))?;
        modules += graph.text.len();
        for circle in circles(&graph) {
            problems.push(format!("{name}: modules import each other in a circle: {}", circle.join(" -> ")));
        }
        if name == "blende-app" {
            problems.extend(app_rules(&graph));
        }
        if SHORT_FUNCTIONS.contains(&name.as_str()) {
            for (module, text) in graph.text.iter().filter(|(m, _)| *m != "tests" && !m.ends_with("::tests")) {
                for (f, lines) in long_functions(text) {
                    problems.push(format!("{name}: `{module}::{f}` has {lines} lines (at most {MAX_FN_LINES})"));
                }
            }
        }
    }
    if problems.is_empty() {
        println!("check-layers: {modules} modules, no import circles, app rules hold");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The app's own rules: nothing builds on the command line; the UI speaks typed events.
fn app_rules(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (module, refs) in &graph.edges {
        if refs.contains("cli") {
            problems.push(format!("blende-app: `{module}` imports `cli` (the command line is a front; move what it needs elsewhere)"));
        }
    }
    for (module, text) in &graph.text {
        if (module == "ui" || module.starts_with("ui::")) && text.contains("serde_json") {
            problems.push(format!("blende-app: `{module}` uses serde_json (JSON exists only at the process edge, in engine::json)"));
        }
    }
    problems
}

fn load(src: &Path) -> Result<Graph, String> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    let mut graph = Graph::default();
    for (module, path) in &files {
        let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        graph.text.insert(module.clone(), strip(&raw));
    }
    let known: BTreeSet<String> = graph.text.keys().cloned().collect();
    for (module, text) in &graph.text {
        let refs = references(module, text, &known);
        graph.edges.insert(module.clone(), refs.into_iter().filter(|r| r != module).collect());
    }
    Ok(graph)
}

/// Every `.rs` file under `dir` with its module path (`""` for the crate root).
fn collect(src: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(src, &path, out)?;
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(src).map_err(|e| e.to_string())?.with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            parts.pop();
        }
        out.push((parts.join("::"), path));
    }
    Ok(())
}

/// The text without comments, module declarations and re-exports (a module's facade is not
/// a use of what it re-exports), and without the test module at the end of the file.
fn strip(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if ["pub use ", "pub(crate) use ", "pub(super) use ", "mod ", "pub mod ", "pub(crate) mod "].iter().any(|p| t.starts_with(p)) {
            out.push('\n');
            continue;
        }
        let code = match line.find("//") {
            // `://` inside a string (a URL) is not a comment.
            Some(i) if !line[..i].ends_with(':') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Functions of more than [`MAX_FN_LINES`] lines: from a line starting `fn`/`pub fn`/`async
/// fn` to the `}` at the same indentation (rustfmt's layout).
fn long_functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let head = ["pub(crate) ", "pub ", ""].iter().find_map(|p| trimmed.strip_prefix(p)).unwrap_or(trimmed);
        let head = head.strip_prefix("async ").unwrap_or(head);
        let Some(rest) = head.strip_prefix("fn ") else { continue };
        let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            let n = end + 2;
            if n > MAX_FN_LINES {
                out.push((name, n));
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The longest known module that `path` (segments from the crate root) lies in.
fn resolve(path: &[&str], known: &BTreeSet<String>) -> Option<String> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| known.contains(m))
}

/// The modules `module`'s text names.
fn references(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    let mut refs = BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        // A path starting here: ident(::ident)* and maybe ::{ a, b::c }.
        let mut segments: Vec<String> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            segments.push(bytes[start..j].iter().collect());
            if j + 2 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' && (is_ident(bytes[j + 2]) || bytes[j + 2] == '{') {
                j += 2;
                if bytes[j] == '{' {
                    let end = bytes[j..].iter().position(|c| *c == '}').map_or(bytes.len(), |p| j + p);
                    let inner: String = bytes[j + 1..end].iter().collect();
                    for item in inner.split(',') {
                        let mut s = segments.clone();
                        s.extend(item.trim().split("::").map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()));
                        add(&here, &s, known, &mut refs);
                    }
                    j = end;
                    segments.clear();
                    break;
                }
                continue;
            }
            break;
        }
        if segments.len() > 1 {
            add(&here, &segments, known, &mut refs);
        }
        i = j.max(i + 1);
    }
    refs
}

/// Resolves one path as written in module `here` and records the module it names.
fn add(here: &[&str], segments: &[String], known: &BTreeSet<String>, refs: &mut BTreeSet<String>) {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let absolute: Vec<&str> = match seg.first() {
        Some(&"crate") => seg[1..].to_vec(),
        Some(&"super") => {
            let ups = seg.iter().take_while(|s| **s == "super").count();
            let mut base = here[..here.len().saturating_sub(ups)].to_vec();
            base.extend(&seg[ups..]);
            base
        }
        Some(&"self") => here.iter().copied().chain(seg[1..].iter().copied()).collect(),
        // A child module named by its bare name.
        Some(first) => {
            let child = here.iter().copied().chain(std::iter::once(*first)).collect::<Vec<_>>().join("::");
            if !known.contains(&child) {
                return;
            }
            here.iter().copied().chain(seg.iter().copied()).collect()
        }
        None => return,
    };
    let target = resolve(&absolute, known).unwrap_or_default();
    if seg.first() == Some(&"super") || seg.first() == Some(&"crate") || !target.is_empty() {
        refs.insert(target);
    }
}

/// Every import circle, each once (strongly connected components of more than one module).
/// The crate root is the crate's facade and left out: its types are what every module shares.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    let nodes: Vec<&String> = graph.edges.keys().filter(|m| !m.is_empty()).collect();
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(n) = stack.pop() {
            for next in graph.edges.get(&n).into_iter().flatten().filter(|m| !m.is_empty()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&str, BTreeSet<String>> = nodes.iter().map(|n| (n.as_str(), reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) {
            continue;
        }
        let component: Vec<String> = nodes
            .iter()
            .filter(|m| reachable[n.as_str()].contains(**m) && reachable[m.as_str()].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if component.len() > 1 {
            done.extend(component.iter().cloned());
            out.push(component.iter().map(|m| if m.is_empty() { "crate".to_owned() } else { m.clone() }).collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let mut g = Graph::default();
        for (m, t) in files {
            g.text.insert((*m).to_owned(), strip(t));
        }
        let known: BTreeSet<String> = g.text.keys().cloned().collect();
        for (m, t) in &g.text {
            g.edges.insert(m.clone(), references(m, t, &known).into_iter().filter(|r| r != m).collect());
        }
        g
    }

    #[test]
    fn finds_a_circle_through_crate_super_and_child_paths() {
        let g = graph(&[
            ("", "pub mod call; pub mod cli; pub mod join; pub mod ui;"),
            ("call", "use crate::cli::parse_window_id;"),
            ("cli", "fn f() { crate::join::run(); }"),
            ("join", "use crate::call::{CallSpec, Hooks};"),
            ("ui", "mod live;\nfn f() -> live::LiveCall { todo() }"),
            ("ui::live", "use super::frames::image; // crate::call::x in a comment\nuse super::bgra_image;"),
        ]);
        let found = circles(&g);
        assert!(found.contains(&vec!["call".to_owned(), "cli".to_owned(), "join".to_owned()]), "{found:?}");
        assert!(found.contains(&vec!["ui".to_owned(), "ui::live".to_owned()]), "{found:?}");
        assert_eq!(app_rules(&g).len(), 1, "call imports cli");
    }

    #[test]
    fn long_functions_are_counted_from_signature_to_closing_brace() {
        let long = format!("    pub async fn run() {{\n{}    }}\n", "        step();\n".repeat(MAX_FN_LINES));
        assert_eq!(long_functions(&long), vec![("run".to_owned(), MAX_FN_LINES + 2)]);
        let short = format!("fn ok() {{\n{}}}\n", "    x();\n".repeat(MAX_FN_LINES - 2));
        assert!(long_functions(&short).is_empty());
    }

    #[test]
    fn layered_modules_pass_and_json_in_the_ui_is_caught() {
        let g = graph(&[
            ("", "pub mod engine; pub mod ui;"),
            ("engine", "mod json; pub use json::print;"),
            ("engine::json", "use serde_json::json;"),
            ("ui", "mod live; mod frames; use frames::image; use crate::engine::{CallEvent, json::print};"),
            ("ui::frames", "pub fn image() {}"),
            ("ui::live", "use super::frames::{image, store}; use crate::engine::Control;\n#[cfg(test)]\nmod tests { use super::*; }"),
        ]);
        assert!(circles(&g).is_empty(), "{:?}", circles(&g));
        assert!(app_rules(&g).is_empty());
        let g = graph(&[("ui", "fn f() { let v = serde_json::json!({}); }")]);
        assert_eq!(app_rules(&g).len(), 1);
    }
}
