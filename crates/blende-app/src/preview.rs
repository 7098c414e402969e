//! `blende share-preview`: the share pipeline up to the encoder, headless, for tests and IT.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blende_guard::{Decision, FrameMut, GuardEvent, PauseReason, ShareGuard, apply, screen_decision};
use blende_policy::Policy;
use blende_windows::share::{Bgra, X11ScreenShare, X11WindowShare};
use serde_json::json;

/// Exit code when the window may not be shared.
pub const EXIT_REFUSED: u8 = 4;

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// What is shared.
pub use blende_call::ShareSource as Source;

/// A window id as `blende windows` prints it: decimal or `0x`-hex.
///
/// # Errors
/// Anything else.
pub fn parse_window_id(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a window id (decimal or 0x-hex)"))
}

/// One source's capture and guard: what the app's share and `share-preview` both run.
pub(crate) enum Pipeline {
    Window(X11WindowShare, ShareGuard),
    Screen(X11ScreenShare, Policy),
}

/// Why a share could not start.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The policy refuses this source.
    Refused(String),
    Failed(anyhow::Error),
}

impl Pipeline {
    pub(crate) fn open(policy: Policy, source: Source) -> Result<Self, OpenError> {
        match source {
            Source::Window(window) => {
                let share = X11WindowShare::open(window).map_err(|e| OpenError::Failed(e.into()))?;
                match ShareGuard::start(policy, u64::from(window), &share.snapshot()) {
                    Ok(g) => Ok(Pipeline::Window(share, g)),
                    Err(refusal) => Err(OpenError::Refused(refusal.to_string())),
                }
            }
            Source::Screen => match policy.screen_verdict() {
                blende_policy::Verdict::Allow => {
                    Ok(Pipeline::Screen(X11ScreenShare::open().map_err(|e| OpenError::Failed(e.into()))?, policy))
                }
                blende_policy::Verdict::Block { reason, .. } => {
                    Err(OpenError::Refused(format!("the whole screen may not be shared: {reason}")))
                }
            },
        }
    }

    /// Captures into `frame` and returns the guard's decision for it.
    pub(crate) fn next(&mut self, frame: &mut Bgra, captured_at_us: u64) -> Decision {
        match self {
            Pipeline::Window(share, guard) => {
                let before = share.snapshot();
                let captured = share.capture(frame);
                let after = share.snapshot();
                match captured {
                    Ok(()) => guard.handle_frame(frame.width, frame.height, &before, &after, captured_at_us),
                    // The window vanished between the readings: the later reading tells the guard.
                    Err(_) => guard.handle_frame(0, 0, &before, &after, captured_at_us),
                }
            }
            Pipeline::Screen(share, policy) => {
                let before = share.snapshot();
                let captured = share.capture(frame);
                let after = share.snapshot();
                match captured {
                    Ok(()) => screen_decision(policy, frame.width, frame.height, &before, &after),
                    Err(_) => Decision::Drop,
                }
            }
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<GuardEvent> {
        match self {
            Pipeline::Window(_, guard) => guard.poll_event(),
            Pipeline::Screen(..) => None,
        }
    }
}

pub fn run(policy: Policy, source: Source, frames: u32, out_dir: &Path, fps: f64) -> anyhow::Result<ExitCode> {
    let mut pipeline = match Pipeline::open(policy, source) {
        Ok(p) => p,
        Err(OpenError::Refused(why)) => {
            eprintln!("blende: {why}");
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(OpenError::Failed(e)) => return Err(e),
    };
    std::fs::create_dir_all(out_dir)?;
    let interval = Duration::from_secs_f64(1.0 / fps.clamp(0.1, 120.0));
    let mut stdout = std::io::stdout().lock();
    let mut frame = Bgra::default();
    let mut next = Instant::now();
    for n in 1..=frames {
        let captured_at_us = now_us();
        let decision = pipeline.next(&mut frame, captured_at_us);
        if frame.data.is_empty() {
            // Nothing was captured (closed before the first frame): a slate of a default size.
            frame = Bgra { width: 640, height: 360, data: vec![0; 640 * 360 * 4] };
        }
        let mut fm = FrameMut { data: &mut frame.data, width: frame.width, height: frame.height, stride_bytes: frame.width as usize * 4 };
        let file = apply(&decision, &mut fm).then(|| format!("frame-{n:05}.png"));
        if let Some(name) = &file {
            write_png(&out_dir.join(name), &frame)?;
        }
        let (kind, masks, reason) = match &decision {
            Decision::Send { masks } => ("send", masks.len(), None),
            Decision::Pause(r) => ("pause", 0, Some(r.as_str())),
            Decision::Drop => ("drop", 0, None),
        };
        writeln!(
            stdout,
            "{}",
            json!({"frame": n, "file": file, "captured_at_us": captured_at_us, "decision": kind, "masks": masks, "reason": reason})
        )?;
        while let Some(e) = pipeline.poll_event() {
            writeln!(stdout, "{}", event_json(&e))?;
        }
        stdout.flush()?;
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(ExitCode::SUCCESS)
}

fn event_json(e: &GuardEvent) -> serde_json::Value {
    match e {
        GuardEvent::Paused { window_id, at_us, reason } => {
            let category = match reason {
                PauseReason::Blocked { category, .. } => Some(category.as_str()),
                _ => None,
            };
            json!({"event": "paused", "window_id": window_id, "at_us": at_us, "reason": reason.as_str(), "category": category})
        }
        GuardEvent::Resumed { window_id, at_us } => json!({"event": "resumed", "window_id": window_id, "at_us": at_us}),
        GuardEvent::Masking { window_id, at_us, regions } => {
            json!({"event": "masking", "window_id": window_id, "at_us": at_us, "regions": regions})
        }
    }
}

fn write_png(path: &Path, frame: &Bgra) -> anyhow::Result<()> {
    let mut rgba = frame.data.clone();
    for px in rgba.chunks_exact_mut(4) {
        px.swap(0, 2);
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, frame.width, frame.height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.write_header()?.write_image_data(&rgba)?;
    Ok(())
}
