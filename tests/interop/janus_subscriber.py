#!/usr/bin/env python3
"""An independent receiver: aiortc subscribes to one Janus VideoRoom feed, chosen by display name.

    janus_subscriber.py --room 1234 --display "Referent (screen)" [--ws ws://127.0.0.1:8188/]
                        [--ice-ip 127.0.0.2] [--seconds 60]

Prints one JSON line per event on stdout: `subscribed` (the feed id), then `frame` for every
decoded picture with the wall-clock time it was decoded (`unix_us`), its size and the mean
luma of its central 1/8 x 1/8, and `ended` when the feed's track ends or the time is up. No
STUN server (iceServers=[]). Run inside the test namespace; aioice skips loopback addresses,
so the ICE address is given explicitly.
"""
import argparse
import asyncio
import json
import random
import time

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


def log(**event):
    print(json.dumps(event), flush=True)


def tid():
    return "%016x" % random.getrandbits(64)


class Janus:
    """Just enough of the Janus WebSocket API for one subscriber handle."""

    def __init__(self, ws):
        self.ws = ws
        self.session = None
        self.handle = None
        self.events = asyncio.Queue()
        self.waiting = {}

    async def reader(self):
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            t = data.get("transaction")
            if data.get("janus") == "ack":
                continue
            if t in self.waiting and data.get("janus") in ("success", "error"):
                self.waiting.pop(t).set_result(data)
            else:
                await self.events.put(data)

    async def call(self, body, **extra):
        t = tid()
        fut = asyncio.get_running_loop().create_future()
        self.waiting[t] = fut
        msg = dict(janus=body, transaction=t, **extra)
        if self.session:
            msg["session_id"] = self.session
        await self.ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, 10)

    async def message(self, body, jsep=None):
        extra = {"handle_id": self.handle, "body": body}
        if jsep:
            extra["jsep"] = jsep
        t = tid()
        msg = dict(janus="message", transaction=t, session_id=self.session, **extra)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[t] = fut
        await self.ws.send_str(json.dumps(msg))
        return fut

    async def keepalive(self):
        while True:
            await asyncio.sleep(20)
            await self.ws.send_str(json.dumps(dict(janus="keepalive", session_id=self.session, transaction=tid())))


async def find_feed(janus, room, display, deadline):
    while time.time() < deadline:
        fut = await janus.message({"request": "listparticipants", "room": room})
        reply = await asyncio.wait_for(fut, 10)
        for p in reply.get("plugindata", {}).get("data", {}).get("participants", []):
            if p.get("display") == display and p.get("publisher"):
                return p["id"]
        await asyncio.sleep(0.3)
    return None


def centre_luma(frame):
    plane = frame.to_ndarray(format="gray")
    h, w = plane.shape
    bh, bw = max(h // 8, 1), max(w // 8, 1)
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    return float(plane[y0 : y0 + bh, x0 : x0 + bw].mean())


async def run(args):
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ice_ip]
    deadline = time.time() + args.seconds
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(args.ws, protocols=["janus-protocol"]) as ws:
            janus = Janus(ws)
            reader = asyncio.ensure_future(janus.reader())
            janus.session = (await janus.call("create"))["data"]["id"]
            janus.handle = (await janus.call("attach", plugin="janus.plugin.videoroom"))["data"]["id"]
            keepalive = asyncio.ensure_future(janus.keepalive())
            feed = await find_feed(janus, args.room, args.display, deadline)
            if feed is None:
                log(event="error", message="no such feed")
                return
            await janus.message({"request": "join", "ptype": "subscriber", "room": args.room, "streams": [{"feed": feed}]})
            offer = None
            while offer is None:
                ev = await asyncio.wait_for(janus.events.get(), 10)
                offer = ev.get("jsep")
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            done = asyncio.Event()

            @pc.on("track")
            def on_track(track):
                if track.kind != "video":
                    return

                async def pull():
                    while True:
                        try:
                            frame = await track.recv()
                        except Exception:
                            break
                        log(event="frame", unix_us=int(time.time() * 1e6), width=frame.width, height=frame.height, luma=centre_luma(frame))
                    done.set()

                asyncio.ensure_future(pull())

            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
            await janus.message({"request": "start", "room": args.room}, {"type": "answer", "sdp": pc.localDescription.sdp})
            log(event="subscribed", feed=feed)
            try:
                await asyncio.wait_for(done.wait(), max(deadline - time.time(), 0.1))
            except asyncio.TimeoutError:
                pass
            log(event="ended")
            keepalive.cancel()
            reader.cancel()
            await pc.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws", default="ws://127.0.0.1:8188/")
    ap.add_argument("--room", type=int, required=True)
    ap.add_argument("--display", required=True)
    ap.add_argument("--ice-ip", default="127.0.0.2")
    ap.add_argument("--seconds", type=float, default=60)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
