//! Server addresses as users, IT and tests write them: the scheme picks the adapter.
//!
//! `janus+wss://host[:port][/path]`, `whip+https://host/path`, `whep+https://host/path`,
//! `blende+wss://host[:port]`; the plain-text forms (`janus+ws`, `whip+http`, `whep+http`,
//! `blende+ws`) only for loopback addresses.

use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerKind {
    Janus,
    Whip,
    Whep,
    Blende,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerUrl {
    pub kind: ServerKind,
    pub tls: bool,
    pub host: String,
    pub port: Option<u16>,
    /// Starts with `/`; `/` when absent.
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerUrlError {
    #[error("`{0}`: unknown scheme; use janus+wss://, whip+https://, whep+https:// or blende+wss://")]
    Scheme(String),
    #[error("`{0}`: no host")]
    NoHost(String),
    #[error("`{0}`: bad port")]
    Port(String),
    #[error("`{0}`: unencrypted signalling is only allowed to loopback addresses; use the TLS form")]
    PlainTextRemote(String),
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<Self, ServerUrlError> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| ServerUrlError::Scheme(s.into()))?;
        let (kind, tls) = match scheme.to_ascii_lowercase().as_str() {
            "janus+wss" => (ServerKind::Janus, true),
            "janus+ws" => (ServerKind::Janus, false),
            "whip+https" => (ServerKind::Whip, true),
            "whip+http" => (ServerKind::Whip, false),
            "whep+https" => (ServerKind::Whep, true),
            "whep+http" => (ServerKind::Whep, false),
            "blende+wss" => (ServerKind::Blende, true),
            "blende+ws" => (ServerKind::Blende, false),
            _ => return Err(ServerUrlError::Scheme(s.into())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            // Credentials in the address would end up in logs and settings files.
            return Err(ServerUrlError::NoHost(s.into()));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| ServerUrlError::Port(s.into()))?;
        if host.is_empty() {
            return Err(ServerUrlError::NoHost(s.into()));
        }
        let url = ServerUrl { kind, tls, host: host.to_ascii_lowercase(), port, path: path.into() };
        if !tls && !url.is_loopback() {
            return Err(ServerUrlError::PlainTextRemote(s.into()));
        }
        Ok(url)
    }

    pub fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[..end + 2];
        let rest = &authority[end + 2..];
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    match port {
        None => Some((host, None)),
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).map(|p| (host, Some(p))),
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.kind, self.tls) {
            (ServerKind::Janus, true) => "janus+wss",
            (ServerKind::Janus, false) => "janus+ws",
            (ServerKind::Whip, true) => "whip+https",
            (ServerKind::Whip, false) => "whip+http",
            (ServerKind::Whep, true) => "whep+https",
            (ServerKind::Whep, false) => "whep+http",
            (ServerKind::Blende, true) => "blende+wss",
            (ServerKind::Blende, false) => "blende+ws",
        };
        write!(f, "{scheme}://{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let u = ServerUrl::parse("janus+ws://127.0.0.1:8188").expect("loopback ws");
        assert_eq!((u.kind, u.tls, u.port, u.path.as_str()), (ServerKind::Janus, false, Some(8188), "/"));
        let u = ServerUrl::parse("whip+https://media.example.org/whip/endpoint/ep1").expect("whip");
        assert_eq!((u.kind, u.host.as_str(), u.path.as_str()), (ServerKind::Whip, "media.example.org", "/whip/endpoint/ep1"));
        assert!(ServerUrl::parse("blende+ws://[::1]:9000").is_ok());
        assert_eq!(ServerUrl::parse("janus+wss://a.b:443/janus").map(|u| u.to_string()), Ok("janus+wss://a.b:443/janus".into()));
    }

    #[test]
    fn refuses_plain_text_to_remote_hosts_and_junk() {
        assert!(matches!(ServerUrl::parse("janus+ws://example.org"), Err(ServerUrlError::PlainTextRemote(_))));
        assert!(matches!(ServerUrl::parse("https://example.org"), Err(ServerUrlError::Scheme(_))));
        assert!(matches!(ServerUrl::parse("janus+wss://:8188"), Err(ServerUrlError::NoHost(_))));
        assert!(matches!(ServerUrl::parse("janus+wss://h:99999"), Err(ServerUrlError::Port(_))));
        assert!(ServerUrl::parse("janus+wss://user:pw@h").is_err());
    }
}
