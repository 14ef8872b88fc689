# cython: language_level=3
"""multistream-select 1.0 message framing: the compiled twin.

Same names, signatures, results, exception classes and messages as the pure reference
``aiolibp2p._accel.multistream_py`` (read its docstrings for the contract, including why
``MAX_MESSAGE_SIZE`` is 1024).  The uvarint code is shared with ``varint_c`` through the
``cdef inline`` functions of ``ext/_uvarint.pxd``.
"""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcpy

cimport _uvarint as uv

from aiolibp2p.core.errors import LocalProtocolError, MessageTooLarge, NegotiationError

__all__ = ["MAX_MESSAGE_SIZE", "encode_message", "encode_messages", "split_messages"]

MAX_MESSAGE_SIZE = 1024
cdef Py_ssize_t _MAX_MESSAGE_SIZE = 1024


cdef bytes _frame(const char* payload, Py_ssize_t size):
    cdef Py_ssize_t length, hdr
    cdef unsigned char* out
    if memchr(payload, b'\n', size) != NULL:
        raise LocalProtocolError("multistream payload must not contain a newline")
    length = size + 1
    if length > _MAX_MESSAGE_SIZE:
        raise LocalProtocolError(
            f"multistream message of {length} bytes exceeds the limit of {MAX_MESSAGE_SIZE}"
        )
    hdr = uv.uvarint_len(<uint64_t>length)
    result = PyBytes_FromStringAndSize(NULL, hdr + length)
    out = <unsigned char*>PyBytes_AS_STRING(result)
    uv.uvarint_write(<uint64_t>length, out)
    memcpy(out + hdr, payload, size)
    out[hdr + size] = b'\n'
    return result


cdef bytes _encode(object payload):
    cdef const char* text
    cdef Py_ssize_t size
    cdef Py_buffer view
    cdef const unsigned char* data
    if isinstance(payload, str):
        text = PyUnicode_AsUTF8AndSize(payload, &size)
        return _frame(text, size)
    if isinstance(payload, (bytes, bytearray, memoryview)):
        uv.borrow(payload, &view, &data, &size)
        try:
            return _frame(<const char*>data, size)
        finally:
            PyBuffer_Release(&view)
    raise LocalProtocolError(
        f"multistream payload must be bytes or str, not {type(payload).__name__}"
    )


def encode_message(payload) -> bytes:
    """``uvarint(len(payload) + 1) + payload + b"\\n"``; a ``str`` payload is encoded as UTF-8."""
    return _encode(payload)


def encode_messages(payloads) -> bytes:
    """The concatenation of :func:`encode_message` for each payload (e.g. header + proposal)."""
    return b"".join([_encode(payload) for payload in payloads])


def split_messages(buf, offset=0, *, max_size=MAX_MESSAGE_SIZE):
    """Every complete message from ``offset`` on, each without its trailing ``b"\\n"``."""
    cdef Py_buffer view
    cdef const unsigned char* data
    cdef Py_ssize_t size, pos, start, end
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
            if length == 0:
                raise NegotiationError("empty multistream message")
            if length > <uint64_t>(size - start):
                break
            end = start + <Py_ssize_t>length
            if data[end - 1] != 0x0A:
                raise NegotiationError("multistream message does not end with a newline")
            messages.append(PyBytes_FromStringAndSize(<char*>data + start, end - 1 - start))
            pos = end
        return messages, pos
    finally:
        PyBuffer_Release(&view)
