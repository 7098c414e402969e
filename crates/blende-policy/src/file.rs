//! Reading one policy layer from TOML text. Unknown keys, type errors and keys a layer may not
//! set are errors that name the file, the line and the key.

use serde::Deserialize;
use toml::Spanned;

use crate::hotkey::Hotkey;
use crate::rules::{Matcher, Rule};
use crate::server::ServerUrl;

/// Which layer a file is: the administrator's system policy or the user's own settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Admin,
    User,
}

impl LayerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LayerKind::Admin => "admin",
            LayerKind::User => "user",
        }
    }
}

/// Share mode: everything not blocked may be shared, or only what the administrator lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareMode {
    #[default]
    Blocklist,
    Allowlist,
}

impl ShareMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ShareMode::Blocklist => "blocklist",
            ShareMode::Allowlist => "allowlist",
        }
    }
}

/// A broken policy file. The policy that results fails closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("{file}: cannot read the policy file: {message}")]
    Read { file: String, message: String },
    #[error("{file}:{line}:{column}: {}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Invalid { file: String, line: usize, column: usize, key: Option<String>, message: String },
}

/// What one layer says; `None` means "not set here".
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ParsedLayer {
    pub mode: Option<ShareMode>,
    pub allow_full_screen: Option<bool>,
    pub blocks: Vec<Rule>,
    pub allows: Vec<Rule>,
    pub servers_allowed: Option<Vec<ServerUrl>>,
    pub servers_known: Vec<ServerUrl>,
    pub require_tls: Option<bool>,
    pub ice_servers: Option<Vec<String>>,
    pub relay_only: Option<bool>,
    pub documents_enabled: Option<bool>,
    pub documents_max_mb: Option<u64>,
    pub hotkeys: [Option<Hotkey>; 4],
}

const SUPPORTED_VERSION: u32 = 1;
/// The largest `documents.max_mb` (1 TB): a guard against a typo, not a real limit.
const MAX_DOCUMENT_MB: u64 = 1_000_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<Spanned<u32>>,
    #[serde(default)]
    share: RawShare,
    #[serde(default)]
    servers: RawServers,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    documents: RawDocuments,
    #[serde(default)]
    hotkeys: RawHotkeys,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDocuments {
    enabled: Option<Spanned<bool>>,
    max_mb: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    relay_only: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShare {
    mode: Option<Spanned<ShareMode>>,
    allow_full_screen: Option<Spanned<bool>>,
    #[serde(default)]
    block: Vec<Spanned<RawRule>>,
    #[serde(default)]
    allow: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    app: Option<String>,
    title_contains: Option<String>,
    site: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServers {
    allowed: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    known: Vec<Spanned<String>>,
    require_tls: Option<Spanned<bool>>,
    ice_servers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHotkeys {
    camera: Option<Spanned<String>>,
    microphone: Option<Spanned<String>>,
    screen_share: Option<Spanned<String>>,
    all_off: Option<Spanned<String>>,
}

/// Parses one layer. `file` names it in errors and rule ids.
pub(crate) fn parse_layer(kind: LayerKind, file: &str, text: &str) -> Result<ParsedLayer, PolicyError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String| invalid(file, text, span.start, Some(key.to_owned()), message);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(file, text, offset, key_at(text, offset), e.message().to_owned())
    })?;

    if let Some(v) = raw.version.as_ref().filter(|v| *v.get_ref() != SUPPORTED_VERSION) {
        return Err(at(
            v.span(),
            "version",
            format!("unsupported policy version {} (this Blende reads version {SUPPORTED_VERSION})", v.get_ref()),
        ));
    }

    // Keys that loosen the policy belong to the administrator alone.
    if kind == LayerKind::User {
        let admin_only: [(&str, Option<std::ops::Range<usize>>); 9] = [
            ("share.mode", raw.share.mode.as_ref().map(Spanned::span)),
            ("share.allow_full_screen", raw.share.allow_full_screen.as_ref().map(Spanned::span)),
            ("share.allow", raw.share.allow.first().map(Spanned::span)),
            ("servers.allowed", raw.servers.allowed.as_ref().map(Spanned::span)),
            ("servers.require_tls", raw.servers.require_tls.as_ref().map(Spanned::span)),
            ("servers.ice_servers", raw.servers.ice_servers.as_ref().map(Spanned::span)),
            ("network.relay_only", raw.network.relay_only.as_ref().map(Spanned::span)),
            ("documents.enabled", raw.documents.enabled.as_ref().map(Spanned::span)),
            ("documents.max_mb", raw.documents.max_mb.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = admin_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(at(span, key, "only the administrator's policy may set this; your settings may add blocks, not lift them".into()));
        }
    }

    let rules = |list: Vec<Spanned<RawRule>>, what: &str| -> Result<Vec<Rule>, PolicyError> {
        list.into_iter()
            .enumerate()
            .map(|(i, r)| {
                let span = r.span();
                let raw = r.into_inner();
                let matcher = Matcher::new(raw.app.as_deref(), raw.title_contains.as_deref(), raw.site.as_deref())
                    .map_err(|m| at(span.clone(), &format!("share.{what}[{i}]"), m))?;
                Ok(Rule {
                    id: format!("{}:{file}:{what}[{i}]", kind.as_str()),
                    matcher,
                    reason: raw.reason.filter(|r| !r.trim().is_empty()),
                })
            })
            .collect()
    };

    let url = |s: Spanned<String>, key: &str| -> Result<ServerUrl, PolicyError> {
        ServerUrl::parse(s.get_ref()).map_err(|e| at(s.span(), key, e.to_string()))
    };
    let servers_allowed = match raw.servers.allowed {
        Some(list) => Some(list.into_inner().into_iter().map(|s| url(s, "servers.allowed")).collect::<Result<Vec<_>, _>>()?),
        None => None,
    };
    let servers_known = raw.servers.known.into_iter().map(|s| url(s, "servers.known")).collect::<Result<Vec<_>, _>>()?;
    let ice_servers = match raw.servers.ice_servers {
        Some(list) => Some(
            list.into_inner()
                .into_iter()
                .map(|s| {
                    let ok = ["stun:", "turn:", "turns:"].iter().any(|p| s.get_ref().starts_with(p));
                    if ok {
                        Ok(s.into_inner())
                    } else {
                        Err(at(s.span(), "servers.ice_servers", format!("`{}` is not a stun:, turn: or turns: address", s.get_ref())))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };

    if let Some(mb) = raw.documents.max_mb.as_ref().filter(|mb| *mb.get_ref() == 0 || *mb.get_ref() > MAX_DOCUMENT_MB) {
        return Err(at(
            mb.span(),
            "documents.max_mb",
            format!("must be 1 to {MAX_DOCUMENT_MB} (MB); `enabled = false` turns documents off"),
        ));
    }

    let hotkey = |h: Option<Spanned<String>>, key: &str| -> Result<Option<Hotkey>, PolicyError> {
        h.map(|h| Hotkey::parse(h.get_ref()).map_err(|m| at(h.span(), key, m))).transpose()
    };
    let RawHotkeys { camera, microphone, screen_share, all_off } = raw.hotkeys;

    Ok(ParsedLayer {
        mode: raw.share.mode.map(Spanned::into_inner),
        allow_full_screen: raw.share.allow_full_screen.map(Spanned::into_inner),
        blocks: rules(raw.share.block, "block")?,
        allows: rules(raw.share.allow, "allow")?,
        servers_allowed,
        servers_known,
        require_tls: raw.servers.require_tls.map(Spanned::into_inner),
        relay_only: raw.network.relay_only.map(Spanned::into_inner),
        documents_enabled: raw.documents.enabled.map(Spanned::into_inner),
        documents_max_mb: raw.documents.max_mb.map(Spanned::into_inner),
        ice_servers,
        hotkeys: [
            hotkey(camera, "hotkeys.camera")?,
            hotkey(microphone, "hotkeys.microphone")?,
            hotkey(screen_share, "hotkeys.screen_share")?,
            hotkey(all_off, "hotkeys.all_off")?,
        ],
    })
}

fn invalid(file: &str, text: &str, offset: usize, key: Option<String>, message: String) -> PolicyError {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    PolicyError::Invalid { file: file.to_owned(), line, column, key, message }
}

/// The key written on the line that holds `offset`: `name = …` or a `[table]` header.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    if let Some(header) = line.strip_prefix('[') {
        return Some(header.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: LayerKind, text: &str) -> String {
        match parse_layer(kind, "policy.toml", text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err(LayerKind::Admin, "version = 1\n[share]\nallow_fullscreen = true\n");
        assert!(e.starts_with("policy.toml:3:"), "{e}");
        assert!(e.contains("allow_fullscreen"), "{e}");
    }

    #[test]
    fn type_error_names_key() {
        let e = err(LayerKind::Admin, "[share]\nallow_full_screen = \"yes\"\n");
        assert!(e.starts_with("policy.toml:2:"), "{e}");
        assert!(e.contains("`allow_full_screen`"), "{e}");
    }

    #[test]
    fn user_layer_cannot_loosen() {
        for text in [
            "[share]\nallow_full_screen = true\n",
            "[share]\nmode = \"allowlist\"\n",
            "[[share.allow]]\napp = \"Signal\"\n",
            "[servers]\nrequire_tls = false\n",
            "[network]\nrelay_only = false\n",
        ] {
            let e = err(LayerKind::User, text);
            assert!(e.contains("only the administrator"), "{text}: {e}");
        }
    }

    #[test]
    fn rules_need_a_matcher_and_bad_values_are_refused() {
        assert!(err(LayerKind::Admin, "[[share.block]]\nreason = \"x\"\n").contains("share.block[0]"));
        assert!(err(LayerKind::Admin, "[hotkeys]\ncamera = \"K\"\n").contains("hotkeys.camera"));
        assert!(err(LayerKind::Admin, "[servers]\nallowed = [\"janus+ws://example.org\"]\n").contains("servers.allowed"));
        assert!(err(LayerKind::Admin, "version = 7\n").contains("unsupported policy version"));
        assert!(err(LayerKind::Admin, "[share\n").starts_with("policy.toml:1:"));
    }

    #[test]
    fn full_admin_file_parses() {
        let text = r#"
version = 1
[share]
mode = "allowlist"
allow_full_screen = true
[[share.block]]
app = "KeePassXC"
reason = "Passwortmanager"
[[share.allow]]
app = "LibreOffice"
[servers]
allowed = ["janus+wss://konferenz.example.org/janus"]
known = ["whip+https://media.example.org/whip"]
require_tls = true
ice_servers = ["turns:turn.example.org:5349"]
[hotkeys]
all_off = "Ctrl+Alt+Pause"
"#;
        let layer = parse_layer(LayerKind::Admin, "p.toml", text).expect("valid");
        assert_eq!(layer.mode, Some(ShareMode::Allowlist));
        assert_eq!(layer.blocks.len(), 1);
        assert_eq!(layer.blocks[0].id, "admin:p.toml:block[0]");
        assert_eq!(layer.allows.len(), 1);
        assert_eq!(layer.hotkeys[3].as_ref().map(ToString::to_string).as_deref(), Some("Ctrl+Alt+Pause"));
    }
}
