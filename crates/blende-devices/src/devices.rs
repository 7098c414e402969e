//! Device enumeration: real devices and synthetic ones, selectable alike by id.
//!
//! Ids are stable across runs for the same hardware: `audio-in:<cpal id>`,
//! `audio-out:<cpal id>`, `camera:<nokhwa index>`, and the synthetic
//! [`SYNTHETIC_CAMERA_ID`] and [`SYNTHETIC_MICROPHONE_ID`].

use crate::audio::AudioHost;
use crate::camera;
pub use crate::info::{DeviceInfo, MediaKind, SYNTHETIC_CAMERA_ID, SYNTHETIC_MICROPHONE_ID};

/// All devices: cameras (possibly none), microphones and speakers of the audio
/// host (none when no sound server runs), then the synthetic ones. Never fails:
/// a backend that cannot list devices contributes nothing.
#[must_use]
pub fn enumerate() -> Vec<DeviceInfo> {
    let mut all = camera::list_cameras().unwrap_or_default();
    if let Ok(host) = AudioHost::new() {
        all.extend(host.microphones().unwrap_or_default());
        all.extend(host.speakers().unwrap_or_default());
    }
    all.push(DeviceInfo { id: SYNTHETIC_CAMERA_ID.to_owned(), name: "Test pattern".to_owned(), kind: MediaKind::Camera, synthetic: true });
    all.push(DeviceInfo {
        id: SYNTHETIC_MICROPHONE_ID.to_owned(),
        name: "Test tone (440 Hz)".to_owned(),
        kind: MediaKind::Microphone,
        synthetic: true,
    });
    all
}
