#!/usr/bin/env python3
"""A hostile room server for the identity-check test: a WebSocket proxy in front of the real
Blende room server that, with --mitm, sits in the middle of every direct data connection.

It relays every frame between a client and the server unchanged, except the offers and answers
of the `data` stream (the direct connection that carries chat and documents once a meeting runs
on Janus). Those it keeps: it answers the offerer itself and makes its own offer to the other
member, with aiortc (an independent WebRTC stack), so it terminates DTLS on both sides with
certificates of its own, and it copies every data-channel message from one side to the other.
Both clients see an open link, and chat flows; only the identity codes (derived from the
certificates each side saw) tell. Without --mitm the proxy only relays.

Prints one JSON line when it listens ({"listening": "127.0.0.1:PORT"}), then one per event
({"relayed": n, "chat": [...]} as chat passes through it).

Usage: mitm_relay.py --upstream ws://127.0.0.1:PORT/ [--mitm] [--ice-ip 127.0.0.2]
"""

import argparse
import asyncio
import json
import sys

import aiohttp
from aiohttp import web

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


def say(**fields):
    print(json.dumps(fields), flush=True)


class Bridge:
    """Two aiortc connections, one to each member, and the data copied between them."""

    def __init__(self):
        self.to_offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.to_answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channels = {}
        self.waiting = {"offerer": [], "answerer": []}
        self.relayed = 0
        self.chat = []

    def attach(self, side, channel):
        other = "answerer" if side == "offerer" else "offerer"
        self.channels[side] = channel

        @channel.on("open")
        def _open():
            for m in self.waiting[side]:
                channel.send(m)
            self.waiting[side].clear()

        @channel.on("message")
        def _message(message):
            self.relayed += 1
            if isinstance(message, (bytes, bytearray)) and message[:1] == b"J":
                try:
                    control = json.loads(message[1:])
                    if control.get("type") == "chat":
                        self.chat.append(control.get("text"))
                        say(relayed=self.relayed, chat=self.chat)
                except ValueError:
                    pass
            target = self.channels.get(other)
            if target is not None and target.readyState == "open":
                target.send(message)
            else:
                self.waiting[other].append(message)

        if channel.readyState == "open":
            _open()


class Proxy:
    def __init__(self, upstream, mitm):
        self.upstream = upstream
        self.mitm = mitm
        # offerer participant id -> (bridge, the offerer's client socket, answerer id)
        self.bridges = {}

    async def handle(self, request):
        client = web.WebSocketResponse(max_msg_size=4 << 20)
        await client.prepare(request)
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.upstream, max_msg_size=4 << 20) as server:
                await asyncio.gather(self.up(client, server), self.down(client, server))
        return client

    async def up(self, client, server):
        """Client to server."""
        async for msg in client:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if self.mitm and frame.get("stream") == "data" and frame.get("type") in ("offer", "answer"):
                await self.intercept(frame, client, server)
                continue
            await server.send_str(msg.data)
        await server.close()

    async def down(self, client, server):
        """Server to client."""
        async for msg in server:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame.get("type") == "lobby" and frame.get("participant_id") is not None:
                client.blende_id = frame["participant_id"]
            await client.send_str(msg.data)
        await client.close()

    async def intercept(self, frame, client, server):
        if frame["type"] == "offer":
            # A member offers a direct connection to `to`: we answer as `to`, and offer to `to`
            # ourselves, as the offerer (the server relays it with the offerer's id).
            bridge = Bridge()
            self.bridges[getattr(client, "blende_id", None)] = bridge

            @bridge.to_offerer.on("datachannel")
            def _theirs(channel):
                bridge.attach("offerer", channel)

            await bridge.to_offerer.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
            await bridge.to_offerer.setLocalDescription(await bridge.to_offerer.createAnswer())
            answer = {"type": "answer", "from": frame["to"], "sdp": bridge.to_offerer.localDescription.sdp, "stream": "data"}
            await client.send_str(json.dumps(answer))
            ours = bridge.to_answerer.createDataChannel("blende-p2p/1", ordered=True, protocol="blende-p2p/1")
            bridge.attach("answerer", ours)
            await bridge.to_answerer.setLocalDescription(await bridge.to_answerer.createOffer())
            offer = {"type": "offer", "to": frame["to"], "sdp": bridge.to_answerer.localDescription.sdp, "stream": "data"}
            await server.send_str(json.dumps(offer))
            say(intercepted="offer", to=frame["to"])
        else:
            # The other member answers the offer we made in the offerer's name.
            bridge = self.bridges.get(frame["to"])
            if bridge is None:
                say(error="an answer for an offer we never made", to=frame["to"])
                return
            await bridge.to_answerer.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
            say(intercepted="answer", to=frame["to"])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--mitm", action="store_true")
    parser.add_argument("--ice-ip", default="127.0.0.2")
    args = parser.parse_args()
    # aioice leaves loopback out of its host candidates: use the namespace's ICE address.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ice_ip]
    proxy = Proxy(args.upstream, args.mitm)
    app = web.Application()
    app.router.add_get("/", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    say(listening=f"127.0.0.1:{port}")
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
