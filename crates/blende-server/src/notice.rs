//! `blende-server privacy-notice`: the facts of the resolved configuration, the settings in
//! the database and the certificate, handed to `blende-notice`.

use std::path::Path;

use anyhow::{Context, Result};
use blende_notice::{JanusFacts, ServerFacts, TlsFacts, TurnFacts};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::Settings;
use crate::config::Serve;

pub fn server_facts(serve: &Serve, settings: &Settings) -> Result<ServerFacts> {
    let tls = serve.tls.as_ref().map(|(cert, _)| certificate(cert)).transpose()?;
    let scheme = if tls.is_some() { "blende+wss" } else { "blende+ws" };
    Ok(ServerFacts {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: match crate::db::kind_of(&serve.db) {
            "postgres" => "PostgreSQL".to_owned(),
            _ => "SQLite".to_owned(),
        },
        public_url: serve.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", serve.listen)),
        tls,
        audit_retention_days: settings.audit_retention_days,
        turn: (!settings.turn.urls.is_empty() && settings.turn.secret.is_some())
            .then(|| TurnFacts { urls: settings.turn.urls.clone(), ttl_s: settings.turn.ttl_s }),
        janus: settings.janus.as_ref().map(|j| JanusFacts { client_url: j.client_url.clone(), threshold: j.threshold }),
        lobby_default: settings.lobby_default,
        max_participants: settings.max_participants,
        failure_memory_min: serve.lockout_s.div_ceil(60),
        argon2_m_kib: serve.argon2_m_kib,
        argon2_t: serve.argon2_t,
        resume_grace_s: serve.resume_grace_s,
    })
}

/// The first certificate of the chain in `path`: its names, issuer, expiry and fingerprint.
fn certificate(path: &Path) -> Result<TlsFacts> {
    let der = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .next()
        .with_context(|| format!("{} holds no certificate", path.display()))?
        .with_context(|| format!("parsing {}", path.display()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).with_context(|| format!("parsing {}", path.display()))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => ip_text(ip),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_owned)).collect();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    let sha256 = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    Ok(TlsFacts { names, issuer: cert.issuer().to_string(), not_after: date(cert.validity().not_after.timestamp()), sha256 })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes).ok().map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by the days-from-civil inverse (H. Hinnant).
fn date(unix: i64) -> String {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use blende_notice::{Format, Lang, server_notice};

    use super::*;
    use crate::turn::TurnConfig;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_830_297_600), "2028-01-01");
        assert_eq!(date(1_830_297_599), "2027-12-31");
    }

    fn default_serve() -> Serve {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            serve: crate::config::ServeArgs,
        }
        Cli::parse_from(["serve"]).serve.resolve().expect("defaults")
    }

    fn default_settings() -> Settings {
        Settings {
            max_participants: 100,
            lobby_default: true,
            turn: TurnConfig { urls: vec![], secret: None, ttl_s: 600 },
            janus: None,
            audit_retention_days: None,
        }
    }

    /// The reviewed German text for a server as installed, before IT sets anything.
    #[test]
    fn the_default_german_notice_matches_the_reviewed_text() {
        let text = server_notice(&server_facts(&default_serve(), &default_settings()).expect("facts"), Lang::De).render(Format::Markdown);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../installer/privacy/blende-server.de.md");
        if std::env::var_os("BLENDE_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &text).expect("write snapshot");
        }
        let reviewed = std::fs::read_to_string(&path).expect("snapshot");
        assert_eq!(text, reviewed, "the notice changed: review it, then BLENDE_UPDATE_SNAPSHOTS=1");
    }
}
