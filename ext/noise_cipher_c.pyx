# cython: language_level=3
"""Noise transport frames (seal and open): the compiled twin.

Same names, signatures, results, exception classes and messages as the pure reference
``aiolibp2p._accel.noise_cipher_py`` (read its docstrings for the contract).  What differs is
how the bytes move: the input is borrowed (``bytes`` in place, other buffers through
``PyObject_GetBuffer``), the output is one ``bytes`` object allocated at its final size, and
each frame is handed to the ``ChaCha20Poly1305`` object's ``encrypt_into`` / ``decrypt_into`` as
two memoryviews over those C buffers (``PyMemoryView_FromMemory``), so no frame is sliced or
copied in Python.  The 12-byte nonce lives in one bytearray per object, rewritten in place.
The AEAD itself is still ``cryptography``'s (called as a Python method; no OpenSSL linking).
"""

from cpython.buffer cimport (
    PyBUF_READ,
    PyBUF_SIMPLE,
    PyBUF_WRITE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cimport _uvarint as uv

from aiolibp2p.core.errors import DecryptError, LocalProtocolError, NonceExhausted

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAME_SIZE",
    "MAX_NONCE",
    "MAX_PLAINTEXT_SIZE",
    "TAG_SIZE",
    "FrameOpener",
    "FrameSealer",
]

HEADER_SIZE = 2
MAX_FRAME_SIZE = 65535
TAG_SIZE = 16
MAX_PLAINTEXT_SIZE = 65519
MAX_NONCE = 18446744073709551615  # 2**64 - 1

cdef enum:
    _HEADER = 2
    _TAG = 16
    _MAX_PLAIN = 65519
    _OVERHEAD = 18
    _KEEP_PENDING = 4096  # a pending buffer larger than this is freed once its frame completes

cdef str _BROKEN = "the noise transport failed earlier and accepts no more data"


cdef object _check_counter(str name, object value, object upper):
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > upper:
        raise LocalProtocolError(f"{name} {value} out of range [0, {upper}]")
    return value


cdef int _check_aead(object aead, str method) except -1:
    if not callable(getattr(aead, method, None)):
        raise LocalProtocolError(
            f"aead must be a ChaCha20Poly1305 object (with {method}()), not {type(aead).__name__}"
        )
    return 0


cdef inline void _write_nonce(unsigned char* p, uint64_t n) noexcept nogil:
    """Bytes 4..11 of the 12-byte nonce: the counter, little-endian (bytes 0..3 stay zero)."""
    cdef int i
    for i in range(8):
        p[4 + i] = <unsigned char>(n >> (8 * i))


cdef inline bytes _nonce_bytes(uint64_t n):
    cdef bytes result = PyBytes_FromStringAndSize(NULL, 12)
    cdef unsigned char* p = <unsigned char*>PyBytes_AS_STRING(result)
    p[0] = p[1] = p[2] = p[3] = 0
    _write_nonce(p, n)
    return result


cdef inline Py_ssize_t _frame_count(Py_ssize_t size) noexcept nogil:
    return (size + _MAX_PLAIN - 1) // _MAX_PLAIN


cdef class FrameSealer:
    """Encrypts outgoing data into Noise transport frames with one key (one direction)."""

    cdef object _aead
    cdef object _encrypt
    cdef object _encrypt_into
    cdef bytearray _nonce_buf
    cdef unsigned char* _nonce_ptr
    cdef uint64_t _nonce
    cdef uint64_t _max_nonce

    def __init__(self, aead, nonce=0, max_nonce=MAX_NONCE):
        _check_aead(aead, "encrypt")
        max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        nonce = _check_counter("nonce", nonce, max_nonce)
        self._max_nonce = max_nonce
        self._nonce = nonce
        self._aead = aead
        self._encrypt = aead.encrypt
        self._encrypt_into = getattr(aead, "encrypt_into", None)
        self._nonce_buf = bytearray(12)
        self._nonce_ptr = <unsigned char*>PyByteArray_AS_STRING(self._nonce_buf)

    @property
    def nonce(self):
        """The counter the next frame will use (the number of frames sealed so far)."""
        return self._nonce

    @property
    def max_nonce(self):
        """The counter limit: at most ``max_nonce - nonce`` more frames can be sealed."""
        return self._max_nonce

    def seal(self, data):
        """Encrypt ``data`` as frames of at most ``MAX_PLAINTEXT_SIZE`` plaintext bytes."""
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t size, frames
        cdef bytes result
        uv.borrow(data, &view, &src, &size)
        try:
            if size == 0:
                return b""
            frames = _frame_count(size)
            self._reserve(frames)
            result = PyBytes_FromStringAndSize(NULL, size + frames * _OVERHEAD)
            self._seal_into(src, size, <unsigned char*>PyBytes_AS_STRING(result))
            return result
        finally:
            PyBuffer_Release(&view)

    def seal_many(self, chunks):
        """Seal each buffer of ``chunks`` as its own frame(s), all in one output buffer."""
        cdef list items = list(chunks)
        cdef Py_ssize_t count = len(items)
        cdef Py_ssize_t got = 0, i, frames = 0, total = 0, pos = 0
        cdef Py_buffer* views = <Py_buffer*>PyMem_Malloc((count if count else 1) * sizeof(Py_buffer))
        cdef bytes result
        cdef unsigned char* out
        if views == NULL:
            raise MemoryError()
        try:
            for i in range(count):
                PyObject_GetBuffer(items[i], &views[i], PyBUF_SIMPLE)
                got += 1
                frames += _frame_count(views[i].len)
                total += views[i].len
            if frames == 0:
                return b""
            self._reserve(frames)
            result = PyBytes_FromStringAndSize(NULL, total + frames * _OVERHEAD)
            out = <unsigned char*>PyBytes_AS_STRING(result)
            for i in range(count):
                pos += self._seal_into(
                    <const unsigned char*>views[i].buf, views[i].len, out + pos
                )
            return result
        finally:
            for i in range(got):
                PyBuffer_Release(&views[i])
            PyMem_Free(views)

    cdef int _reserve(self, Py_ssize_t frames) except -1:
        if <uint64_t>frames > self._max_nonce - self._nonce:
            raise NonceExhausted(
                f"noise send nonce exhausted: {frames} frame(s) at nonce {self._nonce} "
                f"would reach the limit of {self._max_nonce}"
            )
        return 0

    cdef Py_ssize_t _seal_into(
        self, const unsigned char* src, Py_ssize_t size, unsigned char* out
    ) except -1:
        """Seal ``src[:size]`` at ``out``; returns the bytes written."""
        cdef Py_ssize_t start = 0, pos = 0, n, length
        cdef uint64_t nonce
        cdef object sealed
        while start < size:
            n = size - start
            if n > _MAX_PLAIN:
                n = _MAX_PLAIN
            length = n + _TAG
            nonce = self._nonce
            self._nonce = nonce + 1  # a nonce is spent even if the cipher fails
            out[pos] = <unsigned char>(length >> 8)
            out[pos + 1] = <unsigned char>(length & 0xFF)
            pos += _HEADER
            if self._encrypt_into is not None:
                _write_nonce(self._nonce_ptr, nonce)
                self._encrypt_into(
                    self._nonce_buf,
                    PyMemoryView_FromMemory(<char*>src + start, n, PyBUF_READ),
                    None,
                    PyMemoryView_FromMemory(<char*>out + pos, length, PyBUF_WRITE),
                )
            else:
                sealed = self._encrypt(
                    _nonce_bytes(nonce),
                    PyMemoryView_FromMemory(<char*>src + start, n, PyBUF_READ),
                    None,
                )
                if not isinstance(sealed, bytes) or PyBytes_GET_SIZE(sealed) != length:
                    raise LocalProtocolError(f"aead returned {len(sealed)} bytes, not {length}")
                memcpy(out + pos, PyBytes_AS_STRING(sealed), length)
            pos += length
            start += n
        return pos


cdef class FrameOpener:
    """Decrypts incoming Noise transport frames with one key (one direction)."""

    cdef object _aead
    cdef object _decrypt
    cdef object _decrypt_into
    cdef bytearray _nonce_buf
    cdef unsigned char* _nonce_ptr
    cdef uint64_t _nonce
    cdef uint64_t _max_nonce
    cdef unsigned char* _pbuf  # the incomplete frame, header included
    cdef Py_ssize_t _plen
    cdef Py_ssize_t _pcap
    cdef bint _failed

    def __cinit__(self):
        self._pbuf = NULL
        self._plen = 0
        self._pcap = 0
        self._failed = False

    def __dealloc__(self):
        PyMem_Free(self._pbuf)

    def __init__(self, aead, nonce=0, max_nonce=MAX_NONCE):
        _check_aead(aead, "decrypt")
        max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        nonce = _check_counter("nonce", nonce, max_nonce)
        self._max_nonce = max_nonce
        self._nonce = nonce
        self._aead = aead
        self._decrypt = aead.decrypt
        self._decrypt_into = getattr(aead, "decrypt_into", None)
        self._nonce_buf = bytearray(12)
        self._nonce_ptr = <unsigned char*>PyByteArray_AS_STRING(self._nonce_buf)
        self._plen = 0
        self._failed = False

    @property
    def nonce(self):
        """The counter the next frame must carry (the number of frames opened so far)."""
        return self._nonce

    @property
    def max_nonce(self):
        """The counter limit: a frame at this counter is refused."""
        return self._max_nonce

    @property
    def pending(self):
        """How many bytes of an incomplete frame are buffered."""
        return self._plen

    def open(self, data):
        """Decrypt every complete frame of the buffered bytes followed by ``data``."""
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t size
        if self._failed:
            raise DecryptError(_BROKEN)
        uv.borrow(data, &view, &src, &size)
        try:
            return self._open(src, size)
        except BaseException:
            self._failed = True
            self._drop_pending()
            raise
        finally:
            PyBuffer_Release(&view)

    cdef void _drop_pending(self) noexcept:
        self._plen = 0
        if self._pcap > _KEEP_PENDING:
            PyMem_Free(self._pbuf)
            self._pbuf = NULL
            self._pcap = 0

    cdef int _grow(self, Py_ssize_t cap) except -1:
        cdef unsigned char* p
        if cap <= self._pcap:
            return 0
        p = <unsigned char*>PyMem_Realloc(self._pbuf, cap)
        if p == NULL:
            raise MemoryError()
        self._pbuf = p
        self._pcap = cap
        return 0

    cdef int _append(self, const unsigned char* src, Py_ssize_t n) except -1:
        self._grow(self._plen + n)
        memcpy(self._pbuf + self._plen, src, n)
        self._plen += n
        return 0

    cdef int _check_length(self, Py_ssize_t length) except -1:
        if length < _TAG:
            raise DecryptError(
                f"noise frame of {length} bytes is shorter than its {TAG_SIZE}-byte tag"
            )
        return 0

    cdef object _open(self, const unsigned char* src, Py_ssize_t size):
        cdef Py_ssize_t pos = 0, take, need, length, scan, count = 0, total = 0, written = 0
        cdef Py_ssize_t first_len = 0
        cdef bint have_first = False
        cdef bytes result
        cdef char* out
        if self._plen:
            if self._plen < _HEADER:
                take = _HEADER - self._plen
                if take > size:
                    take = size
                self._append(src, take)
                pos = take
                if self._plen < _HEADER:
                    return b""
                self._check_length((self._pbuf[0] << 8) | self._pbuf[1])
            length = (self._pbuf[0] << 8) | self._pbuf[1]
            self._grow(_HEADER + length)
            need = _HEADER + length - self._plen
            take = need if need <= size - pos else size - pos
            self._append(src + pos, take)
            pos += take
            if take < need:
                return b""
            have_first = True
            first_len = length
            total = length - _TAG
        # Scan: check every complete header, find the complete frames.
        scan = pos
        while size - scan >= _HEADER:
            length = (src[scan] << 8) | src[scan + 1]
            self._check_length(length)
            if size - scan - _HEADER < length:
                break
            count += 1
            total += length - _TAG
            scan += _HEADER + length
        if <uint64_t>(count + have_first) > self._max_nonce - self._nonce:
            raise DecryptError(
                f"noise receive nonce exhausted: the peer sent frames past the limit of "
                f"{self._max_nonce}"
            )
        result = PyBytes_FromStringAndSize(NULL, total)
        out = PyBytes_AS_STRING(result)
        if have_first:
            written = self._open_frame(self._pbuf + _HEADER, first_len, out, written)
            self._drop_pending()
        while pos < scan:
            length = (src[pos] << 8) | src[pos + 1]
            written = self._open_frame(src + pos + _HEADER, length, out, written)
            pos += _HEADER + length
        if scan < size:  # keep the incomplete last frame (its length is already checked)
            length = size - scan
            if length >= _HEADER:
                self._grow(_HEADER + ((src[scan] << 8) | src[scan + 1]))
            self._append(src + scan, length)
        return result

    cdef Py_ssize_t _open_frame(
        self, const unsigned char* frame, Py_ssize_t length, char* out, Py_ssize_t pos
    ) except -1:
        """Open the frame body ``frame[:length]`` into ``out + pos``; returns the new end."""
        cdef Py_ssize_t n = length - _TAG
        cdef uint64_t nonce = self._nonce
        cdef object opened
        try:
            if self._decrypt_into is not None:
                _write_nonce(self._nonce_ptr, nonce)
                self._decrypt_into(
                    self._nonce_buf,
                    PyMemoryView_FromMemory(<char*>frame, length, PyBUF_READ),
                    None,
                    PyMemoryView_FromMemory(out + pos, n, PyBUF_WRITE),
                )
            else:
                opened = self._decrypt(
                    _nonce_bytes(nonce),
                    PyMemoryView_FromMemory(<char*>frame, length, PyBUF_READ),
                    None,
                )
                if not isinstance(opened, bytes) or PyBytes_GET_SIZE(opened) != n:
                    raise LocalProtocolError(f"aead returned {len(opened)} bytes, not {n}")
                memcpy(out + pos, PyBytes_AS_STRING(opened), n)
        except Exception as exc:
            from cryptography.exceptions import InvalidTag

            if isinstance(exc, InvalidTag):
                raise DecryptError(f"noise frame at nonce {nonce} failed authentication") from None
            raise
        self._nonce = nonce + 1
        return pos + n
