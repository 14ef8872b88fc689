"""Multiformats unsigned varints and length-prefixed messages: the pure-Python reference twin.

The compiled twin is ``ext/varint_c.pyx``; both export exactly the names in ``__all__`` and raise
the same exception classes.  Library code imports the selected twin with
``from aiolibp2p._accel import varint``.

The format (https://github.com/multiformats/unsigned-varint) is LEB128: seven bits per byte,
least significant group first, the high bit set on every byte but the last.  It is restricted
to at most 9 bytes (63 bits, so values up to ``2**63 - 1``) and the encoding MUST be minimal:
a last byte of ``0x00`` after other bytes (e.g. ``b"\\x80\\x00"``) is rejected.

Decoders take any object supporting the buffer protocol (``bytes``, ``bytearray``,
``memoryview``, ...) and parse it by offset without copying it; only returned message bodies
are copies.  Incomplete input is not an error: the decoders return ``None`` (or fewer
messages) and the caller retries once more bytes have arrived.  A length prefix above
``max_size`` raises :class:`MessageTooLarge` as soon as the prefix itself is complete, before
any of the body has arrived.
"""

from __future__ import annotations

from typing import Any

from aiolibp2p.core.errors import LocalProtocolError, MessageTooLarge, VarintError

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

#: The longest allowed encoding, in bytes.
MAX_UVARINT_LEN: int = 9
#: The largest encodable value (63 bits).
MAX_UVARINT: int = 2**63 - 1

#: What the decoders accept (in fact any C-contiguous object supporting the buffer protocol).
Buffer = bytes | bytearray | memoryview


def _view(buf: Any) -> Any:
    """Index ``buf`` byte by byte without copying: bytes and bytearray as they are, else a view."""
    if type(buf) is bytes or type(buf) is bytearray:
        return buf
    view = memoryview(buf)
    if not view.c_contiguous:
        raise BufferError("buffer is not C-contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _check_value(value: object) -> int:
    if not isinstance(value, int):
        raise LocalProtocolError(f"uvarint value must be an int, not {type(value).__name__}")
    if value < 0 or value > MAX_UVARINT:
        raise LocalProtocolError(f"uvarint value {value} out of range [0, 2**63 - 1]")
    return value


def _check_offset(offset: object, size: int) -> int:
    if not isinstance(offset, int):
        raise LocalProtocolError(f"offset must be an int, not {type(offset).__name__}")
    if offset < 0 or offset > size:
        raise LocalProtocolError(f"offset {offset} out of range [0, {size}]")
    return offset


def _check_max_size(max_size: object) -> int:
    if not isinstance(max_size, int):
        raise LocalProtocolError(f"max_size must be an int, not {type(max_size).__name__}")
    if max_size < 0:
        raise LocalProtocolError(f"max_size must not be negative, got {max_size}")
    return max_size


def uvarint_size(value: int) -> int:
    """Length in bytes of the minimal encoding of ``value``."""
    _check_value(value)
    return max(1, (value.bit_length() + 6) // 7)


def encode_uvarint(value: int) -> bytes:
    """Encode ``value`` (``0 <= value <= MAX_UVARINT``) as a minimal uvarint."""
    _check_value(value)
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_uvarint_into(value: int, buf: Any, offset: int = 0) -> int:
    """Write the uvarint of ``value`` into the writable buffer ``buf`` at ``offset``.

    Returns the offset just past the written bytes.  Raises :class:`LocalProtocolError` if the
    buffer is read-only, the offset is out of range, or the encoding does not fit.
    """
    _check_value(value)
    view = memoryview(buf)
    try:
        if not view.c_contiguous:
            raise BufferError("buffer is not C-contiguous")
        if view.readonly:
            raise LocalProtocolError("encode_uvarint_into needs a writable buffer")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = view.nbytes
        _check_offset(offset, size)
        needed = max(1, (value.bit_length() + 6) // 7)
        if offset + needed > size:
            raise LocalProtocolError(
                f"uvarint of {needed} bytes does not fit at offset {offset} of a {size}-byte buffer"
            )
        while value >= 0x80:
            view[offset] = (value & 0x7F) | 0x80
            value >>= 7
            offset += 1
        view[offset] = value
        return offset + 1
    finally:
        view.release()


def _decode(data: Any, offset: int, end: int) -> tuple[int, int] | None:
    """Decode one uvarint of ``data[offset:end]``; ``offset < end`` is the caller's business."""
    value = 0
    shift = 0
    pos = offset
    while pos < end:
        byte = data[pos]
        pos += 1
        if byte < 0x80:
            if byte == 0 and pos - offset > 1:
                raise VarintError("non-minimal uvarint encoding")
            return value | (byte << shift), pos
        if pos - offset == MAX_UVARINT_LEN:
            raise VarintError(f"uvarint longer than {MAX_UVARINT_LEN} bytes")
        value |= (byte & 0x7F) << shift
        shift += 7
    return None


def decode_uvarint(buf: Buffer, offset: int = 0) -> tuple[int, int] | None:
    """Decode the uvarint at ``offset``: ``(value, end_offset)``, or ``None`` if incomplete.

    Raises :class:`VarintError` for an encoding longer than 9 bytes or a non-minimal one, and
    :class:`LocalProtocolError` if ``offset`` is outside ``[0, len(buf)]``.
    """
    data = _view(buf)
    size = len(data)
    _check_offset(offset, size)
    return _decode(data, offset, size)


def encode_lp(data: Buffer) -> bytes:
    """``uvarint(len(data)) + data`` for any buffer ``data`` (its length counted in bytes)."""
    body = _view(data)
    framed: bytes = encode_uvarint(len(body)) + body  # bytes + any buffer: one copy
    return framed


def decode_lp(buf: Buffer, offset: int = 0, *, max_size: int) -> tuple[bytes, int] | None:
    """Decode one length-prefixed message at ``offset``: ``(body, end_offset)`` or ``None``.

    Raises :class:`MessageTooLarge` as soon as the length prefix is complete if it exceeds
    ``max_size``, whether or not the body has arrived.
    """
    data = _view(buf)
    size = len(data)
    _check_offset(offset, size)
    _check_max_size(max_size)
    decoded = _decode(data, offset, size)
    if decoded is None:
        return None
    length, start = decoded
    if length > max_size:
        raise MessageTooLarge(length, max_size)
    end = start + length
    if end > size:
        return None
    return bytes(data[start:end]), end


def split_lp(buf: Buffer, offset: int = 0, *, max_size: int) -> tuple[list[bytes], int]:
    """Every complete length-prefixed message from ``offset`` on.

    Returns ``(messages, next_offset)``, where ``next_offset`` is the first byte not consumed
    (the start of an incomplete trailing message, or the end of the buffer).  A malformed prefix
    or one above ``max_size`` raises, even if complete messages preceded it.
    """
    data = _view(buf)
    size = len(data)
    pos = _check_offset(offset, size)
    _check_max_size(max_size)
    is_bytes = type(data) is bytes  # a bytes slice is already a copy; others need bytes()
    messages: list[bytes] = []
    append = messages.append
    while pos < size:
        length = data[pos]
        if length < 0x80:  # one-byte prefix: the common case for small messages
            start = pos + 1
        else:
            decoded = _decode(data, pos, size)
            if decoded is None:
                break
            length, start = decoded
        if length > max_size:
            raise MessageTooLarge(length, max_size)
        end = start + length
        if end > size:
            break
        append(data[start:end] if is_bytes else bytes(data[start:end]))
        pos = end
    return messages, pos
