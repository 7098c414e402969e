//! The identity check: a short string both ends read aloud and compare.
//!
//! Each end of a direct connection knows two DTLS certificate fingerprints: its own, and the
//! one the other end presented in the handshake (not the one the signalling claimed). Without
//! anybody in between, both ends hold the same pair; a man in the middle terminating DTLS on
//! both sides makes each end see one of *his* certificates instead, so the strings differ.
//!
//! The string is 12 decimal digits in groups of three (≈39.9 bits): short enough to read aloud
//! in either language, long enough that a relay cannot make certificates until both sides'
//! strings happen to agree during a call (he would need about 2^39 tries per victim pair).

use sha2::{Digest, Sha256};

/// Domain separation: a code of this protocol never equals a hash made for anything else.
const CONTEXT: &[u8] = b"blende identity code v1";
const DIGITS: u64 = 1_000_000_000_000;

/// The short authentication string of one direct connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdentityCode(u64);

impl IdentityCode {
    /// From our certificate's and the peer's certificate's SHA-256 fingerprints; the order does
    /// not matter (both ends sort).
    #[must_use]
    pub fn new(ours: &[u8; 32], theirs: &[u8; 32]) -> Self {
        let (low, high) = if ours <= theirs { (ours, theirs) } else { (theirs, ours) };
        let digest = Sha256::new().chain_update(CONTEXT).chain_update(low).chain_update(high).finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(u64::from_be_bytes(first) % DIGITS)
    }

    /// `"482 913 075 166"`.
    #[must_use]
    pub fn digits(&self) -> String {
        let d = format!("{:012}", self.0);
        format!("{} {} {} {}", &d[0..3], &d[3..6], &d[6..9], &d[9..12])
    }
}

impl std::fmt::Display for IdentityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.digits())
    }
}

/// SHA-256 fingerprint of a DER certificate (what `a=fingerprint:sha-256` states).
#[must_use]
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// Parses an SDP fingerprint value `AB:CD:…` (32 bytes, either case).
#[must_use]
pub fn parse_sdp_fingerprint(value: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut parts = value.trim().split(':');
    for byte in &mut out {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Our certificate's fingerprint from our own SDP (`a=fingerprint:sha-256 …`).
#[must_use]
pub fn sdp_fingerprint(sdp: &str) -> Option<[u8; 32]> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .find_map(|v| v.strip_prefix("sha-256 ").or_else(|| v.strip_prefix("SHA-256 ")).and_then(parse_sdp_fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_agree_and_a_relay_is_seen() {
        let a = fingerprint(b"certificate of A");
        let b = fingerprint(b"certificate of B");
        let m = fingerprint(b"certificate of the relay");
        assert_eq!(IdentityCode::new(&a, &b), IdentityCode::new(&b, &a));
        // A talks to the relay, the relay to B: each end sees the relay's certificate.
        assert_ne!(IdentityCode::new(&a, &m), IdentityCode::new(&b, &m));
        assert_ne!(IdentityCode::new(&a, &b), IdentityCode::new(&a, &m));
        let digits = IdentityCode::new(&a, &b).digits();
        assert_eq!(digits.len(), 15);
        assert!(digits.split(' ').all(|g| g.len() == 3 && g.bytes().all(|c| c.is_ascii_digit())));
    }

    #[test]
    fn known_value() {
        // Pinned (computed independently with Python's hashlib): both ends of a call may run
        // different Blende versions, so the derivation must never change silently.
        assert_eq!(IdentityCode::new(&[0; 32], &[1; 32]).digits(), "705 067 857 608");
        assert_eq!(IdentityCode::new(&[1; 32], &[0; 32]).digits(), "705 067 857 608");
    }

    #[test]
    fn sdp_fingerprints() {
        let fp = (0u8..32).map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let sdp = format!("v=0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 {fp}\r\n");
        let want: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(sdp_fingerprint(&sdp), Some(want));
        assert_eq!(parse_sdp_fingerprint(&fp.to_lowercase()), Some(want));
        assert_eq!(parse_sdp_fingerprint(&format!("{fp}:00")), None);
        assert_eq!(parse_sdp_fingerprint("AB:CD"), None);
        assert_eq!(sdp_fingerprint("a=fingerprint:sha-1 AB"), None);
    }
}
