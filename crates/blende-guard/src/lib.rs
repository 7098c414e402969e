//! The share guard: every captured frame of a shared window passes it before the encoder.
//!
//! Sans-IO. A platform driver (`blende-windows`) reads a [`Snapshot`] of the desktop before and
//! after capturing the pixels; [`ShareGuard::handle_frame`] answers with a [`Decision`]:
//! send (with regions covered by other windows masked), pause (only a neutral slate is sent),
//! or drop. [`apply`] turns a frame into exactly what may be encoded. No clock is read here:
//! the caller passes the time.

mod geometry;
mod guard;
mod screen;
mod slate;

pub use geometry::Rect;
pub use guard::{Decision, GuardEvent, GuardStats, PauseReason, Refusal, ShareGuard, Snapshot, TargetRead};
pub use screen::{ScreenSnapshot, ScreenWindow, screen_decision};
pub use slate::{FrameMut, MASK_GREY, SLATE_BG, SLATE_FG};

/// Makes `frame` what may be encoded under `decision`. Returns `false` for
/// [`Decision::Drop`]: the frame must not be sent at all.
pub fn apply(decision: &Decision, frame: &mut FrameMut<'_>) -> bool {
    match decision {
        Decision::Send { masks } => {
            for m in masks {
                frame.fill(m, MASK_GREY);
            }
            true
        }
        Decision::Pause(reason) => {
            frame.slate("SHARING PAUSED", &reason.slate_text());
            true
        }
        Decision::Drop => false,
    }
}
