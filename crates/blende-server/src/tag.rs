//! Names for logs.

/// How a meeting appears in logs: a short tag of its ID, enough to follow one meeting through
/// a log, not the ID someone reading the log could join with (the audit log keeps the ID).
pub fn log_tag(meeting_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, meeting_id.as_bytes());
    digest.as_ref()[..3].iter().map(|b| format!("{b:02x}")).collect()
}
