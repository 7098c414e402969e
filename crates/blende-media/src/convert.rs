//! Colour conversion between packed RGB(A) and planar I420 (BT.601, limited range),
//! in integer arithmetic so results are identical on every machine.

use crate::frame::{PixelFormat, VideoFrame, chroma_dims};

#[inline]
fn clamp_u8(v: i32) -> u8 {
    // The clamp makes the cast lossless.
    v.clamp(0, 255) as u8
}

#[inline]
fn rgb_to_y(r: i32, g: i32, b: i32) -> i32 {
    ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
}

#[inline]
fn rgb_to_u(r: i32, g: i32, b: i32) -> i32 {
    ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
}

#[inline]
fn rgb_to_v(r: i32, g: i32, b: i32) -> i32 {
    ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128
}

/// A borrowed packed picture (4 bytes per pixel), e.g. a captured window.
#[derive(Debug, Clone, Copy)]
pub struct PackedPicture<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (≥ `width * 4`).
    pub stride_bytes: usize,
    /// [`PixelFormat::Bgra`] or [`PixelFormat::Rgba`].
    pub format: PixelFormat,
}

/// Fits a packed picture into a `canvas_width`×`canvas_height` frame of the same pixel format: scaled down (never up) with
/// its aspect ratio kept, nearest neighbour, centred on black. A shared window changes size
/// while the encoder's does not; this is the step between them.
///
/// # Errors
/// [`crate::MediaError::InvalidFrame`] for a zero size, a short buffer or a 3-plane format.
pub fn letterbox(
    picture: PackedPicture<'_>,
    canvas_width: u32,
    canvas_height: u32,
    capture_time_us: u64,
    sequence: u64,
) -> Result<VideoFrame, crate::MediaError> {
    let PackedPicture { data, width, height, stride_bytes, format } = picture;
    if format == PixelFormat::I420 {
        return Err(crate::MediaError::InvalidFrame("letterbox needs a packed format"));
    }
    let (w, h, cw, ch) = (width as usize, height as usize, canvas_width as usize, canvas_height as usize);
    if w == 0 || h == 0 || cw == 0 || ch == 0 || stride_bytes < w * 4 || data.len() < stride_bytes * (h - 1) + w * 4 {
        return Err(crate::MediaError::InvalidFrame("letterbox: bad source size"));
    }
    // Scale = min(cw/w, ch/h, 1), in integer arithmetic on the output size.
    let (out_w, out_h) = if w <= cw && h <= ch {
        (w, h)
    } else if w * ch >= h * cw {
        (cw, (h * cw / w).max(1))
    } else {
        ((w * ch / h).max(1), ch)
    };
    let (x0, y0) = ((cw - out_w) / 2, (ch - out_h) / 2);
    let mut out = vec![0u8; cw * ch * 4];
    for px in out.chunks_exact_mut(4) {
        px[3] = 255;
    }
    for oy in 0..out_h {
        let sy = oy * h / out_h;
        let src_row = &data[sy * stride_bytes..sy * stride_bytes + w * 4];
        let dst_row = &mut out[((y0 + oy) * cw + x0) * 4..((y0 + oy) * cw + x0 + out_w) * 4];
        for (ox, dst) in dst_row.chunks_exact_mut(4).enumerate() {
            let sx = ox * w / out_w;
            dst.copy_from_slice(&src_row[sx * 4..sx * 4 + 4]);
        }
    }
    VideoFrame::new(canvas_width, canvas_height, format, out, capture_time_us, sequence)
}

/// An I420 picture shrunk to `width` × `height` (each target pixel the mean of the source
/// pixels it covers), written into `out`, whose allocation is reused: the send path calls this
/// for every picture of a stream that stepped down. Returns `None` for a frame that is not
/// I420 or a target larger than the source.
#[must_use]
pub fn shrink_i420(frame: &VideoFrame, width: u32, height: u32, mut out: Vec<u8>) -> Option<VideoFrame> {
    if width == 0 || height == 0 || width > frame.width() || height > frame.height() {
        return None;
    }
    let (y, u, v) = frame.i420_planes()?;
    let (scw, sch) = chroma_dims(frame.width(), frame.height());
    let (dcw, dch) = chroma_dims(width, height);
    out.clear();
    out.resize(PixelFormat::I420.buffer_len(width, height), 0);
    let (dy, duv) = out.split_at_mut(width as usize * height as usize);
    let (du, dv) = duv.split_at_mut(dcw * dch);
    shrink_plane(y, frame.width() as usize, frame.height() as usize, dy, width as usize, height as usize);
    shrink_plane(u, scw, sch, du, dcw, dch);
    shrink_plane(v, scw, sch, dv, dcw, dch);
    VideoFrame::new(width, height, PixelFormat::I420, out, frame.capture_time_us(), frame.sequence()).ok()
}

fn shrink_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    for (dyi, row) in dst.chunks_exact_mut(dw).enumerate().take(dh) {
        let (y0, y1) = (dyi * sh / dh, ((dyi + 1) * sh / dh).max(dyi * sh / dh + 1));
        for (dxi, px) in row.iter_mut().enumerate() {
            let (x0, x1) = (dxi * sw / dw, ((dxi + 1) * sw / dw).max(dxi * sw / dw + 1));
            let mut sum = 0u32;
            for line in src[y0 * sw..y1 * sw].chunks_exact(sw) {
                sum += line[x0..x1].iter().map(|&b| u32::from(b)).sum::<u32>();
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            *px = ((sum + n / 2) / n) as u8;
        }
    }
}

/// Converts any frame to I420; an I420 frame is returned as a clone.
#[must_use]
pub fn to_i420(frame: &VideoFrame) -> VideoFrame {
    let (ri, bi) = match frame.format() {
        PixelFormat::I420 => return frame.clone(),
        PixelFormat::Rgba => (0, 2),
        PixelFormat::Bgra => (2, 0),
    };
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = chroma_dims(frame.width(), frame.height());
    let src = frame.data();
    let mut out = vec![0u8; PixelFormat::I420.buffer_len(frame.width(), frame.height())];
    let (y_plane, uv) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);

    if w % 2 == 0 && h % 2 == 0 {
        // Fast path: two source rows at a time, each 2×2 block read once for Y, U and V.
        let rows = src
            .chunks_exact(w * 8)
            .zip(y_plane.chunks_exact_mut(w * 2))
            .zip(u_plane.chunks_exact_mut(cw).zip(v_plane.chunks_exact_mut(cw)));
        for ((src2, y2), (u_row, v_row)) in rows {
            let (top, bottom) = src2.split_at(w * 4);
            let (y_top, y_bottom) = y2.split_at_mut(w);
            let blocks = top.chunks_exact(8).zip(bottom.chunks_exact(8)).zip(y_top.chunks_exact_mut(2).zip(y_bottom.chunks_exact_mut(2)));
            for (((t, b), (yt, yb)), (u, v)) in blocks.zip(u_row.iter_mut().zip(v_row.iter_mut())) {
                let px = [&t[..4], &t[4..], &b[..4], &b[4..]];
                let (mut r, mut g, mut bl) = (0i32, 0i32, 0i32);
                for (i, p) in px.iter().enumerate() {
                    let (pr, pg, pb) = (i32::from(p[ri]), i32::from(p[1]), i32::from(p[bi]));
                    let y = clamp_u8(rgb_to_y(pr, pg, pb));
                    match i {
                        0 => yt[0] = y,
                        1 => yt[1] = y,
                        2 => yb[0] = y,
                        _ => yb[1] = y,
                    }
                    r += pr;
                    g += pg;
                    bl += pb;
                }
                let (r, g, bl) = ((r + 2) / 4, (g + 2) / 4, (bl + 2) / 4);
                *u = clamp_u8(rgb_to_u(r, g, bl));
                *v = clamp_u8(rgb_to_v(r, g, bl));
            }
        }
    } else {
        i420_general(src, w, h, cw, ch, ri, bi, y_plane, u_plane, v_plane);
    }
    VideoFrame::new(frame.width(), frame.height(), PixelFormat::I420, out, frame.capture_time_us(), frame.sequence())
        .unwrap_or_else(|_| unreachable!("buffer sized from the format"))
}

/// Any size, including odd widths and heights (fewer pixels in the edge blocks).
#[allow(clippy::too_many_arguments)]
fn i420_general(
    src: &[u8],
    w: usize,
    h: usize,
    cw: usize,
    ch: usize,
    ri: usize,
    bi: usize,
    y_plane: &mut [u8],
    u_plane: &mut [u8],
    v_plane: &mut [u8],
) {
    for (row, y_row) in y_plane.chunks_exact_mut(w).enumerate() {
        let src_row = &src[row * w * 4..(row + 1) * w * 4];
        for (px, y) in src_row.chunks_exact(4).zip(y_row.iter_mut()) {
            *y = clamp_u8(rgb_to_y(i32::from(px[ri]), i32::from(px[1]), i32::from(px[bi])));
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            // Average the 2x2 block (fewer pixels at odd edges).
            let (mut r, mut g, mut b, mut n) = (0i32, 0i32, 0i32, 0i32);
            for dy in 0..2 {
                let y = cy * 2 + dy;
                if y >= h {
                    continue;
                }
                for dx in 0..2 {
                    let x = cx * 2 + dx;
                    if x >= w {
                        continue;
                    }
                    let o = (y * w + x) * 4;
                    r += i32::from(src[o + ri]);
                    g += i32::from(src[o + 1]);
                    b += i32::from(src[o + bi]);
                    n += 1;
                }
            }
            let (r, g, b) = ((r + n / 2) / n, (g + n / 2) / n, (b + n / 2) / n);
            u_plane[cy * cw + cx] = clamp_u8(rgb_to_u(r, g, b));
            v_plane[cy * cw + cx] = clamp_u8(rgb_to_v(r, g, b));
        }
    }
}

/// Converts any frame to RGBA; an RGBA frame is returned as a clone.
#[must_use]
pub fn to_rgba(frame: &VideoFrame) -> VideoFrame {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut out = vec![255u8; w * h * 4];
    match frame.format() {
        PixelFormat::Rgba => return frame.clone(),
        PixelFormat::Bgra => {
            for (d, s) in out.chunks_exact_mut(4).zip(frame.data().chunks_exact(4)) {
                d.copy_from_slice(&[s[2], s[1], s[0], s[3]]);
            }
        }
        PixelFormat::I420 => {
            let (cw, _) = chroma_dims(frame.width(), frame.height());
            let (yp, up, vp) = frame.i420_planes().unwrap_or_else(|| unreachable!("format checked above"));
            for y in 0..h {
                for x in 0..w {
                    let c = i32::from(yp[y * w + x]) - 16;
                    let d = i32::from(up[(y / 2) * cw + x / 2]) - 128;
                    let e = i32::from(vp[(y / 2) * cw + x / 2]) - 128;
                    let o = (y * w + x) * 4;
                    out[o] = clamp_u8((298 * c + 409 * e + 128) >> 8);
                    out[o + 1] = clamp_u8((298 * c - 100 * d - 208 * e + 128) >> 8);
                    out[o + 2] = clamp_u8((298 * c + 516 * d + 128) >> 8);
                }
            }
        }
    }
    VideoFrame::new(frame.width(), frame.height(), PixelFormat::Rgba, out, frame.capture_time_us(), frame.sequence())
        .unwrap_or_else(|_| unreachable!("buffer sized from the format"))
}

/// RGBA at most `max_width`×`max_height` (aspect kept, never scaled up), nearest neighbour:
/// for showing a picture in a tile, where converting every pixel of a 720p frame would cost
/// more than drawing it.
#[must_use]
pub fn to_rgba_fit(frame: &VideoFrame, max_width: u32, max_height: u32) -> VideoFrame {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (mw, mh) = (max_width.max(1) as usize, max_height.max(1) as usize);
    if w <= mw && h <= mh {
        return to_rgba(frame);
    }
    let (ow, oh) = if w * mh >= h * mw { (mw, (h * mw / w).max(1)) } else { ((w * mh / h).max(1), mh) };
    let mut out = vec![255u8; ow * oh * 4];
    let data = frame.data();
    for oy in 0..oh {
        let sy = oy * h / oh;
        for ox in 0..ow {
            let sx = ox * w / ow;
            let o = (oy * ow + ox) * 4;
            match frame.format() {
                PixelFormat::Rgba => out[o..o + 4].copy_from_slice(&data[(sy * w + sx) * 4..(sy * w + sx) * 4 + 4]),
                PixelFormat::Bgra => {
                    let p = &data[(sy * w + sx) * 4..(sy * w + sx) * 4 + 4];
                    out[o..o + 4].copy_from_slice(&[p[2], p[1], p[0], p[3]]);
                }
                PixelFormat::I420 => {
                    let (cw, ch) = chroma_dims(frame.width(), frame.height());
                    let c = i32::from(data[sy * w + sx]) - 16;
                    let d = i32::from(data[w * h + (sy / 2) * cw + sx / 2]) - 128;
                    let e = i32::from(data[w * h + cw * ch + (sy / 2) * cw + sx / 2]) - 128;
                    out[o] = clamp_u8((298 * c + 409 * e + 128) >> 8);
                    out[o + 1] = clamp_u8((298 * c - 100 * d - 208 * e + 128) >> 8);
                    out[o + 2] = clamp_u8((298 * c + 516 * d + 128) >> 8);
                }
            }
        }
    }
    VideoFrame::new(ow as u32, oh as u32, PixelFormat::Rgba, out, frame.capture_time_us(), frame.sequence())
        .unwrap_or_else(|_| unreachable!("buffer sized from the format"))
}

/// Peak signal-to-noise ratio of the luma planes of two I420 frames of equal size, in dB.
/// Identical planes give `f64::INFINITY`; `None` when sizes or formats differ.
#[must_use]
pub fn psnr_luma_db(a: &VideoFrame, b: &VideoFrame) -> Option<f64> {
    if a.width() != b.width() || a.height() != b.height() {
        return None;
    }
    let (ya, _, _) = a.i420_planes()?;
    let (yb, _, _) = b.i420_planes()?;
    let sse: f64 = ya
        .iter()
        .zip(yb)
        .map(|(&p, &q)| {
            let d = f64::from(p) - f64::from(q);
            d * d
        })
        .sum();
    if sse == 0.0 {
        return Some(f64::INFINITY);
    }
    let mse = sse / ya.len() as f64;
    Some(10.0 * (255.0 * 255.0 / mse).log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_even_path_matches_the_general_path() {
        let (w, h) = (34usize, 18usize);
        let src: Vec<u8> = (0..w * h * 4).map(|i| (i * 7919 % 251) as u8).collect();
        let frame = VideoFrame::new(w as u32, h as u32, PixelFormat::Bgra, src.clone(), 0, 0).expect("frame");
        let fast = to_i420(&frame);
        let (cw, ch) = chroma_dims(w as u32, h as u32);
        let mut out = vec![0u8; PixelFormat::I420.buffer_len(w as u32, h as u32)];
        let (y, uv) = out.split_at_mut(w * h);
        let (u, v) = uv.split_at_mut(cw * ch);
        i420_general(&src, w, h, cw, ch, 2, 0, y, u, v);
        assert_eq!(fast.data(), &out[..]);
    }

    fn rgba(w: u32, h: u32) -> VideoFrame {
        let mut d = Vec::new();
        for y in 0..h {
            for x in 0..w {
                d.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 90, 255]);
            }
        }
        VideoFrame::new(w, h, PixelFormat::Rgba, d, 7, 3).expect("valid frame")
    }

    #[test]
    fn rgba_i420_rgba_round_trip_is_close() {
        for (w, h) in [(64, 48), (33, 17), (1, 1)] {
            let src = rgba(w, h);
            let back = to_rgba(&to_i420(&src));
            assert_eq!(back.capture_time_us(), 7);
            assert_eq!(back.sequence(), 3);
            let max_err = src.data().iter().zip(back.data()).map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs()).max().unwrap_or(0);
            // Chroma subsampling of a smooth gradient costs a few levels.
            assert!(max_err <= 12, "{w}x{h}: max error {max_err}");
        }
    }

    #[test]
    fn bgra_and_rgba_agree() {
        let src = rgba(16, 8);
        let bgra_data: Vec<u8> = src.data().chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect();
        let bgra = VideoFrame::new(16, 8, PixelFormat::Bgra, bgra_data, 7, 3).expect("valid");
        assert_eq!(to_i420(&src), to_i420(&bgra));
    }

    #[test]
    fn white_and_black_map_to_limited_range() {
        let white = VideoFrame::new(2, 2, PixelFormat::Rgba, vec![255; 16], 0, 0).expect("valid");
        let i420 = to_i420(&white);
        assert_eq!(i420.data(), &[235, 235, 235, 235, 128, 128]);
        let black = VideoFrame::black(2, 2, PixelFormat::Rgba, 0, 0);
        assert_eq!(to_i420(&black).data(), VideoFrame::black(2, 2, PixelFormat::I420, 0, 0).data());
    }

    #[test]
    fn letterbox_keeps_aspect_and_centres() {
        // 8x2 white picture into a 4x4 canvas: 4x1 white row in the middle, black around.
        let src = vec![255u8; 8 * 2 * 4];
        let f = super::letterbox(pic(&src, 8, 2), 4, 4, 7, 3).expect("fits");
        assert_eq!((f.width(), f.height(), f.capture_time_us(), f.sequence()), (4, 4, 7, 3));
        let rows: Vec<u8> = f.data().chunks_exact(16).map(|r| r[0]).collect();
        assert_eq!(rows, vec![0, 255, 0, 0]);
        // Smaller than the canvas: not scaled up, centred.
        let small = super::letterbox(pic(&[9u8; 2 * 2 * 4], 2, 2), 4, 4, 0, 0).expect("fits");
        assert_eq!(small.data()[(4 + 1) * 4], 9);
        assert_eq!(small.data()[0], 0);
        assert!(super::letterbox(pic(&[0u8; 4], 2, 2), 4, 4, 0, 0).is_err());
    }

    #[test]
    fn rgba_fit_scales_down_and_matches_full_conversion() {
        let mut cam = crate::synthetic::TestPatternCamera::new(640, 360, 30);
        let frame = cam.next_frame(0);
        let small = super::to_rgba_fit(&frame, 320, 320);
        assert_eq!((small.width(), small.height()), (320, 180));
        let full = super::to_rgba(&frame);
        // Nearest neighbour: pixel (x, y) of the small one is pixel (2x, 2y) of the full one.
        for (x, y) in [(0usize, 0usize), (100, 50), (319, 179)] {
            let s = &small.data()[(y * 320 + x) * 4..(y * 320 + x) * 4 + 4];
            let f = &full.data()[(2 * y * 640 + 2 * x) * 4..(2 * y * 640 + 2 * x) * 4 + 4];
            assert_eq!(s, f);
        }
        // Already small enough: unchanged size.
        assert_eq!(super::to_rgba_fit(&frame, 1280, 720).width(), 640);
    }

    fn pic(data: &[u8], width: u32, height: u32) -> super::PackedPicture<'_> {
        super::PackedPicture { data, width, height, stride_bytes: width as usize * 4, format: PixelFormat::Bgra }
    }

    #[test]
    fn shrinking_averages_blocks_and_reuses_the_buffer() {
        // 8×4 luma: left half 0, right half 200; chroma 100 and 50.
        let mut data = vec![0u8; PixelFormat::I420.buffer_len(8, 4)];
        for row in data[..32].chunks_exact_mut(8) {
            row[4..].fill(200);
        }
        data[32..40].fill(100);
        data[40..48].fill(50);
        let frame = VideoFrame::new(8, 4, PixelFormat::I420, data, 7, 3).expect("frame");
        let small = shrink_i420(&frame, 4, 2, Vec::with_capacity(64)).expect("shrunk");
        assert_eq!((small.width(), small.height(), small.capture_time_us(), small.sequence()), (4, 2, 7, 3));
        let (y, u, v) = small.i420_planes().expect("planes");
        assert_eq!(y, [0, 0, 200, 200, 0, 0, 200, 200]);
        assert_eq!((u, v), (&[100u8, 100][..], &[50u8, 50][..]));
        let buffer = small.into_data();
        assert!(buffer.capacity() >= 64, "the caller's allocation came back");
        // Odd steps (1280 → 426) still cover every source pixel once; no upscaling.
        let big = VideoFrame::black(1280, 720, PixelFormat::I420, 0, 0);
        let s = shrink_i420(&big, 426, 240, buffer).expect("shrunk");
        assert!(s.i420_planes().expect("planes").0.iter().all(|&b| b == 16));
        assert!(shrink_i420(&s, 1280, 720, Vec::new()).is_none());
        assert!(shrink_i420(&VideoFrame::black(8, 8, PixelFormat::Rgba, 0, 0), 4, 4, Vec::new()).is_none());
    }
}
