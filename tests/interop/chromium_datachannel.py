#!/usr/bin/env python3
"""Two RTCPeerConnections in one headless Chromium page, one RTCDataChannel between them:
`--megabytes` MB in 64 KiB messages (the size Blende's chunks have), the sender pacing itself
on bufferedAmountLow as browsers' file-transfer samples do. Prints one JSON line: seconds,
MB/s, and the peak RSS summed over Chromium's processes.

    chromium_datachannel.py --megabytes 500

Uses Debian's chromium/chromedriver through selenium; never downloads anything.
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ["SE_OFFLINE"] = "true"
from chromium_janus import chromium_processes, cpu_and_rss, start_chromium  # noqa: E402

PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body><script>
window.__state = {phase: 'init'};
const S = window.__state, TOTAL = %(total)d, CHUNK = 65536;
async function run() {
  const a = new RTCPeerConnection({iceServers: []}), b = new RTCPeerConnection({iceServers: []});
  a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
  const ch = a.createDataChannel('bench', {ordered: true});
  ch.binaryType = 'arraybuffer';
  let received = 0;
  b.ondatachannel = e => { e.channel.binaryType = 'arraybuffer';
    e.channel.onmessage = m => { received += m.data.byteLength;
      if (received >= TOTAL) { S.seconds = (performance.now() - S.t0) / 1000; S.phase = 'done'; } }; };
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await new Promise(r => ch.onopen = r);
  const buf = new Uint8Array(CHUNK);
  for (let i = 0; i < CHUNK; i++) buf[i] = i * 7;
  ch.bufferedAmountLowThreshold = 1 << 20;
  S.t0 = performance.now(); S.phase = 'sending';
  let sent = 0;
  const pump = () => {
    while (sent < TOTAL && ch.bufferedAmount < 4 << 20) { ch.send(buf); sent += CHUNK; }
    if (sent < TOTAL) ch.onbufferedamountlow = pump;
  };
  pump();
}
run().catch(e => { S.phase = 'error'; S.error = String(e); });
</script></body></html>
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--megabytes", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    total = args.megabytes * 1_000_000 // 65536 * 65536
    profile = tempfile.mkdtemp(prefix="blende-chromium-dc-")
    page = os.path.join(tempfile.mkdtemp(prefix="blende-page-"), "dc.html")
    with open(page, "w") as f:
        f.write(PAGE % {"total": total})
    driver = start_chromium(profile, [])
    result = {"ok": False, "bytes": total}
    peak = 0
    try:
        driver.get("file://" + page)
        deadline = time.time() + args.timeout
        state = {}
        while time.time() < deadline:
            time.sleep(0.2)
            state = driver.execute_script("return window.__state;")
            _, rss = cpu_and_rss(chromium_processes(profile))
            peak = max(peak, rss)
            if state.get("phase") in ("done", "error"):
                break
        cpu, _ = cpu_and_rss(chromium_processes(profile))
        if state.get("phase") == "done":
            result.update({"ok": True, "seconds": state["seconds"], "mb_per_s": total / 1e6 / state["seconds"]})
        result.update({"state": state, "chromium_cpu_s": round(cpu, 2), "chromium_peak_rss_bytes": peak})
    except Exception as e:  # report, don't hide
        result["error"] = repr(e)
    finally:
        driver.quit()
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
