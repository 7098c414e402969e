//! A file name a peer sent, made safe for the receiver's folder.
//!
//! The sender chooses the name; the receiver's machine must never let it pick the folder, hide
//! its real extension, name a device, or replace an existing file. [`safe_file_name`] keeps
//! only the last path component, drops what cannot be seen or is not allowed on Windows or
//! Linux, and shortens long names while keeping the extension; [`candidates`] gives the names to
//! try in turn (`Bescheid.pdf`, `Bescheid (2).pdf`, …): the driver creates the file with
//! "create new" and takes the next on "exists", so nothing is ever overwritten.

use crate::chat::is_hidden;

/// Longest name in bytes (UTF-8): below the 255 of ext4 and NTFS, with room for ` (999)`.
pub const MAX_NAME_BYTES: usize = 200;
/// How many numbered alternatives [`candidates`] gives.
pub const MAX_CANDIDATES: u32 = 999;
/// What a name that is nothing but removed characters becomes.
pub const FALLBACK: &str = "document";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    #[error("every name from {first} to its {MAX_CANDIDATES}th alternative is taken")]
    AllTaken { first: String },
}

/// Device names Windows reserves in every folder, with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4",
    "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "CONIN$", "CONOUT$",
];

/// The name to save a received document under (inside the folder the user chose).
#[must_use]
pub fn safe_file_name(sent: &str) -> String {
    // Only the last component, whichever separator the sender's system uses.
    let last = sent.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last
        .chars()
        .filter(|&c| !is_hidden(c))
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    // Leading dots hide a file (and `..` climbs); trailing dots and spaces vanish on Windows.
    name = name.trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']).to_owned();
    if name.is_empty() {
        return FALLBACK.to_owned();
    }
    let (stem, ext) = split_extension(&name);
    let stem_upper = stem.trim_end().to_ascii_uppercase();
    let stem = if RESERVED.contains(&stem_upper.as_str()) { format!("_{stem}") } else { stem.to_owned() };
    shorten(&stem, ext, MAX_NAME_BYTES)
}

/// `name` and its numbered alternatives, in the order to try them.
pub fn candidates(name: &str) -> impl Iterator<Item = String> + '_ {
    let (stem, ext) = split_extension(name);
    std::iter::once(name.to_owned()).chain((2..=MAX_CANDIDATES).map(move |n| {
        let suffix = format!(" ({n})");
        let stem = truncate_bytes(stem, MAX_NAME_BYTES.saturating_sub(ext.len() + suffix.len()));
        format!("{stem}{suffix}{ext}")
    }))
}

/// `("Bescheid", ".pdf")`; a name without a dot, or with one only in front, has no extension.
/// Extensions longer than 16 bytes are part of the stem (so shortening keeps them readable).
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

fn shorten(stem: &str, ext: &str, max: usize) -> String {
    if stem.len() + ext.len() <= max {
        return format!("{stem}{ext}");
    }
    let stem = truncate_bytes(stem, max.saturating_sub(ext.len()));
    format!("{}{ext}", stem.trim_end_matches(['.', ' ']))
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        for (sent, safe) in [
            ("../../etc/passwd", "passwd"),
            ("/etc/shadow", "shadow"),
            ("..\\..\\Windows\\System32\\drivers\\etc\\hosts", "hosts"),
            ("C:\\Users\\x\\Bescheid.pdf", "Bescheid.pdf"),
            ("..", FALLBACK),
            ("", FALLBACK),
            ("   ", FALLBACK),
            (".bashrc", "bashrc"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("NUL.tar.gz", "NUL.tar.gz"),
            ("nul.gz", "_nul.gz"),
            ("COM1", "_COM1"),
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("Rechnung\u{202E}fdp.exe", "Rechnungfdp.exe"),
            ("a\u{0}b\nc\u{7f}.txt", "abc.txt"),
            ("Frage?.txt", "Frage_.txt"),
            ("Bescheid. ", "Bescheid"),
            ("Akte 4711.pdf", "Akte 4711.pdf"),
            ("Übersicht – März.xlsx", "Übersicht – März.xlsx"),
        ] {
            assert_eq!(safe_file_name(sent), safe, "{sent:?}");
        }
    }

    #[test]
    fn long_names_keep_their_extension_and_char_boundaries() {
        let name = safe_file_name(&format!("{}.pdf", "ä".repeat(300)));
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("ä.pdf"));
        let all: Vec<String> = candidates(&name).take(3).collect();
        assert_eq!(all[0], name);
        assert!(all[1].ends_with(" (2).pdf") && all[1].len() <= MAX_NAME_BYTES);
        assert!(all[2].ends_with(" (3).pdf"));
    }

    #[test]
    fn candidates_are_numbered_before_the_extension() {
        let c: Vec<String> = candidates("Bescheid.pdf").take(3).collect();
        assert_eq!(c, ["Bescheid.pdf", "Bescheid (2).pdf", "Bescheid (3).pdf"]);
        assert_eq!(candidates("README").nth(1).as_deref(), Some("README (2)"));
        assert_eq!(candidates("x").count(), MAX_CANDIDATES as usize);
    }

    proptest::proptest! {
        #[test]
        fn any_name_is_one_plain_component(sent in "\\PC{0,300}") {
            let safe = safe_file_name(&sent);
            proptest::prop_assert!(!safe.is_empty() && safe.len() <= MAX_NAME_BYTES);
            proptest::prop_assert!(!safe.contains(['/', '\\', '\0']) && !safe.starts_with('.'));
            proptest::prop_assert!(!safe.chars().any(is_hidden));
            for c in candidates(&safe).take(3) {
                proptest::prop_assert!(c.len() <= MAX_NAME_BYTES + 6, "{}", c);
                proptest::prop_assert!(!c.contains(['/', '\\']));
            }
        }
    }
}
