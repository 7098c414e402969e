#!/usr/bin/env python3
"""Delay and jitter for the test namespace, where this kernel has no netem.

Packets that an iptables NFQUEUE rule hands to queue NUM are held in user space and let go
after MEAN ± SPREAD milliseconds (uniform, independently per packet, as netem's `delay MEAN
SPREAD` does, so packets overtake each other). Uses libnetfilter_queue (Debian
libnetfilter-queue1) through ctypes: nothing to build.

    jitter_queue.py NUM MEAN_MS SPREAD_MS [--seed S]

Prints `ready` once the queue is bound, and on SIGTERM/SIGINT one line of figures:
`packets=N mean_ms=… min_ms=… max_ms=… reordered=…` (what was really applied, measured from
when each packet reached this process to when its verdict was given). Packets still held
then are let go at once.
"""

import argparse
import ctypes
import heapq
import random
import select
import signal
import socket
import sys
import time

NF_ACCEPT = 1
NFQNL_COPY_META = 1
AF_INET = 2


class PacketHdr(ctypes.BigEndianStructure):
    _pack_ = 1
    _fields_ = [("packet_id", ctypes.c_uint32), ("hw_protocol", ctypes.c_uint16), ("hook", ctypes.c_uint8)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("num", type=int)
    ap.add_argument("mean_ms", type=float)
    ap.add_argument("spread_ms", type=float)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    lib = ctypes.CDLL("libnetfilter_queue.so.1", use_errno=True)
    lib.nfq_open.restype = ctypes.c_void_p
    lib.nfq_create_queue.restype = ctypes.c_void_p
    lib.nfq_create_queue.argtypes = [ctypes.c_void_p, ctypes.c_uint16, CALLBACK, ctypes.c_void_p]
    lib.nfq_set_mode.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32]
    lib.nfq_set_queue_maxlen.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.nfq_fd.argtypes = [ctypes.c_void_p]
    lib.nfq_handle_packet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.nfq_get_msg_packet_hdr.restype = ctypes.POINTER(PacketHdr)
    lib.nfq_get_msg_packet_hdr.argtypes = [ctypes.c_void_p]
    lib.nfq_set_verdict.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
    lib.nfq_destroy_queue.argtypes = [ctypes.c_void_p]
    lib.nfq_close.argtypes = [ctypes.c_void_p]

    h = lib.nfq_open()
    if not h:
        sys.exit(f"nfq_open failed (errno {ctypes.get_errno()}): run as root in the namespace")
    held = []  # heap of (due, arrival order, packet id, arrived)
    order = [0]
    applied = []  # delays in ms
    last_released = [-1]
    reordered = [0]

    def on_packet(_qh, _nfmsg, nfad, _data):
        hdr = lib.nfq_get_msg_packet_hdr(nfad)
        if hdr:
            now = time.monotonic()
            delay = max(0.0, args.mean_ms + rng.uniform(-args.spread_ms, args.spread_ms)) / 1000.0
            heapq.heappush(held, (now + delay, order[0], hdr.contents.packet_id, now))
            order[0] += 1
        return 0

    callback = CALLBACK(on_packet)
    qh = lib.nfq_create_queue(h, args.num, callback, None)
    if not qh:
        sys.exit(f"nfq_create_queue {args.num} failed (errno {ctypes.get_errno()})")
    if lib.nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0:
        sys.exit("nfq_set_mode failed")
    lib.nfq_set_queue_maxlen(qh, 20000)
    fd = lib.nfq_fd(h)
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.setblocking(False)
    buf = ctypes.create_string_buffer(65536)

    def release(upto):
        while held and held[0][0] <= upto:
            _due, seq, pid, arrived = heapq.heappop(held)
            lib.nfq_set_verdict(qh, pid, NF_ACCEPT, 0, None)
            applied.append((time.monotonic() - arrived) * 1000.0)
            if seq < last_released[0]:
                reordered[0] += 1
            last_released[0] = max(last_released[0], seq)

    stop = [False]

    def on_signal(_sig, _frame):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    while not stop[0]:
        wait = 0.05 if not held else max(0.0, held[0][0] - time.monotonic())
        try:
            readable, _, _ = select.select([sock], [], [], wait)
        except InterruptedError:
            continue
        if readable:
            while True:
                try:
                    n = sock.recv_into(buf)
                except BlockingIOError:
                    break
                except OSError as e:  # ENOBUFS: the kernel dropped queued packets' messages
                    print(f"recv: {e}", file=sys.stderr, flush=True)
                    break
                lib.nfq_handle_packet(h, buf, n)
        release(time.monotonic())
    release(float("inf"))
    if applied:
        print(
            f"packets={len(applied)} mean_ms={sum(applied) / len(applied):.1f} min_ms={min(applied):.1f} "
            f"max_ms={max(applied):.1f} reordered={reordered[0]}",
            flush=True,
        )
    else:
        print("packets=0", flush=True)
    sock.detach()
    lib.nfq_destroy_queue(qh)
    lib.nfq_close(h)


if __name__ == "__main__":
    main()
