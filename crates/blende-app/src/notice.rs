//! `blende privacy-notice`: the facts of the effective policy, handed to `blende-notice`.

use std::path::Path;

use blende_notice::{ClientFacts, Lang};
use blende_policy::{Policy, ShareMode};

/// Where the user's settings file lives, as a user or a notice would name it.
const SETTINGS_FILE: &str = if cfg!(target_os = "windows") {
    r"%APPDATA%\Blende\settings.toml"
} else if cfg!(target_os = "macos") {
    "~/Library/Application Support/Blende/settings.toml"
} else {
    "~/.config/blende/settings.toml"
};

/// What the client does under `policy`; `admin_file` is the administrator's policy file when
/// one is in force.
pub fn client_facts(policy: &Policy, admin_file: Option<&Path>) -> ClientFacts {
    let servers = policy.servers();
    ClientFacts {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        admin_policy: admin_file.map(|p| p.display().to_string()),
        servers_allowed: servers.allowed.as_ref().map(|list| list.iter().map(ToString::to_string).collect()),
        ice_servers: servers.ice_servers.clone(),
        require_tls: servers.require_tls,
        full_screen_allowed: policy.screen_verdict().is_allowed(),
        allowlist: policy.mode() == ShareMode::Allowlist,
        relay_only: servers.relay_only,
        settings_file: SETTINGS_FILE.to_owned(),
        documents_max_mb: Some(policy.documents()).filter(|d| d.enabled).map(|d| d.max_mb),
    }
}

/// `de` when the system speaks German, else `en`.
pub fn system_lang() -> Lang {
    let env =
        ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty() && v != "C" && v != "POSIX"));
    match env.or_else(sys_locale::get_locale) {
        Some(l) if l.to_ascii_lowercase().starts_with("de") => Lang::De,
        _ => Lang::En,
    }
}

#[cfg(test)]
mod tests {
    use blende_notice::{Format, client_notice};
    use blende_policy::Source;

    use super::*;

    /// The reviewed German text for the built-in configuration, as IT would publish it.
    const SNAPSHOT: &str = "../../installer/privacy/blende.de.md";

    #[test]
    fn the_default_german_notice_matches_the_reviewed_text() {
        let text = client_notice(&client_facts(&Policy::builtin(), None), Lang::De).render(Format::Markdown);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
        if std::env::var_os("BLENDE_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &text).expect("write snapshot");
        }
        let reviewed = std::fs::read_to_string(&path).expect("snapshot");
        assert_eq!(text, reviewed, "the notice changed: review it, then BLENDE_UPDATE_SNAPSHOTS=1");
    }

    #[test]
    fn an_admin_policy_changes_the_notice() {
        let admin = "version = 1\n[share]\nallow_full_screen = true\n[servers]\nallowed = [\"blende+wss://konferenz.example.org\"]\nice_servers = [\"turn:turn.example.org:3478\"]\n[network]\nrelay_only = true\n";
        let policy = Policy::try_from_sources(Some(Source { name: "/etc/blende/policy.toml", text: admin }), None).expect("policy");
        let facts = client_facts(&policy, Some(Path::new("/etc/blende/policy.toml")));
        assert_eq!(facts.servers_allowed, Some(vec!["blende+wss://konferenz.example.org/".to_owned()]));
        assert!(facts.full_screen_allowed && facts.relay_only);
        for lang in [Lang::De, Lang::En] {
            let text = client_notice(&facts, lang).render(Format::Markdown);
            assert!(text.contains("`blende+wss://konferenz.example.org/`") && text.contains("`turn:turn.example.org:3478`"), "{text}");
        }
    }
}
