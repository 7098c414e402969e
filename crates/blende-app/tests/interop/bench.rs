//! Figures for a 2-party call through Janus, printed, not asserted (beyond "it worked"):
//!
//! ```sh
//! cargo test --release -p blende-app --test interop -- --ignored --nocapture bench_
//! BLENDE_BENCH_ARGS=--no-congestion-control cargo test --release … bench_blende_to_blende
//! ```
//!
//! - join → first remote frame (process start → first decoded picture, and subscribe → first);
//! - glass-to-glass latency from the test pattern's embedded capture time (Blende → Janus →
//!   Blende, both processes on this machine, so one clock);
//! - CPU seconds and peak RSS of a Blende participant vs Chromium's processes, each in a
//!   640x480 two-way call with the other.

use std::time::{Duration, Instant};

use crate::browser::run_chromium_capture;
use crate::harness::{Participant, janus_or_skip, serial};

/// (CPU seconds, peak RSS bytes) of a process from /proc.
fn cpu_and_peak_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    // utime, stime are fields 14 and 15 (1-based); after the `)` they are at 11 and 12.
    let ticks: u64 =
        fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // CLK_TCK is 100 on Linux.
    (ticks as f64 / 100.0, hwm_kb * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_blende_to_blende() {
    let _serial = serial();
    if !janus_or_skip("bench_blende_to_blende") {
        return;
    }
    // Extra `blende join` flags, e.g. BLENDE_BENCH_ARGS="--no-congestion-control".
    let extra = std::env::var("BLENDE_BENCH_ARGS").unwrap_or_default();
    // BLENDE_BENCH_SIZE=320x240 for a smaller picture (default 640x480, Chromium's fake camera).
    let dims = std::env::var("BLENDE_BENCH_SIZE").unwrap_or_else(|_| "640x480".to_owned());
    let (w, h) = dims.split_once('x').unwrap_or(("640", "480"));
    let (w, h) = (w.to_owned(), h.to_owned());
    let mut size = vec!["--width", w.as_str(), "--height", h.as_str()];
    size.extend(extra.split_whitespace());
    println!("flags: {size:?}");
    let a = Participant::spawn("A", 8888, &size);
    let ready_a = a.wait_for("A ready", Duration::from_secs(5), |v| v["event"] == "ready");
    let epoch_a = ready_a["media_epoch_unix_us"].as_u64().expect("epoch");
    a.wait_for("A published", Duration::from_secs(10), |v| v["event"] == "published");
    let b = Participant::spawn("B", 8888, &size);
    let first = b.wait_for("B first frame", Duration::from_secs(20), |v| v["event"] == "first_frame" && v["kind"] == "video");
    println!(
        "join → first remote frame (B process start → first decoded picture of A): {} ms; subscribe → first picture: {} ms",
        first["t_ms"], first["since_subscribe_ms"]
    );
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut seen = 0;
    while started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
        let events = b.events();
        for v in events.iter().skip(seen) {
            if v["event"] == "stats"
                && !v["feed"].is_null()
                && let (Some(cap), Some(recv)) = (v["last_capture_us"].as_u64(), v["last_recv_unix_us"].as_u64())
            {
                latencies.push((recv as f64 - (epoch_a + cap) as f64) / 1000.0);
            }
        }
        seen = events.len();
    }
    latencies.sort_by(f64::total_cmp);
    let last = b.events().into_iter().rev().find(|v| v["event"] == "stats" && !v["feed"].is_null()).unwrap_or_default();
    let sent = a.events().into_iter().rev().find(|v| v["event"] == "stats" && v["feed"].is_null()).unwrap_or_default();
    println!("A's encoder target at the end: {} bit/s, {} frames sent", sent["bitrate_bps"], sent["video_sent"]);
    println!(
        "glass-to-glass A→Janus→B ({dims}, {} samples): median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!("B decoded {} frames of A in {:.0} s of call", last["frames_decoded"], started.elapsed().as_secs_f64() + 1.0);
    let (cpu_a, rss_a) = cpu_and_peak_rss(a.pid());
    let (cpu_b, rss_b) = cpu_and_peak_rss(b.pid());
    println!(
        "Blende A: {cpu_a:.2} CPU s, peak RSS {:.1} MB; Blende B: {cpu_b:.2} CPU s, peak RSS {:.1} MB",
        rss_a as f64 / 1e6,
        rss_b as f64 / 1e6
    );
    assert!(!latencies.is_empty(), "no stamped pictures arrived");
    b.leave();
    a.leave();
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_blende_vs_chromium_resources() {
    let _serial = serial();
    if !janus_or_skip("bench_blende_vs_chromium_resources") {
        return;
    }
    // Blende and Chromium in one two-way call for 20 s; each process group's cost.
    // BLENDE_BENCH_720P=1: both at 1280x720 (Chromium's fake camera "hires"), else 640x480.
    let hd = std::env::var("BLENDE_BENCH_720P").is_ok_and(|v| v == "1");
    let (w, h, capture) = if hd { ("1280", "720", "hires") } else { ("640", "480", "stdres") };
    let blende = Participant::spawn("Blende", 8888, &["--width", w, "--height", h, "--bitrate-bps", "1500000"]);
    blende.wait_for("published", Duration::from_secs(10), |v| v["event"] == "published");
    let chromium = std::thread::Builder::new()
        .name("chromium".into())
        .spawn(move || run_chromium_capture("both", 8888, 20, 1, false, capture))
        .expect("thread");
    let before = cpu_and_peak_rss(blende.pid());
    let verdict = chromium.join().expect("chromium");
    let after = cpu_and_peak_rss(blende.pid());
    let decoded_by_blende = blende
        .events()
        .into_iter()
        .rev()
        .find(|v| v["event"] == "stats" && !v["feed"].is_null())
        .map(|v| v["frames_decoded"].clone())
        .unwrap_or_default();
    println!(
        "2-party {w}x{h} call, 20 s: Blende {:.2} CPU s (whole process life {:.2} s), peak RSS {:.1} MB, decoded {} frames; \
         Chromium {} CPU s summed over its processes, peak RSS {:.1} MB summed, framesDecoded {} ({}x{}), bytesSent {}",
        after.0 - before.0,
        after.0,
        after.1 as f64 / 1e6,
        decoded_by_blende,
        verdict["chromium_cpu_s"],
        verdict["chromium_peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        verdict["stats"]["framesDecoded"],
        verdict["stats"]["frameWidth"],
        verdict["stats"]["frameHeight"],
        verdict["stats"]["bytesSent"]
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    blende.leave();
}

/// The app itself (window under Xvfb, glow on llvmpipe) in a two-way 1280x720 call with
/// Chromium (fake camera at 1280x720) for 20 s: app start → first frame drawn, and both
/// sides' CPU seconds and peak RSS.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_app_vs_chromium_720p() {
    let _serial = serial();
    if !janus_or_skip("bench_app_vs_chromium_720p") || std::env::var_os("DISPLAY").is_none() {
        return;
    }
    let app = Participant::spawn_app(
        "App",
        8888,
        &["--width", "1280", "--height", "720", "--fps", "30", "--bitrate-bps", "1500000", "--camera", "test-pattern", "--mic", "tone"],
    );
    let local = app.wait_for("own picture drawn", Duration::from_secs(20), |v| v["event"] == "first_frame_drawn" && v["tile"] == "local");
    app.wait_for("published", Duration::from_secs(20), |v| v["event"] == "published");
    println!("app start → first frame drawn (own camera): {} ms", local["since_start_ms"]);
    let chromium = std::thread::Builder::new()
        .name("chromium".into())
        .spawn(|| run_chromium_capture("both", 8888, 20, 1, false, "hires"))
        .expect("thread");
    let remote =
        app.wait_for("remote picture drawn", Duration::from_secs(30), |v| v["event"] == "first_frame_drawn" && v["tile"] != "local");
    let before = cpu_and_peak_rss(app.pid());
    let verdict = chromium.join().expect("chromium");
    let after = cpu_and_peak_rss(app.pid());
    let feed = app.events().into_iter().rev().find(|v| v["event"] == "stats" && !v["feed"].is_null()).unwrap_or_default();
    println!("app start → first remote frame drawn: {} ms", remote["since_start_ms"]);
    println!(
        "2-party 1280x720 call, ~20 s: app {:.2} CPU s while Chromium was in the call, peak RSS {:.1} MB, decoded {} frames ({}x{}); \
         Chromium {} CPU s summed over its processes, peak RSS {:.1} MB summed, framesDecoded {} ({}x{})",
        after.0 - before.0,
        after.1 as f64 / 1e6,
        feed["frames_decoded"],
        feed["width"],
        feed["height"],
        verdict["chromium_cpu_s"],
        verdict["chromium_peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        verdict["stats"]["framesDecoded"],
        verdict["stats"]["frameWidth"],
        verdict["stats"]["frameHeight"]
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
}
