"""Noise transport frames (seal and open): the pure-Python reference twin.

The compiled twin is ``ext/noise_cipher_c.pyx``; both export exactly the names in ``__all__``,
take the same arguments and raise the same exception classes with the same messages.  Library
code imports the selected twin with ``from aiolibp2p._accel import noise_cipher``; the Noise
machine (``aiolibp2p.proto.noise``) builds one :class:`FrameSealer` and one :class:`FrameOpener`
per connection from the keys its handshake produced.

Wire format (libp2p/specs ``noise/README.md``, "Wire Format"): every Noise transport message is
``uint16_be(len(ciphertext)) || ciphertext`` where ``ciphertext`` is the ChaCha20-Poly1305
encryption of at most :data:`MAX_PLAINTEXT_SIZE` (65519) bytes plus its 16-byte tag, so at most
:data:`MAX_FRAME_SIZE` (65535) bytes.  The associated data is empty and the 96-bit nonce is four
zero bytes followed by the 64-bit little-endian message counter (Noise rev 34, section 12.4).

A sealer or opener is built from the direction's 32-byte key (:data:`KEY_SIZE`), or from a
``cryptography`` ``ChaCha20Poly1305`` object (the older form, still accepted: the twins then call
only its ``encrypt``/``decrypt`` methods, and the compiled twin its ``encrypt_into``/
``decrypt_into`` when it has them).  From a key, this reference makes one ``ChaCha20Poly1305``
object and the compiled twin one libcrypto EVP context; either is reused for every frame.  Every
complete frame of a call is processed in that one call.  This reference lets the cipher allocate
each frame and joins them once, which in CPython is faster than writing into a preallocated
``bytearray`` and copying it into the ``bytes`` result; the compiled twin writes straight into
the result ``bytes``.

Nonces: a sealer or opener made with ``max_nonce=m`` uses the counters ``0 .. m - 1`` (the Noise
spec reserves ``2**64 - 1``: a connection must end before it).  A :class:`FrameSealer` that would
pass the limit raises :class:`~aiolibp2p.core.errors.NonceExhausted` before sealing anything; a
:class:`FrameOpener` fed a frame past the limit raises
:class:`~aiolibp2p.core.errors.DecryptError`.

Errors from :meth:`FrameOpener.open` (all :class:`~aiolibp2p.core.errors.DecryptError`): a frame
length below the 16-byte tag (raised as soon as its 2-byte header is complete), a frame that fails
authentication, or the nonce limit.  After any of them the opener is broken: the connection is
unusable and every further call raises ``DecryptError`` too.  Frames of the same call that came
before the failing one are dropped with it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Protocol, cast

from aiolibp2p.core.errors import DecryptError, LocalProtocolError, NonceExhausted

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

#: Bytes of the big-endian length prefix of every frame.
HEADER_SIZE: int = 2
#: Bytes of a ChaCha20-Poly1305 key.
KEY_SIZE: int = 32
#: Largest Noise message (ciphertext with its tag), the most a 2-byte length can say.
MAX_FRAME_SIZE: int = 65535
#: Bytes of the Poly1305 tag that ends every ciphertext.
TAG_SIZE: int = 16
#: Largest plaintext per frame: ``MAX_FRAME_SIZE - TAG_SIZE``.
MAX_PLAINTEXT_SIZE: int = 65519
#: Default (and largest) nonce limit: ``2**64 - 1`` is reserved by the Noise spec.
MAX_NONCE: int = 2**64 - 1

_OVERHEAD = HEADER_SIZE + TAG_SIZE
_pack_nonce = struct.Struct("<4xQ").pack
_pack_length = struct.Struct(">H").pack
_BROKEN = "the noise transport failed earlier and accepts no more data"


class _AEAD(Protocol):
    """What the twins need of ``cryptography``'s ``ChaCha20Poly1305``."""

    def encrypt(self, nonce: bytes, data: Any, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: Any, associated_data: bytes | None) -> bytes: ...


def _check_counter(name: str, value: object, upper: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > upper:
        raise LocalProtocolError(f"{name} {value} out of range [0, {upper}]")
    return value


def _make_aead(key: object, method: str) -> _AEAD:
    """The AEAD object for ``key``: a new ``ChaCha20Poly1305`` for key bytes, else ``key``."""
    if isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
        if len(raw) != KEY_SIZE:
            raise LocalProtocolError(f"key must be {KEY_SIZE} bytes, not {len(raw)}")
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        return ChaCha20Poly1305(raw)
    if not callable(getattr(key, method, None)):
        raise LocalProtocolError(
            f"key must be {KEY_SIZE} bytes or a ChaCha20Poly1305 object (with {method}()), "
            f"not {type(key).__name__}"
        )
    return cast(_AEAD, key)


def _byte_view(data: Any) -> memoryview:
    """``data`` as a one-dimensional byte view, without copying (any C-contiguous buffer)."""
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("buffer is not C-contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _frame_count(size: int) -> int:
    return -(-size // MAX_PLAINTEXT_SIZE)


class FrameSealer:
    """Encrypts outgoing data into Noise transport frames with one key (one direction).

    ``key`` is the sending key (32 bytes) or its ``ChaCha20Poly1305`` object; ``nonce`` the
    next counter to use (0 after a handshake); ``max_nonce`` the first counter that must never
    be used.
    """

    __slots__ = ("_aead", "_max_nonce", "_nonce")

    def __init__(self, key: Any, nonce: int = 0, max_nonce: int = MAX_NONCE) -> None:
        aead = _make_aead(key, "encrypt")
        self._max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        self._nonce = _check_counter("nonce", nonce, self._max_nonce)
        self._aead = aead

    @property
    def nonce(self) -> int:
        """The counter the next frame will use (the number of frames sealed so far)."""
        return self._nonce

    @property
    def max_nonce(self) -> int:
        """The counter limit: at most ``max_nonce - nonce`` more frames can be sealed."""
        return self._max_nonce

    def seal(self, data: Any) -> bytes:
        """Encrypt ``data`` as frames of at most :data:`MAX_PLAINTEXT_SIZE` plaintext bytes.

        Returns the frames, each with its 2-byte length, concatenated; ``b""`` for empty
        ``data``.  Raises :class:`NonceExhausted` (sealing nothing) if the frames would pass
        the nonce limit.
        """
        view = _byte_view(data)
        if not len(view):
            return b""
        self._reserve(_frame_count(len(view)))
        parts: list[bytes] = []
        self._seal_into(view, parts)
        return b"".join(parts)

    def seal_many(self, chunks: Iterable[Any]) -> bytes:
        """Seal each buffer of ``chunks`` as its own frame(s), all in one output buffer.

        The same as ``b"".join(seal(chunk) for chunk in chunks)`` (empty chunks give no frame),
        but in one call and atomic: on :class:`NonceExhausted` nothing is sealed.
        """
        views = [_byte_view(chunk) for chunk in chunks]
        frames = sum(_frame_count(len(view)) for view in views)
        if not frames:
            return b""
        self._reserve(frames)
        parts: list[bytes] = []
        for view in views:
            self._seal_into(view, parts)
        return b"".join(parts)

    def seal_gather(self, parts: Iterable[Any]) -> bytes:
        """Seal the concatenation of the buffers of ``parts``: the frames of
        ``seal(b"".join(parts))`` (the compiled twin feeds each frame's cipher from the parts
        it spans instead of joining them)."""
        views = [_byte_view(part) for part in parts]
        return self.seal(views[0] if len(views) == 1 else b"".join(views))

    def _reserve(self, frames: int) -> None:
        if frames > self._max_nonce - self._nonce:
            raise NonceExhausted(
                f"noise send nonce exhausted: {frames} frame(s) at nonce {self._nonce} "
                f"would reach the limit of {self._max_nonce}"
            )

    def _seal_into(self, view: memoryview, parts: list[bytes]) -> None:
        # The pure twin lets the AEAD allocate each ciphertext and joins them once: in CPython
        # that beats encrypt_into() into a zero-filled bytearray plus the final bytes() copy.
        encrypt = self._aead.encrypt
        append = parts.append
        for start in range(0, len(view), MAX_PLAINTEXT_SIZE):
            chunk = view[start : start + MAX_PLAINTEXT_SIZE]
            nonce = self._nonce
            self._nonce = nonce + 1  # a nonce is spent even if the cipher fails
            sealed = encrypt(_pack_nonce(nonce), chunk, None)
            length = len(chunk) + TAG_SIZE
            if not isinstance(sealed, bytes) or len(sealed) != length:
                raise LocalProtocolError(f"aead returned {len(sealed)} bytes, not {length}")
            append(_pack_length(length))
            append(sealed)


class FrameOpener:
    """Decrypts incoming Noise transport frames with one key (one direction).

    ``key`` is the receiving key (32 bytes) or its ``ChaCha20Poly1305`` object; ``nonce`` and
    ``max_nonce`` as for :class:`FrameSealer`.  :meth:`open` takes the bytes as they arrive, in
    chunks of any size, and keeps at most one incomplete frame (at most
    ``HEADER_SIZE + MAX_FRAME_SIZE`` bytes) between calls.
    """

    __slots__ = ("_aead", "_failed", "_max_nonce", "_nonce", "_pending")

    def __init__(self, key: Any, nonce: int = 0, max_nonce: int = MAX_NONCE) -> None:
        aead = _make_aead(key, "decrypt")
        self._max_nonce = _check_counter("max_nonce", max_nonce, MAX_NONCE)
        self._nonce = _check_counter("nonce", nonce, self._max_nonce)
        self._aead = aead
        self._pending = bytearray()
        self._failed = False

    @property
    def nonce(self) -> int:
        """The counter the next frame must carry (the number of frames opened so far)."""
        return self._nonce

    @property
    def max_nonce(self) -> int:
        """The counter limit: a frame at this counter is refused."""
        return self._max_nonce

    @property
    def pending(self) -> int:
        """How many bytes of an incomplete frame are buffered."""
        return len(self._pending)

    def open(self, data: Any) -> bytes:
        """Decrypt every complete frame of the buffered bytes followed by ``data``.

        Returns the plaintexts concatenated (``b""`` if no frame completed) and buffers the
        bytes of an incomplete last frame.  Raises :class:`DecryptError` as described in the
        module docstring; the opener is then broken.
        """
        if self._failed:
            raise DecryptError(_BROKEN)
        view = _byte_view(data)
        try:
            return self._open(view)
        except BaseException:
            self._failed = True
            self._pending = bytearray()
            raise

    def _check_length(self, length: int) -> None:
        if length < TAG_SIZE:
            raise DecryptError(
                f"noise frame of {length} bytes is shorter than its {TAG_SIZE}-byte tag"
            )

    def _open(self, view: memoryview) -> bytes:
        size = len(view)
        pos = 0
        first: bytearray | None = None  # a frame completed from the pending bytes
        pending = self._pending
        if pending:
            if len(pending) < HEADER_SIZE:
                take = min(HEADER_SIZE - len(pending), size)
                pending += view[:take]
                pos = take
                if len(pending) < HEADER_SIZE:
                    return b""
                self._check_length((pending[0] << 8) | pending[1])
            need = HEADER_SIZE + ((pending[0] << 8) | pending[1]) - len(pending)
            take = min(need, size - pos)
            pending += view[pos : pos + take]
            pos += take
            if take < need:
                return b""
            first = pending
            self._pending = bytearray()
        # Scan: check every complete header (before any body is buffered), find the frames.
        frames: list[tuple[int, int]] = []
        scan = pos
        while size - scan >= HEADER_SIZE:
            length = (view[scan] << 8) | view[scan + 1]
            self._check_length(length)
            if size - scan - HEADER_SIZE < length:
                break
            frames.append((scan + HEADER_SIZE, scan + HEADER_SIZE + length))
            scan += HEADER_SIZE + length
        if len(frames) + (first is not None) > self._max_nonce - self._nonce:
            raise DecryptError(
                f"noise receive nonce exhausted: the peer sent frames past the limit of "
                f"{self._max_nonce}"
            )
        parts: list[bytes] = []
        if first is not None:
            parts.append(self._open_frame(memoryview(first)[HEADER_SIZE:]))
        for start, end in frames:
            parts.append(self._open_frame(view[start:end]))
        if scan < size:
            self._pending = bytearray(view[scan:])
        return b"".join(parts)

    def _open_frame(self, frame: memoryview) -> bytes:
        nonce = self._nonce
        try:
            opened = self._aead.decrypt(_pack_nonce(nonce), frame, None)
        except Exception as exc:
            from cryptography.exceptions import InvalidTag

            if isinstance(exc, InvalidTag):
                raise DecryptError(f"noise frame at nonce {nonce} failed authentication") from None
            raise
        length = len(frame) - TAG_SIZE
        if not isinstance(opened, bytes) or len(opened) != length:
            raise LocalProtocolError(f"aead returned {len(opened)} bytes, not {length}")
        self._nonce = nonce + 1
        return opened
