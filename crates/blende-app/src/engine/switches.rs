//! The kill switches as the caller flips them: in the caller's own thread, before the engine
//! hears of it. Camera and microphone are the device driver's gates; the share has a gate of
//! its own, made fresh for every share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use blende_devices::{DriverHandle, clock};
use blende_media::DeviceKind;
use blende_media::kill_switch::Gate;

/// The share's switch. The driver opens a gate when a share's capture starts; closing it (a
/// switch, "everything off", leaving) stops every picture not yet encoded at that instant,
/// whichever thread closes it.
#[derive(Debug, Default)]
pub struct ShareGate {
    state: Mutex<ShareGateState>,
}

#[derive(Debug, Default)]
struct ShareGateState {
    gate: Gate,
    /// How many times the user asked to share.
    requests: u64,
    /// `requests` when the share was last switched off: a capture for that request or an
    /// earlier one must not open.
    killed_at_request: Option<u64>,
}

impl ShareGate {
    /// The user asked to share now. A capture that starts later for this request stays shut if
    /// a switch-off comes in between (a room server's slow yes must not reopen it).
    pub fn requested(&self) {
        self.lock().requests += 1;
    }

    /// A gate for a capture starting now: open, unless the share was switched off since the
    /// request.
    #[must_use]
    pub fn open(&self) -> Gate {
        let mut st = self.lock();
        let now = clock::now_us();
        let killed = st.requests == 0 || st.killed_at_request == Some(st.requests);
        let gate = if killed { Gate::new_closed() } else { Gate::new_open(now) };
        st.gate = gate.clone();
        gate
    }

    /// Off, now: nothing captured from this instant on reaches the encoder.
    pub fn close(&self) {
        let now = clock::now_us();
        let mut st = self.lock();
        st.killed_at_request = Some(st.requests);
        st.gate.close(now);
    }

    /// Whether a share is being sent (its gate is open).
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.lock().gate.is_closed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShareGateState> {
        // Held for a few loads and stores; a panic elsewhere leaves consistent atomics behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Camera, microphone and share switches, cheap to clone into the UI, the global-shortcut
/// thread and the engine.
#[derive(Clone, Debug)]
pub struct Switches {
    pub driver: Arc<DriverHandle>,
    pub share: Arc<ShareGate>,
    /// When camera and microphone were last switched off (media clock, µs): a switch-on
    /// queued before that must not reopen them.
    off_at_us: Arc<[AtomicU64; 2]>,
}

impl Switches {
    #[must_use]
    pub fn new(driver: Arc<DriverHandle>) -> Self {
        Switches { driver, share: Arc::default(), off_at_us: Arc::default() }
    }

    /// Whether `kind` was switched off at or after `at_us` (a queued switch-on from before
    /// then is stale).
    #[must_use]
    pub fn off_since(&self, kind: DeviceKind, at_us: u64) -> bool {
        let i = usize::from(kind == DeviceKind::Microphone);
        kind != DeviceKind::ScreenShare && self.off_at_us[i].load(Ordering::SeqCst) >= at_us
    }

    fn mark_off(&self, kinds: &[DeviceKind]) {
        let now = clock::now_us();
        for kind in kinds {
            if *kind != DeviceKind::ScreenShare {
                self.off_at_us[usize::from(*kind == DeviceKind::Microphone)].store(now, Ordering::SeqCst);
            }
        }
    }

    /// Off closes the gate before this returns. The share can only be switched off here (a
    /// share starts from the picker).
    ///
    /// # Errors
    /// The device driver is gone (its gates are closed all the same).
    pub fn set(&self, kind: DeviceKind, on: bool) -> Result<(), String> {
        match kind {
            DeviceKind::ScreenShare if !on => {
                self.share.close();
                Ok(())
            }
            DeviceKind::ScreenShare => Err("a share starts from the window picker".into()),
            _ => {
                let done = self.driver.set_enabled(kind, on).map_err(|e| e.to_string());
                if !on {
                    self.mark_off(&[kind]);
                }
                done
            }
        }
    }

    /// "Everything off": camera, microphone and share gates closed here, devices released.
    ///
    /// # Errors
    /// The device driver is gone (every gate is closed all the same).
    pub fn all_off(&self) -> Result<(), String> {
        self.share.close();
        let done = self.driver.panic_all_off().map_err(|e| e.to_string());
        self.mark_off(&[DeviceKind::Camera, DeviceKind::Microphone]);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::ShareGate;

    #[test]
    fn a_share_switched_off_after_its_request_never_opens() {
        let gate = ShareGate::default();
        assert!(!gate.is_open(), "nothing is shared at first");
        assert!(gate.open().is_closed(), "no capture opens without a request");
        gate.requested();
        let g = gate.open();
        assert!(gate.is_open() && g.admits(blende_devices::clock::now_us()));
        gate.close();
        assert!(!g.admits(blende_devices::clock::now_us()), "the capture's own handle sees the switch");
        // Asked, switched off, then the server's yes arrives: the capture stays shut.
        gate.requested();
        gate.close();
        let late = gate.open();
        assert!(late.is_closed() && !gate.is_open());
        // A new request opens again.
        gate.requested();
        assert!(!gate.open().is_closed());
    }
}
