"""The host: a node's public face.  Listens, connects, opens streams, serves protocols.

Create one with :func:`aiolibp2p.new_host` (started and listening), use it as an async context
manager or call :meth:`Host.close`.  Closing leaves no task, socket or timer behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiolibp2p.config import HostConfig, Option, build_config
from aiolibp2p.core.errors import (
    ConnectionClosedError,
    DialError,
    Libp2pError,
    LocalProtocolError,
)
from aiolibp2p.core.events import (
    ConnectionClosed,
    ConnectionOpened,
    PeerConnected,
    PeerDisconnected,
    PeerIdentified,
    StreamOpened,
)
from aiolibp2p.core.multiaddr import Multiaddr, join_p2p, parse_multiaddr, split_p2p
from aiolibp2p.core.peer import PeerId
from aiolibp2p.log import host_logger as log
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.events import EventBus, Subscription
from aiolibp2p.net.peerstore import ADDR_TTL_PERMANENT, ADDR_TTL_RECENT, Peerstore
from aiolibp2p.net.services import perf as perf_service
from aiolibp2p.net.services import ping as ping_service
from aiolibp2p.net.services.identify import PROTOCOL_ID as IDENTIFY_ID
from aiolibp2p.net.services.identify import PUSH_PROTOCOL_ID as IDENTIFY_PUSH_ID
from aiolibp2p.net.services.identify import IdentifyService
from aiolibp2p.net.stream import Stream
from aiolibp2p.net.swarm import Swarm
from aiolibp2p.proto.identify import IdentifyInfo
from aiolibp2p.proto.multistream import Listener

__all__ = ["Host", "PeerInfo", "StreamHandler", "new_host"]

StreamHandler = Callable[[Stream], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A peer and the addresses to reach it (the go/js "AddrInfo")."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...] = ()

    @classmethod
    def from_multiaddr(cls, addr: str | Multiaddr) -> PeerInfo:
        """Split ``<transport addr>/p2p/<id>`` (a bare ``/p2p/<id>`` gives no address)."""
        transport, peer = split_p2p(parse_multiaddr(addr))
        if peer is None:
            raise DialError(f"{addr} has no /p2p/<peer id> component")
        return cls(peer, (transport,) if transport is not None else ())


async def new_host(*options: Option, config: HostConfig | None = None) -> Host:
    """Build a host from option functions (see :mod:`aiolibp2p.options`), start it, return it."""
    host = Host(config if config is not None else build_config(*options))
    try:
        await host.start()
    except BaseException:
        await host.close()
        raise
    return host


class Host:
    """A libp2p node."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.peer_id = PeerId.from_public_key(config.identity.public_key())
        self._handlers: dict[str, StreamHandler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events = EventBus()
        self._closed = False
        self._started = False
        self._push_pending = False
        self.swarm = Swarm(
            config,
            on_connection=self._connection_opened,
            on_disconnect=self._connection_closed,
            on_stream=self._inbound_stream,
        )
        self.peerstore = Peerstore(
            time.monotonic,
            max_peers=config.max_peerstore_peers,
            is_protected=self.swarm.is_connected,
        )
        self._identify = IdentifyService(self)
        if config.identify:
            self._handlers[IDENTIFY_ID] = self._identify.handle_identify
            self._handlers[IDENTIFY_PUSH_ID] = self._identify.handle_push
        if config.ping:
            self._handlers[ping_service.PROTOCOL_ID] = ping_service.serve_ping
        if config.perf:
            self._handlers[perf_service.PROTOCOL_ID] = perf_service.PerfHandler(
                max_send_bytes=config.max_perf_bytes
            )

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on the configured addresses."""
        if self._started:
            return
        self._started = True
        if self.config.listen_addrs:
            await self.swarm.listen(self.config.listen_addrs)

    async def close(self) -> None:
        """Close every connection and listener and cancel every task the host started."""
        if self._closed:
            return
        self._closed = True
        await self.swarm.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._events.close()

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -------------------------------------------------------------------------------- addresses

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """The addresses really bound (port 0 resolved), without ``/p2p``."""
        return self.swarm.listen_addrs

    def full_addrs(self) -> list[Multiaddr]:
        """Listen addresses with ``/p2p/<our id>``."""
        return [join_p2p(a, self.peer_id) for a in self.listen_addrs]

    # ------------------------------------------------------------------------------- handlers

    def set_stream_handler(
        self, protocol: str, handler: StreamHandler, *, idempotent: bool = False
    ) -> None:
        """Serve ``protocol`` with ``handler(stream)`` (an ``async`` function).

        ``idempotent=True`` lets the handler serve streams that arrive in QUIC 0-RTT data, and
        our own streams of ``protocol`` travel in it, before the handshake completes.  Mark only
        protocols where a replayed request does no harm.  Other handlers see 0-RTT streams
        only once the handshake has completed.
        """
        if not protocol or len(protocol.encode()) > 1023 or "\n" in protocol:
            raise LocalProtocolError(f"invalid protocol id {protocol!r}")
        changed = protocol not in self._handlers
        self._handlers[protocol] = handler
        if idempotent:
            self.swarm.early_protocols.add(protocol)
        elif protocol not in self.config.early_data_protocols:
            self.swarm.early_protocols.discard(protocol)
        if changed:
            self._protocols_changed()

    def remove_stream_handler(self, protocol: str) -> None:
        """Stop serving ``protocol``."""
        if protocol not in self.config.early_data_protocols:
            self.swarm.early_protocols.discard(protocol)
        if self._handlers.pop(protocol, None) is not None:
            self._protocols_changed()

    def protocols(self) -> list[str]:
        """The protocols we serve."""
        return list(self._handlers)

    def _protocols_changed(self) -> None:
        if self._started and not self._closed and self.config.identify and not self._push_pending:
            self._push_pending = True
            self._spawn(self._push_soon(), "identify push")

    async def _push_soon(self) -> None:
        """One identify push for a burst of handler changes (not one push per change)."""
        await asyncio.sleep(0)  # let the rest of a synchronous burst of changes happen first
        self._push_pending = False
        await self._identify.push_all()

    # ----------------------------------------------------------------------------- connecting

    async def connect(
        self, target: str | Multiaddr | PeerInfo | PeerId, *, timeout: float | None = None
    ) -> Connection:
        """A connection to the peer named by ``target`` (reusing an open one)."""
        if self._closed:
            raise ConnectionClosedError("host is closed")
        if isinstance(target, PeerId):
            conn = self.swarm.best_connection(target)  # the common case: already connected
            if conn is not None:
                return conn
            info = PeerInfo(target)
        elif isinstance(target, PeerInfo):
            info = target
        else:
            info = PeerInfo.from_multiaddr(target)
        if info.addrs:
            self.peerstore.add_addrs(info.peer_id, info.addrs, ADDR_TTL_PERMANENT)
        addrs = list(info.addrs) or self.peerstore.addrs(info.peer_id)
        return await self.swarm.dial_peer(info.peer_id, addrs, timeout=timeout)

    async def new_stream(
        self,
        peer: PeerId | str | Multiaddr | PeerInfo,
        protocols: Sequence[str],
        *,
        timeout: float | None = None,
    ) -> Stream:
        """Open a stream to ``peer`` speaking the first of ``protocols`` it supports."""
        if isinstance(protocols, str):
            raise LocalProtocolError("protocols must be a sequence of protocol ids, not a str")
        conn = await self.connect(peer, timeout=timeout)
        limit = self.config.negotiation_timeout if timeout is None else timeout
        stream = await conn.new_stream(protocols, timeout=limit)
        self._events.emit(StreamOpened(conn.remote_peer, stream.protocol or "", "outbound"))
        return stream

    def connections(self, peer: PeerId | None = None) -> list[Connection]:
        return self.swarm.connections(peer)

    async def disconnect(self, peer: PeerId) -> None:
        """Close every connection to ``peer``."""
        await asyncio.gather(*(c.close() for c in self.swarm.connections(peer)))

    # ------------------------------------------------------------------------ built-in services

    async def ping(self, peer: PeerId | str | Multiaddr | PeerInfo) -> float:
        """Round-trip time to ``peer`` in seconds (``/ipfs/ping/1.0.0``)."""
        conn = self.swarm.best_connection(peer) if isinstance(peer, PeerId) else None
        if conn is None:
            conn = await self.connect(peer)
        return await ping_service.ping_over(conn)

    async def identify(
        self, peer: PeerId | str | Multiaddr | PeerInfo, *, timeout: float | None = None
    ) -> IdentifyInfo:
        """What ``peer`` told us about itself on our connection (waits for identify)."""
        conn = await self.connect(peer)
        fut = self._identify.future(conn)
        limit = self.config.identify_timeout if timeout is None else timeout
        return await asyncio.wait_for(asyncio.shield(fut), limit)

    def subscribe(self, maxlen: int = 1024) -> Subscription:
        """Host events (:mod:`aiolibp2p.core.events`) as an async iterator with a bounded queue."""
        return self._events.subscribe(maxlen)

    # ------------------------------------------------------------------------------ callbacks

    def _connection_opened(self, conn: Connection) -> None:
        peer = conn.remote_peer
        if conn.remote_public_key is not None:
            with contextlib.suppress(ValueError):
                self.peerstore.add_public_key(peer, conn.remote_public_key)
        if self._events.has_subscribers:  # events cost nothing while nobody listens
            self._events.emit(
                ConnectionOpened(
                    peer, conn.direction.value, str(conn.remote_addr), conn.muxer or ""
                )
            )
            if len(self.swarm.connections(peer)) == 1:
                self._events.emit(PeerConnected(peer))
        if self.config.identify:
            self._spawn(self._identify.identify_connection(conn), "identify")

    def _connection_closed(self, conn: Connection) -> None:
        peer = conn.remote_peer
        listening = self._events.has_subscribers
        if listening:
            self._events.emit(ConnectionClosed(peer, conn.direction.value, str(conn.error or "")))
        if not self.swarm.connections(peer):
            self.peerstore.set_addrs_ttl(peer, ADDR_TTL_RECENT)
            if listening:
                self._events.emit(PeerDisconnected(peer))

    def _identified(self, conn: Connection, info: IdentifyInfo) -> None:
        if not self._events.has_subscribers:
            return
        self._events.emit(
            PeerIdentified(conn.remote_peer, tuple(info.protocols or ()), info.agent_version)
        )

    def _inbound_stream(self, conn: Connection, stream: Stream) -> None:
        # Only inbound streams count: our own outbound streams awaiting the remote's answer
        # (lazy proposals) are not the remote's doing.
        # A counter, not a scan of the connection's streams: a peer flooding SYNs must not make
        # each new stream cost O(streams).  Every way negotiation ends (agreed, refused, reset,
        # EOF, timeout, connection closed) goes through Stream._end_negotiation, which counts down.
        if self._closed or conn.negotiating_inbound >= self.config.max_negotiating_streams:
            stream._reset_now()
            return
        stream._start_inbound_negotiation(Listener(self._handlers.__contains__))
        fut = stream._negotiated
        assert fut is not None
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.config.negotiation_timeout, _expire_negotiation, stream)

        def negotiated(f: asyncio.Future[str]) -> None:
            timer.cancel()
            if f.cancelled() or f.exception() is not None:
                return
            handler = self._handlers.get(f.result())
            if handler is None:  # removed while negotiating
                stream._reset_now()
                return
            self._events.emit(StreamOpened(conn.remote_peer, f.result(), "inbound"))
            if not conn.confirmed and f.result() not in self.swarm.early_protocols:
                # A stream in QUIC 0-RTT data for a protocol not marked idempotent: served
                # once the handshake proves the data is no replay.
                self._spawn(_run_handler_confirmed(conn, handler, stream), f"handler {f.result()}")
            else:
                self._spawn(_run_handler(handler, stream), f"handler {f.result()}")

        fut.add_done_callback(negotiated)

    def _spawn(self, coro: Awaitable[None], what: str) -> None:
        if self._closed:
            if asyncio.iscoroutine(coro):
                coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _expire_negotiation(stream: Stream) -> None:
    if stream._negotiator is not None:
        stream._reset_now()


async def _run_handler_confirmed(conn: Connection, handler: StreamHandler, stream: Stream) -> None:
    try:
        await conn.wait_confirmed()
    except Libp2pError:
        stream._reset_now()
        return
    except BaseException:
        stream._reset_now()
        raise
    await _run_handler(handler, stream)


async def _run_handler(handler: StreamHandler, stream: Stream) -> None:
    try:
        await handler(stream)
    except asyncio.CancelledError:
        stream._reset_now()
        raise
    except Libp2pError as exc:
        log.info("handler for %s ended with %s: %s", stream.protocol, type(exc).__name__, exc)
        stream._reset_now()
    except Exception:
        log.exception("handler for %s failed", stream.protocol)
        stream._reset_now()
    else:
        if not stream._closed_write and stream._error is None:
            await stream.close()
