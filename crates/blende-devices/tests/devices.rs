//! Integration tests of the device layer.
//!
//! PulseAudio tests need a running server with a null sink whose monitor is the
//! default source, and `pactl` on the PATH:
//!
//! ```sh
//! mkdir -p /tmp/xdg && chmod 700 /tmp/xdg
//! XDG_RUNTIME_DIR=/tmp/xdg pulseaudio -D --exit-idle-time=-1
//! XDG_RUNTIME_DIR=/tmp/xdg pactl load-module module-null-sink sink_name=blende_null
//! XDG_RUNTIME_DIR=/tmp/xdg pactl set-default-source blende_null.monitor
//! XDG_RUNTIME_DIR=/tmp/xdg BLENDE_REQUIRE_PULSE=1 cargo test -p blende-devices
//! ```
//!
//! With `BLENDE_REQUIRE_PULSE=1` they fail when no server is reachable; otherwise
//! they are skipped with a message.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use blende_devices::audio::CAPTURE_SAMPLE_RATE_HZ;
use blende_devices::{
    AudioHost, DriverConfig, DriverEvent, DriverHandle, MediaKind, MicrophoneStream, SYNTHETIC_CAMERA_ID, SpeakerStream, clock, enumerate,
};
use blende_media::kill_switch::Event;
use blende_media::synthetic::{ToneMicrophone, measure_frequency_hz, read_stamp, rms_dbfs};
use blende_media::{DeviceKind, DeviceState};

/// PulseAudio tests share one server and count its streams: run them one at a time.
static PULSE_LOCK: Mutex<()> = Mutex::new(());

fn pulse_lock() -> MutexGuard<'static, ()> {
    PULSE_LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn pulse_host() -> Option<AudioHost> {
    let required = std::env::var("BLENDE_REQUIRE_PULSE").is_ok_and(|v| v == "1");
    match AudioHost::pulseaudio() {
        Ok(host) => Some(host),
        Err(e) if required => panic!(
            "BLENDE_REQUIRE_PULSE=1 but no PulseAudio server is reachable ({e}); start one with a \
             null sink and export XDG_RUNTIME_DIR"
        ),
        Err(e) => {
            eprintln!("skipping: PulseAudio unavailable ({e}); set BLENDE_REQUIRE_PULSE=1 to make this fail");
            None
        }
    }
}

/// Waits for the state `want` of `kind`, returning when it was reached.
fn wait_state(events: &Receiver<DriverEvent>, kind: DeviceKind, want: &DeviceState, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(DriverEvent::State(e)) if e.kind == kind && &e.to == want => return Instant::now(),
            Ok(_) => {}
            Err(_) => panic!("{kind:?} did not reach {want:?} within {timeout:?}"),
        }
    }
}

/// Source outputs (recording streams) on the PulseAudio server that belong to us.
fn our_source_outputs() -> usize {
    let out = Command::new("pactl").args(["list", "source-outputs"]).output().expect("run pactl");
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("application.process.id = \"{}\"", std::process::id());
    text.split("Source Output #").filter(|block| block.contains(&needle)).count()
}

struct BusyCores {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCores {
    fn start(n: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name(format!("busy-{i}"))
                    .spawn(move || {
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            std::hint::black_box(x);
                        }
                    })
                    .expect("spawn busy thread")
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn enumeration_never_panics_and_lists_synthetic_devices() {
    // No camera on this machine: an empty camera list (or a backend error) is fine.
    let cameras = blende_devices::camera::list_cameras();
    eprintln!("cameras: {cameras:?}");
    let all = enumerate();
    assert!(all.iter().any(|d| d.id == SYNTHETIC_CAMERA_ID && d.kind == MediaKind::Camera && d.synthetic));
    assert!(all.iter().any(|d| d.kind == MediaKind::Microphone && d.synthetic));
    let mut ids: Vec<_> = all.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "ids are unique");
    // Stable: a second enumeration gives the same ids.
    let again: Vec<_> = enumerate().into_iter().map(|d| d.id).collect();
    assert_eq!(all.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), again);
}

#[test]
fn opening_a_missing_camera_reports_failure() {
    let config = DriverConfig { camera_id: "camera:99".to_owned(), ..DriverConfig::default() };
    let (handle, out) = DriverHandle::start(config).expect("driver");
    handle.set_enabled(DeviceKind::Camera, true).expect("command");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match out.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(DriverEvent::State(e)) if matches!(e.to, DeviceState::Failed(_)) => break,
            Ok(DriverEvent::State(e)) => {
                assert_ne!(e.to, DeviceState::On, "a missing camera cannot be on")
            }
            Ok(_) => {}
            Err(_) => panic!("no failure reported"),
        }
    }
    assert!(!handle.gate(DeviceKind::Camera).admits(clock::now_us()));
    // Screen share is not a device of this crate: reported, not faked.
    handle.set_enabled(DeviceKind::ScreenShare, true).expect("command");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(handle.state(DeviceKind::ScreenShare), DeviceState::Failed(_)) {
        assert!(Instant::now() < deadline, "screen share failure not reported");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.shutdown();
}

#[test]
fn synthetic_camera_kill_switch_gates_and_releases_under_load() {
    let _busy = BusyCores::start(2);
    let config = DriverConfig { synthetic_camera_size: (320, 180), ..DriverConfig::default() };
    let (handle, out) = DriverHandle::start(config).expect("driver");
    handle.set_enabled(DeviceKind::Camera, true).expect("on");
    wait_state(&out.events, DeviceKind::Camera, &DeviceState::On, Duration::from_secs(5));
    let mut before = 0;
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        if let Ok(frame) = out.video.recv_timeout(Duration::from_millis(100)) {
            assert!(read_stamp(&frame).is_some());
            before += 1;
        }
    }
    let t_cmd = Instant::now();
    let t_cmd_us = clock::now_us();
    handle.set_enabled(DeviceKind::Camera, false).expect("off");
    let kill_us = handle.gate(DeviceKind::Camera).closed_since_us().expect("gate closed on return");
    let gate_latency = Duration::from_micros(kill_us.saturating_sub(t_cmd_us));
    let t_off = wait_state(&out.events, DeviceKind::Camera, &DeviceState::Off, Duration::from_secs(5));
    eprintln!(
        "synthetic camera: {before} frames before kill; gate closed {gate_latency:?} after the command, \
         device released after {:?}",
        t_off - t_cmd
    );
    assert!(before >= 5, "camera delivered {before} frames");
    // Whatever is still queued was captured before the kill, and nothing else comes.
    std::thread::sleep(Duration::from_millis(200));
    for frame in out.video.try_iter() {
        assert!(frame.capture_time_us() < kill_us, "frame captured at {} ≥ kill {kill_us}", frame.capture_time_us());
        let stamp = read_stamp(&frame).expect("stamp");
        assert!(stamp.capture_time_us < kill_us);
    }
    assert_eq!(handle.state(DeviceKind::Camera), DeviceState::Off);
    assert!(t_off - t_cmd < Duration::from_millis(500), "release took {:?}", t_off - t_cmd);
    handle.shutdown();
}

#[test]
fn lost_device_ends_with_an_event_and_one_reopen() {
    let config = DriverConfig { synthetic_camera_size: (160, 90), synthetic_camera_lose_after_frames: Some(3), ..DriverConfig::default() };
    let (handle, out) = DriverHandle::start(config).expect("driver");
    handle.set_enabled(DeviceKind::Camera, true).expect("on");
    let mut opens = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let reason = loop {
        match out.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(DriverEvent::State(e)) if e.to == DeviceState::Opening => opens += 1,
            Ok(DriverEvent::State(Event { to: DeviceState::Failed(reason), .. })) if opens == 2 => break reason,
            Ok(_) => {}
            Err(_) => panic!("no final failure (opens: {opens})"),
        }
    };
    assert!(reason.contains("unplugged"), "{reason}");
    // Not retried forever: no further open comes.
    std::thread::sleep(Duration::from_millis(300));
    for ev in out.events.try_iter() {
        if let DriverEvent::State(e) = ev {
            assert_ne!(e.to, DeviceState::Opening, "reopened again");
        }
    }
    assert!(!handle.gate(DeviceKind::Camera).admits(clock::now_us()));
    // The user may try again explicitly.
    handle.set_enabled(DeviceKind::Camera, true).expect("on again");
    wait_state(&out.events, DeviceKind::Camera, &DeviceState::On, Duration::from_secs(5));
    handle.shutdown();
}

#[test]
fn synthetic_microphone_through_driver() {
    let (handle, out) = DriverHandle::start(DriverConfig::default()).expect("driver");
    handle.set_enabled(DeviceKind::Microphone, true).expect("on");
    wait_state(&out.events, DeviceKind::Microphone, &DeviceState::On, Duration::from_secs(5));
    let mut samples = Vec::new();
    while samples.len() < 48_000 / 2 {
        let frame = out.audio.recv_timeout(Duration::from_secs(2)).expect("audio");
        samples.extend(frame.samples().to_f32());
    }
    let hz = measure_frequency_hz(&samples, CAPTURE_SAMPLE_RATE_HZ).expect("tone");
    assert!((hz - 440.0).abs() < 1.0, "{hz}");
    handle.panic_all_off().expect("panic");
    let kill_us = handle.gate(DeviceKind::Microphone).closed_since_us().expect("closed");
    wait_state(&out.events, DeviceKind::Microphone, &DeviceState::Off, Duration::from_secs(5));
    for frame in out.audio.try_iter() {
        assert!(frame.capture_time_us() + frame.duration_us() <= kill_us);
    }
    handle.shutdown();
}

#[test]
fn pulse_microphone_captures_tone_played_into_null_sink() {
    let _serial = pulse_lock();
    let Some(host) = pulse_host() else { return };
    let mut speaker = SpeakerStream::open(host, None).expect("open default sink");
    let mut mic = MicrophoneStream::open(AudioHost::pulseaudio().expect("host"), None).expect("open monitor");
    let mut tone = ToneMicrophone::new(440.0, -12.0, CAPTURE_SAMPLE_RATE_HZ, 1);
    let mut block = vec![0.0f32; 960];
    let mut captured = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) && captured.len() < 48_000 * 3 {
        while speaker.free_samples() >= block.len() && speaker.free_samples() > 48_000 - 9_600 {
            tone.fill(&mut block);
            speaker.write(&block);
        }
        while let Some(frame) = mic.read_frame() {
            captured.extend(frame.samples().to_f32());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Look at the loudest second: start-up latency varies.
    let window = 48_000;
    assert!(captured.len() >= window, "captured only {} samples", captured.len());
    let best = (0..=captured.len() - window)
        .step_by(4_800)
        .max_by(|&a, &b| rms_dbfs(&captured[a..a + window]).total_cmp(&rms_dbfs(&captured[b..b + window])))
        .unwrap_or(0);
    let seg = &captured[best..best + window];
    let hz = measure_frequency_hz(seg, CAPTURE_SAMPLE_RATE_HZ).expect("tone captured");
    let level = rms_dbfs(seg);
    eprintln!("captured from null sink monitor: {hz:.2} Hz at {level:.1} dBFS (overruns {})", mic.overrun_samples());
    assert!((hz - 440.0).abs() <= 2.0, "{hz} Hz");
    assert!((level + 12.0).abs() <= 3.0, "{level} dBFS");
}

#[test]
fn pulse_microphone_kill_switch_removes_recording_stream_within_100ms() {
    let _serial = pulse_lock();
    let Some(_host) = pulse_host() else { return };
    let config = DriverConfig { microphone_id: "default".to_owned(), ..DriverConfig::default() };
    let (handle, out) = DriverHandle::start(config).expect("driver");
    for round in 0..3 {
        handle.set_enabled(DeviceKind::Microphone, true).expect("on");
        wait_state(&out.events, DeviceKind::Microphone, &DeviceState::On, Duration::from_secs(10));
        let frame = out.audio.recv_timeout(Duration::from_secs(5)).expect("audio flows");
        assert_eq!(frame.sample_rate_hz(), CAPTURE_SAMPLE_RATE_HZ);
        assert_eq!(our_source_outputs(), 1, "round {round}: our recording stream is visible while on");

        let t_cmd = Instant::now();
        let t_cmd_us = clock::now_us();
        handle.set_enabled(DeviceKind::Microphone, false).expect("off");
        let kill_us = handle.gate(DeviceKind::Microphone).closed_since_us().expect("gate closed");
        let gate_latency = Duration::from_micros(kill_us.saturating_sub(t_cmd_us));
        let mut gone_after = None;
        while t_cmd.elapsed() < Duration::from_secs(1) {
            if our_source_outputs() == 0 {
                gone_after = Some(t_cmd.elapsed());
                break;
            }
        }
        let t_off = wait_state(&out.events, DeviceKind::Microphone, &DeviceState::Off, Duration::from_secs(5));
        let gone_after = gone_after.expect("recording stream still listed 1 s after the kill");
        eprintln!(
            "round {round}: gate closed {gate_latency:?} after command, source output gone after \
             {gone_after:?}, state Off after {:?}",
            t_off - t_cmd
        );
        assert!(gone_after <= Duration::from_millis(100), "recording stream lingered {gone_after:?}");
        std::thread::sleep(Duration::from_millis(50));
        for frame in out.audio.try_iter() {
            let end_us = frame.capture_time_us() + frame.duration_us();
            assert!(end_us <= kill_us, "audio captured after the kill was delivered ({end_us} > {kill_us})");
        }
    }
    handle.shutdown();
}

#[test]
fn pulse_microphone_that_vanishes_is_reported_lost() {
    let _serial = pulse_lock();
    let Some(host) = pulse_host() else { return };
    // A sink of our own, so unloading it does not disturb the shared null sink.
    let load = Command::new("pactl").args(["load-module", "module-null-sink", "sink_name=blende_vanishing"]).output().expect("run pactl");
    let module = String::from_utf8_lossy(&load.stdout).trim().to_owned();
    assert!(load.status.success() && !module.is_empty(), "could not load a null sink");
    let unload = || {
        let _ = Command::new("pactl").args(["unload-module", &module]).status();
    };
    let Some(id) =
        host.microphones().expect("list microphones").into_iter().find(|d| d.id.ends_with("blende_vanishing.monitor")).map(|d| d.id)
    else {
        unload();
        panic!("new monitor source not listed");
    };
    let config = DriverConfig { microphone_id: id, ..DriverConfig::default() };
    let (handle, out) = DriverHandle::start(config).expect("driver");
    handle.set_enabled(DeviceKind::Microphone, true).expect("on");
    wait_state(&out.events, DeviceKind::Microphone, &DeviceState::On, Duration::from_secs(10));
    out.audio.recv_timeout(Duration::from_secs(5)).expect("audio flows");
    unload();
    // Lost, one reopen that fails (the source is gone), then reported as failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        match out.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(DriverEvent::State(Event { to: DeviceState::Failed(reason), .. }))
                if !handle.gate(DeviceKind::Microphone).admits(clock::now_us()) =>
            {
                break reason;
            }
            Ok(_) => {}
            Err(_) => panic!("vanished microphone not reported"),
        }
    };
    eprintln!("vanished microphone reported: {reason}");
    assert_eq!(our_source_outputs(), 0, "nothing of ours left recording");
    handle.shutdown();
}
