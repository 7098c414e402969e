//! The media threads: camera and microphone frames from the device driver, encoded once per
//! receiver (one publisher PeerConnection on a server, one per participant in a mesh); and
//! what we receive, counted per feed for the statistics.
//!
//! Each send thread owns its receivers. The engine adds and removes them over a bounded
//! channel that the thread drains between frames: no lock is shared with the engine.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blende_call::{CallEvent, FeedStats, MediaKind, PeerId, SendStats};
use blende_media::AudioOrigin;
use blende_media::frame::{AudioFrame, VideoFrame};
use blende_media::synthetic::{measure_frequency_hz, read_stamp, rms_dbfs};
use blende_rtc::{AudioInput, VideoInput};

/// A receiver joins or leaves a send thread.
#[derive(Debug)]
pub enum SinkCmd<I> {
    Add(PeerId, I),
    Remove(PeerId),
}

/// Takes every pending receiver change (a receiver added twice replaces the first).
pub fn apply_sink_cmds<I>(rx: &Receiver<SinkCmd<I>>, inputs: &mut Vec<(PeerId, I)>) {
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            SinkCmd::Add(peer, input) => {
                inputs.retain(|(p, _)| *p != peer);
                inputs.push((peer, input));
            }
            SinkCmd::Remove(peer) => inputs.retain(|(p, _)| *p != peer),
        }
    }
}

/// Hands one frame to every receiver's encoder; a receiver whose connection closed is dropped
/// from the list, the others go on. Returns whether any of them queued the frame.
pub fn fan_out<I>(inputs: &mut Vec<(PeerId, I)>, mut send: impl FnMut(&mut I) -> Result<bool, blende_rtc::RtcError>) -> bool {
    let mut queued = false;
    inputs.retain_mut(|(_, input)| match send(input) {
        Ok(q) => {
            queued |= q;
            true
        }
        Err(_) => false,
    });
    queued
}

/// Counters the send threads update and the statistics read.
#[derive(Debug, Default)]
pub struct SendCounters {
    video_frames: AtomicU64,
    last_counter: AtomicU64,
    audio_frames: AtomicU64,
    bitrate_bps: AtomicU64,
    /// Width << 32 | height of the pictures sent, 0 before the first.
    video_size: AtomicU64,
    video_fps_div: AtomicU64,
    /// Encoded bytes sent, every receiver's copy counted (what the uplink carries).
    bytes_sent: AtomicU64,
}

pub type FrameHook = Arc<dyn Fn(&VideoFrame) + Send + Sync>;
pub type AudioHook = Arc<dyn Fn(&AudioFrame) + Send + Sync>;

/// The camera and microphone send threads.
pub struct MediaSend {
    video: Option<SyncSender<SinkCmd<VideoInput>>>,
    audio: Option<SyncSender<SinkCmd<AudioInput>>>,
    pub counters: Arc<SendCounters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MediaSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSend").finish_non_exhaustive()
    }
}

const SINK_QUEUE: usize = 64;

impl MediaSend {
    /// Starts a thread per medium that is sent (`None`: not sent).
    ///
    /// # Errors
    /// A thread could not be started.
    pub fn start(
        video: Option<(Receiver<VideoFrame>, Option<FrameHook>)>,
        audio: Option<(Receiver<AudioFrame>, Option<AudioHook>)>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SendCounters::default());
        let mut threads = Vec::new();
        let video = match video {
            Some((frames, hook)) => {
                let (tx, rx) = sync_channel(SINK_QUEUE);
                let (stop, c) = (Arc::clone(&stop), Arc::clone(&counters));
                threads.push(std::thread::Builder::new().name("blende-video-send".into()).spawn(move || {
                    send_loop(&frames, &rx, &stop, |frame, inputs| {
                        if let Some(h) = &hook {
                            h(frame);
                        }
                        let queued = fan_out(inputs, |input: &mut VideoInput| {
                            let before = input.sent_bytes();
                            let q = input.send(frame);
                            c.bytes_sent.fetch_add(input.sent_bytes() - before, Ordering::Relaxed);
                            c.bitrate_bps.store(input.bitrate_bps(), Ordering::Relaxed);
                            let ((w, h), div) = input.sending();
                            c.video_size.store(u64::from(w) << 32 | u64::from(h), Ordering::Relaxed);
                            c.video_fps_div.store(u64::from(div), Ordering::Relaxed);
                            q
                        });
                        if queued {
                            c.video_frames.fetch_add(1, Ordering::Relaxed);
                            if let Some(stamp) = read_stamp(frame) {
                                c.last_counter.store(u64::from(stamp.sequence), Ordering::Relaxed);
                            }
                        }
                    });
                })?);
                Some(tx)
            }
            None => None,
        };
        let audio = match audio {
            Some((frames, hook)) => {
                let (tx, rx) = sync_channel(SINK_QUEUE);
                let (stop, c) = (Arc::clone(&stop), Arc::clone(&counters));
                threads.push(std::thread::Builder::new().name("blende-audio-send".into()).spawn(move || {
                    send_loop(&frames, &rx, &stop, |frame, inputs| {
                        if let Some(h) = &hook {
                            h(frame);
                        }
                        let sent = fan_out(inputs, |input: &mut AudioInput| {
                            let before = input.sent_bytes();
                            let q = input.send(frame);
                            c.bytes_sent.fetch_add(input.sent_bytes() - before, Ordering::Relaxed);
                            q
                        });
                        if sent {
                            c.audio_frames.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                })?);
                Some(tx)
            }
            None => None,
        };
        Ok(MediaSend { video, audio, counters, stop, threads })
    }

    /// Encode for this PeerConnection too (`video`/`audio` where it sends them).
    pub fn add(&self, peer: PeerId, video: Option<VideoInput>, audio: Option<AudioInput>) {
        if let (Some(tx), Some(v)) = (&self.video, video) {
            warn_full(tx.try_send(SinkCmd::Add(peer, v)));
        }
        if let (Some(tx), Some(a)) = (&self.audio, audio) {
            warn_full(tx.try_send(SinkCmd::Add(peer, a)));
        }
    }

    pub fn remove(&self, peer: PeerId) {
        if let Some(tx) = &self.video {
            warn_full(tx.try_send(SinkCmd::Remove(peer)));
        }
        if let Some(tx) = &self.audio {
            warn_full(tx.try_send(SinkCmd::Remove(peer)));
        }
    }

    pub fn snapshot(&self, keyframe_requests: u64) -> SendStats {
        let c = &self.counters;
        SendStats {
            video_sent: c.video_frames.load(Ordering::Relaxed),
            last_sent_counter: c.last_counter.load(Ordering::Relaxed),
            audio_sent: c.audio_frames.load(Ordering::Relaxed),
            bitrate_bps: c.bitrate_bps.load(Ordering::Relaxed),
            keyframe_requests,
            video_size: match c.video_size.load(Ordering::Relaxed) {
                0 => None,
                v => Some(((v >> 32) as u32, (v & 0xFFFF_FFFF) as u32)),
            },
            video_fps_div: u32::try_from(c.video_fps_div.load(Ordering::Relaxed)).unwrap_or(1).max(1),
            rtt_ms: None,
            remote_loss_pct: None,
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
        }
    }

    /// Stops the threads and waits for them (each waits at most one 100 ms receive).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn warn_full<T>(result: Result<(), TrySendError<T>>) {
    if let Err(TrySendError::Full(_)) = result {
        log::warn!("media receivers: too many changes at once");
    }
}

/// Blocking receive from the driver, then `each` with the current receivers.
fn send_loop<F, I>(frames: &Receiver<F>, sinks: &Receiver<SinkCmd<I>>, stop: &AtomicBool, mut each: impl FnMut(&F, &mut Vec<(PeerId, I)>)) {
    let mut inputs = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        apply_sink_cmds(sinks, &mut inputs);
        let Ok(frame) = frames.recv_timeout(Duration::from_millis(100)) else { continue };
        apply_sink_cmds(sinks, &mut inputs);
        each(&frame, &mut inputs);
    }
}

/// Half a second at 48 kHz: enough for a stable frequency estimate.
const AUDIO_WINDOW_SAMPLES: usize = 24_000;

/// What we received from one feed.
#[derive(Debug)]
struct Received {
    stats: FeedStats,
    subscribed_at: Instant,
    audio_window: VecDeque<f32>,
}

/// What we receive, per feed: first pictures and sound, counters for the statistics.
#[derive(Debug, Default)]
pub struct Receiving {
    feeds: HashMap<String, Received>,
}

impl Receiving {
    pub fn add(&mut self, feed: &str, display: Option<String>) {
        let stats = FeedStats { feed: feed.to_owned(), display, ..FeedStats::default() };
        self.feeds.insert(feed.to_owned(), Received { stats, subscribed_at: Instant::now(), audio_window: VecDeque::new() });
    }

    /// Forgets a feed; its last statistics, for a final report.
    /// The statistics of the connection `feed` arrives on.
    pub fn link(&mut self, feed: &str, link: &blende_rtc::LinkStats) {
        if let Some(r) = self.feeds.get_mut(feed) {
            r.stats.rtt_ms = link.rtt_ms.or(r.stats.rtt_ms);
            r.stats.packets_received = link.packets_received;
            r.stats.packets_lost = link.packets_lost;
        }
    }

    pub fn remove(&mut self, feed: &str) -> Option<CallEvent> {
        self.feeds.remove(feed).map(|r| CallEvent::FeedStats(Box::new(r.stats)))
    }

    /// A decoded picture: its first one is an event.
    pub fn video(&mut self, feed: &str, frame: &VideoFrame, recv_unix_us: u64) -> Option<CallEvent> {
        let r = self.feeds.get_mut(feed)?;
        let s = &mut r.stats;
        s.frames_decoded += 1;
        s.frames_since_last += 1;
        (s.width, s.height) = (frame.width(), frame.height());
        s.centre_luma = centre_luma(frame);
        if let Some(prev) = s.last_picture_unix_us.replace(recv_unix_us) {
            s.picture_gap_max_ms = s.picture_gap_max_ms.max(recv_unix_us.saturating_sub(prev) / 1000);
        }
        if let Some(stamp) = read_stamp(frame) {
            s.stamped_frames += 1;
            s.last_counter = Some(stamp.sequence);
            s.last_capture_us = Some(stamp.capture_time_us);
            s.max_capture_us = Some(s.max_capture_us.unwrap_or(0).max(stamp.capture_time_us));
            s.last_recv_unix_us = Some(recv_unix_us);
        }
        if s.first_video_ms.is_some() {
            return None;
        }
        let ms = u64::try_from(r.subscribed_at.elapsed().as_millis()).unwrap_or(0);
        s.first_video_ms = Some(ms);
        let size = Some((frame.width(), frame.height()));
        Some(CallEvent::FirstFrame { feed: feed.to_owned(), kind: MediaKind::Video, since_subscribe_ms: ms, size })
    }

    /// A decoded 20 ms audio block: its first one is an event.
    pub fn audio(&mut self, feed: &str, frame: &AudioFrame, origin: AudioOrigin, playout_delay_ms: u64) -> Option<CallEvent> {
        let r = self.feeds.get_mut(feed)?;
        match origin {
            AudioOrigin::Packet => {}
            AudioOrigin::Recovered => r.stats.audio_recovered += 1,
            AudioOrigin::Concealed => r.stats.audio_concealed += 1,
            AudioOrigin::Stretched => r.stats.audio_stretched += 1,
        }
        r.stats.audio_playout_delay_ms = Some(playout_delay_ms);
        let first = r.stats.audio_frames == 0;
        r.stats.audio_frames += 1;
        r.stats.audio_frames_since_last += 1;
        let samples = frame.samples().to_f32();
        let channels = usize::from(frame.channels().max(1));
        for s in samples.iter().step_by(channels) {
            if r.audio_window.len() == AUDIO_WINDOW_SAMPLES {
                r.audio_window.pop_front();
            }
            r.audio_window.push_back(*s);
        }
        first.then(|| {
            let ms = u64::try_from(r.subscribed_at.elapsed().as_millis()).unwrap_or(0);
            CallEvent::FirstFrame { feed: feed.to_owned(), kind: MediaKind::Audio, since_subscribe_ms: ms, size: None }
        })
    }

    /// One statistics event per feed; the per-interval counters start again.
    pub fn report(&mut self, reset: bool) -> Vec<CallEvent> {
        let mut out = Vec::with_capacity(self.feeds.len());
        for r in self.feeds.values_mut() {
            let window: Vec<f32> = r.audio_window.iter().copied().collect();
            let mut stats = r.stats.clone();
            if !window.is_empty() {
                stats.audio_hz = measure_frequency_hz(&window, 48_000);
                stats.audio_dbfs = Some(rms_dbfs(&window)).filter(|d| d.is_finite());
            }
            out.push(CallEvent::FeedStats(Box::new(stats)));
            if reset {
                r.stats.frames_since_last = 0;
                r.stats.picture_gap_max_ms = 0;
                r.stats.audio_frames_since_last = 0;
                r.audio_window.clear();
            }
        }
        out
    }
}

/// Mean luma of the picture's central 1/8 × 1/8 (I420 pictures only): lets a test tell a
/// shared window's background from the guard's slate without looking at every pixel.
fn centre_luma(frame: &VideoFrame) -> Option<f64> {
    let (y, _, _) = frame.i420_planes()?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (bw, bh) = ((w / 8).max(1), (h / 8).max(1));
    let (x0, y0) = ((w - bw) / 2, (h - bh) / 2);
    let sum: u64 = (y0..y0 + bh).flat_map(|row| y[row * w + x0..row * w + x0 + bw].iter()).map(|&v| u64::from(v)).sum();
    Some(sum as f64 / (bw * bh) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_drops_closed_receivers_and_reports_queueing() {
        // state: 0 = queues, 1 = skips this frame (busy), 2 = closed.
        let mut inputs = vec![(PeerId(1), 1u8), (PeerId(2), 2), (PeerId(3), 0)];
        let send = |state: &mut u8| match *state {
            0 => Ok(true),
            1 => Ok(false),
            _ => Err(blende_rtc::RtcError::Closed),
        };
        assert!(fan_out(&mut inputs, send));
        assert_eq!(inputs.iter().map(|(p, _)| p.0).collect::<Vec<_>>(), [1, 3]);
        inputs.retain(|(p, _)| p.0 == 1);
        assert!(!fan_out(&mut inputs, send), "nobody queued the frame");
    }

    #[test]
    fn receivers_join_and_leave_between_frames() {
        let (tx, rx) = sync_channel(4);
        let mut inputs = Vec::new();
        tx.send(SinkCmd::Add(PeerId(1), 'a')).expect("queued");
        tx.send(SinkCmd::Add(PeerId(2), 'b')).expect("queued");
        tx.send(SinkCmd::Add(PeerId(1), 'c')).expect("queued");
        apply_sink_cmds(&rx, &mut inputs);
        assert_eq!(inputs, vec![(PeerId(2), 'b'), (PeerId(1), 'c')], "a second add replaces the first");
        tx.send(SinkCmd::Remove(PeerId(2))).expect("queued");
        apply_sink_cmds(&rx, &mut inputs);
        assert_eq!(inputs, vec![(PeerId(1), 'c')]);
    }
}
