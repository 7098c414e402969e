//! Keyboard shortcuts as the policy file writes them ("Ctrl+Alt+M").

use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Modifiers {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub super_key: bool,
}

/// A validated shortcut: modifiers plus one key, kept in canonical spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hotkey {
    pub modifiers: Modifiers,
    /// Canonical key name: `A`–`Z`, `0`–`9`, `F1`–`F24`, `Pause`, `ScrollLock`, `Space`,
    /// `Insert`, `Delete`, `Home`, `End`, `PageUp`, `PageDown`.
    pub key: String,
}

const NAMED_KEYS: [&str; 9] = ["Pause", "ScrollLock", "Space", "Insert", "Delete", "Home", "End", "PageUp", "PageDown"];

impl Hotkey {
    /// Parses "Ctrl+Alt+M". A shortcut needs a modifier unless its key is a function key or
    /// Pause/ScrollLock, so typing in other programs never triggers a switch by accident.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut modifiers = Modifiers::default();
        let parts: Vec<&str> = s.split('+').map(str::trim).collect();
        let Some((key, mods)) = parts.split_last() else {
            return Err("empty shortcut".into());
        };
        for m in mods {
            let flag = match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" | "strg" => &mut modifiers.ctrl,
                "alt" => &mut modifiers.alt,
                "shift" | "umschalt" => &mut modifiers.shift,
                "super" | "meta" | "win" | "cmd" | "command" => &mut modifiers.super_key,
                other => return Err(format!("unknown modifier `{other}` (use Ctrl, Alt, Shift, Super)")),
            };
            if *flag {
                return Err(format!("modifier `{m}` given twice"));
            }
            *flag = true;
        }
        let key = canonical_key(key).ok_or_else(|| format!("unknown key `{key}`"))?;
        let standalone = key.starts_with('F') && key.len() > 1 || key == "Pause" || key == "ScrollLock";
        if modifiers == Modifiers::default() && !standalone {
            return Err(format!("`{key}` alone would fire while typing: add a modifier such as Ctrl+Alt"));
        }
        Ok(Hotkey { modifiers, key })
    }
}

fn canonical_key(key: &str) -> Option<String> {
    let mut chars = key.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return c.is_ascii_alphanumeric().then(|| c.to_ascii_uppercase().to_string());
    }
    let upper = key.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix('F').and_then(|n| n.parse::<u8>().ok()) {
        return (1..=24).contains(&n).then(|| format!("F{n}"));
    }
    NAMED_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)).map(|k| (*k).to_owned())
}

impl fmt::Display for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.modifiers;
        for (on, name) in [(m.ctrl, "Ctrl+"), (m.alt, "Alt+"), (m.shift, "Shift+"), (m.super_key, "Super+")] {
            if on {
                f.write_str(name)?;
            }
        }
        f.write_str(&self.key)
    }
}

/// The four kill-switch shortcuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hotkeys {
    pub camera: Hotkey,
    pub microphone: Hotkey,
    pub screen_share: Hotkey,
    pub all_off: Hotkey,
}

impl Default for Hotkeys {
    fn default() -> Self {
        let k = |s: &str| Hotkey::parse(s).unwrap_or_else(|e| unreachable!("built-in hotkey {s}: {e}"));
        Hotkeys { camera: k("Ctrl+Alt+V"), microphone: k("Ctrl+Alt+M"), screen_share: k("Ctrl+Alt+S"), all_off: k("Ctrl+Alt+X") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        assert_eq!(Hotkey::parse("ctrl + alt + m").map(|h| h.to_string()), Ok("Ctrl+Alt+M".into()));
        assert_eq!(Hotkey::parse("Pause").map(|h| h.to_string()), Ok("Pause".into()));
        assert_eq!(Hotkey::parse("Shift+f12").map(|h| h.to_string()), Ok("Shift+F12".into()));
    }

    #[test]
    fn rejects_bad_shortcuts() {
        assert!(Hotkey::parse("M").is_err());
        assert!(Hotkey::parse("Ctrl+Ctrl+M").is_err());
        assert!(Hotkey::parse("Hyper+M").is_err());
        assert!(Hotkey::parse("Ctrl+F25").is_err());
        assert!(Hotkey::parse("").is_err());
    }
}
