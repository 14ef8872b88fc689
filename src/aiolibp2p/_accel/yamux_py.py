"""yamux frame codec: the pure-Python reference twin.

The compiled twin is ``ext/yamux_c.pyx``; both export exactly the names in ``__all__``, return
equal results and raise the same exception classes with the same messages.  Library code imports
the selected twin with ``from aiolibp2p._accel import yamux``.

A yamux frame (libp2p/specs ``yamux/README.md``) is a 12-byte big-endian header
``version:u8 | type:u8 | flags:u16 | stream_id:u32 | length:u32`` followed, for Data frames only,
by ``length`` payload bytes.  For Window Update, Ping and Go Away frames ``length`` is a value
(window delta, opaque ping value, error code) and no payload follows.

Decoded frames are tuples ``(type, flags, stream_id, length, payload)``: ``payload`` is the Data
frame's bytes (``len(payload) == length``) and ``None`` for every other type.

What this module checks: the version (must be 0), the type (0 to 3) and the Data length (at
most ``max_data``, checked as soon as the header is complete, before the payload is buffered).
Anything the header means for a session (stream ids, flags, windows) is the machine's business
(``aiolibp2p.proto.yamux``).  Framing errors raise
:class:`~aiolibp2p.core.errors.YamuxError` with ``code`` 1 (the Go Away "protocol error" code).

Two decoders:

* :func:`split_frames` walks every complete frame of a buffer in one call and returns one tuple
  per frame (nothing merged).
* :class:`FrameReader` is what a session uses: it is fed the byte stream chunk by chunk, keeps
  at most 11 bytes of a partial header between calls, hands out a Data frame's payload as soon
  as its bytes arrive (never buffering a payload), and merges consecutive Data frames of one
  stream that carry no flags into one payload.  See :meth:`FrameReader.feed`.

Encoders write headers into caller buffers (:func:`encode_header_into`) or build a whole write's
Data frames in one bytes object (:func:`encode_data_frames`).
"""

from __future__ import annotations

import struct
from typing import Any

from aiolibp2p._accel.varint_py import _check_offset, _view
from aiolibp2p.core.errors import LocalProtocolError, YamuxError

__all__ = [
    "FLAG_ACK",
    "FLAG_FIN",
    "FLAG_RST",
    "FLAG_SYN",
    "FrameReader",
    "HEADER_SIZE",
    "MAX_UINT32",
    "TYPE_DATA",
    "TYPE_GO_AWAY",
    "TYPE_PING",
    "TYPE_WINDOW_UPDATE",
    "VERSION",
    "encode_data_frames",
    "encode_header",
    "encode_header_into",
    "split_frames",
]

#: Bytes in a frame header.
HEADER_SIZE: int = 12
#: The only protocol version.
VERSION: int = 0
#: Frame types.
TYPE_DATA: int = 0
TYPE_WINDOW_UPDATE: int = 1
TYPE_PING: int = 2
TYPE_GO_AWAY: int = 3
#: Flags (a bit field).
FLAG_SYN: int = 0x1
FLAG_ACK: int = 0x2
FLAG_FIN: int = 0x4
FLAG_RST: int = 0x8
#: The largest stream id, length or window (32 bits).
MAX_UINT32: int = 0xFFFFFFFF

_HEADER = struct.Struct(">BBHII")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_pack_header_into = _HEADER.pack_into
_END_FLAGS = FLAG_FIN | FLAG_RST
_PROTOCOL_ERROR = 1


def _check_field(name: str, value: object, limit: int) -> int:
    if not isinstance(value, int):
        raise LocalProtocolError(f"yamux {name} must be an int, not {type(value).__name__}")
    if value < 0 or value > limit:
        raise LocalProtocolError(f"yamux {name} {value} out of range [0, {limit}]")
    return value


def _check_header(frame_type: object, flags: object, stream_id: object, length: object) -> None:
    _check_field("type", frame_type, 0xFF)
    _check_field("flags", flags, 0xFFFF)
    _check_field("stream_id", stream_id, MAX_UINT32)
    _check_field("length", length, MAX_UINT32)


def _check_max_data(max_data: object) -> int:
    if not isinstance(max_data, int):
        raise LocalProtocolError(f"max_data must be an int, not {type(max_data).__name__}")
    if max_data < 0:
        raise LocalProtocolError(f"max_data must not be negative, got {max_data}")
    return max_data


def _check_frame(version: int, frame_type: int, length: int, max_data: int) -> None:
    """Raise the framing error of a header, if any (the order of checks is part of the contract)."""
    if version != VERSION:
        raise YamuxError(f"unsupported yamux version {version}", code=_PROTOCOL_ERROR)
    if frame_type > TYPE_GO_AWAY:
        raise YamuxError(f"unknown yamux frame type {frame_type}", code=_PROTOCOL_ERROR)
    if frame_type == TYPE_DATA and length > max_data:
        raise YamuxError(
            f"yamux data frame of {length} bytes exceeds the limit of {max_data} bytes",
            code=_PROTOCOL_ERROR,
        )


def encode_header(frame_type: int, flags: int, stream_id: int, length: int) -> bytes:
    """The 12-byte header ``(VERSION, frame_type, flags, stream_id, length)``.

    Raises :class:`LocalProtocolError` if a field is not an int or does not fit its width
    (type 8 bits, flags 16 bits, stream id and length 32 bits).
    """
    _check_header(frame_type, flags, stream_id, length)
    return _pack_header(VERSION, frame_type, flags, stream_id, length)


def encode_header_into(  # noqa: PLR0917 (the header's fields, as struct.pack_into takes them)
    buf: Any, offset: int, frame_type: int, flags: int, stream_id: int, length: int
) -> int:
    """Write a header into the writable buffer ``buf`` at ``offset``; return ``offset + 12``.

    Raises :class:`LocalProtocolError` for a bad field (as :func:`encode_header`), a read-only
    buffer, an offset outside ``[0, len(buf)]`` or a header that does not fit.
    """
    _check_header(frame_type, flags, stream_id, length)
    view = memoryview(buf)
    try:
        if not view.c_contiguous:
            raise BufferError("buffer is not C-contiguous")
        if view.readonly:
            raise LocalProtocolError("encode_header_into needs a writable buffer")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = view.nbytes
        _check_offset(offset, size)
        if size - offset < HEADER_SIZE:
            raise LocalProtocolError(
                f"yamux header does not fit at offset {offset} of a {size}-byte buffer"
            )
        _pack_header_into(view, offset, VERSION, frame_type, flags, stream_id, length)
        return offset + HEADER_SIZE
    finally:
        view.release()


def encode_data_frames(stream_id: int, flags: int, data: Any, max_frame: int) -> bytes:
    """All the Data frames that carry ``data`` on ``stream_id``, in one bytes object.

    Each frame carries at most ``max_frame`` payload bytes; ``flags`` go on the first frame only
    (the others carry none).  Empty ``data`` gives one empty frame (e.g. a bare SYN).  Raises
    :class:`LocalProtocolError` for a bad ``stream_id``/``flags`` or a ``max_frame`` outside
    ``[1, MAX_UINT32]``.
    """
    _check_field("stream_id", stream_id, MAX_UINT32)
    _check_field("flags", flags, 0xFFFF)
    if not isinstance(max_frame, int):
        raise LocalProtocolError(f"max_frame must be an int, not {type(max_frame).__name__}")
    if max_frame < 1 or max_frame > MAX_UINT32:
        raise LocalProtocolError(f"max_frame {max_frame} out of range [1, {MAX_UINT32}]")
    body = _view(data)
    size = len(body)
    if size <= max_frame:
        frame: bytes = _pack_header(VERSION, TYPE_DATA, flags, stream_id, size) + body
        return frame
    parts: list[Any] = []
    append = parts.append
    source = memoryview(body)
    for start in range(0, size, max_frame):
        chunk = source[start : start + max_frame]
        append(_pack_header(VERSION, TYPE_DATA, flags if start == 0 else 0, stream_id, len(chunk)))
        append(chunk)
    return b"".join(parts)


def split_frames(
    buf: Any, offset: int = 0, *, max_data: int
) -> tuple[list[tuple[int, int, int, int, bytes | None]], int]:
    """Every complete frame from ``offset`` on: ``(frames, next_offset)``.

    ``next_offset`` is the first byte not consumed (the start of an incomplete trailing frame,
    or the end of the buffer).  A bad version, an unknown type or a Data length above
    ``max_data`` raises :class:`YamuxError` as soon as that header is complete, even after
    complete frames (the session is unusable then).  Raises :class:`LocalProtocolError` for an
    ``offset`` outside ``[0, len(buf)]`` or a negative ``max_data``.
    """
    data = _view(buf)
    size = len(data)
    pos = _check_offset(offset, size)
    _check_max_data(max_data)
    is_bytes = type(data) is bytes  # a bytes slice is already a copy; others need bytes()
    frames: list[tuple[int, int, int, int, bytes | None]] = []
    append = frames.append
    while size - pos >= HEADER_SIZE:
        version, frame_type, flags, stream_id, length = _unpack_header(data, pos)
        _check_frame(version, frame_type, length, max_data)
        start = pos + HEADER_SIZE
        if frame_type == TYPE_DATA:
            end = start + length
            if end > size:
                break
            payload = data[start:end] if is_bytes else bytes(data[start:end])
            append((frame_type, flags, stream_id, length, payload))
            pos = end
        else:
            append((frame_type, flags, stream_id, length, None))
            pos = start
    return frames, pos


class FrameReader:
    """Incremental decoder of one direction of a yamux session.

    ``max_data`` (keyword, required) bounds the length of a Data frame; a session passes its
    largest receive window.  The reader holds at most ``HEADER_SIZE - 1`` bytes between calls
    (a partial header): payloads are handed out as they arrive, never buffered.
    """

    __slots__ = ("_end_flags", "_failed", "_header", "_max_data", "_remaining", "_stream_id")

    def __init__(self, *, max_data: int) -> None:
        self._max_data = _check_max_data(max_data)
        self._header = bytearray()  # a partial header (0 to 11 bytes)
        self._remaining = 0  # payload bytes still due for the current Data frame
        self._stream_id = 0  # that frame's stream
        self._end_flags = 0  # that frame's FIN/RST flags, reported with its last byte
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes of a partial header held until the next :meth:`feed` (0 to 11)."""
        return len(self._header)

    @property
    def remaining(self) -> int:
        """Payload bytes of the current Data frame not received yet (0 between frames)."""
        return self._remaining

    def feed(self, data: Any) -> list[tuple[int, int, int, int, bytes | None]]:
        """Decode ``data`` (the next bytes of the stream) into frame tuples, in wire order.

        Window Update, Ping and Go Away frames give one tuple each, as in :func:`split_frames`.
        Data frames give ``(TYPE_DATA, flags, stream_id, n, payload)`` items with
        ``len(payload) == n``, formed by two rules:

        * **Split**: a frame whose payload is not all in ``data`` yields an item at once with the
          payload bytes present (possibly none) and its SYN/ACK flags; each later ``feed`` yields
          the next part, and the part with the frame's last byte carries its FIN/RST flags.
          Flags thus keep their order: SYN/ACK before the payload, FIN/RST after it.
        * **Merge**: a frame part with no flags joins the previous item when that item is a Data
          item of the same stream without FIN/RST: its payload is appended and ``n`` adds up.

        Every Data frame is accounted for (an empty frame without flags still yields an item
        unless it merges), so a session sees every stream id it must validate.  Framing errors
        raise :class:`YamuxError` (as :func:`split_frames`); the reader is then unusable and
        raises :class:`LocalProtocolError` if fed again.
        """
        if self._failed:
            raise LocalProtocolError("FrameReader used after a decoding error")
        view = _view(data)
        source = memoryview(view)  # zero-copy slices for join() and bytes()
        try:
            return self._feed(view, source)
        except YamuxError:
            self._failed = True
            raise
        finally:
            source.release()  # the caller may resize its bytearray again, even after an error

    def _feed(self, view: Any, source: memoryview) -> list[tuple[int, int, int, int, bytes | None]]:
        items: list[tuple[int, int, int, int, bytes | None]] = []
        size = len(view)
        # The Data run being merged: its flags, stream, piece bounds (in ``view``) and length.
        run_flags = run_sid = run_len = 0
        run_pieces: list[tuple[int, int]] = []
        pos = 0
        is_bytes = type(view) is bytes  # a bytes slice is already a copy

        def flush() -> None:
            if len(run_pieces) == 1:
                start, end = run_pieces[0]
                payload = view[start:end] if is_bytes else bytes(source[start:end])
            else:
                payload = b"".join([source[start:end] for start, end in run_pieces])
            items.append((TYPE_DATA, run_flags, run_sid, run_len, payload))

        while pos < size:
            if self._remaining:
                # The next part of a Data frame begun in an earlier call.
                take = min(self._remaining, size - pos)
                self._remaining -= take
                flags = 0 if self._remaining else self._end_flags
                sid = self._stream_id
                start = pos
                pos += take
            else:
                # A header: in place, or completed from the partial one held.
                if self._header:
                    need = HEADER_SIZE - len(self._header)
                    self._header += view[pos : pos + need]
                    pos += min(need, size - pos)
                    if len(self._header) < HEADER_SIZE:
                        break
                    fields = _unpack_header(self._header, 0)
                    self._header.clear()
                elif size - pos >= HEADER_SIZE:
                    fields = _unpack_header(view, pos)
                    pos += HEADER_SIZE
                else:
                    self._header += view[pos:size]
                    pos = size
                    break
                version, frame_type, flags, sid, length = fields
                _check_frame(version, frame_type, length, self._max_data)
                if frame_type != TYPE_DATA:
                    if run_pieces:
                        flush()
                        run_pieces = []
                    items.append((frame_type, flags, sid, length, None))
                    continue
                take = min(length, size - pos)
                if take < length:
                    self._remaining = length - take
                    self._stream_id = sid
                    self._end_flags = flags & _END_FLAGS
                    flags &= ~_END_FLAGS
                start = pos
                pos += take
            # A Data part (flags, sid, view[start:start + take]): merge it or start a new run.
            if run_pieces and not flags and sid == run_sid and not run_flags & _END_FLAGS:
                if take:
                    run_pieces.append((start, start + take))
                    run_len += take
                continue
            if run_pieces:
                flush()
            run_flags, run_sid, run_len = flags, sid, take
            run_pieces = [(start, start + take)]
        if run_pieces:
            flush()
        return items
