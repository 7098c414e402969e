//! Sending a shared window: one named thread captures, asks the share guard, applies its
//! decision (masks, slate) and encodes once per receiver. Nothing reaches an encoder except
//! through `blende_guard::apply`, and nothing captured at or after the share's gate closed.
//!
//! Receivers (one publisher PeerConnection on a server, one per participant in a mesh) join
//! and leave over a bounded channel that the thread drains between frames, so the thread
//! never shares a lock with the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blende_call::{PeerId, ShareReport};
use blende_devices::clock;
use blende_guard::{Decision, FrameMut, PauseReason, apply};
use blende_media::PixelFormat;
use blende_media::convert::{PackedPicture, letterbox, to_i420};
use blende_media::kill_switch::Gate;
use blende_rtc::VideoInput;
use blende_windows::share::Bgra;

use super::media::{SinkCmd, apply_sink_cmds, fan_out};
use crate::preview::{OpenError, Pipeline, Source};

/// The encoder's canvas: shared windows are scaled down into it, never up.
pub const CANVAS: (u32, u32) = (1280, 720);
/// Capture rate of a shared window.
pub const SHARE_FPS: u64 = 10;

pub type PictureHook = Arc<dyn Fn(&Bgra) + Send + Sync>;
pub type ReportHook = Arc<dyn Fn(ShareReport) + Send + Sync>;

/// A running share's capture thread.
pub struct ShareCapture {
    stop: Arc<AtomicBool>,
    sinks: SyncSender<SinkCmd<VideoInput>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ShareCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareCapture").finish_non_exhaustive()
    }
}

impl ShareCapture {
    /// Opens the capture and checks the policy first (a refused window is never captured).
    ///
    /// # Errors
    /// The policy's refusal, a capture failure, or a gate already closed.
    pub fn start(
        policy: blende_policy::Policy,
        source: Source,
        gate: Gate,
        report: ReportHook,
        preview: Option<PictureHook>,
    ) -> Result<Self, ShareReport> {
        if gate.is_closed() {
            return Err(ShareReport::Failed("the share was switched off".into()));
        }
        let pipeline = Pipeline::open(policy, source).map_err(|e| match e {
            OpenError::Refused(why) => ShareReport::Refused(why),
            OpenError::Failed(e) => ShareReport::Failed(format!("{e:#}")),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (sinks, sink_rx) = sync_channel(64);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("blende-share-send".into())
                .spawn(move || capture_loop(pipeline, &sink_rx, &gate, &stop, &*report, preview.as_deref()))
                .map_err(|e| ShareReport::Failed(e.to_string()))?
        };
        Ok(ShareCapture { stop, sinks, thread: Some(thread) })
    }

    /// Encode for this receiver too.
    pub fn add(&self, peer: PeerId, input: VideoInput) {
        self.send(SinkCmd::Add(peer, input));
    }

    pub fn remove(&self, peer: PeerId) {
        self.send(SinkCmd::Remove(peer));
    }

    fn send(&self, cmd: SinkCmd<VideoInput>) {
        // 64 changes between two frames do not happen; if they did, the receiver would miss
        // the share (never get a stale frame).
        if let Err(TrySendError::Full(_)) = self.sinks.try_send(cmd) {
            log::warn!("share receivers: too many changes at once");
        }
    }

    /// Stops capturing (the frame in flight is the last; the gate is closed already when a
    /// switch stopped it) and waits for the thread.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // The loop checks `stop` before every capture and every send: this wait is one frame.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for ShareCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn capture_loop(
    mut pipeline: Pipeline,
    sink_rx: &Receiver<SinkCmd<VideoInput>>,
    gate: &Gate,
    stop: &AtomicBool,
    report: &(dyn Fn(ShareReport) + Send + Sync),
    preview: Option<&(dyn Fn(&Bgra) + Send + Sync)>,
) {
    let interval = Duration::from_millis(1000 / SHARE_FPS);
    let mut inputs: Vec<(PeerId, VideoInput)> = Vec::new();
    let mut buf = Bgra::default();
    let mut sequence = 0u64;
    let mut next = Instant::now();
    let running = || !stop.load(Ordering::Acquire) && !gate.is_closed();
    while running() {
        apply_sink_cmds(sink_rx, &mut inputs);
        // The media clock, as the camera's frames carry it: the gate compares against it.
        let captured_us = clock::now_us();
        let decision = pipeline.next(&mut buf, captured_us);
        while let Some(ev) = pipeline.poll_event() {
            // Events carry window ids, never titles.
            report(ShareReport::Guard(ev));
        }
        let closed = matches!(&decision, Decision::Pause(PauseReason::Closed));
        if !buf.data.is_empty() && running() {
            let mut fm = FrameMut { data: &mut buf.data, width: buf.width, height: buf.height, stride_bytes: buf.width as usize * 4 };
            // `apply` is the only way to the encoder: masks, or the slate instead of the picture.
            if apply(&decision, &mut fm) {
                if let Some(p) = preview {
                    p(&buf);
                }
                sequence += 1;
                let picture = PackedPicture {
                    data: &buf.data,
                    width: buf.width,
                    height: buf.height,
                    stride_bytes: buf.width as usize * 4,
                    format: PixelFormat::Bgra,
                };
                if let Ok(frame) = letterbox(picture, CANVAS.0, CANVAS.1, captured_us, sequence) {
                    let frame = to_i420(&frame);
                    // Checked again per receiver, right before each encode: a switch closes
                    // the gate from another thread at any moment, and drops the picture still
                    // on its way here too (it may show what made the user reach for it).
                    fan_out(
                        &mut inputs,
                        |input| {
                            if gate.admits(captured_us) && !gate.is_closed() { input.send(&frame) } else { Ok(false) }
                        },
                    );
                }
            }
        }
        if closed {
            // Closing is final: the guard keeps the slate; nothing more to capture.
            report(ShareReport::Ended);
            return;
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}
