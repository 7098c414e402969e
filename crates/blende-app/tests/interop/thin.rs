//! A thin uplink: Blende publishes 1280×720 into the test Janus, and after the call settled
//! everything sent *to* Janus's media ports is capped at 500 kbit/s by `tc tbf` (this kernel
//! has neither netem nor the `fw` classifier: nftables puts the packets in an HTB class by
//! `meta priority`, the class's leaf is the tbf with a 200 ms queue, like a DSL router's).
//! What Janus sends back to the receiver is not capped. The sender's estimate must come down
//! below the cap, the camera must step down (smaller pictures, not a stalled stream), audio
//! must keep flowing and the receiver must never freeze for more than two seconds.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};
use crate::reconnect::{NftTable, first_frame, own_id};

/// A room with a 2 Mbit/s publisher limit, so the uncapped call runs above the cap.
const ROOM: u32 = 2468;
const CAP_BPS: u64 = 500_000;

/// UDP to Janus's RTP ports (20000–40000) goes through a 500 kbit/s tbf while this lives.
struct Cap {
    _mark: Option<NftTable>,
}

impl Cap {
    fn new() -> Self {
        // What a failed run may have left; from here on `Drop` removes it.
        let _ = Command::new("ip").args(["netns", "exec", &netns(), "tc", "qdisc", "del", "dev", "lo", "root"]).status();
        let mut cap = Cap { _mark: None };
        tc(&["qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20"]);
        for class in ["1:10", "1:20"] {
            tc(&["class", "add", "dev", "lo", "parent", "1:", "classid", class, "htb", "rate", "10gbit"]);
        }
        tc(&[
            "qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf", "rate", "500kbit", "burst", "16kb", "latency", "200ms",
        ]);
        cap._mark = Some(NftTable::output("blende_cap", "policy accept; udp dport 20000-40000 meta priority set \"1:10\";"));
        cap
    }

    /// Packets the tbf sent and dropped so far.
    fn counters() -> String {
        let out = Command::new("ip").args(["netns", "exec", &netns(), "tc", "-s", "qdisc", "show", "dev", "lo"]).output().expect("tc");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().skip_while(|l| !l.starts_with("qdisc tbf")).nth(1).unwrap_or("").trim().to_owned()
    }
}

impl Drop for Cap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "exec", &netns(), "tc", "qdisc", "del", "dev", "lo", "root"]).status();
    }
}

fn tc(args: &[&str]) {
    let status = Command::new("ip").args(["netns", "exec", &netns(), "tc"]).args(args).status().expect("tc (iproute2)");
    assert!(status.success(), "tc {args:?} failed");
}

fn series(p: &Participant, feed: Option<&str>) -> Vec<(Instant, Value)> {
    p.events().into_iter().filter(|v| v["event"] == "stats" && v["feed"].as_str() == feed).map(|v| (p.instant_of(&v), v)).collect()
}

/// Not yet in the suite (issue 19): since keyframe requests reach Janus (RR + PLI), the found
/// limit holds the target for 30 s and the camera steps down after a quarter of a second when
/// far too thin, the sender stays at 172-435 kbit/s from 10 s after the cap on, at 640×360
/// (from ~630 kbit/s at 1280×720), audio never stops, and 2 runs of 3 pass. The third freezes
/// for just over 2 s (2171 ms) at the onset: the 720p stream overflows the 200 ms queue until
/// the step-down, and its first pictures come 1-1.5 s after it.
#[test]
#[ignore = "the onset of the cap still freezes for 1.5-2.2 s, over the 2 s limit in about one run of three (issue 19); run with --ignored"]
fn a_thin_uplink_brings_the_estimate_below_the_cap_and_the_picture_down_without_a_freeze() {
    let _serial = serial();
    if !janus_or_skip("a_thin_uplink_brings_the_estimate_below_the_cap_and_the_picture_down_without_a_freeze") {
        return;
    }
    let sender = Participant::spawn("Sender", ROOM, &["--width", "1280", "--height", "720", "--fps", "15", "--bitrate-bps", "1500000"]);
    let receiver = Participant::spawn("Empfang", ROOM, &["--camera", "none", "--mic", "none"]);
    let feed = own_id(&sender);
    first_frame(&receiver, &feed, "video", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(6));
    let before = series(&sender, None).last().map(|(_, v)| v.clone()).expect("sender stats");
    let two_s_before = series(&sender, None).into_iter().rev().nth(4).map(|(_, v)| v).expect("sender stats");
    let rate_before = (before["bytes_sent"].as_u64().unwrap_or(0) - two_s_before["bytes_sent"].as_u64().unwrap_or(0)) * 8 * 1000
        / (before["t_ms"].as_u64().unwrap_or(0) - two_s_before["t_ms"].as_u64().unwrap_or(0)).max(1);

    let cap = Cap::new();
    let capped = Instant::now();
    std::thread::sleep(Duration::from_secs(25));
    let tbf = Cap::counters();
    drop(cap);
    std::thread::sleep(Duration::from_secs(1));

    let sent = series(&sender, None);
    let got = series(&receiver, Some(&feed));
    let after = |s: &[(Instant, Value)], secs: u64| -> Vec<Value> {
        s.iter()
            .filter(|(t, _)| *t >= capped + Duration::from_secs(secs) && *t <= capped + Duration::from_secs(25))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let settled = after(&sent, 10);
    // What was really sent, second by second (the estimate may run above what the encoder
    // fills; the link only carries what is sent).
    let rates: Vec<u64> = settled
        .iter()
        .step_by(2)
        .zip(settled.iter().skip(2).step_by(2))
        .map(|(a, b)| {
            let bytes = b["bytes_sent"].as_u64().unwrap_or(0).saturating_sub(a["bytes_sent"].as_u64().unwrap_or(0));
            let ms = b["t_ms"].as_u64().unwrap_or(0).saturating_sub(a["t_ms"].as_u64().unwrap_or(0)).max(1);
            bytes * 8 * 1000 / ms
        })
        .collect();
    let sizes: Vec<String> = settled.iter().map(|v| format!("{}×{}/{}", v["video_width"], v["video_height"], v["video_fps_div"])).collect();
    let received = after(&got, 0);
    let longest = received.iter().filter_map(|v| v["picture_gap_max_ms"].as_u64()).max().unwrap_or(u64::MAX);
    let audio_per_report: Vec<u64> = received.iter().filter_map(|v| v["audio_frames_since_last"].as_u64()).collect();
    let field = |key: &str| {
        let at = |i: usize| received.get(i).and_then(|v| v[key].as_u64()).unwrap_or(0);
        at(received.len().saturating_sub(1)).saturating_sub(at(0))
    };
    let (frames, concealed, audio) = (field("frames_decoded"), field("audio_concealed"), field("audio_frames"));
    eprintln!(
        "500 kbit/s cap: before {rate_before} bit/s sent (estimate {}) at {}×{}; sent after 10 s {:?}..{:?} bit/s (payload), sent as {sizes:?}; receiver: {frames} pictures in 25 s, longest wait {longest} ms, audio {audio} blocks ({concealed} concealed), per report {audio_per_report:?}; tbf: {tbf}",
        before["bitrate_bps"],
        before["video_width"],
        before["video_height"],
        rates.iter().min(),
        rates.iter().max(),
    );
    // Report by report from the cap on, for when it fails: estimate, size sent, pictures decoded.
    let timeline: Vec<String> = after(&sent, 0)
        .iter()
        .zip(received.iter())
        .map(|(s, r)| {
            format!(
                "{}k {}x{} {}B pli{} {} rx{}",
                s["bitrate_bps"].as_u64().unwrap_or(0) / 1000,
                s["video_width"],
                s["video_height"],
                s["bytes_sent"],
                s["keyframe_requests"],
                r["frames_since_last"],
                r["packets_received"]
            )
        })
        .collect();
    eprintln!("  per report: {}", timeline.join(" | "));
    assert!(rate_before > CAP_BPS, "the uncapped call sent {rate_before} bit/s, not above the cap");
    assert!(!rates.is_empty() && rates.iter().all(|&r| r < CAP_BPS), "sending not below the cap 10 s after it: {rates:?}");
    assert!(settled.iter().all(|v| v["video_width"].as_u64().is_some_and(|w| w < 1280)), "the camera did not step down: {sizes:?}");
    assert!(longest <= 2000, "a freeze of {longest} ms");
    assert!(frames >= 25 * 5, "{frames} pictures in 25 s");
    // Audio keeps flowing: about 25 blocks per 500 ms report, none missing for long.
    assert!(audio >= 24 * 50, "{audio} audio blocks in 25 s");
    assert!(audio_per_report.iter().skip(1).all(|&n| n >= 15), "an audio gap: {audio_per_report:?}");
    assert!(concealed * 20 <= audio, "{concealed} of {audio} audio blocks concealed");
}
