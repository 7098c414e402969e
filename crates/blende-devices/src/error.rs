use blende_media::DeviceKind;

/// Errors of the device layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error("audio host unavailable: {0}")]
    HostUnavailable(String),
    #[error("no such device: {0}")]
    NoSuchDevice(String),
    #[error("device {id} could not be opened: {reason}")]
    OpenFailed { id: String, reason: String },
    #[error("{0:?} is not provided by blende-devices")]
    Unsupported(DeviceKind),
    #[error("the device driver thread has stopped")]
    DriverStopped,
    #[error("could not start thread {name}: {source}")]
    Thread { name: &'static str, source: std::io::Error },
    #[error("media error: {0}")]
    Media(#[from] blende_media::MediaError),
}
