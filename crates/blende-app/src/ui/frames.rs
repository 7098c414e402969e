//! Latest-frame slots and the conversions into egui images: what the engine's hooks store and
//! the screens draw. Shared by the demo, the live call and the share picker.

use std::sync::{Arc, Mutex};

use blende_media::convert::to_rgba_fit;
use blende_media::frame::VideoFrame;
use eframe::egui;

/// The largest picture a tile shows.
pub(crate) const TILE_MAX: (u32, u32) = (480, 270);

/// The latest picture of one track and a counter that changes with every new picture.
pub type LatestFrame = Arc<Mutex<Option<(u64, egui::ColorImage)>>>;

pub(crate) fn image(frame: &VideoFrame) -> egui::ColorImage {
    // Tiles are 480x270 logical points: larger pictures are scaled down to that while
    // converting, not after.
    let rgba = to_rgba_fit(frame, TILE_MAX.0, TILE_MAX.1);
    egui::ColorImage::from_rgba_unmultiplied([rgba.width() as usize, rgba.height() as usize], rgba.data())
}

/// A shared window's picture (BGRA) as an egui image.
pub(crate) fn bgra_image(frame: &blende_windows::share::Bgra) -> egui::ColorImage {
    let pixels = frame.data.chunks_exact(4).map(|p| egui::Color32::from_rgba_unmultiplied(p[2], p[1], p[0], p[3])).collect();
    egui::ColorImage::new([frame.width as usize, frame.height as usize], pixels)
}

pub(crate) fn store(slot: &LatestFrame, img: egui::ColorImage) {
    if let Ok(mut s) = slot.lock() {
        let n = s.as_ref().map_or(0, |(n, _)| n + 1);
        *s = Some((n, img));
    }
}
