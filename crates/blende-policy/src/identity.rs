//! Application identity by words rather than by whole strings.
//!
//! A platform names one program many ways: `Signal`, `signal-desktop`, `Signal Beta`,
//! `org.signal.Signal`, `io.github.mimbrero.WhatsAppDesktop`, `5319275A.WhatsAppDesktop_…!App`,
//! `com.github.IsmaelMartinez.teams_for_linux`. A list of exact names never covers them all, so
//! an identity is matched against a product table ([`Products`]) in three ways, from the
//! strictest:
//! 1. the whole normalised identity (or, for a reverse-DNS id, its product part) is a key;
//! 2. a *distinctive* key (at least five letters and not a common word: `thunderbird`,
//!    `whatsapp`, `telegram`) occurs anywhere in the identity's letters, across word and case
//!    boundaries (`WhatsAppForLinux`, `telegramdesktop`);
//! 3. a *generic* key (a common word: `signal`, `teams`, `element`, `mail`) is the whole
//!    identity once filler words are dropped (`Signal Beta`, `teams_for_linux`,
//!    `SignalDesktop`), never a word inside a longer name (`gnome-session`, `SignalAnalyzer`).
//!
//! Titles never go through this: a spreadsheet called "Telegram-Kosten" is not Telegram.

use crate::fast::{FastMap, trigram};
use crate::normalize::normalize;

/// Words that say how a program is packaged or which edition it is, not which program.
const FILLER: &[&str] = &[
    "desktop",
    "app",
    "application",
    "client",
    "for",
    "linux",
    "windows",
    "win",
    "win32",
    "win64",
    "mac",
    "macos",
    "osx",
    "beta",
    "alpha",
    "nightly",
    "canary",
    "ptb",
    "preview",
    "insider",
    "insiders",
    "dev",
    "stable",
    "pro",
    "work",
    "or",
    "school",
    "business",
    "classic",
    "new",
    "electron",
    "flatpak",
    "snap",
    "portable",
    "x64",
    "x86",
    "64",
    "32",
    "64bit",
    "32bit",
    "bit",
    "setup",
    "launcher",
    "unofficial",
    "official",
    "free",
    "personal",
    "edition",
    "lite",
    "next",
    "web",
    "messenger",
    "plus",
    "the",
    "by",
    "native",
    "release",
    "microsoft",
    "google",
    "apple",
    "facebook",
    "meta",
    "cisco",
    "mozilla",
    "readdle",
    "ibm",
    "exe",
];

/// The last parts of reverse-DNS ids that name no program (`org.telegram.desktop`).
const GENERIC_TAILS: &[&str] = &["desktop", "app", "client", "application", "electron", "launcher", "main", "gui", "bin"];

/// Top-level parts of reverse-DNS ids (an id's first part; `com.slack.Slack`).
fn is_reverse_dns(name: &str) -> bool {
    name.matches('.').count() >= 2 && !name.contains(' ')
}

/// Lower-case letters and digits only: the form keys are compared in.
fn letters(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// The normalised words of a name (split at everything that is not a letter or digit).
fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// One application name, normalised once and then looked up in any number of tables.
pub(crate) struct Identity {
    /// Normalised, `.exe` removed.
    name: String,
    /// Only its letters and digits.
    letters: String,
    /// For a reverse-DNS id, the range of `name` that names the program: its last part, or
    /// the one before a generic last part (`org.telegram.desktop` → `telegram`).
    product: Option<std::ops::Range<usize>>,
}

impl Identity {
    pub(crate) fn new(raw: &str) -> Self {
        let mut name = normalize(raw);
        if let Some(stem) = name.strip_suffix(".exe") {
            name.truncate(stem.len());
        }
        let product = is_reverse_dns(&name).then(|| product_part(&name)).flatten();
        Identity { letters: letters(&name), name, product }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.name.is_empty()
    }

    fn product(&self) -> Option<&str> {
        self.product.clone().map(|r| &self.name[r])
    }
}

fn product_part(name: &str) -> Option<std::ops::Range<usize>> {
    let mut parts: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for p in name.split('.') {
        parts.push((at, p));
        at += p.len() + 1;
    }
    let i = parts.iter().rposition(|(_, p)| !GENERIC_TAILS.contains(p)).filter(|i| *i > 0)?;
    let (start, p) = parts[i];
    Some(start..start + p.len())
}

/// A table of products known by identity, built once.
pub(crate) struct Products<T: 'static> {
    exact: FastMap<String, &'static T>,
    /// Distinctive keys in letters-only form, by their first three bytes.
    distinctive: FastMap<u32, Vec<(String, &'static T)>>,
    /// Generic keys in letters-only form.
    generic: FastMap<String, &'static T>,
}

impl<T> Products<T> {
    /// `keys` are every name of each product; `generic` lists the keys that are common words.
    pub(crate) fn new(items: impl IntoIterator<Item = (&'static T, &'static [&'static str])>, generic: &[&str]) -> Self {
        let mut p = Products { exact: FastMap::default(), distinctive: FastMap::default(), generic: FastMap::default() };
        for (item, keys) in items {
            for key in keys {
                p.exact.entry(normalize(key)).or_insert(item);
                let l = letters(&normalize(key));
                match trigram(l.as_bytes()) {
                    Some(t) if !generic.contains(key) && l.chars().count() >= 5 => p.distinctive.entry(t).or_default().push((l, item)),
                    _ => {
                        p.generic.entry(l).or_insert(item);
                    }
                }
            }
        }
        // Longest first, so "whatsappdesktop" is reported over "whatsapp".
        for list in p.distinctive.values_mut() {
            list.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        }
        p
    }

    /// The product one application name names, and how it was recognised.
    #[cfg(test)]
    pub(crate) fn find(&self, identity: &str) -> Option<(&'static T, Match)> {
        self.find_identity(&Identity::new(identity))
    }

    /// The product an identity names, and how it was recognised.
    pub(crate) fn find_identity(&self, id: &Identity) -> Option<(&'static T, Match)> {
        if id.is_empty() {
            return None;
        }
        if let Some(item) = self.exact.get(&id.name).or_else(|| id.product().and_then(|p| self.exact.get(p))) {
            return Some((item, Match::Exact));
        }
        let all = id.letters.as_bytes();
        for i in 0..all.len().saturating_sub(2) {
            let Some(list) = trigram(&all[i..]).and_then(|t| self.distinctive.get(&t)) else { continue };
            if let Some((key, item)) = list.iter().find(|(k, _)| all[i..].starts_with(k.as_bytes())) {
                return Some((item, Match::Word(key.clone())));
            }
        }
        let scope = id.product().unwrap_or(&id.name);
        let mut kept = words(scope).filter(|w| !FILLER.contains(w));
        let (first, second) = (kept.next(), kept.next());
        let found = match (first, second) {
            // Only filler ("Mail", "Messenger"): the whole of it is the name.
            (None, _) => self.generic.get_key_value(letters(scope).as_str()),
            (Some(one), None) => self.generic.get_key_value(strip_filler(one)),
            (Some(a), Some(b)) => {
                let mut joined = String::with_capacity(scope.len());
                joined.extend([a, b]);
                joined.extend(kept);
                self.generic.get_key_value(joined.as_str())
            }
        };
        found.map(|(key, item)| (*item, Match::Word(key.clone())))
    }
}

/// One word without a filler word glued to its end or start (`signaldesktop`, `teamsbeta`).
fn strip_filler(word: &str) -> &str {
    for f in FILLER.iter().filter(|f| f.len() >= 3) {
        if let Some(stem) = word.strip_suffix(f).or_else(|| word.strip_prefix(f)).filter(|s| s.len() >= 3) {
            return stem;
        }
    }
    word
}

/// How an identity was recognised, for `blende policy explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// The whole name (or a reverse-DNS id's product part) is a known name.
    Exact,
    /// A known name as a word of it.
    Word(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    static ITEMS: [(&str, &[&str]); 6] = [
        ("whatsapp", &["whatsapp"]),
        ("telegram", &["telegram", "telegram desktop"]),
        ("signal", &["signal", "signal-desktop"]),
        ("teams", &["teams", "microsoft teams"]),
        ("session", &["session"]),
        ("outlook", &["outlook", "olk"]),
    ];

    fn products() -> Products<&'static str> {
        Products::new(ITEMS.iter().map(|(n, k)| (n, *k)), &["signal", "teams", "session"])
    }

    fn name(identity: &str) -> Option<&'static str> {
        products().find(identity).map(|(n, _)| *n)
    }

    #[test]
    fn names_with_suffixes_store_and_flatpak_ids_are_recognised() {
        for (identity, product) in [
            ("io.github.mimbrero.WhatsAppDesktop", "whatsapp"),
            ("com.github.eneshecan.WhatsAppForLinux", "whatsapp"),
            ("5319275A.WhatsAppDesktop_cv1g1gvanyjgm!App", "whatsapp"),
            ("org.telegram.desktop", "telegram"),
            ("TelegramDesktop", "telegram"),
            ("Signal Beta", "signal"),
            ("SignalDesktop", "signal"),
            ("org.signal.Signal", "signal"),
            ("Signal Messenger", "signal"),
            ("com.github.IsmaelMartinez.teams_for_linux", "teams"),
            ("Microsoft Teams Preview", "teams"),
            ("OLK.EXE", "outlook"),
            ("Whats\u{200B}App", "whatsapp"),
        ] {
            assert_eq!(name(identity), Some(product), "{identity}");
        }
    }

    #[test]
    fn common_words_inside_longer_names_are_not_products() {
        for identity in ["gnome-session", "xfce4-session", "SignalAnalyzer", "org.gnome.SessionManager", "teamspeak", "olkx", "Outloo"] {
            assert_eq!(name(identity), None, "{identity}");
        }
    }
}
