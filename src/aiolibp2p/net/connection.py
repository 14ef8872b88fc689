"""One libp2p connection: a TCP socket upgraded by the sans-IO machines, then a muxer pump.

This is the data path of ARCHITECTURE.md.  The kernel reads into the connection's receive buffer
(``asyncio.BufferedProtocol``); Noise opens every complete frame of it in one call; the muxer
machine takes the plaintext in one call and returns events, which become stream wake-ups.  The
other way, stream writes queue muxer frames; one flush per loop iteration (or at once for bulk
writes) seals them into Noise frames and hands them to the transport in one write; a small write
on an idle connection goes to the socket at once (see :meth:`Connection._write_soon`).
Backpressure: the muxer's send windows suspend writers on futures, and so does the transport's
``pause_writing`` (never a sleep).

Everything a remote can do wrong ends in :meth:`Connection._fail`: the error is logged once,
streams see :class:`~aiolibp2p.core.errors.ConnectionClosedError` or a reset, the socket is closed
(aborted if it won't drain), and the loop's default exception handler never hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from aiolibp2p.core.errors import (
    ConnectionClosedError,
    HandshakeTimeout,
    Libp2pError,
    StreamResetError,
)
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.log import connection_logger as log
from aiolibp2p.net.stream import Direction, Stream
from aiolibp2p.proto.muxer import (
    DataReceived,
    GoAwayReceived,
    MuxerEvent,
    MuxerMachine,
    SendWindowAvailable,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from aiolibp2p.proto.upgrade import UpgradeComplete, Upgrader

if TYPE_CHECKING:
    from aiolibp2p.core.crypto import PublicKey
    from aiolibp2p.core.peer import PeerId
    from aiolibp2p.proto.upgrade import SecureTransport

__all__ = ["Connection", "ConnectionState"]

_RECV_BUFFER = 256 * 1024
_WRITE_HIGH_WATER = 1 << 20
#: Stream writes are sealed once this many bytes are queued in the muxer (the bulk unit: one
#: muxer frame, two Noise frames), and the sealed output is held and handed to the transport in
#: one ``writelines`` (one ``writev``) once this much is held, or at the end of the loop iteration.
_SEAL_AT = 64 * 1024
_WRITE_COALESCE = 256 * 1024
#: Stream writes that may go to the socket at once (no flush pending, nothing held) between two
#: received batches or scheduled flushes; past it, writes coalesce until the end of the iteration.
_DIRECT_MAX = 8


class ConnectionState(enum.Enum):
    UPGRADING = "upgrading"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Connection(asyncio.BufferedProtocol):
    """A TCP connection from raw bytes to muxed streams.

    Created by the swarm's transport factory; the swarm passes callbacks for "ready" (upgrade
    done), "inbound stream" and "closed".
    """

    # Slots, not a __dict__: a listener holds thousands of idle connections.
    __slots__ = (
        "_abort_timer",
        "_close_timeout",
        "_direct",
        "_drain_waiters",
        "_flush_handle",
        "_go_away_received",
        "_handshake_timeout",
        "_handshake_timer",
        "_held",
        "_held_size",
        "_loop",
        "_make_muxer",
        "_muxer",
        "_on_closed",
        "_on_ready",
        "_on_stream",
        "_over",
        "_pause_threshold",
        "_pending_output",
        "_reading_paused",
        "_recv_view",
        "_seal",
        "_secure",
        "_stream_buffer_limit",
        "_streams",
        "_timer",
        "_timer_deadline",
        "_transport",
        "_unflushed",
        "_upgrader",
        "_write_paused",
        "closed",
        "data",
        "direction",
        "early_muxer",
        "error",
        "local_addr",
        "muxer",
        "negotiating_inbound",
        "ready",
        "remote_addr",
        "remote_peer",
        "remote_public_key",
        "security",
        "state",
    )

    def __init__(
        self,
        *,
        direction: Direction,
        upgrader: Upgrader,
        make_muxer: Callable[[str, bool], MuxerMachine],
        on_ready: Callable[[Connection], None],
        on_stream: Callable[[Connection, Stream], None],
        on_closed: Callable[[Connection], None],
        handshake_timeout: float,
        close_timeout: float = 2.0,
        stream_buffer_limit: int = 16 << 20,
        recv_buffer: memoryview | None = None,
    ) -> None:
        self.direction = direction
        self.state = ConnectionState.UPGRADING
        self._upgrader: Upgrader | None = upgrader
        self._make_muxer = make_muxer
        self._on_ready = on_ready
        self._on_stream = on_stream
        self._on_closed = on_closed
        self._handshake_timeout = handshake_timeout
        self._stream_buffer_limit = stream_buffer_limit
        self._close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        # The kernel reads into this buffer and ``buffer_updated`` consumes all of it before it
        # returns (Noise and the upgrader copy any partial frame), so every connection of a
        # host can share one: an idle connection then costs no receive buffer at all.
        self._recv_view = recv_buffer if recv_buffer is not None else new_recv_buffer()
        self._muxer: MuxerMachine | None = None
        self._secure: SecureTransport | None = None  # Noise or TLS record layer
        self._streams: dict[int, Stream] = {}
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._unflushed = 0  # bytes stream writes queued in the muxer since the last flush
        self._direct = 0  # writes sent at once since the last received batch / scheduled flush
        self._held: list[bytes] | None = None  # sealed output not yet given to the transport
        self._held_size = 0
        # Set once upgraded: the muxer's queued frames and the sealer for them (unjoined parts
        # and a gather sealer when both sides have them).
        self._pending_output: Callable[[], Any] | None = None
        self._seal: Callable[[Any], bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._go_away_received = False
        #: Streams holding more unread bytes than ``_pause_threshold``: while any exists the
        #: socket is not read (TCP backpressure for muxers without flow control, i.e. mplex).
        self._over: set[int] | None = None  # created for muxers without flow control
        self._pause_threshold: int | None = None
        self._reading_paused = False
        self.ready: asyncio.Future[Connection] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.error: BaseException | None = None
        self.remote_peer: PeerId = None  # type: ignore[assignment]  # set when the upgrade ends
        self.remote_public_key: PublicKey | None = None
        self.security: str | None = None
        self.muxer: str | None = None
        self.early_muxer = False
        self.local_addr: Multiaddr | None = None
        self.remote_addr: Multiaddr | None = None
        #: Inbound streams still negotiating their protocol (bounded by the host).
        self.negotiating_inbound = 0
        #: Free-form per-connection state for services (identify results, ...).
        self.data: dict[str, object] = {}

    # ------------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: duck-typed on purpose.
        self._transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        self.local_addr = _sockaddr_to_multiaddr(transport.get_extra_info("sockname"))
        self.remote_addr = _sockaddr_to_multiaddr(transport.get_extra_info("peername"))
        self._handshake_timer = self._loop.call_later(
            self._handshake_timeout, self._handshake_expired
        )
        self._write_upgrade_output()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._recv_view

    def buffer_updated(self, nbytes: int) -> None:
        data = self._recv_view[:nbytes]
        self._direct = 0
        try:
            if self.state is ConnectionState.OPEN:
                assert self._secure is not None and self._muxer is not None
                plaintext = self._secure.decrypt(data)
                if plaintext:
                    self._dispatch(self._muxer.receive_data(plaintext, _now()))
                self._flush()
            elif self.state is ConnectionState.UPGRADING:
                self._upgrade_step(data)
            # CLOSING / CLOSED: drop what arrives
        except Libp2pError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug of ours: still close only this connection
            log.exception("internal error on %s", self)
            self._fail(exc)

    def eof_received(self) -> bool:
        if self.state is ConnectionState.UPGRADING and self._upgrader is not None:
            try:
                self._upgrader.receive_eof()  # always raises: a truncated handshake
            except Libp2pError as exc:
                self._fail(exc)
                return False
        self._fail(ConnectionClosedError("remote closed the connection"), log_it=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self.state is not ConnectionState.CLOSED:
            reason: BaseException = (
                ConnectionClosedError(f"connection lost: {exc}")
                if exc
                else ConnectionClosedError("connection closed")
            )
            self._teardown(reason)
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------------------ public API

    @property
    def is_open(self) -> bool:
        return self.state is ConnectionState.OPEN and not self._go_away_received

    @property
    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    def open_stream(self) -> Stream:
        """Open a raw outbound stream (no protocol negotiated yet)."""
        if not self.is_open or self._muxer is None:
            raise ConnectionClosedError("connection is not open")
        try:
            stream_id = self._muxer.open_stream(_now())
        except StreamClosedError as exc:
            raise ConnectionClosedError(str(exc)) from exc
        stream = Stream(self, stream_id, Direction.OUTBOUND)
        self._streams[stream_id] = stream
        self._schedule_flush()
        return stream

    @property
    def confirmed(self) -> bool:
        """Whether the handshake completed.  Only a QUIC connection opened on 0-RTT data is
        open without being confirmed (:class:`~aiolibp2p.net.quic_connection.QuicConn`)."""
        return True

    async def wait_confirmed(self) -> None:
        """Wait until :attr:`confirmed` (at once here; see ``QuicConn``)."""

    async def new_stream(self, protocols: Sequence[str], *, timeout: float = 10.0) -> Stream:
        """Open a stream and negotiate one of ``protocols`` (in preference order).

        With a single protocol the proposal is lazy: the stream is returned at once and the
        application's first bytes travel right behind the proposal; a refusal surfaces as
        :class:`~aiolibp2p.core.errors.ProtocolNotSupported` on the next read or write.
        A stream the muxer makes wait for its turn (yamux, past 256 streams the remote has not
        acknowledged) is returned once it may send.
        """
        protocols = list(protocols)
        stream = self.open_stream()
        lazy = len(protocols) == 1
        if lazy and self._can_send(stream):  # the common case: nothing to wait for
            stream._start_outbound_negotiation(protocols, lazy)
            return stream
        try:
            await asyncio.wait_for(self._negotiate_outbound(stream, protocols, lazy), timeout)
        except BaseException:
            stream._reset_now()
            raise
        return stream

    async def _negotiate_outbound(self, stream: Stream, protocols: list[str], lazy: bool) -> None:
        # A stream the muxer queued may send nothing yet, not even its proposal: wait for its
        # turn (SendWindowAvailable), as go-yamux's OpenStream blocks on the ACK backlog.
        while not self._can_send(stream):
            await stream._wait_writable()
        stream._start_outbound_negotiation(protocols, lazy)
        if not lazy:
            await stream._wait_negotiated()

    def _can_send(self, stream: Stream) -> bool:
        stream._check_writable()
        muxer = self._muxer
        if muxer is None:
            raise ConnectionClosedError("connection is closed")
        return muxer.send_capacity(stream.stream_id) > 0

    async def close(self) -> None:
        """Close gracefully: GoAway, flush, close the socket; returns once it is closed."""
        if self.state is ConnectionState.OPEN and self._muxer is not None:
            with contextlib.suppress(Libp2pError):
                self._muxer.go_away(0)
            self._flush()
        self._fail(ConnectionClosedError("connection closed locally"), log_it=False)
        await asyncio.shield(self.closed)

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        self._teardown(ConnectionClosedError("connection aborted"))
        if self._transport is not None:
            self._transport.abort()

    def __repr__(self) -> str:
        peer = self.remote_peer if self.remote_peer is not None else "?"
        return (
            f"<Connection {self.direction.value} {self.remote_addr} peer={peer} {self.state.value}>"
        )

    # ------------------------------------------------------------------------------- upgrade

    def _write_upgrade_output(self) -> None:
        assert self._upgrader is not None
        out = self._upgrader.data_to_send()
        if out and self._transport is not None:
            self._transport.write(out)

    def _upgrade_step(self, data: memoryview) -> None:
        upgrader = self._upgrader
        assert upgrader is not None
        complete = upgrader.receive_data(data)
        self._write_upgrade_output()
        if complete is not None:
            self._upgraded(complete)

    def _upgraded(self, complete: UpgradeComplete) -> None:
        self._upgrader = None
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.remote_peer = complete.remote_peer
        self.remote_public_key = complete.remote_public_key
        self.security = complete.security
        self.muxer = complete.muxer
        self.early_muxer = complete.early_muxer
        self._secure = complete.transport
        self._muxer = self._make_muxer(complete.muxer, self.direction is Direction.OUTBOUND)
        parts = getattr(self._muxer, "data_to_send_parts", None)
        gather = getattr(self._secure, "encrypt_gather", None)
        if parts is not None and gather is not None:  # no joined copy of bulk payloads
            self._pending_output, self._seal = parts, gather
        else:
            self._pending_output, self._seal = self._muxer.data_to_send, self._secure.encrypt
        if not self._muxer.has_flow_control:
            self._pause_threshold = self._stream_buffer_limit
            self._over = set()
        self.state = ConnectionState.OPEN
        if not self.ready.done():
            self.ready.set_result(self)
        self._on_ready(self)
        if complete.leftover:
            self._dispatch(self._muxer.receive_data(complete.leftover, _now()))
        self._flush()

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.state is ConnectionState.UPGRADING:
            self._fail(HandshakeTimeout(f"upgrade not finished after {self._handshake_timeout} s"))

    # --------------------------------------------------------------------- muxer event dispatch

    def _dispatch(self, events: list[MuxerEvent]) -> None:
        streams = self._streams
        for event in events:
            if isinstance(event, DataReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._feed(event.data)
                    if self._pause_threshold is not None:
                        self._check_backpressure(stream)
            elif isinstance(event, SendWindowAvailable):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._window_available()
            elif isinstance(event, StreamOpened):
                stream = Stream(self, event.stream_id, Direction.INBOUND)
                streams[event.stream_id] = stream
                self._on_stream(self, stream)
            elif isinstance(event, StreamEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._feed_eof()
                    self._forget_if_done(stream)
            elif isinstance(event, StreamReset):
                stream = self._forget(event.stream_id)
                if self._over:
                    self._over.discard(event.stream_id)
                    self._update_reading()
                if stream is not None:
                    stream._fail(StreamResetError("stream reset by the remote"))
            elif isinstance(event, GoAwayReceived):
                self._go_away_received = True
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%r: go-away code %s", self, event.code)

    def _forget_if_done(self, stream: Stream) -> None:
        if stream._eof and (stream._closed_write or stream._error is not None):
            self._forget(stream.stream_id)

    def _forget(self, stream_id: int) -> Stream | None:
        streams = self._streams
        stream = streams.pop(stream_id, None)
        if not streams:
            streams.clear()  # frees the emptied table: an idle connection keeps no stream storage
        return stream

    # -------------------------------------------------------------- called by Stream (internal)

    def _send(self, stream: Stream, data: bytes | memoryview) -> int:
        muxer = self._muxer
        if muxer is None or self.state is not ConnectionState.OPEN:
            raise ConnectionClosedError("connection is closed")
        if self._transport is not None and self._transport.is_closing():
            # The socket failed and connection_lost is only scheduled: without this a writer
            # that never has to wait (mplex, or a large yamux window) spins on a dead transport.
            raise ConnectionClosedError("connection is closing")
        try:
            taken = muxer.send_data(stream.stream_id, data, _now())
        except StreamClosedError as exc:
            raise StreamResetError(f"stream closed: {exc}") from exc
        self._unflushed += taken
        if self._unflushed >= _SEAL_AT:
            self._flush(hold=True)
        return taken

    def _send_all(self, stream: Stream, data: bytes) -> None:
        """Queue ``data`` regardless of window (small negotiation messages only)."""
        view = memoryview(data)
        while view:
            taken = self._send(stream, view)
            if not taken:
                # A zero window with negotiation bytes pending: the initial window (>= 256 KiB)
                # makes this unreachable for the <= 1 KiB messages multistream sends.
                raise StreamResetError("no send window for protocol negotiation")
            view = view[taken:]
        self._schedule_flush()

    def _check_backpressure(self, stream: Stream) -> None:
        threshold = self._pause_threshold
        assert threshold is not None
        over = self._over
        assert over is not None
        sid = stream.stream_id
        if stream._buffered > threshold and stream._error is None:
            over.add(sid)
        elif sid in over and stream._buffered <= threshold // 2:
            over.discard(sid)
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._over and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not self._over and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _consume(self, stream: Stream, nbytes: int) -> None:
        over = self._over
        if over is not None and stream.stream_id in over:
            self._check_backpressure(stream)
        muxer = self._muxer
        if muxer is not None and self.state is ConnectionState.OPEN and nbytes:
            try:
                muxer.consume(stream.stream_id, nbytes, _now())
            except StreamClosedError:
                return
            # Only flow control makes a read owe the remote a frame (a yamux window update, due
            # every half window): no flush for the rest.
            if muxer.has_flow_control and muxer.has_output:
                self._schedule_flush()

    def _close_stream(self, stream: Stream) -> None:
        muxer = self._muxer
        if muxer is not None and self.state is ConnectionState.OPEN:
            with contextlib.suppress(StreamClosedError):
                muxer.close_stream(stream.stream_id, _now())
            self._schedule_flush()
        self._forget_if_done(stream)

    def _reset_stream(self, stream: Stream) -> None:
        self._forget(stream.stream_id)
        if self._over:
            self._over.discard(stream.stream_id)
            self._update_reading()
        muxer = self._muxer
        if muxer is not None and self.state is ConnectionState.OPEN:
            with contextlib.suppress(StreamClosedError):
                muxer.reset_stream(stream.stream_id, _now())
            self._schedule_flush()

    async def _drain(self) -> None:
        if not self._write_paused:
            return
        if self._transport is None:
            raise ConnectionClosedError("connection is closed")
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter
        if self.state is not ConnectionState.OPEN:
            raise ConnectionClosedError("connection closed while writing")

    # ----------------------------------------------------------------------------- flushing

    #: Whether :meth:`_write_soon` may send at once (subclasses with another send path: no).
    _DIRECT_WRITES: ClassVar[bool] = True

    def _write_soon(self) -> None:
        """After a stream write: send what it queued now if the connection is idle (no flush
        pending, nothing held, fewer than ``_DIRECT_MAX`` such writes since the last received
        batch), else at the end of the loop iteration with whatever else is queued by then."""
        if (
            self._flush_handle is None
            and self._held is None
            and self._direct < _DIRECT_MAX
            and self._DIRECT_WRITES
        ):
            self._direct += 1
            self._flush()
        else:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_handle = None
        self._direct = 0
        self._flush()

    def _flush(self, *, hold: bool = False) -> None:
        """Seal what the muxer queued and hand it to the transport.

        ``hold`` (bulk writes): keep the sealed bytes while less than ``_WRITE_COALESCE`` are
        held, to write them with one ``writelines``; a flush is scheduled for the rest.  Every
        flush without ``hold`` writes everything held, so frames always leave in nonce order.
        """
        if not hold and self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending_output = self._pending_output
        seal = self._seal
        if self._muxer is None or pending_output is None or seal is None:
            return
        self._unflushed = 0
        out = pending_output()
        transport = self._transport
        if out and transport is not None and not transport.is_closing():
            try:
                sealed = seal(out)
            except Libp2pError as exc:  # e.g. nonce exhaustion
                self._fail(exc)
                return
            held = self._held
            if held is not None:
                held.append(sealed)
                self._held_size += len(sealed)
            elif hold and len(sealed) < _WRITE_COALESCE:
                self._held = [sealed]
                self._held_size = len(sealed)
            else:
                transport.write(sealed)
        if hold:
            if self._held is not None and self._held_size >= _WRITE_COALESCE:
                self._write_held()
            self._schedule_flush()  # writes what is held and re-arms the timer
            return
        if self._held is not None:
            self._write_held()
        self._arm_timer()

    def _write_held(self) -> None:
        held = self._held
        self._held = None
        self._held_size = 0
        transport = self._transport
        if held and transport is not None and not transport.is_closing():
            transport.writelines(held)

    def _arm_timer(self) -> None:
        muxer = self._muxer
        deadline = muxer.next_deadline() if muxer is not None else None
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            self._timer = self._loop.call_later(max(0.0, deadline - _now()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        muxer = self._muxer
        if muxer is None or self.state is not ConnectionState.OPEN:
            return
        try:
            self._dispatch(muxer.handle_timer(_now()))
        except Libp2pError as exc:
            self._fail(exc)
            return
        self._flush()

    # ------------------------------------------------------------------------------- closing

    def _fail(self, exc: BaseException, *, log_it: bool = True) -> None:
        """Stop using the connection because of ``exc``; close the socket cleanly."""
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        if log_it:
            log.warning("closing %r: %s: %s", self, type(exc).__name__, exc)
        if self.state is ConnectionState.OPEN and self._muxer is not None:
            self._write_held()
            # The muxer may have queued a goodbye (e.g. yamux GoAway(protocol error)).
            try:
                out = self._muxer.data_to_send()
                if out and self._transport is not None and self._secure is not None:
                    self._transport.write(self._secure.encrypt(out))
            except Libp2pError:
                pass
        self._teardown(exc)
        transport = self._transport
        if transport is not None:
            transport.close()
            self._abort_timer = self._loop.call_later(self._close_timeout, self._abort_transport)

    def _abort_transport(self) -> None:
        self._abort_timer = None
        if self._transport is not None:
            self._transport.abort()

    def _teardown(self, exc: BaseException) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        was_ready = self.state in (ConnectionState.OPEN,)
        self.state = ConnectionState.CLOSED if self._transport is None else ConnectionState.CLOSING
        if self.error is None:
            self.error = exc
        for handle in (self._flush_handle, self._timer, self._handshake_timer):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._timer = self._handshake_timer = None
        self._timer_deadline = None
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._fail(StreamResetError(f"connection closed: {exc}"))
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: the dialer may have given up already
        self._muxer = None
        self._secure = None
        self._pending_output = self._seal = None
        self._upgrader = None
        self._held = None
        self._held_size = 0
        if was_ready:
            self._on_closed(self)
        if self._transport is None:
            self.state = ConnectionState.CLOSED


def new_recv_buffer() -> memoryview:
    """A receive buffer for :class:`Connection` (one per host, shared by its connections)."""
    return memoryview(bytearray(_RECV_BUFFER))


#: The clock the machines get as ``now``: monotonic with sub-microsecond resolution (uvloop's
#: ``loop.time()`` only has milliseconds, too coarse for RTTs and window auto-tuning on a LAN).
_now = time.monotonic


def _sockaddr_to_multiaddr(sockaddr: object) -> Multiaddr | None:
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        return None
    host, port = sockaddr[0], sockaddr[1]
    family = "ip6" if ":" in str(host) else "ip4"
    host = str(host).split("%", 1)[0]
    try:
        return Multiaddr(f"/{family}/{host}/tcp/{port}")
    except Exception:  # pragma: no cover - kernel-reported addresses always parse
        return None


def random_key() -> bytes:
    """32 random bytes for an X25519 private key (the machines draw no randomness themselves)."""
    return os.urandom(32)
