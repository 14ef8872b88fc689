#!/usr/bin/env python3
"""Loopback latency of our host: new connection + stream + 1-byte echo, and ping RTT.

    python bench/e2e/latency.py [--connections 200] [--pings 1000] [--muxer yamux]
                                [--impl compiled|pure] [--loop uvloop|asyncio]

Client and server are separate processes (``_node.py`` serves ``/echo/1.0.0``).

* **connect + stream + echo**: ``--connections`` times, one after the other, on one client host:
  ``host.connect()`` (TCP + multistream + Noise XX + muxer), ``new_stream([/echo/1.0.0])``,
  write 1 byte, read it back; timed from before ``connect`` to the echoed byte; the connection is
  then closed (untimed) before the next.  Median and p95 (and the connect share alone).
* **ping RTT**: ``--pings`` times ``host.ping()`` on one open connection (its ping stream stays
  open), timed around the call; the library's own RTT figure is reported too.

A few warm-up rounds of each come first and are not counted.  Prints one JSON line.

On a VM an idle vCPU halts, and waking it costs tens of microseconds: a ping between processes
on two idle vCPUs pays that twice per round trip.  ``--pin same`` runs both processes on one CPU
(no cross-CPU wake-up; but the connection scenario's two sides then share one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HERE,
    Child,
    add_common_args,
    base_result,
    check_impl,
    child_env,
    children,
    emit,
    fail,
    pinned_env,
    raise_nofile,
    run_loop,
    script_argv,
    summary,
)

SCENARIO = "latency"


async def client(args: argparse.Namespace) -> None:
    from _node import ECHO, host_options

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    host = await aiolibp2p.new_host(
        *host_options(args.muxer, listen=False, identify=not args.no_identify)
    )
    try:
        info = PeerInfo.from_multiaddr(args.target)
        total, connect = [], []
        for i in range(args.warmup + args.connections):
            t0 = time.perf_counter()
            conn = await host.connect(info)
            t1 = time.perf_counter()
            stream = await conn.new_stream([ECHO])
            await stream.write(b"x")
            if await stream.read(1) != b"x":
                raise RuntimeError("echo returned something else")
            t2 = time.perf_counter()
            if i >= args.warmup:
                total.append((t2 - t0) * 1e3)
                connect.append((t1 - t0) * 1e3)
            await stream.close()
            await conn.close()
        # ping on one open connection
        conn = await host.connect(info)
        wall, lib = [], []
        for i in range(args.ping_warmup + args.pings):
            t0 = time.perf_counter()
            rtt = await host.ping(info.peer_id)
            elapsed = time.perf_counter() - t0
            if i >= args.ping_warmup:
                wall.append(elapsed * 1e6)
                lib.append(rtt * 1e6)
        emit(
            {
                "event": "result",
                "echo_ms": summary(total),
                "connect_ms": summary(connect),
                "ping_us": summary(wall),
                "ping_library_us": summary(lib),
                "muxer": conn.muxer,
                "twins": check_impl(args.impl),
            }
        )
    finally:
        await host.close()


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update(
        {
            "connections": args.connections,
            "pings": args.pings,
            "muxer": args.muxer,
            "identify": not args.no_identify,
            "pin": args.pin,
        }
    )
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    if args.no_identify:
        common.append("--no-identify")
    try:
        with children() as kids:
            cpus = {"none": (None, None), "split": (0, 1), "same": (0, 0)}[args.pin]
            server = Child(
                script_argv(HERE / "_node.py", *common),
                env=pinned_env(env, cpus[0]),
                name="server",
            )
            kids.append(server)
            addr = server.read_json(60, "listening")["addr"]
            client_args = [*common, "--role", "client", "--target", addr]
            client_args += ["--connections", str(args.connections), "--pings", str(args.pings)]
            client_args += ["--warmup", str(args.warmup), "--timeout", str(args.timeout)]
            cli = Child(
                script_argv(Path(__file__), *client_args),
                env=pinned_env(env, cpus[1]),
                name="client",
            )
            kids.append(cli)
            msg = cli.read_json(args.timeout, "result")
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    for key in ("echo_ms", "connect_ms", "ping_us", "ping_library_us"):
        result[key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in msg[key].items()}
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=300.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--ping-warmup", type=int, default=50)
    parser.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
    parser.add_argument("--no-identify", action="store_true", help="diagnostic: identify off")
    parser.add_argument(
        "--pin",
        choices=("none", "split", "same"),
        default="none",
        help="CPUs: none (the scheduler's), split (server 0, client 1), same (both on 0)",
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "client":
        raise_nofile()
        check_impl(args.impl)
        run_loop(lambda: client(args), args.loop, args.timeout)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
