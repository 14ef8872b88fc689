#!/usr/bin/env python3
"""Loopback latency of our host: new connection + stream + 1-byte echo, and ping RTT.

    python bench/e2e/latency.py [--connections 200] [--pings 1000] [--muxer yamux]
                                [--transport tcp|quic] [--impl compiled|pure]
                                [--loop uvloop|asyncio]

Client and server are separate processes (``_node.py`` serves ``/echo/1.0.0``).

* **connect + stream + echo**: ``--connections`` times, one after the other, on one client host:
  ``host.connect()`` (TCP + multistream + Noise XX + muxer; with ``--transport quic`` a QUIC-v1
  handshake with libp2p TLS instead, the server listening on ``/ip4/127.0.0.1/udp/0/quic-v1``),
  ``new_stream([/echo/1.0.0])``,
  write 1 byte, read it back; timed from before ``connect`` to the echoed byte; the connection is
  then closed (untimed) before the next.  Median and p95 (and the connect share alone).
  Over QUIC the client resumes each connection with the session ticket of the one before (as
  repeated dials of one peer do); ``--no-resume`` drops it first, so every handshake is a full
  one with certificates (as a first dial of a peer).
* **ping RTT**: ``--pings`` times ``host.ping()`` on one open connection (its ping stream stays
  open), timed around the call; the library's own RTT figure is reported too.
* **raw TCP ping-pong** (the floor, same run, same pinning): 1 byte back and forth between two
  uvloop processes with no libp2p (``raw_tcp.py --pingpong``); ``ping_over_raw`` is our median
  ping RTT divided by its median, ``ping_cpu_over_raw`` the same for CPU per round trip.
* **CPU**: user+system seconds (``getrusage``) of the client and of the server over each phase,
  per connection (``cpu_per_conn_us``) and per ping (``cpu_per_ping_us``).  On a shared machine
  these are steadier than the wall-clock figures.

``--profile client|server`` runs that side under py-spy (``$PY_SPY`` or ``py-spy`` on PATH) into
``--profile-out``; ``--phase conn|ping`` limits the client to one phase (for profiles).

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
    LISTEN_ADDRS,
    TRANSPORTS,
    Child,
    add_common_args,
    add_profile_args,
    base_result,
    check_impl,
    child_env,
    children,
    cpu_self,
    emit,
    fail,
    finish_profiled,
    pinned_env,
    profiled,
    raise_nofile,
    run_loop,
    script_argv,
    summary,
    timed_echo_connect,
)
from raw_tcp import measure_pingpong

SCENARIO = "latency"


async def mark(name: str) -> None:
    """Tell the orchestrator a phase starts or ends; wait until it has read the server's CPU."""
    import asyncio

    emit({"event": "mark", "name": name})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def client(args: argparse.Namespace) -> None:
    from _node import ECHO, host_options

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    host = await aiolibp2p.new_host(
        *host_options(args.muxer, listen=False, identify=not args.no_identify)
    )
    result: dict[str, object] = {"event": "result", "twins": check_impl(args.impl)}
    try:
        info = PeerInfo.from_multiaddr(args.target)
        if args.phase in ("all", "conn"):
            total, connect = [], []
            for i in range(args.warmup + args.connections):
                if i == args.warmup:
                    await mark("conn-start")
                    c0 = cpu_self()
                if args.no_resume:
                    forget_session(host, info.peer_id)
                stream, connect_ms, total_ms = await timed_echo_connect(host, info, ECHO)
                conn = stream.connection
                if i >= args.warmup:
                    total.append(total_ms)
                    connect.append(connect_ms)
                await stream.close()
                await conn.close()
            result["conn_client_cpu_s"] = cpu_self() - c0
            await mark("conn-end")
            result["echo_ms"] = summary(total)
            result["connect_ms"] = summary(connect)
            result["muxer"] = conn.muxer
        if args.phase in ("all", "ping"):
            # ping on one open connection
            conn = await host.connect(info)
            wall, lib = [], []
            for i in range(args.ping_warmup + args.pings):
                if i == args.ping_warmup:
                    await mark("ping-start")
                    c0 = cpu_self()
                t0 = time.perf_counter()
                rtt = await host.ping(info.peer_id)
                elapsed = time.perf_counter() - t0
                if i >= args.ping_warmup:
                    wall.append(elapsed * 1e6)
                    lib.append(rtt * 1e6)
            result["ping_client_cpu_s"] = cpu_self() - c0
            await mark("ping-end")
            result["ping_us"] = summary(wall)
            result["ping_library_us"] = summary(lib)
            result["muxer"] = conn.muxer
        emit(result)
    finally:
        await host.close()


def forget_session(host: object, peer: object) -> None:
    """Drop the QUIC session ticket the client holds for ``peer`` (``--no-resume``)."""
    quic = getattr(getattr(host, "swarm", None), "_quic", None)
    if quic is not None:
        quic.tickets.take_client(peer)


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update(
        {
            "connections": args.connections,
            "pings": args.pings,
            "muxer": args.muxer,
            "identify": not args.no_identify,
            "pin": args.pin,
            "transport": args.transport,
        }
    )
    if args.no_resume:
        result["resume"] = False
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    if args.no_identify:
        common.append("--no-identify")
    cpus = {"none": (None, None), "split": (0, 1), "same": (0, 0)}[args.pin]
    server_cpu: dict[str, float] = {}
    try:
        with children() as kids:
            if args.transport == "tcp":
                server_argv = script_argv(HERE / "_node.py", *common)
            else:  # _node.py's server, listening on QUIC (see serve_on)
                server_argv = script_argv(
                    Path(__file__), *common, "--role", "server", "--transport", args.transport
                )
            server = Child(
                profiled(
                    server_argv,
                    args.profile_out if args.profile == "server" else None,
                ),
                env=pinned_env(env, cpus[0]),
                name="server",
            )
            kids.append(server)
            addr = server.read_json(60, "listening")["addr"]
            client_args = [*common, "--role", "client", "--target", addr]
            client_args += ["--connections", str(args.connections), "--pings", str(args.pings)]
            client_args += ["--warmup", str(args.warmup), "--timeout", str(args.timeout)]
            client_args += ["--ping-warmup", str(args.ping_warmup), "--phase", args.phase]
            if args.no_resume:
                client_args.append("--no-resume")
            cli = Child(
                profiled(
                    script_argv(Path(__file__), *client_args),
                    args.profile_out if args.profile == "client" else None,
                ),
                env=pinned_env(env, cpus[1]),
                name="client",
            )
            kids.append(cli)
            while True:
                msg = cli.read_json(args.timeout)
                if msg.get("event") == "mark":
                    server.send({"cmd": "stats"})
                    server_cpu[msg["name"]] = server.read_json(30, "stats")["cpu_s"]
                    cli.send({"ack": msg["name"]})
                elif msg.get("event") == "result":
                    break
            finish_profiled(args, server, cli)
        raw = None
        if args.phase in ("all", "ping") and args.raw_pings:
            raw = measure_pingpong(
                args.raw_pings, loop=args.loop, cpus=cpus, timeout=min(args.timeout, 300.0)
            )
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    if args.transport != "tcp" and "muxer" in msg:
        result["muxer"] = msg["muxer"]  # what the connection reports ("quic-v1")
    for key in ("echo_ms", "connect_ms", "ping_us", "ping_library_us"):
        if key in msg:
            result[key] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in msg[key].items()
            }
    if "conn_client_cpu_s" in msg:
        n = args.connections
        client_us = msg["conn_client_cpu_s"] / n * 1e6
        server_us = (server_cpu["conn-end"] - server_cpu["conn-start"]) / n * 1e6
        result["cpu_per_conn_us"] = {
            "client": round(client_us, 1),
            "server": round(server_us, 1),
            "total": round(client_us + server_us, 1),
        }
    if "ping_client_cpu_s" in msg:
        n = args.pings
        client_us = msg["ping_client_cpu_s"] / n * 1e6
        server_us = (server_cpu["ping-end"] - server_cpu["ping-start"]) / n * 1e6
        result["cpu_per_ping_us"] = {
            "client": round(client_us, 2),
            "server": round(server_us, 2),
            "total": round(client_us + server_us, 2),
        }
        if raw is not None:
            raw_cpu = raw["client_cpu_us_per_ping"] + raw["server_cpu_us_per_ping"]
            result["raw_tcp_ping"] = raw
            ping_median = result["ping_us"]["median"]
            result["ping_over_raw"] = round(ping_median / raw["rtt_us"]["median"], 3)
            result["ping_cpu_over_raw"] = round((client_us + server_us) / raw_cpu, 3)
    emit(result)
    return 0


def serve_on(listen: str, args: argparse.Namespace) -> int:
    """Run ``_node.py``'s server, listening on ``listen`` instead of its TCP address."""
    import _node

    _node.LOCAL = listen
    argv = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    if args.no_identify:
        argv.append("--no-identify")
    return _node.main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=300.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--ping-warmup", type=int, default=50)
    parser.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="tcp",
        help="tcp (+ Noise + --muxer) or quic (QUIC-v1 + TLS; --muxer unused)",
    )
    parser.add_argument("--no-identify", action="store_true", help="diagnostic: identify off")
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="QUIC diagnostic: the client forgets its session ticket before each connection "
        "(every handshake a full one, with certificates)",
    )
    parser.add_argument(
        "--raw-pings",
        type=int,
        default=None,
        help="raw TCP ping-pong round trips for the floor (default: --pings; 0: skip)",
    )
    parser.add_argument("--phase", choices=("all", "conn", "ping"), default="all")
    add_profile_args(parser, default_out="bench/results/profile-latency.speedscope.json")
    parser.add_argument(
        "--pin",
        choices=("none", "split", "same"),
        default="none",
        help="CPUs: none (the scheduler's), split (server 0, client 1), same (both on 0)",
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_pings is None:
        args.raw_pings = args.pings
    if args.role == "server":
        return serve_on(LISTEN_ADDRS[args.transport], args)
    if args.role == "client":
        raise_nofile()
        check_impl(args.impl)
        run_loop(lambda: client(args), args.loop, args.timeout)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
