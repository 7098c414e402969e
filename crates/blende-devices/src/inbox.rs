//! The driver thread's inbox: what the handle and the device threads send it. Kept apart from
//! both so that neither imports the other's module.

use blende_media::kill_switch::{DeviceKind, Input};

/// What a device thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkerEvent {
    Opened {
        name: String,
    },
    OpenFailed(String),
    Lost(String),
    /// The device is dropped; always the thread's last word.
    Closed,
}

/// Messages into the driver thread.
#[derive(Debug)]
pub(crate) enum DriverMsg {
    Command { at_us: u64, input: Input },
    Select { kind: DeviceKind, id: String },
    Device { kind: DeviceKind, generation: u64, event: WorkerEvent },
    Shutdown,
}
