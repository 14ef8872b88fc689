#!/usr/bin/env python3
"""Loopback throughput of our host: TCP + Noise (or TLS) + yamux (or mplex), or QUIC-v1.

    python bench/e2e/throughput.py [--size 1GiB] [--muxer yamux,mplex] [--streams 1]
                                   [--direction upload,download] [--repeat 3]
                                   [--transport tcp|quic] [--security noise|tls]
                                   [--impl compiled|pure] [--loop uvloop|asyncio]

Client and server are separate processes (the server is this script's ``--role server``).
``--transport tcp`` (default) secures with ``--security noise`` (default) or ``tls`` (TLS 1.3,
``/tls/1.0.0``) and muxes with each ``--muxer`` in turn; ``--transport quic`` uses QUIC-v1 with
its built-in TLS 1.3 and native streams (``--muxer`` does not apply; results under ``"quic"``).

Uses ``/perf/1.0.0`` (this harness's client and server in ``_node.py``: 64 KiB writes, 256 KiB
reads; ``--perf library`` uses aiolibp2p's own perf service instead): upload sends ``size``
bytes to the server, download asks the server for ``size`` bytes; with ``--streams K`` the size
is split over K concurrent streams of one connection and the aggregate is reported.  Each
measurement is one exchange timed at the client from opening the stream to the server's EOF;
one warm-up exchange comes first.  Prints one JSON line: per muxer and direction the median
MiB/s of ``--repeat`` runs, every run, and the CPU seconds the client and the server spent in
the measured runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MIB,
    Child,
    add_common_args,
    add_profile_args,
    add_transport_args,
    base_result,
    check_impl,
    child_env,
    children,
    cpu_seconds,
    cpu_self,
    emit,
    fail,
    finish_profiled,
    parse_size,
    pinned_env,
    profiled,
    raise_nofile,
    resolve_security,
    run_loop,
    script_argv,
    stdin_closed_event,
    transport_options,
)

SCENARIO = "throughput"
#: The results key of QUIC's native streams (where TCP results are keyed by muxer).
QUIC_KEY = "quic"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--muxer", default="yamux,mplex", help="comma list: yamux, mplex")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--direction", default="upload,download")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=parse_size, default=64 * 1024, help="write size")
    parser.add_argument("--warmup", type=parse_size, default=parse_size("16MiB"))
    parser.add_argument(
        "--read-size", type=parse_size, default=256 * 1024, help="perf reader's read size"
    )
    parser.add_argument(
        "--perf",
        choices=("bench", "library"),
        default="bench",
        help="perf client and server: this harness's (default) or aiolibp2p.net.services.perf",
    )
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, client on CPU 1")
    add_transport_args(parser)
    add_profile_args(parser, default_out="bench/results/profile.speedscope.json")
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    resolve_security(parser, args)
    args.muxers = [m for m in args.muxer.split(",") if m]
    if args.transport == "quic":
        args.muxers = [QUIC_KEY]  # native streams: --muxer does not apply
    for m in args.muxers:
        if m not in ("yamux", "mplex", QUIC_KEY) or (m == QUIC_KEY) != (args.transport == "quic"):
            parser.error(f"unknown muxer {m!r} for --transport {args.transport}")
    args.directions = [d for d in args.direction.split(",") if d]
    for d in args.directions:
        if d not in ("upload", "download"):
            parser.error(f"unknown direction {d!r}")
    if args.streams < 1 or args.repeat < 1:
        parser.error("--streams and --repeat must be >= 1")
    return args


def host_options_for(args: argparse.Namespace, *, listen: bool) -> list[Any]:
    """Our host's options for ``args`` (its first muxer, transport and security)."""
    from _node import host_options

    muxer = args.muxers[0]
    opts = host_options(
        "yamux" if muxer == QUIC_KEY else muxer,
        listen=False,
        library_perf=listen and args.perf == "library",
    )
    return opts + transport_options(args.transport, args.security, listen=listen)


# --------------------------------------------------------------------------------------- server


async def serve(
    args: argparse.Namespace,
    extra: list[Any] | None = None,
    setup: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """``--role server``: our host on ``--transport``, serving /perf/1.0.0 and /echo/1.0.0
    (``_node.py``'s handlers) until stdin closes.  ``extra``: more host options; ``setup(host)``
    runs after the handlers are set and returns more fields for the ``listening`` line."""
    from _node import serve_protocols

    import aiolibp2p

    host = await aiolibp2p.new_host(*host_options_for(args, listen=True), *(extra or []))
    try:
        serve_protocols(host, library_perf=args.perf == "library", read_size=args.read_size)
        fields = setup(host) if setup is not None else {}
        stop = stdin_closed_event()
        emit(
            {
                "event": "listening",
                "addr": str(host.full_addrs()[0]),
                "twins": check_impl(args.impl),
                **fields,
            }
        )
        await stop.wait()
    finally:
        await host.close()


# --------------------------------------------------------------------------------------- client


async def client(args: argparse.Namespace) -> None:
    from _node import perf_transfer

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    library = args.perf == "library"
    host = await aiolibp2p.new_host(*host_options_for(args, listen=False))
    try:
        info = PeerInfo.from_multiaddr(args.target)
        conn = await host.connect(info)
        peer = info.peer_id
        if args.warmup:
            await perf_transfer(
                host, peer, upload=args.warmup, download=args.warmup, library=library
            )
        results: dict[str, Any] = {}
        for direction in args.directions:
            runs, cpu = [], []
            for _ in range(args.repeat):
                emit({"event": "mark", "name": "start"})
                c0, t0 = cpu_self(), time.perf_counter()
                per_stream = args.size // args.streams
                up = per_stream if direction == "upload" else 0
                down = per_stream if direction == "download" else 0
                await asyncio.gather(
                    *(
                        perf_transfer(
                            host,
                            peer,
                            upload=up,
                            download=down,
                            chunk=args.chunk,
                            library=library,
                            read_size=args.read_size,
                        )
                        for _ in range(args.streams)
                    )
                )
                elapsed = time.perf_counter() - t0
                cpu.append(cpu_self() - c0)
                emit({"event": "mark", "name": "end"})
                runs.append(per_stream * args.streams / elapsed / MIB)
            results[direction] = {"runs_mib_s": runs, "client_cpu_s": cpu}
        emit(
            {
                "event": "result",
                "results": results,
                "muxer": conn.muxer,
                "security": conn.security,
                "twins": check_impl(args.impl),
            }
        )
    finally:
        await host.close()


# --------------------------------------------------------------------------------- orchestrator


def measure_muxer(args: argparse.Namespace, muxer: str) -> dict[str, Any]:
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--transport", args.transport]
    common += ["--security", args.security]
    with children() as kids:
        server_args = [*common, "--role", "server", "--muxer", muxer, "--perf", args.perf]
        server_args += ["--read-size", str(args.read_size)]
        server = Child(
            profiled(
                script_argv(Path(__file__), *server_args),
                args.profile_out if args.profile == "server" else None,
            ),
            env=pinned_env(env, 0 if args.pin else None),
            name="server",
        )
        kids.append(server)
        addr = server.read_json(60, "listening")["addr"]
        client_args = [
            *common,
            "--role",
            "client",
            "--target",
            addr,
            "--muxer",
            muxer,
            "--size",
            str(args.size),
            "--streams",
            str(args.streams),
            "--direction",
            ",".join(args.directions),
            "--repeat",
            str(args.repeat),
            "--chunk",
            str(args.chunk),
            "--warmup",
            str(args.warmup),
            "--read-size",
            str(args.read_size),
            "--perf",
            args.perf,
            "--timeout",
            str(args.timeout),
        ]
        cli = Child(
            profiled(
                script_argv(Path(__file__), *client_args),
                args.profile_out if args.profile == "client" else None,
            ),
            env=pinned_env(env, 1 if args.pin else None),
            name="client",
        )
        kids.append(cli)
        server_cpu: list[float] = []
        marks: list[float] = []
        while True:
            msg = cli.read_json(args.timeout)
            if msg.get("event") == "mark":
                now = cpu_seconds(server.pid)
                if msg["name"] == "start":
                    marks.append(now)
                else:
                    server_cpu.append(now - marks[-1])
            elif msg.get("event") == "result":
                break
        finish_profiled(args, server, cli)
    out: dict[str, Any] = {}
    i = 0
    for direction in args.directions:
        data = msg["results"][direction]
        runs = data["runs_mib_s"]
        n = len(runs)
        out[direction] = {
            "mib_s": statistics.median(runs),
            "gbit_s": statistics.median(runs) * MIB * 8 / 1e9,
            "runs_mib_s": [round(r, 1) for r in runs],
            "client_cpu_s": round(statistics.median(data["client_cpu_s"]), 3),
            "server_cpu_s": round(statistics.median(server_cpu[i : i + n]), 3),
        }
        i += n
    out["negotiated"] = msg["muxer"]
    out["negotiated_security"] = msg.get("security")
    return out


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update(
        {
            "size": args.size,
            "streams": args.streams,
            "chunk": args.chunk,
            "read_size": args.read_size,
            "repeat": args.repeat,
            "perf": args.perf,
            "pinned": args.pin,
            "transport": args.transport,
            "security": args.security,
        }
    )
    try:
        result["results"] = {m: measure_muxer(args, m) for m in args.muxers}
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "server":
        raise_nofile()
        check_impl(args.impl)
        run_loop(lambda: serve(args), args.loop, 24 * 3600.0)
        return 0
    if args.role == "client":
        raise_nofile()
        check_impl(args.impl)
        run_loop(lambda: client(args), args.loop, args.timeout)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
