//! Cameras through nokhwa (V4L2 on Linux). A camera lives on its own named thread
//! that owns it; releasing it means stopping the stream and dropping it there.

use std::panic::{AssertUnwindSafe, catch_unwind};

use blende_media::convert::to_i420;
use blende_media::{PixelFormat, VideoFrame};
use nokhwa::Camera;
use nokhwa::pixel_format::RgbAFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};

use crate::error::DeviceError;
use crate::info::{DeviceInfo, MediaKind};

const ID_PREFIX: &str = "camera:";

/// Cameras the native backend can see; an empty list is normal (no camera).
///
/// # Errors
/// [`DeviceError::HostUnavailable`] when the backend cannot be queried at all.
pub fn list_cameras() -> Result<Vec<DeviceInfo>, DeviceError> {
    // nokhwa should return errors, but guard against panics in the bindings too.
    let found = catch_unwind(|| nokhwa::query(ApiBackend::Auto))
        .map_err(|_| DeviceError::HostUnavailable("camera backend panicked".to_owned()))?
        .map_err(|e| DeviceError::HostUnavailable(e.to_string()))?;
    Ok(found
        .into_iter()
        .map(|info| DeviceInfo {
            id: format!("{ID_PREFIX}{}", info.index().as_string()),
            name: info.human_name(),
            kind: MediaKind::Camera,
            synthetic: false,
        })
        .collect())
}

fn parse_index(id: &str) -> Result<CameraIndex, DeviceError> {
    let rest = id.strip_prefix(ID_PREFIX).ok_or_else(|| DeviceError::NoSuchDevice(id.to_owned()))?;
    Ok(match rest.parse::<u32>() {
        Ok(i) => CameraIndex::Index(i),
        Err(_) => CameraIndex::String(rest.to_owned()),
    })
}

/// An open nokhwa camera. Must stay on the thread that opened it.
pub(crate) struct NativeCamera {
    camera: Option<Camera>,
    sequence: u64,
}

impl NativeCamera {
    /// Opens the camera with id `camera:<index>` and starts streaming.
    pub(crate) fn open(id: &str) -> Result<Self, DeviceError> {
        let index = parse_index(id)?;
        let requested = RequestedFormat::new::<RgbAFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let open_failed = |e: nokhwa::NokhwaError| DeviceError::OpenFailed { id: id.to_owned(), reason: e.to_string() };
        let mut camera = catch_unwind(AssertUnwindSafe(|| Camera::new(index, requested)))
            .map_err(|_| DeviceError::OpenFailed { id: id.to_owned(), reason: "backend panicked".to_owned() })?
            .map_err(open_failed)?;
        if let Err(e) = camera.open_stream() {
            release(camera);
            return Err(open_failed(e));
        }
        Ok(Self { camera: Some(camera), sequence: 0 })
    }

    /// Blocks until the next picture, stamped with `now_us()` at arrival.
    pub(crate) fn frame(&mut self, now_us: impl Fn() -> u64) -> Result<VideoFrame, DeviceError> {
        let camera = self.camera.as_mut().ok_or_else(|| DeviceError::NoSuchDevice("closed".to_owned()))?;
        let err = |e: nokhwa::NokhwaError| DeviceError::OpenFailed { id: "camera".to_owned(), reason: e.to_string() };
        let buffer = camera.frame().map_err(err)?;
        let t = now_us();
        let res = buffer.resolution();
        let rgba = buffer.decode_image::<RgbAFormat>().map_err(err)?;
        let seq = self.sequence;
        self.sequence += 1;
        let frame = VideoFrame::new(res.width(), res.height(), PixelFormat::Rgba, rgba.into_raw(), t, seq)?;
        Ok(to_i420(&frame))
    }
}

impl Drop for NativeCamera {
    fn drop(&mut self) {
        if let Some(camera) = self.camera.take() {
            release(camera);
        }
    }
}

/// Stops the stream, then drops the camera. nokhwa's `Drop` unwraps a second
/// `stop_stream`, which can fail on an already stopped or vanished device: that
/// panic is contained here so releasing never takes the thread down.
fn release(mut camera: Camera) {
    let _ = camera.stop_stream();
    let _ = catch_unwind(AssertUnwindSafe(move || drop(camera)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_parse() {
        assert!(matches!(parse_index("camera:0"), Ok(CameraIndex::Index(0))));
        assert!(matches!(parse_index("camera:/dev/video2"), Ok(CameraIndex::String(s)) if s == "/dev/video2"));
        assert!(matches!(parse_index("audio-in:x"), Err(DeviceError::NoSuchDevice(_))));
    }

    #[test]
    fn opening_a_missing_camera_is_an_error_not_a_panic() {
        assert!(NativeCamera::open("camera:77").is_err());
    }
}
