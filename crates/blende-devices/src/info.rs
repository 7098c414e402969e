//! What a device is, as enumeration reports it and the backends describe their devices.

/// Id of the test-pattern camera.
pub const SYNTHETIC_CAMERA_ID: &str = "synthetic:test-pattern";
/// Id of the tone microphone.
pub const SYNTHETIC_MICROPHONE_ID: &str = "synthetic:tone";

/// What a device is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    Camera,
    Microphone,
    Speaker,
}

/// A selectable device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceInfo {
    /// Stable id to select the device with.
    pub id: String,
    /// Human name for the UI.
    pub name: String,
    pub kind: MediaKind,
    /// A built-in test device rather than hardware.
    pub synthetic: bool,
}
