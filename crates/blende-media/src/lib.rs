//! Blende's media engine without device IO.
//!
//! How it is driven: capture drivers (in `blende-devices`) hand [`VideoFrame`]s and
//! [`AudioFrame`]s stamped with their capture time on the media clock (µs). The
//! send pipeline passes each through [`GatedVideo`]/[`GatedAudio`], which ask the
//! kill switch's [`Gate`], converts pictures with [`convert::to_i420`], and encodes
//! with [`Vp8Encoder`] / [`OpusEncoder`]. The [`KillSwitch`] is a sans-IO state
//! machine: its driver feeds it [`kill_switch::Input`]s with the current time and
//! carries out its [`kill_switch::Output`]s on the real devices.
//!
//! Nothing here opens a device, starts a thread or reads a clock; the synthetic
//! devices in [`synthetic`] produce media for a caller-supplied timestamp.
//!
//! **Architecture invariant:** this crate knows nothing about cpal, nokhwa, tokio or
//! egui. All `unsafe` code (the libvpx binding) lives in the `vp8` module.

pub mod audio_codec;
pub mod audio_jitter;
pub mod audio_receive;
pub mod convert;
pub mod frame;
pub mod gated;
pub mod kill_switch;
pub mod ladder;
pub mod rtp_reorder;
pub mod synthetic;
pub mod vp8;
pub mod vp8_rtp;

pub use audio_codec::{EncodedAudioFrame, OpusConfig, OpusDecoder, OpusEncoder};
pub use audio_receive::{AudioOrigin, OpusReceiver};
pub use frame::{AudioFrame, AudioSamples, PixelFormat, VideoFrame};
pub use gated::{GatedAudio, GatedVideo};
pub use kill_switch::{DeviceKind, DeviceState, Gate, KillSwitch};
pub use vp8::{ContentKind, EncodedVideoFrame, Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};

/// Errors of the media engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("invalid frame: {0}")]
    InvalidFrame(&'static str),
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("{what} failed: {detail}")]
    Codec { what: &'static str, detail: String },
}
