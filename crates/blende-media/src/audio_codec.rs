//! Opus encoder and decoder for conferencing: VoIP application, 20 ms frames at
//! 48 kHz, in-band FEC and DTX on.

use crate::MediaError;
use crate::frame::{AudioFrame, AudioSamples};

/// Opus's native rate: capture at 48 kHz to avoid resampling.
pub const OPUS_SAMPLE_RATE_HZ: u32 = 48_000;
/// Frame duration used throughout the engine.
pub const OPUS_FRAME_DURATION_MS: u32 = 20;
/// Samples per channel in one 20 ms frame at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = (OPUS_SAMPLE_RATE_HZ / 1000 * OPUS_FRAME_DURATION_MS) as usize;
/// Largest packet we produce (RFC 6716 allows 1275 bytes per frame).
const MAX_PACKET_BYTES: usize = 1500;

/// Settings for [`OpusEncoder::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    pub channels: u16,
    pub bitrate_bps: u32,
    /// Expected packet loss; in-band FEC is only spent when this is above zero.
    pub expected_loss_pct: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self { channels: 1, bitrate_bps: 32_000, expected_loss_pct: 10 }
    }
}

/// One Opus packet (20 ms).
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedAudioFrame {
    pub data: Vec<u8>,
    pub capture_time_us: u64,
    pub sequence: u64,
}

impl std::fmt::Debug for EncodedAudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedAudioFrame")
            .field("len", &self.data.len())
            .field("capture_time_us", &self.capture_time_us)
            .field("sequence", &self.sequence)
            .finish()
    }
}

fn opus_channels(channels: u16) -> Result<opus::Channels, MediaError> {
    match channels {
        1 => Ok(opus::Channels::Mono),
        2 => Ok(opus::Channels::Stereo),
        _ => Err(MediaError::InvalidConfig("Opus supports 1 or 2 channels")),
    }
}

fn opus_err(what: &'static str) -> impl Fn(opus::Error) -> MediaError {
    move |e| MediaError::Codec { what, detail: e.to_string() }
}

/// Opus encoder taking 20 ms frames at 48 kHz.
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
    out: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// # Errors
    /// [`MediaError::InvalidConfig`] for unsupported channels, [`MediaError::Codec`]
    /// when libopus rejects a setting.
    pub fn new(config: OpusConfig) -> Result<Self, MediaError> {
        let mut inner = opus::Encoder::new(OPUS_SAMPLE_RATE_HZ, opus_channels(config.channels)?, opus::Application::Voip)
            .map_err(opus_err("opus_encoder_create"))?;
        let bitrate = i32::try_from(config.bitrate_bps).map_err(|_| MediaError::InvalidConfig("Opus bitrate too large"))?;
        inner.set_bitrate(opus::Bitrate::Bits(bitrate)).map_err(opus_err("OPUS_SET_BITRATE"))?;
        inner.set_inband_fec(true).map_err(opus_err("OPUS_SET_INBAND_FEC"))?;
        inner.set_packet_loss_perc(i32::from(config.expected_loss_pct.min(100))).map_err(opus_err("OPUS_SET_PACKET_LOSS_PERC"))?;
        inner.set_dtx(true).map_err(opus_err("OPUS_SET_DTX"))?;
        Ok(Self { inner, config, out: vec![0; MAX_PACKET_BYTES] })
    }

    #[must_use]
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Changes the target bitrate (from congestion control).
    ///
    /// # Errors
    /// [`MediaError::Codec`] when libopus rejects the value.
    pub fn set_bitrate_bps(&mut self, bitrate_bps: u32) -> Result<(), MediaError> {
        let bits = i32::try_from(bitrate_bps).map_err(|_| MediaError::InvalidConfig("Opus bitrate too large"))?;
        self.inner.set_bitrate(opus::Bitrate::Bits(bits)).map_err(opus_err("OPUS_SET_BITRATE"))?;
        self.config.bitrate_bps = bitrate_bps;
        Ok(())
    }

    /// Encodes one 20 ms frame at 48 kHz with the configured channel count. During
    /// silence DTX makes packets tiny (1–3 bytes); they are still returned.
    ///
    /// # Errors
    /// [`MediaError::InvalidFrame`] for a wrong rate, channel count or length.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<EncodedAudioFrame, MediaError> {
        if frame.sample_rate_hz() != OPUS_SAMPLE_RATE_HZ
            || frame.channels() != self.config.channels
            || frame.samples_per_channel() != OPUS_FRAME_SAMPLES
        {
            return Err(MediaError::InvalidFrame("Opus needs 20 ms at 48 kHz with the configured channels"));
        }
        let len = match frame.samples() {
            AudioSamples::I16(s) => self.inner.encode(s, &mut self.out),
            AudioSamples::F32(s) => self.inner.encode_float(s, &mut self.out),
        }
        .map_err(opus_err("opus_encode"))?;
        Ok(EncodedAudioFrame { data: self.out[..len].to_vec(), capture_time_us: frame.capture_time_us(), sequence: frame.sequence() })
    }
}

/// Opus decoder producing 48 kHz f32 frames.
pub struct OpusDecoder {
    inner: opus::Decoder,
    channels: u16,
    pcm: Vec<f32>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").field("channels", &self.channels).finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// # Errors
    /// [`MediaError::InvalidConfig`] for unsupported channels.
    pub fn new(channels: u16) -> Result<Self, MediaError> {
        let inner = opus::Decoder::new(OPUS_SAMPLE_RATE_HZ, opus_channels(channels)?).map_err(opus_err("opus_decoder_create"))?;
        // Room for the longest Opus packet (120 ms).
        Ok(Self { inner, channels, pcm: vec![0.0; 5760 * usize::from(channels)] })
    }

    /// Decodes a packet; the frame inherits the packet's capture time and sequence.
    ///
    /// # Errors
    /// [`MediaError::Codec`] for a corrupt packet.
    pub fn decode(&mut self, packet: &EncodedAudioFrame) -> Result<AudioFrame, MediaError> {
        self.decode_bytes(Some(&packet.data), false, packet.capture_time_us, packet.sequence)
    }

    /// Decodes bytes from the network. `None` conceals a lost packet; `fec = true` with
    /// the *next* packet recovers the lost one from its in-band FEC data.
    ///
    /// # Errors
    /// [`MediaError::Codec`] for a corrupt packet.
    pub fn decode_bytes(
        &mut self,
        packet: Option<&[u8]>,
        fec: bool,
        capture_time_us: u64,
        sequence: u64,
    ) -> Result<AudioFrame, MediaError> {
        let channels = usize::from(self.channels);
        let samples_per_channel = match packet {
            // FEC rebuilds the lost packet before this one: exactly one 20 ms frame too.
            Some(data) if fec => self.inner.decode_float(data, &mut self.pcm[..OPUS_FRAME_SAMPLES * channels], true),
            Some(data) => self.inner.decode_float(data, &mut self.pcm, false),
            // Concealment: ask for exactly one 20 ms frame.
            None => self.inner.decode_float(&[], &mut self.pcm[..OPUS_FRAME_SAMPLES * channels], false),
        }
        .map_err(opus_err("opus_decode"))?;
        AudioFrame::new(
            AudioSamples::F32(self.pcm[..samples_per_channel * channels].to_vec()),
            OPUS_SAMPLE_RATE_HZ,
            self.channels,
            capture_time_us,
            sequence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_frames_are_rejected() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        let ten_ms = AudioFrame::silence(480, OPUS_SAMPLE_RATE_HZ, 1, 0, 0);
        assert!(enc.encode(&ten_ms).is_err());
        let stereo = AudioFrame::silence(OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ, 2, 0, 0);
        assert!(enc.encode(&stereo).is_err());
        assert!(OpusEncoder::new(OpusConfig { channels: 3, ..OpusConfig::default() }).is_err());
    }

    #[test]
    fn silence_with_dtx_gives_tiny_packets_and_concealment_works() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        let mut dec = OpusDecoder::new(1).expect("decoder");
        let mut sizes = Vec::new();
        for i in 0..50 {
            let pkt = enc.encode(&AudioFrame::silence(OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ, 1, i * 20_000, i)).expect("encode");
            sizes.push(pkt.data.len());
            let pcm = dec.decode(&pkt).expect("decode");
            assert_eq!(pcm.samples_per_channel(), OPUS_FRAME_SAMPLES);
        }
        // After the hangover only 1-byte DTX packets, plus a comfort-noise refresh
        // every 400 ms.
        let big = sizes[15..].iter().filter(|&&s| s > 3).count();
        assert!(big <= 2, "DTX packets: {sizes:?}");
        let concealed = dec.decode_bytes(None, false, 0, 0).expect("plc");
        assert_eq!(concealed.samples_per_channel(), OPUS_FRAME_SAMPLES);
    }
}
