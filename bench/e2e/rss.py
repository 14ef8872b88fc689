#!/usr/bin/env python3
"""Listener memory per idle connection: one listener process, N connections from dialer processes.

    python bench/e2e/rss.py [--connections 1000,10000] [--dialers 4] [--impl ...] [--loop ...]

For each N: a fresh listener (``_node.py``) and ``--dialers`` dialer processes, each holding
N / dialers connections, one host per connection (distinct peers, as a real listener sees them),
at most ``--concurrency`` dials in flight per dialer.  Every process raises RLIMIT_NOFILE to its
hard limit.  The listener's VmRSS (``/proc/<pid>/status``) is read after a ``gc.collect()`` in it:

* *before*: with ``--warm`` connections open (every code path loaded, allocator warm);
* *after*: with ``--warm`` + N connections open, once identify has run on all of them and the
  listener's CPU time has stopped moving (idle).

Reported: (after - before) / N in KiB per connection.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HERE,
    Child,
    add_common_args,
    base_result,
    check_impl,
    child_env,
    children,
    cpu_seconds,
    emit,
    fail,
    raise_nofile,
    run_loop,
    script_argv,
    stdin_closed_event,
)

SCENARIO = "rss"


async def dialer(args: argparse.Namespace) -> None:
    """Open ``--count`` connections (one host each) and hold them until stdin closes."""
    from _node import host_options

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    stop = stdin_closed_event()
    info = PeerInfo.from_multiaddr(args.target)
    hosts: list[Any] = []
    failed = 0
    sem = asyncio.Semaphore(args.concurrency)

    async def one() -> None:
        nonlocal failed
        async with sem:
            host = await aiolibp2p.new_host(
                *host_options(args.muxer, listen=False, identify=not args.no_identify)
            )
            hosts.append(host)
            for _attempt in range(3):
                try:
                    await host.connect(info, timeout=30)
                    return
                except Exception:
                    await asyncio.sleep(0.2)
            failed += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.count)))
    emit(
        {
            "event": "connected",
            "count": args.count - failed,
            "failed": failed,
            "seconds": time.perf_counter() - t0,
        }
    )
    await stop.wait()
    # The orchestrator is done: exit without closing thousands of hosts one by one (the
    # kernel closes the sockets).
    sys.stdout.flush()
    os._exit(0)


def wait_idle(pid: int, *, quiet: float = 1.0, timeout: float = 60.0) -> float:
    """Wait until ``pid`` used < 10% CPU over ``quiet`` seconds; return the seconds waited.

    (Not 0%: with 10,000 connections the yamux keep-alive pings alone, one per connection
    every 30 s each way, keep an idle listener at a few percent.)
    """
    t0 = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.10 * quiet:
            return time.monotonic() - t0
        last = now
    return time.monotonic() - t0


def stats(listener: Child) -> dict[str, Any]:
    listener.send({"cmd": "stats"})
    return listener.read_json(60, "stats")


def measure(args: argparse.Namespace, n: int) -> dict[str, Any]:
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    if args.no_identify:
        common.append("--no-identify")
    total = n + args.warm
    with children() as kids:
        listener_env = {**env, "PYTHONTRACEMALLOC": "1"} if args.tracemalloc else env
        listener = Child(
            script_argv(HERE / "_node.py", *common, "--max-connections", str(total + 100)),
            env=listener_env,
            name="listener",
        )
        kids.append(listener)
        hello = listener.read_json(60, "listening")
        addr = hello["addr"]
        if hello["nofile"] < total + 64:
            raise RuntimeError(f"listener fd limit {hello['nofile']} is too low for {total}")

        def spawn(count: int, name: str) -> Child:
            argv = [*common, "--role", "dialer", "--target", addr, "--count", str(count)]
            argv += ["--concurrency", str(args.concurrency)]
            kid = Child(script_argv(Path(__file__), *argv), env=env, name=name)
            kids.append(kid)
            return kid

        def connected(kid: Child) -> int:
            msg = kid.read_json(args.timeout, "connected")
            if msg["failed"]:
                raise RuntimeError(f"{kid.name}: {msg['failed']} dials failed")
            return int(msg["count"])

        connected(spawn(args.warm, "warm-dialer"))
        wait_idle(listener.pid)
        before = stats(listener)
        t0 = time.monotonic()
        base, extra = divmod(n, args.dialers)
        shares = [base + (1 if i < extra else 0) for i in range(args.dialers)]
        dialers = [spawn(share, f"dialer-{i}") for i, share in enumerate(shares) if share]
        opened = sum(connected(kid) for kid in dialers)
        dial_seconds = time.monotonic() - t0
        settle = wait_idle(listener.pid)
        c0 = cpu_seconds(listener.pid)
        time.sleep(2.0)
        idle_cpu = (cpu_seconds(listener.pid) - c0) / 2.0
        after = stats(listener)
        if after["connections"] != total:
            raise RuntimeError(
                f"listener holds {after['connections']} connections, expected {total}"
            )
    delta = after["rss_kib"] - before["rss_kib"]
    out = {
        "connections": n,
        "opened": opened,
        "kib_per_conn": delta / n,
        "rss_before_kib": before["rss_kib"],
        "rss_after_kib": after["rss_kib"],
        "dial_seconds": round(dial_seconds, 2),
        "settle_seconds": round(settle, 2),
        "idle_cpu_share": round(idle_cpu, 3),
    }
    if "top_allocations" in after:  # --tracemalloc: Python allocations per connection
        out["top_allocations_per_conn"] = [
            {"where": a["where"], "bytes_per_conn": round(a["kib"] * 1024 / n, 1)}
            for a in after["top_allocations"]
        ]
    return out


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update(
        {
            "dialers": args.dialers,
            "warm": args.warm,
            "muxer": args.muxer,
            "identify": not args.no_identify,
        }
    )
    try:
        result["results"] = {str(n): measure(args, n) for n in args.counts}
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=900.0)
    parser.add_argument("--connections", default="1000,10000", help="comma list of N")
    parser.add_argument("--dialers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32, help="dials in flight per dialer")
    parser.add_argument("--warm", type=int, default=16, help="connections open for 'before'")
    parser.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
    parser.add_argument("--no-identify", action="store_true", help="diagnostic: identify off")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnostic: trace the listener's allocations (slow); report the top sites",
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.counts = [int(x) for x in args.connections.split(",") if x]
    if args.role == "dialer":
        raise_nofile()
        check_impl(args.impl)
        with contextlib.suppress(KeyboardInterrupt):
            run_loop(lambda: dialer(args), args.loop, 24 * 3600.0)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
