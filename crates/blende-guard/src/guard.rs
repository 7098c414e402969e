//! The share guard state machine.

use std::collections::VecDeque;

use blende_policy::{Category, Policy, Verdict, WindowInfo};

use crate::Rect;

/// What the platform driver read about the shared window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetRead {
    Present {
        info: WindowInfo,
        rect: Rect,
        minimized: bool,
    },
    /// The window no longer exists.
    Gone,
    /// Its metadata could not be read (permissions, a dying window, a broken connection).
    Unreadable,
}

/// The desktop around the shared window at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub target: TargetRead,
    /// Every visible window stacked above the shared one (override-redirect pop-ups,
    /// menus and notifications included), in desktop coordinates.
    pub above: Vec<Rect>,
}

/// Why nothing of the window is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// The window's verdict turned to block (a tab switched to webmail …).
    Blocked {
        category: Category,
        rule: String,
    },
    Minimized,
    Closed,
    Unreadable,
}

impl PauseReason {
    /// Stable machine name, for events, logs and translation in the UI.
    pub fn as_str(&self) -> &'static str {
        match self {
            PauseReason::Blocked { .. } => "blocked",
            PauseReason::Minimized => "minimized",
            PauseReason::Closed => "closed",
            PauseReason::Unreadable => "unreadable",
        }
    }

    /// Text for the slate the others see (kept short; the 5×7 font has ASCII capitals).
    pub fn slate_text(&self) -> String {
        match self {
            PauseReason::Blocked { category, .. } => category.describe().to_owned(),
            PauseReason::Minimized => "window minimised".into(),
            PauseReason::Closed => "window closed".into(),
            PauseReason::Unreadable => "window cannot be checked".into(),
        }
    }
}

/// The guard's answer for one captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send the frame after filling `masks` (frame coordinates) with the neutral colour.
    Send { masks: Vec<Rect> },
    /// Send the slate instead of the frame.
    Pause(PauseReason),
    /// The window moved or was resized while it was captured: the masks cannot be trusted for
    /// this frame, so it is not sent at all (the previous frame stays on the receivers' screens).
    Drop,
}

/// Transitions, for the UI and the audit log. Identified by window id; titles never appear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardEvent {
    Paused {
        window_id: u64,
        at_us: u64,
        reason: PauseReason,
    },
    Resumed {
        window_id: u64,
        at_us: u64,
    },
    /// The number of covered regions changed (0 = nothing on top any more).
    Masking {
        window_id: u64,
        at_us: u64,
        regions: usize,
    },
}

/// Starting a share was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Blocked { category: Category, rule: String, reason: String },
    NotShareable(PauseReason),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Blocked { category, reason, .. } => write!(f, "this window may not be shared ({category}): {reason}"),
            Refusal::NotShareable(r) => write!(f, "this window cannot be shared now: {}", r.slate_text()),
        }
    }
}

/// Counters for benchmarks and the status line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub sent: u64,
    pub masked: u64,
    pub paused: u64,
    pub dropped: u64,
}

/// Decides, for every captured frame of one shared window, whether it may leave the machine.
///
/// Drive it like this, for each frame: read a [`Snapshot`] (`before`), capture the pixels, read
/// another [`Snapshot`] (`after`), then call [`ShareGuard::handle_frame`]. Reading metadata on
/// both sides of the capture means a window that was renamed, blocked or raised at any moment
/// the pixels could have been taken is seen.
#[derive(Debug)]
pub struct ShareGuard {
    policy: Policy,
    window_id: u64,
    paused: Option<PauseReason>,
    closed: bool,
    regions: usize,
    events: VecDeque<GuardEvent>,
    stats: GuardStats,
}

/// Bound on queued events: a UI that never drains must not make the guard grow.
const MAX_EVENTS: usize = 256;

impl ShareGuard {
    /// Starts guarding `window_id`, refusing a window that may not be shared right now.
    pub fn start(policy: Policy, window_id: u64, now: &Snapshot) -> Result<Self, Refusal> {
        let mut guard = ShareGuard {
            policy,
            window_id,
            paused: None,
            closed: false,
            regions: 0,
            events: VecDeque::new(),
            stats: GuardStats::default(),
        };
        match guard.judge(&now.target) {
            None => Ok(guard),
            Some(PauseReason::Blocked { category, rule }) => {
                let reason = match &now.target {
                    TargetRead::Present { info, .. } => match guard.policy.classify(info) {
                        Verdict::Block { reason, .. } => reason,
                        Verdict::Allow => String::new(),
                    },
                    _ => String::new(),
                };
                Err(Refusal::Blocked { category, rule, reason })
            }
            Some(other) => Err(Refusal::NotShareable(other)),
        }
    }

    pub fn window_id(&self) -> u64 {
        self.window_id
    }

    /// Why the share is paused, if it is.
    pub fn paused(&self) -> Option<&PauseReason> {
        self.paused.as_ref()
    }

    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    /// A reloaded policy applies from the next frame on.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    fn judge(&mut self, target: &TargetRead) -> Option<PauseReason> {
        match target {
            TargetRead::Gone => {
                self.closed = true;
                Some(PauseReason::Closed)
            }
            TargetRead::Unreadable => Some(PauseReason::Unreadable),
            TargetRead::Present { info, minimized, .. } => match self.policy.classify(info) {
                Verdict::Block { category, rule, .. } => Some(PauseReason::Blocked { category, rule }),
                Verdict::Allow if *minimized => Some(PauseReason::Minimized),
                Verdict::Allow => None,
            },
        }
    }

    /// The decision for a frame of `frame_width`×`frame_height` captured between `before` and
    /// `after`.
    pub fn handle_frame(&mut self, frame_width: u32, frame_height: u32, before: &Snapshot, after: &Snapshot, now_us: u64) -> Decision {
        let reason = if self.closed {
            Some(PauseReason::Closed)
        } else {
            // The later reading wins the reason; either one pauses.
            let later = self.judge(&after.target);
            let earlier = self.judge(&before.target);
            later.or(earlier)
        };
        if let Some(reason) = reason {
            if self.paused.as_ref() != Some(&reason) {
                self.push(GuardEvent::Paused { window_id: self.window_id, at_us: now_us, reason: reason.clone() });
            }
            self.paused = Some(reason.clone());
            self.stats.paused += 1;
            return Decision::Pause(reason);
        }
        let (TargetRead::Present { rect: r0, .. }, TargetRead::Present { rect: r1, .. }) = (&before.target, &after.target) else {
            unreachable!("judge() pauses every other reading")
        };
        if r0 != r1 || (r1.width, r1.height) != (frame_width, frame_height) {
            self.stats.dropped += 1;
            return Decision::Drop;
        }
        if self.paused.take().is_some() {
            self.push(GuardEvent::Resumed { window_id: self.window_id, at_us: now_us });
        }
        let covering = |s: &Snapshot| -> Vec<Rect> {
            let mut m: Vec<Rect> = s.above.iter().filter_map(|a| a.intersect(r1)).map(|m| m.relative_to(r1)).collect();
            m.sort_by_key(|m| (m.y, m.x, m.width, m.height));
            m.dedup();
            m
        };
        let masks = covering(after);
        // A window on top that moved across the shared one while it was read passed through
        // places neither reading shows: no mask can be trusted.
        if covering(before) != masks {
            self.stats.dropped += 1;
            return Decision::Drop;
        }
        if masks.len() != self.regions {
            self.regions = masks.len();
            self.push(GuardEvent::Masking { window_id: self.window_id, at_us: now_us, regions: masks.len() });
        }
        self.stats.sent += 1;
        if !masks.is_empty() {
            self.stats.masked += 1;
        }
        Decision::Send { masks }
    }

    pub fn poll_event(&mut self) -> Option<GuardEvent> {
        self.events.pop_front()
    }

    fn push(&mut self, e: GuardEvent) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }
}
