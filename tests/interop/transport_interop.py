"""aiolibp2p's side of the libp2p/test-plans transport-interop contract (the "old" harness).

Run by path (``python tests/interop/transport_interop.py``) or as a module
(``python -m tests.interop.transport_interop`` from the repository root).  Configured by the
environment, as the runner does:

    transport             tcp (the only one this script supports so far)
    security              noise
    muxer                 yamux | mplex
    is_dialer             true | false
    ip                    listener bind address (default 0.0.0.0)
    redis_addr            host:port (default redis:6379)
    test_timeout_seconds  default 180

The listener RPUSHes its full multiaddr to the Redis list ``listenerAddr`` and waits (the runner
kills it; it exits 1 if ``test_timeout_seconds`` pass first, 0 on SIGTERM/SIGINT).  The dialer
BLPOPs that address, connects, pings once, and prints exactly one line on stdout:

    {"handshakePlusOneRTTMillis": <float>, "pingRTTMilllis": <float>}

(the triple "l" is what the runner parses).  Logs go to stderr.  Redis is spoken through the small
RESP client below (RPUSH and BLPOP only), with every read bounded in size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time

log = logging.getLogger("transport_interop")

LISTENER_KEY = "listenerAddr"
MUXERS = {"yamux": "/yamux/1.0.0", "mplex": "/mplex/6.7.0"}
SECURITY = {"noise": "/noise"}
MAX_LINE = 64 * 1024
MAX_BULK = 1024 * 1024
MAX_ARRAY = 16


class RespError(Exception):
    """Redis answered with an error, or broke the protocol."""


class Redis:
    """A minimal RESP2 client: just what the contract needs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, addr: str, timeout: float = 10.0) -> Redis:
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"redis_addr must be host:port, not {addr!r}")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port), limit=MAX_LINE), timeout
        )
        return cls(reader, writer)

    def local_ip(self) -> str:
        """Our address on the connection to Redis: one the dialer can reach too."""
        return str(self.writer.get_extra_info("sockname")[0])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)

    async def command(self, *args: str | bytes | int, timeout: float = 10.0) -> object:
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.writer.write(b"".join(out))
        await asyncio.wait_for(self.writer.drain(), timeout)
        return await asyncio.wait_for(self._reply(depth=0), timeout)

    async def _line(self) -> bytes:
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            raise RespError("redis closed the connection") from exc
        except asyncio.LimitOverrunError as exc:
            raise RespError("redis sent an over-long line") from exc
        return line[:-2]

    async def _reply(self, depth: int) -> object:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            if n > MAX_BULK:
                raise RespError(f"bulk string of {n} bytes is too long")
            data = await self.reader.readexactly(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            if n > MAX_ARRAY or depth > 2:
                raise RespError(f"array of {n} items (depth {depth}) is too large")
            return [await self._reply(depth + 1) for _ in range(n)]
        raise RespError(f"unexpected reply {line[:80]!r}")

    async def rpush(self, key: str, value: str) -> int:
        result = await self.command("RPUSH", key, value)
        assert isinstance(result, int)
        return result

    async def blpop(self, key: str, timeout: float) -> bytes | None:
        """Pop the head of ``key``, waiting up to ``timeout`` seconds; None on timeout."""
        result = await self.command("BLPOP", key, f"{timeout:.3f}", timeout=timeout + 10)
        if result is None:
            return None
        if not (isinstance(result, list) and len(result) == 2 and isinstance(result[1], bytes)):
            raise RespError(f"unexpected BLPOP reply {result!r}")
        return result[1]


def env_config() -> dict[str, object]:
    env = os.environ
    transport = env.get("transport", "tcp")
    security = env.get("security", "noise")
    muxer = env.get("muxer", "yamux")
    if transport != "tcp":
        raise SystemExit(f"transport={transport!r} is not supported (tcp only)")
    if security not in SECURITY:
        raise SystemExit(f"security={security!r} is not supported (noise only)")
    if muxer not in MUXERS:
        raise SystemExit(f"muxer={muxer!r} is not supported (yamux, mplex)")
    is_dialer = env.get("is_dialer", "false").strip().lower()
    if is_dialer not in ("true", "false"):
        raise SystemExit(f"is_dialer must be true or false, not {is_dialer!r}")
    return {
        "muxer": MUXERS[muxer],
        "security": SECURITY[security],
        "is_dialer": is_dialer == "true",
        "ip": env.get("ip", "0.0.0.0"),
        "redis_addr": env.get("redis_addr", "redis:6379"),
        "timeout": float(env.get("test_timeout_seconds", "180")),
    }


async def new_node(cfg: dict[str, object], listen: str | None) -> object:
    import aiolibp2p
    from aiolibp2p import options as o

    opts = [o.muxers(cfg["muxer"]), o.security(cfg["security"])]
    if listen is not None:
        opts.append(o.listen(listen))
    return await aiolibp2p.new_host(*opts)


async def run_listener(cfg: dict[str, object]) -> int:
    redis = await Redis.connect(str(cfg["redis_addr"]))
    host = await new_node(cfg, f"/ip4/{cfg['ip']}/tcp/0")
    try:
        addr = host.listen_addrs[0]
        if str(cfg["ip"]) == "0.0.0.0":  # publish an address the dialer can reach
            port = str(addr).rsplit("/", 1)[-1]
            text = f"/ip4/{redis.local_ip()}/tcp/{port}/p2p/{host.peer_id}"
        else:
            text = f"{addr}/p2p/{host.peer_id}"
        await redis.rpush(LISTENER_KEY, text)
        log.info("listening on %s, published to %s", text, LISTENER_KEY)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), float(cfg["timeout"]))
        except asyncio.TimeoutError:
            log.error("no one stopped the listener within %ss", cfg["timeout"])
            return 1
        log.info("stopped by a signal")
        return 0
    finally:
        await asyncio.wait_for(host.close(), 10)
        await redis.close()


async def run_dialer(cfg: dict[str, object]) -> int:
    host = await new_node(cfg, None)
    try:
        redis = await Redis.connect(str(cfg["redis_addr"]))
        try:
            raw = await redis.blpop(LISTENER_KEY, float(cfg["timeout"]))
        finally:
            await redis.close()
        if raw is None:
            log.error("no listener address in %s within %ss", LISTENER_KEY, cfg["timeout"])
            return 1
        target = raw.decode().strip()
        log.info("dialing %s", target)
        start = time.perf_counter()
        conn = await host.connect(target, timeout=float(cfg["timeout"]))
        rtt = await host.ping(conn.remote_peer)
        handshake_plus_one_rtt = time.perf_counter() - start
        log.info("connected over %s with %s", conn.security, conn.muxer)
    finally:
        await asyncio.wait_for(host.close(), 10)
    result = {
        "handshakePlusOneRTTMillis": handshake_plus_one_rtt * 1000,
        "pingRTTMilllis": rtt * 1000,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


async def amain() -> int:
    cfg = env_config()
    log.info("config %s", cfg)
    role = run_dialer if cfg["is_dialer"] else run_listener
    # the listener's own wait is the timeout; everything else gets a little on top
    return await asyncio.wait_for(role(cfg), float(cfg["timeout"]) + 30)


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("AIOLIBP2P_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return asyncio.run(amain())
    except asyncio.TimeoutError:
        log.error("test_timeout_seconds exceeded")
        return 1


if __name__ == "__main__":
    sys.exit(main())
