"""One libp2p connection over QUIC-v1: aioquic's sans-IO ``QuicConnection`` driven by asyncio.

QUIC brings its own security (TLS 1.3 with the libp2p certificate, ALPN ``libp2p``) and its own
streams, so there is no upgrade and no muxer: a QUIC bidirectional stream *is* a libp2p stream
(:class:`~aiolibp2p.net.stream.Stream`, with multistream-select per stream).  This class gives
``Stream`` the same connection-side interface as the TCP
:class:`~aiolibp2p.net.connection.Connection` (``_send``, ``_consume``, ``_close_stream``,
``_reset_stream``, ``_flush``, ...), so streams, services and the host work unchanged on either
transport.

Datagrams come from a :class:`~aiolibp2p.net.transports.quic.QuicEndpoint` (one UDP socket, many
connections).  Received datagrams are fed to the machine at once; what it has to send is pulled
once per loop iteration (or at once for bulk writes), not once per datagram.  One timer per
connection, re-armed only when the machine's next deadline moves earlier.

aioquic grows its receive windows as data arrives, whether the application reads it or not.
:class:`_Machine` replaces that with windows that move with what the application has consumed
(bounded memory per stream and per connection), and makes the server require a client
certificate (the libp2p TLS spec's mutual authentication).  Bulk stream packets take the lean
paths of :class:`~aiolibp2p.net._quic_fast.FastQuicConnection` (same bytes on the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from aioquic import tls
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection as _AioQuicConnection
from aioquic.quic.connection import QuicConnectionState
from aioquic.quic.packet import QuicPacketType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketPacer

from aiolibp2p.core.errors import (
    CertificateError,
    ConnectionClosedError,
    HandshakeError,
    HandshakeTimeout,
    Libp2pError,
    LocalProtocolError,
    PeerIdMismatch,
    StreamResetError,
)
from aiolibp2p.core.lru import Lru
from aiolibp2p.core.peer import PeerId
from aiolibp2p.log import connection_logger as log
from aiolibp2p.net._quic_fast import FastQuicConnection
from aiolibp2p.net.connection import Connection, ConnectionState
from aiolibp2p.net.stream import Direction, Stream
from aiolibp2p.proto.tls.certificate import ALPN, VerifiedCertificates, verify_certificate

if TYPE_CHECKING:
    from aiolibp2p.core.crypto import PublicKey
    from aiolibp2p.net.transports.quic import QuicEndpoint

__all__ = ["QuicConn", "QuicSettings", "SECURITY_ID", "MUXER_ID", "TicketStore"]

#: What :attr:`Connection.security` / :attr:`Connection.muxer` report for a QUIC connection.
SECURITY_ID = "/tls/1.0.0"
MUXER_ID = "quic-v1"

#: QUIC transport error codes (RFC 9000 section 20.1); TLS alerts are CRYPTO_ERROR + alert.
_NO_ERROR = 0x0
_CRYPTO_ERROR = 0x100
_BAD_CERTIFICATE = _CRYPTO_ERROR + 42
_NO_APPLICATION_PROTOCOL = _CRYPTO_ERROR + 120
#: Application error code for a stream reset (libp2p defines none; go and rust send 0).
_RESET_CODE = 0

_now = time.monotonic
#: Bytes queued by stream writes that make the connection build packets at once (bulk writes).
_FLUSH_AT = 64 * 1024
_END_STATES = (
    QuicConnectionState.CLOSING,
    QuicConnectionState.DRAINING,
    QuicConnectionState.TERMINATED,
)


class QuicSettings:
    """The numbers a QUIC connection runs with (from the ``quic_*`` fields of the host config)."""

    __slots__ = (
        "connection_window",
        "early_data",
        "handshake_timeout",
        "idle_timeout",
        "keep_alive",
        "max_datagram_size",
        "max_streams",
        "send_buffer",
        "stream_window",
    )

    def __init__(
        self,
        *,
        stream_window: int = 10 << 20,
        connection_window: int = 15 << 20,
        max_streams: int = 256,
        idle_timeout: float = 30.0,
        keep_alive: float = 15.0,
        handshake_timeout: float = 15.0,
        max_datagram_size: int = 1350,
        send_buffer: int | None = None,
        early_data: bool = True,
    ) -> None:
        self.stream_window = stream_window
        #: 0-RTT: issue tickets that allow early data, and send early data on resumption.
        self.early_data = early_data
        self.connection_window = connection_window
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        self.keep_alive = min(keep_alive, idle_timeout / 2)
        self.handshake_timeout = handshake_timeout
        self.max_datagram_size = max_datagram_size
        #: Bytes a stream may have queued (unsent + unacknowledged) before its writer waits.
        self.send_buffer = stream_window if send_buffer is None else send_buffer


def _check_aioquic() -> None:
    """Fail at import if aioquic no longer has the internals :class:`_Machine` overrides."""
    for name in ("_initialize", "_write_connection_limits", "_write_stream_limits"):
        if not hasattr(_AioQuicConnection, name):  # pragma: no cover
            raise ImportError(f"aioquic has no QuicConnection.{name}: unsupported aioquic version")


_check_aioquic()


def _memoize_epochs() -> None:
    """aioquic's ``QuicConnection.__init__`` builds its frame-handler table anew for every
    connection, calling ``EPOCHS(shortcut)`` (a frozenset of epochs for a short string) 33
    times: about half of the constructor's time.  It is a pure function of its argument with an
    immutable result, so memoize it."""
    import aioquic.quic.connection as module

    epochs = getattr(module, "EPOCHS", None)
    if epochs is not None and not hasattr(epochs, "cache_info"):
        module.EPOCHS = functools.lru_cache(maxsize=64)(epochs)


_memoize_epochs()

#: The ``active_connection_id_limit`` we announce: how many connection ids the peer issues us
#: (aioquic's default of 8 makes each side send 7 NEW_CONNECTION_ID frames on every new
#: connection).  2 is the protocol's default and minimum: one spare id for a path change.
_ACTIVE_CID_LIMIT = 2


#: The event loop's timers fire with about a millisecond of granularity (epoll, libuv): the
#: pacer lets a burst of this much sending time through, else pacing caps throughput at
#: aioquic's 16-packet bucket per timer tick.
_PACING_BURST = 0.002


class _Pacer(QuicPacketPacer):
    """aioquic's pacer with a burst sized for millisecond timers."""

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        super().update_rate(congestion_window, smoothed_rtt)
        if self.packet_time is not None:
            rate = congestion_window / max(smoothed_rtt, 1e-6)
            burst = min(_PACING_BURST, congestion_window / rate)
            self.bucket_max = max(self.bucket_max, burst)


class _Machine(FastQuicConnection):
    """aioquic's ``QuicConnection`` with libp2p's mutual TLS and consumption-driven windows
    (and the lean bulk-data paths of :class:`FastQuicConnection`)."""

    def __init__(self, *, settings: QuicSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream_window = settings.stream_window
        self._conn_window = settings.connection_window
        #: Bytes the application consumed, per stream and in total (drives MAX_(STREAM_)DATA).
        self.consumed: dict[int, int] = {}
        self.consumed_total = 0
        # Inbound streams open at once (announced in the transport parameters; raised by one
        # for each stream that ends), and no unidirectional streams (libp2p has none).
        self._local_max_streams_bidi.value = self._local_max_streams_bidi.sent = (
            settings.max_streams
        )
        self._local_max_streams_uni.value = self._local_max_streams_uni.sent = 0
        self._loss._pacer = _Pacer(max_datagram_size=self._max_datagram_size)
        self._early_data = settings.early_data
        self._local_active_connection_id_limit = _ACTIVE_CID_LIMIT

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        if self._is_client:
            # aioquic's client makes a key share for every group it knows (P-256, P-384,
            # X25519, X448): four key generations per dial.  X25519 and P-256 cover the
            # libp2p implementations (go, rust, js offer X25519 first).
            self.tls._supported_groups = [tls.Group.X25519, tls.Group.SECP256R1]
        else:
            # libp2p TLS: servers MUST require client authentication.  aioquic only offers this
            # through the context's flag (no public option in 1.x).
            self.tls._request_client_certificate = True
            if not self._early_data:
                # Tickets we issue then allow no early data, so no client sends any (and a
                # client that sends some anyway is refused: stream data before the handshake).
                self.tls._max_early_data = None

    def _write_connection_limits(self, builder: QuicPacketBuilder, space: Any) -> None:
        # MAX_DATA: what was consumed plus one window, in steps of at least half a window.
        max_data = self._local_max_data
        target = self.consumed_total + self._conn_window
        if target - max_data.value >= self._conn_window // 2:
            max_data.value = target
        # The parent doubles MAX_DATA once more than half of it was received: hide the
        # received count from it for the call (the window follows consumption only).
        used = max_data.used
        max_data.used = 0
        try:
            super()._write_connection_limits(builder, space)
        finally:
            max_data.used = used

    def _limits_due(self, space: Any) -> bool:
        # When the overrides above would write MAX_DATA / MAX_STREAM_DATA (or the parent's
        # rule MAX_STREAMS): the lean send path then lets aioquic build the packet with them.
        max_data = self._local_max_data
        window = self._conn_window
        if (
            self.consumed_total + window - max_data.value >= window // 2
            or max_data.value != max_data.sent
            or self._stream_limits_due()
        ):
            return True
        consumed = self.consumed
        window = self._stream_window
        for sid, stream in self._streams.items():
            local = stream.max_stream_data_local
            if local and (
                consumed.get(sid, 0) + window - local >= window // 2
                or stream.max_stream_data_local_sent != local
            ):
                return True
        return False

    def _write_stream_limits(self, builder: QuicPacketBuilder, space: Any, stream: Any) -> None:
        if stream.max_stream_data_local:
            target = self.consumed.get(stream.stream_id, 0) + self._stream_window
            if target - stream.max_stream_data_local >= self._stream_window // 2:
                stream.max_stream_data_local = target
            if stream.max_stream_data_local_sent != stream.max_stream_data_local:
                # Let the parent write the frame; its doubling rule must not fire: hide the
                # received offset from it for the call.
                receiver = stream.receiver
                highest = receiver.highest_offset
                receiver.highest_offset = 0
                try:
                    super()._write_stream_limits(builder, space, stream)
                finally:
                    receiver.highest_offset = highest


class QuicConn(Connection):
    """A libp2p connection over one QUIC connection (client or server side)."""

    _DIRECT_WRITES = False  # stream writes are packetized once per loop iteration

    def __init__(
        self,
        *,
        endpoint: QuicEndpoint,
        direction: Direction,
        configuration: QuicConfiguration,
        settings: QuicSettings,
        remote: tuple[Any, ...],
        expected_peer: PeerId | None,
        on_ready: Callable[[Connection], None],
        on_stream: Callable[[Connection, Stream], None],
        on_closed: Callable[[Connection], None],
        close_timeout: float = 2.0,
        original_destination_connection_id: bytes | None = None,
        tickets: TicketStore | None = None,
        early_protocols: Collection[str] = (),
        verified_certificates: VerifiedCertificates | None = None,
    ) -> None:
        super().__init__(
            direction=direction,
            upgrader=None,  # type: ignore[arg-type]  # QUIC has no upgrade
            make_muxer=_no_muxer,
            on_ready=on_ready,
            on_stream=on_stream,
            on_closed=on_closed,
            handshake_timeout=settings.handshake_timeout,
            close_timeout=close_timeout,
            recv_buffer=memoryview(bytearray(0)),
        )
        self._endpoint = endpoint
        self._settings = settings
        self._remote = remote
        self._expected_peer = expected_peer
        #: Session resumption: tickets are kept per verified peer (see :class:`TicketStore`).
        self._tickets = tickets
        #: Peer certificates verified before (shared by the transport's connections).
        self._verified_certificates = verified_certificates
        self._resumed_identity: tuple[PeerId, PublicKey] | None = None
        self._issued: list[Any] = []  # tickets we issued before the peer was verified
        #: 0-RTT: protocols whose streams may be opened (client) or served (server) before the
        #: handshake completes; until then the connection is open but not ``confirmed``.
        self._early_protocols = early_protocols
        self._confirmed = False
        self._confirm_waiter: asyncio.Future[None] | None = None
        self._try_early = False  # client: the ticket allows early data
        kwargs: dict[str, Any] = {}
        if tickets is not None:
            if direction is Direction.OUTBOUND:
                kwargs["session_ticket_handler"] = self._ticket_received
                if expected_peer is not None:
                    entry = tickets.take_client(expected_peer)
                    if entry is not None:
                        ticket = entry[0]
                        if ticket.max_early_data_size is not None and not settings.early_data:
                            ticket = dataclasses.replace(ticket, max_early_data_size=None)
                        self._try_early = ticket.max_early_data_size is not None
                        configuration.session_ticket = ticket
                        self._resumed_identity = (expected_peer, entry[1])
            else:
                kwargs["session_ticket_handler"] = self._ticket_issued
                kwargs["session_ticket_fetcher"] = self._ticket_lookup
        self.quic = _Machine(
            settings=settings,
            configuration=configuration,
            original_destination_connection_id=original_destination_connection_id,
            **kwargs,
        )
        self.security = SECURITY_ID
        self.muxer = MUXER_ID
        self.local_addr = endpoint.local_multiaddr
        self.remote_addr = endpoint.multiaddr_of(remote)
        self._handshake_deadline = _now() + settings.handshake_timeout
        self._keepalive_at: float | None = None
        self._last_activity = _now()
        #: Streams whose writer waits for send buffer room (or for the peer's MAX_STREAMS).
        self._blocked: set[int] = set()
        #: Streams with bytes queued in the machine (their sum is ``_queued``).
        self._sending: set[int] = set()
        self._queued = 0
        self._send_buffer = settings.send_buffer
        self._conn_send_buffer = max(settings.connection_window, settings.send_buffer)
        self._ping_uid = 0
        self._deferred_resets: set[int] = set()
        #: Connection ids the endpoint routes to this connection.
        self.cids: set[bytes] = set()

    # --------------------------------------------------------------------------- datagram path

    def start_client(self) -> None:
        """Begin the handshake (client side).

        Resuming with a ticket that allows early data, the connection is open at once (the
        ticket names the verified peer): streams of early-data protocols go out in 0-RTT.
        """
        quic = self.quic
        quic.connect(self._remote, now=_now())
        if self._try_early and quic._cryptos[tls.Epoch.ZERO_RTT].send.is_valid():
            self._open_early()
        self._flush()

    # -------------------------------------------------------------------------------- 0-RTT

    @property
    def confirmed(self) -> bool:
        """True once the handshake completed (False while open on 0-RTT only)."""
        return self._confirmed

    async def wait_confirmed(self) -> None:
        """Wait for the handshake to complete (raises the connection's error if it fails)."""
        if self._confirmed:
            return
        if self.error is not None:
            raise self.error
        if self._confirm_waiter is None:
            self._confirm_waiter = self._loop.create_future()
        await asyncio.shield(self._confirm_waiter)

    def early_data_allowed(self, protocols: Sequence[str]) -> bool:
        """Whether a stream proposing ``protocols`` may be used before the handshake completes."""
        early = self._early_protocols
        return bool(protocols) and all(p in early for p in protocols)

    async def new_stream(self, protocols: Sequence[str], *, timeout: float = 10.0) -> Stream:
        """As :meth:`Connection.new_stream`; before the handshake completes (0-RTT), a stream
        for protocols not marked idempotent first waits for it."""
        if not self._confirmed and not self.early_data_allowed(protocols):
            await asyncio.wait_for(self.wait_confirmed(), timeout)
        return await super().new_stream(protocols, timeout=timeout)

    def _open_early(self) -> None:
        """Open before the handshake completes, as the peer the session ticket was issued to."""
        assert self._resumed_identity is not None
        self.remote_peer, self.remote_public_key = self._resumed_identity
        self.state = ConnectionState.OPEN
        if not self.ready.done():
            self.ready.set_result(self)
        self._on_ready(self)

    def _confirm(self) -> None:
        self._confirmed = True
        self._keepalive_at = _now() + self._settings.keep_alive
        waiter = self._confirm_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resend_rejected_early(self) -> None:
        """The server refused our 0-RTT data: send it again in 1-RTT packets now.

        RFC 9001 section 4.6.2 / RFC 9002 section 6.4: rejected 0-RTT packets are lost; aioquic
        would only find out by loss detection, which application data does not arm before the
        handshake is confirmed.
        """
        quic = self.quic
        space = quic._spaces[tls.Epoch.ONE_RTT]
        lost = [
            packet
            for packet in space.sent_packets.values()
            if packet.packet_type == QuicPacketType.ZERO_RTT
        ]
        if lost:
            quic._loss._on_packets_lost(
                congestion_event=False, now=_now(), packets=lost, space=space
            )

    def datagram_received(self, data: bytes, addr: tuple[Any, ...], now: float) -> None:
        """A datagram for this connection (called by the endpoint; sending is scheduled)."""
        if self.state is ConnectionState.CLOSED or self.state is ConnectionState.CLOSING:
            return
        try:
            self.quic.receive_datagram(data, addr, now)
            self._last_activity = now
            self._process_events()
        except Libp2pError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # a bug of ours or aioquic's: still close only this connection
            log.exception("internal error on %r", self)
            self._fail(exc)
            return
        if self.quic._state in _END_STATES or self.quic._close_pending:
            self._machine_closed()
            return
        if self._deferred_resets:
            self._apply_deferred_resets()
        if self._blocked:
            self._wake_writers()
        self._schedule_flush()

    def _apply_deferred_resets(self) -> None:
        streams = self.quic._streams
        for sid in list(self._deferred_resets):
            qstream = streams.get(sid)
            if qstream is None or not qstream.is_blocked:
                self._deferred_resets.discard(sid)
                if qstream is not None:
                    with contextlib.suppress(ValueError, AssertionError):
                        self.quic.reset_stream(sid, _RESET_CODE)
                        self.quic.stop_stream(sid, _RESET_CODE)

    def _machine_closed(self) -> None:
        """aioquic closed the connection itself (a peer's protocol violation, idle timeout)."""
        with contextlib.suppress(Exception):
            datagrams = self.quic.datagrams_to_send(_now())  # the CONNECTION_CLOSE, if due
            if datagrams:
                self._endpoint.send_datagrams(datagrams)
        event = self.quic._close_event
        if event is None:  # pragma: no cover - aioquic always records why it closes
            event = qe.ConnectionTerminated(error_code=0x1, frame_type=None, reason_phrase="")
        self._terminated(event)

    def _process_events(self) -> None:
        quic = self.quic
        streams = self._streams
        while True:
            event = quic.next_event()
            if event is None:
                return
            etype = type(event)
            if etype is qe.StreamDataReceived:
                assert isinstance(event, qe.StreamDataReceived)
                sid = event.stream_id
                stream = streams.get(sid)
                if stream is None:
                    stream = self._inbound_stream(sid)
                    if stream is None:
                        continue
                if event.data:
                    stream._feed(event.data)
                if event.end_stream:
                    stream._feed_eof()
                    self._forget_if_done(stream)
            elif etype is qe.StreamReset or etype is qe.StopSendingReceived:
                assert isinstance(event, (qe.StreamReset, qe.StopSendingReceived))
                self._remote_reset(event.stream_id)
            elif etype is qe.ConnectionIdIssued:
                assert isinstance(event, qe.ConnectionIdIssued)
                self._endpoint.add_cid(self, event.connection_id)
            elif etype is qe.ConnectionIdRetired:
                assert isinstance(event, qe.ConnectionIdRetired)
                self._endpoint.remove_cid(self, event.connection_id)
            elif etype is qe.HandshakeCompleted:
                assert isinstance(event, qe.HandshakeCompleted)
                self._handshake_completed(event)
            elif etype is qe.ConnectionTerminated:
                assert isinstance(event, qe.ConnectionTerminated)
                self._terminated(event)
                return

    def _inbound_stream(self, sid: int) -> Stream | None:
        if self.state is not ConnectionState.OPEN:
            if self.state is not ConnectionState.UPGRADING:
                return None  # closing: events still queued in the machine are dropped
            if (
                self.direction is Direction.INBOUND
                and self.quic.tls.early_data_accepted
                and self._resumed_identity is not None
            ):
                # 0-RTT data under a ticket we issued (single use: a replayed first flight
                # finds no ticket and gets no early-data keys).  Handlers of protocols not
                # marked idempotent wait for the handshake (Host._inbound_stream).
                self._open_early()
                if not self.is_open:
                    return None  # refused by the swarm (connection limits)
            else:
                # Stream data before the handshake without accepted early data: a bug of the
                # peer's (or of ours): never serve it.
                raise HandshakeError("stream data before the handshake completed")
        if (sid & 1) == (0 if self.direction is Direction.OUTBOUND else 1) or sid & 2:
            return None  # our own stream, already forgotten; or unidirectional (refused)
        if sid in self.quic.consumed or not self._is_live_remote_stream(sid):
            return None
        stream = Stream(self, sid, Direction.INBOUND)
        self._streams[sid] = stream
        self.quic.consumed[sid] = 0
        self._on_stream(self, stream)
        return stream

    def _is_live_remote_stream(self, sid: int) -> bool:
        return sid in self.quic._streams

    def _remote_reset(self, sid: int) -> None:
        stream = self._forget(sid)
        self._blocked.discard(sid)
        quic = self.quic
        # A libp2p reset aborts both directions: answer RESET_STREAM with a reset of our half
        # and STOP_SENDING with a stop of theirs.
        with contextlib.suppress(ValueError, AssertionError):
            quic.reset_stream(sid, _RESET_CODE)
        with contextlib.suppress(ValueError, AssertionError):
            qstream = quic._streams.get(sid)
            if qstream is not None and not qstream.receiver.is_finished:
                quic.stop_stream(sid, _RESET_CODE)
        if stream is not None:
            stream._fail(StreamResetError("stream reset by the remote"))

    def _handshake_completed(self, event: qe.HandshakeCompleted) -> None:
        if event.alpn_protocol != ALPN:
            raise HandshakeError(f"ALPN {event.alpn_protocol!r} negotiated, expected {ALPN!r}")
        if event.session_resumed:
            # No certificates in a resumed handshake: the peer proved it holds the secret of a
            # session whose certificate we verified, and the ticket is bound to that identity.
            if self._resumed_identity is None:
                raise CertificateError("resumed session without a known identity")
            peer, public_key = self._resumed_identity
        else:
            context = self.quic.tls
            cert = context._peer_certificate
            if cert is None:
                raise CertificateError("the peer presented no certificate")
            if context._peer_certificate_chain:
                raise CertificateError("the peer sent a certificate chain (exactly one)")
            verified = self._verified_certificates
            if verified is not None:
                public_key = verified.verify(cert, now=time.time())
            else:
                public_key = verify_certificate(cert, now=time.time())
            peer = PeerId.from_public_key(public_key)
        if self._expected_peer is not None and peer != self._expected_peer:
            raise PeerIdMismatch(f"dialed {self._expected_peer}, the peer proved {peer}")
        opened_early = self.state is ConnectionState.OPEN
        if opened_early and peer != self.remote_peer:  # pragma: no cover - same ticket identity
            raise PeerIdMismatch(f"opened early as {self.remote_peer}, the peer proved {peer}")
        self.remote_peer = peer
        self.remote_public_key = public_key
        self._resumed_identity = (peer, public_key)
        if self._tickets is not None:
            for ticket in self._issued:
                if self.direction is Direction.OUTBOUND:
                    self._tickets.put_client(peer, ticket, public_key)
                else:
                    self._tickets.put_server(ticket, peer, public_key)
        self._issued.clear()
        if opened_early:
            if self.direction is Direction.OUTBOUND and not event.early_data_accepted:
                self._resend_rejected_early()
            self._confirm()
            return
        self.state = ConnectionState.OPEN
        self._confirm()
        if not self.ready.done():
            self.ready.set_result(self)
        self._on_ready(self)

    def _ticket_received(self, ticket: Any) -> None:
        """A session ticket from the server (client side): keep it for the next dial."""
        identity = self._resumed_identity
        if self._tickets is None:
            return
        if self.state is ConnectionState.OPEN and identity is not None:
            self._tickets.put_client(identity[0], ticket, identity[1])
        elif len(self._issued) < 4:
            self._issued.append(ticket)  # kept until the server is verified

    def _ticket_issued(self, ticket: Any) -> None:
        """A ticket we issued (server side): stored once the client's identity is verified."""
        if len(self._issued) < 4:
            self._issued.append(ticket)

    def _ticket_lookup(self, label: bytes) -> Any:
        """The ticket a client presents (server side); single use (RFC 8446 section 8.1)."""
        if self._tickets is None:
            return None
        entry = self._tickets.take_server(label)
        if entry is None:
            return None
        ticket, peer, public_key = entry
        self._resumed_identity = (peer, public_key)
        # A resumed handshake has no certificates: aioquic would still wait for the client's
        # Certificate after asking for none.  (Should the ticket be refused after all, the full
        # handshake then lacks the client's certificate and _handshake_completed refuses it.)
        self.quic.tls._request_client_certificate = False
        return ticket

    def _terminated(self, event: qe.ConnectionTerminated) -> None:
        code = event.error_code
        reason = event.reason_phrase
        exc: Libp2pError
        if not self._confirmed and _CRYPTO_ERROR <= code < _CRYPTO_ERROR + 256:
            if code == _NO_APPLICATION_PROTOCOL:
                exc = HandshakeError(f"no common ALPN protocol ({reason})", code=code)
            elif code == _BAD_CERTIFICATE:
                exc = CertificateError(f"certificate refused: {reason}", code=code)
            else:
                exc = HandshakeError(
                    f"TLS handshake failed: alert {code - 256} ({reason})", code=code
                )
        elif not self._confirmed:
            exc = ConnectionClosedError(f"connection closed during the handshake: {reason}")
        elif code == _NO_ERROR:
            exc = ConnectionClosedError(f"connection closed: {reason or 'no error'}")
        else:
            exc = ConnectionClosedError(f"connection closed: code {code:#x} {reason}")
        self._finish(exc)

    # ---------------------------------------------------------------------------- flushing

    def _schedule_flush(self) -> None:
        # Once the handshake is confirmed: two loop iterations, not one, so that the tasks a
        # received datagram (or a write) woke run first, and so do the tasks they start (a
        # stream's handler after multistream negotiation): their replies leave in the same
        # packets as the ACKs, and a new connection needs fewer datagrams (each built, sent,
        # received and decrypted in Python) on both sides.  Before that (a client's Finished)
        # at the end of this iteration: the peer waits for it.
        if self._flush_handle is None:
            if self.quic._handshake_confirmed:
                self._flush_handle = self._loop.call_soon(self._flush_next_iteration)
            else:
                self._flush_handle = self._loop.call_soon(self._scheduled_flush)

    def _flush_next_iteration(self) -> None:
        self._flush_handle = self._loop.call_soon(self._scheduled_flush)

    def _flush(self, *, hold: bool = False) -> None:
        self._unflushed = 0
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.state is ConnectionState.CLOSED:
            return
        try:
            datagrams = self.quic.datagrams_to_send(_now())
            if datagrams:
                self._endpoint.send_datagrams(datagrams)
            self._arm_timer()
        except Exception as exc:  # a bug of ours or aioquic's: close only this connection
            log.exception("internal error flushing %r", self)
            self._fail(exc)

    def _arm_timer(self) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        deadline = self.quic.get_timer()
        if not self._confirmed:
            hs = self._handshake_deadline
            deadline = hs if deadline is None or hs < deadline else deadline
        elif self._keepalive_at is not None and (deadline is None or self._keepalive_at < deadline):
            deadline = self._keepalive_at
        if deadline is None:
            return
        armed = self._timer_deadline
        if self._timer is not None and armed is not None and armed <= deadline:
            return  # fires early at worst, then re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer_deadline = deadline
        self._timer = self._loop.call_later(_timer_delay(self._loop, deadline), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        if self.state is ConnectionState.CLOSED:
            return
        now = _now()
        if not self._timer_due(now):
            self._arm_timer()  # the deadline moved later since the timer was armed
            return
        if not self._confirmed and now >= self._handshake_deadline:
            self._fail(
                HandshakeTimeout(
                    f"QUIC handshake not done after {self._settings.handshake_timeout} s"
                )
            )
            return
        try:
            quic = self.quic
            timer = quic.get_timer()
            if timer is not None and now >= timer:
                quic.handle_timer(now)
            if self._keepalive_at is not None and now >= self._keepalive_at:
                self._keep_alive(now)
            self._process_events()
        except Libp2pError as exc:
            self._fail(exc)
            return
        if self._is_closed():
            return
        if self.quic._state in _END_STATES or self.quic._close_pending:
            self._machine_closed()
            return
        if self._blocked:
            self._wake_writers()
        self._flush()

    def _timer_due(self, now: float) -> bool:
        """Whether anything the timer serves is due at ``now``."""
        timer = self.quic.get_timer()
        if timer is not None and now >= timer:
            return True
        if not self._confirmed:
            return now >= self._handshake_deadline
        return self._keepalive_at is not None and now >= self._keepalive_at

    def _is_closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    def _keep_alive(self, now: float) -> None:
        period = self._settings.keep_alive
        if now - self._last_activity >= period:
            # Nothing heard for a period: a PING keeps NAT bindings and the peer's idle timer
            # alive, and its loss eventually ends in the idle timeout.
            self._ping_uid += 1
            self.quic.send_ping(self._ping_uid)
            self._keepalive_at = now + period
        else:
            self._keepalive_at = self._last_activity + period

    # ----------------------------------------------------------------- stream-side interface

    def open_stream(self) -> Stream:
        """Open a raw outbound stream (no protocol negotiated yet)."""
        if not self.is_open:
            raise ConnectionClosedError("connection is not open")
        quic = self.quic
        sid = quic.get_next_available_stream_id()
        try:
            quic.send_stream_data(sid, b"")  # creates the stream now (the next id moves on)
        except ValueError as exc:  # pragma: no cover - a fresh id is always sendable
            raise ConnectionClosedError(str(exc)) from exc
        stream = Stream(self, sid, Direction.OUTBOUND)
        self._streams[sid] = stream
        quic.consumed[sid] = 0
        return stream

    def _can_send(self, stream: Stream) -> bool:
        stream._check_writable()
        if self.state is not ConnectionState.OPEN:
            raise ConnectionClosedError("connection is closed")
        if self._capacity(stream.stream_id) > 0:
            return True
        self._blocked.add(stream.stream_id)
        return False

    def _capacity(self, sid: int) -> int:
        qstream = self.quic._streams.get(sid)
        if qstream is None or qstream.is_blocked:
            return 0
        sender = qstream.sender
        queued = sender._buffer_stop - sender._buffer_start
        return min(self._send_buffer - queued, self._conn_send_buffer - self._queued)

    def _send(self, stream: Stream, data: bytes | memoryview) -> int:
        if self.state is not ConnectionState.OPEN:
            raise ConnectionClosedError("connection is closed")
        sid = stream.stream_id
        qstream = self.quic._streams.get(sid)
        if qstream is None or qstream.sender._reset_error_code is not None:
            raise StreamResetError("stream reset")
        room = self._capacity(sid)
        if room <= 0:
            self._blocked.add(sid)
            return 0
        n = len(data)
        if n > room:
            data = data[:room]
            n = room
            self._blocked.add(sid)
        try:
            qstream.sender.write(data)  # type: ignore[arg-type]  # any buffer (bytearray +=)
        except RuntimeError as exc:  # after FIN or reset
            raise StreamResetError(f"stream closed: {exc}") from exc
        self._queued += n
        self._sending.add(sid)
        self._unflushed += n
        if self._unflushed >= _FLUSH_AT:  # bulk writes: packetize as they are queued
            self._flush()
        return n

    def _wake_writers(self) -> None:
        """After acknowledgements: recount queued bytes, wake writers that have room again."""
        streams = self.quic._streams
        queued = 0
        for sid in list(self._sending):
            qstream = streams.get(sid)
            if qstream is None:
                self._sending.discard(sid)
                continue
            sender = qstream.sender
            n = sender._buffer_stop - sender._buffer_start
            if n:
                queued += n
            else:
                self._sending.discard(sid)
        self._queued = queued
        for sid in list(self._blocked):
            stream = self._streams.get(sid)
            if stream is None:
                self._blocked.discard(sid)
            elif self._capacity(sid) > 0:
                self._blocked.discard(sid)
                stream._window_available()

    def _consume(self, stream: Stream, nbytes: int) -> None:
        if not nbytes or self.state is not ConnectionState.OPEN:
            return
        quic = self.quic
        sid = stream.stream_id
        consumed = quic.consumed
        if sid in consumed:
            consumed[sid] += nbytes
        quic.consumed_total += nbytes
        # A window update is due once half a window was consumed since the last one.
        qstream = quic._streams.get(sid)
        stream_window = self._settings.stream_window
        conn_window = self._settings.connection_window
        if (
            qstream is not None
            and consumed.get(sid, 0) + stream_window - qstream.max_stream_data_local
            >= stream_window // 2
        ) or (quic.consumed_total + conn_window - quic._local_max_data.value >= conn_window // 2):
            self._schedule_flush()

    def _close_stream(self, stream: Stream) -> None:
        if self.state is ConnectionState.OPEN:
            sid = stream.stream_id
            qstream = self.quic._streams.get(sid)
            if qstream is not None and qstream.sender._buffer_fin is None:
                with contextlib.suppress(RuntimeError, ValueError):
                    qstream.sender.write(b"", end_stream=True)
                self._schedule_flush()
        self._forget_if_done(stream)

    def _forget(self, stream_id: int) -> Stream | None:
        self.quic.consumed.pop(stream_id, None)
        return super()._forget(stream_id)

    def _reset_stream(self, stream: Stream) -> None:
        sid = stream.stream_id
        self._forget(sid)
        self._blocked.discard(sid)
        if self.state is not ConnectionState.OPEN:
            return
        quic = self.quic
        qstream = quic._streams.get(sid)
        if qstream is None:
            return
        if qstream.is_blocked:
            # Still beyond the peer's MAX_STREAMS: any frame for it now would be a violation.
            # Reset it once the peer lets it exist (before its queued data can go out).
            self._deferred_resets.add(sid)
            return
        with contextlib.suppress(ValueError, AssertionError):
            quic.reset_stream(sid, _RESET_CODE)
        if not qstream.receiver.is_finished:
            with contextlib.suppress(ValueError, AssertionError):
                quic.stop_stream(sid, _RESET_CODE)
        self._schedule_flush()

    # ----------------------------------------------------------------------------- closing

    def abort(self) -> None:
        """Close at once (a CONNECTION_CLOSE is still sent when the handshake got far enough)."""
        self._fail(ConnectionClosedError("connection aborted"), log_it=False)

    def _fail(self, exc: BaseException, *, log_it: bool = True) -> None:
        """Stop using the connection because of ``exc``; tell the peer with CONNECTION_CLOSE."""
        if self.state is ConnectionState.CLOSED:
            return
        if log_it:
            log.warning("closing %r: %s: %s", self, type(exc).__name__, exc)
        quic = self.quic
        if quic._state not in _END_STATES:
            if isinstance(exc, CertificateError | PeerIdMismatch):
                code, reason = _BAD_CERTIFICATE, str(exc)
            elif isinstance(exc, HandshakeError) and self.state is ConnectionState.UPGRADING:
                code, reason = _CRYPTO_ERROR + 40, str(exc)  # handshake_failure
            elif isinstance(exc, ConnectionClosedError):
                code, reason = _NO_ERROR, ""
            else:
                code, reason = 0x1, type(exc).__name__  # INTERNAL_ERROR
            try:
                quic.close(error_code=code, reason_phrase=reason[:200])
                datagrams = quic.datagrams_to_send(_now())
                if datagrams:
                    self._endpoint.send_datagrams(datagrams)
            except Exception:  # pragma: no cover - closing must not fail
                log.debug("error sending CONNECTION_CLOSE on %r", self, exc_info=True)
        self._finish(exc)

    def _finish(self, exc: BaseException) -> None:
        """Tear down: unregister from the endpoint, fail streams and futures."""
        if self.state is ConnectionState.CLOSED:
            return
        self._endpoint.connection_closed(self)
        self._blocked.clear()
        self._sending.clear()
        waiter = self._confirm_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: nobody may be waiting any more
        self._teardown(exc)  # no transport: ends CLOSED
        if not self.closed.done():
            self.closed.set_result(None)
        _release_machine(self.quic)

    def __repr__(self) -> str:
        peer = self.remote_peer if self.remote_peer is not None else "?"
        return (
            f"<QuicConn {self.direction.value} {self.remote_addr} peer={peer} {self.state.value}>"
        )


class TicketStore:
    """TLS session tickets for QUIC resumption, bounded, each bound to a verified peer.

    Client side: the last ticket each server gave us, by the server's peer id.  Server side: the
    tickets we issued, by ticket label, with the client identity verified on that connection;
    taken (removed) when presented, so a ticket resumes at most one connection.
    """

    def __init__(self, *, max_client: int = 1024, max_server: int = 4096) -> None:
        self._client: Lru[PeerId, tuple[Any, PublicKey]] = Lru(max_client)
        self._server: Lru[bytes, tuple[Any, PeerId, PublicKey]] = Lru(max_server)

    def put_client(self, peer: PeerId, ticket: Any, public_key: PublicKey) -> None:
        self._client.put(peer, (ticket, public_key))

    def take_client(self, peer: PeerId) -> tuple[Any, PublicKey] | None:
        entry = self._client.pop(peer)
        if entry is None or not entry[0].is_valid:
            return None
        return entry

    def put_server(self, ticket: Any, peer: PeerId, public_key: PublicKey) -> None:
        self._server.put(ticket.ticket, (ticket, peer, public_key))

    def take_server(self, label: bytes) -> tuple[Any, PeerId, PublicKey] | None:
        return self._server.pop(label)

    def __len__(self) -> int:
        return len(self._client) + len(self._server)


def _release_machine(quic: _Machine) -> None:
    """Let a finished connection's machine free its state by reference counting.

    aioquic's ``QuicConnection`` is full of reference cycles (its frame-handler table, TLS and
    key callbacks, and sent packets' delivery handlers are bound methods of itself), so all of
    its state (streams, packet spaces, keys, the TLS context: hundreds of objects) would wait
    for the cyclic garbage collector, surviving into older generations and making every
    collection slower.  Once the connection is closed nothing is sent or received any more:
    drop those containers, keeping the scalars (state, close event) that are still read.
    """
    with contextlib.suppress(AttributeError):
        for space in quic._loss.spaces:
            space.sent_packets.clear()
        quic._loss.spaces = []
        quic._spaces = {}
        quic._streams.clear()
        quic._streams_queue.clear()
        quic._crypto_streams = {}
        quic._QuicConnection__frame_handlers = {}  # type: ignore[attr-defined]
        quic._cryptos = {}
        quic._cryptos_initial = {}
        quic._session_ticket_fetcher = quic._session_ticket_handler = None
        context = quic.tls  # absent when no Initial was ever processed
        context.alpn_cb = context.get_session_ticket_cb = context.new_session_ticket_cb = None
        context.update_traffic_key_cb = _no_callback


def _no_callback(*args: Any) -> None:
    pass


def _timer_delay(loop: asyncio.AbstractEventLoop, deadline: float) -> float:
    """The ``call_later`` delay that fires at ``deadline`` (``time.monotonic``) or just after.

    uvloop rounds delays to whole milliseconds and counts them from the loop's cached time (up
    to about a millisecond behind): a plain ``deadline - now`` fires up to ~1.5 ms early, and
    re-arming for the rest then fires again at once, once per loop iteration until the deadline.
    Counting whole milliseconds, rounded up, from ``loop.time()`` never fires early.
    """
    return max(0.0, math.ceil((deadline - loop.time()) * 1000.0) / 1000.0)


def _no_muxer(protocol_id: str, is_initiator: bool) -> Any:  # pragma: no cover
    raise LocalProtocolError("a QUIC connection has no muxer")


def new_certificate_key() -> Any:
    """A fresh P-256 key for the TLS certificate (one per host)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def random_serial() -> int:
    """A random positive certificate serial below 2**159."""
    return int.from_bytes(os.urandom(19), "big") | 1
