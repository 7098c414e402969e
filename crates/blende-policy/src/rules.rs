//! Rules written in policy files, and the prepared form of a window they are matched against.

use crate::normalize::{app_keys, normalize, segments};
use crate::window::WindowInfo;

/// What a rule looks at. Every field that is set must match (AND). Matching is on normalised
/// text: case, dashes, invisible characters and unread counters do not matter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// The application identity (as `blende windows` shows it), compared whole.
    pub app: Option<String>,
    /// A piece of the window title.
    pub title_contains: Option<String>,
    /// A site as browsers show it in their title ("Intranet-Mail"): one title part, whole or
    /// as its beginning. Only browser windows match.
    pub site: Option<String>,
}

impl Matcher {
    pub fn new(app: Option<&str>, title_contains: Option<&str>, site: Option<&str>) -> Result<Self, String> {
        let norm = |s: Option<&str>| s.map(normalize).filter(|s| !s.is_empty());
        let app = app.map(|a| app_keys(a).swap_remove(0)).filter(|s| !s.is_empty());
        let m = Matcher { app, title_contains: norm(title_contains), site: norm(site) };
        if m.app.is_none() && m.title_contains.is_none() && m.site.is_none() {
            return Err("a rule needs at least one of `app`, `title_contains`, `site` (non-empty)".into());
        }
        Ok(m)
    }

    pub(crate) fn matches(&self, w: &Prepared) -> bool {
        self.app.as_ref().is_none_or(|a| w.app_keys.iter().any(|k| k == a))
            && self.title_contains.as_ref().is_none_or(|t| w.title.contains(t.as_str()))
            && self.site.as_ref().is_none_or(|s| w.maybe_browser && w.segments.iter().any(|seg| part_matches(seg, s)))
    }
}

/// `part` is `name`, or begins with `name` followed by a space or a colon ("Zimbra: Betreff").
pub(crate) fn part_matches(part: &str, name: &str) -> bool {
    part.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']))
}

/// A rule from a policy file, with the id that verdicts report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub matcher: Matcher,
    pub reason: Option<String>,
}

/// A window normalised once, then matched against every rule.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub app_keys: Vec<String>,
    pub title: String,
    /// Title parts; filled for windows that are or may be browsers.
    pub segments: Vec<String>,
    pub maybe_browser: bool,
}

impl Prepared {
    pub(crate) fn new(w: &WindowInfo, is_browser: impl Fn(&[String]) -> bool) -> Self {
        let app_keys = app_keys(&w.app_name);
        let title = normalize(&w.title);
        // An unnamed application may be a browser, and so may any window whose title ends in a
        // browser's name (embedded or renamed browsers): look at its title parts as well.
        let titled_as_browser = title.rsplit(" - ").next().is_some_and(|last| last != title && is_browser(&[last.to_owned()]));
        let maybe_browser = app_keys[0].is_empty() || is_browser(&app_keys) || titled_as_browser;
        let segments = if maybe_browser { segments(&title) } else { Vec::new() };
        Prepared { app_keys, title, segments, maybe_browser }
    }
}
