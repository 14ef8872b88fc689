"""A libp2p stream: ordered bytes both ways over one muxer stream, with half-close and reset.

Reads wait on a future (never poll); the bytes a reader takes are reported to the muxer, which
grants window (yamux) or checks its buffer bound (mplex).  Writes take what the send window allows
and wait on a future for more window, and on the connection's drain future while the socket's
write buffer is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from typing import TYPE_CHECKING

from aiolibp2p.core.errors import (
    ConnectionClosedError,
    Libp2pError,
    LocalProtocolError,
    StreamResetError,
)
from aiolibp2p.proto.multistream import Dialer, Listener, NegotiationComplete

if TYPE_CHECKING:
    from aiolibp2p.core.peer import PeerId
    from aiolibp2p.net.connection import Connection

__all__ = ["Direction", "Stream"]


class Direction(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Stream:
    """One stream of a :class:`~aiolibp2p.net.connection.Connection`.

    ``read``/``write``/``close``/``reset`` are the application API; the underscore methods are
    called by the connection when the muxer reports events.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_closed_write",
        "_conn",
        "_eof",
        "_error",
        "_negotiated",
        "_negotiator",
        "_read_waiter",
        "_write_waiter",
        "direction",
        "protocol",
        "stream_id",
    )

    def __init__(self, conn: Connection, stream_id: int, direction: Direction) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.direction = direction
        #: The negotiated application protocol (set at once for a lazy outbound proposal).
        self.protocol: str | None = None
        #: Received chunks; the first may be a view of the unread rest of a chunk read in part.
        self._buffer: deque[bytes | memoryview] = deque()
        self._buffered = 0
        self._eof = False
        self._closed_write = False
        self._error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._negotiator: Dialer | Listener | None = None
        self._negotiated: asyncio.Future[str] | None = None

    # ------------------------------------------------------------------------------ public API

    @property
    def connection(self) -> Connection:
        """The connection this stream rides on."""
        return self._conn

    @property
    def remote_peer(self) -> PeerId:
        """The peer at the other end."""
        return self._conn.remote_peer

    @property
    def is_reset(self) -> bool:
        return isinstance(self._error, StreamResetError)

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at EOF); ``n < 0`` reads until EOF.

        Returns ``b""`` at end of stream.  Raises :class:`StreamResetError` after a reset.
        """
        if n == 0:
            return b""
        if n < 0:
            chunks: list[bytes] = []
            while True:
                chunk = await self.read(1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        while not self._buffered:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            await self._wait_readable()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; :class:`asyncio.IncompleteReadError` if the stream ends first."""
        parts: list[bytes] = []
        need = n
        while need:
            chunk = await self.read(need)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            need -= len(chunk)
        return b"".join(parts)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``; waits while the send window or the socket buffer is full."""
        # bytes go to the muxer as they are (no view to make for the common whole write)
        view: bytes | memoryview = data if type(data) is bytes else memoryview(data).cast("B")
        total = len(view)
        offset = 0
        conn = self._conn
        while True:
            self._check_writable()
            if offset < total:
                if offset:
                    if type(view) is bytes:
                        view = memoryview(view)  # slices of the rest without copies
                    taken = conn._send(self, view[offset:])
                else:
                    taken = conn._send(self, view)
                offset += taken
            if offset >= total:
                break
            # The window is used up: send what it took now.  Else nothing might flush it (no
            # inbound traffic), the remote never sees the bytes nor grants more window.
            conn._flush()
            await self._wait_writable()
        # Bulk bytes were sealed by ``_send`` as they were queued; the rest goes out now on an
        # idle connection, else (with sealed bytes held for one bigger transport write) at the
        # end of this loop iteration.
        conn._write_soon()
        if conn._write_paused:
            await conn._drain()

    async def close(self) -> None:
        """Half-close: no more writes from us; reading goes on until the remote closes."""
        if self._closed_write or self._error is not None:
            return
        self._closed_write = True
        if isinstance(self._negotiator, Dialer):
            # A lazy proposal is still unanswered: send the FIN once the remote has confirmed
            # the protocol.  (A FIN that arrives before the remote's handler starts reading makes
            # some implementations' handlers hang: js-libp2p 3.3 does.)
            return
        self._conn._close_stream(self)

    async def reset(self) -> None:
        """Abort the stream both ways."""
        self._reset_now()

    def _reset_now(self) -> None:
        if self._error is not None:
            return
        self._fail(StreamResetError("stream reset locally"))
        self._conn._reset_stream(self)

    def __repr__(self) -> str:
        return (
            f"<Stream {self.stream_id} {self.direction.value} {self.protocol or '?'} "
            f"peer={self._conn.remote_peer}>"
        )

    # ------------------------------------------------------------------- negotiation (internal)

    def _start_outbound_negotiation(self, protocols: list[str], lazy: bool) -> None:
        dialer = Dialer(protocols, lazy=lazy)
        self._negotiator = dialer
        if lazy:
            self.protocol = protocols[0]
        else:
            self._negotiated = asyncio.get_running_loop().create_future()
        self._conn._send_all(self, dialer.data_to_send())

    def _start_inbound_negotiation(self, listener: Listener) -> None:
        self._negotiator = listener
        self._conn.negotiating_inbound += 1
        self._negotiated = asyncio.get_running_loop().create_future()
        out = listener.data_to_send()
        if out:
            self._conn._send_all(self, out)

    async def _wait_negotiated(self) -> str:
        assert self._negotiated is not None
        return await self._negotiated

    def _negotiate(self, data: bytes) -> bytes:
        """Feed negotiation bytes; returns the application bytes that followed them."""
        negotiator = self._negotiator
        assert negotiator is not None
        try:
            events = negotiator.receive_data(data)
        except Libp2pError as exc:
            self._end_negotiation()
            # Send what the machine answered before the failure, ahead of the reset: a listener's
            # "na" to a lazy proposal whose optimistic application bytes then broke the
            # negotiation.  The dialer then sees ProtocolNotSupported, not a bare reset.
            out = negotiator.data_to_send()
            if out:
                with contextlib.suppress(Libp2pError):
                    self._conn._send_all(self, out)
            self._fail(exc)
            self._conn._reset_stream(self)
            return b""
        out = negotiator.data_to_send()
        if out:
            self._conn._send_all(self, out)
        for event in events:
            if isinstance(event, NegotiationComplete):
                self._end_negotiation()
                self.protocol = event.protocol
                if self._negotiated is not None and not self._negotiated.done():
                    self._negotiated.set_result(event.protocol)
                if self._closed_write:  # close() came while the lazy proposal was pending
                    self._conn._close_stream(self)
                return event.leftover
        return b""

    # ----------------------------------------------------------- events from the muxer (internal)

    def _feed(self, data: bytes) -> None:
        if self._error is not None:
            return
        if self._negotiator is not None:
            leftover = self._negotiate(data)
            # Negotiation bytes never reach the reader: they count as consumed at once.
            self._conn._consume(self, len(data) - len(leftover))
            if leftover:
                self._append(leftover)
            return
        self._append(data)

    def _append(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed_eof(self) -> None:
        self._eof = True
        if self._negotiator is not None:
            self._end_negotiation()
            self._fail(ConnectionClosedError("stream closed during protocol negotiation"))
            # Reset, as for any failed negotiation: else our half stays open in the muxer
            # (and the remote waits for our close) for the life of the connection.
            self._conn._reset_stream(self)
        self._wake_all()

    def _end_negotiation(self) -> None:
        """Negotiation is over (agreed or failed): the stream stops counting as negotiating."""
        if isinstance(self._negotiator, Listener):
            self._conn.negotiating_inbound -= 1
        self._negotiator = None

    def _fail(self, exc: BaseException) -> None:
        if self._negotiator is not None:
            self._end_negotiation()
        if self._error is None:
            self._error = exc
        if self._negotiated is not None and not self._negotiated.done():
            self._negotiated.set_exception(exc)
            self._negotiated.exception()  # mark retrieved: the opener may have gone away
        self._wake_all()

    def _window_available(self) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_all(self) -> None:
        for waiter in (self._read_waiter, self._write_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    # ----------------------------------------------------------------------------- internals

    def _take(self, n: int) -> bytes:
        """Up to ``n`` buffered bytes (the first chunk if ``n < 0``); each byte is copied at
        most once: a chunk larger than ``n`` is handed out in slices of a view of it."""
        buffer = self._buffer
        first = buffer[0]
        size = len(first)
        if 0 <= n < size:
            view = first if type(first) is memoryview else memoryview(first)
            data = bytes(view[:n])
            buffer[0] = view[n:]
        else:
            buffer.popleft()
            if n < 0 or not buffer or size + len(buffer[0]) > n:
                data = first if type(first) is bytes else bytes(first)
            else:
                parts = [first]
                while buffer and size + len(buffer[0]) <= n:
                    chunk = buffer.popleft()
                    parts.append(chunk)
                    size += len(chunk)
                data = b"".join(parts)
        self._buffered -= len(data)
        self._conn._consume(self, len(data))
        return data

    async def _wait_readable(self) -> None:
        waiter = self._conn._loop.create_future()
        self._read_waiter = waiter
        try:
            await waiter
        finally:
            self._read_waiter = None

    async def _wait_writable(self) -> None:
        waiter = self._conn._loop.create_future()
        self._write_waiter = waiter
        try:
            await waiter
        finally:
            self._write_waiter = None

    def _check_writable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed_write:
            raise LocalProtocolError("stream is closed for writing")
