#!/usr/bin/env python3
"""One-stream upload between two processes over QUIC-v1 (or TCP for comparison).

    python bench/e2e/quic_upload.py [--mib 256] [--loop uvloop|asyncio] [--transport quic|tcp]

The server process listens on 127.0.0.1 and counts what one stream delivers until its EOF; the
client process writes ``--mib`` MiB in 64 KiB writes and closes.  Prints wall-clock MiB/s and
the CPU seconds per GiB (user + sys, ``getrusage``) each process spent during the transfer: on a
shared machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

_LISTEN = {"quic": "/ip4/127.0.0.1/udp/0/quic-v1", "tcp": "/ip4/127.0.0.1/tcp/0"}
_PROTOCOL = "/bench/upload/1"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _server(transport: str) -> None:
    import aiolibp2p
    from aiolibp2p import options as o

    host = await aiolibp2p.new_host(o.listen(_LISTEN[transport]))

    async def sink(stream: Any) -> None:
        got = 0
        cpu0 = _cpu()
        while True:
            data = await stream.read(1 << 20)
            if not data:
                break
            got += len(data)
        report = {"got": got, "cpu": _cpu() - cpu0}
        await stream.write(json.dumps(report).encode())
        await stream.close()

    host.set_stream_handler(_PROTOCOL, sink)
    print(str(host.full_addrs()[0]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await host.close()


async def _client(addr: str, size: int) -> None:
    import aiolibp2p

    host = await aiolibp2p.new_host()
    try:
        conn = await host.connect(addr)
        stream = await conn.new_stream([_PROTOCOL])
        chunk = os.urandom(64 << 10)
        cpu0 = _cpu()
        start = time.perf_counter()
        sent = 0
        while sent < size:
            await stream.write(chunk)
            sent += len(chunk)
        await stream.close()
        report = json.loads(await stream.read(-1))
        wall = time.perf_counter() - start
        cpu = _cpu() - cpu0
        assert report["got"] == sent, report
        gib = sent / 2**30
        print(
            json.dumps(
                {
                    "mib": sent >> 20,
                    "seconds": round(wall, 3),
                    "mib_per_s": round(sent / wall / 2**20, 1),
                    "sender_cpu_s_per_gib": round(cpu / gib, 2),
                    "receiver_cpu_s_per_gib": round(report["cpu"] / gib, 2),
                }
            )
        )
    finally:
        await host.close()


def _run(coro: Any, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--transport", choices=sorted(_LISTEN), default="quic")
    roles = ["orchestrate", "server", "client"]
    parser.add_argument("--role", choices=roles, default="orchestrate")
    parser.add_argument("--addr")
    args = parser.parse_args()
    if args.role == "server":
        _run(_server(args.transport), args.loop)
        return
    if args.role == "client":
        _run(_client(args.addr, args.mib << 20), args.loop)
        return
    base = [sys.executable, __file__, "--loop", args.loop, "--transport", args.transport]
    server = subprocess.Popen(
        [*base, "--role", "server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        addr = server.stdout.readline().strip()
        subprocess.run(
            [*base, "--role", "client", "--addr", addr, "--mib", str(args.mib)],
            check=True,
            timeout=600,
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
