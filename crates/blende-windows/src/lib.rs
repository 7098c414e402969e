//! The windows on this desktop, read through xcap, as plain [`DesktopWindow`] values that the
//! sans-IO policy can judge. This is a thin IO driver: it lists and reads, it decides nothing.
//!
//! On X11, xcap reads titles only from `_NET_WM_NAME` or a COMPOUND_TEXT `WM_NAME`, and the
//! latter with its escape sequences left in (which hides the dashes between a browser title's
//! parts); a plain STRING `WM_NAME` (xterm, many Motif/Xt programs) it does not read at all. So
//! this crate reads every title itself by its property type ([`x11_title`], the same function
//! the share guard's snapshot uses), and reads `_NET_WM_WINDOW_TYPE` to recognise notification
//! pop-ups.

use blende_policy::{Os, Policy, Verdict, WindowInfo, WindowKind};
use serde::Serialize;

#[cfg(target_os = "linux")]
pub mod apps;
#[cfg(target_os = "linux")]
pub mod compound_text;
#[cfg(target_os = "linux")]
pub mod share;
#[cfg(target_os = "linux")]
mod x11;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WindowsError {
    #[error("cannot list windows: {0}")]
    List(String),
}

/// One top-level window. `title` is personal data: keep it out of logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DesktopWindow {
    pub id: u32,
    pub pid: Option<u32>,
    pub app_name: String,
    pub title: String,
    pub x: i32,
    pub y: i32,
    /// Stacking position: higher is on top.
    pub z: i32,
    pub width: u32,
    pub height: u32,
    pub minimized: bool,
    #[serde(skip)]
    pub kind: WindowKind,
    /// The title property could not be decoded exactly: such a window is never shareable.
    #[serde(skip)]
    pub title_unreadable: bool,
    /// What the installed desktop entries say about its application.
    #[serde(skip)]
    pub facts: Option<std::sync::Arc<blende_policy::AppFacts>>,
}

impl DesktopWindow {
    /// What the policy needs to judge this window.
    pub fn info(&self) -> WindowInfo {
        WindowInfo {
            os: Os::current(),
            app_name: self.app_name.clone(),
            title: self.title.clone(),
            pid: self.pid,
            kind: self.kind,
            facts: self.facts.clone(),
        }
    }
}

/// A window with the policy's verdict, as `blende windows` and the share picker show it.
#[derive(Clone, Debug, Serialize)]
pub struct JudgedWindow {
    #[serde(flatten)]
    pub window: DesktopWindow,
    pub verdict: &'static str,
    pub category: Option<&'static str>,
    pub rule: Option<String>,
    pub reason: Option<String>,
}

impl JudgedWindow {
    pub fn new(window: DesktopWindow, policy: &Policy) -> Self {
        let verdict = if window.title_unreadable {
            Verdict::Block {
                category: blende_policy::Category::Unidentified,
                rule: "builtin:unreadable-title".into(),
                reason: "the window's title cannot be read exactly".into(),
            }
        } else {
            policy.classify(&window.info())
        };
        match verdict {
            Verdict::Allow => JudgedWindow { window, verdict: "allow", category: None, rule: None, reason: None },
            Verdict::Block { category, rule, reason } => {
                JudgedWindow { window, verdict: "block", category: Some(category.as_str()), rule: Some(rule), reason: Some(reason) }
            }
        }
    }

    pub fn is_allowed(&self) -> bool {
        self.verdict == "allow"
    }
}

/// Lists the desktop's top-level windows, bottom to top.
pub fn list_windows() -> Result<Vec<DesktopWindow>, WindowsError> {
    let all = xcap::Window::all().map_err(|e| WindowsError::List(e.to_string()))?;
    #[cfg(target_os = "linux")]
    let x = x11::Extra::connect();
    #[cfg(target_os = "linux")]
    let installed = apps::installed();
    let mut out = Vec::with_capacity(all.len());
    for w in all {
        // A window that vanished while we read it is simply no longer there.
        let Ok(id) = w.id() else { continue };
        let mut dw = DesktopWindow {
            id,
            pid: w.pid().ok(),
            app_name: w.app_name().unwrap_or_default(),
            title: w.title().unwrap_or_default(),
            x: w.x().unwrap_or_default(),
            y: w.y().unwrap_or_default(),
            z: w.z().unwrap_or_default(),
            width: w.width().unwrap_or_default(),
            height: w.height().unwrap_or_default(),
            minimized: w.is_minimized().unwrap_or(false),
            kind: WindowKind::Normal,
            title_unreadable: false,
            facts: None,
        };
        #[cfg(target_os = "linux")]
        if let Some(x) = &x {
            // xcap decodes only some encodings (COMPOUND_TEXT with its escapes left in): the
            // title comes from our own read, as the share guard reads it.
            match x.title(id) {
                Some(Ok(title)) => dw.title = title,
                Some(Err(Unreadable)) => dw.title_unreadable = true,
                None => {}
            }
            if x.is_notification(id) {
                dw.kind = WindowKind::Notification;
            }
            if let Some((instance, class)) = x.wm_class(id) {
                dw.facts = installed.lookup([class.as_str(), instance.as_str()]);
            }
        }
        out.push(dw);
    }
    out.sort_by_key(|w| w.z);
    Ok(out)
}

/// Lists windows with their verdicts under `policy`.
pub fn judge_windows(policy: &Policy) -> Result<Vec<JudgedWindow>, WindowsError> {
    Ok(list_windows()?.into_iter().map(|w| JudgedWindow::new(w, policy)).collect())
}

/// A title property that cannot be decoded exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable;

/// The title X shows for a window: `_NET_WM_NAME` (UTF-8) when set, else `WM_NAME` in its own
/// encoding (`compound` when its type is COMPOUND_TEXT). Pure, so the listing and the share
/// guard read titles the same way.
#[cfg(target_os = "linux")]
pub fn x11_title(net_wm_name: &[u8], wm_name: &[u8], compound: bool) -> Result<String, Unreadable> {
    if !net_wm_name.is_empty() {
        Ok(decode_title(net_wm_name))
    } else if compound {
        compound_text::decode(wm_name).ok_or(Unreadable)
    } else {
        Ok(decode_title(wm_name))
    }
}

/// `WM_CLASS`'s two NUL-terminated strings as (instance, class).
#[cfg(target_os = "linux")]
pub(crate) fn split_wm_class(value: &[u8]) -> Option<(String, String)> {
    let mut parts = value.split(|b| *b == 0);
    let instance = String::from_utf8_lossy(parts.next()?).into_owned();
    let class = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (!instance.is_empty() || !class.is_empty()).then_some((instance, class))
}

/// Decodes a window title property. STRING is Latin-1 by the ICCCM, but many programs (and
/// xdotool) write UTF-8 into it: valid UTF-8 is taken as UTF-8, anything else as Latin-1, so a
/// title can never turn into mojibake that slips past the policy.
pub fn decode_title(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn titles_decode_as_utf8_or_latin1() {
        assert_eq!(super::decode_title("Gmail — Firefox".as_bytes()), "Gmail — Firefox");
        assert_eq!(super::decode_title(b"Stra\xdfe"), "Straße");
    }
}
