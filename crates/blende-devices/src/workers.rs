//! Device threads: one named thread per open device, owning it from open to
//! release. Each reports Opened / OpenFailed / Lost and finally Closed (once the
//! device is dropped) to the driver, and hands captured media, already checked
//! against the kill-switch gate, to a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blende_media::audio_codec::OPUS_FRAME_SAMPLES;
use blende_media::synthetic::{TestPatternCamera, ToneMicrophone};
use blende_media::{AudioFrame, DeviceKind, Gate, VideoFrame};

use crate::audio::{AudioHost, CAPTURE_SAMPLE_RATE_HZ, MicrophoneStream, faster_than_real_time};
use crate::camera::NativeCamera;
use crate::clock;
use crate::error::DeviceError;
use crate::inbox::{DriverMsg, WorkerEvent};

/// How often the microphone thread drains the capture ring.
const MIC_POLL: Duration = Duration::from_millis(5);
/// A microphone that delivers nothing for this long counts as lost.
const MIC_STALL: Duration = Duration::from_millis(1500);
/// Consecutive camera read errors after which the camera counts as lost.
const CAMERA_ERRORS_LOST: u32 = 3;

/// The device a thread drives.
#[derive(Debug, Clone)]
pub(crate) enum DeviceSpec {
    SyntheticCamera { width: u32, height: u32, frame_rate_fps: u32, lose_after_frames: Option<u64> },
    NativeCamera { id: String },
    ToneMicrophone { frequency_hz: f64, level_dbfs: f64 },
    CpalMicrophone { id: Option<String> },
}

/// Where captured media goes.
#[derive(Debug, Clone)]
pub(crate) enum MediaSink {
    Video(SyncSender<VideoFrame>),
    Audio(SyncSender<AudioFrame>),
}

/// Handle on a device thread.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) kind: DeviceKind,
    pub(crate) generation: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Worker {
    /// Asks the thread to release its device; returns at once.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
    }

    /// Waits for the thread (it has sent Closed, so this is immediate).
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }
}

struct Ctx {
    kind: DeviceKind,
    generation: u64,
    stop: Arc<AtomicBool>,
    gate: Gate,
    events: SyncSender<DriverMsg>,
    sink: MediaSink,
}

impl Ctx {
    fn report(&self, event: WorkerEvent) {
        // If the driver is gone, nobody is left to tell.
        let _ = self.events.send(DriverMsg::Device { kind: self.kind, generation: self.generation, event });
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Passes media on if the gate admits its capture time; drops it when the
    /// consumer is slow (bounded channel: never block a capture thread).
    fn deliver_video(&self, frame: VideoFrame) {
        let MediaSink::Video(tx) = &self.sink else {
            return;
        };
        if self.gate.admits(frame.capture_time_us()) {
            let _ = tx.try_send(frame);
        }
    }

    /// Audio blocks pass only if every sample in them was captured before the kill.
    fn deliver_audio(&self, frame: AudioFrame) {
        let MediaSink::Audio(tx) = &self.sink else {
            return;
        };
        if self.gate.admits_span(frame.capture_time_us(), frame.duration_us()) {
            let _ = tx.try_send(frame);
        }
    }

    /// Sleeps until `deadline_us` on the media clock or until stopped.
    fn sleep_until(&self, deadline_us: u64) {
        while !self.stopped() {
            let now = clock::now_us();
            if now >= deadline_us {
                return;
            }
            std::thread::park_timeout(Duration::from_micros(deadline_us - now));
        }
    }
}

/// Starts a named thread that opens `spec` and runs it until stopped.
pub(crate) fn spawn(
    kind: DeviceKind,
    generation: u64,
    spec: DeviceSpec,
    gate: Gate,
    events: SyncSender<DriverMsg>,
    sink: MediaSink,
) -> Result<Worker, DeviceError> {
    let name: &'static str = match &spec {
        DeviceSpec::SyntheticCamera { .. } => "blende-camera-synthetic",
        DeviceSpec::NativeCamera { .. } => "blende-camera",
        DeviceSpec::ToneMicrophone { .. } => "blende-mic-synthetic",
        DeviceSpec::CpalMicrophone { .. } => "blende-mic",
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx { kind, generation, stop: Arc::clone(&stop), gate, events, sink };
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match spec {
                DeviceSpec::SyntheticCamera { width, height, frame_rate_fps, lose_after_frames } => {
                    run_synthetic_camera(&ctx, width, height, frame_rate_fps, lose_after_frames);
                }
                DeviceSpec::NativeCamera { id } => run_native_camera(&ctx, &id),
                DeviceSpec::ToneMicrophone { frequency_hz, level_dbfs } => {
                    run_tone_microphone(&ctx, frequency_hz, level_dbfs);
                }
                DeviceSpec::CpalMicrophone { id } => run_cpal_microphone(&ctx, id.as_deref()),
            }
            ctx.report(WorkerEvent::Closed);
        })
        .map_err(|source| DeviceError::Thread { name, source })?;
    Ok(Worker { kind, generation, stop, thread })
}

fn run_synthetic_camera(ctx: &Ctx, width: u32, height: u32, fps: u32, lose_after_frames: Option<u64>) {
    let mut cam = TestPatternCamera::new(width, height, fps);
    ctx.report(WorkerEvent::Opened { name: "Test pattern".to_owned() });
    let interval_us = cam.frame_interval_us();
    let mut next_us = clock::now_us();
    let mut frames = 0u64;
    while !ctx.stopped() {
        if lose_after_frames.is_some_and(|n| frames >= n) {
            ctx.report(WorkerEvent::Lost("test pattern unplugged".to_owned()));
            return;
        }
        ctx.deliver_video(cam.next_frame(clock::now_us()));
        frames += 1;
        next_us += interval_us;
        ctx.sleep_until(next_us);
    }
}

fn run_native_camera(ctx: &Ctx, id: &str) {
    let mut camera = match NativeCamera::open(id) {
        Ok(c) => c,
        Err(e) => {
            ctx.report(WorkerEvent::OpenFailed(e.to_string()));
            return;
        }
    };
    ctx.report(WorkerEvent::Opened { name: id.to_owned() });
    let mut errors = 0;
    while !ctx.stopped() {
        match camera.frame(clock::now_us) {
            Ok(frame) => {
                errors = 0;
                ctx.deliver_video(frame);
            }
            Err(e) => {
                errors += 1;
                if errors >= CAMERA_ERRORS_LOST {
                    ctx.report(WorkerEvent::Lost(e.to_string()));
                    break;
                }
            }
        }
    }
    // Released on this thread, which owns it.
    drop(camera);
}

fn run_tone_microphone(ctx: &Ctx, frequency_hz: f64, level_dbfs: f64) {
    // In syllables, as a voice: the encoder then treats it as speech (in-band FEC, no DTX).
    let mut mic = ToneMicrophone::new(frequency_hz, level_dbfs, CAPTURE_SAMPLE_RATE_HZ, 1).with_syllables(4.0);
    ctx.report(WorkerEvent::Opened { name: "Test tone".to_owned() });
    let block_us = OPUS_FRAME_SAMPLES as u64 * 1_000_000 / u64::from(CAPTURE_SAMPLE_RATE_HZ);
    let mut next_us = clock::now_us();
    while !ctx.stopped() {
        ctx.deliver_audio(mic.next_frame(OPUS_FRAME_SAMPLES, next_us));
        next_us += block_us;
        ctx.sleep_until(next_us);
    }
}

fn run_cpal_microphone(ctx: &Ctx, id: Option<&str>) {
    // A host (and so a sound-server connection) per open: dropping the stream and
    // the connection together leaves nothing of ours on the server.
    let opened = AudioHost::new().and_then(|host| MicrophoneStream::open(host, id));
    let mut mic = match opened {
        Ok(m) => m,
        Err(e) => {
            ctx.report(WorkerEvent::OpenFailed(e.to_string()));
            return;
        }
    };
    ctx.report(WorkerEvent::Opened { name: mic.name().to_owned() });
    let opened_at = Instant::now();
    let mut last_data = Instant::now();
    while !ctx.stopped() {
        while let Some(frame) = mic.read_frame() {
            last_data = Instant::now();
            ctx.deliver_audio(frame);
        }
        if mic.is_lost() {
            ctx.report(WorkerEvent::Lost("audio stream ended".to_owned()));
            break;
        }
        // A source that vanishes from the sound server (unplugged USB headset,
        // unloaded module) kills our stream without an error callback: silence of
        // the stream itself (not of the audio) means the device is gone.
        if last_data.elapsed() > MIC_STALL {
            ctx.report(WorkerEvent::Lost("microphone stopped delivering audio".to_owned()));
            break;
        }
        // No sound card: ALSA's `default` is then a device without a clock that delivers
        // silence as fast as cpal asks, and cpal's thread would spin on it for good. Reported
        // as a failed open, not a loss: opening it again would only spin again.
        if faster_than_real_time(mic.delivered_samples(), opened_at.elapsed()) {
            ctx.report(WorkerEvent::OpenFailed("no sound card: the microphone device delivers no real audio".to_owned()));
            break;
        }
        std::thread::park_timeout(MIC_POLL);
    }
    mic.close();
}
