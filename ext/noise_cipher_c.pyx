# cython: language_level=3
"""Noise transport frames (seal and open): the compiled twin.

Same names, signatures, results, exception classes and messages as the pure reference
``aiolibp2p._accel.noise_cipher_py`` (read its docstrings for the contract).  What differs is
how the bytes move and who runs the AEAD:

* Given a 32-byte key, each sealer/opener owns one libcrypto ``EVP_CIPHER_CTX`` keyed once for
  ChaCha20-Poly1305; per frame it only sets the nonce, runs update/final and gets (seal) or sets
  (open) the tag, writing straight into the result ``bytes`` (allocated at its final size).
  libcrypto is found at import time with ``dlopen``/``dlsym`` (``LoadLibrary`` on Windows): the
  process's own ``libcrypto.so.3`` (or ``.so.1.1``; Python's ``_ssl`` has usually loaded it
  already), nothing is linked at build time and no OpenSSL header is used.  If no usable
  libcrypto is found, or it fails the RFC 8439 section 2.8.2 known-answer test run at import,
  importing this module raises ``ImportError`` and the selector falls back to the pure twin
  (``aiolibp2p.build_info()`` says why).  ``AIOLIBP2P_LIBCRYPTO`` names the library to use
  instead of the default list.
* Given a ``ChaCha20Poly1305`` object (the older form), each frame goes through the object's
  ``encrypt_into``/``decrypt_into`` (or ``encrypt``/``decrypt``) on memoryviews over the input
  and the result, as before.

Calls that seal or open at least 64 KiB of plaintext with a key release the GIL around the
libcrypto work.  Sharing one sealer or opener between threads is unsupported in both twins (the
frames' nonces would be raced); here a call on an object whose other call is running without the
GIL raises ``LocalProtocolError`` rather than touching its EVP context.
"""

import os
import sys

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
from libc.string cimport memcpy, memset

cimport _uvarint as uv

from aiolibp2p.core.errors import CryptoError, DecryptError, LocalProtocolError, NonceExhausted

__all__ = [
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAX_FRAME_SIZE",
    "MAX_NONCE",
    "MAX_PLAINTEXT_SIZE",
    "TAG_SIZE",
    "FrameOpener",
    "FrameSealer",
]

HEADER_SIZE = 2
KEY_SIZE = 32
MAX_FRAME_SIZE = 65535
TAG_SIZE = 16
MAX_PLAINTEXT_SIZE = 65519
MAX_NONCE = 18446744073709551615  # 2**64 - 1

cdef enum:
    _HEADER = 2
    _KEY = 32
    _TAG = 16
    _MAX_PLAIN = 65519
    _OVERHEAD = 18
    _KEEP_PENDING = 4096  # a pending buffer larger than this is freed once its frame completes
    _NOGIL_MIN = 65536  # plaintext bytes per call from which the GIL is released

cdef str _BROKEN = "the noise transport failed earlier and accepts no more data"


# --- libcrypto, bound at import ---------------------------------------------------------------

cdef extern from *:
    """
    #if defined(_WIN32)
    #include <windows.h>
    static void *aiolibp2p_lib_open(const char *name) {
        return name == NULL ? NULL : (void *)LoadLibraryA(name);
    }
    static void *aiolibp2p_lib_sym(void *lib, const char *name) {
        return (void *)GetProcAddress((HMODULE)lib, name);
    }
    #else
    #include <dlfcn.h>
    static void *aiolibp2p_lib_open(const char *name) {
        return dlopen(name, RTLD_NOW | RTLD_LOCAL);  /* NULL: the process image */
    }
    static void *aiolibp2p_lib_sym(void *lib, const char *name) {
        return dlsym(lib, name);
    }
    #endif
    """
    void* lib_open "aiolibp2p_lib_open"(const char* name) noexcept nogil
    void* lib_sym "aiolibp2p_lib_sym"(void* lib, const char* name) noexcept nogil

# The EVP functions used, declared by hand (OpenSSL 1.1.1 and 3.x share these signatures).
ctypedef void* (*ctx_new_f)() noexcept nogil
ctypedef void (*ctx_free_f)(void* ctx) noexcept nogil
ctypedef const void* (*cipher_f)() noexcept nogil
ctypedef int (*init_f)(
    void* ctx, const void* cipher, void* engine, const unsigned char* key,
    const unsigned char* iv, int enc
) noexcept nogil
ctypedef int (*ctrl_f)(void* ctx, int type, int arg, void* ptr) noexcept nogil
ctypedef int (*update_f)(
    void* ctx, unsigned char* out, int* outl, const unsigned char* data, int inl
) noexcept nogil
ctypedef int (*final_f)(void* ctx, unsigned char* out, int* outl) noexcept nogil
ctypedef void (*clear_f)() noexcept nogil

cdef enum:
    _CTRL_AEAD_GET_TAG = 0x10  # EVP_CTRL_AEAD_GET_TAG
    _CTRL_AEAD_SET_TAG = 0x11  # EVP_CTRL_AEAD_SET_TAG

cdef ctx_new_f EVP_CIPHER_CTX_new = NULL
cdef ctx_free_f EVP_CIPHER_CTX_free = NULL
cdef cipher_f EVP_chacha20_poly1305 = NULL
cdef init_f EVP_CipherInit_ex = NULL
cdef ctrl_f EVP_CIPHER_CTX_ctrl = NULL
cdef update_f EVP_CipherUpdate = NULL
cdef final_f EVP_CipherFinal_ex = NULL
cdef clear_f ERR_clear_error = NULL

# RFC 8439 section 2.8.2, "Example and Test Vector for AEAD_CHACHA20_POLY1305".
cdef bytes _KAT_KEY = bytes(range(0x80, 0xA0))
cdef bytes _KAT_NONCE = bytes.fromhex("070000004041424344454647")
cdef bytes _KAT_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
cdef bytes _KAT_PLAIN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
cdef bytes _KAT_SEALED = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
    "1ae10b594f09e26a7e902ecbd0600691"  # the tag
)


cdef void* _need(void* lib, const char* name, list missing):
    cdef void* p = lib_sym(lib, name)
    if p == NULL:
        missing.append(name.decode())
    return p


cdef str _bind(object name):
    """Bind the EVP functions from library ``name`` (``None``: the process image) and run the
    known-answer test; returns ``None`` on success, else why not."""
    cdef bytes raw = None if name is None else os.fsencode(name)
    cdef const char* cname = NULL
    cdef void* lib
    cdef list missing = []
    global EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free, EVP_chacha20_poly1305, EVP_CipherInit_ex
    global EVP_CIPHER_CTX_ctrl, EVP_CipherUpdate, EVP_CipherFinal_ex, ERR_clear_error
    if raw is not None:
        cname = raw
    lib = lib_open(cname)
    if lib == NULL:
        return "not found"
    EVP_CIPHER_CTX_new = <ctx_new_f>_need(lib, b"EVP_CIPHER_CTX_new", missing)
    EVP_CIPHER_CTX_free = <ctx_free_f>_need(lib, b"EVP_CIPHER_CTX_free", missing)
    EVP_chacha20_poly1305 = <cipher_f>_need(lib, b"EVP_chacha20_poly1305", missing)
    EVP_CipherInit_ex = <init_f>_need(lib, b"EVP_CipherInit_ex", missing)
    EVP_CIPHER_CTX_ctrl = <ctrl_f>_need(lib, b"EVP_CIPHER_CTX_ctrl", missing)
    EVP_CipherUpdate = <update_f>_need(lib, b"EVP_CipherUpdate", missing)
    EVP_CipherFinal_ex = <final_f>_need(lib, b"EVP_CipherFinal_ex", missing)
    ERR_clear_error = <clear_f>_need(lib, b"ERR_clear_error", missing)
    if missing:
        EVP_CIPHER_CTX_new = NULL
        return "lacks " + ", ".join(missing)
    try:
        if _aead_seal(_KAT_KEY, _KAT_NONCE, _KAT_AAD, _KAT_PLAIN) != _KAT_SEALED:
            raise CryptoError("wrong ciphertext")
        if _aead_open(_KAT_KEY, _KAT_NONCE, _KAT_AAD, _KAT_SEALED) != _KAT_PLAIN:
            raise CryptoError("wrong plaintext")
        try:
            _aead_open(_KAT_KEY, _KAT_NONCE, b"", _KAT_SEALED)
        except DecryptError:
            pass
        else:
            raise CryptoError("accepted a message with the wrong AAD")
    except Exception as exc:
        EVP_CIPHER_CTX_new = NULL
        return f"failed the RFC 8439 2.8.2 test ({exc})"
    return None


def _candidates():
    """Where to look for libcrypto, in order (``None``: the symbols the process already has)."""
    override = os.environ.get("AIOLIBP2P_LIBCRYPTO")
    if override:
        return [override]
    if sys.platform == "win32":
        names = [
            "libcrypto-3-x64.dll", "libcrypto-3.dll", "libcrypto-1_1-x64.dll", "libcrypto-1_1.dll"
        ]
        return [os.path.join(sys.base_prefix, "DLLs", n) for n in names] + names
    if sys.platform == "darwin":  # never a bare "libcrypto.dylib": macOS aborts on its own
        names = ["libcrypto.3.dylib", "libcrypto.1.1.dylib"]
        return [os.path.join(sys.base_prefix, "lib", n) for n in names] + names
    return ["libcrypto.so.3", "libcrypto.so.1.1", None]


def _load():
    tried = []
    for name in _candidates():
        why = _bind(name)
        if why is None:
            return name if name is not None else "the process image"
        tried.append(f"{name if name is not None else 'the process image'}: {why}")
    raise ImportError(
        "aiolibp2p._accel.noise_cipher_c: no usable libcrypto with ChaCha20-Poly1305 ("
        + "; ".join(tried) + ")"
    )


# --- one AEAD message on an EVP context ---------------------------------------------------------

cdef void* _new_ctx(const unsigned char* key, int enc) except NULL:
    """A context keyed for ChaCha20-Poly1305 (``enc`` 1: seal, 0: open); nonce set per message."""
    cdef void* ctx = EVP_CIPHER_CTX_new()
    if ctx == NULL:
        raise MemoryError()
    if EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, enc) != 1:
        EVP_CIPHER_CTX_free(ctx)
        ERR_clear_error()
        raise CryptoError("libcrypto EVP_CipherInit_ex failed to set the ChaCha20-Poly1305 key")
    return ctx


cdef inline int _evp_seal(
    void* ctx, const unsigned char* nonce, const unsigned char* aad, int aad_len,
    const unsigned char* src, int n, unsigned char* out
) noexcept nogil:
    """Write the ciphertext of ``src[:n]`` and its tag at ``out``; 0, or -1 if libcrypto failed."""
    cdef int outl = 0
    if EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, -1) != 1:
        return -1
    if aad_len and EVP_CipherUpdate(ctx, NULL, &outl, aad, aad_len) != 1:
        return -1
    if n and (EVP_CipherUpdate(ctx, out, &outl, src, n) != 1 or outl != n):
        return -1
    if EVP_CipherFinal_ex(ctx, out + n, &outl) != 1 or outl != 0:
        return -1
    if EVP_CIPHER_CTX_ctrl(ctx, _CTRL_AEAD_GET_TAG, _TAG, out + n) != 1:
        return -1
    return 0


cdef inline int _evp_open(
    void* ctx, const unsigned char* nonce, const unsigned char* aad, int aad_len,
    const unsigned char* body, int n, unsigned char* out
) noexcept nogil:
    """Write the plaintext of ``body[:n]`` (its tag at ``body + n``) at ``out``.

    0, 1 if the tag is wrong (``out`` then holds unauthenticated bytes), -1 if libcrypto failed.
    """
    cdef int outl = 0
    if EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, -1) != 1:
        return -1
    if aad_len and EVP_CipherUpdate(ctx, NULL, &outl, aad, aad_len) != 1:
        return -1
    if n and (EVP_CipherUpdate(ctx, out, &outl, body, n) != 1 or outl != n):
        return -1
    if EVP_CIPHER_CTX_ctrl(ctx, _CTRL_AEAD_SET_TAG, _TAG, <void*>(body + n)) != 1:
        return -1
    if EVP_CipherFinal_ex(ctx, out + n, &outl) != 1:
        ERR_clear_error()
        return 1
    return 0


cdef object _one_shot(bint seal, bytes key, bytes nonce, bytes aad, bytes data):
    cdef Py_ssize_t n = len(data) - (0 if seal else _TAG)
    cdef bytes result
    cdef void* ctx
    cdef int rc
    if len(key) != _KEY or len(nonce) != 12 or n < 0 or n > _MAX_PLAIN or len(aad) > 65535:
        raise LocalProtocolError("bad key, nonce, aad or data length")
    result = PyBytes_FromStringAndSize(NULL, n + (_TAG if seal else 0))
    ctx = _new_ctx(<const unsigned char*>PyBytes_AS_STRING(key), 1 if seal else 0)
    try:
        if seal:
            rc = _evp_seal(
                ctx, <const unsigned char*>PyBytes_AS_STRING(nonce),
                <const unsigned char*>PyBytes_AS_STRING(aad), <int>len(aad),
                <const unsigned char*>PyBytes_AS_STRING(data), <int>n,
                <unsigned char*>PyBytes_AS_STRING(result),
            )
        else:
            rc = _evp_open(
                ctx, <const unsigned char*>PyBytes_AS_STRING(nonce),
                <const unsigned char*>PyBytes_AS_STRING(aad), <int>len(aad),
                <const unsigned char*>PyBytes_AS_STRING(data), <int>n,
                <unsigned char*>PyBytes_AS_STRING(result),
            )
    finally:
        EVP_CIPHER_CTX_free(ctx)
    if rc == 1:
        raise DecryptError("authentication failed")
    if rc != 0:
        ERR_clear_error()
        raise CryptoError("libcrypto ChaCha20-Poly1305 failed")
    return result


def _aead_seal(bytes key, bytes nonce, bytes aad, bytes data):
    """ChaCha20-Poly1305 of one message through the bound libcrypto (for tests): ct || tag."""
    return _one_shot(True, key, nonce, aad, data)


def _aead_open(bytes key, bytes nonce, bytes aad, bytes data):
    """The inverse of :func:`_aead_seal`; ``DecryptError`` if the tag is wrong (for tests)."""
    return _one_shot(False, key, nonce, aad, data)


#: Which libcrypto the EVP functions come from (a name or path, or "the process image").
_LIBCRYPTO = _load()


# --- argument checks ---------------------------------------------------------------------------

cdef object _check_counter(str name, object value, object upper):
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > upper:
        raise LocalProtocolError(f"{name} {value} out of range [0, {upper}]")
    return value


cdef bytes _check_key(object key, str method):
    """The 32 key bytes, or ``None`` if ``key`` is a ChaCha20Poly1305-like object."""
    cdef bytes raw
    if isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
        if len(raw) != _KEY:
            raise LocalProtocolError(f"key must be {KEY_SIZE} bytes, not {len(raw)}")
        return raw
    if not callable(getattr(key, method, None)):
        raise LocalProtocolError(
            f"key must be {KEY_SIZE} bytes or a ChaCha20Poly1305 object (with {method}()), "
            f"not {type(key).__name__}"
        )
    return None


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


cdef inline Py_ssize_t _start_frame(
    unsigned char* nonce, uint64_t* counter, unsigned char* header, Py_ssize_t n
) noexcept nogil:
    """Spend the next nonce and write the 2-byte length of an ``n``-byte frame's ciphertext
    at ``header``; returns that length."""
    cdef Py_ssize_t length = n + _TAG
    _write_nonce(nonce, counter[0])
    counter[0] += 1
    header[0] = <unsigned char>(length >> 8)
    header[1] = <unsigned char>(length & 0xFF)
    return length


cdef Py_ssize_t _seal_frames(
    void* ctx, unsigned char* nonce, uint64_t* counter,
    const unsigned char* src, Py_ssize_t size, unsigned char* out
) noexcept nogil:
    """Seal ``src[:size]`` as frames at ``out``; the bytes written, or -1 if libcrypto failed.

    ``counter`` advances per frame before its cipher runs (a nonce is spent even if it fails).
    """
    cdef Py_ssize_t start = 0, pos = 0, n, length
    while start < size:
        n = size - start
        if n > _MAX_PLAIN:
            n = _MAX_PLAIN
        length = _start_frame(nonce, counter, out + pos, n)
        pos += _HEADER
        if _evp_seal(ctx, nonce, NULL, 0, src + start, <int>n, out + pos) != 0:
            return -1
        pos += length
        start += n
    return pos


cdef class FrameSealer:
    """Encrypts outgoing data into Noise transport frames with one key (one direction)."""

    cdef void* _ctx  # the EVP context when built from key bytes, else NULL
    cdef unsigned char _nonce_raw[12]
    cdef object _aead  # the ChaCha20Poly1305 object when built from one, else None
    cdef object _encrypt
    cdef object _encrypt_into
    cdef bytearray _nonce_buf
    cdef unsigned char* _nonce_ptr
    cdef uint64_t _nonce
    cdef uint64_t _max_nonce
    cdef bint _busy

    def __cinit__(self):
        self._ctx = NULL
        memset(self._nonce_raw, 0, 12)
        self._busy = False

    def __dealloc__(self):
        if self._ctx != NULL:
            EVP_CIPHER_CTX_free(self._ctx)

    def __init__(self, key, nonce=0, max_nonce=MAX_NONCE):
        cdef bytes raw
        cdef void* ctx
        self._enter()
        raw = _check_key(key, "encrypt")
        max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        nonce = _check_counter("nonce", nonce, max_nonce)
        if raw is not None:
            ctx = _new_ctx(<const unsigned char*>PyBytes_AS_STRING(raw), 1)
            if self._ctx != NULL:
                EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = ctx
            self._aead = self._encrypt = self._encrypt_into = None
        else:
            if self._ctx != NULL:
                EVP_CIPHER_CTX_free(self._ctx)
                self._ctx = NULL
            self._aead = key
            self._encrypt = key.encrypt
            self._encrypt_into = getattr(key, "encrypt_into", None)
            self._nonce_buf = bytearray(12)
            self._nonce_ptr = <unsigned char*>PyByteArray_AS_STRING(self._nonce_buf)
        self._max_nonce = max_nonce
        self._nonce = nonce

    @property
    def nonce(self):
        """The counter the next frame will use (the number of frames sealed so far)."""
        return self._nonce

    @property
    def max_nonce(self):
        """The counter limit: at most ``max_nonce - nonce`` more frames can be sealed."""
        return self._max_nonce

    cdef inline int _enter(self) except -1:
        if self._busy:
            raise LocalProtocolError("FrameSealer is in use by another thread")
        return 0

    def seal(self, data):
        """Encrypt ``data`` as frames of at most ``MAX_PLAINTEXT_SIZE`` plaintext bytes."""
        return self._seal_one(data)

    cdef object _seal_one(self, data):
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t size, frames
        cdef bytes result
        cdef unsigned char* out
        self._enter()
        uv.borrow(data, &view, &src, &size)
        try:
            if size == 0:
                return b""
            frames = _frame_count(size)
            self._reserve(frames)
            result = PyBytes_FromStringAndSize(NULL, size + frames * _OVERHEAD)
            out = <unsigned char*>PyBytes_AS_STRING(result)
            if self._ctx == NULL:
                self._seal_aead(src, size, out)
            else:
                self._seal_evp(_SEAL_ONE, src, NULL, 0, size, out)
            return result
        finally:
            PyBuffer_Release(&view)

    def seal_many(self, chunks):
        """Seal each buffer of ``chunks`` as its own frame(s), all in one output buffer."""
        cdef list items
        cdef Py_ssize_t count, i, frames = 0, total = 0, pos = 0
        cdef Py_buffer* views
        cdef bytes result
        cdef unsigned char* out
        self._enter()
        items = list(chunks)
        count = len(items)
        views = _borrow_all(items, &total)
        try:
            for i in range(count):
                frames += _frame_count(views[i].len)
            if frames == 0:
                return b""
            self._reserve(frames)
            result = PyBytes_FromStringAndSize(NULL, total + frames * _OVERHEAD)
            out = <unsigned char*>PyBytes_AS_STRING(result)
            if self._ctx == NULL:
                for i in range(count):
                    pos += self._seal_aead(
                        <const unsigned char*>views[i].buf, views[i].len, out + pos
                    )
            else:
                self._seal_evp(_SEAL_EACH, NULL, views, count, total, out)
            return result
        finally:
            _release_all(views, count)

    def seal_gather(self, parts):
        """Seal the concatenation of the buffers of ``parts``: the frames of
        ``seal(b"".join(parts))``, without joining them first."""
        cdef list items
        cdef Py_ssize_t count, i, frames, total = 0
        cdef Py_buffer* views
        cdef bytes result
        cdef unsigned char* out
        self._enter()
        items = parts if type(parts) is list else list(parts)
        count = len(items)
        if count == 1:
            return self._seal_one(items[0])
        views = _borrow_all(items, &total)
        try:
            if total == 0:
                return b""
            if self._ctx == NULL:  # the AEAD object takes one buffer per frame: join
                return self._seal_one(b"".join([
                    PyMemoryView_FromMemory(<char*>views[i].buf, views[i].len, PyBUF_READ)
                    for i in range(count)
                ]))
            frames = _frame_count(total)
            self._reserve(frames)
            result = PyBytes_FromStringAndSize(NULL, total + frames * _OVERHEAD)
            out = <unsigned char*>PyBytes_AS_STRING(result)
            self._seal_evp(_SEAL_JOINED, NULL, views, count, total, out)
            return result
        finally:
            _release_all(views, count)

    cdef int _seal_evp(
        self, int mode, const unsigned char* src, Py_buffer* views, Py_ssize_t count,
        Py_ssize_t total, unsigned char* out
    ) except -1:
        """Seal ``total`` plaintext bytes at ``out`` with the EVP context (``mode`` as in
        :func:`_seal_mode`), without the GIL from ``_NOGIL_MIN`` bytes; advances the nonce."""
        cdef void* ctx = self._ctx
        cdef uint64_t counter = self._nonce
        cdef Py_ssize_t written
        if total >= _NOGIL_MIN:
            self._busy = True
            with nogil:
                written = _seal_mode(
                    ctx, self._nonce_raw, &counter, mode, src, views, count, total, out
                )
            self._busy = False
        else:
            written = _seal_mode(
                ctx, self._nonce_raw, &counter, mode, src, views, count, total, out
            )
        self._nonce = counter
        if written < 0:
            self._fail()
        return 0

    cdef int _fail(self) except -1:
        ERR_clear_error()
        raise CryptoError(f"libcrypto failed to seal the noise frame at nonce {self._nonce - 1}")

    cdef int _reserve(self, Py_ssize_t frames) except -1:
        if <uint64_t>frames > self._max_nonce - self._nonce:
            raise NonceExhausted(
                f"noise send nonce exhausted: {frames} frame(s) at nonce {self._nonce} "
                f"would reach the limit of {self._max_nonce}"
            )
        return 0

    cdef Py_ssize_t _seal_aead(
        self, const unsigned char* src, Py_ssize_t size, unsigned char* out
    ) except -1:
        """Seal ``src[:size]`` at ``out`` with the AEAD object; returns the bytes written."""
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


cdef enum:
    _SEAL_ONE = 0  # the buffer ``src`` of ``total`` bytes
    _SEAL_EACH = 1  # each of the ``count`` views as its own frame(s)
    _SEAL_JOINED = 2  # the concatenation of the ``count`` views (``total`` bytes)


cdef Py_ssize_t _seal_mode(
    void* ctx, unsigned char* nonce, uint64_t* counter, int mode, const unsigned char* src,
    Py_buffer* views, Py_ssize_t count, Py_ssize_t total, unsigned char* out
) noexcept nogil:
    if mode == _SEAL_EACH:
        return _seal_views(ctx, nonce, counter, views, count, out)
    if mode == _SEAL_JOINED:
        return _seal_gather(ctx, nonce, counter, views, total, out)
    return _seal_frames(ctx, nonce, counter, src, total, out)


cdef Py_buffer* _borrow_all(list items, Py_ssize_t* total) except NULL:
    """The buffers of all ``items`` (their byte count added to ``total``); give them back with
    ``_release_all(views, len(items))``.  On error none is held."""
    cdef Py_ssize_t count = len(items), i, got = 0
    cdef Py_buffer* views = <Py_buffer*>PyMem_Malloc((count if count else 1) * sizeof(Py_buffer))
    if views == NULL:
        raise MemoryError()
    try:
        for i in range(count):
            PyObject_GetBuffer(items[i], &views[i], PyBUF_SIMPLE)
            got += 1
            total[0] += views[i].len
    except BaseException:
        _release_all(views, got)
        raise
    return views


cdef void _release_all(Py_buffer* views, Py_ssize_t count) noexcept:
    cdef Py_ssize_t i
    for i in range(count):
        PyBuffer_Release(&views[i])
    PyMem_Free(views)


cdef Py_ssize_t _seal_views(
    void* ctx, unsigned char* nonce, uint64_t* counter,
    Py_buffer* views, Py_ssize_t count, unsigned char* out
) noexcept nogil:
    cdef Py_ssize_t i, pos = 0, written
    for i in range(count):
        written = _seal_frames(
            ctx, nonce, counter, <const unsigned char*>views[i].buf, views[i].len, out + pos
        )
        if written < 0:
            return -1
        pos += written
    return pos


cdef Py_ssize_t _seal_gather(
    void* ctx, unsigned char* nonce, uint64_t* counter,
    Py_buffer* views, Py_ssize_t total, unsigned char* out
) noexcept nogil:
    """Seal the concatenation of the ``views`` (``total`` bytes) at ``out``, frames cut as
    :func:`_seal_frames` cuts one buffer: each frame's cipher is fed from every view it spans.
    The bytes written, or -1 if libcrypto failed; ``counter`` advances as in ``_seal_frames``."""
    cdef Py_ssize_t start = 0, pos = 0, n, length, left, piece, part = 0, offset = 0
    cdef unsigned char* body
    cdef int outl = 0
    while start < total:
        n = total - start
        if n > _MAX_PLAIN:
            n = _MAX_PLAIN
        length = _start_frame(nonce, counter, out + pos, n)
        pos += _HEADER
        if EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, -1) != 1:
            return -1
        body = out + pos
        left = n
        while left:
            piece = views[part].len - offset
            if piece <= 0:
                part += 1
                offset = 0
                continue
            if piece > left:
                piece = left
            if EVP_CipherUpdate(
                ctx, body, &outl, <const unsigned char*>views[part].buf + offset, <int>piece
            ) != 1 or outl != piece:
                return -1
            body += piece
            offset += piece
            left -= piece
        if EVP_CipherFinal_ex(ctx, out + pos + n, &outl) != 1 or outl != 0:
            return -1
        if EVP_CIPHER_CTX_ctrl(ctx, _CTRL_AEAD_GET_TAG, _TAG, out + pos + n) != 1:
            return -1
        pos += length
        start += n
    return pos


cdef enum:
    _OPEN_OK = 0
    _OPEN_BAD_TAG = 1
    _OPEN_FAILED = -1


cdef int _open_frames(
    void* ctx, unsigned char* nonce, uint64_t* counter,
    const unsigned char* first, Py_ssize_t first_len,
    const unsigned char* src, Py_ssize_t pos, Py_ssize_t end, unsigned char* out
) noexcept nogil:
    """Open the frame body ``first[:first_len]`` (if ``first``), then the frames of
    ``src[pos:end]`` (each header already checked), writing the plaintexts at ``out``.

    ``counter`` advances past each frame that opened; on failure it is the failing frame's nonce.
    """
    cdef Py_ssize_t length, n
    cdef int rc
    if first != NULL:
        n = first_len - _TAG
        _write_nonce(nonce, counter[0])
        rc = _evp_open(ctx, nonce, NULL, 0, first, <int>n, out)
        if rc != _OPEN_OK:
            return rc
        counter[0] += 1
        out += n
    while pos < end:
        length = (src[pos] << 8) | src[pos + 1]
        n = length - _TAG
        _write_nonce(nonce, counter[0])
        rc = _evp_open(ctx, nonce, NULL, 0, src + pos + _HEADER, <int>n, out)
        if rc != _OPEN_OK:
            return rc
        counter[0] += 1
        out += n
        pos += _HEADER + length
    return _OPEN_OK


cdef class FrameOpener:
    """Decrypts incoming Noise transport frames with one key (one direction)."""

    cdef void* _ctx  # the EVP context when built from key bytes, else NULL
    cdef unsigned char _nonce_raw[12]
    cdef object _aead  # the ChaCha20Poly1305 object when built from one, else None
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
    cdef bint _busy

    def __cinit__(self):
        self._ctx = NULL
        memset(self._nonce_raw, 0, 12)
        self._pbuf = NULL
        self._plen = 0
        self._pcap = 0
        self._failed = False
        self._busy = False

    def __dealloc__(self):
        PyMem_Free(self._pbuf)
        if self._ctx != NULL:
            EVP_CIPHER_CTX_free(self._ctx)

    def __init__(self, key, nonce=0, max_nonce=MAX_NONCE):
        cdef bytes raw
        cdef void* ctx
        self._enter()
        raw = _check_key(key, "decrypt")
        max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        nonce = _check_counter("nonce", nonce, max_nonce)
        if raw is not None:
            ctx = _new_ctx(<const unsigned char*>PyBytes_AS_STRING(raw), 0)
            if self._ctx != NULL:
                EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = ctx
            self._aead = self._decrypt = self._decrypt_into = None
        else:
            if self._ctx != NULL:
                EVP_CIPHER_CTX_free(self._ctx)
                self._ctx = NULL
            self._aead = key
            self._decrypt = key.decrypt
            self._decrypt_into = getattr(key, "decrypt_into", None)
            self._nonce_buf = bytearray(12)
            self._nonce_ptr = <unsigned char*>PyByteArray_AS_STRING(self._nonce_buf)
        self._max_nonce = max_nonce
        self._nonce = nonce
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

    cdef inline int _enter(self) except -1:
        if self._busy:
            raise LocalProtocolError("FrameOpener is in use by another thread")
        return 0

    def open(self, data):
        """Decrypt every complete frame of the buffered bytes followed by ``data``."""
        cdef Py_buffer view
        cdef const unsigned char* src
        cdef Py_ssize_t size
        self._enter()
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
        cdef const unsigned char* first = NULL
        cdef uint64_t counter
        cdef void* ctx
        cdef int rc
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
        if self._ctx != NULL:
            ctx = self._ctx
            counter = self._nonce
            if have_first:
                first = self._pbuf + _HEADER
            if total >= _NOGIL_MIN:
                self._busy = True
                with nogil:
                    rc = _open_frames(
                        ctx, self._nonce_raw, &counter, first, first_len, src, pos, scan,
                        <unsigned char*>out,
                    )
                self._busy = False
            else:
                rc = _open_frames(
                    ctx, self._nonce_raw, &counter, first, first_len, src, pos, scan,
                    <unsigned char*>out,
                )
            self._nonce = counter
            if rc == _OPEN_BAD_TAG:
                raise DecryptError(f"noise frame at nonce {counter} failed authentication")
            if rc != _OPEN_OK:
                ERR_clear_error()
                raise CryptoError(f"libcrypto failed to open the noise frame at nonce {counter}")
            if have_first:
                self._drop_pending()
            pos = scan
        else:
            if have_first:
                written = self._open_aead(self._pbuf + _HEADER, first_len, out, written)
                self._drop_pending()
            while pos < scan:
                length = (src[pos] << 8) | src[pos + 1]
                written = self._open_aead(src + pos + _HEADER, length, out, written)
                pos += _HEADER + length
        if scan < size:  # keep the incomplete last frame (its length is already checked)
            length = size - scan
            if length >= _HEADER:
                self._grow(_HEADER + ((src[scan] << 8) | src[scan + 1]))
            self._append(src + scan, length)
        return result

    cdef Py_ssize_t _open_aead(
        self, const unsigned char* frame, Py_ssize_t length, char* out, Py_ssize_t pos
    ) except -1:
        """Open the frame body ``frame[:length]`` into ``out + pos`` with the AEAD object;
        returns the new end."""
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
