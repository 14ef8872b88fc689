#!/usr/bin/env python3
"""Round trips of connect + 1-byte request over a slow link (63 ms RTT through bench/proxy.py).

    python bench/e2e/rtt_count.py [--rtt-ms 63] [--iterations 5] [--impl ...] [--loop ...]

Three processes: the server (``_node.py``, ``/echo/1.0.0``), the delaying proxy
(``bench/proxy.py``, half the RTT each way) and the client.  Each iteration uses a fresh client
host: ``connect()`` through the proxy, ``new_stream([/echo/1.0.0])``, write 1 byte, read it back;
timed from before ``connect`` to the echoed byte.

**Reported RTT count = elapsed / RTT + 1.**  The proxy accepts the client's TCP connection at once
(loopback: the SYN/SYN-ACK exchange is not delayed) and connects to the server half an RTT
later, as the server would see it on a real link; so everything measured is one RTT short of the
same exchange on a real 63 ms path, and that one RTT is added back.  The raw ratio is reported
too (``measured_rtts``).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
    HERE,
    Child,
    add_common_args,
    base_result,
    check_impl,
    child_env,
    children,
    emit,
    fail,
    raise_nofile,
    run_loop,
    script_argv,
    summary,
    timed_echo_connect,
)

SCENARIO = "rtt_count"
#: The TCP handshake to the proxy is not delayed: one RTT to add to what is measured.
UNDELAYED_HANDSHAKE_RTTS = 1


async def client(args: argparse.Namespace) -> None:
    from _node import ECHO, host_options

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    info = PeerInfo.from_multiaddr(args.target)
    total, connect = [], []
    muxer = None
    for i in range(1 + args.iterations):  # the first one warms up (imports, caches)
        host = await aiolibp2p.new_host(*host_options(args.muxer, listen=False))
        try:
            stream, connect_ms, total_ms = await timed_echo_connect(host, info, ECHO)
            muxer = stream.connection.muxer
            if i:
                total.append(total_ms)
                connect.append(connect_ms)
        finally:
            await host.close()
    emit(
        {
            "event": "result",
            "elapsed_ms": summary(total),
            "connect_ms": summary(connect),
            "muxer": muxer,
            "twins": check_impl(args.impl),
        }
    )


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update({"rtt_ms": args.rtt_ms, "iterations": args.iterations, "muxer": args.muxer})
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    try:
        with children() as kids:
            server = Child(script_argv(HERE / "_node.py", *common), env=env, name="server")
            kids.append(server)
            addr = server.read_json(60, "listening")["addr"]
            # /ip4/127.0.0.1/tcp/PORT/p2p/ID
            parts = addr.split("/")
            target, peer = f"{parts[2]}:{parts[4]}", parts[6]
            proxy = Child(
                script_argv(
                    BENCH / "proxy.py",
                    "--target",
                    target,
                    "--rtt-ms",
                    str(args.rtt_ms),
                    "--no-udp",
                    "--stdin-eof-exit",
                ),
                env=env,
                name="proxy",
            )
            kids.append(proxy)
            host, _, port = proxy.read_json(30, "listening")["tcp"].rpartition(":")
            via = f"/ip4/{host}/tcp/{port}/p2p/{peer}"
            client_args = [*common, "--role", "client", "--target", via]
            client_args += ["--iterations", str(args.iterations), "--timeout", str(args.timeout)]
            cli = Child(script_argv(Path(__file__), *client_args), env=env, name="client")
            kids.append(cli)
            msg = cli.read_json(args.timeout, "result")
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    median = msg["elapsed_ms"]["median"]
    connect = msg["connect_ms"]["median"]
    result.update(
        {
            "elapsed_ms": _round(msg["elapsed_ms"]),
            "connect_ms": _round(msg["connect_ms"]),
            "measured_rtts": round(median / args.rtt_ms, 2),
            "rtt_count": round(median / args.rtt_ms + UNDELAYED_HANDSHAKE_RTTS, 2),
            "connect_rtt_count": round(connect / args.rtt_ms + UNDELAYED_HANDSHAKE_RTTS, 2),
            "added_rtts": UNDELAYED_HANDSHAKE_RTTS,
            "note": "rtt_count = elapsed / RTT + 1: the TCP handshake to the proxy is not delayed",
        }
    )
    emit(result)
    return 0


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=120.0)
    parser.add_argument("--rtt-ms", type=float, default=63.0)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
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
