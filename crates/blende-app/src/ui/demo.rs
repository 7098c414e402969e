//! The embedded default: a local demo meeting with no server. The user's own devices (or the
//! synthetic ones) run through the real kill-switch driver; a synthetic participant sends a
//! test pattern. Nothing leaves the machine.
//!
//! Threads: the device driver's own, plus one named engine thread that turns frames into
//! images for the UI (latest frame only, no queue) and forwards device states. The UI calls
//! [`Demo::set_enabled`] directly, so a switch closes its gate in the UI thread at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blende_devices::{DeviceError, DriverConfig, DriverEvent, DriverHandle, DriverOutputs};
use blende_media::kill_switch::{DeviceKind, DeviceState};
use blende_media::synthetic::TestPatternCamera;
use eframe::egui;

use super::frames::{LatestFrame, image, store};

/// A device's real state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceUpdate {
    pub kind: DeviceKind,
    pub state: DeviceState,
}

pub struct Demo {
    driver: Option<Arc<DriverHandle>>,
    pub local: LatestFrame,
    pub remote: LatestFrame,
    /// Microphone level in dBFS as f32 bits.
    mic_level: Arc<AtomicU32>,
    pub updates: Receiver<DeviceUpdate>,
    stop: Arc<AtomicBool>,
    engine: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").finish_non_exhaustive()
    }
}

const REMOTE_FPS: u32 = 15;
/// At most this many repaints a second for new pictures: the local camera and the demo
/// participant each bring 15 a second, out of step, and every repaint is a whole window drawn
/// (in software on machines without a GPU); a device switch repaints at once.
const PICTURE_REPAINT: Duration = Duration::from_millis(1000 / 16);

impl Demo {
    /// Starts the demo with camera and microphone on.
    pub fn start(ctx: &egui::Context, camera_id: &str, microphone_id: &str) -> Result<Self, DeviceError> {
        Self::start_with(ctx, camera_id, microphone_id, true)
    }

    /// The join screen's device check: the chosen camera and microphone through the same
    /// driver, with no demo participant. Opened only when the user asks for it.
    pub fn device_check(ctx: &egui::Context, camera_id: &str, microphone_id: &str) -> Result<Self, DeviceError> {
        Self::start_with(ctx, camera_id, microphone_id, false)
    }

    fn start_with(ctx: &egui::Context, camera_id: &str, microphone_id: &str, participant: bool) -> Result<Self, DeviceError> {
        let config = DriverConfig {
            camera_id: camera_id.to_owned(),
            microphone_id: microphone_id.to_owned(),
            synthetic_camera_size: (640, 360),
            synthetic_camera_fps: 15,
            ..DriverConfig::default()
        };
        let (driver, outputs) = DriverHandle::start(config)?;
        let (tx, updates) = sync_channel(64);
        let local: LatestFrame = Arc::default();
        let remote: LatestFrame = Arc::default();
        let mic_level = Arc::new(AtomicU32::new((-120.0f32).to_bits()));
        let stop = Arc::new(AtomicBool::new(false));
        let engine = {
            let (ctx, local, remote, mic_level, stop) = (ctx.clone(), local.clone(), remote.clone(), mic_level.clone(), stop.clone());
            std::thread::Builder::new()
                .name("blende-demo-engine".into())
                .spawn(move || engine(&ctx, &outputs, &tx, &local, participant.then_some(&remote), &mic_level, &stop))
                .map_err(|source| DeviceError::Thread { name: "blende-demo-engine", source })?
        };
        let demo = Demo { driver: Some(Arc::new(driver)), local, remote, mic_level, updates, stop, engine: Some(engine) };
        demo.set_enabled(DeviceKind::Camera, true)?;
        demo.set_enabled(DeviceKind::Microphone, true)?;
        Ok(demo)
    }

    /// Switches a device. Off closes the gate before this returns.
    pub fn set_enabled(&self, kind: DeviceKind, on: bool) -> Result<(), DeviceError> {
        match &self.driver {
            Some(d) => d.set_enabled(kind, on),
            None => Err(DeviceError::DriverStopped),
        }
    }

    pub fn all_off(&self) -> Result<(), DeviceError> {
        match &self.driver {
            Some(d) => d.panic_all_off(),
            None => Err(DeviceError::DriverStopped),
        }
    }

    /// The driver, for the global shortcuts.
    pub fn driver(&self) -> Option<Arc<DriverHandle>> {
        self.driver.clone()
    }

    pub fn mic_level_dbfs(&self) -> f32 {
        f32::from_bits(self.mic_level.load(Ordering::Relaxed))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The last owner shuts the driver down (global shortcuts hold a clone until dropped).
        if let Some(d) = self.driver.take().and_then(Arc::into_inner) {
            d.shutdown();
        }
        if let Some(e) = self.engine.take() {
            let _ = e.join();
        }
    }
}

fn engine(
    ctx: &egui::Context,
    outputs: &DriverOutputs,
    updates: &SyncSender<DeviceUpdate>,
    local: &LatestFrame,
    remote: Option<&LatestFrame>,
    mic_level: &AtomicU32,
    stop: &AtomicBool,
) {
    let mut participant = TestPatternCamera::new(640, 360, REMOTE_FPS);
    let start = Instant::now();
    let mut next_remote = start;
    // Pictures still queued when the camera went off are not shown: the tile goes blank.
    let mut camera_on = false;
    // The last picture repaint, or the one already asked for.
    let mut picture_repaint = start;
    while !stop.load(Ordering::Relaxed) {
        let mut changed = false;
        let mut new_picture = false;
        while let Ok(e) = outputs.events.try_recv() {
            if let DriverEvent::State(e) = e {
                // A full queue means the UI is not draining (hidden): the next state catches up.
                let _ = updates.try_send(DeviceUpdate { kind: e.kind, state: e.to.clone() });
                changed = true;
                if e.kind == DeviceKind::Camera {
                    camera_on = e.to == DeviceState::On;
                }
                if e.kind == DeviceKind::Camera
                    && !camera_on
                    && let Ok(mut s) = local.lock()
                {
                    // A switched-off camera shows nothing, not its last picture.
                    *s = None;
                }
            }
        }
        while let Ok(a) = outputs.audio.try_recv() {
            let level = blende_media::synthetic::rms_dbfs(&a.samples().to_f32()) as f32;
            mic_level.store(level.to_bits(), Ordering::Relaxed);
        }
        match outputs.video.recv_timeout(Duration::from_millis(10)) {
            Ok(frame) if camera_on => {
                store(local, image(&frame));
                new_picture = true;
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Some(remote) = remote
            && Instant::now() >= next_remote
        {
            let t_us = start.elapsed().as_micros() as u64;
            store(remote, image(&participant.next_frame(t_us)));
            next_remote += Duration::from_micros(participant.frame_interval_us());
            new_picture = true;
        }
        if changed {
            ctx.request_repaint();
        } else if new_picture {
            // Pictures arriving close together share one repaint.
            let now = Instant::now();
            if picture_repaint > now {
                // One is already asked for; it shows this picture too.
            } else if now.duration_since(picture_repaint) >= PICTURE_REPAINT {
                picture_repaint = now;
                ctx.request_repaint();
            } else {
                picture_repaint += PICTURE_REPAINT;
                ctx.request_repaint_after(picture_repaint - now);
            }
        }
    }
}
