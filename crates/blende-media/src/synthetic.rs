//! Synthetic devices for tests, demos and "is my pipeline working" checks: a
//! test-pattern camera whose pictures carry their frame counter and capture time
//! in a form that survives lossy coding, and a tone microphone, with helpers that
//! read those back from decoded media.

use std::f64::consts::TAU;

use crate::frame::{AudioFrame, AudioSamples, PixelFormat, VideoFrame, chroma_dims};

/// Bits of the stamp: 32 of sequence, 48 of capture time (µs, ~8.9 years), 16 of CRC.
const STAMP_BITS: usize = 96;
/// Blocks per row of the stamp band (two rows).
const STAMP_BLOCKS_PER_ROW: usize = 48;
const STAMP_ROWS: usize = 2;
const WHITE_Y: u8 = 235;
const BLACK_Y: u8 = 16;

/// Smallest picture that still carries a readable stamp (2 px blocks).
pub const MIN_PATTERN_WIDTH: u32 = (STAMP_BLOCKS_PER_ROW * 2) as u32;

fn crc16(bits: u128) -> u16 {
    // CRC-16/CCITT over the 80 payload bits, with a non-zero start so an all-black
    // band (a black frame) never reads as a valid stamp.
    let mut crc: u16 = 0x1D0F;
    for i in (0..80).rev() {
        let bit = ((bits >> i) & 1) as u16;
        let top = (crc >> 15) & 1;
        crc <<= 1;
        if top ^ bit == 1 {
            crc ^= 0x1021;
        }
    }
    crc ^ 0xA5A5
}

fn stamp_bits(sequence: u32, capture_time_us: u64) -> u128 {
    let payload = (u128::from(sequence) << 48) | u128::from(capture_time_us & 0xFFFF_FFFF_FFFF);
    (payload << 16) | u128::from(crc16(payload))
}

/// Side of one stamp block in pixels for a picture this wide.
fn block_px(width: u32) -> usize {
    (width as usize / STAMP_BLOCKS_PER_ROW).max(1)
}

/// Frame counter and capture time read back from a (decoded) test-pattern picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatternStamp {
    /// Low 32 bits of the source's sequence number.
    pub sequence: u32,
    /// Low 48 bits of the capture time in µs.
    pub capture_time_us: u64,
}

/// A camera that draws a test pattern: a band of big black/white blocks encoding
/// the frame counter and capture time, over colour bars with a moving square.
#[derive(Debug, Clone)]
pub struct TestPatternCamera {
    width: u32,
    height: u32,
    frame_rate_fps: u32,
    next_sequence: u64,
}

impl TestPatternCamera {
    /// Widths below [`MIN_PATTERN_WIDTH`] are raised to it; heights to fit the stamp.
    #[must_use]
    pub fn new(width: u32, height: u32, frame_rate_fps: u32) -> Self {
        let width = width.max(MIN_PATTERN_WIDTH) & !1;
        let min_height = (block_px(width) * STAMP_ROWS * 2) as u32;
        Self { width, height: height.max(min_height) & !1, frame_rate_fps: frame_rate_fps.max(1), next_sequence: 0 }
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
    pub fn frame_interval_us(&self) -> u64 {
        1_000_000 / u64::from(self.frame_rate_fps)
    }

    /// Next picture (I420), numbered consecutively, stamped with `capture_time_us`.
    pub fn next_frame(&mut self, capture_time_us: u64) -> VideoFrame {
        let seq = self.next_sequence;
        self.next_sequence += 1;
        render_i420(self.width, self.height, seq, capture_time_us)
    }
}

/// Draws the test pattern for frame `sequence` directly in I420.
#[must_use]
pub fn render_i420(width: u32, height: u32, sequence: u64, capture_time_us: u64) -> VideoFrame {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = chroma_dims(width, height);
    let mut data = vec![0u8; PixelFormat::I420.buffer_len(width, height)];
    let (yp, uv) = data.split_at_mut(w * h);
    let (up, vp) = uv.split_at_mut(cw * ch);

    // Background: eight vertical bars of gentle luma/chroma steps plus a vertical
    // gradient, so there is detail to code but nothing pathological.
    for y in 0..h {
        for x in 0..w {
            let bar = (x * 8 / w) as u8;
            yp[y * w + x] = 40 + bar * 20 + (y * 40 / h) as u8;
        }
    }
    for y in 0..ch {
        for x in 0..cw {
            let bar = (x * 8 / cw) as u8;
            up[y * cw + x] = 128u8.wrapping_add(bar * 8).wrapping_sub(32);
            vp[y * cw + x] = 160u8.wrapping_sub(bar * 8);
        }
    }
    // Moving square: one block size per frame across, bouncing vertically.
    let block = block_px(width);
    let band_h = block * STAMP_ROWS;
    let side = (h / 4).max(2);
    let travel_x = w.saturating_sub(side).max(1);
    let travel_y = h.saturating_sub(side + band_h * 2).max(1);
    let sx = (sequence as usize * 8) % travel_x;
    let phase = (sequence as usize * 5) % (2 * travel_y);
    let sy = band_h * 2 + if phase < travel_y { phase } else { 2 * travel_y - phase };
    for y in sy..(sy + side).min(h) {
        for x in sx..(sx + side).min(w) {
            yp[y * w + x] = 200;
        }
    }
    for y in sy / 2..((sy + side) / 2).min(ch) {
        for x in sx / 2..((sx + side) / 2).min(cw) {
            up[y * cw + x] = 60;
            vp[y * cw + x] = 200;
        }
    }
    // Stamp band at the top: neutral chroma so only luma carries bits.
    let bits = stamp_bits(sequence as u32, capture_time_us);
    for i in 0..STAMP_BITS {
        let (row, col) = (i / STAMP_BLOCKS_PER_ROW, i % STAMP_BLOCKS_PER_ROW);
        let bit = (bits >> (STAMP_BITS - 1 - i)) & 1 == 1;
        let value = if bit { WHITE_Y } else { BLACK_Y };
        for y in row * block..(row + 1) * block {
            yp[y * w + col * block..y * w + (col + 1) * block].fill(value);
        }
    }
    for y in 0..band_h.div_ceil(2).min(ch) {
        up[y * cw..y * cw + (block * STAMP_BLOCKS_PER_ROW).div_ceil(2).min(cw)].fill(128);
        vp[y * cw..y * cw + (block * STAMP_BLOCKS_PER_ROW).div_ceil(2).min(cw)].fill(128);
    }
    VideoFrame::new(width, height, PixelFormat::I420, data, capture_time_us, sequence)
        .unwrap_or_else(|_| unreachable!("buffer sized from the format"))
}

/// Reads the stamp back from a picture in any format; `None` when there is no valid
/// stamp (a black frame, another source, or damage beyond the CRC).
#[must_use]
pub fn read_stamp(frame: &VideoFrame) -> Option<PatternStamp> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let block = block_px(frame.width());
    if block * STAMP_BLOCKS_PER_ROW > w || block * STAMP_ROWS > h {
        return None;
    }
    let luma = |x: usize, y: usize| -> u32 {
        match frame.format() {
            PixelFormat::I420 => u32::from(frame.data()[y * w + x]),
            PixelFormat::Rgba | PixelFormat::Bgra => {
                let p = &frame.data()[(y * w + x) * 4..];
                // Green dominates luma; R and B have equal weight here so byte order
                // does not matter.
                (u32::from(p[0]) + 2 * u32::from(p[1]) + u32::from(p[2])) / 4
            }
        }
    };
    // Average the inner half of each block: edges blur under lossy coding.
    let margin = block / 4;
    let mut bits: u128 = 0;
    for i in 0..STAMP_BITS {
        let (row, col) = (i / STAMP_BLOCKS_PER_ROW, i % STAMP_BLOCKS_PER_ROW);
        let (x0, y0) = (col * block + margin, row * block + margin);
        let (x1, y1) = ((col + 1) * block - margin, (row + 1) * block - margin);
        let (mut sum, mut n) = (0u32, 0u32);
        for y in y0..y1.max(y0 + 1) {
            for x in x0..x1.max(x0 + 1) {
                sum += luma(x, y);
                n += 1;
            }
        }
        let threshold = (u32::from(WHITE_Y) + u32::from(BLACK_Y)) / 2;
        bits = (bits << 1) | u128::from(sum / n.max(1) > threshold);
    }
    let payload = bits >> 16;
    if crc16(payload) != (bits & 0xFFFF) as u16 {
        return None;
    }
    Some(PatternStamp { sequence: (payload >> 48) as u32, capture_time_us: (payload & 0xFFFF_FFFF_FFFF) as u64 })
}

/// A microphone that plays a sine tone at a fixed frequency and level, steady or swelling in
/// syllables ([`ToneMicrophone::with_syllables`]).
#[derive(Debug, Clone)]
pub struct ToneMicrophone {
    frequency_hz: f64,
    amplitude: f64,
    sample_rate_hz: u32,
    channels: u16,
    phase: f64,
    /// Syllables per second and their phase; `None`: a steady tone.
    syllables: Option<(f64, f64)>,
    next_sequence: u64,
}

/// The syllable envelope swings between these (its mean square is 0.403 75).
const SYLLABLE_FLOOR: f64 = 0.55;
const SYLLABLE_SWING: f64 = 0.45;

impl ToneMicrophone {
    /// `level_dbfs` is the RMS level relative to a full-scale sine (0 dBFS = peak 1.0).
    #[must_use]
    pub fn new(frequency_hz: f64, level_dbfs: f64, sample_rate_hz: u32, channels: u16) -> Self {
        Self {
            frequency_hz,
            amplitude: 10f64.powf(level_dbfs / 20.0).min(1.0),
            sample_rate_hz: sample_rate_hz.max(1),
            channels: channels.max(1),
            phase: 0.0,
            syllables: None,
            next_sequence: 0,
        }
    }

    /// The tone swells and fades `per_second` times a second, at the same RMS level: a voice
    /// codec's activity detection takes it for speech (a steady sine reads as background
    /// noise, so an encoder spends no in-band FEC on it).
    #[must_use]
    pub fn with_syllables(mut self, per_second: f64) -> Self {
        let mean_square = SYLLABLE_FLOOR * SYLLABLE_FLOOR + SYLLABLE_SWING * SYLLABLE_SWING / 2.0;
        self.amplitude = (self.amplitude / mean_square.sqrt()).min(1.0);
        self.syllables = Some((per_second, 0.0));
        self
    }

    /// Writes the next interleaved f32 samples into `out` (same tone on every channel).
    pub fn fill(&mut self, out: &mut [f32]) {
        let rate = f64::from(self.sample_rate_hz);
        let step = TAU * self.frequency_hz / rate;
        for frame in out.chunks_mut(usize::from(self.channels)) {
            let envelope = match &mut self.syllables {
                Some((per_second, phase)) => {
                    let e = SYLLABLE_FLOOR + SYLLABLE_SWING * phase.sin();
                    *phase = (*phase + TAU * *per_second / rate) % TAU;
                    e
                }
                None => 1.0,
            };
            let s = (self.amplitude * envelope * self.phase.sin()) as f32;
            frame.fill(s);
            self.phase = (self.phase + step) % TAU;
        }
    }

    /// Next block of `samples_per_channel` samples, stamped with `capture_time_us`.
    pub fn next_frame(&mut self, samples_per_channel: usize, capture_time_us: u64) -> AudioFrame {
        let mut samples = vec![0.0f32; samples_per_channel * usize::from(self.channels)];
        self.fill(&mut samples);
        let seq = self.next_sequence;
        self.next_sequence += 1;
        AudioFrame::new(AudioSamples::F32(samples), self.sample_rate_hz, self.channels, capture_time_us, seq)
            .unwrap_or_else(|_| unreachable!("length is a multiple of channels"))
    }
}

/// RMS level in dBFS relative to a full-scale sine (a full-scale sine reads 0 dB;
/// digital silence reads `f64::NEG_INFINITY`).
#[must_use]
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let mean_sq = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    if mean_sq == 0.0 {
        return f64::NEG_INFINITY;
    }
    // A full-scale sine has RMS 1/sqrt(2): add 3.01 dB so it reads 0 dBFS.
    10.0 * mean_sq.log10() + 20.0 * std::f64::consts::SQRT_2.log10()
}

/// Frequency of the dominant tone in mono samples, from interpolated upward zero
/// crossings; `None` with fewer than two crossings.
#[must_use]
pub fn measure_frequency_hz(samples: &[f32], sample_rate_hz: u32) -> Option<f64> {
    let mut first: Option<f64> = None;
    let mut last = 0.0;
    let mut count = 0u32;
    for (i, pair) in samples.windows(2).enumerate() {
        let (a, b) = (f64::from(pair[0]), f64::from(pair[1]));
        if a < 0.0 && b >= 0.0 {
            let t = i as f64 + (-a / (b - a));
            if first.is_none() {
                first = Some(t);
            }
            last = t;
            count += 1;
        }
    }
    let first = first?;
    if count < 2 || last <= first {
        return None;
    }
    Some(f64::from(count - 1) * f64::from(sample_rate_hz) / (last - first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::to_rgba;

    #[test]
    fn stamp_round_trips_on_raw_frames() {
        for (w, h) in [(1280, 720), (640, 360), (96, 48), (10, 10)] {
            let mut cam = TestPatternCamera::new(w, h, 30);
            for i in 0..3u64 {
                let t = 1_234_567_890 + i * 33_333;
                let f = cam.next_frame(t);
                let stamp = read_stamp(&f).expect("stamp");
                assert_eq!(stamp, PatternStamp { sequence: i as u32, capture_time_us: t });
                assert_eq!(read_stamp(&to_rgba(&f)), Some(stamp));
            }
        }
    }

    #[test]
    fn black_frames_have_no_stamp() {
        assert_eq!(read_stamp(&VideoFrame::black(1280, 720, PixelFormat::I420, 5, 5)), None);
        assert_eq!(read_stamp(&VideoFrame::black(1280, 720, PixelFormat::Rgba, 5, 5)), None);
    }

    #[test]
    fn tone_measures_back() {
        let mut mic = ToneMicrophone::new(440.0, -12.0, 48_000, 1);
        let f = mic.next_frame(48_000, 0).samples().to_f32();
        let hz = measure_frequency_hz(&f, 48_000).expect("frequency");
        assert!((hz - 440.0).abs() < 0.05, "{hz}");
        assert!((rms_dbfs(&f) + 12.0).abs() < 0.01, "{}", rms_dbfs(&f));
        assert_eq!(rms_dbfs(&[0.0; 10]), f64::NEG_INFINITY);
        // In syllables: the same pitch and level over whole syllables, but not steady.
        let mut voice = ToneMicrophone::new(440.0, -12.0, 48_000, 1).with_syllables(4.0);
        let f = voice.next_frame(48_000, 0).samples().to_f32();
        assert!((measure_frequency_hz(&f, 48_000).expect("frequency") - 440.0).abs() < 0.05);
        assert!((rms_dbfs(&f) + 12.0).abs() < 0.05, "{}", rms_dbfs(&f));
        let quarter = |k: usize| rms_dbfs(&f[k * 6000..(k + 1) * 6000]);
        assert!(quarter(0) - quarter(1) > 6.0, "swells and fades: {} vs {}", quarter(0), quarter(1));
    }
}
