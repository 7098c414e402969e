//! Invitations as plain text and as an iCalendar (RFC 5545) event. Neither contains the
//! password: that travels separately, by a second channel ([`password_note`]).

use crate::protocol::{Invitation, MeetingInfo, Secret};

/// `blende+wss://host/k7dm-3xqa-9fhp`: the address form the client's `join` understands.
pub fn link(public_url: &str, meeting: &MeetingInfo) -> String {
    format!("{}/{}", public_url.trim_end_matches('/'), meeting.id)
}

pub fn invitation(public_url: &str, meeting: &MeetingInfo, password: Option<&Secret>) -> Invitation {
    let link = link(public_url, meeting);
    let when = match meeting.starts_at_unix {
        Some(t) => format!("When: {} UTC ({} minutes)\n", utc_human(t), meeting.duration_min),
        None => String::new(),
    };
    let text = format!(
        "You are invited to the meeting \"{}\".\n{when}Join with Blende: {link}\nMeeting ID: {}\nThe password reaches you separately.\n",
        meeting.title, meeting.id
    );
    Invitation { ics: ics(&link, meeting), text, link, password_text: password.map(|p| Secret::new(password_note(meeting, p))) }
}

/// The note for the second channel: meeting ID and password, nothing else.
pub fn password_note(meeting: &MeetingInfo, password: &Secret) -> String {
    format!("Password for Blende meeting {}: {}\n", meeting.id, password.expose())
}

/// RFC 5545 §3.6.1 VEVENT. Lines are CRLF-terminated; text values escaped per §3.3.11.
pub fn ics(link: &str, meeting: &MeetingInfo) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Blende//blende-server//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@blende", meeting.id),
    ];
    // DTSTAMP is required; the start time is the most stable value we have (no clock here).
    let start = meeting.starts_at_unix.unwrap_or(0);
    lines.push(format!("DTSTAMP:{}", utc_basic(start)));
    if let Some(t) = meeting.starts_at_unix {
        lines.push(format!("DTSTART:{}", utc_basic(t)));
        lines.push(format!("DTEND:{}", utc_basic(t + i64::from(meeting.duration_min) * 60)));
    }
    lines.push(format!("SUMMARY:{}", escape_text(&meeting.title)));
    lines.push(format!(
        "DESCRIPTION:{}",
        escape_text(&format!("Join with Blende: {link}\nMeeting ID: {}\nThe password reaches you separately.", meeting.id))
    ));
    lines.push(format!("LOCATION:{}", escape_text(link)));
    lines.push(format!("URL:{link}"));
    lines.push("END:VEVENT".to_owned());
    lines.push("END:VCALENDAR".to_owned());
    lines.into_iter().map(|l| fold(&l)).collect::<Vec<_>>().join("")
}

fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 §3.1: lines longer than 75 octets are folded with CRLF + space, never inside a
/// UTF-8 sequence.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn split(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    (y, mo, d, s / 3600, s % 3600 / 60, s % 60)
}

/// `20260127T093000Z`
fn utc_basic(t: i64) -> String {
    let (y, mo, d, h, mi, s) = split(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-01-27 09:30`
fn utc_human(t: i64) -> String {
    let (y, mo, d, h, mi, _) = split(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting() -> MeetingInfo {
        MeetingInfo {
            id: "k7dm-3xqa-9fhp".into(),
            title: "Bauausschuss; Sitzung, öffentlich".into(),
            starts_at_unix: Some(1_769_506_200),
            duration_min: 90,
            lobby: true,
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_basic(0), "19700101T000000Z");
        assert_eq!(utc_basic(1_769_506_200), "20260127T093000Z");
        assert_eq!(utc_basic(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn ics_is_a_folded_escaped_event_without_password() {
        let pw = Secret::new("abcd-efgh-jkmn-pqrs");
        let inv = invitation("blende+wss://meet.example.org/", &meeting(), Some(&pw));
        assert_eq!(inv.link, "blende+wss://meet.example.org/k7dm-3xqa-9fhp");
        assert!(inv.ics.contains("DTSTART:20260127T093000Z\r\n"));
        assert!(inv.ics.contains("DTEND:20260127T110000Z\r\n"));
        assert!(inv.ics.contains("SUMMARY:Bauausschuss\\; Sitzung\\, öffentlich\r\n"));
        assert!(inv.ics.lines().all(|l| l.len() <= 76), "{}", inv.ics);
        for body in [&inv.ics, &inv.text] {
            assert!(!body.contains(pw.expose()));
        }
        assert!(inv.password_text.as_ref().is_some_and(|p| p.expose().contains(pw.expose())));
        assert!(inv.text.contains("2026-01-27 09:30 UTC"));
    }
}
