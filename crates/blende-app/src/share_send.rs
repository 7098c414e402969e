//! Sending a shared window into the call.
//!
//! The share is its own publisher in the room (as Janus's screen-sharing demo and most Janus
//! deployments do): a second signalling session named "<name> (screen)" with one VP8 track in
//! screen-content mode. Starting and stopping a share then needs no renegotiation of the
//! camera's PeerConnection, and every receiver — Blende or a browser — sees it as one more feed.
//!
//! One named thread captures, asks the share guard, applies its decision (masks, slate) and
//! encodes; nothing reaches the encoder except through `blende_guard::apply`. A guarded
//! picture of any size is letterboxed into the fixed canvas the encoder was made for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blende_guard::{Decision, FrameMut, GuardEvent, apply};
use blende_media::PixelFormat;
use blende_media::convert::{PackedPicture, letterbox, to_i420};
use blende_media::frame::VideoFrame;
use blende_rtc::{ContentKind, Peer, PeerConfig, PeerRole, VideoInput};
use blende_windows::share::Bgra;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::preview::{OpenError, Pipeline, Source};

/// The encoder's canvas: shared windows are scaled down into it, never up.
pub const CANVAS: (u32, u32) = (1280, 720);
/// Capture rate of a shared window.
pub const SHARE_FPS: u64 = 10;

/// A running share: its capture thread and its publisher PeerConnection.
pub struct ShareSender {
    pub peer: Peer,
    pub display: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ShareSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareSender").finish_non_exhaustive()
    }
}

/// Why a share did not start.
#[derive(Debug)]
pub enum StartError {
    /// The policy refuses the window or the screen (the reason names the category).
    Refused(String),
    Failed(String),
}

pub type PictureHook = Arc<dyn Fn(&Bgra) + Send + Sync>;

impl ShareSender {
    /// Opens the capture and checks the policy first (a refused window is never captured),
    /// then builds the publisher PeerConnection. The caller publishes [`Self::peer`]'s offer
    /// on its own signalling session. Guard events come out on `events` as JSON (JOIN.md).
    ///
    /// # Errors
    /// [`StartError::Refused`] by the policy; [`StartError::Failed`] for capture or WebRTC.
    pub async fn start(
        policy: blende_policy::Policy,
        source: Source,
        peer_config: PeerConfig,
        display: String,
        events: mpsc::Sender<Value>,
        preview: Option<PictureHook>,
    ) -> Result<Self, StartError> {
        let pipeline = Pipeline::open(policy, source).map_err(|e| match e {
            OpenError::Refused(why) => StartError::Refused(why),
            OpenError::Failed(e) => StartError::Failed(format!("{e:#}")),
        })?;
        let config =
            PeerConfig { role: PeerRole::Publisher, video: Some(CANVAS), video_content: ContentKind::Screen, audio: false, ..peer_config };
        let (peer, _events) = Peer::new(config).await.map_err(|e| StartError::Failed(e.to_string()))?;
        let input = peer.video_input().map_err(|e| StartError::Failed(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("blende-share-send".into())
                .spawn(move || capture_loop(pipeline, input, &stop, &events, preview.as_deref()))
                .map_err(|e| StartError::Failed(e.to_string()))?
        };
        Ok(ShareSender { peer, display, stop, thread: Some(thread) })
    }

    /// Stops capturing at once (the frame in flight is the last), then closes the PeerConnection.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // The loop checks `stop` before every capture and every send: this wait is one frame.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.peer.close().await;
    }
}

impl Drop for ShareSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn guard_event_json(ev: &GuardEvent) -> Value {
    match ev {
        GuardEvent::Paused { window_id, at_us, reason } => {
            let category = match reason {
                blende_guard::PauseReason::Blocked { category, .. } => Some(category.as_str()),
                _ => None,
            };
            json!({"event": "share", "state": "paused", "reason": reason.as_str(), "category": category, "window": window_id, "at_us": at_us})
        }
        GuardEvent::Resumed { window_id, at_us } => json!({"event": "share", "state": "sending", "window": window_id, "at_us": at_us}),
        GuardEvent::Masking { window_id, at_us, regions } => {
            json!({"event": "share", "state": "masking", "regions": regions, "window": window_id, "at_us": at_us})
        }
    }
}

fn capture_loop(
    mut pipeline: Pipeline,
    mut input: VideoInput,
    stop: &AtomicBool,
    events: &mpsc::Sender<Value>,
    preview: Option<&(dyn Fn(&Bgra) + Send + Sync)>,
) {
    let start = Instant::now();
    let interval = Duration::from_millis(1000 / SHARE_FPS);
    let mut buf = Bgra::default();
    let mut sequence = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let t_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let decision = pipeline.next(&mut buf, t_us);
        while let Some(ev) = pipeline.poll_event() {
            // Events carry window ids, never titles. A full queue drops one: the state repeats.
            let _ = events.try_send(guard_event_json(&ev));
        }
        let closed = matches!(&decision, Decision::Pause(blende_guard::PauseReason::Closed));
        if !buf.data.is_empty() && !stop.load(Ordering::Acquire) {
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
                if let Ok(frame) = letterbox(picture, CANVAS.0, CANVAS.1, t_us, sequence) {
                    let frame: VideoFrame = to_i420(&frame);
                    if input.send(&frame).is_err() {
                        return;
                    }
                }
            }
        }
        if closed {
            // Closing is final: the guard keeps the slate; nothing more to capture.
            let _ = events.try_send(json!({"event": "share", "state": "ended", "reason": "closed"}));
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
