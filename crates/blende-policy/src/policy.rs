//! The effective policy: built-in rules, then the administrator's layer, then the user's.
//! Users add blocks; only the administrator lifts built-in blocks, allows the whole screen
//! or switches to allow-list mode. A broken layer makes the whole policy fail closed.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::builtin::{self, App, Site};
use crate::file::{LayerKind, ParsedLayer, PolicyError, ShareMode, parse_layer};
use crate::hotkey::Hotkeys;
use crate::rules::{Prepared, Rule, part_matches};
use crate::server::ServerUrl;
use crate::verdict::{Category, Verdict};
use crate::window::{WindowInfo, WindowKind};

/// One policy file's text and the name it is known by (its path).
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    Admin(String),
    User(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::Admin(p) => write!(f, "administrator: {p}"),
            Origin::User(p) => write!(f, "user: {p}"),
        }
    }
}

/// Which servers may be used and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// `Some`: only these servers (set by the administrator). `None`: any server.
    pub allowed: Option<Vec<ServerUrl>>,
    /// Servers offered in the join screen.
    pub known: Vec<ServerUrl>,
    pub require_tls: bool,
    /// STUN/TURN servers from the administrator. Empty by default: no third-party servers.
    pub ice_servers: Vec<String>,
    /// ICE transport policy "relay": offer and use only TURN-relayed candidates, never a host
    /// address, so no other participant learns the machine's LAN, VPN or IPv6 addresses. The
    /// administrator's `[network] relay_only = true`, or `blende join --relay-only` for one run.
    pub relay_only: bool,
}

impl ServerPolicy {
    /// Whether a connection to `url` is permitted.
    pub fn check(&self, url: &ServerUrl) -> Result<(), String> {
        if self.require_tls && !url.tls && !url.is_loopback() {
            return Err(format!("{url}: the policy requires TLS"));
        }
        match &self.allowed {
            Some(list) if !list.iter().any(|a| a.kind == url.kind && a.host == url.host && a.port == url.port) => {
                Err(format!("{url}: not among the servers the administrator allows"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    mode: ShareMode,
    allow_full_screen: bool,
    admin_blocks: Vec<Rule>,
    admin_allows: Vec<Rule>,
    user_blocks: Vec<Rule>,
    servers: ServerPolicy,
    hotkeys: Hotkeys,
    origins: HashMap<&'static str, Origin>,
    /// The layer files read, in order (for `policy show`).
    layers: Vec<Origin>,
    failure: Option<PolicyError>,
}

static APP_INDEX: LazyLock<HashMap<&'static str, &'static App>> =
    LazyLock::new(|| builtin::APPS.iter().flat_map(|a| a.keys.iter().map(move |k| (*k, a))).collect());
static BROWSER_INDEX: LazyLock<HashSet<&'static str>> = LazyLock::new(|| builtin::BROWSERS.iter().copied().collect());
static SITE_INDEX: LazyLock<HashMap<&'static str, &'static Site>> =
    LazyLock::new(|| builtin::SITES.iter().flat_map(|s| s.parts.iter().map(move |p| (*p, s))).collect());
static SITE_PREFIXES: LazyLock<Vec<(&'static str, &'static Site)>> =
    LazyLock::new(|| builtin::SITES.iter().flat_map(|s| s.prefixes.iter().map(move |p| (p.trim_end(), s))).collect());

fn is_browser(keys: &[String]) -> bool {
    keys.iter().any(|k| {
        // Chrome and Edge app windows (PWAs): WM_CLASS "crx_<id>" or "chrome-<id>-Default".
        BROWSER_INDEX.contains(k.as_str()) || k.starts_with("crx_") || k.starts_with("chrome-") || k.starts_with("msedge-")
    })
}

impl Default for Policy {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Policy {
    /// The built-in policy alone: blocklist mode, no whole screen, default servers and keys.
    pub fn builtin() -> Self {
        Policy {
            mode: ShareMode::Blocklist,
            allow_full_screen: false,
            admin_blocks: Vec::new(),
            admin_allows: Vec::new(),
            user_blocks: Vec::new(),
            servers: ServerPolicy { allowed: None, known: Vec::new(), require_tls: true, ice_servers: Vec::new(), relay_only: false },
            hotkeys: Hotkeys::default(),
            origins: HashMap::new(),
            layers: Vec::new(),
            failure: None,
        }
    }

    /// Combines the layers; an error in any of them is returned.
    pub fn try_from_sources(admin: Option<Source<'_>>, user: Option<Source<'_>>) -> Result<Self, PolicyError> {
        let mut policy = Self::builtin();
        if let Some(s) = admin {
            policy.apply(parse_layer(LayerKind::Admin, s.name, s.text)?, Origin::Admin(s.name.to_owned()));
            policy.layers.push(Origin::Admin(s.name.to_owned()));
        }
        if let Some(s) = user {
            policy.apply(parse_layer(LayerKind::User, s.name, s.text)?, Origin::User(s.name.to_owned()));
            policy.layers.push(Origin::User(s.name.to_owned()));
        }
        Ok(policy)
    }

    /// Like [`Policy::try_from_sources`], but a broken layer yields a policy that blocks every
    /// window and reports the error: a broken policy never fails open.
    pub fn from_sources(admin: Option<Source<'_>>, user: Option<Source<'_>>) -> Self {
        Self::try_from_sources(admin, user).unwrap_or_else(Self::fail_closed)
    }

    /// A policy under which nothing is shareable and no server may be joined (the
    /// administrator's list of servers could not be read), carrying the reason.
    pub fn fail_closed(error: PolicyError) -> Self {
        let mut policy = Policy { failure: Some(error), ..Self::builtin() };
        policy.servers.allowed = Some(Vec::new());
        policy
    }

    /// This policy, failed closed for sharing because a later layer (the user's settings) is
    /// broken: every window is blocked, and the administrator's server rules stand as read.
    #[must_use]
    pub fn with_failure(mut self, error: PolicyError) -> Self {
        self.failure = Some(error);
        self
    }

    fn apply(&mut self, layer: ParsedLayer, origin: Origin) {
        let set = |key: &'static str, origins: &mut HashMap<_, _>| {
            origins.insert(key, origin.clone());
        };
        if let Some(m) = layer.mode {
            self.mode = m;
            set("share.mode", &mut self.origins);
        }
        if let Some(f) = layer.allow_full_screen {
            self.allow_full_screen = f;
            set("share.allow_full_screen", &mut self.origins);
        }
        match origin {
            Origin::User(_) => self.user_blocks.extend(layer.blocks),
            _ => self.admin_blocks.extend(layer.blocks),
        }
        self.admin_allows.extend(layer.allows);
        if let Some(a) = layer.servers_allowed {
            self.servers.allowed = Some(a);
            set("servers.allowed", &mut self.origins);
        }
        self.servers.known.extend(layer.servers_known);
        if let Some(t) = layer.require_tls {
            self.servers.require_tls = t;
            set("servers.require_tls", &mut self.origins);
        }
        if let Some(i) = layer.ice_servers {
            self.servers.ice_servers = i;
            set("servers.ice_servers", &mut self.origins);
        }
        if let Some(r) = layer.relay_only {
            self.servers.relay_only = r;
            set("network.relay_only", &mut self.origins);
        }
        let [camera, microphone, screen_share, all_off] = layer.hotkeys;
        for (key, value, slot) in [
            ("hotkeys.camera", camera, &mut self.hotkeys.camera),
            ("hotkeys.microphone", microphone, &mut self.hotkeys.microphone),
            ("hotkeys.screen_share", screen_share, &mut self.hotkeys.screen_share),
            ("hotkeys.all_off", all_off, &mut self.hotkeys.all_off),
        ] {
            if let Some(v) = value {
                *slot = v;
                self.origins.insert(key, origin.clone());
            }
        }
    }

    /// The error that made this policy fail closed, if any.
    pub fn failure(&self) -> Option<&PolicyError> {
        self.failure.as_ref()
    }

    pub fn servers(&self) -> &ServerPolicy {
        &self.servers
    }

    /// Only relayed ICE candidates from now on (see [`ServerPolicy::relay_only`]). It can only
    /// narrow what the connection may use, so a caller may set it on any layer's result.
    pub fn set_relay_only(&mut self) {
        self.servers.relay_only = true;
    }

    /// The user's own block rules (from the settings file), in file order.
    pub fn user_blocks(&self) -> &[Rule] {
        &self.user_blocks
    }

    pub fn hotkeys(&self) -> &Hotkeys {
        &self.hotkeys
    }

    pub fn mode(&self) -> ShareMode {
        self.mode
    }

    /// Whether the whole screen may be offered for sharing.
    pub fn screen_verdict(&self) -> Verdict {
        if let Some(e) = &self.failure {
            return Verdict::block(Category::PolicyError, "policy:error", e.to_string());
        }
        if self.allow_full_screen {
            Verdict::Allow
        } else {
            Verdict::block(Category::FullScreen, "builtin:full-screen", "whole-screen sharing is off unless the administrator allows it")
        }
    }

    /// The verdict for one window. Cheap enough to run on every captured frame.
    pub fn classify(&self, window: &WindowInfo) -> Verdict {
        if let Some(e) = &self.failure {
            return Verdict::block(Category::PolicyError, "policy:error", e.to_string());
        }
        let w = Prepared::new(window, is_browser);
        let from_rule = |r: &Rule, category: Category| {
            Verdict::block(category, r.id.clone(), r.reason.clone().unwrap_or_else(|| category.describe().to_owned()))
        };
        if let Some(r) = self.admin_blocks.iter().find(|r| r.matcher.matches(&w)) {
            return from_rule(r, Category::AdminRule);
        }
        if let Some(r) = self.user_blocks.iter().find(|r| r.matcher.matches(&w)) {
            return from_rule(r, Category::UserRule);
        }
        let excepted = self.admin_allows.iter().any(|r| r.matcher.matches(&w));
        let built_in = builtin_verdict(&w, window.kind);
        match (self.mode, excepted) {
            (_, true) => Verdict::Allow,
            (ShareMode::Blocklist, false) => built_in,
            (ShareMode::Allowlist, false) if !built_in.is_allowed() => built_in,
            (ShareMode::Allowlist, false) => {
                Verdict::block(Category::AdminRule, "admin:allowlist", "not among the applications the administrator allows to be shared")
            }
        }
    }

    /// The effective policy with the origin of each part, as `blende policy show` prints it.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.failure {
            let _ = writeln!(out, "# POLICY BROKEN, nothing is shareable: {e}");
        }
        if self.layers.is_empty() {
            let _ = writeln!(out, "# layers: built-in only");
        }
        for layer in &self.layers {
            let _ = writeln!(out, "# layer: {layer}");
        }
        let origin = |k: &str| self.origins.get(k).cloned().unwrap_or(Origin::BuiltIn);
        let _ = writeln!(out, "[share]");
        let _ = writeln!(out, "mode = \"{}\"  # {}", self.mode.as_str(), origin("share.mode"));
        let _ = writeln!(out, "allow_full_screen = {}  # {}", self.allow_full_screen, origin("share.allow_full_screen"));
        let _ = writeln!(out, "# built-in blocks: {} applications, {} browser sites", builtin::APPS.len(), builtin::SITES.len());
        for (list, what) in [(&self.admin_blocks, "block"), (&self.user_blocks, "block"), (&self.admin_allows, "allow")] {
            for r in list {
                let m = &r.matcher;
                let _ = writeln!(
                    out,
                    "{what}: app={:?} title_contains={:?} site={:?}  # {}",
                    m.app.as_deref().unwrap_or("*"),
                    m.title_contains.as_deref().unwrap_or("*"),
                    m.site.as_deref().unwrap_or("*"),
                    r.id
                );
            }
        }
        let _ = writeln!(out, "\n[servers]");
        match &self.servers.allowed {
            Some(list) => {
                let list: Vec<String> = list.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "allowed = {list:?}  # {}", origin("servers.allowed"));
            }
            None => {
                let _ = writeln!(out, "allowed = any  # built-in");
            }
        }
        let known: Vec<String> = self.servers.known.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "known = {known:?}");
        let _ = writeln!(out, "require_tls = {}  # {}", self.servers.require_tls, origin("servers.require_tls"));
        let _ = writeln!(out, "ice_servers = {:?}  # {}", self.servers.ice_servers, origin("servers.ice_servers"));
        let _ = writeln!(out, "\n[network]");
        let _ = writeln!(out, "relay_only = {}  # {}", self.servers.relay_only, origin("network.relay_only"));
        let _ = writeln!(out, "\n[hotkeys]");
        let h = &self.hotkeys;
        for (key, value) in
            [("camera", &h.camera), ("microphone", &h.microphone), ("screen_share", &h.screen_share), ("all_off", &h.all_off)]
        {
            let _ = writeln!(out, "{key} = \"{value}\"  # {}", origin(&format!("hotkeys.{key}")));
        }
        out
    }
}

/// The built-in decision: application identity first; for browsers, the site in the title.
fn builtin_verdict(w: &Prepared, kind: WindowKind) -> Verdict {
    if kind == WindowKind::Notification {
        return Verdict::block(Category::Notification, "builtin:window-type:notification", Category::Notification.describe());
    }
    if let Some(app) = w.app_keys.iter().find_map(|k| APP_INDEX.get(k.as_str())) {
        return app_block(app, "app");
    }
    if builtin::NOTIFICATION_TITLES.contains(&w.title.as_str()) {
        return Verdict::block(Category::Notification, "builtin:title:notification", Category::Notification.describe());
    }
    if w.app_keys[0].is_empty() {
        if w.title.is_empty() {
            return Verdict::block(Category::Unidentified, "builtin:unidentified", "neither application nor title can be read");
        }
        // No application name: the title's last part often names the program.
        if let Some(app) = w.segments.last().and_then(|s| APP_INDEX.get(s.as_str())) {
            return app_block(app, "title-app");
        }
    }
    if !w.maybe_browser {
        return Verdict::Allow;
    }
    if w.title.is_empty() {
        return Verdict::block(Category::Unidentified, "builtin:browser-without-title", "the browser's page title cannot be read");
    }
    if let Some((domain, category)) = builtin::DOMAINS.iter().find(|(d, _)| w.title.contains(d)) {
        return Verdict::block(*category, format!("builtin:domain:{domain}"), format!("{} ({domain})", category.describe()));
    }
    for seg in &w.segments {
        let site =
            SITE_INDEX.get(seg.as_str()).copied().or_else(|| SITE_PREFIXES.iter().find(|(p, _)| part_matches(seg, p)).map(|(_, s)| *s));
        if let Some(site) = site {
            let rule = format!("builtin:site:{}", site.name.to_lowercase().replace(' ', "-"));
            return Verdict::block(site.category, rule, format!("{} ({})", site.category.describe(), site.name));
        }
        if looks_like_mail_address(seg) {
            return Verdict::block(Category::Webmail, "builtin:site:mail-address", "webmail in a browser (an e-mail address in the title)");
        }
    }
    Verdict::Allow
}

fn app_block(app: &App, how: &str) -> Verdict {
    let rule = format!("builtin:{how}:{}", app.name.to_lowercase().replace(' ', "-"));
    Verdict::block(app.category, rule, format!("{} ({})", app.category.describe(), app.name))
}

fn looks_like_mail_address(part: &str) -> bool {
    !part.contains(' ')
        && part
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'))
}
