"""mplex (``/mplex/6.7.0``) as a sans-IO :class:`~aiolibp2p.proto.muxer.MuxerMachine`.

Wire format (libp2p/specs ``mplex/README.md``): every frame is
``uvarint(header) || uvarint(length) || data`` with ``header = (wire_id << 3) | flag``:

======  ===================  ========================================================
flag    name                 meaning
======  ===================  ========================================================
0       NewStream            open stream ``wire_id``; ``data`` is an optional name
1       MessageReceiver      data, written by the side that did *not* open the stream
2       MessageInitiator     data, written by the side that opened the stream
3 / 4   Close{Receiver,...}  the writer half-closes (sends no more data)
5 / 6   Reset{Receiver,...}  abort the stream in both directions
======  ===================  ========================================================

A wire id alone does not name a stream: both sides allocate ids independently, so a stream is
the pair ``(wire_id, who opened it)``, and the odd/even flag of every frame after NewStream says
which.  The :class:`~aiolibp2p.proto.muxer.MuxerMachine` API wants one int per stream, so this
machine maps the pair onto a single int::

    stream_id = wire_id * 2        for a stream *we* opened  (even)
    stream_id = wire_id * 2 + 1    for a stream the *remote* opened  (odd)

and ``wire_id = stream_id >> 1``.  The mapping needs no table and is stable for the life of the
connection.  We allocate wire ids as the spec says (session initiator odd, receiver even, each
counting up by two); go-, js- and rust-libp2p all count 0, 1, 2, ... on both sides instead, which
is legal because the opener flag disambiguates.  No implementation checks the parity, and neither
does this machine.

Receive rules (what go-mplex and js-libp2p do, checked against their sources):

* NewStream for a ``(wire_id, remote)`` pair that is open is a protocol error.  A NewStream past
  :attr:`MplexConfig.max_inbound_streams`, or after :meth:`MplexMachine.go_away`, is answered with a
  ResetReceiver and forgotten.  The stream name is not kept (:class:`StreamOpened` has no name), so
  it is bounded only by the message size bound.
* Data, Close and Reset for a stream we do not know (never opened, or already reset or fully
  closed and forgotten) are dropped silently: go-mplex and js-libp2p do the same (neither sends
  a Reset back, since a Reset for a forgotten stream is the normal race after our own reset).
  Data or a second Close after the remote's Close are dropped as well (go-mplex behaviour).
* Flag 7 does not exist: a protocol error.  A frame body above
  :attr:`MplexConfig.max_message_size` (1 MiB by default, the go-mplex and js-libp2p cap) raises
  :class:`~aiolibp2p.core.errors.MessageTooLarge` as soon as its length prefix is complete.
* mplex has no flow control.  The machine counts, per stream, the bytes handed out in
  :class:`DataReceived` events minus the bytes the driver reported with :meth:`consume`; when a
  frame would take that count past :attr:`MplexConfig.max_stream_buffer` the frame is dropped, the
  stream is reset (a Reset frame is queued and :class:`StreamReset` returned) and forgotten.

Send rules: :meth:`MplexMachine.send_data` takes everything (mplex has no windows) and splits it
into frames of at most :attr:`MplexConfig.max_frame_size` bytes; :meth:`~MplexMachine.send_capacity`
returns :data:`SEND_CAPACITY` for a writable stream; no :class:`SendWindowAvailable` is ever
returned.  There is no ping and no keep-alive (:meth:`~MplexMachine.next_deadline` is ``None``) and
no GoAway frame: :meth:`~MplexMachine.go_away` only stops new streams in both directions.

A stream is forgotten (its id may then be ignored, see above) once both directions are closed, or
when it is reset by either side.  A protocol error makes :meth:`~MplexMachine.receive_data` raise a
:class:`~aiolibp2p.core.errors.RemoteProtocolError`; the machine is then closed and refuses more
input; the driver closes the connection (mplex has no goodbye frame).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final

from aiolibp2p._accel import varint
from aiolibp2p.core.errors import (
    ConfigError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
)
from aiolibp2p.proto.muxer import (
    DataReceived,
    MuxerEvent,
    MuxerMachine,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)

__all__ = [
    "MAX_STREAM_ID",
    "PROTOCOL_ID",
    "SEND_CAPACITY",
    "Flag",
    "MplexConfig",
    "MplexMachine",
]

#: The multistream protocol id.
PROTOCOL_ID: Final = "/mplex/6.7.0"
#: Largest wire stream id (``header = id << 3 | flag`` must fit a 63-bit uvarint).
MAX_STREAM_ID: Final = 2**60 - 1
#: What :meth:`MplexMachine.send_capacity` reports for a writable stream (mplex has no window).
SEND_CAPACITY: Final = 2**62

#: go-mplex and js-libp2p refuse frame bodies above 1 MiB: never send more than that.
_PEER_MAX_MESSAGE_SIZE: Final = 1 << 20
#: Longest frame header: two uvarints (the decoder refuses more than 9 bytes each).
_MAX_HEADER: Final = 18
#: Upper bounds for the configurable limits (sanity: every buffer stays bounded).
_MAX_MESSAGE_SIZE_LIMIT: Final = 64 << 20
_MAX_STREAMS_LIMIT: Final = 1 << 20
_MAX_STREAM_BUFFER_LIMIT: Final = 1 << 30


class Flag(enum.IntEnum):
    """The low three bits of a frame header."""

    NEW_STREAM = 0
    MESSAGE_RECEIVER = 1
    MESSAGE_INITIATOR = 2
    CLOSE_RECEIVER = 3
    CLOSE_INITIATOR = 4
    RESET_RECEIVER = 5
    RESET_INITIATOR = 6


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True, slots=True)
class MplexConfig:
    """Bounds of one mplex connection; invalid values raise :class:`ConfigError`."""

    #: Largest frame body accepted; a larger one is a protocol error (go-mplex and js: 1 MiB).
    max_message_size: int = 1 << 20
    #: Largest data frame we send (``send_data`` splits larger writes); at most 1 MiB, the
    #: receive bound of go-mplex and js-libp2p.
    max_frame_size: int = 64 << 10
    #: Most streams the remote may have open at once; a NewStream past it is reset.
    max_inbound_streams: int = 1000
    #: Most streams we may have open at once; ``open_stream`` past it raises.
    max_outbound_streams: int = 1000
    #: Most received-but-unconsumed bytes per stream before the stream is reset (js: 4 MiB).
    max_stream_buffer: int = 4 << 20

    def __post_init__(self) -> None:
        _check_int("max_message_size", self.max_message_size, 1, _MAX_MESSAGE_SIZE_LIMIT)
        _check_int("max_frame_size", self.max_frame_size, 1, _PEER_MAX_MESSAGE_SIZE)
        _check_int("max_inbound_streams", self.max_inbound_streams, 1, _MAX_STREAMS_LIMIT)
        _check_int("max_outbound_streams", self.max_outbound_streams, 1, _MAX_STREAMS_LIMIT)
        _check_int("max_stream_buffer", self.max_stream_buffer, 1, _MAX_STREAM_BUFFER_LIMIT)


_DEFAULT_CONFIG: Final = MplexConfig()


def _header(wire_id: int, flag: int) -> bytes:
    return varint.encode_uvarint((wire_id << 3) | flag)


class _Stream:
    """One open stream: who opened it, which halves are open, unconsumed bytes, frame headers."""

    __slots__ = ("local_open", "message", "ours", "remote_open", "unconsumed", "wire_id")

    def __init__(self, wire_id: int, ours: bool) -> None:
        self.wire_id = wire_id
        self.ours = ours
        self.local_open = True
        self.remote_open = True
        self.unconsumed = 0
        # The opener writes Initiator flags, the other side Receiver flags.
        self.message = _header(wire_id, Flag.MESSAGE_INITIATOR if ours else Flag.MESSAGE_RECEIVER)

    def frame(self, initiator_flag: Flag) -> bytes:
        """An empty Close or Reset frame from us (``initiator_flag`` is the Initiator variant)."""
        flag = initiator_flag if self.ours else initiator_flag - 1
        return _header(self.wire_id, flag) + b"\x00"


class MplexMachine(MuxerMachine):
    """An mplex session; see the module docstring for the wire rules and the stream id mapping."""

    has_flow_control: ClassVar[bool] = False

    protocol_id: ClassVar[str] = PROTOCOL_ID

    __slots__ = (
        "_config",
        "_failed",
        "_going_away",
        "_inbound",
        "_inbuf",
        "_is_initiator",
        "_next_wire_id",
        "_outbound",
        "_outbuf",
        "_streams",
    )

    def __init__(self, *, is_initiator: bool, config: MplexConfig | None = None) -> None:
        if config is None:
            config = _DEFAULT_CONFIG
        elif not isinstance(config, MplexConfig):
            raise LocalProtocolError(f"config must be an MplexConfig, not {type(config).__name__}")
        self._config = config
        self._is_initiator = bool(is_initiator)
        self._next_wire_id = 1 if self._is_initiator else 0
        self._streams: dict[int, _Stream] = {}
        self._inbound = 0
        self._outbound = 0
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._going_away = False
        self._failed = False

    # ------------------------------------------------------------------ introspection

    @property
    def config(self) -> MplexConfig:
        """The bounds in force."""
        return self._config

    @property
    def is_initiator(self) -> bool:
        """Whether we are the session initiator (the dialer)."""
        return self._is_initiator

    @property
    def is_closed(self) -> bool:
        """True after :meth:`go_away` (no new streams either way) or a protocol error."""
        return self._going_away or self._failed

    @property
    def stream_count(self) -> int:
        """Streams in the table (not yet fully closed or reset)."""
        return len(self._streams)

    def buffered_bytes(self) -> int:
        """Bytes held by the machine: an incomplete received frame plus undrained output."""
        return len(self._inbuf) + len(self._outbuf)

    def unconsumed(self, stream_id: int) -> int:
        """Bytes of ``stream_id`` handed out but not yet :meth:`consume`-d (0 if unknown)."""
        stream = self._streams.get(stream_id)
        return 0 if stream is None else stream.unconsumed

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[MuxerEvent]:
        """Process every complete frame in ``data``; keep a trailing partial frame.

        Raises :class:`RemoteProtocolError` (:class:`MessageTooLarge`, a
        :class:`~aiolibp2p.core.errors.VarintError`, ...) when the remote breaks the protocol;
        the machine is closed afterwards and further calls raise :class:`LocalProtocolError`.
        """
        if self._failed:
            raise LocalProtocolError("the mplex session failed; it takes no more input")
        events: list[MuxerEvent] = []
        inbuf = self._inbuf
        try:
            if inbuf:  # complete the pending frame with just the bytes it lacks, then go on
                with memoryview(data) as raw, raw.cast("B") as view:
                    used = self._complete_pending(view, events)
                    if used < len(view):
                        self._parse_rest(view[used:], events)
            elif type(data) is bytes:  # slices of bytes are the copies we hand out anyway
                self._parse_rest(data, events)
            else:
                with memoryview(data) as raw, raw.cast("B") as view:
                    self._parse_rest(view, events)
        except RemoteProtocolError:
            self._fail()
            raise
        return events

    def _parse_rest(self, buf: bytes | memoryview, events: list[MuxerEvent]) -> None:
        """Handle the complete frames of ``buf`` (nothing pending); keep its partial tail."""
        consumed = self._parse(buf, events)
        if consumed < len(buf):
            self._inbuf += buf[consumed:]

    def _complete_pending(self, view: memoryview, events: list[MuxerEvent]) -> int:
        """Append to the pending partial frame only the bytes of ``view`` it lacks (not the whole
        chunk: a leftover is never joined to new data); handle it once complete.  Returns how
        many bytes of ``view`` were used."""
        inbuf = self._inbuf
        size = len(view)
        # The header (two varints of at most 9 bytes each) from the pending bytes and new ones.
        probe = bytes(inbuf[:_MAX_HEADER])
        if len(probe) < _MAX_HEADER:
            probe += view[: _MAX_HEADER - len(probe)]
        decoded = varint.decode_uvarint(probe, 0)
        if decoded is not None:
            decoded = varint.decode_uvarint(probe, decoded[1])
        if decoded is None:  # the header is still incomplete: all of view is header bytes
            inbuf += view
            return size
        length, start = decoded
        max_size = self._config.max_message_size
        if length > max_size:
            raise MessageTooLarge(length, max_size)
        need = start + length - len(inbuf)
        if need > size:
            inbuf += view
            return size
        inbuf += view[:need]
        with memoryview(inbuf) as frame:
            consumed = self._parse(frame, events)
        assert consumed == len(inbuf)  # exactly the one frame that was pending
        self._inbuf = bytearray()  # drop the grown buffer: an idle session keeps nothing
        return need

    def _fail(self) -> None:
        self._failed = True
        self._inbuf = bytearray()
        self._streams.clear()
        self._inbound = self._outbound = 0

    def _parse(self, buf: bytes | bytearray | memoryview, events: list[MuxerEvent]) -> int:
        """Handle every complete frame of ``buf``; return the offset of the first unused byte."""
        decode = varint.decode_uvarint
        max_size = self._config.max_message_size
        size = len(buf)
        pos = 0
        while pos < size:
            decoded = decode(buf, pos)
            if decoded is None:
                break
            header, start = decoded
            decoded = decode(buf, start)
            if decoded is None:
                break
            length, start = decoded
            if length > max_size:
                raise MessageTooLarge(length, max_size)
            end = start + length
            if end > size:
                break
            self._handle(header >> 3, header & 7, buf, start=start, end=end, events=events)
            pos = end
        return pos

    def _handle(
        self,
        wire_id: int,
        flag: int,
        buf: bytes | bytearray | memoryview,
        *,
        start: int,
        end: int,
        events: list[MuxerEvent],
    ) -> None:
        if flag == Flag.NEW_STREAM:
            self._remote_new_stream(wire_id, events)
            return
        if flag > Flag.RESET_INITIATOR:
            raise RemoteProtocolError(f"mplex frame with unknown flag {flag} on stream {wire_id}")
        # Receiver flags (odd) come from the side that did not open the stream: we opened it.
        stream_id = wire_id << 1 if flag & 1 else (wire_id << 1) | 1
        stream = self._streams.get(stream_id)
        if stream is None:
            return  # never opened, or reset / closed and forgotten: drop (go and js do)
        if flag <= Flag.MESSAGE_INITIATOR:
            length = end - start
            if not stream.remote_open or length == 0:
                return  # data after the remote's Close: dropped, as go-mplex does
            unconsumed = stream.unconsumed + length
            if unconsumed > self._config.max_stream_buffer:
                self._outbuf += stream.frame(Flag.RESET_INITIATOR)
                self._forget(stream_id, stream)
                events.append(StreamReset(stream_id))
                return
            stream.unconsumed = unconsumed
            events.append(DataReceived(stream_id, bytes(buf[start:end])))
        elif flag <= Flag.CLOSE_INITIATOR:
            if not stream.remote_open:
                return  # a second Close: ignored
            stream.remote_open = False
            events.append(StreamEnded(stream_id))
            if not stream.local_open:
                self._forget(stream_id, stream)
        else:
            self._forget(stream_id, stream)
            events.append(StreamReset(stream_id))

    def _remote_new_stream(self, wire_id: int, events: list[MuxerEvent]) -> None:
        stream_id = (wire_id << 1) | 1
        if stream_id in self._streams:
            raise RemoteProtocolError(f"mplex NewStream for stream {wire_id}, which is open")
        if self._going_away or self._inbound >= self._config.max_inbound_streams:
            self._outbuf += _header(wire_id, Flag.RESET_RECEIVER) + b"\x00"
            return
        self._streams[stream_id] = _Stream(wire_id, ours=False)
        self._inbound += 1
        events.append(StreamOpened(stream_id))

    def _forget(self, stream_id: int, stream: _Stream) -> None:
        del self._streams[stream_id]
        if stream.ours:
            self._outbound -= 1
        else:
            self._inbound -= 1

    # ------------------------------------------------------------------ sending

    def data_to_send(self) -> bytes:
        """Drain the queued frames (``b""`` when there are none)."""
        if not self._outbuf:
            return b""
        out = bytes(self._outbuf)
        self._outbuf.clear()
        return out

    def open_stream(self, now: float) -> int:
        """Open an outbound stream (its NewStream frame is queued at once) and return its id.

        The stream name is the wire id in decimal, as go-mplex and js-libp2p send.  Raises
        :class:`LocalProtocolError` after :meth:`go_away` or a protocol error, past
        :attr:`MplexConfig.max_outbound_streams`, or when the wire ids are exhausted.
        """
        if self._failed:
            raise LocalProtocolError("the mplex session failed; no new streams")
        if self._going_away:
            raise LocalProtocolError("the mplex session is going away; no new streams")
        if self._outbound >= self._config.max_outbound_streams:
            raise LocalProtocolError(
                f"too many outbound mplex streams (limit {self._config.max_outbound_streams})"
            )
        wire_id = self._next_wire_id
        if wire_id > MAX_STREAM_ID:
            raise LocalProtocolError("mplex stream ids are exhausted")
        self._next_wire_id = wire_id + 2
        name = str(wire_id).encode("ascii")
        self._outbuf += _header(wire_id, Flag.NEW_STREAM)
        self._outbuf += varint.encode_uvarint(len(name))
        self._outbuf += name
        stream_id = wire_id << 1
        self._streams[stream_id] = _Stream(wire_id, ours=True)
        self._outbound += 1
        return stream_id

    def _writable(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None or not stream.local_open:
            raise StreamClosedError(f"mplex stream {stream_id} is closed for writing or unknown")
        return stream

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue all of ``data`` in frames of at most ``max_frame_size`` bytes; return its length.

        Raises :class:`StreamClosedError` if the stream is unknown, was reset, or we closed it.
        """
        stream = self._writable(stream_id)
        with memoryview(data) as raw, raw.cast("B") as view:
            total = len(view)
            step = self._config.max_frame_size
            out = self._outbuf
            header = stream.message
            encode = varint.encode_uvarint
            for offset in range(0, total, step):
                chunk = view[offset : offset + step]
                out += header
                out += encode(len(chunk))
                out += chunk
        return total

    def send_capacity(self, stream_id: int) -> int:
        """:data:`SEND_CAPACITY` for a writable stream (mplex has no window), else 0."""
        stream = self._streams.get(stream_id)
        return SEND_CAPACITY if stream is not None and stream.local_open else 0

    def close_stream(self, stream_id: int, now: float) -> None:
        """Half-close: queue a Close frame.  A no-op if already closed, reset or unknown."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.local_open:
            return
        stream.local_open = False
        self._outbuf += stream.frame(Flag.CLOSE_INITIATOR)
        if not stream.remote_open:
            self._forget(stream_id, stream)

    def reset_stream(self, stream_id: int, now: float) -> None:
        """Queue a Reset frame and forget the stream.  A no-op if it is already gone."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        self._outbuf += stream.frame(Flag.RESET_INITIATOR)
        self._forget(stream_id, stream)

    def consume(self, stream_id: int, nbytes: int, now: float) -> None:
        """The application consumed ``nbytes`` of the stream's received data.

        Ignored for a stream that is gone.  Raises :class:`LocalProtocolError` for a negative
        count or one above the bytes handed out and not yet consumed.
        """
        if not isinstance(nbytes, int) or nbytes < 0:
            raise LocalProtocolError(f"consume() needs a non-negative int, got {nbytes!r}")
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if nbytes > stream.unconsumed:
            raise LocalProtocolError(
                f"consume({nbytes}) on mplex stream {stream_id}, which has only "
                f"{stream.unconsumed} unconsumed bytes"
            )
        stream.unconsumed -= nbytes

    def go_away(self, code: int = 0) -> None:
        """Accept no new streams either way (mplex has no GoAway frame; ``code`` is unused).

        Open streams carry on; inbound NewStreams are answered with a Reset.
        """
        self._going_away = True

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """Always ``None``: mplex has no ping and no keep-alive."""
        return None

    def handle_timer(self, now: float) -> list[MuxerEvent]:
        """Nothing to do (see :meth:`next_deadline`)."""
        return []
