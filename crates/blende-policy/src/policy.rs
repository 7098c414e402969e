//! The effective policy: built-in rules, then the administrator's layer, then the user's.
//! Users add blocks; only the administrator lifts built-in blocks, allows the whole screen
//! or switches to allow-list mode. A broken layer makes the whole policy fail closed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::builtin::{self, App, Site};
use crate::fast::{FastMap, FastSet, trigram};
use crate::file::{LayerKind, ParsedLayer, PolicyError, ShareMode, parse_layer};
use crate::hotkey::Hotkeys;
use crate::identity::{Identity, Match, Products};
use crate::normalize::clean_segment;
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

/// Documents passed directly between participants (`[documents]`, administrator only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentPolicy {
    pub enabled: bool,
    /// The largest document a participant may receive, in MB (10^6 bytes).
    pub max_mb: u64,
}

impl DocumentPolicy {
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_mb.saturating_mul(1_000_000)
    }
}

/// Built in: documents on, up to 2 GB.
pub const DEFAULT_DOCUMENTS: DocumentPolicy = DocumentPolicy { enabled: true, max_mb: 2000 };

#[derive(Clone, Debug)]
pub struct Policy {
    mode: ShareMode,
    allow_full_screen: bool,
    admin_blocks: Vec<Rule>,
    admin_allows: Vec<Rule>,
    user_blocks: Vec<Rule>,
    servers: ServerPolicy,
    documents: DocumentPolicy,
    hotkeys: Hotkeys,
    origins: HashMap<&'static str, Origin>,
    /// The layer files read, in order (for `policy show`).
    layers: Vec<Origin>,
    failure: Option<PolicyError>,
}

static APPS: LazyLock<Products<App>> = LazyLock::new(|| Products::new(builtin::APPS.iter().map(|a| (a, a.keys)), builtin::GENERIC_KEYS));
// Known tools and terminals lift the mailbox rule, so they are recognised only by their whole
// name (filler words aside), never as a word inside another: "ExcelMail" is not Excel.
static TOOLS: LazyLock<Products<&'static str>> =
    LazyLock::new(|| Products::new(builtin::TOOLS.iter().map(|t| (t, std::slice::from_ref(t))), builtin::TOOLS));
static TERMINALS: LazyLock<Products<&'static str>> =
    LazyLock::new(|| Products::new(builtin::TERMINALS.iter().map(|t| (t, std::slice::from_ref(t))), builtin::TERMINALS));
/// Exact title last parts, for windows without an application name.
static APP_INDEX: LazyLock<FastMap<&'static str, &'static App>> =
    LazyLock::new(|| builtin::APPS.iter().flat_map(|a| a.keys.iter().map(move |k| (*k, a))).collect());
static BROWSER_INDEX: LazyLock<FastSet<&'static str>> = LazyLock::new(|| builtin::BROWSERS.iter().copied().collect());
static SITE_INDEX: LazyLock<FastMap<&'static str, &'static Site>> =
    LazyLock::new(|| builtin::SITES.iter().flat_map(|s| s.parts.iter().map(move |p| (*p, s))).collect());
static SITE_PREFIXES: LazyLock<Vec<(&'static str, &'static Site)>> =
    LazyLock::new(|| builtin::SITES.iter().flat_map(|s| s.prefixes.iter().map(move |p| (p.trim_end(), s))).collect());
static MAILBOX: LazyLock<FastSet<&'static str>> = LazyLock::new(|| builtin::MAILBOX_WORDS.iter().copied().collect());
/// The first three bytes of every mailbox word: a title none of them occurs in has no mailbox.
static MAILBOX_STARTS: LazyLock<FastSet<u32>> =
    LazyLock::new(|| builtin::MAILBOX_WORDS.iter().filter_map(|w| trigram(w.as_bytes())).collect());

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
            documents: DEFAULT_DOCUMENTS,
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
        policy.documents.enabled = false;
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
        if let Some(e) = layer.documents_enabled {
            self.documents.enabled = e;
            set("documents.enabled", &mut self.origins);
        }
        if let Some(mb) = layer.documents_max_mb {
            self.documents.max_mb = mb;
            set("documents.max_mb", &mut self.origins);
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

    /// Whether documents may pass between participants, and how large. A policy that failed
    /// closed allows none.
    pub fn documents(&self) -> DocumentPolicy {
        if self.failure.is_some() { DocumentPolicy { enabled: false, ..self.documents } } else { self.documents }
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
        self.decide(window).0
    }

    /// The verdict with what decided it, for `blende policy explain`: the layer, the rule and
    /// the part of the window's identity or title that matched.
    pub fn explain(&self, window: &WindowInfo) -> Explanation {
        let (verdict, evidence) = self.decide(window);
        Explanation { verdict, evidence }
    }

    fn decide(&self, window: &WindowInfo) -> (Verdict, Evidence) {
        if let Some(e) = &self.failure {
            return (Verdict::block(Category::PolicyError, "policy:error", e.to_string()), Evidence::PolicyBroken);
        }
        let w = Prepared::new(window, is_browser);
        let from_rule = |r: &Rule, category: Category| {
            Verdict::block(category, r.id.clone(), r.reason.clone().unwrap_or_else(|| category.describe().to_owned()))
        };
        if let Some(r) = self.admin_blocks.iter().find(|r| r.matcher.matches(&w)) {
            return (from_rule(r, Category::AdminRule), Evidence::Rule(r.id.clone()));
        }
        if let Some(r) = self.user_blocks.iter().find(|r| r.matcher.matches(&w)) {
            return (from_rule(r, Category::UserRule), Evidence::Rule(r.id.clone()));
        }
        let excepted = self.admin_allows.iter().find(|r| r.matcher.matches(&w));
        let (built_in, evidence) = builtin_verdict(&w, window);
        match (self.mode, excepted) {
            (_, Some(r)) => (Verdict::Allow, Evidence::Excepted { rule: r.id.clone(), would_be: built_in.category() }),
            (ShareMode::Blocklist, None) => (built_in, evidence),
            (ShareMode::Allowlist, None) if !built_in.is_allowed() => (built_in, evidence),
            (ShareMode::Allowlist, None) => (
                Verdict::block(Category::AdminRule, "admin:allowlist", "not among the applications the administrator allows to be shared"),
                Evidence::NotAllowListed,
            ),
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
        let documents = self.documents();
        let _ = writeln!(out, "\n[documents]");
        let _ = writeln!(out, "enabled = {}  # {}", documents.enabled, origin("documents.enabled"));
        let _ = writeln!(out, "max_mb = {}  # {}", documents.max_mb, origin("documents.max_mb"));
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

/// What made a verdict, in words an administrator can check (`blende policy explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// No rule blocks the window.
    Nothing,
    PolicyBroken,
    /// An administrator's or user's block rule, by id.
    Rule(String),
    /// An administrator's allow rule lifts what would otherwise block it.
    Excepted {
        rule: String,
        would_be: Option<Category>,
    },
    NotAllowListed,
    /// The window manager calls it a notification.
    WindowType,
    /// A known program, recognised in this identity string (the window's application name or
    /// one of the platform's names for it), whole or by a word.
    Program {
        identity: String,
        word: Option<String>,
    },
    /// The platform files the application under this category.
    PlatformCategory {
        source: String,
        category: String,
    },
    /// The whole title is what notification pop-ups are called.
    NotificationTitle,
    /// A window without application name whose title's last part names a program.
    TitleProgram {
        part: String,
    },
    /// A terminal whose title names a terminal mail or chat program.
    TerminalProgram {
        word: String,
    },
    /// A browser title with this host name.
    Domain(String),
    /// A browser title part that names a webmail or web-messenger site.
    SitePart(String),
    /// A title part that is an e-mail address.
    MailAddress,
    /// A title part that is a mailbox ("Posteingang"), in a browser or an unknown program.
    Mailbox(String),
    /// No application name and no title.
    Unidentified,
}

/// A verdict and why (see [`Policy::explain`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub verdict: Verdict,
    pub evidence: Evidence,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Nothing => f.write_str("no rule blocks it"),
            Evidence::PolicyBroken => f.write_str("a policy file is broken, so every window is blocked"),
            Evidence::Rule(id) => write!(f, "the block rule {id}"),
            Evidence::Excepted { rule, would_be: Some(c) } => {
                write!(f, "the administrator's allow rule {rule} lifts the built-in block ({c})")
            }
            Evidence::Excepted { rule, would_be: None } => write!(f, "the administrator's allow rule {rule} (nothing else would block it)"),
            Evidence::NotAllowListed => f.write_str("allow-list mode, and no allow rule names it"),
            Evidence::WindowType => f.write_str("the window manager marks the window as a notification"),
            Evidence::Program { identity, word: None } => write!(f, "the application name {identity:?} is a known program's"),
            Evidence::Program { identity, word: Some(w) } => write!(f, "the application name {identity:?} contains the program name {w:?}"),
            Evidence::PlatformCategory { source, category } => write!(f, "its {source} lists the category {category}"),
            Evidence::NotificationTitle => f.write_str("the title is what notification pop-ups are called"),
            Evidence::TitleProgram { part } => write!(f, "no application name, and the title's last part {part:?} names a program"),
            Evidence::TerminalProgram { word } => write!(f, "a terminal whose title names the program {word:?}"),
            Evidence::Domain(d) => write!(f, "the browser title shows the address {d}"),
            Evidence::SitePart(p) => write!(f, "the browser title part {p:?} names the site"),
            Evidence::MailAddress => f.write_str("a browser title part is an e-mail address"),
            Evidence::Mailbox(p) => write!(f, "the title part {p:?} is a mailbox"),
            Evidence::Unidentified => f.write_str("neither application nor title can be read"),
        }
    }
}

/// The built-in decision: window type; application identity (its names, then the platform's
/// names and categories); for browsers, the site in the title; a mailbox in the title of a
/// program nobody knows.
fn builtin_verdict(w: &Prepared, window: &WindowInfo) -> (Verdict, Evidence) {
    if window.kind == WindowKind::Notification {
        let v = Verdict::block(Category::Notification, "builtin:window-type:notification", Category::Notification.describe());
        return (v, Evidence::WindowType);
    }
    let facts = window.facts.as_deref();
    let raw = std::iter::once(window.app_name.as_str()).chain(facts.into_iter().flat_map(|f| f.names.iter().map(String::as_str)));
    let identities: Vec<(&str, Identity)> = raw.map(|r| (r, Identity::new(r))).collect();
    for (raw, identity) in &identities {
        if let Some((app, how)) = APPS.find_identity(identity) {
            let word = match how {
                Match::Exact => None,
                Match::Word(w) => Some(w),
            };
            return (app_block(app, "app"), Evidence::Program { identity: (*raw).to_owned(), word });
        }
    }
    if let Some(f) = facts
        && let Some((name, category)) = f.blocked_category()
    {
        let v = Verdict::block(category, format!("os:category:{name}"), format!("{} ({}: {name})", category.describe(), f.source));
        return (v, Evidence::PlatformCategory { source: f.source.clone(), category: name.to_owned() });
    }
    if builtin::NOTIFICATION_TITLES.contains(&w.title.as_str()) && !builtin::SETTINGS_APPS.contains(&w.app_keys[0].as_str()) {
        let v = Verdict::block(Category::Notification, "builtin:title:notification", Category::Notification.describe());
        return (v, Evidence::NotificationTitle);
    }
    if w.app_keys[0].is_empty() {
        if w.title.is_empty() {
            let v = Verdict::block(Category::Unidentified, "builtin:unidentified", "neither application nor title can be read");
            return (v, Evidence::Unidentified);
        }
        // No application name: the title's last part often names the program.
        if let Some((part, app)) = w.segments.last().and_then(|s| APP_INDEX.get(s.as_str()).map(|a| (s, a))) {
            return (app_block(app, "title-app"), Evidence::TitleProgram { part: part.clone() });
        }
    }
    let is_terminal = || identities.iter().any(|(_, i)| TERMINALS.find_identity(i).is_some());
    if let Some(first) = w.title.split(|c: char| !c.is_alphanumeric() && c != '-').find(|x| !x.is_empty())
        && let Some((word, category)) = builtin::TERMINAL_PROGRAMS.iter().find(|(p, _)| *p == first)
        && is_terminal()
    {
        let v = Verdict::block(*category, format!("builtin:terminal:{word}"), format!("{} in a terminal ({word})", category.describe()));
        return (v, Evidence::TerminalProgram { word: (*word).to_owned() });
    }
    if !w.maybe_browser {
        // A program nobody knows (not a browser, not a known tool) showing a mailbox.
        if let Some(part) = mailbox_part(&w.title)
            && !identities.iter().any(|(_, i)| TOOLS.find_identity(i).is_some())
            && !is_terminal()
        {
            let v = Verdict::block(Category::Mail, "builtin:mailbox-title", "e-mail program (its title shows a mailbox)");
            return (v, Evidence::Mailbox(part));
        }
        return (Verdict::Allow, Evidence::Nothing);
    }
    if w.title.is_empty() {
        let v = Verdict::block(Category::Unidentified, "builtin:browser-without-title", "the browser's page title cannot be read");
        return (v, Evidence::Unidentified);
    }
    if let Some((domain, category)) = builtin::DOMAINS.iter().find(|(d, _)| w.title.contains(d)) {
        let v = Verdict::block(*category, format!("builtin:domain:{domain}"), format!("{} ({domain})", category.describe()));
        return (v, Evidence::Domain((*domain).to_owned()));
    }
    // A page about products (Wikipedia, GitLab): their names alone do not make it the web app.
    let about = w.segments.iter().any(|s| builtin::INFO_SITES.contains(&s.as_str()));
    let mut pair = String::new();
    for (i, seg) in w.segments.iter().enumerate() {
        if about {
            if looks_like_mail_address(seg) {
                let v =
                    Verdict::block(Category::Webmail, "builtin:site:mail-address", "webmail in a browser (an e-mail address in the title)");
                return (v, Evidence::MailAddress);
            }
            continue;
        }
        // A site is one part ("Gmail") or two ("Talk - Nextcloud").
        pair.clear();
        if let Some(next) = w.segments.get(i + 1) {
            pair.push_str(seg);
            pair.push_str(" - ");
            pair.push_str(next);
        }
        let site = SITE_INDEX
            .get(seg.as_str())
            .or_else(|| SITE_INDEX.get(pair.as_str()))
            .copied()
            .or_else(|| SITE_PREFIXES.iter().find(|(p, _)| part_matches(seg, p)).map(|(_, s)| *s));
        if site.is_none()
            && let Some((_, name, category)) = builtin::SITE_SUFFIXES.iter().find(|(suffix, _, _)| seg.ends_with(suffix))
        {
            let rule = format!("builtin:site:{}", name.to_lowercase());
            let v = Verdict::block(*category, rule, format!("{} ({name})", category.describe()));
            return (v, Evidence::SitePart(seg.clone()));
        }
        if let Some(site) = site {
            let rule = format!("builtin:site:{}", site.name.to_lowercase().replace(' ', "-"));
            let v = Verdict::block(site.category, rule, format!("{} ({})", site.category.describe(), site.name));
            return (v, Evidence::SitePart(seg.clone()));
        }
        if looks_like_mail_address(seg) {
            let v = Verdict::block(Category::Webmail, "builtin:site:mail-address", "webmail in a browser (an e-mail address in the title)");
            return (v, Evidence::MailAddress);
        }
    }
    if !about && let Some(part) = mailbox_part(&w.title) {
        let v = if w.app_keys.iter().any(|k| builtin::MAIL_SUITES.contains(&k.as_str())) {
            Verdict::block(Category::Mail, "builtin:mailbox-title", "e-mail program (its title shows a mailbox)")
        } else {
            Verdict::block(Category::Webmail, "builtin:site:mailbox", "webmail in a browser (its title shows a mailbox)")
        };
        return (v, Evidence::Mailbox(part));
    }
    (Verdict::Allow, Evidence::Nothing)
}

/// A part of a normalised title that is a mailbox word, with any separator around it: the
/// usual " - ", but also ":", "::", "|", "•", "·", "/" with or without spaces, and unread
/// counters ("Posteingang (3)", "Inbox (1,024)") dropped.
fn mailbox_part(title: &str) -> Option<String> {
    // Most titles have no mailbox word at all: find that out without splitting anything.
    let bytes = title.as_bytes();
    if !(0..bytes.len()).any(|i| trigram(&bytes[i..]).is_some_and(|t| MAILBOX_STARTS.contains(&t))) {
        return None;
    }
    title
        .split(['|', '•', '·', ':', '/', '»', '«', '>', '<', '—'])
        .flat_map(|p| p.split(" - "))
        .map(clean_segment)
        .find(|p| MAILBOX.contains(p.as_str()) || MAILBOX.contains(mailbox_of(p)))
}

/// "posteingang für max@stadt.de" → "posteingang": a mailbox word and whose mailbox it is.
fn mailbox_of(part: &str) -> &str {
    const OF: [&str; 14] =
        [" für ", " von ", " for ", " of ", " de ", " van ", " pour ", " di ", " per ", " dla ", " pro ", " til ", " para ", " - "];
    OF.iter().find_map(|of| part.split_once(of).map(|(head, _)| head)).unwrap_or(part)
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
