#!/usr/bin/env python3
"""A delaying TCP and UDP proxy for the benchmarks: a slow, far link on loopback.

The kernel here has no netem, so the benchmarks put this proxy between dialer and listener::

    python bench/proxy.py --listen 127.0.0.1:0 --target 127.0.0.1:PORT --rtt-ms 63 --rate-mbit 1000

prints one JSON line with the addresses it bound, ``{"event": "listening", "tcp": "127.0.0.1:P",
"udp": "127.0.0.1:P", ...}``, then relays until SIGINT/SIGTERM (or EOF on stdin with
``--stdin-eof-exit``).  As a library::

    async with DelayProxy(("127.0.0.1", port), rtt=0.063, rate_bps=1e9) as proxy:
        host, port = proxy.tcp_address

The link model, per direction (client -> target and target -> client):

* every chunk read from one side is delivered to the other after half the RTT;
* with a rate limit, the chunk first waits for the link to serialize it (``len * 8 / rate``
  seconds after the previous chunk finished): one link per direction, shared by all TCP
  connections and UDP flows of the proxy, like a real bottleneck;
* buffers are bounded: a TCP side is no longer read while the link's serialization backlog is over
  ``queue_bytes`` or a connection holds more than ``max_inflight`` bytes in its delay line (TCP
  backpressure, nothing is dropped); a UDP datagram that finds the backlog full is dropped, as a
  router would.

TCP semantics are kept: bytes arrive in order, a half-close (FIN) reaches the other side after the
data sent before it, and a reset (RST) is forwarded as a reset, after the data already in the
delay line.  The proxy opens its connection to the target half an RTT after it accepted the
client, which is when the target would accept on a real link; the TCP handshake between the
client and the proxy itself is *not* delayed, so a measurement through the proxy sees one RTT
less than the same exchange over a real link with that RTT (add it back).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DelayProxy", "LinkStats"]

Address = tuple[str, int]

_EOF = object()  # queued marker: forward a half-close
_RESET = object()  # queued marker: forward a reset

#: Deliver queued items due within this many seconds of now in the same timer run (uvloop's
#: timers have millisecond resolution; this avoids re-arming for items due a fraction later).
_SLACK = 0.0002


@dataclass
class LinkStats:
    """Counters of one direction of the link."""

    bytes: int = 0
    chunks: int = 0
    datagrams_dropped: int = 0


class _Link:
    """One direction of the bottleneck: serialization at ``rate_bps`` (or none), shared by all
    flows in that direction."""

    def __init__(self, rate_bps: float | None) -> None:
        self.rate_bps = rate_bps
        self.free_at = 0.0  # when the link finishes sending what was queued on it
        self.stats = LinkStats()

    def reserve(self, nbytes: int, now: float) -> float:
        """Queue ``nbytes`` on the link; returns when its last bit leaves."""
        self.stats.bytes += nbytes
        self.stats.chunks += 1
        if not self.rate_bps:
            return now
        start = self.free_at if self.free_at > now else now
        self.free_at = start + nbytes * 8.0 / self.rate_bps
        return self.free_at

    def backlog_bytes(self, now: float) -> float:
        """Bytes still waiting to be serialized."""
        if not self.rate_bps or self.free_at <= now:
            return 0.0
        return (self.free_at - now) * self.rate_bps / 8.0

    def time_backlog_reaches(self, nbytes: float) -> float:
        """The time at which the backlog will have drained down to ``nbytes``."""
        assert self.rate_bps
        return self.free_at - nbytes * 8.0 / self.rate_bps


class _DelayLine:
    """A FIFO of items each delivered at its due time (due times never decrease)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[Any]], None],
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._items: deque[tuple[float, Any, int]] = deque()
        self.held = 0  # payload bytes in the line
        self._timer: asyncio.TimerHandle | None = None
        self.blocked = False  # the destination is not ready: keep items until unblocked

    def push(self, due: float, item: Any, nbytes: int) -> None:
        if self._items and due < self._items[-1][0]:
            due = self._items[-1][0]  # FIFO: never overtake
        self._items.append((due, item, nbytes))
        self.held += nbytes
        if self._timer is None and not self.blocked:
            self._arm()

    def unblock(self) -> None:
        self.blocked = False
        if self._items and self._timer is None:
            self._arm()

    def _arm(self) -> None:
        due = self._items[0][0]
        self._timer = self._loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.blocked:
            return
        limit = self._loop.time() + _SLACK
        items = self._items
        batch = []
        while items and items[0][0] <= limit:
            _, item, nbytes = items.popleft()
            self.held -= nbytes
            batch.append(item)
        if items:
            self._arm()
        if batch:
            self._deliver(batch)

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._items.clear()
        self.held = 0

    def __len__(self) -> int:
        return len(self._items)


# ---------------------------------------------------------------------------------------- TCP


class _Side(asyncio.Protocol):
    """One socket of a relayed TCP connection (the client's or the target's)."""

    def __init__(self, relay: _TcpRelay, name: str) -> None:
        self.relay = relay
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.eof = False  # the peer of this socket half-closed
        self.lost = asyncio.get_running_loop().create_future()
        self._paused_reasons: set[str] = set()
        self.write_paused = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.relay.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.relay.received(self, data)

    def eof_received(self) -> bool:
        self.eof = True
        self.relay.eof(self)
        return True  # keep the other direction open

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)
        self.relay.side_lost(self, exc)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.relay.other(self).set_paused("peer-write-buffer", True)

    def resume_writing(self) -> None:
        self.write_paused = False
        self.relay.other(self).set_paused("peer-write-buffer", False)

    # reading control
    def set_paused(self, reason: str, paused: bool) -> None:
        before = bool(self._paused_reasons)
        if paused:
            self._paused_reasons.add(reason)
        else:
            self._paused_reasons.discard(reason)
        after = bool(self._paused_reasons)
        transport = self.transport
        if transport is None or before == after or transport.is_closing():
            return
        if after:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def reset(self) -> None:
        """Abort the socket with a TCP RST (SO_LINGER 0)."""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


class _TcpRelay:
    """A client connection and its connection to the target, with one delay line each way."""

    def __init__(self, proxy: DelayProxy) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = _Side(self, "client")
        self.target: _Side | None = None
        self.up = _DelayLine(self.loop, self._deliver_up)  # client -> target
        self.up.blocked = True  # until the target connection exists
        self.down = _DelayLine(self.loop, self._deliver_down)  # target -> client
        self._eof_delivered = {"up": False, "down": False}
        self._done = False
        self._connect_task: asyncio.Task[None] | None = None
        self._resume_timers: dict[str, asyncio.TimerHandle] = {}

    # ------------------------------------------------------------------ wiring
    def other(self, side: _Side) -> _Side:
        if side is self.client:
            return self.target if self.target is not None else _NullSide.instance
        return self.client

    def side_made(self, side: _Side) -> None:
        if side is self.client:
            self.proxy._relays.add(self)
            self._connect_task = self.loop.create_task(self._connect())
        elif self._done:
            side.transport.abort()  # type: ignore[union-attr]  # the relay ended meanwhile
        else:
            self.up.unblock()

    async def _connect(self) -> None:
        await asyncio.sleep(self.proxy.one_way)
        if self._done:
            return
        target = _Side(self, "target")
        self.target = target
        try:
            await self.loop.create_connection(lambda: target, *self.proxy.target)
        except BaseException as exc:
            if target.transport is None:  # never connected: nothing to wait for
                self.target = None
                if not target.lost.done():
                    target.lost.set_result(None)
            if isinstance(exc, OSError):
                self.client.reset()  # the target refused: the client sees a reset
                self._finish()
                return
            raise

    # ------------------------------------------------------------------ data path
    def _line_from(self, side: _Side) -> tuple[_DelayLine, _Link, str]:
        if side is self.client:
            return self.up, self.proxy.link_up, "up"
        return self.down, self.proxy.link_down, "down"

    def received(self, side: _Side, data: bytes) -> None:
        if self._done:
            return
        line, link, name = self._line_from(side)
        now = self.loop.time()
        due = link.reserve(len(data), now) + self.proxy.one_way
        line.push(due, data, len(data))
        self._check_limits(side, line, link, name, now)

    def _check_limits(
        self, side: _Side, line: _DelayLine, link: _Link, name: str, now: float
    ) -> None:
        proxy = self.proxy
        side.set_paused("inflight", line.held > proxy.max_inflight)
        if link.rate_bps:
            over = link.backlog_bytes(now) > proxy.queue_bytes
            side.set_paused("link-backlog", over)
            if over and name not in self._resume_timers:
                when = link.time_backlog_reaches(proxy.queue_bytes / 2)
                self._resume_timers[name] = self.loop.call_at(when, self._recheck, side, name)

    def _recheck(self, side: _Side, name: str) -> None:
        self._resume_timers.pop(name, None)
        if self._done:
            return
        line, link, _ = self._line_from(side)
        self._check_limits(side, line, link, name, self.loop.time())

    def eof(self, side: _Side) -> None:
        if self._done:
            return
        line, link, _ = self._line_from(side)
        line.push(link.reserve(0, self.loop.time()) + self.proxy.one_way, _EOF, 0)

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if self._done:
            self._forget_if_closed()
            return
        line, link, _ = self._line_from(side)
        if exc is not None or not side.eof:
            # Reset or error on this side (or a close we did not see coming as a FIN): forward
            # a reset after what is already in the line; nothing more can go to this side.
            self._line_to(side).clear()
            line.push(link.reserve(0, self.loop.time()) + self.proxy.one_way, _RESET, 0)
            return
        self._maybe_finish()

    def _forget_if_closed(self) -> None:
        if all(s is None or s.lost.done() for s in (self.client, self.target)):
            self.proxy._relays.discard(self)

    def _line_to(self, side: _Side) -> _DelayLine:
        return self.down if side is self.client else self.up

    def _deliver_up(self, items: list[Any]) -> None:
        self._deliver(self.target, self.client, items, "up")

    def _deliver_down(self, items: list[Any]) -> None:
        self._deliver(self.client, self.target, items, "down")

    def _deliver(self, dst: _Side | None, src: _Side | None, items: list[Any], name: str) -> None:
        transport = dst.transport if dst is not None else None
        for item in items:
            if item is _RESET:
                if dst is not None:
                    dst.reset()
                self._finish()
                return
            if transport is None or transport.is_closing():
                # The destination is gone: the sender's bytes cannot be delivered (a real peer
                # would answer them with a reset).
                if src is not None:
                    src.reset()
                self._finish()
                return
            if item is _EOF:
                if transport.can_write_eof():
                    transport.write_eof()
                self._eof_delivered[name] = True
                self._maybe_finish()
                if self._done:
                    return
            else:
                transport.write(item)
        if src is not None and src.transport is not None:
            # The delay line shrank: maybe reading may resume.
            line, link, name = self._line_from(src)
            self._check_limits(src, line, link, name, self.loop.time())

    def _maybe_finish(self) -> None:
        if all(self._eof_delivered.values()):
            for side in (self.client, self.target):
                if side is not None and side.transport is not None:
                    side.transport.close()
            self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.up.clear()
        self.down.clear()
        for timer in self._resume_timers.values():
            timer.cancel()
        self._resume_timers.clear()
        for side in (self.client, self.target):
            if side is not None and side.transport is not None and not side.transport.is_closing():
                side.transport.close()
        self._forget_if_closed()

    def abort(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
        for side in (self.client, self.target):
            if side is not None and side.transport is not None:
                side.transport.abort()
        self._finish()

    async def wait_closed(self) -> None:
        if self._connect_task is not None:
            with contextlib.suppress(BaseException):
                await self._connect_task
        waits = [s.lost for s in (self.client, self.target) if s is not None]
        await asyncio.gather(*waits)


class _NullSide(_Side):
    """Stands in for the target before it is connected (pausing it does nothing)."""

    instance: _NullSide

    def __init__(self) -> None:
        self._paused_reasons = set()
        self.transport = None

    def set_paused(self, reason: str, paused: bool) -> None:
        pass


_NullSide.instance = _NullSide()


# ---------------------------------------------------------------------------------------- UDP


class _UdpFront(asyncio.DatagramProtocol):
    """The proxy's UDP socket that clients send to."""

    def __init__(self, proxy: DelayProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.proxy._udp_from_client(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors: UDP is lossy anyway

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)


class _UdpSession(asyncio.DatagramProtocol):
    """One client address and the proxy's own UDP socket towards the target for it."""

    def __init__(self, proxy: DelayProxy, client: Address) -> None:
        self.proxy = proxy
        self.client = client
        self.loop = proxy.loop
        self.transport: asyncio.DatagramTransport | None = None
        self.up = _DelayLine(self.loop, self._deliver_up)
        self.up.blocked = True  # until the socket towards the target exists
        self.down = _DelayLine(self.loop, self._deliver_down)
        self.last_active = self.loop.time()
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:
            transport.close()
        else:
            self.up.unblock()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_active = self.loop.time()
        self.proxy._udp_push(self.down, self.proxy.link_down, data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors: UDP is lossy anyway

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)

    async def open(self) -> None:
        try:
            await self.loop.create_datagram_endpoint(lambda: self, remote_addr=self.proxy.target)
        except OSError:
            self.proxy._udp_sessions.pop(self.client, None)
            self.close()
        finally:
            if self.transport is None and not self.lost.done():
                self.lost.set_result(None)  # no socket to wait for

    def _deliver_up(self, items: list[Any]) -> None:
        if self.transport is not None:
            for item in items:
                self.transport.sendto(item)

    def _deliver_down(self, items: list[Any]) -> None:
        front = self.proxy._udp_front
        if front is not None and front.transport is not None:
            for item in items:
                front.transport.sendto(item, self.client)

    def close(self) -> None:
        self.closed = True
        self.up.clear()
        self.down.clear()
        if self.transport is not None:
            self.transport.close()
        elif self.task is not None and not self.task.done():
            self.task.cancel()


# -------------------------------------------------------------------------------------- proxy


class DelayProxy:
    """A TCP and UDP relay to ``target`` adding ``rtt / 2`` each way, optionally rate-limited.

    ``rate_bps`` is the link rate in bit/s (``None``: unlimited).  ``queue_bytes`` bounds the
    serialization backlog of each direction (default: 10 ms at the rate, at least 256 KiB);
    ``max_inflight`` bounds what one TCP connection may hold in one delay line.  UDP flows idle
    for ``udp_idle_timeout`` seconds are forgotten; at most ``max_udp_sessions`` at once.
    """

    def __init__(
        self,
        target: Address,
        *,
        rtt: float,
        rate_bps: float | None = None,
        tcp: bool = True,
        udp: bool = True,
        queue_bytes: int | None = None,
        max_inflight: int = 64 << 20,
        udp_idle_timeout: float = 60.0,
        max_udp_sessions: int = 1024,
    ) -> None:
        if rtt < 0:
            raise ValueError("rtt must be >= 0")
        if rate_bps is not None and rate_bps <= 0:
            raise ValueError("rate_bps must be positive (or None for no limit)")
        if not (tcp or udp):
            raise ValueError("nothing to relay: both tcp and udp are off")
        self.target = (target[0], int(target[1]))
        self.rtt = rtt
        self.one_way = rtt / 2
        self.rate_bps = rate_bps
        self.tcp = tcp
        self.udp = udp
        if queue_bytes is None:
            queue_bytes = max(256 * 1024, int(rate_bps / 8 * 0.010) if rate_bps else 0)
        self.queue_bytes = queue_bytes
        self.max_inflight = max_inflight
        self.udp_idle_timeout = udp_idle_timeout
        self.max_udp_sessions = max_udp_sessions
        self.link_up = _Link(rate_bps)  # client -> target
        self.link_down = _Link(rate_bps)  # target -> client
        self.tcp_address: Address | None = None
        self.udp_address: Address | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self._server: asyncio.Server | None = None
        self._udp_front: _UdpFront | None = None
        self._relays: set[_TcpRelay] = set()
        self._udp_sessions: dict[Address, _UdpSession] = {}
        self._udp_timer: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> DelayProxy:
        """Bind TCP (and UDP, on the same port number when it is free there)."""
        self.loop = asyncio.get_running_loop()
        if self.tcp:
            self._server = await self.loop.create_server(
                lambda: _TcpRelay(self).client, host, port, reuse_address=True, backlog=1024
            )
            sockname = self._server.sockets[0].getsockname()
            self.tcp_address = (sockname[0], sockname[1])
            port = sockname[1]
        if self.udp:
            front = _UdpFront(self)
            try:
                await self.loop.create_datagram_endpoint(lambda: front, local_addr=(host, port))
            except OSError:
                if not self.tcp:
                    raise
                front = _UdpFront(self)  # that port number is taken for UDP: any port
                await self.loop.create_datagram_endpoint(lambda: front, local_addr=(host, 0))
            self._udp_front = front
            assert front.transport is not None
            sockname = front.transport.get_extra_info("sockname")
            self.udp_address = (sockname[0], sockname[1])
            self._udp_timer = self.loop.call_later(self.udp_idle_timeout / 2, self._udp_expire)
        return self

    async def close(self) -> None:
        """Stop listening, abort every relayed connection and UDP flow; wait until closed."""
        if self.loop is None:
            return
        if self._server is not None:
            self._server.close()
        relays = list(self._relays)
        for relay in relays:
            relay.abort()
        if self._udp_timer is not None:
            self._udp_timer.cancel()
            self._udp_timer = None
        sessions = list(self._udp_sessions.values())
        self._udp_sessions.clear()
        for session in sessions:
            session.close()
        front = self._udp_front
        if front is not None and front.transport is not None:
            front.transport.close()
        waits: list[Any] = [r.wait_closed() for r in relays]
        waits += [s.lost for s in sessions]
        waits += [s.task for s in sessions if s.task is not None]
        if front is not None:
            waits.append(front.lost)
        await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 10.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._relays.clear()

    async def __aenter__(self) -> DelayProxy:
        if self.loop is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connections(self) -> int:
        """TCP connections being relayed (or closing) now."""
        return len(self._relays)

    @property
    def udp_sessions(self) -> int:
        return len(self._udp_sessions)

    # ------------------------------------------------------------------------------- UDP
    def _udp_from_client(self, data: bytes, addr: Address) -> None:
        session = self._udp_sessions.get(addr)
        if session is None:
            if len(self._udp_sessions) >= self.max_udp_sessions:
                self.link_up.stats.datagrams_dropped += 1
                return
            session = _UdpSession(self, addr)
            self._udp_sessions[addr] = session
            session.task = self.loop.create_task(session.open())
        session.last_active = self.loop.time()
        self._udp_push(session.up, self.link_up, data)

    def _udp_push(self, line: _DelayLine, link: _Link, data: bytes) -> None:
        now = self.loop.time()
        if link.backlog_bytes(now) + len(data) > self.queue_bytes or line.held > self.max_inflight:
            link.stats.datagrams_dropped += 1
            return
        line.push(link.reserve(len(data), now) + self.one_way, data, len(data))

    def _udp_expire(self) -> None:
        now = self.loop.time()
        for addr, session in list(self._udp_sessions.items()):
            if now - session.last_active > self.udp_idle_timeout and not len(session.down):
                del self._udp_sessions[addr]
                session.close()
        self._udp_timer = self.loop.call_later(self.udp_idle_timeout / 2, self._udp_expire)


# ---------------------------------------------------------------------------------------- CLI


def _parse_addr(text: str) -> Address:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.stdin_eof_exit:

        def watch_stdin() -> None:
            with contextlib.suppress(Exception):
                sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
    proxy = DelayProxy(
        args.target,
        rtt=args.rtt_ms / 1000.0,
        rate_bps=args.rate_mbit * 1e6 if args.rate_mbit else None,
        tcp=not args.no_tcp,
        udp=not args.no_udp,
        queue_bytes=args.queue_kib * 1024 if args.queue_kib else None,
    )
    host, port = args.listen
    await proxy.start(host, port)
    try:
        line = {
            "event": "listening",
            "tcp": f"{proxy.tcp_address[0]}:{proxy.tcp_address[1]}" if proxy.tcp_address else None,
            "udp": f"{proxy.udp_address[0]}:{proxy.udp_address[1]}" if proxy.udp_address else None,
            "target": f"{args.target[0]}:{args.target[1]}",
            "rtt_ms": args.rtt_ms,
            "rate_mbit": args.rate_mbit,
            "queue_bytes": proxy.queue_bytes,
        }
        print(json.dumps(line), flush=True)
        await stop.wait()
    finally:
        await proxy.close()
        stats = {
            "event": "closed",
            "up_bytes": proxy.link_up.stats.bytes,
            "down_bytes": proxy.link_down.stats.bytes,
            "udp_dropped": proxy.link_up.stats.datagrams_dropped
            + proxy.link_down.stats.datagrams_dropped,
        }
        print(json.dumps(stats), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Delaying TCP/UDP proxy (half the RTT each way).")
    parser.add_argument("--listen", type=_parse_addr, default=("127.0.0.1", 0))
    parser.add_argument("--target", type=_parse_addr, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True, help="round-trip time to add")
    parser.add_argument("--rate-mbit", type=float, default=0.0, help="link rate (0: unlimited)")
    parser.add_argument(
        "--queue-kib", type=int, default=0, help="serialization backlog bound per direction"
    )
    parser.add_argument("--no-tcp", action="store_true")
    parser.add_argument("--no-udp", action="store_true")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--stdin-eof-exit", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    loop = _new_loop(args.loop)
    try:
        loop.run_until_complete(_serve(args))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
