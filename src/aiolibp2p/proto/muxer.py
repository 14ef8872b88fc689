"""The contract every stream-muxer machine (yamux, mplex) fulfils, and the events it returns.

A muxer machine is sans-IO: the connection driver feeds it decrypted bytes with
:meth:`MuxerMachine.receive_data`, pulls the bytes to encrypt and send with
:meth:`MuxerMachine.data_to_send`, and maps the returned events onto stream objects.  Time comes
in as ``now`` (seconds, monotonic, from the driver's loop clock); the machine never reads a clock.

Stream ids are plain ints, unique within one connection (a machine whose wire ids are not unique
on their own, like mplex, maps them).  Application data is not kept by the machine: it is handed
out in :class:`DataReceived` events, and the driver reports what the application has consumed
with :meth:`MuxerMachine.consume` so the machine can grant window (yamux) or enforce its buffer
bound (mplex, which has no flow control, resets a stream whose unconsumed data passes the bound).

Errors: a peer that breaks the muxer spec makes ``receive_data`` raise a
:class:`~aiolibp2p.core.errors.RemoteProtocolError` (after queueing any goodbye frame, e.g. a yamux
GoAway with the protocol-error code, in ``data_to_send``); the machine is then closed and the
driver closes the connection.  Misuse by the caller (writing to a stream it closed, opening
streams past the limit, ...) raises :class:`~aiolibp2p.core.errors.LocalProtocolError` or
:class:`StreamClosedError`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from aiolibp2p.core.errors import LocalProtocolError

__all__ = [
    "MuxerEvent",
    "StreamOpened",
    "DataReceived",
    "StreamEnded",
    "StreamReset",
    "SendWindowAvailable",
    "PingAcknowledged",
    "GoAwayReceived",
    "StreamClosedError",
    "MuxerMachine",
]


class StreamClosedError(LocalProtocolError):
    """The stream is closed (for writing, or entirely) or was reset; the operation is refused."""


@dataclass(frozen=True, slots=True)
class MuxerEvent:
    """Base class of every event a muxer machine returns."""


@dataclass(frozen=True, slots=True)
class StreamOpened(MuxerEvent):
    """The remote opened a stream (inbound)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class DataReceived(MuxerEvent):
    """Application bytes for a stream, in order."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded(MuxerEvent):
    """The remote closed its write side (yamux FIN, mplex Close): no more data will arrive."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset(MuxerEvent):
    """The stream was reset (by the remote, or by the machine itself, e.g. mplex buffer overrun)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class SendWindowAvailable(MuxerEvent):
    """Send capacity for the stream grew from zero: writers waiting on it may proceed."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PingAcknowledged(MuxerEvent):
    """The remote answered our ping ``opaque``; ``rtt`` is in seconds (from the ``now`` values)."""

    opaque: int
    rtt: float


@dataclass(frozen=True, slots=True)
class GoAwayReceived(MuxerEvent):
    """The remote will accept no new streams; ``code`` is the wire code (yamux: 0 normal,
    1 protocol error, 2 internal error)."""

    code: int


class MuxerMachine(abc.ABC):
    """A stream muxer for one connection.  See the module docstring for the contract."""

    __slots__ = ()  # subclasses use slots too: a listener holds thousands of machines

    #: The multistream protocol id, e.g. ``"/yamux/1.0.0"``.
    protocol_id: ClassVar[str]
    #: False for muxers without per-stream flow control (mplex): the driver then applies
    #: backpressure by pausing reads while a stream holds too much unread data.
    has_flow_control: ClassVar[bool] = True

    @abc.abstractmethod
    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[MuxerEvent]:
        """Process every complete frame in ``data`` (buffering a trailing partial frame)."""

    @abc.abstractmethod
    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the wire (``b""`` when there are none)."""

    @property
    def has_output(self) -> bool:
        """Whether :meth:`data_to_send` may return bytes (a muxer that cannot tell: True)."""
        return True

    @abc.abstractmethod
    def open_stream(self, now: float) -> int:
        """Open an outbound stream and return its id (the SYN may ride on the first data)."""

    @abc.abstractmethod
    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue as much of ``data`` as the stream may send now; return the number of bytes taken.

        Returns 0 when the send window is exhausted: wait for :class:`SendWindowAvailable`.
        """

    @abc.abstractmethod
    def send_capacity(self, stream_id: int) -> int:
        """How many bytes :meth:`send_data` would take right now."""

    @abc.abstractmethod
    def close_stream(self, stream_id: int, now: float) -> None:
        """Half-close: we will send no more data on the stream."""

    @abc.abstractmethod
    def reset_stream(self, stream_id: int, now: float) -> None:
        """Abort the stream in both directions."""

    @abc.abstractmethod
    def consume(self, stream_id: int, nbytes: int, now: float) -> None:
        """The application consumed ``nbytes`` of the stream's received data."""

    @abc.abstractmethod
    def go_away(self, code: int = 0) -> None:
        """Tell the remote we accept no new streams (and close when the driver says so)."""

    @abc.abstractmethod
    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next run (keep-alive pings, ...), or ``None``."""

    @abc.abstractmethod
    def handle_timer(self, now: float) -> list[MuxerEvent]:
        """Run timers that are due (the driver calls it at or after :meth:`next_deadline`)."""

    @property
    @abc.abstractmethod
    def is_closed(self) -> bool:
        """True once the machine has stopped (GoAway exchanged, or a protocol error)."""
