//! A running share in the app: the same capture → guard pipeline as `share-preview`, on its
//! own named thread. The UI gets the guarded picture (latest only) and the guard's pauses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use blende_devices::clock;
use blende_guard::{Decision, FrameMut, PauseReason, apply};
use blende_media::kill_switch::Gate;
use blende_policy::Policy;
use blende_windows::share::Bgra;
use eframe::egui;

use super::frames::{LatestFrame, bgra_image};
use crate::preview::{OpenError, Pipeline, Source};

/// Frames per second of a shared window (a document, not a film).
const SHARE_FPS: u64 = 5;

pub struct ShareSession {
    pub frame: LatestFrame,
    /// `Some(reason)` when the guard paused, `None` when it resumed.
    pub status: Receiver<Option<PauseReason>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ShareSession {
    /// Starts sharing `source` until `gate` closes (a switch, a shortcut) or the session is
    /// dropped; the policy's refusal comes back as `Err`.
    pub fn start(policy: Policy, source: Source, gate: Gate, ctx: egui::Context) -> Result<Self, String> {
        let mut pipeline = Pipeline::open(policy, source).map_err(|e| match e {
            OpenError::Refused(why) => why,
            OpenError::Failed(e) => e.to_string(),
        })?;
        let frame: LatestFrame = Arc::default();
        let (tx, status) = sync_channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (frame, stop) = (frame.clone(), stop.clone());
            std::thread::Builder::new()
                .name("blende-share".into())
                .spawn(move || {
                    let mut buf = Bgra::default();
                    let mut paused = false;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) && !gate.is_closed() {
                        let captured_us = clock::now_us();
                        let decision = pipeline.next(&mut buf, captured_us);
                        let now_paused = matches!(decision, Decision::Pause(_));
                        if now_paused != paused {
                            let _ = tx.try_send(if let Decision::Pause(r) = &decision { Some(r.clone()) } else { None });
                            paused = now_paused;
                        }
                        if !buf.data.is_empty() {
                            let mut fm = FrameMut {
                                data: &mut buf.data,
                                width: buf.width,
                                height: buf.height,
                                stride_bytes: buf.width as usize * 4,
                            };
                            if apply(&decision, &mut fm) && gate.admits(captured_us) {
                                let img = bgra_image(&buf);
                                if let Ok(mut slot) = frame.lock() {
                                    n += 1;
                                    *slot = Some((n, img));
                                }
                            }
                        }
                        ctx.request_repaint();
                        std::thread::sleep(Duration::from_millis(1000 / SHARE_FPS));
                    }
                })
                .map_err(|e| e.to_string())?
        };
        Ok(ShareSession { frame, status, stop, thread: Some(thread) })
    }
}

impl Drop for ShareSession {
    fn drop(&mut self) {
        // Nothing more is captured after the thread's current frame; not joined, so that
        // "stop sharing" never makes the UI wait for a capture in flight.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take());
    }
}
