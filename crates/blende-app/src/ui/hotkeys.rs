//! Global shortcuts for the kill switches: they work while Blende is not focused or hidden,
//! so they act on the switches from their own thread, never through the UI: a switch-off
//! closes its gate in this thread, the share's included.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use blende_media::kill_switch::{DeviceKind, DeviceState};
use eframe::egui;
use global_hotkey::hotkey::HotKey;
use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState};

use crate::engine::{CallCommand, Control, Switches};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Toggle(DeviceKind),
    AllOff,
}

/// What the shortcuts switch: the demo's own devices and share, or a call's (through its
/// control, so the engine hears of it too).
#[derive(Clone, Debug)]
pub enum Target {
    Local(Switches),
    Call(Control),
}

impl Target {
    fn switches(&self) -> &Switches {
        match self {
            Target::Local(s) => s,
            Target::Call(c) => &c.switches,
        }
    }

    /// Errors mean the driver or the engine stopped: the gate is closed all the same.
    fn send(&self, command: CallCommand) {
        let _ = match (self, command) {
            (Target::Call(c), command) => c.send(command),
            (Target::Local(s), CallCommand::AllOff) => s.all_off(),
            (Target::Local(s), CallCommand::Switch { kind, on }) => s.set(kind, on),
            (Target::Local(_), _) => Ok(()),
        };
    }

    /// A press of the shortcut: switches the device or the share over. A share starts only
    /// from the picker: `true` asks the UI to open it.
    fn press(&self, action: Action) -> bool {
        match action {
            Action::Toggle(DeviceKind::ScreenShare) => {
                if !self.switches().share.is_open() {
                    return true;
                }
                self.send(CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false });
            }
            Action::Toggle(kind) => {
                let on = matches!(self.switches().driver.state(kind), DeviceState::On | DeviceState::Opening);
                self.send(CallCommand::Switch { kind, on: !on });
            }
            Action::AllOff => self.send(CallCommand::AllOff),
        }
        false
    }
}

/// Registered shortcuts; dropping this unregisters them and stops the thread.
pub struct GlobalSwitches {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    registered: Vec<HotKey>,
    manager: GlobalHotKeyManager,
}

impl std::fmt::Debug for GlobalSwitches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalSwitches").finish_non_exhaustive()
    }
}

/// The shortcut as global-hotkey spells it ("ctrl+alt+KeyV").
fn global_spelling(h: &blende_policy::Hotkey) -> String {
    let m = h.modifiers;
    let mut parts: Vec<String> = [(m.ctrl, "ctrl"), (m.alt, "alt"), (m.shift, "shift"), (m.super_key, "super")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_owned())
        .collect();
    let key = &h.key;
    parts.push(match key.chars().next() {
        Some(c) if key.len() == 1 && c.is_ascii_alphabetic() => format!("Key{key}"),
        Some(c) if key.len() == 1 && c.is_ascii_digit() => format!("Digit{key}"),
        _ => key.clone(),
    });
    parts.join("+")
}

impl GlobalSwitches {
    /// Registers the policy's shortcuts. Fails (instead of pretending) when there is no X
    /// display or a shortcut is taken by another program.
    /// `picker` is set when the share shortcut asks for the window picker.
    pub fn start(keys: &blende_policy::Hotkeys, target: Target, picker: Arc<AtomicBool>, ctx: egui::Context) -> Result<Self, String> {
        // global-hotkey returns Ok without a display; it would never fire.
        if cfg!(target_os = "linux") && std::env::var_os("DISPLAY").is_none() {
            return Err("no X11 display (global shortcuts on Wayland need the GlobalShortcuts portal, not supported yet)".into());
        }
        let manager = GlobalHotKeyManager::new().map_err(|e| e.to_string())?;
        let mut bindings = Vec::new();
        let mut registered = Vec::new();
        for (action, key) in [
            (Action::Toggle(DeviceKind::Camera), &keys.camera),
            (Action::Toggle(DeviceKind::Microphone), &keys.microphone),
            (Action::Toggle(DeviceKind::ScreenShare), &keys.screen_share),
            (Action::AllOff, &keys.all_off),
        ] {
            let hotkey = HotKey::from_str(&global_spelling(key)).map_err(|e| format!("{key}: {e}"))?;
            if let Err(e) = manager.register(hotkey) {
                let _ = manager.unregister_all(&registered);
                return Err(format!("{key}: {e}"));
            }
            registered.push(hotkey);
            bindings.push((hotkey.id(), action));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("blende-hotkeys".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(event) = GlobalHotKeyEvent::receiver().recv_timeout(Duration::from_millis(200)) else { continue };
                        if event.state() != HotKeyState::Pressed {
                            continue;
                        }
                        if let Some((_, action)) = bindings.iter().find(|(id, _)| *id == event.id()) {
                            if target.press(*action) {
                                picker.store(true, Ordering::Relaxed);
                                ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                            }
                            ctx.request_repaint();
                        }
                    }
                })
                .map_err(|e| e.to_string())?
        };
        Ok(GlobalSwitches { stop, thread: Some(thread), registered, manager })
    }
}

impl Drop for GlobalSwitches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Synchronous, unlike dropping the manager: the keys are free again when this returns.
        let _ = self.manager.unregister_all(&self.registered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_shortcuts_are_spelled_for_global_hotkey() {
        let k = |s: &str| global_spelling(&blende_policy::Hotkey::parse(s).expect("valid"));
        assert_eq!(k("Ctrl+Alt+V"), "ctrl+alt+KeyV");
        assert_eq!(k("Shift+F12"), "shift+F12");
        assert_eq!(k("Ctrl+Alt+Pause"), "ctrl+alt+Pause");
        assert_eq!(k("Super+7"), "super+Digit7");
        for s in ["Ctrl+Alt+V", "Shift+F12", "Ctrl+Alt+Pause", "Super+7", "Ctrl+PageDown"] {
            assert!(HotKey::from_str(&k(s)).is_ok(), "{s}");
        }
    }
}
