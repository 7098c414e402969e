//! Meeting IDs and meeting passwords.
//!
//! Both are drawn uniformly from an alphabet without look-alike characters (no `0`/`o`,
//! `1`/`l`/`i`) so they can be read aloud or typed from paper, and are shown in groups.
//! Randomness comes in through [`EntropySource`]; [`OsEntropy`] is the operating system's
//! CSPRNG (`getrandom`), the only source used outside tests.

use std::fmt;

/// 31 symbols: digits 2–9 and lower-case letters except i, l, o.
pub const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// Characters in a meeting ID (≈ 59.5 bits).
pub const MEETING_ID_LEN: usize = 12;
/// Characters in a meeting password (≈ 79.3 bits).
pub const PASSWORD_LEN: usize = 16;
const GROUP: usize = 4;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeetingError {
    #[error("the operating system's random source failed: {0}")]
    Entropy(String),
    #[error("`{0}` is not a valid character here (allowed: 2-9 and a-z without i, l, o)")]
    BadCharacter(char),
    #[error("wrong length: {found} characters, expected {expected}")]
    Length { found: usize, expected: usize },
}

/// Where random bytes come from.
pub trait EntropySource {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), MeetingError>;
}

/// A deterministic source for tests at crate boundaries: bytes counting up from `start` in
/// steps of `step`. Never for real meeting IDs or passwords.
#[cfg(any(test, feature = "test-support"))]
#[derive(Clone, Copy, Debug)]
pub struct CountingEntropy {
    next: u8,
    step: u8,
}

#[cfg(any(test, feature = "test-support"))]
impl CountingEntropy {
    #[must_use]
    pub fn new(start: u8, step: u8) -> Self {
        CountingEntropy { next: start, step }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl EntropySource for CountingEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), MeetingError> {
        for b in buf {
            *b = self.next;
            self.next = self.next.wrapping_add(self.step);
        }
        Ok(())
    }
}

/// The operating system's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl EntropySource for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), MeetingError> {
        getrandom::fill(buf).map_err(|e| MeetingError::Entropy(e.to_string()))
    }
}

/// Draws `len` symbols uniformly from [`ALPHABET`] by rejection sampling (no modulo bias).
fn draw(source: &mut dyn EntropySource, len: usize) -> Result<String, MeetingError> {
    // 248 = 8 × 31: bytes at or above it are rejected so each symbol is equally likely.
    const LIMIT: u8 = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        source.fill(&mut buf)?;
        for b in buf.iter().filter(|b| **b < LIMIT) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Reads user input: case-insensitive, ignores spaces and dashes.
fn parse_symbols(input: &str, expected: usize) -> Result<String, MeetingError> {
    let mut out = String::with_capacity(expected);
    for c in input.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let lc = c.to_ascii_lowercase();
        if !lc.is_ascii() || !ALPHABET.contains(&(lc as u8)) {
            return Err(MeetingError::BadCharacter(c));
        }
        out.push(lc);
    }
    if out.len() != expected {
        return Err(MeetingError::Length { found: out.len(), expected });
    }
    Ok(out)
}

fn write_grouped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for (i, chunk) in s.as_bytes().chunks(GROUP).enumerate() {
        if i > 0 {
            f.write_str("-")?;
        }
        f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

fn entropy_bits(len: usize) -> f64 {
    len as f64 * (ALPHABET.len() as f64).log2()
}

/// A meeting's public identifier, e.g. `k7dm-3xqa-9fhp`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MeetingId(String);

impl MeetingId {
    pub fn generate(source: &mut dyn EntropySource) -> Result<Self, MeetingError> {
        draw(source, MEETING_ID_LEN).map(MeetingId)
    }

    pub fn parse(input: &str) -> Result<Self, MeetingError> {
        parse_symbols(input, MEETING_ID_LEN).map(MeetingId)
    }

    /// Without group separators.
    pub fn as_compact(&self) -> &str {
        &self.0
    }

    pub fn entropy_bits(&self) -> f64 {
        entropy_bits(self.0.len())
    }
}

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_grouped(f, &self.0)
    }
}

impl fmt::Debug for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeetingId({self})")
    }
}

/// A meeting password, to be passed on by a second channel. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn generate(source: &mut dyn EntropySource) -> Result<Self, MeetingError> {
        draw(source, PASSWORD_LEN).map(Password)
    }

    pub fn parse(input: &str) -> Result<Self, MeetingError> {
        parse_symbols(input, PASSWORD_LEN).map(Password)
    }

    pub fn as_compact(&self) -> &str {
        &self.0
    }

    /// The grouped form for reading aloud. Deliberately not `Display`, so a password is never
    /// formatted into a log line by accident.
    pub fn reveal(&self) -> String {
        struct Grouped<'a>(&'a str);
        impl fmt::Display for Grouped<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_grouped(f, self.0)
            }
        }
        Grouped(&self.0).to_string()
    }

    pub fn entropy_bits(&self) -> f64 {
        entropy_bits(self.0.len())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_long_grouped_and_unambiguous() {
        let id = MeetingId::generate(&mut OsEntropy).expect("os entropy");
        let shown = id.to_string();
        assert_eq!(shown.len(), MEETING_ID_LEN + MEETING_ID_LEN / GROUP - 1);
        assert!(id.as_compact().len() >= 10);
        assert!(!shown.chars().any(|c| "01ilo".contains(c)), "{shown}");
        assert!(id.entropy_bits() > 59.0);
        assert_eq!(MeetingId::parse(&shown.to_uppercase()).expect("round trip"), id);
    }

    #[test]
    fn os_entropy_gives_different_ids_each_time() {
        let ids: HashSet<String> = (0..10_000).map(|_| MeetingId::generate(&mut OsEntropy).expect("id").to_string()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn symbols_are_uniform_without_modulo_bias() {
        // The counter covers each byte value equally often: rejected bytes must not skew it.
        let s = draw(&mut CountingEntropy::new(0, 1), 31 * 8 * 10).expect("draw");
        let mut counts = [0usize; 31];
        for c in s.bytes() {
            counts[ALPHABET.iter().position(|a| *a == c).expect("in alphabet")] += 1;
        }
        assert!(counts.iter().all(|n| *n == 80), "{counts:?}");
    }

    #[test]
    fn passwords_hide_in_debug_and_parse_back() {
        let pw = Password::generate(&mut OsEntropy).expect("pw");
        assert_eq!(format!("{pw:?}"), "Password(***)");
        assert!(pw.entropy_bits() > 79.0);
        assert_eq!(Password::parse(&pw.reveal()).expect("parse"), pw);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(MeetingId::parse("k7dm-3xqa-9fh0"), Err(MeetingError::BadCharacter('0'))));
        assert!(matches!(MeetingId::parse("k7dm"), Err(MeetingError::Length { found: 4, expected: 12 })));
        assert!(matches!(MeetingId::parse("k7dm-3xqa-9fhä"), Err(MeetingError::BadCharacter('ä'))));
    }
}
