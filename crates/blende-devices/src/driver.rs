//! The kill-switch driver: the one thread that owns the [`KillSwitch`] state
//! machine and carries out its outputs on the device threads.
//!
//! Switching off closes the gate in the caller's thread, synchronously, before
//! the command is even queued ([`DriverHandle::set_enabled`]); the driver then
//! tells the device thread to drop the device, and reports `Off` only once the
//! device thread says the device is gone.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use blende_media::kill_switch::{Event, Input, KillSwitchConfig, Output};
use blende_media::{AudioFrame, DeviceKind, DeviceState, Gate, KillSwitch, VideoFrame};

use crate::clock;
use crate::error::DeviceError;
use crate::inbox::{DriverMsg, WorkerEvent};
use crate::info::{SYNTHETIC_CAMERA_ID, SYNTHETIC_MICROPHONE_ID};
use crate::workers::{self, DeviceSpec, MediaSink, Worker};

const COMMAND_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 256;
/// Slack for a slow consumer: ~270 ms of 30 fps video, 1 s of 20 ms audio blocks.
const VIDEO_QUEUE: usize = 8;
const AUDIO_QUEUE: usize = 50;

/// Which devices to open and how.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// Camera id from [`crate::enumerate`] (`camera:<n>` or the test pattern).
    pub camera_id: String,
    /// Microphone id (`audio-in:<id>`, `"default"`, or the test tone).
    pub microphone_id: String,
    /// Size and rate of the test-pattern camera.
    pub synthetic_camera_size: (u32, u32),
    pub synthetic_camera_fps: u32,
    /// Test hook: the test-pattern camera "disappears" after this many frames.
    pub synthetic_camera_lose_after_frames: Option<u64>,
    pub kill_switch: KillSwitchConfig,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            camera_id: SYNTHETIC_CAMERA_ID.to_owned(),
            microphone_id: SYNTHETIC_MICROPHONE_ID.to_owned(),
            synthetic_camera_size: (1280, 720),
            synthetic_camera_fps: 30,
            synthetic_camera_lose_after_frames: None,
            kill_switch: KillSwitchConfig::default(),
        }
    }
}

/// What the driver reports to the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverEvent {
    /// A real state transition of a device.
    State(Event),
    /// Human name of the device that just opened.
    DeviceOpened { kind: DeviceKind, name: String },
}

/// Media and events coming out of the driver. All channels are bounded; media is
/// dropped (not queued without end) when the consumer falls behind.
#[derive(Debug)]
pub struct DriverOutputs {
    pub video: Receiver<VideoFrame>,
    pub audio: Receiver<AudioFrame>,
    pub events: Receiver<DriverEvent>,
}

/// Cloneable-by-reference control of the driver; the UI holds this.
#[derive(Debug)]
pub struct DriverHandle {
    tx: SyncSender<DriverMsg>,
    gates: [Gate; 3],
    states: Arc<Mutex<[DeviceState; 3]>>,
    thread: Option<JoinHandle<()>>,
}

fn index(kind: DeviceKind) -> usize {
    match kind {
        DeviceKind::Camera => 0,
        DeviceKind::Microphone => 1,
        DeviceKind::ScreenShare => 2,
    }
}

impl DriverHandle {
    /// Starts the driver thread with everything off.
    ///
    /// # Errors
    /// [`DeviceError::Thread`] when the thread cannot be started.
    pub fn start(config: DriverConfig) -> Result<(Self, DriverOutputs), DeviceError> {
        let (tx, rx) = sync_channel(COMMAND_QUEUE);
        let (video_tx, video) = sync_channel(VIDEO_QUEUE);
        let (audio_tx, audio) = sync_channel(AUDIO_QUEUE);
        let (events_tx, events) = sync_channel(EVENT_QUEUE);
        let ks = KillSwitch::new(config.kill_switch);
        let gates = DeviceKind::ALL.map(|k| ks.gate(k));
        let states = Arc::new(Mutex::new([DeviceState::Off, DeviceState::Off, DeviceState::Off]));
        let driver = Driver {
            ks,
            config,
            self_tx: tx.clone(),
            rx,
            video_tx,
            audio_tx,
            events_tx,
            states: Arc::clone(&states),
            workers: Vec::new(),
            generation: [0; 3],
            pending: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("blende-device-driver".to_owned())
            .spawn(move || driver.run())
            .map_err(|source| DeviceError::Thread { name: "blende-device-driver", source })?;
        Ok((Self { tx, gates, states, thread: Some(thread) }, DriverOutputs { video, audio, events }))
    }

    /// Flips a kill switch. Off closes the gate *here*, before returning, for all
    /// media captured from this instant on; the device is then released by the driver.
    ///
    /// # Errors
    /// [`DeviceError::DriverStopped`] when the driver thread is gone (the gate is
    /// closed all the same).
    pub fn set_enabled(&self, kind: DeviceKind, on: bool) -> Result<(), DeviceError> {
        let at_us = clock::now_us();
        if !on {
            self.gates[index(kind)].close(at_us);
        }
        self.send(DriverMsg::Command { at_us, input: Input::Command { kind, on } })
    }

    /// The panic button: every gate closed here and now, every device released.
    ///
    /// # Errors
    /// [`DeviceError::DriverStopped`] when the driver thread is gone.
    pub fn panic_all_off(&self) -> Result<(), DeviceError> {
        let at_us = clock::now_us();
        for gate in &self.gates {
            gate.close(at_us);
        }
        self.send(DriverMsg::Command { at_us, input: Input::PanicAllOff })
    }

    /// Chooses the device used the next time `kind` is switched on.
    ///
    /// # Errors
    /// [`DeviceError::DriverStopped`] when the driver thread is gone.
    pub fn select_device(&self, kind: DeviceKind, id: &str) -> Result<(), DeviceError> {
        self.send(DriverMsg::Select { kind, id: id.to_owned() })
    }

    /// The gate of `kind` (for the encoder side's own check).
    #[must_use]
    pub fn gate(&self, kind: DeviceKind) -> Gate {
        self.gates[index(kind)].clone()
    }

    /// The real device state as last reported by the driver.
    #[must_use]
    pub fn state(&self, kind: DeviceKind) -> DeviceState {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)[index(kind)].clone()
    }

    fn send(&self, msg: DriverMsg) -> Result<(), DeviceError> {
        // Blocking send on a bounded queue: commands are rare and a release must
        // never be lost, so waiting a moment beats dropping it.
        self.tx.send(msg).map_err(|_| DeviceError::DriverStopped)
    }

    /// Releases all devices and stops the driver thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for gate in &self.gates {
            gate.close(clock::now_us());
        }
        let _ = self.tx.send(DriverMsg::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Driver {
    ks: KillSwitch,
    config: DriverConfig,
    self_tx: SyncSender<DriverMsg>,
    rx: Receiver<DriverMsg>,
    video_tx: SyncSender<VideoFrame>,
    audio_tx: SyncSender<AudioFrame>,
    events_tx: SyncSender<DriverEvent>,
    states: Arc<Mutex<[DeviceState; 3]>>,
    /// Live device threads, including ones that are releasing.
    workers: Vec<Worker>,
    generation: [u64; 3],
    /// Inputs produced while carrying out outputs (e.g. "nothing to release").
    pending: VecDeque<(u64, Input)>,
}

impl Driver {
    fn run(mut self) {
        loop {
            let msg = match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                DriverMsg::Command { at_us, input } => self.input(at_us, input),
                DriverMsg::Select { kind, id } => match kind {
                    DeviceKind::Camera => self.config.camera_id = id,
                    DeviceKind::Microphone => self.config.microphone_id = id,
                    DeviceKind::ScreenShare => {}
                },
                DriverMsg::Device { kind, generation, event } => self.device_event(kind, generation, event),
                DriverMsg::Shutdown => break,
            }
        }
        // Release everything before the thread ends.
        self.ks.handle_input(clock::now_us(), Input::PanicAllOff);
        for worker in &self.workers {
            worker.stop();
        }
        // Keep draining our queue while waiting, so no device thread blocks on a
        // full queue while reporting Closed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !self.workers.is_empty() && std::time::Instant::now() < deadline {
            let Ok(DriverMsg::Device { kind, generation, event: WorkerEvent::Closed }) = self.rx.recv_timeout(Duration::from_millis(100))
            else {
                continue;
            };
            if let Some(pos) = self.workers.iter().position(|w| w.kind == kind && w.generation == generation) {
                self.workers.swap_remove(pos).join();
            }
        }
    }

    fn input(&mut self, at_us: u64, input: Input) {
        self.pending.push_back((at_us, input));
        while let Some((at_us, input)) = self.pending.pop_front() {
            self.ks.handle_input(at_us, input);
            while let Some(output) = self.ks.poll_output() {
                self.carry_out(output);
            }
        }
        let mut changed = false;
        while let Some(event) = self.ks.poll_event() {
            changed = true;
            // The UI drains each frame; if it stalls, newer states still reach
            // `DriverHandle::state`.
            let _ = self.events_tx.try_send(DriverEvent::State(event));
        }
        if changed {
            let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
            for kind in DeviceKind::ALL {
                states[index(kind)] = self.ks.state(kind).clone();
            }
        }
    }

    fn carry_out(&mut self, output: Output) {
        let now = clock::now_us();
        match output {
            Output::Open(kind) => {
                let i = index(kind);
                self.generation[i] += 1;
                let spec = match self.spec(kind) {
                    Ok(spec) => spec,
                    Err(e) => {
                        self.pending.push_back((now, Input::OpenFailed { kind, reason: e.to_string() }));
                        return;
                    }
                };
                let sink = match kind {
                    DeviceKind::Microphone => MediaSink::Audio(self.audio_tx.clone()),
                    _ => MediaSink::Video(self.video_tx.clone()),
                };
                match workers::spawn(kind, self.generation[i], spec, self.ks.gate(kind), self.self_tx.clone(), sink) {
                    Ok(worker) => self.workers.push(worker),
                    Err(e) => self.pending.push_back((now, Input::OpenFailed { kind, reason: e.to_string() })),
                }
            }
            Output::Release(kind) => {
                let mut any = false;
                for worker in self.workers.iter().filter(|w| w.kind == kind) {
                    worker.stop();
                    any = true;
                }
                if !any {
                    self.pending.push_back((now, Input::Closed(kind)));
                }
            }
            _ => {}
        }
    }

    fn spec(&self, kind: DeviceKind) -> Result<DeviceSpec, DeviceError> {
        match kind {
            DeviceKind::Camera if self.config.camera_id == SYNTHETIC_CAMERA_ID => {
                let (width, height) = self.config.synthetic_camera_size;
                Ok(DeviceSpec::SyntheticCamera {
                    width,
                    height,
                    frame_rate_fps: self.config.synthetic_camera_fps,
                    lose_after_frames: self.config.synthetic_camera_lose_after_frames,
                })
            }
            DeviceKind::Camera => Ok(DeviceSpec::NativeCamera { id: self.config.camera_id.clone() }),
            DeviceKind::Microphone if self.config.microphone_id == SYNTHETIC_MICROPHONE_ID => {
                Ok(DeviceSpec::ToneMicrophone { frequency_hz: 440.0, level_dbfs: -12.0 })
            }
            DeviceKind::Microphone => {
                let id = (self.config.microphone_id != "default").then(|| self.config.microphone_id.clone());
                Ok(DeviceSpec::CpalMicrophone { id })
            }
            // Window capture lives in blende-windows; its pipeline checks this gate.
            DeviceKind::ScreenShare => Err(DeviceError::Unsupported(kind)),
        }
    }

    fn device_event(&mut self, kind: DeviceKind, generation: u64, event: WorkerEvent) {
        let now = clock::now_us();
        let current = generation == self.generation[index(kind)];
        match event {
            WorkerEvent::Closed => {
                if let Some(pos) = self.workers.iter().position(|w| w.kind == kind && w.generation == generation) {
                    self.workers.swap_remove(pos).join();
                }
                // Off means off: report Closed only when no thread of this kind
                // holds a device any more.
                if !self.workers.iter().any(|w| w.kind == kind) {
                    self.input(now, Input::Closed(kind));
                }
            }
            // Events of a device generation already superseded say nothing about
            // the current one.
            _ if !current => {}
            WorkerEvent::Opened { name } => {
                let _ = self.events_tx.try_send(DriverEvent::DeviceOpened { kind, name });
                self.input(now, Input::Opened(kind));
            }
            WorkerEvent::OpenFailed(reason) => self.input(now, Input::OpenFailed { kind, reason }),
            WorkerEvent::Lost(reason) => self.input(now, Input::Lost { kind, reason }),
        }
    }
}
