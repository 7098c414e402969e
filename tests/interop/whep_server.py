#!/usr/bin/env python3
"""A WHEP endpoint served by aiortc (an independent WebRTC stack), for Blende's WHEP tests.

    whep_server.py --port 7443 [--tls CERT KEY] [--token SECRET] [--ice-ip 127.0.0.2]

POST /whep/<endpoint> with an SDP offer (Content-Type: application/sdp) → 201 Created, the
answer and `Location: /whep/<endpoint>/<session>`; DELETE that location ends the session.
Media: a 320x240 picture at 30 fps whose colour bars move, and a 440 Hz tone at -12 dBFS.
No STUN server (iceServers=[]). Prints one JSON line per event on stdout (`listening`,
`session`, `deleted`). Run inside the test namespace; aioice skips loopback addresses, so the
ICE address is given explicitly.
"""
import argparse
import asyncio
import fractions
import json
import math
import ssl
import sys
import uuid

import numpy
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame


def log(**event):
    print(json.dumps(event), flush=True)


class Bars(VideoStreamTrack):
    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = numpy.zeros((240, 320, 3), numpy.uint8)
        for i in range(8):
            x = (i * 40 + self.n * 2) % 320
            img[:, x:x + 40] = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        self.n += 1
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    def __init__(self):
        super().__init__()
        self.t = 0

    async def recv(self):
        # AudioStreamTrack paces 20 ms frames; replace its silence with a tone.
        frame = await super().recv()
        samples = frame.samples
        amp = 32767 * 10 ** (-12 / 20)
        data = numpy.array([int(amp * math.sin(2 * math.pi * 440 * (self.t + i) / 48000)) for i in range(samples)], numpy.int16)
        self.t += samples
        out = AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = 48000
        out.pts = frame.pts
        out.time_base = fractions.Fraction(1, 48000)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--token")
    ap.add_argument("--ice-ip", default="127.0.0.2")
    args = ap.parse_args()

    import aioice.ice
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ice_ip]

    sessions = {}

    async def post(request):
        if args.token and request.headers.get("Authorization") != f"Bearer {args.token}":
            return web.Response(status=401, text="wrong token")
        if request.content_type != "application/sdp":
            return web.Response(status=415, text="expected application/sdp")
        offer = await request.text()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(Tone())
        pc.addTrack(Bars())
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sid = uuid.uuid4().hex
        sessions[sid] = pc
        endpoint = request.match_info["endpoint"]
        log(event="session", endpoint=endpoint, id=sid)
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": f"/whep/{endpoint}/{sid}"})

    async def delete(request):
        pc = sessions.pop(request.match_info["sid"], None)
        if pc is None:
            return web.Response(status=404)
        await pc.close()
        log(event="deleted", id=request.match_info["sid"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/whep/{endpoint}", post)
    app.router.add_delete("/whep/{endpoint}/{sid}", delete)
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls[0], args.tls[1])

    async def run():
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=context).start()
        log(event="listening", port=args.port, tls=bool(context))
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
