# cython: language_level=3
"""Shared C-level helpers for the compiled twins: uvarint primitives, buffer borrowing, checks.

Every function here is ``cdef inline``: each ``.pyx`` that does ``cimport _uvarint`` (found
through setup.py's ``include_path=["ext"]``) compiles its own copy, so no extension module
imports another at run time.  The error paths import the exception classes from
``aiolibp2p.core.errors`` (the same classes the pure twins raise) and use the pure twins'
messages word for word.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport uint64_t

cdef enum:
    UVARINT_MAX_LEN = 9
    UVARINT_INCOMPLETE = -1
    UVARINT_TOO_LONG = -2
    UVARINT_NON_MINIMAL = -3

cdef extern from *:
    """
    #define AIOLIBP2P_BUFFER_CLEAR(view) ((view)->obj = NULL)
    """
    void buffer_clear "AIOLIBP2P_BUFFER_CLEAR"(Py_buffer* view) noexcept nogil


cdef inline Py_ssize_t uvarint_decode(
    const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, uint64_t* value
) noexcept nogil:
    """Decode the uvarint at ``data[pos:end]``.

    Returns the offset past it (and stores the value), or ``UVARINT_INCOMPLETE``,
    ``UVARINT_TOO_LONG`` or ``UVARINT_NON_MINIMAL``.  9 groups of 7 bits cannot exceed 2**63 - 1,
    so "too long" is the only overflow.
    """
    cdef uint64_t result = 0
    cdef unsigned int shift = 0
    cdef Py_ssize_t start = pos
    cdef unsigned char byte
    while pos < end:
        byte = data[pos]
        pos += 1
        if byte < 0x80:
            if byte == 0 and pos - start > 1:
                return UVARINT_NON_MINIMAL
            value[0] = result | ((<uint64_t>byte) << shift)
            return pos
        if pos - start == UVARINT_MAX_LEN:
            return UVARINT_TOO_LONG
        result |= (<uint64_t>(byte & 0x7F)) << shift
        shift += 7
    return UVARINT_INCOMPLETE


cdef inline int uvarint_raise(Py_ssize_t code) except -1:
    """Raise the ``VarintError`` for a negative ``uvarint_decode`` result (not INCOMPLETE)."""
    from aiolibp2p.core.errors import VarintError
    if code == UVARINT_TOO_LONG:
        raise VarintError("uvarint longer than 9 bytes")
    raise VarintError("non-minimal uvarint encoding")


cdef inline Py_ssize_t uvarint_len(uint64_t value) noexcept nogil:
    cdef Py_ssize_t n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline Py_ssize_t uvarint_write(uint64_t value, unsigned char* out) noexcept nogil:
    """Write the minimal encoding of ``value`` at ``out``; returns its length (at most 9)."""
    cdef Py_ssize_t n = 0
    while value >= 0x80:
        out[n] = <unsigned char>((value & 0x7F) | 0x80)
        value >>= 7
        n += 1
    out[n] = <unsigned char>value
    return n + 1


cdef inline uint64_t check_value(object value) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` as a uvarint (an int in [0, 2**63 - 1]), else ``LocalProtocolError``."""
    cdef int overflow = 0
    cdef long long v
    if isinstance(value, int):
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0 and v >= 0:
            return <uint64_t>v
    from aiolibp2p.core.errors import LocalProtocolError
    if not isinstance(value, int):
        raise LocalProtocolError(f"uvarint value must be an int, not {type(value).__name__}")
    raise LocalProtocolError(f"uvarint value {value} out of range [0, 2**63 - 1]")


cdef inline Py_ssize_t check_offset(object offset, Py_ssize_t size) except -1:
    """``offset`` as an index in ``[0, size]``, else ``LocalProtocolError``."""
    cdef int overflow = 0
    cdef long long v = -1
    if isinstance(offset, int):
        v = PyLong_AsLongLongAndOverflow(offset, &overflow)
        if overflow == 0 and 0 <= v <= size:
            return <Py_ssize_t>v
    from aiolibp2p.core.errors import LocalProtocolError
    if not isinstance(offset, int):
        raise LocalProtocolError(f"offset must be an int, not {type(offset).__name__}")
    raise LocalProtocolError(f"offset {offset} out of range [0, {size}]")


cdef inline uint64_t check_max_size(object max_size) except? 0xFFFFFFFFFFFFFFFF:
    """``max_size`` (a non-negative int, clamped to 2**64 - 1), else ``LocalProtocolError``."""
    cdef int overflow = 0
    cdef long long v = -1
    if isinstance(max_size, int):
        v = PyLong_AsLongLongAndOverflow(max_size, &overflow)
        if overflow > 0:
            return 0xFFFFFFFFFFFFFFFF  # above any uvarint: no limit in effect
        if overflow == 0 and v >= 0:
            return <uint64_t>v
    from aiolibp2p.core.errors import LocalProtocolError
    if not isinstance(max_size, int):
        raise LocalProtocolError(f"max_size must be an int, not {type(max_size).__name__}")
    raise LocalProtocolError(f"max_size must not be negative, got {max_size}")


cdef inline int borrow(
    object buf, Py_buffer* view, const unsigned char** data, Py_ssize_t* size
) except -1:
    """Borrow ``buf``'s bytes without copying.

    ``bytes`` (immutable) is read in place; any other object is exported with
    ``PyObject_GetBuffer`` (C-contiguous, else ``BufferError``), which also stops a bytearray
    from being resized while we hold the pointer.  The caller MUST call ``PyBuffer_Release(view)``
    in a ``finally`` (a no-op when ``view.obj`` is NULL, as it is for ``bytes``).
    """
    buffer_clear(view)
    if PyBytes_CheckExact(buf):
        data[0] = <const unsigned char*>PyBytes_AS_STRING(buf)
        size[0] = PyBytes_GET_SIZE(buf)
        return 0
    PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
    data[0] = <const unsigned char*>view.buf
    size[0] = view.len
    return 0
