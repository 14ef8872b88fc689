"""perf (libp2p/specs ``perf/perf.md``): constants, errors and the request header codec.

The only framing perf has is the client's request: the number of bytes it wants back, as one
big-endian unsigned 64-bit integer (:data:`HEADER_SIZE` bytes) at the start of the stream.  Zero
and ``2**64 - 1`` are both valid.  Everything after the header up to the client's end of stream is
upload; everything the server sends back is download.  The content is arbitrary (zeros here).
"""

from __future__ import annotations

from typing import Final

from aiolibp2p.core.errors import DecodeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "BLOCK_SIZE",
    "HEADER_SIZE",
    "MAX_U64",
    "PROTOCOL_ID",
    "PerfProtocolError",
    "PerfRequestTooLarge",
    "TruncatedRequest",
    "decode_request",
    "encode_request",
]

#: The multistream protocol id.
PROTOCOL_ID: Final = "/perf/1.0.0"
#: Bytes in the request header (a u64, big-endian).
HEADER_SIZE: Final = 8
#: The largest request (the timer variant asks for this and resets when its timer fires).
MAX_U64: Final = (1 << 64) - 1
#: The size of one write of upload or download data (what go and py-libp2p use too).
BLOCK_SIZE: Final = 64 * 1024

_Buffer = bytes | bytearray | memoryview


class PerfProtocolError(RemoteProtocolError):
    """The remote broke the perf protocol: truncated request, early or surplus data, short reply."""


class TruncatedRequest(PerfProtocolError, DecodeError):
    """The stream ended (or the bytes handed in stopped) before the 8-byte request header."""

    def __init__(self, received: int) -> None:
        super().__init__(
            f"perf: stream ended inside the request header ({received} of {HEADER_SIZE} bytes)"
        )
        self.received = received


class PerfRequestTooLarge(RemoteProtocolError):
    """The client asked for more bytes than this server sends on one stream (its configured cap).

    Not a spec violation (any u64 is valid): the server's own policy, like
    :class:`~aiolibp2p.core.errors.MessageTooLarge` for length prefixes.
    """

    def __init__(self, requested: int, limit: int) -> None:
        super().__init__(f"perf: {requested} bytes requested, this server sends at most {limit}")
        self.requested = requested
        self.limit = limit


def encode_request(download_bytes: int) -> bytes:
    """The request header asking the server for ``download_bytes`` bytes.

    Raises :class:`LocalProtocolError` unless ``0 <= download_bytes <= 2**64 - 1``.
    """
    _check_count("download_bytes", download_bytes)
    return download_bytes.to_bytes(HEADER_SIZE, "big")


def decode_request(data: _Buffer) -> int:
    """The byte count in a request header of exactly :data:`HEADER_SIZE` bytes.

    Raises :class:`TruncatedRequest` for fewer bytes and :class:`PerfProtocolError` for more.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if size < HEADER_SIZE:
        raise TruncatedRequest(size)
    if size > HEADER_SIZE:
        raise PerfProtocolError(f"perf: request header is {HEADER_SIZE} bytes, got {size}")
    return int.from_bytes(view, "big")


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_U64:
        raise LocalProtocolError(f"{name} must be in [0, 2**64 - 1], got {value}")
