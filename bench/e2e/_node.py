#!/usr/bin/env python3
"""The benchmark server (our host) and the client-side protocol helpers the scenarios share.

Run as a process by the scenario orchestrators::

    python bench/e2e/_node.py --impl compiled --loop uvloop --muxer yamux

prints ``{"event": "listening", "addr": "/ip4/127.0.0.1/tcp/P/p2p/<id>", ...}`` and serves until
its stdin closes.  A ``{"cmd": "stats"}`` line on stdin makes it print ``{"event": "stats",
"connections": n, "rss_kib": k}`` (after a ``gc.collect()``).

Protocols served:

* ``/perf/1.0.0`` (the libp2p perf protocol): the client sends a u64 big-endian count, then
  uploads any number of bytes and closes its write side; the server reads to EOF, then sends
  the count's worth of bytes and closes.  Upload = (0, N), download = (N, 0).
* ``/echo/1.0.0``: every byte back, until EOF.
"""

from __future__ import annotations

import argparse
import gc
import struct
import sys
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    add_common_args,
    check_impl,
    cpu_self,
    emit,
    raise_nofile,
    rss_kib,
    run_loop,
    stdin_closed_event,
)

if TYPE_CHECKING:
    from aiolibp2p.net.host import Host
    from aiolibp2p.net.stream import Stream

PERF = "/perf/1.0.0"
ECHO = "/echo/1.0.0"
MUXER_IDS = {"yamux": "/yamux/1.0.0", "mplex": "/mplex/6.7.0"}
LOCAL = "/ip4/127.0.0.1/tcp/0"
#: Write size of the perf sender: 64 KiB, as the libp2p perf implementations.
DEFAULT_CHUNK = 64 * 1024
#: Read size of the perf reader (``--read-size``): 256 KiB, as the library's own perf service.
#: ``Stream.read(n)`` joins queued chunks up to ``n`` bytes (a copy), so this matters.
READ_SIZE = 256 * 1024
_U64 = struct.Struct(">Q")


def host_options(
    muxer: str, *, listen: bool, identify: bool = True, library_perf: bool = False, **limits: int
) -> list[Any]:
    from aiolibp2p import options as o

    if library_perf:  # the library's own /perf/1.0.0 service (newer than this harness)
        try:
            services = o.services(identify=identify, ping=True, perf=True)
        except TypeError as exc:
            raise SystemExit(f"bench: this aiolibp2p has no perf service ({exc})") from None
    else:
        services = o.services(identify=identify, ping=True)
    opts = [o.muxers(MUXER_IDS[muxer]), services]
    if listen:
        opts.append(o.listen(LOCAL))
    if limits:
        opts.append(o.limits(**limits))
    return opts


# ------------------------------------------------------------------------------------ handlers


async def send_bytes(stream: Stream, count: int, chunk: int = DEFAULT_CHUNK) -> None:
    payload = bytes(chunk)
    view = memoryview(payload)
    remaining = count
    while remaining >= chunk:
        await stream.write(payload)
        remaining -= chunk
    if remaining:
        await stream.write(view[:remaining])


async def drain(stream: Stream, read_size: int | None = None) -> int:
    """Read to EOF (``read_size`` bytes asked per read); return the byte count."""
    total = 0
    read = stream.read
    size = read_size or READ_SIZE
    while True:
        data = await read(size)
        if not data:
            return total
        total += len(data)


_server_read_size: list[int] = [READ_SIZE]  # set by serve_protocols (--read-size)


async def perf_handler(stream: Stream) -> None:
    header = await stream.readexactly(8)
    (to_send,) = _U64.unpack(header)
    await drain(stream, _server_read_size[0])
    await send_bytes(stream, to_send)
    await stream.close()


async def echo_handler(stream: Stream) -> None:
    while True:
        data = await stream.read(65536)
        if not data:
            break
        await stream.write(data)
    await stream.close()


def serve_protocols(host: Host, *, library_perf: bool = False, read_size: int = 0) -> None:
    if read_size:
        _server_read_size[0] = read_size
    if not library_perf:
        host.set_stream_handler(PERF, perf_handler)
    host.set_stream_handler(ECHO, echo_handler)


# ------------------------------------------------------------------------------- client helpers


async def perf_transfer(
    host: Host,
    peer: Any,
    *,
    upload: int,
    download: int,
    chunk: int = DEFAULT_CHUNK,
    library: bool = False,
    read_size: int | None = None,
) -> int:
    """One /perf/1.0.0 exchange on a new stream; returns the bytes received.

    ``library``: use the library's own perf client (``aiolibp2p.net.services.perf.perf``)
    instead of this harness's (64 KiB writes, ``READ_SIZE`` reads).
    """
    if library:
        from aiolibp2p.net.services.perf import perf

        result = await perf(host, peer, upload_bytes=upload, download_bytes=download)
        received = int(result.download_bytes)
        if received != download:
            raise RuntimeError(f"perf: received {received} bytes, expected {download}")
        return received
    stream = await host.new_stream(peer, [PERF])
    await stream.write(_U64.pack(download))
    await send_bytes(stream, upload, chunk)
    await stream.close()
    received = await drain(stream, read_size)
    if received != download:
        raise RuntimeError(f"perf: received {received} bytes, expected {download}")
    return received


# --------------------------------------------------------------------------------------- server


async def serve(args: argparse.Namespace) -> None:
    import aiolibp2p

    host = await aiolibp2p.new_host(
        *host_options(
            args.muxer,
            listen=True,
            identify=not args.no_identify,
            library_perf=args.perf == "library",
            max_connections=args.max_connections,
            max_peerstore_peers=args.max_connections,
        )
    )
    try:
        serve_protocols(host, library_perf=args.perf == "library", read_size=args.read_size)

        baseline: list[Any] = []

        def command(msg: dict[str, Any]) -> None:
            if msg.get("cmd") == "stats":
                gc.collect()
                stats = {
                    "event": "stats",
                    "connections": len(host.connections()),
                    "rss_kib": rss_kib_self(),
                    "cpu_s": cpu_self(),
                }
                if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1: where the memory went
                    snap = tracemalloc.take_snapshot()
                    if baseline:
                        diff = snap.compare_to(baseline[0], "lineno")
                        stats["top_allocations"] = [
                            {
                                "where": str(d.traceback),
                                "kib": d.size_diff / 1024,
                                "n": d.count_diff,
                            }
                            for d in diff[:25]
                        ]
                    baseline[:] = [snap]
                emit(stats)

        stop = stdin_closed_event(command)
        emit(
            {
                "event": "listening",
                "addr": str(host.full_addrs()[0]),
                "twins": check_impl(args.impl),
                "nofile": args.nofile,
            }
        )
        await stop.wait()
    finally:
        await host.close()


def rss_kib_self() -> int:
    import os

    return rss_kib(os.getpid())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark server (our host)")
    add_common_args(parser, default_timeout=24 * 3600.0)
    parser.add_argument("--muxer", choices=sorted(MUXER_IDS), default="yamux")
    parser.add_argument("--no-identify", action="store_true")
    parser.add_argument("--max-connections", type=int, default=20_000)
    parser.add_argument("--perf", choices=("bench", "library"), default="bench")
    parser.add_argument("--read-size", type=int, default=0, help="perf reader's read size")
    args = parser.parse_args(argv)
    args.nofile = raise_nofile()
    check_impl(args.impl)
    run_loop(lambda: serve(args), args.loop, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
