//! Raw video and audio frames as they travel from capture to the encoder.
//!
//! Every frame carries the instant it was captured (`capture_time_us`, on the
//! engine's monotonic media clock) so the kill-switch [`crate::Gate`] can drop
//! anything captured after the user switched a device off.

use crate::MediaError;

/// Pixel layout of a [`VideoFrame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// 8-bit R, G, B, A per pixel, tightly packed rows.
    Rgba,
    /// 8-bit B, G, R, A per pixel (X11 and most screen grabbers), tightly packed rows.
    Bgra,
    /// Planar YUV 4:2:0 (BT.601, limited range): Y plane, then U, then V, each
    /// tightly packed; chroma planes are `ceil(w/2) x ceil(h/2)`.
    I420,
}

impl PixelFormat {
    /// Number of bytes a `width x height` picture takes in this format.
    #[must_use]
    pub fn buffer_len(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            Self::Rgba | Self::Bgra => w * h * 4,
            Self::I420 => {
                let (cw, ch) = chroma_dims(width, height);
                w * h + 2 * cw * ch
            }
        }
    }
}

/// Width and height of the chroma planes of an I420 picture.
#[must_use]
pub fn chroma_dims(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// One uncompressed picture.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    format: PixelFormat,
    data: Vec<u8>,
    capture_time_us: u64,
    sequence: u64,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Pixel data is personal data (a face, a screen): never print it.
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("capture_time_us", &self.capture_time_us)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl VideoFrame {
    /// Wraps pixel data, checking that its length fits the format and size.
    ///
    /// # Errors
    /// [`MediaError::InvalidFrame`] when the size is zero or the buffer length is wrong.
    pub fn new(
        width: u32,
        height: u32,
        format: PixelFormat,
        data: Vec<u8>,
        capture_time_us: u64,
        sequence: u64,
    ) -> Result<Self, MediaError> {
        if width == 0 || height == 0 {
            return Err(MediaError::InvalidFrame("zero width or height"));
        }
        if data.len() != format.buffer_len(width, height) {
            return Err(MediaError::InvalidFrame("buffer length does not match format and size"));
        }
        Ok(Self { width, height, format, data, capture_time_us, sequence })
    }

    /// A black picture (what the outgoing track carries while a camera is off).
    #[must_use]
    pub fn black(width: u32, height: u32, format: PixelFormat, capture_time_us: u64, sequence: u64) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let data = match format {
            PixelFormat::Rgba | PixelFormat::Bgra => {
                let mut d = vec![0u8; format.buffer_len(width, height)];
                for px in d.chunks_exact_mut(4) {
                    px[3] = 255;
                }
                d
            }
            PixelFormat::I420 => {
                let luma = width as usize * height as usize;
                let mut d = vec![128u8; format.buffer_len(width, height)];
                d[..luma].fill(16);
                d
            }
        };
        Self { width, height, format, data, capture_time_us, sequence }
    }

    #[must_use]
    pub fn width(&self) -> u32 {
        self.width
    }

    #[must_use]
    pub fn height(&self) -> u32 {
        self.height
    }

    #[must_use]
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    #[must_use]
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// When the picture was captured, in µs on the media clock.
    #[must_use]
    pub fn capture_time_us(&self) -> u64 {
        self.capture_time_us
    }

    /// Sequence number assigned by the source (counts frames since the device opened).
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The Y, U and V planes of an I420 frame, `None` for packed formats.
    #[must_use]
    pub fn i420_planes(&self) -> Option<(&[u8], &[u8], &[u8])> {
        if self.format != PixelFormat::I420 {
            return None;
        }
        let luma = self.width as usize * self.height as usize;
        let (cw, ch) = chroma_dims(self.width, self.height);
        let (y, rest) = self.data.split_at(luma);
        let (u, v) = rest.split_at(cw * ch);
        Some((y, u, v))
    }
}

/// Interleaved PCM samples.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum AudioSamples {
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl std::fmt::Debug for AudioSamples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Samples are a recording of a person: print only their count.
        match self {
            Self::I16(s) => write!(f, "I16({} samples)", s.len()),
            Self::F32(s) => write!(f, "F32({} samples)", s.len()),
        }
    }
}

impl AudioSamples {
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::I16(s) => s.len(),
            Self::F32(s) => s.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples as f32 in [-1, 1].
    #[must_use]
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Self::I16(s) => s.iter().map(|&x| f32::from(x) / 32768.0).collect(),
            Self::F32(s) => s.clone(),
        }
    }

    /// The samples as i16, clipping f32 values outside [-1, 1].
    #[must_use]
    pub fn to_i16(&self) -> Vec<i16> {
        match self {
            Self::I16(s) => s.clone(),
            #[allow(clippy::cast_possible_truncation)] // clamped to the i16 range first
            Self::F32(s) => s.iter().map(|&x| (x.clamp(-1.0, 1.0) * 32767.0).round() as i16).collect(),
        }
    }
}

/// A block of audio (typically 20 ms) with its capture instant.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    samples: AudioSamples,
    sample_rate_hz: u32,
    channels: u16,
    capture_time_us: u64,
    sequence: u64,
}

impl AudioFrame {
    /// # Errors
    /// [`MediaError::InvalidFrame`] for zero channels or rate, or a sample count that is
    /// not a multiple of the channel count.
    pub fn new(samples: AudioSamples, sample_rate_hz: u32, channels: u16, capture_time_us: u64, sequence: u64) -> Result<Self, MediaError> {
        if channels == 0 || sample_rate_hz == 0 {
            return Err(MediaError::InvalidFrame("zero channels or sample rate"));
        }
        if !samples.len().is_multiple_of(usize::from(channels)) {
            return Err(MediaError::InvalidFrame("sample count not a multiple of channels"));
        }
        Ok(Self { samples, sample_rate_hz, channels, capture_time_us, sequence })
    }

    /// Silence of the given length (what the outgoing track carries while a microphone is off).
    #[must_use]
    pub fn silence(samples_per_channel: usize, sample_rate_hz: u32, channels: u16, capture_time_us: u64, sequence: u64) -> Self {
        let channels = channels.max(1);
        Self {
            samples: AudioSamples::F32(vec![0.0; samples_per_channel * usize::from(channels)]),
            sample_rate_hz: sample_rate_hz.max(1),
            channels,
            capture_time_us,
            sequence,
        }
    }

    #[must_use]
    pub fn samples(&self) -> &AudioSamples {
        &self.samples
    }

    #[must_use]
    pub fn into_samples(self) -> AudioSamples {
        self.samples
    }

    #[must_use]
    pub fn sample_rate_hz(&self) -> u32 {
        self.sample_rate_hz
    }

    #[must_use]
    pub fn channels(&self) -> u16 {
        self.channels
    }

    #[must_use]
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / usize::from(self.channels)
    }

    /// Duration of the frame in µs.
    #[must_use]
    pub fn duration_us(&self) -> u64 {
        self.samples_per_channel() as u64 * 1_000_000 / u64::from(self.sample_rate_hz)
    }

    /// When the first sample was captured, in µs on the media clock.
    #[must_use]
    pub fn capture_time_us(&self) -> u64 {
        self.capture_time_us
    }

    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}
