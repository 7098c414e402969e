//! Stepping a video stream down, and back up, when the congestion controller's target is too
//! low for its picture size and frame rate (sans-IO: the target and the caller's clock in, a
//! [`Rung`] out).
//!
//! A camera gives up resolution first (faces stay recognisable at a quarter of the pixels,
//! and motion stays smooth), then frame rate. A shared window gives up frame rate first — a
//! document must stay legible — and resolution only at the last rung. When the target has
//! stayed below what the rung needs for [`DOWN_AFTER_US`], the stream goes straight down to
//! the first rung that fits (a picture too large for its link loses its keyframes, and waiting
//! a rung at a time is a freeze); it goes up one rung when the target has stayed half as much
//! again above what the rung above needs for [`UP_AFTER_US`]: the estimate of a thin link
//! wobbles, the picture must not. A step up that comes down again within
//! [`UP_FAILED_WITHIN_US`] doubles that wait (up to [`MAX_UP_AFTER_US`]).

use crate::vp8::ContentKind;

/// Width and height are divided by `scale`; only every `fps_div`-th picture is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    pub scale: u32,
    pub fps_div: u32,
}

const fn rung(scale: u32, fps_div: u32) -> Rung {
    Rung { scale, fps_div }
}

const CAMERA: [Rung; 4] = [rung(1, 1), rung(2, 1), rung(4, 1), rung(4, 2)];
const SCREEN: [Rung; 4] = [rung(1, 1), rung(1, 2), rung(1, 4), rung(2, 4)];

/// Bits per pixel a rung needs, in thousandths: VP8 at real-time speed keeps a camera picture
/// clean around 0.04 and a mostly still window around 0.015.
const CAMERA_MILLIBITS_PER_PIXEL: u64 = 40;
const SCREEN_MILLIBITS_PER_PIXEL: u64 = 15;

/// How long the target must stay too low before a step down.
pub const DOWN_AFTER_US: u64 = 1_000_000;
/// ... or far too low (under three quarters of the rung's need): the link has shown it cannot
/// carry the rung, and every picture sent at it until the step is lost.
pub const DOWN_FAST_AFTER_US: u64 = 250_000;
/// How long it must stay high enough before a step up.
pub const UP_AFTER_US: u64 = 5_000_000;
/// A step up that has to go down again within this was too much for the link ...
pub const UP_FAILED_WITHIN_US: u64 = 10_000_000;
/// ... and the next one waits twice as long, up to this: GCC's estimate of a link the encoder
/// does not fill climbs past what the link carries, and each step up over a capped link costs
/// a keyframe too large for it.
pub const MAX_UP_AFTER_US: u64 = 60_000_000;
/// A rung held this long after a step up was the link's: the wait is back to [`UP_AFTER_US`].
pub const UP_KEPT_US: u64 = 30_000_000;

/// One outgoing video stream's rung.
#[derive(Debug, Clone)]
pub struct Ladder {
    rungs: &'static [Rung],
    millibits_per_pixel: u64,
    width: u32,
    height: u32,
    fps: u32,
    level: usize,
    low_since: Option<u64>,
    high_since: Option<u64>,
    /// The wait before the next step up, and when the last one was made.
    up_after_us: u64,
    last_up: Option<u64>,
}

impl Ladder {
    /// A stream of `width` × `height` at `fps` pictures a second, at full size and rate.
    #[must_use]
    pub fn new(content: ContentKind, width: u32, height: u32, fps: u32) -> Self {
        let (rungs, millibits_per_pixel) = match content {
            ContentKind::Camera => (&CAMERA[..], CAMERA_MILLIBITS_PER_PIXEL),
            ContentKind::Screen => (&SCREEN[..], SCREEN_MILLIBITS_PER_PIXEL),
        };
        Self {
            rungs,
            millibits_per_pixel,
            width,
            height,
            fps: fps.max(1),
            level: 0,
            low_since: None,
            high_since: None,
            up_after_us: UP_AFTER_US,
            last_up: None,
        }
    }

    /// The frame rate the pictures really come at (measured by the caller).
    pub fn set_fps(&mut self, fps: u32) {
        self.fps = fps.max(1);
    }

    #[must_use]
    pub fn rung(&self) -> Rung {
        self.rungs[self.level]
    }

    /// The picture size at the current rung (even, at least 16 × 16).
    #[must_use]
    pub fn size(&self) -> (u32, u32) {
        scaled(self.width, self.height, self.rung().scale)
    }

    /// What the rung at `level` needs, bit/s.
    fn need_bps(&self, level: usize) -> u64 {
        let r = self.rungs[level];
        let (w, h) = scaled(self.width, self.height, r.scale);
        u64::from(w) * u64::from(h) * u64::from(self.fps / r.fps_div).max(1) * self.millibits_per_pixel / 1000
    }

    /// The congestion controller's target at `now_us`; returns the rung to send at. A target
    /// of 0 (none known yet) changes nothing.
    pub fn update(&mut self, target_bps: u64, now_us: u64) -> Rung {
        if target_bps == 0 {
            return self.rung();
        }
        if self.last_up.is_some_and(|t| now_us.saturating_sub(t) >= UP_KEPT_US) {
            self.last_up = None;
            self.up_after_us = UP_AFTER_US;
        }
        if self.level + 1 < self.rungs.len() && target_bps < self.need_bps(self.level) {
            let since = *self.low_since.get_or_insert(now_us);
            let wait = if target_bps * 4 < self.need_bps(self.level) * 3 { DOWN_FAST_AFTER_US } else { DOWN_AFTER_US };
            if now_us.saturating_sub(since) >= wait {
                let last = self.rungs.len() - 1;
                self.level = (self.level + 1..last).find(|&l| self.need_bps(l) <= target_bps).unwrap_or(last);
                self.low_since = None;
                self.high_since = None;
                if self.last_up.take().is_some_and(|t| now_us.saturating_sub(t) < UP_FAILED_WITHIN_US) {
                    self.up_after_us = (self.up_after_us * 2).min(MAX_UP_AFTER_US);
                }
            }
        } else {
            self.low_since = None;
        }
        if self.level > 0 && target_bps >= self.need_bps(self.level - 1) * 3 / 2 {
            let since = *self.high_since.get_or_insert(now_us);
            if now_us.saturating_sub(since) >= self.up_after_us {
                self.level -= 1;
                self.high_since = None;
                self.last_up = Some(now_us);
            }
        } else {
            self.high_since = None;
        }
        self.rung()
    }
}

/// `width` × `height` divided by `scale`, rounded down to even sizes (I420), at least 16.
#[must_use]
pub fn scaled(width: u32, height: u32, scale: u32) -> (u32, u32) {
    let s = scale.max(1);
    (((width / s) & !1).max(16), ((height / s) & !1).max(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    /// Feeds `target` every 100 ms from `from` for `secs` seconds; returns the last rung.
    fn feed(l: &mut Ladder, target: u64, from: u64, secs: u64) -> Rung {
        let mut r = l.rung();
        for k in 0..secs * 10 {
            r = l.update(target, from + k * S / 10);
        }
        r
    }

    /// Feeds `target` every 10 ms from `from` for `ms` milliseconds; returns the last rung.
    fn feed_ms(l: &mut Ladder, target: u64, from: u64, ms: u64) -> Rung {
        let mut r = l.rung();
        for k in 0..=ms / 10 {
            r = l.update(target, from + k * 10_000);
        }
        r
    }

    #[test]
    fn a_camera_on_a_thin_link_gives_up_resolution_first_then_frame_rate() {
        let mut l = Ladder::new(ContentKind::Camera, 1280, 720, 20);
        // 720p20 needs about 740 kbit/s: plenty keeps the top rung.
        assert_eq!(feed(&mut l, 2_000_000, 0, 10), rung(1, 1));
        // A 650 kbit/s link, a little short of the need: after a second below, half the size
        // (about 185 kbit/s needed).
        assert_eq!(feed(&mut l, 650_000, 10 * S, 1), rung(1, 1), "not at the first low estimate");
        assert_eq!(feed(&mut l, 650_000, 11 * S, 1), rung(2, 1));
        assert_eq!(l.size(), (640, 360));
        assert_eq!(feed(&mut l, 650_000, 12 * S, 20), rung(2, 1), "settled: no further step");
        // Very thin: straight down past the quarter size (46 kbit/s) to half its frame rate,
        // and far below the need, after a quarter of a second.
        assert_eq!(feed_ms(&mut l, 30_000, 32 * S, 200), rung(2, 1));
        assert_eq!(feed_ms(&mut l, 30_000, 32 * S + 200_000, 100), rung(4, 2));
        assert_eq!(l.size(), (320, 180));
        // From the top to the rung that fits in one step.
        let mut l = Ladder::new(ContentKind::Camera, 1280, 720, 20);
        assert_eq!(feed(&mut l, 100_000, 0, 2), rung(4, 1));
        // A 420 kbit/s link under 720p20 (740 kbit/s) is far too thin to wait a second.
        let mut l = Ladder::new(ContentKind::Camera, 1280, 720, 20);
        assert_eq!(feed_ms(&mut l, 420_000, 0, 200), rung(1, 1));
        assert_eq!(feed_ms(&mut l, 420_000, 200_000, 100), rung(2, 1));
    }

    #[test]
    fn a_shared_window_gives_up_frame_rate_before_resolution() {
        let mut l = Ladder::new(ContentKind::Screen, 1280, 720, 10);
        // 1280×720 at 10 fps needs about 140 kbit/s.
        assert_eq!(feed(&mut l, 100_000, 0, 2), rung(1, 2));
        assert_eq!(l.size(), (1280, 720), "still legible");
        assert_eq!(feed(&mut l, 20_000, 3 * S, 2), rung(2, 4));
    }

    #[test]
    fn the_way_back_up_waits_for_a_steady_margin() {
        let mut l = Ladder::new(ContentKind::Camera, 1280, 720, 20);
        assert_eq!(feed(&mut l, 400_000, 0, 2), rung(2, 1));
        // Just above what 720p needs: not enough margin, it stays down.
        assert_eq!(feed(&mut l, 800_000, 3 * S, 20), rung(2, 1));
        // A wobbling estimate (every other second low) never goes up.
        for k in 0..10 {
            feed(&mut l, if k % 2 == 0 { 1_500_000 } else { 700_000 }, (23 + k) * S, 1);
        }
        assert_eq!(l.rung(), rung(2, 1));
        // Steady and high for five seconds: back to full size.
        assert_eq!(feed(&mut l, 1_500_000, 33 * S, 4), rung(2, 1));
        assert_eq!(feed(&mut l, 1_500_000, 37 * S, 2), rung(1, 1));
        // No estimate yet changes nothing.
        assert_eq!(l.update(0, 40 * S), rung(1, 1));
    }

    /// A capped link whose estimate overshoots whenever the small picture does not fill it:
    /// each step up that has to come down again doubles the wait for the next, and a rung
    /// that holds brings the wait back.
    #[test]
    fn a_step_up_the_link_cannot_carry_waits_longer_the_next_time() {
        let mut l = Ladder::new(ContentKind::Camera, 1280, 720, 20);
        let mut t = 0;
        let mut waits = Vec::new();
        assert_eq!(feed(&mut l, 420_000, t, 2), rung(2, 1));
        t += 2 * S;
        for _ in 0..5 {
            // The estimate climbs past the cap; count how long until the step up.
            let from = t;
            while l.rung() == rung(2, 1) {
                l.update(1_500_000, t);
                t += S / 10;
            }
            waits.push((t - from) / S);
            // The bigger picture meets the cap: down again 2 s later.
            assert_eq!(feed(&mut l, 420_000, t, 2), rung(2, 1));
            t += 2 * S;
        }
        assert_eq!(waits, [5, 10, 20, 40, 60]);
        // Held: 30 s at full size, then the next climb goes at the first wait again.
        while l.rung() == rung(2, 1) {
            l.update(1_500_000, t);
            t += S / 10;
        }
        assert_eq!(feed(&mut l, 1_500_000, t, 31), rung(1, 1));
        t += 31 * S;
        assert_eq!(feed(&mut l, 420_000, t, 2), rung(2, 1));
        t += 2 * S;
        assert_eq!(feed(&mut l, 1_500_000, t, 5), rung(2, 1));
        assert_eq!(feed(&mut l, 1_500_000, t + 5 * S, 1), rung(1, 1), "five seconds again");
    }

    #[test]
    fn sizes_stay_even_and_usable() {
        assert_eq!(scaled(1280, 720, 4), (320, 180));
        assert_eq!(scaled(642, 362, 4), (160, 90));
        assert_eq!(scaled(30, 30, 4), (16, 16));
        assert_eq!(scaled(100, 100, 0), (100, 100));
    }
}
