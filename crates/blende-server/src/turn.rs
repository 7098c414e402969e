//! Short-lived TURN credentials for coturn's shared-secret REST scheme
//! (`use-auth-secret` / `static-auth-secret`; draft-uberti-behave-turn-rest-00 §2.2):
//! username `<expiry unix>:<id>`, password `base64(HMAC-SHA1(secret, username))`.

use base64::Engine as _;
use blende_room::protocol::{IceServer, Secret};
use hmac::{Hmac, Mac};
use sha1::Sha1;

#[derive(Clone, Debug, Default)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub secret: Option<Secret>,
    pub ttl_s: u64,
}

impl TurnConfig {
    /// `None` when no TURN server is configured: Blende never falls back to a third party.
    pub fn credentials(&self, id: &str, now_unix: i64) -> Option<IceServer> {
        let secret = self.secret.as_ref()?;
        if self.urls.is_empty() {
            return None;
        }
        let expiry = now_unix.saturating_add(i64::try_from(self.ttl_s).unwrap_or(i64::MAX));
        let username = format!("{expiry}:{id}");
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()).ok()?;
        mac.update(username.as_bytes());
        let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Some(IceServer { urls: self.urls.clone(), username, credential: Secret::new(credential), ttl_s: self.ttl_s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_coturn_reference() {
        // Reference value computed with: printf '%s' '1700000600:p1' | openssl dgst -sha1 -hmac s3cret -binary | base64
        let cfg = TurnConfig { urls: vec!["turn:127.0.0.1:3478".into()], secret: Some(Secret::new("s3cret")), ttl_s: 600 };
        let c = cfg.credentials("p1", 1_700_000_000).expect("configured");
        assert_eq!(c.username, "1700000600:p1");
        assert_eq!(c.credential.expose(), REFERENCE);
        assert!(TurnConfig::default().credentials("p1", 0).is_none());
    }

    const REFERENCE: &str = "yQiQYg3AJOhpRo1dUbYcRrsuYsA=";
}
