#!/usr/bin/env python3
"""Headless Chromium in a Janus VideoRoom, driven by chromedriver through selenium.

Run inside the test namespace (`ip netns exec blende-ns …`) with the venv from setup-browser.sh:

    chromium_janus.py publish   --room 7777 --seconds 20
    chromium_janus.py subscribe --room 6666 --seconds 20 [--min-frames 30]
    chromium_janus.py both      --room 8888 --seconds 20   (publish and receive: benchmarks)

`publish` sends Chromium's fake camera and microphone; `subscribe` receives the first other
publisher in the room. Prints one JSON line with the outcome (getStats figures, plus CPU
seconds and peak RSS summed over Chromium's processes) and exits 0 on success.
Uses Debian's chromium/chromedriver and janus.js; never downloads anything (SE_OFFLINE=true).
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ["SE_OFFLINE"] = "true"
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

JANUS_JS = "/usr/share/javascript/janus-gateway/janus.js"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="file://%(janus_js)s"></script></head><body>
<script>
window.__state = {phase: 'init', errors: []};
const ROOM = %(room)d, MODE = '%(mode)s', CAPTURE = %(capture)s;
const S = window.__state;
function err(e) { S.errors.push(String(e && e.message || e)); }
Janus.init({debug: false,
  dependencies: Janus.useDefaultDependencies({adapter: {browserDetails: {browser: 'chrome', version: 156}}}),
  callback: function() {
  const janus = new Janus({server: 'ws://127.0.0.1:8188/', iceServers: [], error: err, success: function() {
    let pub = null, sub = null, subscribed = false;
    function subscribeTo(list) {
      if (MODE === 'publish' || subscribed || !list || !list.length) return;
      subscribed = true;
      const feed = list[0].id;
      S.feed = feed;
      janus.attach({plugin: 'janus.plugin.videoroom', error: err,
        success: function(h) { sub = h; window.__sub = h;
          h.send({message: {request: 'join', ptype: 'subscriber', room: ROOM, streams: [{feed: feed}]}}); },
        onmessage: function(msg, jsep) {
          if (msg.error) err(msg.error);
          if (jsep) sub.createAnswer({jsep: jsep, tracks: [{type: 'data'}], error: err,
            success: function(ans) { sub.send({message: {request: 'start', room: ROOM}, jsep: ans}); }});
        },
        webrtcState: function(on) { S.subscriberUp = on; },
        onremotetrack: function(track, mid, on) { if (on) S.remoteTracks = (S.remoteTracks || 0) + 1; }
      });
    }
    janus.attach({plugin: 'janus.plugin.videoroom', error: err,
      success: function(h) { pub = h; window.__pub = h;
        h.send({message: {request: 'join', ptype: 'publisher', room: ROOM, display: 'Chromium'}}); },
      onmessage: function(msg, jsep) {
        if (msg.error) err(msg.error);
        if (msg.videoroom === 'joined') {
          S.phase = 'joined';
          if (MODE !== 'subscribe') {
            pub.createOffer({tracks: [{type: 'audio', capture: true, recv: false}, {type: 'video', capture: CAPTURE, recv: false}],
              error: err, success: function(offer) { pub.send({message: {request: 'publish'}, jsep: offer}); }});
          }
        }
        if (msg.publishers) subscribeTo(msg.publishers);
        if (jsep) pub.handleRemoteJsep({jsep: jsep});
      },
      webrtcState: function(on) { S.publisherUp = on; }
    });
  }});
}});
async function stats() {
  const out = {framesDecoded: 0, bytesSent: 0, framesSent: 0, audioBytesReceived: 0};
  for (const h of [window.__pub, window.__sub]) {
    const pc = h && h.webrtcStuff && h.webrtcStuff.pc;
    if (!pc) continue;
    const report = await pc.getStats();
    report.forEach(function(r) {
      if (r.type === 'inbound-rtp' && r.kind === 'video') { out.framesDecoded += r.framesDecoded || 0;
        out.frameWidth = r.frameWidth; out.frameHeight = r.frameHeight; }
      if (r.type === 'inbound-rtp' && r.kind === 'audio') out.audioBytesReceived += r.bytesReceived || 0;
      if (r.type === 'outbound-rtp') { out.bytesSent += r.bytesSent || 0; if (r.kind === 'video') out.framesSent += r.framesSent || 0; }
    });
  }
  return out;
}
window.__stats = stats;
</script></body></html>
"""


def chromium_processes(marker):
    """PIDs of Chromium processes started with our user-data-dir."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def cpu_and_rss(pids):
    tick = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return cpu, rss


def start_chromium(profile, extra_flags):
    """Debian's headless Chromium through chromedriver, with our own profile folder (whose name
    finds its processes), no background traffic, and loopback ICE allowed."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
                 "--disable-dev-shm-usage", *extra_flags]:
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["publish", "subscribe", "both"])
    ap.add_argument("--room", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--min-frames", type=int, default=1)
    ap.add_argument("--capture", default="stdres", choices=["stdres", "hires"],
                    help="fake camera size: stdres 640x480, hires 1280x720")
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="blende-chromium-")
    tmp = tempfile.mkdtemp(prefix="blende-page-")
    page = os.path.join(tmp, "page.html")
    with open(page, "w") as f:
        f.write(PAGE % {"janus_js": JANUS_JS, "room": args.room, "mode": args.mode,
                       "capture": "'%s'" % args.capture})

    driver = start_chromium(profile, ["--disable-quic", "--use-fake-device-for-media-stream",
                                      "--use-fake-ui-for-media-stream", "--allow-file-access-from-files"])
    result = {"mode": args.mode, "ok": False}
    peak_rss = 0
    try:
        t0 = time.time()
        driver.get("file://" + page)
        deadline = t0 + args.seconds
        first_frame_s = None
        stats = {}
        while time.time() < deadline:
            time.sleep(0.5)
            stats = driver.execute_async_script("const done = arguments[0]; window.__stats().then(done, e => done({error: String(e)}));")
            state = driver.execute_script("return window.__state;")
            _, rss = cpu_and_rss(chromium_processes(profile))
            peak_rss = max(peak_rss, rss)
            receiving = args.mode in ("subscribe", "both")
            if receiving and stats.get("framesDecoded", 0) > 0 and first_frame_s is None:
                first_frame_s = time.time() - t0
            if receiving and stats.get("framesDecoded", 0) >= args.min_frames:
                result["ok"] = True
                if args.seconds <= 0 or os.environ.get("BLENDE_CHROMIUM_EARLY_EXIT") == "1":
                    break
            if args.mode == "publish" and stats.get("bytesSent", 0) > 0:
                result["ok"] = True
        cpu, _ = cpu_and_rss(chromium_processes(profile))
        result.update({"stats": stats, "state": state, "first_frame_s": first_frame_s,
                       "chromium_cpu_s": round(cpu, 2), "chromium_peak_rss_bytes": peak_rss})
    except Exception as e:  # report, don't hide
        result["error"] = repr(e)
    finally:
        driver.quit()
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
