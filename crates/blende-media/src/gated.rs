//! The last step before the encoder: what the outgoing track carries.
//!
//! A captured frame passes only if the kill-switch [`Gate`] admits its capture
//! time; otherwise the track carries a black picture or silence of the same
//! shape, never the last real frame.

use crate::frame::{AudioFrame, PixelFormat, VideoFrame};
use crate::kill_switch::Gate;

/// Gatekeeper for an outgoing video track.
#[derive(Debug)]
pub struct GatedVideo {
    gate: Gate,
    width: u32,
    height: u32,
    dropped_frames: u64,
}

impl GatedVideo {
    /// `width`/`height` size the black frames sent before any real frame was seen.
    #[must_use]
    pub fn new(gate: Gate, width: u32, height: u32) -> Self {
        Self { gate, width, height, dropped_frames: 0 }
    }

    /// The frame itself if admitted, else a black I420 frame with its timestamps.
    pub fn process(&mut self, frame: VideoFrame) -> VideoFrame {
        if self.gate.admits(frame.capture_time_us()) {
            self.width = frame.width();
            self.height = frame.height();
            return frame;
        }
        self.dropped_frames += 1;
        VideoFrame::black(frame.width(), frame.height(), PixelFormat::I420, frame.capture_time_us(), frame.sequence())
    }

    /// A black frame to keep the track alive while no device delivers.
    #[must_use]
    pub fn filler(&self, now_us: u64, sequence: u64) -> VideoFrame {
        VideoFrame::black(self.width, self.height, PixelFormat::I420, now_us, sequence)
    }

    /// Frames refused so far.
    #[must_use]
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }
}

/// Gatekeeper for an outgoing audio track.
#[derive(Debug)]
pub struct GatedAudio {
    gate: Gate,
    dropped_frames: u64,
}

impl GatedAudio {
    #[must_use]
    pub fn new(gate: Gate) -> Self {
        Self { gate, dropped_frames: 0 }
    }

    /// The frame itself if all of it was captured while the gate was open, else
    /// silence of the same length and timestamps.
    pub fn process(&mut self, frame: AudioFrame) -> AudioFrame {
        if self.gate.admits_span(frame.capture_time_us(), frame.duration_us()) {
            return frame;
        }
        self.dropped_frames += 1;
        AudioFrame::silence(
            frame.samples_per_channel(),
            frame.sample_rate_hz(),
            frame.channels(),
            frame.capture_time_us(),
            frame.sequence(),
        )
    }

    #[must_use]
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::AudioSamples;
    use crate::kill_switch::{DeviceKind, Input, KillSwitch};

    #[test]
    fn refused_media_becomes_black_or_silence() {
        let mut ks = KillSwitch::default();
        ks.handle_input(0, Input::Command { kind: DeviceKind::Camera, on: true });
        ks.handle_input(0, Input::Command { kind: DeviceKind::Microphone, on: true });
        let mut video = GatedVideo::new(ks.gate(DeviceKind::Camera), 64, 48);
        let mut audio = GatedAudio::new(ks.gate(DeviceKind::Microphone));
        let white = VideoFrame::new(4, 2, PixelFormat::Rgba, vec![255; 32], 10, 1).expect("frame");
        assert_eq!(video.process(white.clone()), white);
        let tone = AudioFrame::new(AudioSamples::F32(vec![0.5; 8]), 48_000, 2, 10, 1).expect("frame");
        assert_eq!(audio.process(tone.clone()), tone);
        ks.handle_input(20, Input::PanicAllOff);
        let late = VideoFrame::new(4, 2, PixelFormat::Rgba, vec![255; 32], 20, 2).expect("frame");
        let out = video.process(late);
        assert_eq!((out.format(), out.capture_time_us(), out.sequence()), (PixelFormat::I420, 20, 2));
        assert!(out.i420_planes().is_some_and(|(y, _, _)| y.iter().all(|&v| v == 16)));
        let late_tone = AudioFrame::new(AudioSamples::F32(vec![0.5; 8]), 48_000, 2, 25, 2).expect("frame");
        let out = audio.process(late_tone);
        assert_eq!(out.samples().to_f32(), vec![0.0; 8]);
        assert_eq!((video.dropped_frames(), audio.dropped_frames()), (1, 1));
        assert_eq!(video.filler(30, 3).width(), 4);
    }
}
