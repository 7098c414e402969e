//! Kill-switch latencies, printed as figures (not a criterion bench: each sample
//! opens and releases a real device).
//!
//! * gate latency: `set_enabled(off)` called → gate closed (its timestamp), and
//!   until `set_enabled` returned;
//! * release latency: `set_enabled(off)` called → driver reports the device `Off`
//!   (the device thread dropped it).
//!
//! Run: `XDG_RUNTIME_DIR=/tmp/xdg cargo bench -p blende-devices --bench kill_switch`
//! (the microphone part is skipped without a PulseAudio server).

use std::time::{Duration, Instant};

use blende_devices::{AudioHost, DriverConfig, DriverEvent, DriverHandle, DriverOutputs, clock};
use blende_media::{DeviceKind, DeviceState};

fn wait_state(out: &DriverOutputs, kind: DeviceKind, want: &DeviceState) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(ev) = out.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match ev {
            DriverEvent::State(e) if e.kind == kind && &e.to == want => return Some(Instant::now()),
            _ => {}
        }
    }
    None
}

fn summary(name: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    if us.is_empty() {
        println!("{name}: no samples");
        return;
    }
    let pick = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    println!("{name:<48} n={:<3} median {:>9.1} µs  p90 {:>9.1} µs  max {:>9.1} µs", us.len(), pick(0.5), pick(0.9), pick(1.0));
}

fn measure(label: &str, kind: DeviceKind, config: DriverConfig, rounds: usize) {
    let Ok((handle, out)) = DriverHandle::start(config) else {
        println!("{label}: driver failed to start");
        return;
    };
    let (mut gate_us, mut return_us, mut release_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        if handle.set_enabled(kind, true).is_err() || wait_state(&out, kind, &DeviceState::On).is_none() {
            println!("{label}: device did not open");
            return;
        }
        // Let media flow for a moment, as in a call.
        std::thread::sleep(Duration::from_millis(60));
        let t0 = Instant::now();
        let t0_us = clock::now_us();
        if handle.set_enabled(kind, false).is_err() {
            return;
        }
        let returned = t0.elapsed();
        let closed_us = handle.gate(kind).closed_since_us().unwrap_or(u64::MAX);
        let Some(off) = wait_state(&out, kind, &DeviceState::Off) else {
            println!("{label}: device not released");
            return;
        };
        gate_us.push(closed_us.saturating_sub(t0_us) as f64);
        return_us.push(returned.as_secs_f64() * 1e6);
        release_us.push((off - t0).as_secs_f64() * 1e6);
        while out.video.try_recv().is_ok() || out.audio.try_recv().is_ok() {}
    }
    summary(&format!("{label}: command -> gate closed"), gate_us);
    summary(&format!("{label}: command -> set_enabled returned"), return_us);
    summary(&format!("{label}: command -> device released (Off)"), release_us);
    handle.shutdown();
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rounds = 30;
    measure("synthetic camera 1280x720@30", DeviceKind::Camera, DriverConfig::default(), rounds);
    measure("tone microphone", DeviceKind::Microphone, DriverConfig::default(), rounds);
    if AudioHost::pulseaudio().is_ok() {
        let config = DriverConfig { microphone_id: "default".to_owned(), ..DriverConfig::default() };
        measure("PulseAudio microphone (cpal)", DeviceKind::Microphone, config, rounds);
    } else {
        println!("PulseAudio microphone: skipped (no server; export XDG_RUNTIME_DIR)");
    }
}
