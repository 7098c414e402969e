//! The answer the policy gives for one window.

use std::fmt;

/// Why a window is blocked. `as_str` is the stable machine name used by `blende policy classify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    Mail,
    Webmail,
    Messenger,
    WebMessenger,
    Notification,
    /// A block the administrator's policy added, or "not on the allow list" in allow-list mode.
    AdminRule,
    /// A block the user added in their own settings.
    UserRule,
    /// Whole-screen sharing while the administrator has not allowed it.
    FullScreen,
    /// The window cannot be identified (no application and no title, or a browser whose tab
    /// title cannot be read): it might be anything, so it is not shareable.
    Unidentified,
    /// A policy file is broken: the policy fails closed and nothing is shareable.
    PolicyError,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Mail,
        Category::Webmail,
        Category::Messenger,
        Category::WebMessenger,
        Category::Notification,
        Category::AdminRule,
        Category::UserRule,
        Category::FullScreen,
        Category::Unidentified,
        Category::PolicyError,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Mail => "mail",
            Category::Webmail => "webmail",
            Category::Messenger => "messenger",
            Category::WebMessenger => "webmessenger",
            Category::Notification => "notification",
            Category::AdminRule => "admin-rule",
            Category::UserRule => "user-rule",
            Category::FullScreen => "full-screen",
            Category::Unidentified => "unidentified",
            Category::PolicyError => "policy-error",
        }
    }

    /// A short English description, for logs and the CLI. The UI translates by `as_str`.
    pub const fn describe(self) -> &'static str {
        match self {
            Category::Mail => "e-mail program",
            Category::Webmail => "webmail in a browser",
            Category::Messenger => "messenger",
            Category::WebMessenger => "web messenger in a browser",
            Category::Notification => "notification pop-up",
            Category::AdminRule => "blocked by the administrator",
            Category::UserRule => "blocked by your own rule",
            Category::FullScreen => "whole-screen sharing is not allowed",
            Category::Unidentified => "window cannot be identified",
            Category::PolicyError => "the sharing policy is broken",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Share or not. A `Block` names the rule that fired so IT can trace it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Block {
        category: Category,
        /// Stable identifier of the rule, e.g. `builtin:app:thunderbird` or
        /// `admin:/etc/blende/policy.toml:block[2]`.
        rule: String,
        /// Human-readable, free of the window title.
        reason: String,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow)
    }

    pub fn category(&self) -> Option<Category> {
        match self {
            Verdict::Allow => None,
            Verdict::Block { category, .. } => Some(*category),
        }
    }

    pub(crate) fn block(category: Category, rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Verdict::Block { category, rule: rule.into(), reason: reason.into() }
    }
}
