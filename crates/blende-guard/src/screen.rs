//! Whole-screen sharing, for administrators who allow it: every blocked window on screen is
//! masked, whatever lies on top of it.

use blende_policy::{Policy, Verdict, WindowInfo};

use crate::{Decision, PauseReason, Rect};

/// One top-level window as seen on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenWindow {
    /// The window system's id of the top-level window (its frame), to tell a window that
    /// moved from one that went while another came.
    pub id: u64,
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
/// rectangle of every window that is blocked in either reading, whatever covers it: a blocked
/// window's pixels never leave, not even the parts another window leaves uncovered a moment
/// later. When a blocked window moved or was resized between the readings, the frame is dropped.
pub fn screen_decision(policy: &Policy, frame_width: u32, frame_height: u32, before: &ScreenSnapshot, after: &ScreenSnapshot) -> Decision {
    if let Verdict::Block { category, rule, .. } = policy.screen_verdict() {
        return Decision::Pause(PauseReason::Blocked { category, rule });
    }
    if before.screen != after.screen || (after.screen.width, after.screen.height) != (frame_width, frame_height) {
        return Decision::Drop;
    }
    let blocked = |s: &ScreenSnapshot| -> Vec<(u64, Rect)> {
        s.windows.iter().filter(|w| !policy.classify(&w.info).is_allowed()).map(|w| (w.id, w.rect)).collect()
    };
    let (earlier, later) = (blocked(before), blocked(after));
    // A blocked window that moved or changed size while the screen was read may have been
    // anywhere in between (a drag passes through every place between its two readings): no
    // mask can be trusted, the frame is not sent. One that appeared or went was where one of
    // the readings shows it.
    if earlier.iter().any(|(id, r)| later.iter().any(|(id2, r2)| id == id2 && r != r2)) {
        return Decision::Drop;
    }
    let mut masks: Vec<Rect> =
        earlier.iter().chain(&later).filter_map(|(_, r)| r.intersect(&after.screen)).map(|r| r.relative_to(&after.screen)).collect();
    masks.sort_by_key(|m| (m.y, m.x, m.width, m.height));
    masks.dedup();
    Decision::Send { masks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blende_policy::{Category, Os, Source};

    fn win(app: &str, title: &str, rect: Rect) -> ScreenWindow {
        // Its id from where it was first seen: tests move windows by changing `rect` only.
        ScreenWindow {
            id: u64::from(rect.x.unsigned_abs()) << 32 | u64::from(rect.y.unsigned_abs()),
            info: WindowInfo::new(Os::Linux, app, title),
            rect,
        }
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
        // Blocked windows where they were: masked whole, clipped to the screen.
        let mut after = before.clone();
        after.windows[0].info.title = "b.docx - Word".into();
        assert_eq!(screen_decision(&admin, 1000, 800, &before, &after), Decision::Send { masks: vec![Rect::new(900, 700, 100, 100)] });
        assert_eq!(screen_decision(&admin, 999, 800, &before, &after), Decision::Drop);
        // A blocked window that appeared is masked where it appeared, one that went where it was.
        let mut appeared = before.clone();
        appeared.windows.push(win("Signal", "Signal", Rect::new(10, 10, 50, 50)));
        let both = Decision::Send { masks: vec![Rect::new(10, 10, 50, 50), Rect::new(900, 700, 100, 100)] };
        assert_eq!(screen_decision(&admin, 1000, 800, &before, &appeared), both);
        assert_eq!(screen_decision(&admin, 1000, 800, &appeared, &before), both);
        // One that moved while the screen was read passed through places neither reading
        // shows: not sent.
        let mut moved = before.clone();
        moved.windows[1].rect = Rect::new(800, 600, 300, 300);
        assert_eq!(screen_decision(&admin, 1000, 800, &before, &moved), Decision::Drop);
        // An allowed window moving does not matter.
        let mut doc_moved = before.clone();
        doc_moved.windows[0].rect = Rect::new(40, 40, 500, 500);
        assert_eq!(screen_decision(&admin, 1000, 800, &before, &doc_moved), Decision::Send { masks: vec![Rect::new(900, 700, 100, 100)] });
    }
}
