//! Which windows may ever be shared.
//!
//! `blende-policy` is sans-IO: it is driven by plain values. A platform driver fills a
//! [`WindowInfo`], the caller reads policy files and hands their text in as [`Source`]s, and
//! [`Policy::classify`] answers with a [`Verdict`]. It knows nothing about X11, tokio or egui
//! (checked by `cargo xtask check-deps`).
//!
//! Layers: built-in rules < administrator's system policy < user settings. A user layer may
//! add blocks and pick hotkeys, never lift a block; a broken layer makes the policy fail
//! closed (every window blocked, see [`Policy::from_sources`]).

mod builtin;
mod desktop;
mod fast;
mod file;
mod hotkey;
mod identity;
pub mod normalize;
mod policy;
mod rules;
mod server;
mod user_rules;
mod verdict;
mod window;

pub use desktop::{AppDirectory, AppFacts, DesktopEntry};
pub use file::{LayerKind, PolicyError, ShareMode};
pub use hotkey::{Hotkey, Hotkeys, Modifiers};
pub use policy::{DEFAULT_DOCUMENTS, DocumentPolicy, Evidence, Explanation, Origin, Policy, ServerPolicy, Source};
pub use rules::{Matcher, Rule};
pub use server::{ServerKind, ServerUrl, ServerUrlError};
pub use user_rules::{AddRuleError, NewBlock, add_user_block};
pub use verdict::{Category, Verdict};
pub use window::{Os, WindowInfo, WindowKind};

/// Where IT installs the system policy on this platform.
pub const fn system_policy_path() -> &'static str {
    if cfg!(target_os = "windows") {
        r"C:\ProgramData\Blende\policy.toml"
    } else if cfg!(target_os = "macos") {
        "/Library/Application Support/Blende/policy.toml"
    } else {
        "/etc/blende/policy.toml"
    }
}
