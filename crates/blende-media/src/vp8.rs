//! VP8 encoder and decoder: a small safe wrapper over libvpx (`vpx_sys`).
//!
//! Tuned for real-time conferencing: one pass, CBR, `g_lag_in_frames = 0` (one
//! packet out per picture in, so a packet always belongs to the picture just
//! given), realtime deadline, cpu_used -6, two threads, keyframe on request (for
//! RTCP PLI/FIR), and a screen-content mode for shared windows.

// libvpx is a C library: calling it needs `unsafe`. All of the crate's unsafe code
// lives in this module so it can be reviewed in one place; the public API is safe.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_int, c_long, c_uint, c_ulong};
use std::ptr;

use vpx_sys as ffi;

use crate::MediaError;
use crate::frame::{PixelFormat, VideoFrame, chroma_dims};

/// What the encoder is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ContentKind {
    /// Camera pictures: natural images, motion everywhere.
    #[default]
    Camera,
    /// Shared windows: sharp text, mostly static, sudden changes.
    Screen,
}

/// Settings for [`Vp8Encoder::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8EncoderConfig {
    pub width: u32,
    pub height: u32,
    pub bitrate_bps: u32,
    pub frame_rate_fps: u32,
    pub threads: u32,
    /// libvpx speed: negative values are the real-time speeds (-16 fastest).
    pub cpu_used: i32,
    pub content: ContentKind,
}

impl Vp8EncoderConfig {
    /// Conferencing defaults for a camera of the given size at 30 fps.
    #[must_use]
    pub fn camera(width: u32, height: u32, bitrate_bps: u32) -> Self {
        Self { width, height, bitrate_bps, frame_rate_fps: 30, threads: 2, cpu_used: -6, content: ContentKind::Camera }
    }

    /// Defaults for a shared window (screen-content mode, 15 fps).
    #[must_use]
    pub fn screen(width: u32, height: u32, bitrate_bps: u32) -> Self {
        Self { frame_rate_fps: 15, content: ContentKind::Screen, ..Self::camera(width, height, bitrate_bps) }
    }
}

/// One compressed VP8 frame.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedVideoFrame {
    pub data: Vec<u8>,
    pub is_keyframe: bool,
    /// Capture instant of the picture this frame was coded from.
    pub capture_time_us: u64,
    pub sequence: u64,
}

impl std::fmt::Debug for EncodedVideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedVideoFrame")
            .field("len", &self.data.len())
            .field("is_keyframe", &self.is_keyframe)
            .field("capture_time_us", &self.capture_time_us)
            .field("sequence", &self.sequence)
            .finish()
    }
}

fn check(what: &'static str, err: ffi::vpx_codec_err_t) -> Result<(), MediaError> {
    if err == ffi::vpx_codec_err_t::VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: vpx_codec_err_to_string returns a pointer to a static, NUL-terminated
    // string for every error value (an "Unrecognized error code" string otherwise).
    let detail = unsafe { CStr::from_ptr(ffi::vpx_codec_err_to_string(err)) };
    Err(MediaError::Codec { what, detail: detail.to_string_lossy().into_owned() })
}

/// A VP8 encoder. Feed I420 pictures of the configured size.
pub struct Vp8Encoder {
    // Boxed: libvpx keeps pointers to the context and configuration, so they must
    // not move while the encoder lives.
    ctx: Box<ffi::vpx_codec_ctx_t>,
    cfg: Box<ffi::vpx_codec_enc_cfg_t>,
    config: Vp8EncoderConfig,
    keyframe_requested: bool,
    next_pts: i64,
}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder").field("config", &self.config).finish_non_exhaustive()
    }
}

// SAFETY: a libvpx context has no thread affinity; it only must not be used from two
// threads at once, which `&mut self` on every method guarantees.
unsafe impl Send for Vp8Encoder {}

/// libvpx's time base: microseconds, the unit of `capture_time_us`.
const TIMEBASE_DEN: c_int = 1_000_000;

impl Vp8Encoder {
    /// # Errors
    /// [`MediaError::Codec`] when libvpx rejects the configuration,
    /// [`MediaError::InvalidConfig`] for a zero size, rate or bitrate.
    pub fn new(config: Vp8EncoderConfig) -> Result<Self, MediaError> {
        if config.width == 0
            || config.height == 0
            || config.width > 16_383
            || config.height > 16_383
            || config.frame_rate_fps == 0
            || config.bitrate_bps < 1000
        {
            return Err(MediaError::InvalidConfig("VP8 size, frame rate or bitrate out of range"));
        }
        // The config holds C enums for which zero is not a valid value, so it starts
        // uninitialised and libvpx writes every field.
        let mut default_cfg = std::mem::MaybeUninit::<ffi::vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: vpx_codec_vp8_cx returns a pointer to libvpx's static interface;
        // `default_cfg` is writable memory of the right size and alignment.
        check("vpx_codec_enc_config_default", unsafe {
            ffi::vpx_codec_enc_config_default(ffi::vpx_codec_vp8_cx(), default_cfg.as_mut_ptr(), 0)
        })?;
        // SAFETY: vpx_codec_enc_config_default succeeded, so it filled the whole struct.
        let mut cfg = Box::new(unsafe { default_cfg.assume_init() });
        // SAFETY: vpx_codec_ctx_t is a C struct whose fields (pointers, integers, a
        // union of pointers, and an error enum whose 0 is VPX_CODEC_OK) are all valid
        // as zero bytes; libvpx initialises it below.
        let mut ctx: Box<ffi::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_threads = config.threads.max(1);
        cfg.g_timebase = ffi::vpx_rational { num: 1, den: TIMEBASE_DEN };
        cfg.g_lag_in_frames = 0;
        cfg.g_pass = ffi::vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_error_resilient = 1; // VPX_ERROR_RESILIENT_DEFAULT: survive packet loss
        cfg.rc_end_usage = ffi::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        // Never drop pictures: each captured frame yields one packet, which keeps
        // the frame counter test and the kill-switch accounting exact.
        cfg.rc_dropframe_thresh = 0;
        cfg.kf_mode = ffi::vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = 3000;

        // SAFETY: ctx and cfg are valid, boxed (stable addresses for the encoder's
        // lifetime), the interface is libvpx's static VP8 encoder, and the ABI
        // version is the one the bindings were generated for.
        check("vpx_codec_enc_init_ver", unsafe {
            ffi::vpx_codec_enc_init_ver(&mut *ctx, ffi::vpx_codec_vp8_cx(), &*cfg, 0, ffi::VPX_ENCODER_ABI_VERSION as c_int)
        })?;
        let mut encoder = Self { ctx, cfg, config, keyframe_requested: false, next_pts: 0 };
        encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_CPUUSED, config.cpu_used)?;
        encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
        encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT, 300)?;
        match config.content {
            ContentKind::Camera => {
                encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_SCREEN_CONTENT_MODE, 0)?;
                encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 1)?;
            }
            ContentKind::Screen => {
                // 1 = screen content without the extra frame dropping of mode 2.
                encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_SCREEN_CONTENT_MODE, 1)?;
                encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 100)?;
                encoder.control(ffi::vp8e_enc_control_id::VP8E_SET_TUNING, ffi::vp8e_tuning::VP8_TUNE_SSIM as c_int)?;
            }
        }
        Ok(encoder)
    }

    fn control(&mut self, id: ffi::vp8e_enc_control_id, value: c_int) -> Result<(), MediaError> {
        // SAFETY: the context is initialised; every control used here takes a single
        // `int` argument, which is what the variadic call passes.
        check("vpx_codec_control", unsafe { ffi::vpx_codec_control_(&mut *self.ctx, id as c_int, value) })
    }

    #[must_use]
    pub fn config(&self) -> &Vp8EncoderConfig {
        &self.config
    }

    /// Changes the CBR target (from congestion control). Takes effect on the next frame.
    ///
    /// # Errors
    /// [`MediaError::Codec`] when libvpx rejects the new configuration.
    pub fn set_bitrate_bps(&mut self, bitrate_bps: u32) -> Result<(), MediaError> {
        self.cfg.rc_target_bitrate = (bitrate_bps / 1000).max(1);
        // SAFETY: context initialised; cfg is the boxed config the encoder was
        // created with, only the target bitrate changed.
        check("vpx_codec_enc_config_set", unsafe { ffi::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) })?;
        self.config.bitrate_bps = bitrate_bps;
        Ok(())
    }

    /// Makes the next encoded frame a keyframe (answer to a PLI or FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Encodes one I420 picture of the configured size. With lag 0 and frame dropping
    /// off, this returns exactly one frame in practice.
    ///
    /// # Errors
    /// [`MediaError::InvalidFrame`] for a wrong format or size, [`MediaError::Codec`] when
    /// libvpx fails.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Vec<EncodedVideoFrame>, MediaError> {
        if frame.format() != PixelFormat::I420 {
            return Err(MediaError::InvalidFrame("VP8 encoder needs I420"));
        }
        if frame.width() != self.config.width || frame.height() != self.config.height {
            return Err(MediaError::InvalidFrame("picture size differs from encoder size"));
        }
        let (y, u, v) = frame.i420_planes().ok_or(MediaError::InvalidFrame("VP8 encoder needs I420"))?;
        let (cw, _) = chroma_dims(frame.width(), frame.height());

        // SAFETY: every field of vpx_image_t is valid as zero bytes (pointers,
        // integers, and enums whose 0 is a declared value); filled in just below.
        let mut img: ffi::vpx_image_t = unsafe { std::mem::zeroed() };
        img.fmt = ffi::vpx_img_fmt::VPX_IMG_FMT_I420;
        img.cs = ffi::vpx_color_space::VPX_CS_BT_601;
        img.range = ffi::vpx_color_range::VPX_CR_STUDIO_RANGE;
        img.w = frame.width();
        img.h = frame.height();
        img.d_w = frame.width();
        img.d_h = frame.height();
        img.bit_depth = 8;
        img.bps = 12;
        img.x_chroma_shift = 1;
        img.y_chroma_shift = 1;
        // libvpx only reads the input planes; the *mut is a C API artefact.
        img.planes = [y.as_ptr().cast_mut(), u.as_ptr().cast_mut(), v.as_ptr().cast_mut(), ptr::null_mut()];
        img.stride = [frame.width() as c_int, cw as c_int, cw as c_int, 0];

        let pts = self.next_pts.max(i64::try_from(frame.capture_time_us()).unwrap_or(i64::MAX));
        let duration_us = 1_000_000 / u64::from(self.config.frame_rate_fps);
        // At least 1 ms between pictures, whatever the stamps say: rate control
        // divides by these intervals.
        self.next_pts = pts.saturating_add(1_000);
        let flags: c_long = if std::mem::take(&mut self.keyframe_requested) { ffi::VPX_EFLAG_FORCE_KF as c_long } else { 0 };
        // SAFETY: the context is initialised; `img` describes planes borrowed from
        // `frame`, which outlives this call, with strides and sizes matching their
        // lengths (checked by VideoFrame::new and the size check above). With
        // g_lag_in_frames = 0 libvpx does not keep the picture after returning.
        check("vpx_codec_encode", unsafe {
            ffi::vpx_codec_encode(&mut *self.ctx, &img, pts, duration_us as c_ulong, flags, c_ulong::from(ffi::VPX_DL_REALTIME))
        })?;

        let mut out = Vec::with_capacity(1);
        let mut iter: ffi::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: context initialised; `iter` is the iterator libvpx expects
            // (null on the first call, then whatever it stored).
            let pkt = unsafe { ffi::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: non-null packets point to a packet owned by the context, valid
            // until the next encode call; we copy what we need right away.
            let pkt = unsafe { &*pkt };
            if pkt.kind != ffi::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: `kind` says the `frame` member of the union is the active one.
            let f = unsafe { pkt.data.frame };
            let data = if f.buf.is_null() || f.sz == 0 {
                Vec::new()
            } else {
                // SAFETY: libvpx guarantees `buf` points to `sz` readable bytes.
                unsafe { std::slice::from_raw_parts(f.buf.cast::<u8>(), f.sz as usize) }.to_vec()
            };
            out.push(EncodedVideoFrame {
                data,
                is_keyframe: f.flags & ffi::VPX_FRAME_IS_KEY != 0,
                capture_time_us: frame.capture_time_us(),
                sequence: frame.sequence(),
            });
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` (a failed init returns before
        // `Self` exists) and is destroyed exactly once, here.
        let _ = unsafe { ffi::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// The largest picture a decoder accepts by default: 4096 × 2304 (above 4K UHD). VP8 allows
/// 16383 × 16383, which would make one hostile keyframe cost the receiver 400 MB.
pub const MAX_DECODED_PIXELS: u32 = 4096 * 2304;

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1: 3-byte frame tag, start code
/// `9d 01 2a`, then 14-bit width and height with 2 scaling bits each); `None` for an
/// interframe or a header too short or malformed to be a keyframe.
#[must_use]
pub fn keyframe_size(data: &[u8]) -> Option<(u16, u16)> {
    let header = data.get(..10)?;
    if header[0] & 1 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    Some((width, height))
}

/// A VP8 decoder producing I420 pictures.
pub struct Vp8Decoder {
    ctx: Box<ffi::vpx_codec_ctx_t>,
    max_pixels: u32,
}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder").finish_non_exhaustive()
    }
}

// SAFETY: as for the encoder: no thread affinity, exclusive use through `&mut self`.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    /// # Errors
    /// [`MediaError::Codec`] when libvpx cannot create the decoder.
    pub fn new(threads: u32) -> Result<Self, MediaError> {
        // SAFETY: all-zero is a valid empty context (see Vp8Encoder::new); libvpx
        // initialises it.
        let mut ctx: Box<ffi::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        let cfg = ffi::vpx_codec_dec_cfg { threads: threads.max(1) as c_uint, w: 0, h: 0 };
        // SAFETY: ctx is valid and boxed; cfg is only read during init; the interface
        // is libvpx's static VP8 decoder and the ABI version matches the bindings.
        check("vpx_codec_dec_init_ver", unsafe {
            ffi::vpx_codec_dec_init_ver(&mut *ctx, ffi::vpx_codec_vp8_dx(), &cfg, 0, ffi::VPX_DECODER_ABI_VERSION as c_int)
        })?;
        Ok(Self { ctx, max_pixels: MAX_DECODED_PIXELS })
    }

    /// Refuses keyframes whose picture has more pixels than this (interframes keep the size of
    /// the keyframe before them).
    #[must_use]
    pub fn with_max_pixels(mut self, max_pixels: u32) -> Self {
        self.max_pixels = max_pixels;
        self
    }

    /// Decodes one compressed frame; the picture inherits its capture time and sequence.
    ///
    /// # Errors
    /// [`MediaError::Codec`] for a corrupt or unsupported frame.
    pub fn decode(&mut self, frame: &EncodedVideoFrame) -> Result<Option<VideoFrame>, MediaError> {
        self.decode_bytes(&frame.data, frame.capture_time_us, frame.sequence)
    }

    /// Decodes one compressed frame given as bytes (as received from the network).
    ///
    /// # Errors
    /// [`MediaError::Codec`] for a corrupt or unsupported frame.
    /// [`MediaError::InvalidFrame`] for a keyframe larger than the decoder's limit, refused
    /// before libvpx allocates anything for it.
    pub fn decode_bytes(&mut self, data: &[u8], capture_time_us: u64, sequence: u64) -> Result<Option<VideoFrame>, MediaError> {
        if let Some((w, h)) = keyframe_size(data)
            && u32::from(w) * u32::from(h) > self.max_pixels
        {
            return Err(MediaError::InvalidFrame("picture larger than this receiver accepts"));
        }
        let len = c_uint::try_from(data.len()).map_err(|_| MediaError::InvalidFrame("compressed frame too large"))?;
        // SAFETY: context initialised; `data` is readable for `len` bytes for the
        // duration of the call (libvpx copies what it keeps).
        check("vpx_codec_decode", unsafe { ffi::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0) })?;
        let mut iter: ffi::vpx_codec_iter_t = ptr::null();
        let mut last = None;
        loop {
            // SAFETY: context initialised; iterator protocol as documented by libvpx.
            let img = unsafe { ffi::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // SAFETY: non-null images are owned by the decoder and stay valid until
            // the next decode call; we copy the planes out before returning.
            let img = unsafe { &*img };
            last = Some(copy_image(img, capture_time_us, sequence)?);
        }
        Ok(last)
    }
}

fn copy_image(img: &ffi::vpx_image_t, capture_time_us: u64, sequence: u64) -> Result<VideoFrame, MediaError> {
    if img.fmt != ffi::vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(MediaError::InvalidFrame("decoder produced a format other than I420"));
    }
    let (w, h) = (img.d_w, img.d_h);
    let (cw, ch) = chroma_dims(w, h);
    let mut out = Vec::with_capacity(PixelFormat::I420.buffer_len(w, h));
    for (plane, (pw, ph)) in [(0usize, (w as usize, h as usize)), (1, (cw, ch)), (2, (cw, ch))] {
        let stride = usize::try_from(img.stride[plane]).map_err(|_| MediaError::InvalidFrame("negative stride from decoder"))?;
        if img.planes[plane].is_null() || stride < pw {
            return Err(MediaError::InvalidFrame("decoder image without plane"));
        }
        for row in 0..ph {
            // SAFETY: libvpx images hold `ph` rows of `stride` bytes per plane, of
            // which the first `pw` are pixels (pw <= stride checked above).
            let src = unsafe { std::slice::from_raw_parts(img.planes[plane].add(row * stride), pw) };
            out.extend_from_slice(src);
        }
    }
    VideoFrame::new(w, h, PixelFormat::I420, out, capture_time_us, sequence)
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed exactly once here.
        let _ = unsafe { ffi::vpx_codec_destroy(&mut *self.ctx) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An oversized keyframe header is refused before libvpx allocates for it; the decoder
    /// then decodes a real keyframe.
    #[test]
    fn a_huge_keyframe_is_refused_and_decoding_goes_on() {
        let mut huge = vec![0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
        huge.extend_from_slice(&0x3fffu16.to_le_bytes());
        huge.extend_from_slice(&0x3fffu16.to_le_bytes());
        huge.extend_from_slice(&[0u8; 64]);
        assert_eq!(keyframe_size(&huge), Some((16383, 16383)));
        let mut decoder = Vp8Decoder::new(1).expect("decoder");
        assert!(matches!(decoder.decode_bytes(&huge, 0, 0), Err(crate::MediaError::InvalidFrame(_))));

        let mut encoder = Vp8Encoder::new(Vp8EncoderConfig::camera(64, 48, 200_000)).expect("encoder");
        let picture = crate::VideoFrame::black(64, 48, crate::PixelFormat::I420, 0, 0);
        let frames = encoder.encode(&picture).expect("encode");
        let key = frames.first().expect("a keyframe");
        assert_eq!(keyframe_size(&key.data), Some((64, 48)));
        let decoded = decoder.decode_bytes(&key.data, 0, 0).expect("decodes").expect("a picture");
        assert_eq!((decoded.width(), decoded.height()), (64, 48));
        let mut small = Vp8Decoder::new(1).expect("decoder").with_max_pixels(32 * 32);
        assert!(small.decode_bytes(&key.data, 0, 0).is_err(), "a lower limit applies");
    }

    #[test]
    fn rejects_bad_config_and_frames() {
        assert!(Vp8Encoder::new(Vp8EncoderConfig::camera(0, 10, 500_000)).is_err());
        let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(64, 48, 300_000)).expect("encoder");
        let rgba = VideoFrame::black(64, 48, PixelFormat::Rgba, 0, 0);
        assert!(enc.encode(&rgba).is_err());
        let wrong = VideoFrame::black(32, 48, PixelFormat::I420, 0, 0);
        assert!(enc.encode(&wrong).is_err());
        let mut dec = Vp8Decoder::new(1).expect("decoder");
        assert!(dec.decode_bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0, 0).is_err());
    }

    #[test]
    fn odd_sizes_round_trip_and_keyframe_on_request() {
        let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(33, 17, 300_000)).expect("encoder");
        let mut dec = Vp8Decoder::new(1).expect("decoder");
        for i in 0..5u64 {
            if i == 3 {
                enc.request_keyframe();
            }
            let pkts = enc.encode(&VideoFrame::black(33, 17, PixelFormat::I420, i * 33_333, i)).expect("encode");
            assert_eq!(pkts.len(), 1);
            assert_eq!(pkts[0].is_keyframe, i == 0 || i == 3, "frame {i}");
            let pic = dec.decode(&pkts[0]).expect("decode").expect("picture");
            assert_eq!((pic.width(), pic.height(), pic.sequence()), (33, 17, i));
        }
        enc.set_bitrate_bps(200_000).expect("bitrate");
        assert_eq!(enc.config().bitrate_bps, 200_000);
    }

    #[test]
    fn screen_mode_encodes() {
        let mut enc = Vp8Encoder::new(Vp8EncoderConfig::screen(320, 240, 500_000)).expect("encoder");
        let pkts = enc.encode(&VideoFrame::black(320, 240, PixelFormat::I420, 0, 0)).expect("encode");
        assert_eq!(pkts.len(), 1);
    }
}
