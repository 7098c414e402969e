//! Integration tests of the media engine: codec round trips with the synthetic
//! devices, and the kill-switch promise checked on the decoded side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use blende_media::audio_codec::{OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ};
use blende_media::convert::psnr_luma_db;
use blende_media::kill_switch::{Event, Input, KillSwitchConfig, Output};
use blende_media::synthetic::{TestPatternCamera, ToneMicrophone, measure_frequency_hz, read_stamp, rms_dbfs};
use blende_media::{
    DeviceKind, DeviceState, GatedAudio, GatedVideo, KillSwitch, OpusConfig, OpusDecoder, OpusEncoder, Vp8Decoder, Vp8Encoder,
    Vp8EncoderConfig,
};
use proptest::prelude::*;

const FRAME_INTERVAL_US: u64 = 33_333;

#[test]
fn vp8_720p_round_trip_keeps_picture_and_counter() {
    let mut cam = TestPatternCamera::new(1280, 720, 30);
    let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(1280, 720, 1_500_000)).expect("encoder");
    let mut dec = Vp8Decoder::new(2).expect("decoder");
    let mut psnrs = Vec::new();
    let mut bytes = 0usize;
    for i in 0..60u64 {
        let t = 5_000_000 + i * FRAME_INTERVAL_US;
        let src = cam.next_frame(t);
        let pkts = enc.encode(&src).expect("encode");
        assert_eq!(pkts.len(), 1, "one packet per picture");
        bytes += pkts[0].data.len();
        let out = dec.decode(&pkts[0]).expect("decode").expect("picture");
        let stamp = read_stamp(&out).unwrap_or_else(|| panic!("frame {i}: counter unreadable"));
        assert_eq!((u64::from(stamp.sequence), stamp.capture_time_us), (i, t), "frame {i}");
        psnrs.push(psnr_luma_db(&src, &out).expect("same size"));
    }
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    let min = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
    let kbps = bytes as f64 * 8.0 / 2.0 / 1000.0;
    eprintln!("VP8 720p @1.5 Mbit/s: mean PSNR {mean:.1} dB, min {min:.1} dB, {kbps:.0} kbit/s");
    assert!(mean >= 30.0, "mean PSNR {mean:.1} dB");
    assert!(min >= 28.0, "min PSNR {min:.1} dB");
    assert!(kbps < 1500.0 * 1.5, "rate control far off: {kbps:.0} kbit/s");
}

#[test]
fn opus_round_trip_keeps_frequency_and_level() {
    for (hz, level_db) in [(440.0, -12.0), (1000.0, -20.0), (300.0, -6.0)] {
        let mut mic = ToneMicrophone::new(hz, level_db, OPUS_SAMPLE_RATE_HZ, 1);
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        let mut dec = OpusDecoder::new(1).expect("decoder");
        let mut decoded = Vec::new();
        for i in 0..50u64 {
            let pkt = enc.encode(&mic.next_frame(OPUS_FRAME_SAMPLES, i * 20_000)).expect("encode");
            decoded.extend(dec.decode(&pkt).expect("decode").samples().to_f32());
        }
        // Skip the codec's start-up (first 100 ms).
        let steady = &decoded[4_800..];
        let got_hz = measure_frequency_hz(steady, OPUS_SAMPLE_RATE_HZ).expect("tone");
        let got_db = rms_dbfs(steady);
        eprintln!("Opus {hz} Hz {level_db} dBFS -> {got_hz:.2} Hz {got_db:.2} dBFS");
        assert!((got_hz - hz).abs() <= 2.0, "{hz} Hz came back as {got_hz:.2} Hz");
        assert!((got_db - level_db).abs() <= 1.0, "{level_db} dBFS came back as {got_db:.2} dBFS");
    }
}

/// Send pipeline in virtual time: camera and microphone run at their real rates,
/// the user kills at `kill_at_us`; the decoded side must show nothing stamped at or
/// after the kill.
fn run_virtual_kill(kill_at_us: u64) {
    let mut ks = KillSwitch::default();
    for kind in [DeviceKind::Camera, DeviceKind::Microphone] {
        ks.handle_input(0, Input::Command { kind, on: true });
        ks.handle_input(0, Input::Opened(kind));
    }
    let mut cam = TestPatternCamera::new(320, 180, 30);
    let mut mic = ToneMicrophone::new(440.0, -10.0, OPUS_SAMPLE_RATE_HZ, 1);
    let mut video = GatedVideo::new(ks.gate(DeviceKind::Camera), 320, 180);
    let mut audio = GatedAudio::new(ks.gate(DeviceKind::Microphone));
    let mut venc = Vp8Encoder::new(Vp8EncoderConfig::camera(320, 180, 400_000)).expect("encoder");
    let mut vdec = Vp8Decoder::new(1).expect("decoder");
    let mut aenc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let mut adec = OpusDecoder::new(1).expect("decoder");
    let mut killed = false;
    let mut last_audio_db = f64::INFINITY;
    let (mut next_video_us, mut next_audio_us) = (0u64, 0u64);
    while next_video_us < 2_000_000 || next_audio_us < 2_000_000 {
        let now = next_video_us.min(next_audio_us);
        if !killed && now >= kill_at_us {
            ks.handle_input(kill_at_us, Input::PanicAllOff);
            killed = true;
        }
        if now == next_video_us {
            let pic = video.process(cam.next_frame(now));
            for pkt in venc.encode(&pic).expect("encode") {
                let out = vdec.decode(&pkt).expect("decode").expect("picture");
                let stamp = read_stamp(&out);
                if pkt.capture_time_us >= kill_at_us {
                    assert_eq!(stamp, None, "frame captured at {now} µs leaked after kill at {kill_at_us} µs");
                } else {
                    let stamp = stamp.expect("frame before kill readable");
                    assert!(stamp.capture_time_us < kill_at_us);
                }
            }
            next_video_us += FRAME_INTERVAL_US;
        }
        if now == next_audio_us {
            let block = audio.process(mic.next_frame(OPUS_FRAME_SAMPLES, now));
            let pkt = aenc.encode(&block).expect("encode");
            let pcm = adec.decode(&pkt).expect("decode").samples().to_f32();
            if pkt.capture_time_us >= kill_at_us {
                // Opus delays and smears its output: the first ~40 ms after the kill
                // still carry the decaying tail of the last real frame. From 60 ms on
                // the tone must be gone; before that it must only fall.
                let level = rms_dbfs(&pcm);
                if pkt.capture_time_us >= kill_at_us + 60_000 {
                    assert!(level < -60.0, "audio at {now} µs: {level:.1} dBFS");
                } else {
                    assert!(level < last_audio_db, "audio rose after kill at {now} µs: {level:.1} dBFS");
                }
                last_audio_db = level;
            } else {
                last_audio_db = rms_dbfs(&pcm).max(-10.0);
            }
            next_audio_us += 20_000;
        }
    }
    assert!(video.dropped_frames() > 0 || kill_at_us >= 2_000_000);
    while let Some(out) = ks.poll_output() {
        assert!(matches!(out, Output::Release(_) | Output::Open(_)));
    }
}

#[test]
fn kill_switch_virtual_time_nothing_after_kill_reaches_the_decoder() {
    for kill_at_us in [1, 33_333, 500_000, 999_999, 1_000_001, 1_777_777] {
        run_virtual_kill(kill_at_us);
    }
}

fn now_us(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Real threads, real clock, both cores busy: a capture thread delivers frames to
/// an encoder thread through a bounded channel while the test flips the switch.
#[test]
fn kill_switch_under_cpu_load_real_threads() {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("busy-{i}"))
                .spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
                .expect("spawn busy thread")
        })
        .collect();

    let epoch = Instant::now();
    let mut ks = KillSwitch::new(KillSwitchConfig::default());
    ks.handle_input(now_us(epoch), Input::Command { kind: DeviceKind::Camera, on: true });
    ks.handle_input(now_us(epoch), Input::Opened(DeviceKind::Camera));
    let gate = ks.gate(DeviceKind::Camera);

    let (frame_tx, frame_rx) = sync_channel(4);
    let capture_stop = Arc::new(AtomicBool::new(false));
    // Frames handed to the encoder so far: the test waits for counts, not for time, so a
    // starved capture thread makes it slower, never wrong.
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let capture = {
        let capture_stop = Arc::clone(&capture_stop);
        let sent = Arc::clone(&sent);
        std::thread::Builder::new()
            .name("test-capture".into())
            .spawn(move || {
                let mut cam = TestPatternCamera::new(320, 180, 30);
                while !capture_stop.load(Ordering::Relaxed) {
                    let frame = cam.next_frame(now_us(epoch));
                    if frame_tx.send(frame).is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
            .expect("spawn capture")
    };
    let encoder = std::thread::Builder::new()
        .name("test-encoder".into())
        .spawn(move || {
            let mut gated = GatedVideo::new(gate, 320, 180);
            let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(320, 180, 400_000)).expect("encoder");
            let mut dec = Vp8Decoder::new(1).expect("decoder");
            let mut decoded = Vec::new();
            for frame in frame_rx {
                let pic = gated.process(frame);
                for pkt in enc.encode(&pic).expect("encode") {
                    let out = dec.decode(&pkt).expect("decode").expect("picture");
                    decoded.push((pkt.capture_time_us, read_stamp(&out)));
                }
            }
            decoded
        })
        .expect("spawn encoder");

    let wait_for_sent = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the capture thread delivered only {} frames", sent.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for_sent(12);
    let kill_at = now_us(epoch);
    ks.handle_input(kill_at, Input::Command { kind: DeviceKind::Camera, on: false });
    // The device keeps delivering for a while (as a slow driver would): 12 more frames, plus
    // the channel's 4 that may have been queued before the kill.
    let at_kill = sent.load(Ordering::Relaxed);
    wait_for_sent(at_kill + 16);
    capture_stop.store(true, Ordering::Relaxed);
    capture.join().expect("capture thread");
    let decoded = encoder.join().expect("encoder thread");
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().expect("busy thread");
    }

    let before = decoded.iter().filter(|(t, _)| *t < kill_at).count();
    let after = decoded.iter().filter(|(t, _)| *t >= kill_at).count();
    eprintln!("under load: {before} frames before kill, {after} after");
    assert!(before > 5 && after > 5, "test must see both sides: {before}/{after}");
    for (t, stamp) in &decoded {
        match stamp {
            Some(s) => assert!(s.capture_time_us < kill_at, "frame captured at {t} µs leaked (kill at {kill_at})"),
            None => assert!(*t >= kill_at, "frame captured at {t} µs before the kill was lost"),
        }
    }
}

// ---- model-based test of the kill switch on virtual time

#[derive(Debug, Clone)]
enum Action {
    User(DeviceKind, bool),
    Panic,
    OpenSucceeds(DeviceKind),
    OpenFails(DeviceKind),
    DeviceLost(DeviceKind),
    ReleaseConfirmed(DeviceKind),
    Wait(u16),
}

fn kind_strategy() -> impl Strategy<Value = DeviceKind> {
    prop_oneof![Just(DeviceKind::Camera), Just(DeviceKind::Microphone), Just(DeviceKind::ScreenShare)]
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (kind_strategy(), any::<bool>()).prop_map(|(k, on)| Action::User(k, on)),
        1 => Just(Action::Panic),
        3 => kind_strategy().prop_map(Action::OpenSucceeds),
        1 => kind_strategy().prop_map(Action::OpenFails),
        1 => kind_strategy().prop_map(Action::DeviceLost),
        3 => kind_strategy().prop_map(Action::ReleaseConfirmed),
        2 => any::<u16>().prop_map(Action::Wait),
    ]
}

/// The simulated driver and device of one kind.
#[derive(Debug, Default, Clone, Copy)]
struct SimDevice {
    open: bool,
    opening: bool,
    closes_to_confirm: u32,
    opens_since_user_on: u32,
}

fn idx(kind: DeviceKind) -> usize {
    DeviceKind::ALL.iter().position(|&k| k == kind).unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn kill_switch_model(actions in proptest::collection::vec(action_strategy(), 1..80)) {
        let config = KillSwitchConfig::default();
        let mut ks = KillSwitch::new(config);
        let mut sim = [SimDevice::default(); 3];
        let mut wants_on = [false; 3];
        let mut now = 0u64;
        let mut last_state = [DeviceState::Off, DeviceState::Off, DeviceState::Off];
        for action in actions {
            now += 1;
            let input = match action {
                Action::User(kind, on) => {
                    if on && (!wants_on[idx(kind)] || matches!(ks.state(kind), DeviceState::Failed(_))) {
                        sim[idx(kind)].opens_since_user_on = 0;
                    }
                    wants_on[idx(kind)] = on;
                    Some(Input::Command { kind, on })
                }
                Action::Panic => {
                    wants_on = [false; 3];
                    Some(Input::PanicAllOff)
                }
                Action::OpenSucceeds(kind) if sim[idx(kind)].opening => {
                    let d = &mut sim[idx(kind)];
                    d.opening = false;
                    d.open = true;
                    Some(Input::Opened(kind))
                }
                Action::OpenFails(kind) if sim[idx(kind)].opening => {
                    sim[idx(kind)].opening = false;
                    Some(Input::OpenFailed { kind, reason: "sim".into() })
                }
                Action::DeviceLost(kind) if sim[idx(kind)].open => {
                    sim[idx(kind)].open = false;
                    Some(Input::Lost { kind, reason: "sim".into() })
                }
                Action::ReleaseConfirmed(kind) if sim[idx(kind)].closes_to_confirm > 0 => {
                    sim[idx(kind)].closes_to_confirm -= 1;
                    Some(Input::Closed(kind))
                }
                Action::Wait(us) => {
                    now += u64::from(us);
                    None
                }
                _ => None,
            };
            if let Some(input) = input {
                ks.handle_input(now, input);
            }
            // The driver carries out every output at once.
            while let Some(out) = ks.poll_output() {
                match out {
                    Output::Open(kind) => {
                        let d = &mut sim[idx(kind)];
                        prop_assert!(!d.open, "{kind:?} opened twice");
                        d.opening = true;
                        d.opens_since_user_on += 1;
                        prop_assert!(
                            d.opens_since_user_on <= 1 + config.auto_reopen_attempts,
                            "{kind:?} reopened {} times", d.opens_since_user_on
                        );
                    }
                    Output::Release(kind) => {
                        let d = &mut sim[idx(kind)];
                        d.open = false;
                        d.opening = false;
                        d.closes_to_confirm += 1;
                    }
                    _ => {}
                }
            }
            // Events chain: each starts where the previous one ended.
            while let Some(Event { kind, from, to, at_us }) = ks.poll_event() {
                prop_assert_eq!(at_us, now);
                prop_assert_eq!(&from, &last_state[idx(kind)]);
                last_state[idx(kind)] = to;
            }
            for kind in DeviceKind::ALL {
                let d = sim[idx(kind)];
                let state = ks.state(kind);
                prop_assert_eq!(state, &last_state[idx(kind)]);
                prop_assert_eq!(ks.wants_on(kind), wants_on[idx(kind)]);
                let gate = ks.gate(kind);
                if !wants_on[idx(kind)] {
                    // The promise: nothing captured from now on passes.
                    prop_assert!(!gate.admits(now) && !gate.admits(now + 1_000_000), "{kind:?} gate open while off");
                }
                match state {
                    DeviceState::Off => prop_assert!(!d.open && !d.opening, "{kind:?} Off but device open"),
                    DeviceState::On => prop_assert!(d.open, "{kind:?} On but device closed"),
                    DeviceState::Failed(_) => {
                        prop_assert!(!d.open && !d.opening, "{kind:?} Failed but device held");
                        prop_assert!(!gate.admits(now), "{kind:?} gate open while failed");
                    }
                    _ => {}
                }
            }
        }
    }
}
