#!/usr/bin/env python3
"""Round trips of connect + 1-byte request over a slow link (63 ms RTT through bench/proxy.py).

    python bench/e2e/rtt_count.py [--rtt-ms 63] [--iterations 5] [--transport tcp|quic]
                                  [--security noise|tls] [--resume] [--impl ...] [--loop ...]

Three processes: the server (``throughput.py --role server``: ``/echo/1.0.0``), the delaying
proxy (``bench/proxy.py``, half the RTT each way; TCP or UDP) and the client.  Each iteration
uses a fresh client host: ``connect()`` through the proxy, ``new_stream([/echo/1.0.0])``, write
1 byte, read it back; timed from before ``connect`` to the echoed byte.  The first iteration
warms up and is not counted.

``--resume`` (QUIC): each iteration first connects and echoes once untimed, closes that
connection, then times a second connection from the same host, which resumes the TLS session
with the server's ticket; ``/echo/1.0.0`` is marked for 0-RTT on both sides
(``options.early_data_protocols`` and ``set_stream_handler(..., idempotent=True)``) when this
aiolibp2p has them, so the request can travel in the first flight.  The result says whether the
timed connection resumed and whether its early data was accepted.

**TCP: reported RTT count = elapsed / RTT + 1.**  The proxy accepts the client's TCP connection
at once (loopback: the SYN/SYN-ACK exchange is not delayed) and connects to the server half an
RTT later, as the server would see it on a real link; so everything measured is one RTT short of
the same exchange on a real 63 ms path, and that one RTT is added back.  **QUIC: elapsed / RTT**:
every datagram is delayed, the first one included.  The raw ratio is reported too
(``measured_rtts``).  Expected: TCP 3 (TCP, Noise with the muxer in its payloads, request);
QUIC 2 (handshake, request), resumed with 0-RTT 1.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
    Child,
    add_common_args,
    add_transport_args,
    base_result,
    check_impl,
    child_env,
    children,
    early_data_options,
    emit,
    fail,
    raise_nofile,
    resolve_security,
    run_loop,
    script_argv,
    set_idempotent_handler,
    summary,
    timed_echo_connect,
    transport_options,
)

SCENARIO = "rtt_count"
#: Round trips the proxy does not delay, per transport: TCP's handshake with the proxy.
UNDELAYED_HANDSHAKE_RTTS = {"tcp": 1, "quic": 0}


def _tls_state(conn: Any) -> dict[str, Any]:
    """Whether a QUIC connection resumed its session and had its early data accepted."""
    tls = getattr(getattr(conn, "quic", None), "tls", None)
    if tls is None:
        return {}
    return {
        "resumed": bool(getattr(tls, "session_resumed", False)),
        "early_data_accepted": bool(getattr(tls, "early_data_accepted", False)),
    }


async def _closed(host: Any, conn: Any, timeout: float = 5.0) -> None:
    """Close ``conn`` and wait until ``host`` no longer lists a connection to that peer."""
    await conn.close()
    peer = conn.remote_peer
    for _ in range(int(timeout / 0.005)):
        if not host.connections(peer):
            return
        await asyncio.sleep(0.005)
    raise RuntimeError("the first connection did not go away")


async def client(args: argparse.Namespace) -> None:
    from _node import ECHO, host_options

    import aiolibp2p
    from aiolibp2p.net.host import PeerInfo

    info = PeerInfo.from_multiaddr(args.target)
    opts = host_options(args.muxer, listen=False)
    opts += transport_options(args.transport, args.security, listen=False)
    early = early_data_options(ECHO) if args.resume else []
    total, connect, states = [], [], []
    muxer = security = None
    for i in range(1 + args.iterations):  # the first one warms up (imports, caches)
        host = await aiolibp2p.new_host(*opts, *early)
        try:
            if args.resume:
                stream, _, _ = await timed_echo_connect(host, info, ECHO)
                await _closed(host, stream.connection)
            stream, connect_ms, total_ms = await timed_echo_connect(host, info, ECHO)
            conn = stream.connection
            muxer, security = conn.muxer, conn.security
            if i:
                total.append(total_ms)
                connect.append(connect_ms)
                states.append(_tls_state(conn))
        finally:
            await host.close()
    emit(
        {
            "event": "result",
            "elapsed_ms": summary(total),
            "connect_ms": summary(connect),
            "muxer": muxer,
            "security": security,
            "tls": states,
            "early_data_option": bool(early),
            "twins": check_impl(args.impl),
        }
    )


def server(args: argparse.Namespace) -> None:
    """``--role server``: throughput.py's server, ``/echo/1.0.0`` marked idempotent if
    ``--resume`` (0-RTT)."""
    from _node import ECHO, echo_handler
    from throughput import QUIC_KEY, serve

    args.muxers = [QUIC_KEY if args.transport == "quic" else args.muxer]
    args.perf, args.read_size = "bench", 0
    extra = early_data_options(ECHO) if args.resume else []

    def setup(host: Any) -> dict[str, Any]:
        marked = args.resume and set_idempotent_handler(host, ECHO, echo_handler)
        return {"early_data_option": bool(extra), "echo_idempotent": marked}

    run_loop(lambda: serve(args, extra, setup), args.loop, 24 * 3600.0)


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result.update(
        {
            "rtt_ms": args.rtt_ms,
            "iterations": args.iterations,
            "muxer": args.muxer if args.transport == "tcp" else "quic",
            "transport": args.transport,
            "security": args.security,
            "resume": args.resume,
        }
    )
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop, "--muxer", args.muxer]
    common += ["--transport", args.transport, "--security", args.security]
    if args.resume:
        common.append("--resume")
    udp = args.transport == "quic"
    try:
        with children() as kids:
            server_argv = script_argv(Path(__file__), *common, "--role", "server")
            srv = Child(server_argv, env=env, name="server")
            kids.append(srv)
            listening = srv.read_json(60, "listening")
            # /ip4/127.0.0.1/tcp/PORT/p2p/ID or /ip4/127.0.0.1/udp/PORT/quic-v1/p2p/ID
            parts = listening["addr"].split("/")
            target, peer = f"{parts[2]}:{parts[4]}", parts[-1]
            proxy = Child(
                script_argv(
                    BENCH / "proxy.py",
                    "--target",
                    target,
                    "--rtt-ms",
                    str(args.rtt_ms),
                    "--no-tcp" if udp else "--no-udp",
                    "--stdin-eof-exit",
                ),
                env=env,
                name="proxy",
            )
            kids.append(proxy)
            bound = proxy.read_json(30, "listening")["udp" if udp else "tcp"]
            host, _, port = bound.rpartition(":")
            path = f"udp/{port}/quic-v1" if udp else f"tcp/{port}"
            via = f"/ip4/{host}/{path}/p2p/{peer}"
            client_args = [*common, "--role", "client", "--target", via]
            client_args += ["--iterations", str(args.iterations), "--timeout", str(args.timeout)]
            cli = Child(script_argv(Path(__file__), *client_args), env=env, name="client")
            kids.append(cli)
            msg = cli.read_json(args.timeout, "result")
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    added = UNDELAYED_HANDSHAKE_RTTS[args.transport]
    median = msg["elapsed_ms"]["median"]
    connect = msg["connect_ms"]["median"]
    result.update(
        {
            "elapsed_ms": _round(msg["elapsed_ms"]),
            "connect_ms": _round(msg["connect_ms"]),
            "measured_rtts": round(median / args.rtt_ms, 2),
            "rtt_count": round(median / args.rtt_ms + added, 2),
            "connect_rtt_count": round(connect / args.rtt_ms + added, 2),
            "added_rtts": added,
            "negotiated": msg["muxer"],
            "negotiated_security": msg["security"],
        }
    )
    if udp:
        states = msg["tls"]
        result["resumed"] = sum(s.get("resumed", False) for s in states)
        result["early_data_accepted"] = sum(s.get("early_data_accepted", False) for s in states)
        result["early_data_option"] = msg["early_data_option"]
        result["echo_idempotent"] = listening.get("echo_idempotent", False)
        result["note"] = "rtt_count = elapsed / RTT: every datagram is delayed"
    else:
        result["note"] = (
            "rtt_count = elapsed / RTT + 1: the TCP handshake to the proxy is not delayed"
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
    add_transport_args(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="QUIC: time a second connection that resumes the first's session (0-RTT)",
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    resolve_security(parser, args)
    if args.resume and args.transport != "quic":
        parser.error("--resume applies to --transport quic")
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    if args.role == "server":
        raise_nofile()
        check_impl(args.impl)
        server(args)
        return 0
    if args.role == "client":
        raise_nofile()
        check_impl(args.impl)
        run_loop(lambda: client(args), args.loop, args.timeout)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
