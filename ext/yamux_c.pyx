# cython: language_level=3
"""yamux frame codec: the compiled twin.

Same names, signatures, results, exception classes and messages as the pure reference
``aiolibp2p._accel.yamux_py`` (read its docstrings for the contract: the frame tuples, the
split and merge rules of ``FrameReader.feed``).  Buffers are borrowed, never copied: ``bytes`` is
read in place, anything else through ``PyObject_GetBuffer``, released in a ``finally``; only the
returned payloads and encodings are new objects, each built with one allocation.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

cimport _uvarint as uv

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

HEADER_SIZE = 12
VERSION = 0
TYPE_DATA = 0
TYPE_WINDOW_UPDATE = 1
TYPE_PING = 2
TYPE_GO_AWAY = 3
FLAG_SYN = 0x1
FLAG_ACK = 0x2
FLAG_FIN = 0x4
FLAG_RST = 0x8
MAX_UINT32 = 0xFFFFFFFF

cdef enum:
    _HDR = 12
    _DATA = 0
    _GO_AWAY = 3
    _END_FLAGS = 0x4 | 0x8
    _PROTOCOL_ERROR = 1
    _STACK_PIECES = 32  # merged Data pieces per feed() before the piece list goes to the heap


cdef uint64_t _check_field(str name, object value, uint64_t limit) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` as an int in ``[0, limit]``, else ``LocalProtocolError`` (the pure twin's text)."""
    cdef int overflow = 0
    cdef long long v
    if not isinstance(value, int):
        raise LocalProtocolError(f"yamux {name} must be an int, not {type(value).__name__}")
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < 0 or <uint64_t>v > limit:
        raise LocalProtocolError(f"yamux {name} {value} out of range [0, {limit}]")
    return <uint64_t>v


cdef uint64_t _check_max_data(object max_data) except? 0xFFFFFFFFFFFFFFFF:
    cdef int overflow = 0
    cdef long long v = -1
    if not isinstance(max_data, int):
        raise LocalProtocolError(f"max_data must be an int, not {type(max_data).__name__}")
    v = PyLong_AsLongLongAndOverflow(max_data, &overflow)
    if overflow > 0:
        return 0xFFFFFFFFFFFFFFFF  # above any 32-bit length: no limit in effect
    if overflow < 0 or v < 0:
        raise LocalProtocolError(f"max_data must not be negative, got {max_data}")
    return <uint64_t>v


cdef inline void _put_header(
    unsigned char* out, unsigned int frame_type, unsigned int flags, uint32_t stream_id,
    uint32_t length
) noexcept nogil:
    out[0] = 0
    out[1] = <unsigned char>frame_type
    out[2] = <unsigned char>(flags >> 8)
    out[3] = <unsigned char>flags
    out[4] = <unsigned char>(stream_id >> 24)
    out[5] = <unsigned char>(stream_id >> 16)
    out[6] = <unsigned char>(stream_id >> 8)
    out[7] = <unsigned char>stream_id
    out[8] = <unsigned char>(length >> 24)
    out[9] = <unsigned char>(length >> 16)
    out[10] = <unsigned char>(length >> 8)
    out[11] = <unsigned char>length


cdef inline uint32_t _be32(const unsigned char* p) noexcept nogil:
    return (
        (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]
    )


cdef int _check_frame(
    unsigned int version, unsigned int frame_type, uint32_t length, uint64_t limit,
    object max_data
) except -1:
    if version != 0:
        raise YamuxError(f"unsupported yamux version {version}", code=_PROTOCOL_ERROR)
    if frame_type > _GO_AWAY:
        raise YamuxError(f"unknown yamux frame type {frame_type}", code=_PROTOCOL_ERROR)
    if frame_type == _DATA and length > limit:
        raise YamuxError(
            f"yamux data frame of {length} bytes exceeds the limit of {max_data} bytes",
            code=_PROTOCOL_ERROR,
        )
    return 0


def encode_header(frame_type, flags, stream_id, length) -> bytes:
    """The 12-byte header ``(VERSION, frame_type, flags, stream_id, length)``."""
    cdef uint64_t t = _check_field("type", frame_type, 0xFF)
    cdef uint64_t f = _check_field("flags", flags, 0xFFFF)
    cdef uint64_t s = _check_field("stream_id", stream_id, 0xFFFFFFFF)
    cdef uint64_t n = _check_field("length", length, 0xFFFFFFFF)
    result = PyBytes_FromStringAndSize(NULL, _HDR)
    _put_header(
        <unsigned char*>PyBytes_AS_STRING(result), <unsigned int>t, <unsigned int>f,
        <uint32_t>s, <uint32_t>n,
    )
    return result


def encode_header_into(buf, offset, frame_type, flags, stream_id, length) -> int:
    """Write a header into the writable buffer ``buf`` at ``offset``; return ``offset + 12``."""
    cdef uint64_t t = _check_field("type", frame_type, 0xFF)
    cdef uint64_t f = _check_field("flags", flags, 0xFFFF)
    cdef uint64_t s = _check_field("stream_id", stream_id, 0xFFFFFFFF)
    cdef uint64_t n = _check_field("length", length, 0xFFFFFFFF)
    cdef Py_buffer view
    cdef Py_ssize_t off
    uv.buffer_clear(&view)
    try:
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
    except BufferError:
        # Read-only but otherwise usable: our caller's mistake.  Anything else (e.g. a
        # non-contiguous view) raises from the second request, as the pure twin does.
        uv.buffer_clear(&view)
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        PyBuffer_Release(&view)
        raise LocalProtocolError("encode_header_into needs a writable buffer")
    try:
        off = uv.check_offset(offset, view.len)
        if view.len - off < _HDR:
            raise LocalProtocolError(
                f"yamux header does not fit at offset {offset} of a {view.len}-byte buffer"
            )
        _put_header(
            <unsigned char*>view.buf + off, <unsigned int>t, <unsigned int>f, <uint32_t>s,
            <uint32_t>n,
        )
        return off + _HDR
    finally:
        PyBuffer_Release(&view)


def encode_data_frames(stream_id, flags, data, max_frame) -> bytes:
    """All the Data frames that carry ``data`` on ``stream_id``, in one bytes object."""
    cdef uint64_t s = _check_field("stream_id", stream_id, 0xFFFFFFFF)
    cdef uint64_t f = _check_field("flags", flags, 0xFFFF)
    cdef int overflow = 0
    cdef long long m = 0
    cdef Py_buffer view
    cdef const unsigned char* src
    cdef Py_ssize_t size, frames, chunk, pos
    cdef unsigned char* out
    if not isinstance(max_frame, int):
        raise LocalProtocolError(f"max_frame must be an int, not {type(max_frame).__name__}")
    m = PyLong_AsLongLongAndOverflow(max_frame, &overflow)
    if overflow != 0 or m < 1 or m > 0xFFFFFFFF:
        raise LocalProtocolError(f"max_frame {max_frame} out of range [1, {MAX_UINT32}]")
    uv.borrow(data, &view, &src, &size)
    try:
        frames = (size + <Py_ssize_t>m - 1) // <Py_ssize_t>m if size else 1
        result = PyBytes_FromStringAndSize(NULL, size + frames * _HDR)
        out = <unsigned char*>PyBytes_AS_STRING(result)
        pos = 0
        while True:
            chunk = size - pos
            if chunk > <Py_ssize_t>m:
                chunk = <Py_ssize_t>m
            _put_header(
                out, _DATA, <unsigned int>(f if pos == 0 else 0), <uint32_t>s, <uint32_t>chunk
            )
            memcpy(out + _HDR, src + pos, chunk)
            out += _HDR + chunk
            pos += chunk
            if pos >= size:
                break
        return result
    finally:
        PyBuffer_Release(&view)


def split_frames(buf, offset=0, *, max_data):
    """Every complete frame from ``offset`` on: ``(frames, next_offset)``."""
    cdef Py_buffer view
    cdef const unsigned char* data
    cdef const unsigned char* p
    cdef Py_ssize_t size, pos
    cdef uint64_t limit
    cdef unsigned int frame_type, flags
    cdef uint32_t stream_id, length
    cdef list frames
    uv.borrow(buf, &view, &data, &size)
    try:
        pos = uv.check_offset(offset, size)
        limit = _check_max_data(max_data)
        frames = []
        while size - pos >= _HDR:
            p = data + pos
            frame_type = p[1]
            flags = (<unsigned int>p[2] << 8) | p[3]
            stream_id = _be32(p + 4)
            length = _be32(p + 8)
            if p[0] != 0 or frame_type > _GO_AWAY or (frame_type == _DATA and length > limit):
                _check_frame(p[0], frame_type, length, limit, max_data)
            if frame_type == _DATA:
                if <uint64_t>length > <uint64_t>(size - pos - _HDR):
                    break
                frames.append(
                    (
                        frame_type,
                        flags,
                        stream_id,
                        length,
                        PyBytes_FromStringAndSize(<const char*>p + _HDR, length),
                    )
                )
                pos += _HDR + length
            else:
                frames.append((frame_type, flags, stream_id, length, None))
                pos += _HDR
        return frames, pos
    finally:
        PyBuffer_Release(&view)


cdef class FrameReader:
    """Incremental decoder of one direction of a yamux session (see the pure twin)."""

    cdef unsigned char _header[_HDR]
    cdef Py_ssize_t _header_len
    cdef uint64_t _limit
    cdef object _max_data
    cdef uint64_t _remaining
    cdef uint32_t _stream_id
    cdef unsigned int _end_flags
    cdef bint _failed
    # (start, length) pairs of the payload pieces of the Data run being merged: a stack array
    # of feed() while it runs (heap only past _STACK_PIECES), NULL between calls, so an idle
    # reader holds no piece storage
    cdef Py_ssize_t* _pieces
    cdef Py_ssize_t _capacity

    def __cinit__(self, *args, **kwargs):
        self._pieces = NULL
        self._capacity = 0

    def __init__(self, *, max_data):
        self._limit = _check_max_data(max_data)
        self._max_data = max_data
        self._header_len = 0
        self._remaining = 0
        self._stream_id = 0
        self._end_flags = 0
        self._failed = False

    def __dealloc__(self):
        PyMem_Free(self._pieces)

    @property
    def buffered(self):
        """Bytes of a partial header held until the next :meth:`feed` (0 to 11)."""
        return self._header_len

    @property
    def remaining(self):
        """Payload bytes of the current Data frame not received yet (0 between frames)."""
        return self._remaining

    def feed(self, data):
        """Decode ``data`` (the next bytes of the stream) into frame tuples, in wire order."""
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t size
        cdef Py_ssize_t stack[2 * _STACK_PIECES]
        if self._failed:
            raise LocalProtocolError("FrameReader used after a decoding error")
        uv.borrow(data, &view, &src, &size)
        self._pieces = stack
        self._capacity = _STACK_PIECES
        try:
            return self._feed(src, size)
        except YamuxError:
            self._failed = True
            raise
        finally:
            if self._pieces != stack:
                PyMem_Free(self._pieces)
            self._pieces = NULL
            self._capacity = 0
            PyBuffer_Release(&view)

    cdef int _add_piece(self, Py_ssize_t index, Py_ssize_t start, Py_ssize_t length) except -1:
        cdef Py_ssize_t capacity
        cdef Py_ssize_t* grown
        if index >= self._capacity:
            capacity = self._capacity * 2
            if self._capacity == _STACK_PIECES:  # leaving feed()'s stack array
                grown = <Py_ssize_t*>PyMem_Malloc(<size_t>capacity * 2 * sizeof(Py_ssize_t))
                if grown != NULL:
                    memcpy(grown, self._pieces, <size_t>self._capacity * 2 * sizeof(Py_ssize_t))
            else:
                grown = <Py_ssize_t*>PyMem_Realloc(
                    self._pieces, <size_t>capacity * 2 * sizeof(Py_ssize_t)
                )
            if grown == NULL:
                raise MemoryError()
            self._pieces = grown
            self._capacity = capacity
        self._pieces[2 * index] = start
        self._pieces[2 * index + 1] = length
        return 0

    cdef object _payload(
        self, const unsigned char* data, Py_ssize_t count, Py_ssize_t total
    ):
        cdef Py_ssize_t i
        cdef char* out
        if count == 1:
            return PyBytes_FromStringAndSize(<const char*>data + self._pieces[0], total)
        payload = PyBytes_FromStringAndSize(NULL, total)
        out = PyBytes_AS_STRING(payload)
        for i in range(count):
            memcpy(out, data + self._pieces[2 * i], self._pieces[2 * i + 1])
            out += self._pieces[2 * i + 1]
        return payload

    cdef list _feed(self, const unsigned char* data, Py_ssize_t size):
        cdef list items = []
        cdef Py_ssize_t pos = 0, take, start, need, count = 0, run_len = 0
        cdef unsigned int run_flags = 0, flags, frame_type
        cdef uint32_t run_sid = 0, sid, length
        cdef const unsigned char* p
        while pos < size:
            if self._remaining:
                take = size - pos
                if <uint64_t>take > self._remaining:
                    take = <Py_ssize_t>self._remaining
                self._remaining -= <uint64_t>take
                flags = 0 if self._remaining else self._end_flags
                sid = self._stream_id
                start = pos
                pos += take
            else:
                if self._header_len:
                    need = _HDR - self._header_len
                    if need > size - pos:
                        need = size - pos
                    memcpy(self._header + self._header_len, data + pos, need)
                    self._header_len += need
                    pos += need
                    if self._header_len < _HDR:
                        break
                    p = self._header
                    self._header_len = 0
                elif size - pos >= _HDR:
                    p = data + pos
                    pos += _HDR
                else:
                    memcpy(self._header, data + pos, size - pos)
                    self._header_len = size - pos
                    pos = size
                    break
                frame_type = p[1]
                flags = (<unsigned int>p[2] << 8) | p[3]
                sid = _be32(p + 4)
                length = _be32(p + 8)
                if p[0] != 0 or frame_type > _GO_AWAY or (
                    frame_type == _DATA and length > self._limit
                ):
                    _check_frame(p[0], frame_type, length, self._limit, self._max_data)
                if frame_type != _DATA:
                    if count:
                        items.append(
                            (_DATA, run_flags, run_sid, run_len,
                             self._payload(data, count, run_len))
                        )
                        count = 0
                    items.append((frame_type, flags, sid, length, None))
                    continue
                take = size - pos
                if <uint64_t>take >= <uint64_t>length:
                    take = <Py_ssize_t>length
                else:
                    self._remaining = <uint64_t>length - <uint64_t>take
                    self._stream_id = sid
                    self._end_flags = flags & _END_FLAGS
                    flags &= ~(<unsigned int>_END_FLAGS)
                start = pos
                pos += take
            # A Data part: merge it into the current run, or start a new run.
            if count and flags == 0 and sid == run_sid and not (run_flags & _END_FLAGS):
                if take:
                    self._add_piece(count, start, take)
                    count += 1
                    run_len += take
                continue
            if count:
                items.append(
                    (_DATA, run_flags, run_sid, run_len, self._payload(data, count, run_len))
                )
            run_flags = flags
            run_sid = sid
            run_len = take
            self._add_piece(0, start, take)
            count = 1
        if count:
            items.append((_DATA, run_flags, run_sid, run_len, self._payload(data, count, run_len)))
        return items
