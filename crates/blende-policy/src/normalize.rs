//! Text normalisation that makes matching robust against the ways titles vary:
//! case, Unicode dashes, zero-width and bidi control characters, odd spaces, unread counters.

/// Lower-case, dashes folded to `-`, invisible characters dropped, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        match c {
            // Zero-width characters, soft hyphen, bidi marks and overrides: invisible, so a
            // title may carry them to dodge a rule (Edge puts U+200B into "Microsoft​ Edge").
            '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}' => {}
            // Every kind of dash or minus.
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2E3A}' | '\u{2E3B}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                flush_space(&mut out, &mut pending_space);
                out.push('-');
            }
            c if c.is_whitespace() || c == '\u{00A0}' || c == '\u{202F}' || c.is_control() => {
                pending_space = true;
            }
            c => {
                flush_space(&mut out, &mut pending_space);
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

fn flush_space(out: &mut String, pending: &mut bool) {
    if *pending && !out.is_empty() {
        out.push(' ');
    }
    *pending = false;
}

/// Separators between the parts of a window title ("Inbox - Gmail - Google Chrome").
/// Applied to normalised text, where all dashes are already `-`.
const SEPARATORS: [&str; 7] = [" - ", " | ", " :: ", " • ", " · ", " : ", " / "];

/// Splits a normalised title into its parts, each with unread counters and
/// "and N more tabs" suffixes removed. Empty parts are dropped.
pub fn segments(normalized_title: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    // One linear pass: every separator begins with a space.
    while let Some(off) = normalized_title[i..].find(' ') {
        let at = i + off;
        match SEPARATORS.iter().find(|sep| normalized_title[at..].starts_with(*sep)) {
            Some(sep) => {
                // `at < start` when this separator shares its space with the previous one.
                out.push(clean_segment(normalized_title.get(start..at).unwrap_or_default()));
                start = at + sep.len();
                // The separator's closing space may open the next separator (" - - ").
                i = at + sep.len() - 1;
            }
            None => i = at + 1,
        }
    }
    out.push(clean_segment(&normalized_title[start..]));
    out.retain(|s| !s.is_empty());
    out
}

/// Removes unread counters like "(3)", "[12]", "(99+)", "(5 ungelesen)" and the tab-group
/// suffix "und 3 weitere Seiten" / "and 3 more pages", then trims.
pub(crate) fn clean_segment(segment: &str) -> String {
    let without_counters = strip_counters(segment);
    let words: Vec<&str> = without_counters.split_whitespace().collect();
    let keep = strip_more_tabs(&words);
    words[..keep].join(" ")
}

fn strip_counters(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(['(', '[']) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        match counter_len(after) {
            Some(len) => rest = &after[len..],
            None => {
                let open_len = after.chars().next().map_or(1, char::len_utf8);
                out.push_str(&after[..open_len]);
                rest = &after[open_len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length in bytes of a counter at the start of `s`, if there is one.
fn counter_len(s: &str) -> Option<usize> {
    let close = if s.starts_with('(') { ')' } else { ']' };
    let end = s.find(close)?;
    let inner = s[1..end].trim();
    // Digits, with thousands separators after the first ("1,024", "1.024").
    let digits_end = inner.find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.')).unwrap_or(inner.len());
    if !inner.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if digits_end == 0 {
        return None;
    }
    let tail = inner[digits_end..].trim_start_matches('+').trim();
    const WORDS: [&str; 8] = ["", "ungelesen", "ungelesene", "unread", "neu", "neue", "new", "nachrichten"];
    WORDS.contains(&tail).then_some(end + close.len_utf8())
}

/// Number of words to keep once a trailing "und N weitere Seiten" / "and N more tabs" is cut.
fn strip_more_tabs(words: &[&str]) -> usize {
    if let [head @ .., conj, n, more, noun] = words {
        let german = *conj == "und" && *more == "weitere" && matches!(*noun, "seite" | "seiten" | "tabs" | "registerkarten");
        let english = *conj == "and" && *more == "more" && matches!(*noun, "page" | "pages" | "tab" | "tabs");
        if (german || english) && n.chars().all(|c| c.is_ascii_digit()) {
            return head.len();
        }
    }
    words.len()
}

/// The identity keys of an application name: the whole normalised name without `.exe`,
/// and for reverse-DNS identifiers (`org.gnome.Evolution`, `com.apple.mail`) the last part.
pub fn app_keys(app_name: &str) -> Vec<String> {
    let mut name = normalize(app_name);
    if let Some(stem) = name.strip_suffix(".exe") {
        name.truncate(stem.len());
    }
    let mut keys = Vec::with_capacity(2);
    if name.matches('.').count() >= 2
        && !name.contains(' ')
        && let Some(last) = name.rsplit('.').next().filter(|l| !l.is_empty())
    {
        keys.push(last.to_owned());
    }
    keys.insert(0, name);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_dashes_and_invisible_characters() {
        assert_eq!(normalize("Mail – Profil 1 — Microsoft\u{200B} Edge"), "mail - profil 1 - microsoft edge");
        assert_eq!(normalize("  A\u{00A0}\u{00A0}b\t\nC  "), "a b c");
        assert_eq!(normalize("G\u{202E}mail"), "gmail");
    }

    #[test]
    fn segments_drop_counters_and_tab_groups() {
        assert_eq!(segments(&normalize("(3) WhatsApp - Google Chrome")), ["whatsapp", "google chrome"]);
        assert_eq!(segments(&normalize("Gmail - Inbox (7) - a@b.de")), ["gmail", "inbox", "a@b.de"]);
        assert_eq!(
            segments(&normalize("Posteingang – Max – Outlook und 3 weitere Seiten - Persönlich")),
            ["posteingang", "max", "outlook", "persönlich"]
        );
        assert_eq!(segments(&normalize("Evolution (5 ungelesen)")), ["evolution"]);
        // Parentheses that are not counters stay.
        assert_eq!(segments(&normalize("Signal (Software) – Wikipedia")), ["signal (software)", "wikipedia"]);
        assert_eq!(segments(&normalize("Roundcube Webmail :: Posteingang")), ["roundcube webmail", "posteingang"]);
        assert_eq!(segments("a - - b | | c"), ["a", "b", "c"]);
        assert_eq!(segments(" - "), Vec::<String>::new());
    }

    #[test]
    fn app_keys_strip_exe_and_reverse_dns() {
        assert_eq!(app_keys("OUTLOOK.EXE"), ["outlook"]);
        assert_eq!(app_keys("org.gnome.Evolution"), ["org.gnome.evolution", "evolution"]);
        assert_eq!(app_keys("Rocket.Chat"), ["rocket.chat"]);
        assert_eq!(app_keys("WEB.DE"), ["web.de"]);
    }
}
