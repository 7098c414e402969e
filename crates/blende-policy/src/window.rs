//! What the policy knows about a window: plain data filled in by a platform driver.

use std::fmt;
use std::sync::Arc;

use crate::desktop::AppFacts;

/// The desktop platform a window lives on. Application identities differ per platform
/// (Linux: `WM_CLASS` class, Windows: executable or its file description, macOS: owner name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Os {
    Linux,
    Windows,
    Macos,
}

impl Os {
    /// The platform this binary was built for.
    pub const fn current() -> Self {
        if cfg!(target_os = "windows") {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::Macos
        } else {
            Os::Linux
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "linux" => Some(Os::Linux),
            "windows" => Some(Os::Windows),
            "macos" | "mac" | "darwin" => Some(Os::Macos),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
            Os::Macos => "macos",
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the window manager says the window is, where it says anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// An ordinary top-level window, or nothing known.
    #[default]
    Normal,
    /// A notification pop-up (X11 `_NET_WM_WINDOW_TYPE_NOTIFICATION`, Windows toast …).
    Notification,
}

/// One window as the policy sees it. Titles are personal data: never log them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WindowInfo {
    pub os: Os,
    /// The owning application as the platform names it.
    pub app_name: String,
    pub title: String,
    pub pid: Option<u32>,
    pub kind: WindowKind,
    /// What the platform says about the application (its desktop entry …), where the driver
    /// found it. Shared, so a per-frame snapshot only clones a pointer.
    pub facts: Option<Arc<AppFacts>>,
}

impl WindowInfo {
    pub fn new(os: Os, app_name: impl Into<String>, title: impl Into<String>) -> Self {
        Self { os, app_name: app_name.into(), title: title.into(), pid: None, kind: WindowKind::Normal, facts: None }
    }

    #[must_use]
    pub fn with_facts(mut self, facts: Option<Arc<AppFacts>>) -> Self {
        self.facts = facts;
        self
    }
}
