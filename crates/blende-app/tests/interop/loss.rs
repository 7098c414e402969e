//! A call over a lossy, jittery link: for 30 s, 5 % of the UDP packets arriving in the test
//! namespace are dropped at random with nftables (`numgen random`) and every one that is left
//! is held 50 ms ± 20 ms (uniform, so packets overtake each other) by
//! `tests/interop/jitter_queue.py` behind an iptables NFQUEUE rule — this kernel has no netem.
//! On a mesh between two Blende clients each direction gets both; signalling over TCP is
//! untouched. Video must keep moving — the reorder buffer, NACK, retransmissions and keyframe
//! requests at work — and audio must play on: the playout buffer grows to the jitter, and
//! losses come back from Opus's in-band FEC where the next packet carries it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Participant, janus_or_skip, netns, serial};
use crate::reconnect::{NftTable, Pair, first_frame, own_id, room_pair_with};

/// `pct` % of arriving UDP packets are dropped while this lives.
fn lossy_link(pct: u32) -> NftTable {
    NftTable::input("blende_loss", &format!("policy accept; meta l4proto udp numgen random mod 100 < {pct} drop;"))
}

/// Every UDP packet arriving in the test namespace is held `mean_ms` ± `spread_ms` while this
/// lives (an NFQUEUE rule and `jitter_queue.py` on its queue; `--queue-bypass` lets packets
/// through should the script die).
struct Jitter {
    child: Child,
    rule: Vec<String>,
}

const JITTER_QUEUE: &str = "7";

impl Jitter {
    fn new(mean_ms: u32, spread_ms: u32) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/jitter_queue.py");
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns(),
                "python3",
                script,
                JITTER_QUEUE,
                &mean_ms.to_string(),
                &spread_ms.to_string(),
                "--seed",
                "19",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 for jitter_queue.py");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut first).expect("jitter_queue.py output");
        assert_eq!(first.trim(), "ready", "jitter_queue.py did not bind its queue (Debian libnetfilter-queue1)");
        let rule: Vec<String> =
            ["INPUT", "-p", "udp", "-j", "NFQUEUE", "--queue-num", JITTER_QUEUE, "--queue-bypass"].into_iter().map(String::from).collect();
        iptables("-A", &rule);
        Jitter { child, rule }
    }

    /// Lifts the rule, lets the held packets go and returns the script's figures.
    fn end(mut self) -> String {
        iptables("-D", &self.rule);
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let mut out = String::new();
        let _ = self.child.stdout.take().expect("stdout").read_to_string(&mut out);
        let _ = self.child.wait();
        out.trim().to_owned()
    }
}

impl Drop for Jitter {
    fn drop(&mut self) {
        // Also while a failed assertion unwinds (after `end` the rule is gone already).
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("ip").args(["netns", "exec", &netns(), "iptables", "-D"]).args(&self.rule).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn iptables(op: &str, rule: &[String]) {
    let status = Command::new("ip")
        .args(["netns", "exec", &netns(), "iptables", op])
        .args(rule)
        .status()
        .expect("iptables (Debian package iptables) in the namespace");
    assert!(status.success(), "iptables {op} {rule:?} failed");
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

/// Passed 3 runs of 4 since the pacing fix (98–101 % of pictures, waits ≤ 534 ms). In the
/// fourth (a CI-equivalent run) one direction froze for 3.7 s with audio untouched: a lost
/// keyframe the receiver's requests did not bring back, the stall the thin-uplink test shows
/// at length (issue 19).
#[test]
fn five_percent_loss_and_jitter_keep_video_moving_and_fec_recovers_audio() {
    let _serial = serial();
    if !janus_or_skip("five_percent_loss_and_jitter_keep_video_moving_and_fec_recovers_audio") {
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
    let jitter = Jitter::new(50, 20);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(30));
    let applied = jitter.end();
    drop(loss);
    eprintln!("jitter applied: {applied}");
    std::thread::sleep(Duration::from_millis(1500));
    // The first 5 s are the estimators' to adapt; the figures are for the 25 s after.
    let (from, to) = (started + Duration::from_secs(5), started + Duration::from_secs(30));

    let mut failures = Vec::new();
    for (receiver, sender, feed) in [(&bernd, &anna, a.as_str()), (&anna, &bernd, b.as_str())] {
        // Both directions are measured and printed before any assertion fails.
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(what);
            }
        };
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
        let stretched = growth(&received, "audio_stretched", from, to);
        let (lost, arrived) = (growth(&received, "packets_lost", from, to), growth(&received, "packets_received", from, to));
        let rtts: Vec<u64> = received.iter().filter(|(t, _)| *t > from && *t <= to).filter_map(|(_, v)| v["rtt_ms"].as_u64()).collect();
        let delays: Vec<u64> =
            received.iter().filter(|(t, _)| *t > from && *t <= to).filter_map(|(_, v)| v["audio_playout_delay_ms"].as_u64()).collect();
        eprintln!(
            "5 % loss, 50 ± 20 ms, {} receiving {}: {decoded} of {sent} frames sent decoded ({:.0} %), longest wait for a picture {longest} ms; audio {audio} blocks, {recovered} lost packets recovered by FEC, {concealed} concealed, {stretched} stretched, playout delay {:?}..{:?} ms",
            receiver.name,
            sender.name,
            100.0 * decoded as f64 / sent.max(1) as f64,
            delays.iter().min(),
            delays.iter().max(),
        );
        eprintln!(
            "  link as reported: {lost} of {} packets lost, round trip {:?}..{:?} ms",
            lost + arrived,
            rtts.iter().min(),
            rtts.iter().max()
        );
        // Second by second, for when it fails: pictures, longest wait, audio blocks.
        let timeline: Vec<String> = received
            .iter()
            .filter(|(t, _)| *t > from && *t <= to)
            .map(|(_, v)| format!("{}/{}/{}", v["frames_since_last"], v["picture_gap_max_ms"], v["audio_frames_since_last"]))
            .collect();
        eprintln!("  per second (pictures/longest wait ms/audio blocks): {}", timeline.join(" "));
        check(sent > 0, format!("{}: nothing sent in the window", sender.name));
        check(decoded * 5 >= sent * 4, format!("{}: {decoded} of {sent} frames decoded, below 80 %", receiver.name));
        check(longest <= 1000, format!("{}: a freeze of {longest} ms", receiver.name));
        check(recovered > 0 && recovered >= concealed, format!("{}: FEC recovered {recovered}, concealed {concealed}", receiver.name));
        // 20 ms blocks keep coming: about 50 a second, lost ones filled in.
        check(audio >= 24 * 50, format!("{}: {audio} audio blocks in 25 s", receiver.name));
        // The statistics see the link: about 5 % lost, 100 ms there and back (50 ms each way).
        check(
            lost * 100 >= (lost + arrived) * 2 && lost * 100 <= (lost + arrived) * 10,
            format!("{}: {lost} of {} lost", receiver.name, lost + arrived),
        );
        check(rtts.iter().any(|&r| (70..=250).contains(&r)), format!("{}: round trips {rtts:?} ms", receiver.name));
        // The playout buffer followed the jitter (40 ms spread: above its 40 ms floor).
        check(delays.iter().any(|&d| d > 40), format!("{}: playout delay stayed at {delays:?} ms", receiver.name));
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}
