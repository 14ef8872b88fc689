# cython: language_level=3
"""Multiformats unsigned varints and length-prefixed messages: the compiled twin.

Same names, signatures, results, exception classes and messages as the pure reference
``aiolibp2p._accel.varint_py`` (read its docstrings for the contract).  Buffers are borrowed, never
copied: ``bytes`` is read in place, anything else through ``PyObject_GetBuffer``, released in a
``finally``; only the returned message bodies are new objects.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cimport _uvarint as uv

from aiolibp2p.core.errors import LocalProtocolError, MessageTooLarge

__all__ = [
    "MAX_UVARINT",
    "MAX_UVARINT_LEN",
    "decode_lp",
    "decode_uvarint",
    "encode_lp",
    "encode_uvarint",
    "encode_uvarint_into",
    "split_lp",
    "uvarint_size",
]

MAX_UVARINT_LEN = 9
MAX_UVARINT = 2**63 - 1


def uvarint_size(value) -> int:
    """Length in bytes of the minimal encoding of ``value``."""
    return uv.uvarint_len(uv.check_value(value))


def encode_uvarint(value) -> bytes:
    """Encode ``value`` (``0 <= value <= MAX_UVARINT``) as a minimal uvarint."""
    cdef unsigned char tmp[9]
    cdef uint64_t v = uv.check_value(value)
    cdef Py_ssize_t n = uv.uvarint_write(v, tmp)
    return PyBytes_FromStringAndSize(<char*>tmp, n)


cdef int _borrow_writable(object buf, Py_buffer* view) except -1:
    uv.buffer_clear(view)
    try:
        PyObject_GetBuffer(buf, view, PyBUF_WRITABLE)
    except BufferError:
        # Read-only but otherwise usable: our caller's mistake.  Anything else (e.g. a
        # non-contiguous view) raises from the second request, as the pure twin does.
        uv.buffer_clear(view)
        PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
        PyBuffer_Release(view)
        raise LocalProtocolError("encode_uvarint_into needs a writable buffer")
    return 0


def encode_uvarint_into(value, buf, offset=0) -> int:
    """Write the uvarint of ``value`` into the writable buffer ``buf`` at ``offset``.

    Returns the offset just past the written bytes.  Raises :class:`LocalProtocolError` if the
    buffer is read-only, the offset is out of range, or the encoding does not fit.
    """
    cdef uint64_t v = uv.check_value(value)
    cdef Py_buffer view
    cdef Py_ssize_t off, needed
    _borrow_writable(buf, &view)
    try:
        off = uv.check_offset(offset, view.len)
        needed = uv.uvarint_len(v)
        if needed > view.len - off:
            raise LocalProtocolError(
                f"uvarint of {needed} bytes does not fit at offset {offset} "
                f"of a {view.len}-byte buffer"
            )
        return off + uv.uvarint_write(v, <unsigned char*>view.buf + off)
    finally:
        PyBuffer_Release(&view)


def decode_uvarint(buf, offset=0):
    """Decode the uvarint at ``offset``: ``(value, end_offset)``, or ``None`` if incomplete."""
    cdef Py_buffer view
    cdef const unsigned char* data
    cdef Py_ssize_t size, pos, end
    cdef uint64_t value = 0
    uv.borrow(buf, &view, &data, &size)
    try:
        pos = uv.check_offset(offset, size)
        end = uv.uvarint_decode(data, pos, size, &value)
        if end < 0:
            if end == uv.UVARINT_INCOMPLETE:
                return None
            uv.uvarint_raise(end)
        return value, end
    finally:
        PyBuffer_Release(&view)


def encode_lp(data) -> bytes:
    """``uvarint(len(data)) + data`` for any buffer ``data`` (its length counted in bytes)."""
    cdef Py_buffer view
    cdef const unsigned char* src
    cdef Py_ssize_t size, hdr
    cdef unsigned char* out
    uv.borrow(data, &view, &src, &size)
    try:
        hdr = uv.uvarint_len(<uint64_t>size)
        result = PyBytes_FromStringAndSize(NULL, hdr + size)
        out = <unsigned char*>PyBytes_AS_STRING(result)
        uv.uvarint_write(<uint64_t>size, out)
        memcpy(out + hdr, src, size)
        return result
    finally:
        PyBuffer_Release(&view)


def decode_lp(buf, offset=0, *, max_size):
    """Decode one length-prefixed message at ``offset``: ``(body, end_offset)`` or ``None``.

    Raises :class:`MessageTooLarge` as soon as the length prefix is complete if it exceeds
    ``max_size``, whether or not the body has arrived.
    """
    cdef Py_buffer view
    cdef const unsigned char* data
    cdef Py_ssize_t size, pos, start
    cdef uint64_t limit, length = 0
    uv.borrow(buf, &view, &data, &size)
    try:
        pos = uv.check_offset(offset, size)
        limit = uv.check_max_size(max_size)
        start = uv.uvarint_decode(data, pos, size, &length)
        if start < 0:
            if start == uv.UVARINT_INCOMPLETE:
                return None
            uv.uvarint_raise(start)
        if length > limit:
            raise MessageTooLarge(length, max_size)
        if length > <uint64_t>(size - start):
            return None
        return (
            PyBytes_FromStringAndSize(<char*>data + start, <Py_ssize_t>length),
            start + <Py_ssize_t>length,
        )
    finally:
        PyBuffer_Release(&view)


def split_lp(buf, offset=0, *, max_size):
    """Every complete length-prefixed message from ``offset`` on: ``(messages, next_offset)``."""
    cdef Py_buffer view
    cdef const unsigned char* data
    cdef Py_ssize_t size, pos, start
    cdef uint64_t limit, length = 0
    cdef list messages
    uv.borrow(buf, &view, &data, &size)
    try:
        pos = uv.check_offset(offset, size)
        limit = uv.check_max_size(max_size)
        messages = []
        while pos < size:
            length = data[pos]
            if length < 0x80:
                start = pos + 1
            else:
                start = uv.uvarint_decode(data, pos, size, &length)
                if start < 0:
                    if start == uv.UVARINT_INCOMPLETE:
                        break
                    uv.uvarint_raise(start)
            if length > limit:
                raise MessageTooLarge(length, max_size)
            if length > <uint64_t>(size - start):
                break
            messages.append(
                PyBytes_FromStringAndSize(<char*>data + start, <Py_ssize_t>length)
            )
            pos = start + <Py_ssize_t>length
        return messages, pos
    finally:
        PyBuffer_Release(&view)
