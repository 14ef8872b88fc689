"""QUIC-v1 (``/udp/<port>/quic-v1``): UDP endpoints that demultiplex datagrams to connections.

One :class:`QuicEndpoint` (one UDP socket) per listen address serves the listener *and* the
connections this node dials from that address's family, so the peer sees our listening port
(hole punching needs this).  A dial with no suitable listener gets an endpoint of its own,
closed with its connection.  Datagrams are routed by destination connection id; an unknown id
in a full-size Initial packet of QUIC v1 on a listening endpoint starts a server connection
(bounded by the swarm's pending-handshake limit); anything else unknown is dropped (a version
negotiation packet answers an unknown version).

After the datagram the loop delivered, the endpoint reads what else is already queued on the
socket (up to :data:`_READ_BATCH`) before anything is sent: every connection then flushes once
per batch, not once per datagram (an ACK that became overdue goes out with its batch).  Bursts
of equal-size datagrams leave with one ``sendmsg`` each where the kernel segments them (Linux
UDP GSO, :mod:`aiolibp2p.net._udp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Collection
from typing import Any

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion, encode_quic_version_negotiation
from aioquic.tls import Epoch

from aiolibp2p.core.crypto import PrivateKey
from aiolibp2p.core.errors import ConnectionClosedError, HandshakeError, MultiaddrError
from aiolibp2p.core.multiaddr import Multiaddr, components
from aiolibp2p.core.peer import PeerId
from aiolibp2p.log import transport_logger as log
from aiolibp2p.net import _udp
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.quic_connection import (
    QuicConn,
    QuicSettings,
    TicketStore,
    new_certificate_key,
    random_serial,
)
from aiolibp2p.net.stream import Direction, Stream
from aiolibp2p.proto.tls.certificate import ALPN, VerifiedCertificates, build_certificate

__all__ = ["QuicEndpoint", "QuicTransport", "is_quic", "quic_endpoint"]

_CID_LENGTH = 8
_MIN_INITIAL_SIZE = 1200
_VERSION_1 = QuicProtocolVersion.VERSION_1
#: Datagrams read from the socket per batch (the one the loop delivered plus these).
_READ_BATCH = 63
_RECV_SIZE = 65536
#: Bound on the connection ids one endpoint routes (a peer can make us issue a few per connection).
_MAX_CIDS_PER_CONN = 16

_now = time.monotonic
_ONE_RTT = Epoch.ONE_RTT
#: How late (after aioquic's 1 ms ack delay) an ACK may be before a read batch flushes it.
_ACK_SLACK = 0.004
#: Our certificate is replaced once it has less validity than this left (seconds).
_CERT_RENEW_MARGIN = 3600.0


def quic_endpoint(addr: Multiaddr) -> tuple[str, int, int]:
    """``(host, port, family)`` of ``/ip4|ip6/<ip>/udp/<port>/quic-v1``."""
    comps = components(addr)
    if len(comps) != 3 or comps[1].name != "udp" or comps[2].name != "quic-v1":
        raise MultiaddrError(f"not a QUIC-v1 address: {addr}")
    first = comps[0]
    port = int.from_bytes(comps[1].value, "big")
    if first.name == "ip4":
        return socket.inet_ntop(socket.AF_INET, first.value), port, socket.AF_INET
    if first.name == "ip6":
        return socket.inet_ntop(socket.AF_INET6, first.value), port, socket.AF_INET6
    raise MultiaddrError(f"QUIC needs an IP address: {addr}")


def is_quic(addr: Multiaddr) -> bool:
    try:
        quic_endpoint(addr)
    except MultiaddrError:
        return False
    return True


def _udp_multiaddr(host: str, port: int) -> Multiaddr:
    family = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{family}/{host.split('%', 1)[0]}/udp/{port}/quic-v1")


def _queued(transport: asyncio.DatagramTransport) -> int:
    """Bytes the transport holds unsent (asyncio's and uvloop's both count them)."""
    return transport.get_write_buffer_size()  # type: ignore[attr-defined, no-any-return]


class QuicEndpoint(asyncio.DatagramProtocol):
    """One UDP socket and the QUIC connections it carries."""

    def __init__(self, owner: QuicTransport, sock: socket.socket, *, listening: bool) -> None:
        self._owner = owner
        self._sock = sock
        self.family = sock.family
        host, port = sock.getsockname()[:2]
        self.host = host
        self.port = port
        self.local_multiaddr = _udp_multiaddr(host, port)
        self.listening = listening
        self._transport: asyncio.DatagramTransport | None = None
        self._by_cid: dict[bytes, QuicConn] = {}
        self.connections: set[QuicConn] = set()
        self._closed = asyncio.get_running_loop().create_future()
        self._closing = False
        self.dropped = 0  # datagrams routed nowhere (for tests and diagnostics)

    # -------------------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for conn in list(self.connections):
            conn._finish(ConnectionClosedError(f"UDP socket closed: {exc}"))
        if not self._closed.done():
            self._closed.set_result(None)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable, ...) for some peer: the connections time out on their
        # own; one peer's unreachability must not affect the others.
        log.debug("UDP error on %s: %s", self.local_multiaddr, exc)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        now = _now()
        conn = self._route(data, addr, now)
        touched = set() if conn is None else {conn}
        # Take what else is queued already, so that the connections flush once per batch.
        sock = self._sock
        for _ in range(_READ_BATCH):
            if self._transport is None:
                break
            try:
                data, addr = sock.recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.error_received(exc)
                break
            conn = self._route(data, addr, now)
            if conn is not None:
                touched.add(conn)
        # The loop may deliver many batches (thousands of datagrams) before a scheduled
        # flush runs: an ACK overdue by _ACK_SLACK goes out now, so that acknowledgements
        # stay well within the max_ack_delay we announce (25 ms) however busy the loop is.
        for conn in touched:
            space = conn.quic._spaces.get(_ONE_RTT)
            ack_at = None if space is None else space.ack_at
            if ack_at is not None and ack_at + _ACK_SLACK <= _now():
                conn._flush()

    def _route(self, data: bytes, addr: tuple[Any, ...], now: float) -> QuicConn | None:
        """Hand a datagram to its connection (or start one); returns the connection."""
        n = len(data)
        if n < 1 + _CID_LENGTH:
            self.dropped += 1
            return None
        first = data[0]
        if first & 0x80:  # long header: version, then length-prefixed destination cid
            if n < 7:
                self.dropped += 1
                return None
            dlen = data[5]
            if dlen > 20 or n < 6 + dlen:
                self.dropped += 1
                return None
            dcid = data[6 : 6 + dlen]
        else:
            dcid = data[1 : 1 + _CID_LENGTH]
        conn = self._by_cid.get(dcid)
        if conn is not None:
            conn.datagram_received(data, addr, now)
            return conn
        if not first & 0x80 or not self.listening or self._closing:
            self.dropped += 1
            return None
        version = int.from_bytes(data[1:5], "big")
        if version != _VERSION_1:
            if version != 0 and n >= _MIN_INITIAL_SIZE and n >= 7 + dlen:
                slen = data[6 + dlen]
                scid = data[7 + dlen : 7 + dlen + slen]
                if slen <= 20 and len(scid) == slen:
                    self.sendto(
                        encode_quic_version_negotiation(
                            source_cid=dcid, destination_cid=scid, supported_versions=[_VERSION_1]
                        ),
                        addr,
                    )
            self.dropped += 1
            return None
        if (first & 0x30) != 0 or n < _MIN_INITIAL_SIZE or dlen < 8:
            self.dropped += 1  # not an Initial, or too small to be one (RFC 9000 14.1)
            return None
        conn = self._owner.accept(self, addr, dcid)
        if conn is None:
            self.dropped += 1
            return None
        self._register(conn, dcid)
        self._register(conn, conn.quic.host_cid)
        conn.datagram_received(data, addr, now)
        if not conn.quic._network_paths:  # the Initial did not decrypt: no connection
            conn._finish(HandshakeError("undecryptable Initial packet"))
            return None
        return conn

    # --------------------------------------------------------------------------- routing

    def _register(self, conn: QuicConn, cid: bytes) -> None:
        self._by_cid[cid] = conn
        conn.cids.add(cid)
        self.connections.add(conn)

    def add_cid(self, conn: QuicConn, cid: bytes) -> None:
        if conn in self.connections and len(conn.cids) < _MAX_CIDS_PER_CONN:
            self._register(conn, cid)

    def remove_cid(self, conn: QuicConn, cid: bytes) -> None:
        if self._by_cid.get(cid) is conn:
            del self._by_cid[cid]
        conn.cids.discard(cid)

    def add_client(self, conn: QuicConn) -> None:
        self._register(conn, conn.quic.host_cid)

    def connection_closed(self, conn: QuicConn) -> None:
        for cid in conn.cids:
            if self._by_cid.get(cid) is conn:
                del self._by_cid[cid]
        conn.cids.clear()
        self.connections.discard(conn)
        if not self.listening and not self.connections:
            self.close()

    # --------------------------------------------------------------------------- sending

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        transport = self._transport
        if transport is not None:
            transport.sendto(data, addr)

    #: Segmented sends (UDP GSO); off for this endpoint once the kernel refuses one.
    gso = _udp.GSO_AVAILABLE
    #: Datagrams sent in segmented runs (diagnostics and tests).
    segmented = 0

    def send_datagrams(self, datagrams: list[tuple[bytes, tuple[Any, ...]]]) -> None:
        transport = self._transport
        if transport is None:
            return
        sendto = transport.sendto
        start = 0
        if self.gso and len(datagrams) > 1 and not _queued(transport):
            # Runs of equal-size datagrams go out one sendmsg each, straight on the socket
            # while the transport holds nothing queued (so nothing is overtaken).
            start = self._send_runs(datagrams)
        for k in range(start, len(datagrams)):
            data, addr = datagrams[k]
            sendto(data, addr)

    def _send_runs(self, datagrams: list[tuple[bytes, tuple[Any, ...]]]) -> int:
        """Send what it can by runs; returns where the transport must take over."""
        transport = self._transport
        assert transport is not None
        for run in _udp.segment_runs(datagrams):
            start, stop, _size = run
            if stop - start == 1:
                data, addr = datagrams[start]
                transport.sendto(data, addr)
                if _queued(transport):
                    return stop  # queued: the rest follows it through the transport
                continue
            try:
                _udp.send_run(self._sock, datagrams, run)
                self.segmented += stop - start
            except (BlockingIOError, InterruptedError):
                return start  # the socket buffer is full: the transport queues and waits
            except OSError as exc:
                # No GSO on this socket or path (old kernel, EIO from a device): plain sends.
                log.debug("UDP GSO off on %s: %s", self.local_multiaddr, exc)
                self.gso = False
                return start
        return len(datagrams)

    # --------------------------------------------------------------------------- addresses

    def multiaddr_of(self, addr: tuple[Any, ...]) -> Multiaddr:
        return _udp_multiaddr(str(addr[0]), int(addr[1]))

    def serves(self, host: str, family: int) -> bool:
        """Whether a dial to ``host`` may leave from this socket."""
        if self._closing or family != self.family:
            return False
        bound = ipaddress.ip_address(self.host.split("%", 1)[0])
        if bound.is_unspecified:
            return True
        try:
            target = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return bound.is_loopback == target.is_loopback

    # --------------------------------------------------------------------------- closing

    def stop_listening(self) -> None:
        self.listening = False
        if not self.connections:
            self.close()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.listening = False
        if self._transport is not None:
            self._transport.close()
        elif not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


class QuicTransport:
    """The QUIC side of a swarm: endpoints, the TLS certificate, connection factories."""

    def __init__(
        self,
        *,
        identity: PrivateKey,
        settings: QuicSettings,
        on_ready: Callable[[Connection], None],
        on_stream: Callable[[Connection, Stream], None],
        on_closed: Callable[[Connection], None],
        may_accept: Callable[[], bool],
        on_pending: Callable[[Connection], None],
        close_timeout: float = 2.0,
        alpn: str = ALPN,
        early_protocols: Collection[str] = (),
    ) -> None:
        self._settings = settings
        #: Protocols allowed in 0-RTT (live: the swarm's set, which the host extends).
        self._early_protocols = early_protocols
        self._on_ready = on_ready
        self._on_stream = on_stream
        self._on_closed = on_closed
        self._may_accept = may_accept
        self._on_pending = on_pending
        self._close_timeout = close_timeout
        self._alpn = alpn
        self._identity = identity
        self._new_certificate(time.time())
        self.endpoints: list[QuicEndpoint] = []
        self._closed = False
        #: Session tickets for resumption (an abbreviated handshake on reconnects).
        self.tickets = TicketStore()
        #: Peer certificates that verified (a repeated full handshake skips the checks).
        self._verified_certificates = VerifiedCertificates()

    def _new_certificate(self, now: float) -> None:
        """Make the TLS certificate (one per host, used by every connection until it nears
        its end of validity)."""
        key = new_certificate_key()
        self._set_certificate(
            key, build_certificate(self._identity, key, now=now, serial=random_serial())
        )

    def _set_certificate(self, key: Any, certificate: Any) -> None:
        """Use ``certificate`` (signed by ``key``) for the connections made from now on."""
        self._cert_key = key
        self._certificate = certificate
        not_after = certificate.not_valid_after_utc.timestamp()
        not_before = certificate.not_valid_before_utc.timestamp()
        #: When to make a new one: an hour of validity left, or a tenth of a shorter lifetime.
        self._certificate_renew_at = not_after - min(
            _CERT_RENEW_MARGIN, (not_after - not_before) / 10
        )

    def _configuration(self, *, is_client: bool) -> QuicConfiguration:
        s = self._settings
        if time.time() >= self._certificate_renew_at:
            self._new_certificate(time.time())
        config = QuicConfiguration(
            is_client=is_client,
            alpn_protocols=[self._alpn],
            connection_id_length=_CID_LENGTH,
            idle_timeout=s.idle_timeout,
            max_data=s.connection_window,
            max_stream_data=s.stream_window,
            max_datagram_size=s.max_datagram_size,
            verify_mode=0,  # ssl.CERT_NONE: no CA check; the libp2p certificate is checked instead
            certificate=self._certificate,
            private_key=self._cert_key,
            congestion_control_algorithm="cubic",
            # QUIC v1 only (what /quic-v1 names): aioquic's default adds v2, deriving the
            # Initial keys of both on every connection.
            supported_versions=[_VERSION_1],
        )
        config.server_name = None  # libp2p TLS: clients MUST NOT send SNI
        return config

    # ------------------------------------------------------------------------- listening

    async def listen(self, addr: Multiaddr) -> QuicEndpoint:
        host, port, family = quic_endpoint(addr)
        endpoint = await self._open_endpoint(host, port, family, listening=True)
        return endpoint

    async def _open_endpoint(
        self, host: str, port: int, family: int, *, listening: bool
    ) -> QuicEndpoint:
        if self._closed:
            raise ConnectionClosedError("transport is closed")
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):  # capped by the system: best effort
                    sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
            sock.bind((host, port))
            loop = asyncio.get_running_loop()
            endpoint = QuicEndpoint(self, sock, listening=listening)
            await loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.endpoints.append(endpoint)
        endpoint._closed.add_done_callback(lambda _f: self._forget(endpoint))
        return endpoint

    def _forget(self, endpoint: QuicEndpoint) -> None:
        if endpoint in self.endpoints:
            self.endpoints.remove(endpoint)

    def accept(self, endpoint: QuicEndpoint, addr: tuple[Any, ...], dcid: bytes) -> QuicConn | None:
        if self._closed or not self._may_accept():
            return None
        conn = QuicConn(
            endpoint=endpoint,
            direction=Direction.INBOUND,
            configuration=self._configuration(is_client=False),
            settings=self._settings,
            remote=addr,
            expected_peer=None,
            on_ready=self._on_ready,
            on_stream=self._on_stream,
            on_closed=self._on_closed,
            close_timeout=self._close_timeout,
            original_destination_connection_id=dcid,
            tickets=self.tickets,
            verified_certificates=self._verified_certificates,
            early_protocols=self._early_protocols,
        )
        self._on_pending(conn)
        return conn

    # ---------------------------------------------------------------------------- dialing

    async def dial(self, addr: Multiaddr, expected_peer: PeerId) -> QuicConn:
        """Start a QUIC connection to ``addr`` (returns at once; await ``conn.ready``)."""
        host, port, family = quic_endpoint(addr)
        endpoint = next((e for e in self.endpoints if e.listening and e.serves(host, family)), None)
        if endpoint is None:
            local = "::" if family == socket.AF_INET6 else "0.0.0.0"
            if ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
                local = "::1" if family == socket.AF_INET6 else "127.0.0.1"
            endpoint = await self._open_endpoint(local, 0, family, listening=False)
        try:
            conn = self._client_connection(endpoint, host, port, family, expected_peer)
        except BaseException:
            if not endpoint.listening and not endpoint.connections:
                endpoint.close()
            raise
        self._on_pending(conn)
        try:
            conn.start_client()
        except Exception as exc:
            conn._finish(exc)  # unregisters it (and closes an endpoint of its own)
            raise
        return conn

    def _client_connection(
        self, endpoint: QuicEndpoint, host: str, port: int, family: int, expected_peer: PeerId
    ) -> QuicConn:
        conn = QuicConn(
            endpoint=endpoint,
            direction=Direction.OUTBOUND,
            configuration=self._configuration(is_client=True),
            settings=self._settings,
            remote=(host, port, 0, 0) if family == socket.AF_INET6 else (host, port),
            expected_peer=expected_peer,
            on_ready=self._on_ready,
            on_stream=self._on_stream,
            on_closed=self._on_closed,
            close_timeout=self._close_timeout,
            tickets=self.tickets,
            verified_certificates=self._verified_certificates,
            early_protocols=self._early_protocols,
        )
        endpoint.add_client(conn)
        return conn

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        return [e.local_multiaddr for e in self.endpoints if e.listening]

    async def close(self) -> None:
        """Close every endpoint (their connections end with them); waits for the sockets."""
        self._closed = True
        endpoints = list(self.endpoints)
        for endpoint in endpoints:
            for conn in list(endpoint.connections):
                conn.abort()
            endpoint.close()
        for endpoint in endpoints:
            await endpoint.wait_closed()
