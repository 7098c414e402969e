//! Whole-screen sharing, for administrators who allow it: every blocked window on screen is
//! masked, whatever lies on top of it.

use blende_policy::{Policy, Verdict, WindowInfo};

use crate::{Decision, PauseReason, Rect};

/// One top-level window as seen on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenWindow {
    pub info: WindowInfo,
    pub rect: Rect,
}

/// The visible top-level windows of a screen (override-redirect pop-ups included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenSnapshot {
    pub screen: Rect,
    pub windows: Vec<ScreenWindow>,
}

/// The decision for a whole-screen frame captured between `before` and `after`.
///
/// Pauses when the policy does not allow whole-screen sharing. Otherwise masks the whole
/// rectangle of every window that is blocked in either reading: a blocked window's pixels
/// never leave, not even the parts another window leaves uncovered a moment later.
pub fn screen_decision(policy: &Policy, frame_width: u32, frame_height: u32, before: &ScreenSnapshot, after: &ScreenSnapshot) -> Decision {
    if let Verdict::Block { category, rule, .. } = policy.screen_verdict() {
        return Decision::Pause(PauseReason::Blocked { category, rule });
    }
    if before.screen != after.screen || (after.screen.width, after.screen.height) != (frame_width, frame_height) {
        return Decision::Drop;
    }
    let mut masks: Vec<Rect> = before
        .windows
        .iter()
        .chain(&after.windows)
        .filter(|w| !policy.classify(&w.info).is_allowed())
        .filter_map(|w| w.rect.intersect(&after.screen))
        .map(|r| r.relative_to(&after.screen))
        .collect();
    masks.sort_by_key(|m| (m.y, m.x, m.width, m.height));
    masks.dedup();
    Decision::Send { masks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blende_policy::{Category, Os, Source};

    fn win(app: &str, title: &str, rect: Rect) -> ScreenWindow {
        ScreenWindow { info: WindowInfo::new(Os::Linux, app, title), rect }
    }

    #[test]
    fn forbidden_unless_the_administrator_allows_it() {
        let s = ScreenSnapshot { screen: Rect::new(0, 0, 100, 100), windows: vec![] };
        match screen_decision(&Policy::builtin(), 100, 100, &s, &s) {
            Decision::Pause(PauseReason::Blocked { category: Category::FullScreen, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blocked_windows_are_masked_whole_in_either_reading() {
        let admin =
            Policy::try_from_sources(Some(Source { name: "p.toml", text: "[share]\nallow_full_screen = true\n" }), None).expect("policy");
        let screen = Rect::new(0, 0, 1000, 800);
        let before = ScreenSnapshot {
            screen,
            windows: vec![
                win("XTerm", "a.docx - Word", Rect::new(0, 0, 500, 500)),
                win("Thunderbird", "Inbox", Rect::new(900, 700, 300, 300)),
            ],
        };
        let after = ScreenSnapshot { screen, windows: vec![win("Signal", "Signal", Rect::new(10, 10, 50, 50))] };
        assert_eq!(
            screen_decision(&admin, 1000, 800, &before, &after),
            Decision::Send { masks: vec![Rect::new(10, 10, 50, 50), Rect::new(900, 700, 100, 100)] }
        );
        assert_eq!(screen_decision(&admin, 999, 800, &before, &after), Decision::Drop);
    }
}
