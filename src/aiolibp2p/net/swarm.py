"""The swarm: listeners, dials and the table of live connections.

* Dials to one peer are deduplicated: concurrent ``dial_peer`` calls share one attempt.
* A peer's addresses are dialed staggered (happy-eyeballs style): the next address starts when the
  previous one failed, or after ``dial_stagger`` if it is still pending; the first connection that
  finishes its upgrade wins and the others are cancelled.  Nothing waits after a success.
* Every attempt is bounded by ``dial_timeout`` and the whole dial by ``connect_timeout``.
* Inbound connections still handshaking are bounded by ``max_pending_inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from aiolibp2p.config import MPLEX, YAMUX, HostConfig
from aiolibp2p.core.errors import ConnectionClosedError, DialError, Libp2pError, MultiaddrError
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net._compat import timeout
from aiolibp2p.net.connection import Connection, new_recv_buffer, random_key
from aiolibp2p.net.stream import Direction, Stream
from aiolibp2p.net.transports.tcp import bound_multiaddrs, dial_tcp, is_tcp, listen_tcp
from aiolibp2p.proto.muxer import MuxerMachine
from aiolibp2p.proto.upgrade import Upgrader

__all__ = ["Swarm"]


#: mplex resets a stream whose unread data passes the pause threshold by more than this: reads
#: pause as soon as the threshold is crossed, so only what was already received can overshoot
#: (one receive buffer plus a partial Noise and a partial mplex frame, well under 4 MiB).
MPLEX_RESET_SLACK = 4 << 20


def _muxer_factory(config: HostConfig) -> Callable[[str, bool], MuxerMachine]:
    """Build muxer machines with the host's bounds."""

    def make(protocol_id: str, is_initiator: bool) -> MuxerMachine:
        if protocol_id == YAMUX:
            from aiolibp2p.proto.yamux import YamuxMachine

            return YamuxMachine(is_initiator=is_initiator)
        if protocol_id == MPLEX:
            from aiolibp2p.proto.mplex import MplexConfig, MplexMachine

            bound = config.max_stream_buffer + MPLEX_RESET_SLACK
            return MplexMachine(
                is_initiator=is_initiator, config=MplexConfig(max_stream_buffer=bound)
            )
        raise Libp2pError(f"no muxer implementation for {protocol_id}")  # pragma: no cover

    return make


class _Refuse(asyncio.BufferedProtocol):
    """Accepted over the pending-handshake bound: closed at once."""

    _buf = bytearray(1)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buf

    def buffer_updated(self, nbytes: int) -> None:
        pass


class Swarm:
    """Connections of one host."""

    def __init__(
        self,
        config: HostConfig,
        *,
        on_connection: Callable[[Connection], None],
        on_disconnect: Callable[[Connection], None],
        on_stream: Callable[[Connection, Stream], None],
    ) -> None:
        self.config = config
        self.local_peer = PeerId.from_public_key(config.identity.public_key())
        self._on_connection = on_connection
        self._on_disconnect = on_disconnect
        self._on_stream = on_stream
        self._servers: list[asyncio.Server] = []
        self._listen_addrs: list[Multiaddr] = []
        self._conns: dict[PeerId, list[Connection]] = {}
        self._pending: set[Connection] = set()
        self._dials: dict[PeerId, asyncio.Task[Connection]] = {}
        self._closed = False
        self._make_muxer = _muxer_factory(config)
        self._recv_buffer = new_recv_buffer()

    # ------------------------------------------------------------------------------ listening

    async def listen(self, addrs: Iterable[Multiaddr]) -> list[Multiaddr]:
        """Listen on each address; returns the addresses really bound."""
        bound = []
        for addr in addrs:
            if not is_tcp(addr):
                raise MultiaddrError(f"no transport can listen on {addr}")
            server = await listen_tcp(addr, self._inbound_factory)
            self._servers.append(server)
            bound.extend(bound_multiaddrs(server))
        self._listen_addrs.extend(bound)
        return bound

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        return list(self._listen_addrs)

    def _inbound_factory(self) -> asyncio.BufferedProtocol:
        if self._closed or len(self._pending) >= self.config.max_pending_inbound:
            return _Refuse()
        if self.connection_count() >= self.config.max_connections:
            return _Refuse()
        conn = self._new_connection(Direction.INBOUND, expected_peer=None)
        return conn

    def _new_connection(self, direction: Direction, expected_peer: PeerId | None) -> Connection:
        config = self.config
        upgrader = Upgrader(
            initiator=direction is Direction.OUTBOUND,
            identity_key=config.identity,
            muxers=config.muxers,
            static_key=random_key(),
            ephemeral_key=random_key(),
            expected_peer=expected_peer,
        )
        conn = Connection(
            direction=direction,
            upgrader=upgrader,
            make_muxer=self._make_muxer,
            on_ready=self._conn_ready,
            on_stream=self._on_stream,
            on_closed=self._conn_closed,
            handshake_timeout=config.handshake_timeout,
            close_timeout=config.close_timeout,
            stream_buffer_limit=config.max_stream_buffer,
            recv_buffer=self._recv_buffer,
        )
        self._pending.add(conn)
        conn.closed.add_done_callback(lambda _f: self._pending.discard(conn))
        return conn

    # -------------------------------------------------------------------------- connections

    def _conn_ready(self, conn: Connection) -> None:
        self._pending.discard(conn)
        if self._closed:
            conn.abort()
            return
        self._conns.setdefault(conn.remote_peer, []).append(conn)
        self._on_connection(conn)

    def _conn_closed(self, conn: Connection) -> None:
        conns = self._conns.get(conn.remote_peer)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._conns[conn.remote_peer]
        self._on_disconnect(conn)

    def connections(self, peer: PeerId | None = None) -> list[Connection]:
        if peer is not None:
            return list(self._conns.get(peer, ()))
        return [c for conns in self._conns.values() for c in conns]

    def connection_count(self) -> int:
        return sum(len(c) for c in self._conns.values())

    def best_connection(self, peer: PeerId) -> Connection | None:
        for conn in self._conns.get(peer, ()):
            if conn.is_open:
                return conn
        return None

    def is_connected(self, peer: PeerId) -> bool:
        return self.best_connection(peer) is not None

    # -------------------------------------------------------------------------------- dialing

    async def dial_peer(
        self, peer: PeerId, addrs: list[Multiaddr], *, timeout: float | None = None
    ) -> Connection:
        """A connection to ``peer``: an open one, a dial in progress, or a new dial."""
        if self._closed:
            raise ConnectionClosedError("host is closed")
        if peer == self.local_peer:
            raise DialError("refusing to dial ourselves")
        conn = self.best_connection(peer)
        if conn is not None:
            return conn
        task = self._dials.get(peer)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._dial_addrs(peer, addrs))
            self._dials[peer] = task
            task.add_done_callback(lambda _t: self._dials.pop(peer, None))
        limit = self.config.connect_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(task), limit)
        except asyncio.TimeoutError:
            raise DialError(f"dial to {peer} timed out after {limit} s") from None

    async def _dial_addrs(self, peer: PeerId, addrs: list[Multiaddr]) -> Connection:
        dialable = [a for a in addrs if is_tcp(a)]
        if not dialable:
            refused: dict[str, BaseException] = {
                str(a): MultiaddrError("no transport for this address") for a in addrs
            }
            raise DialError(f"no dialable address for {peer}", refused)
        errors: dict[str, BaseException] = {}
        attempts: dict[asyncio.Task[Connection], Multiaddr] = {}
        loop = asyncio.get_running_loop()
        queue = list(dialable)
        try:
            async with timeout(self.config.connect_timeout):
                while queue or attempts:
                    if queue:
                        addr = queue.pop(0)
                        attempts[loop.create_task(self._dial_one(peer, addr))] = addr
                    wait = self.config.dial_stagger if queue else None
                    done, _ = await asyncio.wait(
                        attempts, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        addr = attempts.pop(task)
                        exc = task.exception()
                        if exc is None:
                            return task.result()
                        errors[str(addr)] = exc
        except asyncio.TimeoutError:
            for addr in attempts.values():
                errors[str(addr)] = asyncio.TimeoutError("connect timeout")
        finally:
            for task in attempts:
                task.cancel()
            for task in attempts:
                with contextlib.suppress(BaseException):
                    await task
        raise DialError(f"could not connect to {peer}", errors)

    async def _dial_one(self, peer: PeerId, addr: Multiaddr) -> Connection:
        conn = self._new_connection(Direction.OUTBOUND, expected_peer=peer)
        try:
            async with timeout(self.config.dial_timeout):
                await dial_tcp(addr, lambda: conn)
                return await conn.ready
        except BaseException:
            conn.abort()
            self._pending.discard(conn)
            raise

    # -------------------------------------------------------------------------------- closing

    async def close(self) -> None:
        """Stop listening, cancel dials, close every connection; waits until all are closed."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        for task in list(self._dials.values()):
            task.cancel()
        conns = self.connections() + list(self._pending)
        for conn in self._pending:
            conn.abort()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        for task in list(self._dials.values()):
            with contextlib.suppress(BaseException):
                await task
        self._servers.clear()
