//! Blende's device IO: microphone and speaker (cpal, PulseAudio host), camera
//! (nokhwa, V4L2), synthetic devices, and the kill-switch driver.
//!
//! How it is driven: the app starts a [`DriverHandle`] with a [`DriverConfig`]
//! and gets [`DriverOutputs`]: bounded channels of captured video and audio
//! (already checked against the kill-switch gates) and of [`DriverEvent`]s with
//! the real device states. The UI calls [`DriverHandle::set_enabled`] and
//! [`DriverHandle::panic_all_off`]; those close the gate in the calling thread
//! before returning, and the driver thread then releases the device on the
//! thread that owns it and reports `Off` once it is gone.
//!
//! Threads: one driver thread (`blende-device-driver`) owns the
//! [`blende_media::KillSwitch`]; each open device has its own named thread. Audio
//! callbacks only copy into preallocated lock-free ring buffers.
//!
//! **Architecture invariant:** no tokio and no egui here; codecs and the state
//! machine live in `blende-media`.

pub mod audio;
pub mod camera;
pub mod clock;
pub mod devices;
pub mod driver;
mod error;
mod inbox;
mod info;
mod workers;

pub use audio::{AudioHost, MicrophoneStream, SpeakerStream};
pub use devices::{DeviceInfo, MediaKind, SYNTHETIC_CAMERA_ID, SYNTHETIC_MICROPHONE_ID, enumerate};
pub use driver::{DriverConfig, DriverEvent, DriverHandle, DriverOutputs};
pub use error::DeviceError;
