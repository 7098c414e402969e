//! Kill switches for camera, microphone and screen share (sans-IO).
//!
//! Promise: a device switched off is really off. Nothing captured after the
//! switch leaves the machine, and the device is released.
//!
//! How it is driven (str0m style): the driver feeds [`Input`]s with the current
//! time in µs to [`KillSwitch::handle_input`], then drains
//! [`KillSwitch::poll_output`] (what to do to the real devices) and
//! [`KillSwitch::poll_event`] (state transitions for the UI and tests). The
//! machine never reads a clock and never blocks.
//!
//! The state is the *real* device state: `On` only after the device reported it
//! opened, `Off` only after it reported it closed. The user's wish is tracked
//! separately ([`KillSwitch::wants_on`]).
//!
//! Each device kind has a [`Gate`] shared with the capture path. Switching off
//! closes the gate synchronously inside `handle_input`, before any output is
//! produced: every frame or sample whose capture time is at or after the kill
//! instant is refused by [`Gate::admits`], whatever the device threads still
//! deliver while the device is being released.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The devices a kill switch guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    Camera,
    Microphone,
    ScreenShare,
}

impl DeviceKind {
    pub const ALL: [Self; 3] = [Self::Camera, Self::Microphone, Self::ScreenShare];

    fn index(self) -> usize {
        match self {
            Self::Camera => 0,
            Self::Microphone => 1,
            Self::ScreenShare => 2,
        }
    }
}

/// The real state of a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceState {
    /// Released: nothing is captured.
    Off,
    /// Asked to open; not yet confirmed.
    Opening,
    /// Open and capturing.
    On,
    /// Asked to release; the device may still be open.
    Closing,
    /// Opening failed or the device was lost; released, not retried until the user asks.
    Failed(String),
}

/// What the driver tells the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The user flipped a switch.
    Command { kind: DeviceKind, on: bool },
    /// The panic button: everything off at once.
    PanicAllOff,
    /// The device reported it is open and capturing.
    Opened(DeviceKind),
    /// Opening the device failed.
    OpenFailed { kind: DeviceKind, reason: String },
    /// The device reported it is closed (released).
    Closed(DeviceKind),
    /// The device vanished or its stream died.
    Lost { kind: DeviceKind, reason: String },
}

/// What the machine tells the driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// Open the selected device of this kind and start capturing.
    Open(DeviceKind),
    /// Stop capturing and release the device; answer with [`Input::Closed`].
    Release(DeviceKind),
}

/// A state transition, for the UI and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at_us: u64,
    pub kind: DeviceKind,
    pub from: DeviceState,
    pub to: DeviceState,
}

/// Tunables of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSwitchConfig {
    /// How often a lost device is reopened automatically per user "on" (0 = never).
    pub auto_reopen_attempts: u32,
}

impl Default for KillSwitchConfig {
    fn default() -> Self {
        Self { auto_reopen_attempts: 1 }
    }
}

#[derive(Debug)]
struct GateInner {
    /// Frames captured before this instant belong to an earlier session.
    open_since_us: AtomicU64,
    /// Frames captured at or after this instant are refused; `u64::MAX` while open.
    closed_since_us: AtomicU64,
}

/// Shared admission check between the kill switch and the capture path.
///
/// Cheap to clone, lock-free and allocation-free: safe to call per frame or per
/// audio block (but keep it out of the audio callback itself, which only copies).
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateInner>);

impl Default for Gate {
    fn default() -> Self {
        Self::new_closed()
    }
}

impl Gate {
    /// A gate closed since time 0: admits nothing.
    #[must_use]
    pub fn new_closed() -> Self {
        Self(Arc::new(GateInner { open_since_us: AtomicU64::new(0), closed_since_us: AtomicU64::new(0) }))
    }

    /// A gate open for media captured at or after `at_us`, until it is closed: the switch of
    /// something that is not a device the kill switch owns (a window share).
    #[must_use]
    pub fn new_open(at_us: u64) -> Self {
        let gate = Self::new_closed();
        gate.open(at_us);
        gate
    }

    /// Would media captured at `capture_time_us` be allowed through?
    #[must_use]
    pub fn admits(&self, capture_time_us: u64) -> bool {
        // Read `closed` first: `open` stores its start before clearing `closed`, so a
        // reader that sees the new `closed` also sees the new start.
        let closed = self.0.closed_since_us.load(Ordering::SeqCst);
        let open = self.0.open_since_us.load(Ordering::SeqCst);
        capture_time_us >= open && capture_time_us < closed
    }

    /// Would a block of media captured over `[start_us, start_us + duration_us)` be
    /// allowed through? Only if every sample in it is: a block straddling the kill
    /// instant is refused.
    #[must_use]
    pub fn admits_span(&self, start_us: u64, duration_us: u64) -> bool {
        self.admits(start_us) && self.admits(start_us.saturating_add(duration_us.saturating_sub(1)))
    }

    /// Is the gate closed for anything captured now or later?
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.0.closed_since_us.load(Ordering::SeqCst) != u64::MAX
    }

    /// Instant since which the gate refuses media, if closed.
    #[must_use]
    pub fn closed_since_us(&self) -> Option<u64> {
        match self.0.closed_since_us.load(Ordering::SeqCst) {
            u64::MAX => None,
            t => Some(t),
        }
    }

    /// Closes the gate for everything captured at or after `at_us`. Idempotent: an
    /// already closed gate keeps its earlier instant. One atomic operation, so a
    /// UI thread may call it directly as a fast path before the driver runs.
    pub fn close(&self, at_us: u64) {
        self.0.closed_since_us.fetch_min(at_us, Ordering::SeqCst);
    }

    fn open(&self, at_us: u64) {
        self.0.open_since_us.store(at_us, Ordering::SeqCst);
        self.0.closed_since_us.store(u64::MAX, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Switch {
    state: DeviceState,
    wants_on: bool,
    reopen_attempts_left: u32,
    gate: Gate,
}

/// The three kill switches and the panic button.
#[derive(Debug)]
pub struct KillSwitch {
    config: KillSwitchConfig,
    switches: [Switch; 3],
    outputs: VecDeque<Output>,
    events: VecDeque<Event>,
}

impl Default for KillSwitch {
    fn default() -> Self {
        Self::new(KillSwitchConfig::default())
    }
}

impl KillSwitch {
    /// Everything off, every gate closed.
    #[must_use]
    pub fn new(config: KillSwitchConfig) -> Self {
        let switch = || Switch { state: DeviceState::Off, wants_on: false, reopen_attempts_left: 0, gate: Gate::new_closed() };
        Self { config, switches: [switch(), switch(), switch()], outputs: VecDeque::new(), events: VecDeque::new() }
    }

    // --- getters

    /// The gate for the capture path of `kind`.
    #[must_use]
    pub fn gate(&self, kind: DeviceKind) -> Gate {
        self.switches[kind.index()].gate.clone()
    }

    /// The real device state.
    #[must_use]
    pub fn state(&self, kind: DeviceKind) -> &DeviceState {
        &self.switches[kind.index()].state
    }

    /// What the user last asked for.
    #[must_use]
    pub fn wants_on(&self, kind: DeviceKind) -> bool {
        self.switches[kind.index()].wants_on
    }

    // --- handle_*

    /// Feeds one input observed at `now_us` (media clock).
    pub fn handle_input(&mut self, now_us: u64, input: Input) {
        match input {
            Input::Command { kind, on } => self.command(now_us, kind, on),
            Input::PanicAllOff => {
                for kind in DeviceKind::ALL {
                    self.command(now_us, kind, false);
                }
            }
            Input::Opened(kind) => self.opened(now_us, kind),
            Input::OpenFailed { kind, reason } => self.failed(now_us, kind, reason, false),
            Input::Closed(kind) => self.closed(now_us, kind),
            Input::Lost { kind, reason } => self.failed(now_us, kind, reason, true),
        }
    }

    // --- poll_*

    /// Next action for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Next state transition.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // --- internals

    fn set_state(&mut self, now_us: u64, kind: DeviceKind, to: DeviceState) {
        let sw = &mut self.switches[kind.index()];
        if sw.state != to {
            let from = std::mem::replace(&mut sw.state, to.clone());
            self.events.push_back(Event { at_us: now_us, kind, from, to });
        }
    }

    fn command(&mut self, now_us: u64, kind: DeviceKind, on: bool) {
        let i = kind.index();
        if !on {
            // The privacy promise: close first, synchronously, then ask for release.
            self.switches[i].gate.close(now_us);
            self.switches[i].wants_on = false;
            match self.switches[i].state {
                DeviceState::Opening | DeviceState::On => {
                    self.outputs.push_back(Output::Release(kind));
                    self.set_state(now_us, kind, DeviceState::Closing);
                }
                DeviceState::Failed(_) => self.set_state(now_us, kind, DeviceState::Off),
                DeviceState::Off | DeviceState::Closing => {}
            }
            return;
        }
        let sw = &mut self.switches[i];
        if sw.wants_on && !matches!(sw.state, DeviceState::Failed(_)) {
            return; // already on or on its way
        }
        sw.wants_on = true;
        sw.reopen_attempts_left = self.config.auto_reopen_attempts;
        match sw.state {
            DeviceState::Off | DeviceState::Failed(_) => self.start_open(now_us, kind),
            // Reopened once the release is confirmed.
            DeviceState::Closing => {}
            DeviceState::Opening | DeviceState::On => {}
        }
    }

    fn start_open(&mut self, now_us: u64, kind: DeviceKind) {
        self.switches[kind.index()].gate.open(now_us);
        self.outputs.push_back(Output::Open(kind));
        self.set_state(now_us, kind, DeviceState::Opening);
    }

    fn opened(&mut self, now_us: u64, kind: DeviceKind) {
        let sw = &self.switches[kind.index()];
        match sw.state {
            DeviceState::Opening if sw.wants_on => self.set_state(now_us, kind, DeviceState::On),
            // A device that opened although nobody wants it (late answer after an
            // "off", or a driver bug): release it at once.
            DeviceState::Off | DeviceState::Failed(_) => {
                sw.gate.close(now_us);
                self.outputs.push_back(Output::Release(kind));
                self.set_state(now_us, kind, DeviceState::Closing);
            }
            _ => {}
        }
    }

    fn closed(&mut self, now_us: u64, kind: DeviceKind) {
        let sw = &self.switches[kind.index()];
        match sw.state {
            DeviceState::Closing => {
                if sw.wants_on {
                    self.start_open(now_us, kind);
                } else {
                    self.set_state(now_us, kind, DeviceState::Off);
                }
            }
            DeviceState::On => {
                self.failed(now_us, kind, "device closed unexpectedly".to_owned(), true);
            }
            // Late confirmation of an earlier release (e.g. of a lost device being
            // reopened): a device being opened reports failure with OpenFailed.
            DeviceState::Opening | DeviceState::Off | DeviceState::Failed(_) => {}
        }
    }

    fn failed(&mut self, now_us: u64, kind: DeviceKind, reason: String, lost: bool) {
        let i = kind.index();
        match self.switches[i].state {
            DeviceState::Closing => {
                // Whatever went wrong, the device is gone now: that is what was asked.
                if !lost || !self.switches[i].wants_on {
                    self.set_state(now_us, kind, DeviceState::Off);
                } else {
                    self.start_open(now_us, kind);
                }
            }
            DeviceState::On | DeviceState::Opening => {
                // Make sure whatever is left of the device is released.
                self.outputs.push_back(Output::Release(kind));
                let sw = &mut self.switches[i];
                if lost && sw.wants_on && sw.reopen_attempts_left > 0 {
                    sw.reopen_attempts_left -= 1;
                    self.set_state(now_us, kind, DeviceState::Failed(reason));
                    self.start_open(now_us, kind);
                } else {
                    self.switches[i].gate.close(now_us);
                    self.set_state(now_us, kind, DeviceState::Failed(reason));
                }
            }
            DeviceState::Off | DeviceState::Failed(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(ks: &mut KillSwitch) -> Vec<Output> {
        std::iter::from_fn(|| ks.poll_output()).collect()
    }

    #[test]
    fn on_off_cycle_reports_real_states_and_gates() {
        let mut ks = KillSwitch::default();
        let cam = DeviceKind::Camera;
        let gate = ks.gate(cam);
        assert!(!gate.admits(0));
        ks.handle_input(100, Input::Command { kind: cam, on: true });
        assert_eq!(drain(&mut ks), vec![Output::Open(cam)]);
        assert_eq!(ks.state(cam), &DeviceState::Opening);
        assert!(gate.admits(150));
        assert!(!gate.admits(99), "frames from before the session are refused");
        ks.handle_input(200, Input::Opened(cam));
        assert_eq!(ks.state(cam), &DeviceState::On);
        ks.handle_input(300, Input::Command { kind: cam, on: false });
        // Gate closed synchronously, before the driver ran.
        assert!(gate.admits(299));
        assert!(!gate.admits(300));
        assert_eq!(drain(&mut ks), vec![Output::Release(cam)]);
        assert_eq!(ks.state(cam), &DeviceState::Closing);
        ks.handle_input(350, Input::Closed(cam));
        assert_eq!(ks.state(cam), &DeviceState::Off);
        let events: Vec<_> = std::iter::from_fn(|| ks.poll_event()).map(|e| (e.at_us, e.to)).collect();
        assert_eq!(events, vec![(100, DeviceState::Opening), (200, DeviceState::On), (300, DeviceState::Closing), (350, DeviceState::Off)]);
    }

    #[test]
    fn failed_open_is_reported_not_retried() {
        let mut ks = KillSwitch::default();
        let mic = DeviceKind::Microphone;
        ks.handle_input(0, Input::Command { kind: mic, on: true });
        drain(&mut ks);
        ks.handle_input(10, Input::OpenFailed { kind: mic, reason: "busy".into() });
        assert_eq!(ks.state(mic), &DeviceState::Failed("busy".into()));
        assert_eq!(drain(&mut ks), vec![Output::Release(mic)]);
        assert!(!ks.gate(mic).admits(11));
        // Lost after a successful open: one automatic reopen, then reported.
        ks.handle_input(20, Input::Command { kind: mic, on: true });
        ks.handle_input(30, Input::Opened(mic));
        drain(&mut ks);
        ks.handle_input(40, Input::Lost { kind: mic, reason: "unplugged".into() });
        assert_eq!(drain(&mut ks), vec![Output::Release(mic), Output::Open(mic)]);
        ks.handle_input(50, Input::OpenFailed { kind: mic, reason: "gone".into() });
        assert_eq!(ks.state(mic), &DeviceState::Failed("gone".into()));
        assert_eq!(drain(&mut ks), vec![Output::Release(mic)]);
    }

    #[test]
    fn panic_turns_everything_off_and_late_open_is_released() {
        let mut ks = KillSwitch::default();
        for kind in DeviceKind::ALL {
            ks.handle_input(0, Input::Command { kind, on: true });
        }
        ks.handle_input(5, Input::Opened(DeviceKind::Camera));
        drain(&mut ks);
        ks.handle_input(10, Input::PanicAllOff);
        for kind in DeviceKind::ALL {
            assert!(!ks.gate(kind).admits(10));
            assert_eq!(ks.state(kind), &DeviceState::Closing);
        }
        assert_eq!(drain(&mut ks).len(), 3);
        // The microphone opens late although it was switched off meanwhile.
        ks.handle_input(12, Input::Opened(DeviceKind::Microphone));
        assert_eq!(ks.state(DeviceKind::Microphone), &DeviceState::Closing);
        ks.handle_input(13, Input::Closed(DeviceKind::Microphone));
        assert_eq!(ks.state(DeviceKind::Microphone), &DeviceState::Off);
    }

    #[test]
    fn on_while_closing_reopens_after_release() {
        let mut ks = KillSwitch::default();
        let cam = DeviceKind::Camera;
        ks.handle_input(0, Input::Command { kind: cam, on: true });
        ks.handle_input(1, Input::Opened(cam));
        ks.handle_input(2, Input::Command { kind: cam, on: false });
        ks.handle_input(3, Input::Command { kind: cam, on: true });
        assert!(!ks.gate(cam).admits(3), "gate stays closed until the old device is gone");
        assert_eq!(drain(&mut ks), vec![Output::Open(cam), Output::Release(cam)]);
        ks.handle_input(4, Input::Closed(cam));
        assert_eq!(drain(&mut ks), vec![Output::Open(cam)]);
        assert!(ks.gate(cam).admits(4));
        assert!(!ks.gate(cam).admits(2), "frames of the old session stay refused");
    }
}
