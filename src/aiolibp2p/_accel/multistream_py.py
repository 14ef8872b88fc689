"""multistream-select 1.0 message framing: the pure-Python reference twin.

The compiled twin is ``ext/multistream_c.pyx``; both export exactly the names in ``__all__`` and
raise the same exception classes.  Library code imports the selected twin with
``from aiolibp2p._accel import multistream``.

A message (multiformats/multistream-select ``README.md``) is ``uvarint(len) + payload + b"\\n"``
where ``len`` counts the trailing ``b"\\n"``.  This module only frames and splits; the
negotiation state machine lives elsewhere.

Size limit: :data:`MAX_MESSAGE_SIZE` is **1024**, a bound on the length *prefix* (the payload
*including* its ``b"\\n"``), so a protocol id is at most 1023 bytes.  This matches go-multistream
(which rejects an incoming length above 1024 with ``ErrTooLarge``) and js-libp2p
(``MAX_PROTOCOL_LENGTH = 1024`` applied to the same length, "conforming to go-libp2p"):
anything longer would be refused by those peers, so :func:`encode_message` refuses to build it.
``ls`` responses (a length-prefixed list of messages) may be longer; callers build those with
``varint.encode_lp`` and split them with a larger ``max_size``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiolibp2p._accel.varint_py import _check_max_size, _check_offset, _decode, _view
from aiolibp2p.core.errors import LocalProtocolError, MessageTooLarge, NegotiationError

__all__ = ["MAX_MESSAGE_SIZE", "encode_message", "encode_messages", "split_messages"]

#: Largest accepted length prefix: payload plus the trailing ``b"\n"`` (go/js interop limit).
MAX_MESSAGE_SIZE: int = 1024


def encode_message(payload: bytes | str) -> bytes:
    """``uvarint(len(payload) + 1) + payload + b"\\n"``; a ``str`` payload is encoded as UTF-8.

    Raises :class:`LocalProtocolError` if the payload contains ``b"\\n"`` or if the message would
    exceed :data:`MAX_MESSAGE_SIZE` (a payload of more than 1023 bytes).
    """
    if isinstance(payload, str):
        data = payload.encode("utf-8")
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(_view(payload))
    else:
        raise LocalProtocolError(
            f"multistream payload must be bytes or str, not {type(payload).__name__}"
        )
    if b"\n" in data:
        raise LocalProtocolError("multistream payload must not contain a newline")
    length = len(data) + 1
    if length > MAX_MESSAGE_SIZE:
        raise LocalProtocolError(
            f"multistream message of {length} bytes exceeds the limit of {MAX_MESSAGE_SIZE}"
        )
    # length <= 1024 < 2**14: a one- or two-byte uvarint.
    if length < 0x80:
        return bytes((length,)) + data + b"\n"
    return bytes(((length & 0x7F) | 0x80, length >> 7)) + data + b"\n"


def encode_messages(payloads: Iterable[bytes | str]) -> bytes:
    """The concatenation of :func:`encode_message` for each payload (e.g. header + proposal)."""
    return b"".join([encode_message(payload) for payload in payloads])


def split_messages(
    buf: Any, offset: int = 0, *, max_size: int = MAX_MESSAGE_SIZE
) -> tuple[list[bytes], int]:
    """Every complete message from ``offset`` on, each without its trailing ``b"\\n"``.

    Returns ``(payloads, next_offset)`` where ``next_offset`` is the first byte not consumed.
    A message that is just ``b"\\n"`` gives ``b""``; judging it is the state machine's job.
    Raises :class:`NegotiationError` for an empty message (length 0, so not even the newline)
    or one not ending in ``b"\\n"``,
    :class:`MessageTooLarge` as soon as a complete length prefix exceeds ``max_size`` (before
    its body arrives) and :class:`VarintError` for a malformed prefix, even after complete
    messages (the stream is unusable then).
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
        if length < 0x80:  # one-byte prefix: every protocol id shorter than 127 bytes
            start = pos + 1
        else:
            decoded = _decode(data, pos, size)
            if decoded is None:
                break
            length, start = decoded
        if length > max_size:
            raise MessageTooLarge(length, max_size)
        if length == 0:
            raise NegotiationError("empty multistream message")
        end = start + length
        if end > size:
            break
        if data[end - 1] != 0x0A:
            raise NegotiationError("multistream message does not end with a newline")
        append(data[start : end - 1] if is_bytes else bytes(data[start : end - 1]))
        pos = end
    return messages, pos
