//! Microphone and speaker through cpal (PulseAudio host when a server is reachable).
//!
//! The audio callbacks are real-time code: they only copy samples into (or out of)
//! preallocated lock-free `rtrb` ring buffers and note the capture time in a
//! second ring. No allocation, lock or logging happens there. Streams start only
//! on `play()`; dropping a stream (and its host connection) releases the device.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use blende_media::audio_codec::{OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ};
use blende_media::{AudioFrame, AudioSamples};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::clock;
use crate::error::DeviceError;
use crate::info::{DeviceInfo, MediaKind};

/// Capture rate: Opus's native 48 kHz, so the encoder needs no resampling (the
/// sound server converts if the device runs at another rate).
pub const CAPTURE_SAMPLE_RATE_HZ: u32 = OPUS_SAMPLE_RATE_HZ;
/// One second of mono audio: plenty of slack for a reader polling every few ms.
const RING_SAMPLES: usize = CAPTURE_SAMPLE_RATE_HZ as usize;
/// Frames per callback: 10 ms. Without a fixed size PulseAudio picks fragments of up
/// to seconds, which adds that much latency and overruns the ring.
const CALLBACK_FRAMES: u32 = CAPTURE_SAMPLE_RATE_HZ / 100;
/// Capture-time marks (one per callback).
const RING_MARKS: usize = 1024;

const STATUS_LOST: u8 = 1;
const STATUS_ERROR: u8 = 2;

/// Which cpal host to use.
pub struct AudioHost {
    host: cpal::Host,
}

impl std::fmt::Debug for AudioHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioHost").field("id", &self.host.id()).finish()
    }
}

impl AudioHost {
    /// The PulseAudio host if a server is reachable (`PULSE_SERVER` or
    /// `$XDG_RUNTIME_DIR/pulse/native`), else cpal's default host.
    ///
    /// # Errors
    /// [`DeviceError::HostUnavailable`] when no host can be created.
    pub fn new() -> Result<Self, DeviceError> {
        if let Ok(host) = cpal::host_from_id(cpal::HostId::PulseAudio) {
            return Ok(Self { host });
        }
        Ok(Self { host: cpal::default_host() })
    }

    /// The PulseAudio host only.
    ///
    /// # Errors
    /// [`DeviceError::HostUnavailable`] when no PulseAudio server answers.
    pub fn pulseaudio() -> Result<Self, DeviceError> {
        cpal::host_from_id(cpal::HostId::PulseAudio).map(|host| Self { host }).map_err(|e| DeviceError::HostUnavailable(e.to_string()))
    }

    #[must_use]
    pub fn is_pulseaudio(&self) -> bool {
        self.host.id() == cpal::HostId::PulseAudio
    }

    /// Microphones (sources), with stable ids `audio-in:<host id>`.
    ///
    /// # Errors
    /// [`DeviceError::HostUnavailable`] when the host cannot list devices.
    pub fn microphones(&self) -> Result<Vec<DeviceInfo>, DeviceError> {
        self.describe_all(MediaKind::Microphone)
    }

    /// Speakers (sinks), with stable ids `audio-out:<host id>`.
    ///
    /// # Errors
    /// [`DeviceError::HostUnavailable`] when the host cannot list devices.
    pub fn speakers(&self) -> Result<Vec<DeviceInfo>, DeviceError> {
        self.describe_all(MediaKind::Speaker)
    }

    /// The host's devices of one kind: outputs for speakers, inputs otherwise.
    fn devices(&self, kind: MediaKind) -> Result<Vec<cpal::Device>, DeviceError> {
        match kind {
            MediaKind::Speaker => self.host.output_devices().map(Iterator::collect),
            _ => self.host.input_devices().map(Iterator::collect),
        }
        .map_err(|e| DeviceError::HostUnavailable(e.to_string()))
    }

    fn describe_all(&self, kind: MediaKind) -> Result<Vec<DeviceInfo>, DeviceError> {
        Ok(self.devices(kind)?.iter().filter_map(|d| describe(d, kind)).collect())
    }

    fn find(&self, id: Option<&str>, kind: MediaKind) -> Result<cpal::Device, DeviceError> {
        let Some(id) = id else {
            let dev = match kind {
                MediaKind::Speaker => self.host.default_output_device(),
                _ => self.host.default_input_device(),
            };
            return dev.ok_or_else(|| DeviceError::NoSuchDevice(format!("default {kind:?}")));
        };
        self.devices(kind)?
            .into_iter()
            .find(|d| describe(d, kind).is_some_and(|info| info.id == id))
            .ok_or_else(|| DeviceError::NoSuchDevice(id.to_owned()))
    }
}

fn describe(device: &cpal::Device, kind: MediaKind) -> Option<DeviceInfo> {
    let id = device.id().ok()?;
    let name = device.description().map(|d| d.name().to_owned()).unwrap_or_else(|_| id.to_string());
    let prefix = if kind == MediaKind::Speaker { "audio-out" } else { "audio-in" };
    Some(DeviceInfo { id: format!("{prefix}:{id}"), name, kind, synthetic: false })
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Index (in samples since the stream started) of the first sample of a callback.
    sample_index: u64,
    capture_time_us: u64,
}

/// What the callbacks share with the reader; atomics only.
#[derive(Debug, Default)]
struct StreamStatus {
    status: AtomicU8,
    overrun_samples: AtomicU64,
    /// Every sample the device handed over, kept or not: a device without a clock (ALSA's
    /// `null`, what `default` becomes on a machine without a sound card) hands them over as
    /// fast as they are asked for.
    delivered_samples: AtomicU64,
}

/// An open, playing microphone. Dropping it releases the device.
pub struct MicrophoneStream {
    // Field order matters: the stream drops first, so the callback stops before
    // the rings it writes into go away (and then the host connection closes).
    _stream: cpal::Stream,
    _host: AudioHost,
    samples: rtrb::Consumer<f32>,
    marks: rtrb::Consumer<Mark>,
    status: Arc<StreamStatus>,
    read_index: u64,
    current_mark: Option<Mark>,
    next_sequence: u64,
    block: Vec<f32>,
    name: String,
}

impl std::fmt::Debug for MicrophoneStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrophoneStream").field("name", &self.name).finish_non_exhaustive()
    }
}

impl MicrophoneStream {
    /// Opens a microphone (`None` = the default one) as 48 kHz mono f32 and starts it.
    ///
    /// # Errors
    /// [`DeviceError::NoSuchDevice`] or [`DeviceError::OpenFailed`].
    pub fn open(host: AudioHost, device_id: Option<&str>) -> Result<Self, DeviceError> {
        let device = host.find(device_id, MediaKind::Microphone)?;
        let name = describe(&device, MediaKind::Microphone).map(|d| d.name).unwrap_or_default();
        let id_for_error = device_id.unwrap_or("default").to_owned();
        let open_failed = |e: cpal::Error| DeviceError::OpenFailed { id: id_for_error.clone(), reason: e.to_string() };

        let (mut sample_tx, samples) = rtrb::RingBuffer::<f32>::new(RING_SAMPLES);
        let (mut mark_tx, marks) = rtrb::RingBuffer::<Mark>::new(RING_MARKS);
        let status = Arc::new(StreamStatus::default());
        let cb_status = Arc::clone(&status);
        let err_status = Arc::clone(&status);
        let mut written: u64 = 0;
        let config =
            cpal::StreamConfig { channels: 1, sample_rate: CAPTURE_SAMPLE_RATE_HZ, buffer_size: cpal::BufferSize::Fixed(CALLBACK_FRAMES) };
        let stream = device
            .build_input_stream::<f32, _, _>(
                config,
                move |data: &[f32], info: &cpal::InputCallbackInfo| {
                    // Real-time path: arithmetic, atomics and ring-buffer copies only.
                    let ts = info.timestamp();
                    let delay_us = ts.callback.saturating_duration_since(ts.capture).as_micros() as u64;
                    let capture_time_us = clock::now_us().saturating_sub(delay_us);
                    let _ = mark_tx.push(Mark { sample_index: written, capture_time_us });
                    cb_status.delivered_samples.fetch_add(data.len() as u64, Ordering::Relaxed);
                    let (_, rest) = sample_tx.push_partial_slice(data);
                    if !rest.is_empty() {
                        // Reader fell behind: count what was dropped; keep the index
                        // honest so timestamps stay right.
                        cb_status.overrun_samples.fetch_add(rest.len() as u64, Ordering::Relaxed);
                    }
                    written += (data.len() - rest.len()) as u64;
                },
                move |err: cpal::Error| {
                    let code = match err.kind() {
                        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated | cpal::ErrorKind::HostUnavailable => {
                            STATUS_LOST
                        }
                        _ => STATUS_ERROR,
                    };
                    err_status.status.store(code, Ordering::Relaxed);
                },
                None,
            )
            .map_err(open_failed)?;
        stream.play().map_err(open_failed)?;
        Ok(Self {
            _stream: stream,
            _host: host,
            samples,
            marks,
            status,
            read_index: 0,
            current_mark: None,
            next_sequence: 0,
            block: vec![0.0; OPUS_FRAME_SAMPLES],
            name,
        })
    }

    /// Human name of the device.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next 20 ms (48 kHz mono) if captured, stamped with its capture time.
    pub fn read_frame(&mut self) -> Option<AudioFrame> {
        if self.samples.slots() < OPUS_FRAME_SAMPLES {
            return None;
        }
        self.samples.pop_entire_slice(&mut self.block).ok()?;
        // Latest mark at or before the first sample of the block.
        while let Ok(next) = self.marks.peek() {
            if next.sample_index > self.read_index {
                break;
            }
            self.current_mark = self.marks.pop().ok();
        }
        let frame_us = OPUS_FRAME_SAMPLES as u64 * 1_000_000 / u64::from(CAPTURE_SAMPLE_RATE_HZ);
        // Every sample in the ring was captured before now, so the block started at
        // least its duration ago: a latency estimate that is too small must not
        // stamp audio in the future (the kill-switch gate compares these stamps).
        let latest_possible_us = clock::now_us().saturating_sub(frame_us);
        let capture_time_us = match self.current_mark {
            Some(m) => m.capture_time_us + (self.read_index - m.sample_index) * 1_000_000 / u64::from(CAPTURE_SAMPLE_RATE_HZ),
            None => latest_possible_us,
        }
        .min(latest_possible_us);
        self.read_index += OPUS_FRAME_SAMPLES as u64;
        let seq = self.next_sequence;
        self.next_sequence += 1;
        AudioFrame::new(AudioSamples::F32(self.block.clone()), CAPTURE_SAMPLE_RATE_HZ, 1, capture_time_us, seq).ok()
    }

    /// Set when the stream died (device unplugged, server gone).
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.status.status.load(Ordering::Relaxed) == STATUS_LOST
    }

    /// Samples the device delivered since it was opened (see [`faster_than_real_time`]).
    #[must_use]
    pub fn delivered_samples(&self) -> u64 {
        self.status.delivered_samples.load(Ordering::Relaxed)
    }

    /// Samples dropped because the reader was too slow.
    #[must_use]
    pub fn overrun_samples(&self) -> u64 {
        self.status.overrun_samples.load(Ordering::Relaxed)
    }

    /// Stops capturing and releases the device (same as dropping).
    pub fn close(self) {
        drop(self);
    }
}

/// Whether a capture stream delivered `samples` in `elapsed` at more than three times the
/// real-time rate, after at least a second: no microphone records faster than time passes, so
/// such a stream has no device (and no clock) behind it, and reading it only burns a core.
#[must_use]
pub fn faster_than_real_time(samples: u64, elapsed: std::time::Duration) -> bool {
    elapsed >= std::time::Duration::from_secs(1) && samples as f64 > 3.0 * f64::from(CAPTURE_SAMPLE_RATE_HZ) * elapsed.as_secs_f64()
}

/// An open speaker playing whatever is written to it (48 kHz mono f32).
pub struct SpeakerStream {
    _stream: cpal::Stream,
    _host: AudioHost,
    samples: rtrb::Producer<f32>,
}

impl std::fmt::Debug for SpeakerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerStream").finish_non_exhaustive()
    }
}

impl SpeakerStream {
    /// Opens a speaker (`None` = default) and starts it; it plays silence until fed.
    ///
    /// # Errors
    /// [`DeviceError::NoSuchDevice`] or [`DeviceError::OpenFailed`].
    pub fn open(host: AudioHost, device_id: Option<&str>) -> Result<Self, DeviceError> {
        let device = host.find(device_id, MediaKind::Speaker)?;
        let id_for_error = device_id.unwrap_or("default").to_owned();
        let open_failed = |e: cpal::Error| DeviceError::OpenFailed { id: id_for_error.clone(), reason: e.to_string() };
        let (samples, mut rx) = rtrb::RingBuffer::<f32>::new(RING_SAMPLES);
        let config =
            cpal::StreamConfig { channels: 1, sample_rate: CAPTURE_SAMPLE_RATE_HZ, buffer_size: cpal::BufferSize::Fixed(CALLBACK_FRAMES) };
        let stream = device
            .build_output_stream::<f32, _, _>(
                config,
                move |out: &mut [f32], _info: &cpal::OutputCallbackInfo| {
                    // Real-time path: copy what is there, pad with silence.
                    let (_played, missing) = rx.pop_partial_slice(out);
                    missing.fill(0.0);
                },
                |_err: cpal::Error| {},
                None,
            )
            .map_err(open_failed)?;
        stream.play().map_err(open_failed)?;
        Ok(Self { _stream: stream, _host: host, samples })
    }

    /// Queues samples for playback; returns how many fitted.
    pub fn write(&mut self, samples: &[f32]) -> usize {
        let (_, rest) = self.samples.push_partial_slice(samples);
        samples.len() - rest.len()
    }

    /// Room left in the playback queue, in samples.
    #[must_use]
    pub fn free_samples(&self) -> usize {
        self.samples.slots()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::faster_than_real_time;

    #[test]
    fn only_streams_far_faster_than_time_count_as_clockless() {
        let second = Duration::from_secs(1);
        assert!(!faster_than_real_time(48_000, second), "a real microphone");
        assert!(!faster_than_real_time(96_000, second), "a burst after a stall");
        assert!(faster_than_real_time(1_000_000, second * 2), "ALSA null: as fast as it is read");
        assert!(!faster_than_real_time(10_000_000, Duration::from_millis(500)), "too early to tell");
    }
}
