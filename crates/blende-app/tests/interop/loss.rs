//! A call over a lossy link: for 30 s, 5 % of the UDP packets arriving in the test namespace
//! are dropped at random with nftables (`numgen random`), on a mesh between two Blende clients
//! (so each direction loses 5 %; signalling over TCP is untouched). Video must keep moving —
//! NACK, retransmissions and keyframe requests at work — and audio losses must come back from
//! Opus's in-band FEC where the next packet carries it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, serial};
use crate::reconnect::{NftTable, Pair, first_frame, own_id, room_pair_with};

/// `pct` % of arriving UDP packets are dropped while this lives.
fn lossy_link(pct: u32) -> NftTable {
    NftTable::input("blende_loss", &format!("policy accept; meta l4proto udp numgen random mod 100 < {pct} drop;"))
}

/// `p`'s statistics events for `feed` (`None`: its own sending), with their instants.
fn stats(p: &Participant, feed: Option<&str>) -> Vec<(Instant, Value)> {
    p.events().into_iter().filter(|v| v["event"] == "stats" && v["feed"].as_str() == feed).map(|v| (p.instant_of(&v), v)).collect()
}

/// A counter's growth over `(from, to]`, from cumulative values in `series`.
fn growth(series: &[(Instant, Value)], key: &str, from: Instant, to: Instant) -> u64 {
    let at = |t: Instant| series.iter().rev().find(|(i, _)| *i <= t).and_then(|(_, v)| v[key].as_u64()).unwrap_or(0);
    at(to).saturating_sub(at(from))
}

/// Not yet in the suite: it passed one run of two here. In the other, one direction froze for
/// 1.9 s and lost a fifth of its audio blocks at once — a stall in that client, not the network
/// (the other direction stayed at 100 %); found, not yet fixed (issue 19).
#[test]
#[ignore = "flaky: a receiving client stalls for ~2 s in about half the runs; run with --ignored"]
fn five_percent_loss_keeps_video_moving_and_fec_recovers_audio() {
    let _serial = serial();
    if !janus_or_skip("five_percent_loss_keeps_video_moving_and_fec_recovers_audio") {
        return;
    }
    // Small pictures at 15 fps: two debug-built clients and their decoders share two cores,
    // and a starved one would drop media for reasons other than the network.
    let Pair { anna, bernd, _room } = room_pair_with(&["--width", "160", "--height", "120", "--fps", "15"]);
    let (a, b) = (own_id(&anna), own_id(&bernd));
    first_frame(&bernd, &a, "video", Duration::from_secs(20));
    first_frame(&anna, &b, "video", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));

    let loss = lossy_link(5);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(30));
    drop(loss);
    std::thread::sleep(Duration::from_millis(1500));
    // The first 5 s are the estimators' to adapt; the figures are for the 25 s after.
    let (from, to) = (started + Duration::from_secs(5), started + Duration::from_secs(30));

    for (receiver, sender, feed) in [(&bernd, &anna, a.as_str()), (&anna, &bernd, b.as_str())] {
        let received = stats(receiver, Some(feed));
        let sent = growth(&stats(sender, None), "video_sent", from, to);
        let decoded: u64 =
            received.iter().filter(|(t, _)| *t > from && *t <= to).filter_map(|(_, v)| v["frames_since_last"].as_u64()).sum();
        let longest = received
            .iter()
            .filter(|(t, _)| *t > from && *t <= to + Duration::from_secs(1))
            .filter_map(|(_, v)| v["picture_gap_max_ms"].as_u64())
            .max()
            .unwrap_or(u64::MAX);
        let recovered = growth(&received, "audio_recovered", from, to);
        let concealed = growth(&received, "audio_concealed", from, to);
        let audio = growth(&received, "audio_frames", from, to);
        eprintln!(
            "5 % loss, {} receiving {}: {decoded} of {sent} frames sent decoded ({:.0} %), longest wait for a picture {longest} ms; audio {audio} blocks, {recovered} lost packets recovered by FEC, {concealed} concealed",
            receiver.name,
            sender.name,
            100.0 * decoded as f64 / sent.max(1) as f64
        );
        // Second by second, for when it fails: pictures, longest wait, audio blocks.
        let timeline: Vec<String> = received
            .iter()
            .filter(|(t, _)| *t > from && *t <= to)
            .map(|(_, v)| format!("{}/{}/{}", v["frames_since_last"], v["picture_gap_max_ms"], v["audio_frames_since_last"]))
            .collect();
        eprintln!("  per second (pictures/longest wait ms/audio blocks): {}", timeline.join(" "));
        assert!(sent > 0, "{}: nothing sent in the window", sender.name);
        assert!(decoded * 5 >= sent * 4, "{}: {decoded} of {sent} frames decoded, below 80 %", receiver.name);
        assert!(longest <= 1000, "{}: a freeze of {longest} ms", receiver.name);
        assert!(recovered > 0 && recovered >= concealed, "{}: FEC recovered {recovered}, concealed {concealed}", receiver.name);
        // 20 ms blocks keep coming: about 50 a second, lost ones filled in.
        assert!(audio >= 24 * 50, "{}: {audio} audio blocks in 25 s", receiver.name);
    }
}
