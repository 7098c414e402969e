//! A call on a real server, for the UI: [`crate::engine::run`] on its own named thread with
//! its own tokio runtime. The UI never awaits: it holds the call's [`Control`] (switches close
//! their gate in the UI thread), and drains the engine's typed events each frame; pictures
//! arrive in latest-frame slots, sound goes to a speaker thread that opens the device on its
//! own. Every hook requests a repaint.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blende_devices::{AudioHost, DriverConfig, DriverHandle, SpeakerStream};
use blende_media::frame::AudioFrame;
use blende_media::kill_switch::DeviceKind;
use eframe::egui;

use super::frames::{LatestFrame, bgra_image, image, store};
use crate::engine::{CallCommand, CallEvent, CallSpec, Control, Hooks, Switches};

/// What the UI shows of one remote participant.
#[derive(Debug, Default)]
pub struct RemoteFeed {
    pub display: Option<String>,
    pub picture: LatestFrame,
}

pub type Feeds = Arc<Mutex<BTreeMap<String, RemoteFeed>>>;

/// The end of the engine thread: whether the call ended well, and why not.
#[derive(Debug, Clone)]
pub struct Ended {
    pub ok: bool,
    pub message: Option<String>,
}

pub struct LiveCall {
    pub control: Control,
    pub events: Receiver<CallEvent>,
    /// Filled once when the engine thread ends.
    pub ended: Arc<Mutex<Option<Ended>>>,
    pub local: LatestFrame,
    pub feeds: Feeds,
    /// Our share as it goes to the encoder (after the guard).
    pub share_frame: LatestFrame,
    mic_level: Arc<AtomicU32>,
    speaker_stop: Arc<AtomicBool>,
    /// Why the speaker could not be opened, once the speaker thread knows.
    pub speaker_error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for LiveCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCall").finish_non_exhaustive()
    }
}

/// How the app opens the devices for a call.
#[derive(Clone, Debug, Default)]
pub struct Devices {
    pub camera_id: String,
    pub microphone_id: String,
    /// `None`: the system's default output.
    pub speaker_id: Option<String>,
    /// Size and rate of the synthetic camera, when it is the chosen one.
    pub synthetic_size: Option<(u32, u32, u32)>,
}

/// Pictures arrive from several tracks at up to 30 fps each: one repaint per ~33 ms for all
/// of them, instead of one per picture (drawing costs more than a picture on a software GPU).
const FRAME_REPAINT: Duration = Duration::from_millis(33);

/// Remote sound kept per feed before mixing: 200 ms at 48 kHz.
const FEED_BUFFER_SAMPLES: usize = 9_600;
/// One mixing step: 10 ms.
const MIX_SAMPLES: usize = 480;

impl LiveCall {
    /// Starts the devices and the call engine. Returns at once; the join result arrives as
    /// events (`joined`, or `error` with `fatal`, then `ended`).
    ///
    /// # Errors
    /// The devices or the engine thread could not be started.
    pub fn start(ctx: &egui::Context, spec: CallSpec, devices: &Devices, start: Instant, print_events: bool) -> Result<Self, String> {
        let mut config =
            DriverConfig { camera_id: devices.camera_id.clone(), microphone_id: devices.microphone_id.clone(), ..DriverConfig::default() };
        if let Some((w, h, fps)) = devices.synthetic_size {
            config.synthetic_camera_size = (w, h);
            config.synthetic_camera_fps = fps;
        }
        let (driver, outputs) = DriverHandle::start(config).map_err(|e| e.to_string())?;
        let (control, command_rx) = Control::new(Switches::new(Arc::new(driver)));
        let (event_tx, events) = sync_channel::<CallEvent>(256);
        let local: LatestFrame = Arc::default();
        let share_frame: LatestFrame = Arc::default();
        let feeds: Feeds = Arc::default();
        let ended: Arc<Mutex<Option<Ended>>> = Arc::default();
        let mic_level = Arc::new(AtomicU32::new((-120.0f32).to_bits()));
        let speaker_stop = Arc::new(AtomicBool::new(false));
        let speaker_error: Arc<Mutex<Option<String>>> = Arc::default();
        let (audio_tx, audio_rx) = sync_channel::<(String, AudioFrame)>(64);
        start_speaker(devices.speaker_id.clone(), audio_rx, Arc::clone(&speaker_stop), Arc::clone(&speaker_error), ctx.clone())?;

        let hooks = {
            let (c1, c2, c3, c4) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
            let (local, feeds_v, level, shared) = (local.clone(), feeds.clone(), mic_level.clone(), share_frame.clone());
            Hooks {
                event: Some(Box::new(move |ev: &CallEvent| {
                    if print_events {
                        crate::engine::json::print(ev, start);
                    }
                    // A full queue means the UI is hidden and not draining; states are
                    // re-read from the driver, so dropping an event loses no truth.
                    let _ = event_tx.try_send(ev.clone());
                    c1.request_repaint();
                })),
                local_video: Some(Arc::new(move |frame| {
                    store(&local, image(frame));
                    c2.request_repaint_after(FRAME_REPAINT);
                })),
                local_audio: Some(Arc::new(move |frame: &AudioFrame| {
                    let dbfs = blende_media::synthetic::rms_dbfs(&frame.samples().to_f32()) as f32;
                    level.store(dbfs.to_bits(), Ordering::Relaxed);
                })),
                share_preview: Some(Arc::new(move |frame| {
                    store(&shared, bgra_image(frame));
                    c4.request_repaint_after(FRAME_REPAINT);
                })),
                remote_video: Some(Arc::new(move |feed: &str, frame| {
                    // Per picture: look up without allocating; only a new feed gets an entry.
                    let slot = feeds_v.lock().ok().map(|mut f| match f.get(feed) {
                        Some(known) => known.picture.clone(),
                        None => f.entry(feed.to_owned()).or_default().picture.clone(),
                    });
                    if let Some(slot) = slot {
                        store(&slot, image(frame));
                        c3.request_repaint_after(FRAME_REPAINT);
                    }
                })),
                remote_audio: Some(Arc::new(move |feed: &str, frame: &AudioFrame| {
                    // The speaker thread is behind: this block is dropped, not queued.
                    let _ = audio_tx.try_send((feed.to_owned(), frame.clone()));
                })),
            }
        };
        let switches = control.switches.clone();
        let (ctx_end, ended_slot) = (ctx.clone(), Arc::clone(&ended));
        std::thread::Builder::new()
            .name("blende-call".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("blende-call-rt")
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(crate::engine::run(spec, switches, outputs, command_rx, hooks)));
                let end = match result {
                    Ok(code) => Ended { ok: code == std::process::ExitCode::SUCCESS, message: None },
                    Err(e) => Ended { ok: false, message: Some(format!("{e:#}")) },
                };
                if print_events {
                    println!("{}", ended_line(&end, start));
                }
                if let Ok(mut slot) = ended_slot.lock() {
                    *slot = Some(end);
                }
                ctx_end.request_repaint();
            })
            .map_err(|e| e.to_string())?;
        Ok(LiveCall { control, events, ended, local, feeds, share_frame, mic_level, speaker_stop, speaker_error })
    }

    /// A kill switch: off closes the gate before this returns.
    ///
    /// # Errors
    /// The engine or the device driver is gone (an off has taken effect all the same).
    pub fn set_enabled(&self, kind: DeviceKind, on: bool) -> Result<(), String> {
        self.control.send(CallCommand::Switch { kind, on })
    }

    /// "Everything off": camera, microphone and share, gates closed before this returns.
    ///
    /// # Errors
    /// As [`Self::set_enabled`].
    pub fn all_off(&self) -> Result<(), String> {
        self.control.send(CallCommand::AllOff)
    }

    /// Sends a command to the engine without waiting.
    ///
    /// # Errors
    /// The engine is gone or its queue is full.
    pub fn command(&self, cmd: CallCommand) -> Result<(), String> {
        self.control.send(cmd)
    }

    pub fn driver(&self) -> Arc<DriverHandle> {
        Arc::clone(&self.control.switches.driver)
    }

    pub fn mic_level_dbfs(&self) -> f32 {
        f32::from_bits(self.mic_level.load(Ordering::Relaxed))
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        // Privacy first: every device and the share off in this thread, then leave in the
        // background.
        let _ = self.control.switches.all_off();
        let _ = self.control.send(CallCommand::Leave);
        self.speaker_stop.store(true, Ordering::Relaxed);
    }
}

/// The JOIN.md line for the end of the engine thread (window mode prints it).
fn ended_line(end: &Ended, start: Instant) -> String {
    let t_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    crate::engine::json::ended_line(end.ok, end.message.as_deref(), t_ms)
}

/// The speaker thread: opens the output on its own (the UI never waits for it; a failure lands
/// in `error`), then mixes the feeds' 20 ms blocks in 10 ms steps into one output stream.
fn start_speaker(
    speaker_id: Option<String>,
    audio: Receiver<(String, AudioFrame)>,
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    ctx: egui::Context,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("blende-speaker".into())
        .spawn(move || {
            let opened = AudioHost::new().and_then(|host| SpeakerStream::open(host, speaker_id.as_deref()));
            let mut speaker = match opened {
                Ok(s) => s,
                Err(e) => {
                    if let Ok(mut slot) = error.lock() {
                        *slot = Some(e.to_string());
                    }
                    ctx.request_repaint();
                    return;
                }
            };
            let mut buffers: BTreeMap<String, VecDeque<f32>> = BTreeMap::new();
            let mut mix = vec![0.0f32; MIX_SAMPLES];
            while !stop.load(Ordering::Relaxed) {
                match audio.recv_timeout(Duration::from_millis(10)) {
                    Ok((feed, frame)) => {
                        let buf = buffers.entry(feed).or_default();
                        let channels = usize::from(frame.channels().max(1));
                        buf.extend(frame.samples().to_f32().iter().step_by(channels));
                        while buf.len() > FEED_BUFFER_SAMPLES {
                            buf.pop_front();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                while speaker.free_samples() >= MIX_SAMPLES && buffers.values().any(|b| b.len() >= MIX_SAMPLES) {
                    mix.fill(0.0);
                    for buf in buffers.values_mut() {
                        for (m, s) in mix.iter_mut().zip(buf.drain(..MIX_SAMPLES.min(buf.len()))) {
                            *m += s;
                        }
                    }
                    for m in &mut mix {
                        *m = m.clamp(-1.0, 1.0);
                    }
                    speaker.write(&mix);
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Whether an output device looks like loudspeakers (echo risk) rather than a headset.
#[must_use]
pub fn looks_like_loudspeakers(name: &str) -> bool {
    let n = name.to_lowercase();
    !["headset", "headphone", "kopfhörer", "earphone", "earbud", "airpods", "bluetooth", "bluez", "usb audio", "hands-free", "handsfree"]
        .iter()
        .any(|k| n.contains(k))
}

#[cfg(test)]
mod tests {
    use super::looks_like_loudspeakers;

    #[test]
    fn headset_hint_tells_speakers_from_headsets() {
        assert!(looks_like_loudspeakers("Built-in Audio Analog Stereo"));
        assert!(looks_like_loudspeakers("Null Output"));
        assert!(!looks_like_loudspeakers("Jabra Evolve2 Headset"));
        assert!(!looks_like_loudspeakers("bluez_output.AC_12 Kopfhörer"));
    }
}
