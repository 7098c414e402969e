//! Chat texts and the in-memory history.
//!
//! The history lives only here, in memory: when the call ends it is dropped. Saving it is an
//! explicit act of the user ([`ChatLog::to_text`] for the file they choose).

/// A chat text has at most this many characters.
pub const MAX_CHARS: usize = 2000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    #[error("the message is empty")]
    Empty,
    #[error("the message has {0} characters (at most {MAX_CHARS})")]
    TooLong(usize),
}

/// The text as it may be shown: control characters (but line breaks and tabs) and the
/// invisible direction overrides that make text read differently from how it is stored
/// (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) are removed; surrounding white space
/// is trimmed.
///
/// # Errors
/// An empty text, or one longer than [`MAX_CHARS`].
pub fn clean_text(text: &str) -> Result<String, ChatError> {
    let count = text.chars().count();
    if count > MAX_CHARS {
        return Err(ChatError::TooLong(count));
    }
    let cleaned: String = text.chars().filter(|&c| c == '\n' || c == '\t' || !is_hidden(c)).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return Err(ChatError::Empty);
    }
    Ok(trimmed.to_owned())
}

/// Characters that change how text is shown without being seen: controls, direction marks and
/// overrides, zero-width characters.
#[must_use]
pub fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}' | '\u{061C}' | '\u{FEFF}')
}

/// Who a message came from or went to (a participant id of the meeting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEntry {
    /// `None`: we wrote it.
    pub from: Option<String>,
    /// `Some(id)`: a private message (to us, or from us to `id`); `None`: to everyone.
    pub private_with: Option<String>,
    pub text: String,
    /// Milliseconds since the call started (our own clock: a peer's is not trusted).
    pub at_ms: u64,
}

/// The call's chat history, in memory only.
#[derive(Debug, Default)]
pub struct ChatLog {
    entries: Vec<ChatEntry>,
    unread: usize,
}

impl ChatLog {
    /// A message we wrote.
    pub fn sent(&mut self, to: Option<String>, text: String, at_ms: u64) {
        self.entries.push(ChatEntry { from: None, private_with: to, text, at_ms });
    }

    /// A message that arrived; it counts as unread until [`ChatLog::mark_read`].
    pub fn received(&mut self, from: String, private: bool, text: String, at_ms: u64) {
        let private_with = private.then(|| from.clone());
        self.entries.push(ChatEntry { from: Some(from), private_with, text, at_ms });
        self.unread += 1;
    }

    #[must_use]
    pub fn entries(&self) -> &[ChatEntry] {
        &self.entries
    }

    #[must_use]
    pub fn unread(&self) -> usize {
        self.unread
    }

    pub fn mark_read(&mut self) {
        self.unread = 0;
    }

    /// The history as plain text for a file the user chose: one line per message,
    /// `[mm:ss] NAME → TO: text`, names by `name_of` (a participant id → display name).
    #[must_use]
    pub fn to_text(&self, me: &str, everyone: &str, name_of: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let secs = e.at_ms / 1000;
            let from = e.from.as_deref().map_or_else(|| me.to_owned(), &name_of);
            let to = match (&e.from, &e.private_with) {
                (_, None) => everyone.to_owned(),
                (None, Some(to)) => name_of(to),
                (Some(_), Some(_)) => me.to_owned(),
            };
            out.push_str(&format!("[{:02}:{:02}] {from} → {to}: {}\n", secs / 60, secs % 60, e.text));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_go_and_limits_hold() {
        assert_eq!(clean_text("  Akte\u{202E}fdp.exe\u{200B}  "), Ok("Aktefdp.exe".to_owned()));
        assert_eq!(clean_text("Zeile 1\nZeile 2\u{7}"), Ok("Zeile 1\nZeile 2".to_owned()));
        assert_eq!(clean_text(" \u{2066}\u{2069} "), Err(ChatError::Empty));
        assert_eq!(clean_text(&"ä".repeat(MAX_CHARS)).map(|t| t.chars().count()), Ok(MAX_CHARS));
        assert_eq!(clean_text(&"ä".repeat(MAX_CHARS + 1)), Err(ChatError::TooLong(MAX_CHARS + 1)));
    }

    #[test]
    fn log_counts_unread_and_writes_text() {
        let mut log = ChatLog::default();
        log.sent(None, "Guten Tag".into(), 1_000);
        log.received("7".into(), true, "Az. 4711".into(), 65_000);
        log.received("7".into(), false, "Danke".into(), 66_000);
        assert_eq!(log.unread(), 2);
        log.mark_read();
        assert_eq!(log.unread(), 0);
        let text = log.to_text("Ich", "Alle", |id| format!("Anna ({id})"));
        assert_eq!(text, "[00:01] Ich → Alle: Guten Tag\n[01:05] Anna (7) → Ich: Az. 4711\n[01:06] Anna (7) → Alle: Danke\n");
    }
}
