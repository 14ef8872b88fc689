"""The swarm: listeners, dials and the table of live connections.

* Dials to one peer are deduplicated: concurrent ``dial_peer`` calls share one attempt.
* Dialing goes through a table of :class:`DialTransport` (TCP and QUIC by default): the first
  one whose ``can_dial`` accepts an address dials it; addresses no transport accepts are skipped.
* A peer's addresses are dialed on a ranked schedule (:mod:`aiolibp2p.net.dial_ranking`): QUIC
  first, TCP ``tcp_dial_delay`` later, addresses of a group ``dial_stagger`` apart.  When every
  attempt in flight has failed, the next address starts at once; the first connection that
  finishes its upgrade wins and the others are cancelled.  Nothing waits after a success.
* Every attempt is bounded by ``dial_timeout`` and the whole dial by ``connect_timeout``.
* Inbound connections still handshaking are bounded by ``max_pending_inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiolibp2p.config import MPLEX, YAMUX, HostConfig
from aiolibp2p.core.errors import ConnectionClosedError, DialError, Libp2pError, MultiaddrError
from aiolibp2p.core.multiaddr import Multiaddr, transport_family
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net._compat import timeout as _timeout
from aiolibp2p.net.connection import Connection, new_recv_buffer, random_key
from aiolibp2p.net.dial_ranking import QUIC_FAMILY, rank_addrs
from aiolibp2p.net.stream import Direction, Stream
from aiolibp2p.net.transports.tcp import bound_multiaddrs, dial_tcp, is_tcp, listen_tcp
from aiolibp2p.proto.muxer import MuxerMachine
from aiolibp2p.proto.noise import NoiseStaticKey, VerifiedKeys
from aiolibp2p.proto.upgrade import Upgrader

if TYPE_CHECKING:
    from aiolibp2p.net.transports.quic import QuicTransport
    from aiolibp2p.proto.tls import TlsConfig

__all__ = ["DialTransport", "Swarm"]


#: mplex resets a stream whose unread data passes the pause threshold by more than this: reads
#: pause as soon as the threshold is crossed, so only what was already received can overshoot
#: (one receive buffer plus a partial Noise and a partial mplex frame, well under 4 MiB).
MPLEX_RESET_SLACK = 4 << 20

#: Seconds one static Noise key serves new handshakes before a fresh one replaces it (the spec
#: allows one per lifetime; rotating bounds how long a leaked key is useful).
STATIC_KEY_LIFETIME = 3600.0


def _tls_config(config: HostConfig) -> TlsConfig:
    """The host's libp2p TLS setup: a fresh P-256 certificate key and random serial (the
    certificate is reused for every TLS connection of this host, as the spec allows)."""
    import os

    from cryptography.hazmat.primitives.asymmetric import ec

    from aiolibp2p.proto.tls import TlsConfig

    serial = int.from_bytes(os.urandom(16), "big") >> 1 or 1
    return TlsConfig(
        config.identity,
        ec.generate_private_key(ec.SECP256R1()),
        now=time.time(),
        serial=serial,
        muxers=config.muxers,
    )


def _muxer_factory(config: HostConfig) -> Callable[[str, bool], MuxerMachine]:
    """Build muxer machines with the host's bounds."""

    from aiolibp2p.proto.yamux import YamuxConfig, YamuxMachine

    yamux_config = YamuxConfig()  # frozen: built and validated once, not per connection

    def make(protocol_id: str, is_initiator: bool) -> MuxerMachine:
        if protocol_id == YAMUX:
            return YamuxMachine(is_initiator=is_initiator, config=yamux_config)
        if protocol_id == MPLEX:
            from aiolibp2p.proto.mplex import MplexConfig, MplexMachine

            bound = config.max_stream_buffer + MPLEX_RESET_SLACK
            return MplexMachine(
                is_initiator=is_initiator, config=MplexConfig(max_stream_buffer=bound)
            )
        raise Libp2pError(f"no muxer implementation for {protocol_id}")  # pragma: no cover

    return make


def _is_quic(addr: Multiaddr) -> bool:
    return transport_family(addr) == QUIC_FAMILY


@dataclass(frozen=True, slots=True)
class DialTransport:
    """One way the swarm dials: ``can_dial(addr)`` says whether it handles an address (cheap, no
    I/O); ``dial(peer, addr)`` returns the upgraded connection to ``peer`` or raises, bounded by
    the swarm's ``dial_timeout`` (the swarm cancels it when another address wins)."""

    name: str
    can_dial: Callable[[Multiaddr], bool]
    dial: Callable[[PeerId, Multiaddr], Awaitable[Connection]]


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
        # One static Noise key per host, rotated after STATIC_KEY_LIFETIME; fresh ephemerals.
        self._noise_static = NoiseStaticKey(config.identity, random_key())
        self._noise_static_born = time.monotonic()
        self._verified_keys = VerifiedKeys()
        self._tls: TlsConfig | None = None  # built on the first TLS connection (_get_tls)
        self._quic: QuicTransport | None = None  # created on first use (aioquic is optional)
        #: Protocols whose streams may use QUIC 0-RTT (the host adds idempotent handlers).
        self.early_protocols: set[str] = set(config.early_data_protocols)
        #: Dial transports by name, asked in order which one dials an address.
        self._transports: dict[str, DialTransport] = {}
        self.add_transport(DialTransport("tcp", is_tcp, self._dial_tcp))
        self.add_transport(DialTransport("quic", _is_quic, self._dial_quic))

    # ------------------------------------------------------------------------------ listening

    async def listen(self, addrs: Iterable[Multiaddr]) -> list[Multiaddr]:
        """Listen on each address; returns the addresses really bound."""
        bound = []
        for addr in addrs:
            if _is_quic(addr):
                endpoint = await self._quic_transport().listen(addr)
                bound.append(endpoint.local_multiaddr)
                continue
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

    def _static_key(self) -> NoiseStaticKey:
        if time.monotonic() - self._noise_static_born > STATIC_KEY_LIFETIME:
            self._noise_static = NoiseStaticKey(self.config.identity, random_key())
            self._noise_static_born = time.monotonic()
        return self._noise_static

    def _get_tls(self) -> TlsConfig:
        """The host's TLS setup, built on the first TLS connection (loading pyOpenSSL and making
        the certificate cost tens of milliseconds; a host that never speaks TLS never pays)."""
        if self._tls is None:
            self._tls = _tls_config(self.config)
        return self._tls

    def _new_connection(self, direction: Direction, expected_peer: PeerId | None) -> Connection:
        config = self.config
        upgrader = Upgrader(
            initiator=direction is Direction.OUTBOUND,
            identity_key=config.identity,
            muxers=config.muxers,
            static_key=self._static_key(),
            ephemeral_key=random_key(),
            expected_peer=expected_peer,
            verified_keys=self._verified_keys,
            security=config.security,
            tls_config=self._tls or self._get_tls,
            now=time.time(),
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
        self._track_pending(conn)
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

    def add_transport(self, transport: DialTransport) -> None:
        """Register a way to dial (replacing one of the same name); the first registered
        transport that can dial an address dials it."""
        self._transports[transport.name] = transport

    def remove_transport(self, name: str) -> None:
        """Stop dialing with the transport called ``name`` (no-op if there is none)."""
        self._transports.pop(name, None)

    @property
    def transports(self) -> list[DialTransport]:
        """The registered dial transports, in the order they are asked."""
        return list(self._transports.values())

    def _transport_for(self, addr: Multiaddr) -> DialTransport | None:
        for transport in self._transports.values():
            if transport.can_dial(addr):
                return transport
        return None

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
        # The shield keeps the shared dial going when one of its waiters gives up.
        waiter = asyncio.shield(task)
        try:
            async with _timeout(limit):
                return await waiter
        except asyncio.TimeoutError:
            raise DialError(f"dial to {peer} timed out after {limit} s") from None

    async def _dial_addrs(self, peer: PeerId, addrs: list[Multiaddr]) -> Connection:
        """Dial ``addrs`` on the ranked schedule (:mod:`aiolibp2p.net.dial_ranking`)."""
        errors: dict[str, BaseException] = {}
        dialable: list[Multiaddr] = []
        for addr in addrs:
            if self._transport_for(addr) is None:
                errors[str(addr)] = MultiaddrError("no transport for this address")
            else:
                dialable.append(addr)
        if not dialable:
            raise DialError(f"no dialable address for {peer}", errors)
        config = self.config
        schedule = rank_addrs(
            dialable, tcp_delay=config.tcp_dial_delay, stagger=config.dial_stagger
        )
        if len(schedule) == 1:  # nothing to rank: no extra task, no scheduler
            addr = schedule[0][1]
            try:
                async with _timeout(config.connect_timeout):
                    return await self._dial_one(peer, addr)
            except asyncio.TimeoutError:
                errors[str(addr)] = asyncio.TimeoutError("connect timeout")
            except Exception as err:
                errors[str(addr)] = err
            raise DialError(f"could not connect to {peer}", errors)
        attempts: dict[asyncio.Task[Connection], Multiaddr] = {}
        loop = asyncio.get_running_loop()
        pending = list(schedule)
        begin = loop.time()
        try:
            async with _timeout(config.connect_timeout):
                while pending or attempts:
                    elapsed = loop.time() - begin
                    # Start what is due; with nothing in flight the next address is due now
                    # (and the ones behind it move up by as much).
                    if pending and not attempts and pending[0][0] > elapsed:
                        shift = pending[0][0] - elapsed
                        pending = [(at - shift, a) for at, a in pending]
                    while pending and pending[0][0] <= elapsed:
                        addr = pending.pop(0)[1]
                        attempts[loop.create_task(self._dial_one(peer, addr))] = addr
                    wait = max(0.0, pending[0][0] - elapsed) if pending else None
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
        transport = self._transport_for(addr)
        if transport is None:
            raise MultiaddrError(f"no transport for {addr}")
        return await transport.dial(peer, addr)

    async def _dial_tcp(self, peer: PeerId, addr: Multiaddr) -> Connection:
        conn = self._new_connection(Direction.OUTBOUND, expected_peer=peer)
        try:
            async with _timeout(self.config.dial_timeout):
                await dial_tcp(addr, lambda: conn)
                return await conn.ready
        except BaseException:
            conn.abort()
            self._pending.discard(conn)
            raise

    # ----------------------------------------------------------------------------------- QUIC

    def _quic_transport(self) -> QuicTransport:
        if self._quic is None:
            try:
                from aiolibp2p.net.quic_connection import QuicSettings
                from aiolibp2p.net.transports.quic import QuicTransport
            except ImportError as exc:  # pragma: no cover - the "quic" extra is not installed
                raise MultiaddrError(
                    f"QUIC needs aioquic (pip install aiolibp2p[quic]): {exc}"
                ) from exc
            config = self.config
            self._quic = QuicTransport(
                identity=config.identity,
                settings=QuicSettings(
                    stream_window=config.quic_stream_window,
                    connection_window=config.quic_connection_window,
                    max_streams=config.quic_max_streams,
                    idle_timeout=config.quic_idle_timeout,
                    keep_alive=config.quic_keep_alive,
                    handshake_timeout=config.handshake_timeout,
                    max_datagram_size=config.quic_max_datagram_size,
                    early_data=config.quic_early_data,
                ),
                early_protocols=self.early_protocols,
                on_ready=self._conn_ready,
                on_stream=self._on_stream,
                on_closed=self._conn_closed,
                may_accept=self._may_accept_quic,
                on_pending=self._track_pending,
                close_timeout=config.close_timeout,
            )
        return self._quic

    def _may_accept_quic(self) -> bool:
        return (
            not self._closed
            and len(self._pending) < self.config.max_pending_inbound
            and self.connection_count() < self.config.max_connections
        )

    def _track_pending(self, conn: Connection) -> None:
        self._pending.add(conn)
        conn.closed.add_done_callback(lambda _f: self._pending.discard(conn))

    async def _dial_quic(self, peer: PeerId, addr: Multiaddr) -> Connection:
        conn = await self._quic_transport().dial(addr, peer)
        try:
            async with _timeout(self.config.dial_timeout):
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
        if self._quic is not None:
            await self._quic.close()
        for task in list(self._dials.values()):
            with contextlib.suppress(BaseException):
                await task
        self._servers.clear()
