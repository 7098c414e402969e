//! Adding a personal block rule to the user's settings file: text in, text out. The settings
//! screen calls this, then writes the file; nothing here reads or writes files.
//!
//! The user layer can only add blocks (see the crate docs), so this is the only edit the app
//! makes to it. The result is checked by parsing it as a user layer before it is returned: a
//! file that would fail (and so block every share) is never produced.

use crate::{Policy, PolicyError, Source};

/// What a personal rule matches on. One of them, as the settings screen offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewBlock {
    /// An application, as the window system names it (`WM_CLASS`, the `.exe`, the bundle).
    App(String),
    /// A piece of the window title.
    TitleContains(String),
    /// A site as browsers show it in the title.
    Site(String),
}

/// Why a rule could not be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddRuleError {
    #[error("the rule is empty")]
    Empty,
    #[error("the rule is too long (at most 200 characters)")]
    TooLong,
    #[error("the settings file is broken; fix or remove it first: {0}")]
    BrokenFile(String),
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `existing` (the settings file's text, empty if there is none) with one more
/// `[[share.block]]` appended.
///
/// # Errors
/// An empty or over-long rule, or an existing file that does not parse.
pub fn add_user_block(existing: &str, rule: &NewBlock, reason: Option<&str>) -> Result<String, AddRuleError> {
    let (key, value) = match rule {
        NewBlock::App(v) => ("app", v),
        NewBlock::TitleContains(v) => ("title_contains", v),
        NewBlock::Site(v) => ("site", v),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(AddRuleError::Empty);
    }
    if value.chars().count() > 200 || reason.is_some_and(|r| r.chars().count() > 200) {
        return Err(AddRuleError::TooLong);
    }
    let check = |text: &str| -> Result<(), PolicyError> {
        Policy::try_from_sources(None, Some(Source { name: "settings.toml", text })).map(|_| ())
    };
    check(existing).map_err(|e| AddRuleError::BrokenFile(e.to_string()))?;
    let mut text = existing.trim_end().to_owned();
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str("[[share.block]]\n");
    text.push_str(&format!("{key} = {}\n", toml_string(value)));
    if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        text.push_str(&format!("reason = {}\n", toml_string(r)));
    }
    // Cannot fail for text built above; checked anyway so a mistake here fails loudly.
    check(&text).map_err(|e| AddRuleError::BrokenFile(e.to_string()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Os, Verdict, WindowInfo, WindowKind};

    fn window(app: &str, title: &str) -> WindowInfo {
        WindowInfo { kind: WindowKind::Normal, ..WindowInfo::new(Os::Linux, app, title) }
    }

    #[test]
    fn an_added_rule_blocks_and_keeps_earlier_content() {
        let first = add_user_block("", &NewBlock::TitleContains("Geheimprojekt".into()), Some("privat")).expect("add");
        let second = add_user_block(&first, &NewBlock::App("KeePassXC".into()), None).expect("add");
        assert!(second.starts_with(&first.trim_end().to_owned()));
        let policy = Policy::try_from_sources(None, Some(Source { name: "s", text: &second })).expect("parses");
        assert!(matches!(policy.classify(&window("XTerm", "Plan Geheimprojekt 2027")), Verdict::Block { .. }));
        assert!(matches!(policy.classify(&window("KeePassXC", "db.kdbx")), Verdict::Block { .. }));
        assert_eq!(policy.classify(&window("XTerm", "Haushaltsplan")), Verdict::Allow);
    }

    #[test]
    fn hostile_text_is_escaped_not_interpreted() {
        let tricky = "x\"\n[share]\nmode = \"allowlist\"\n\\";
        let text = add_user_block("", &NewBlock::TitleContains(tricky.into()), None).expect("escaped");
        let policy = Policy::try_from_sources(None, Some(Source { name: "s", text: &text })).expect("parses");
        assert!(policy.failure().is_none());
        // Still blocklist mode: the user could not switch to an allowlist through a title.
        assert_eq!(policy.classify(&window("XTerm", "Haushaltsplan")), Verdict::Allow);
    }

    #[test]
    fn empty_long_and_broken_files_are_refused() {
        assert_eq!(add_user_block("", &NewBlock::Site("  ".into()), None), Err(AddRuleError::Empty));
        assert_eq!(add_user_block("", &NewBlock::Site("a".repeat(201)), None), Err(AddRuleError::TooLong));
        assert!(matches!(add_user_block("[share\n", &NewBlock::App("x".into()), None), Err(AddRuleError::BrokenFile(_))));
        // A user file may not loosen the policy: such a file is broken, and stays untouched.
        assert!(matches!(
            add_user_block("[share]\nallow_full_screen = true\n", &NewBlock::App("x".into()), None),
            Err(AddRuleError::BrokenFile(_))
        ));
    }
}
