"""Small wire helpers shared by the core decoders (on top of the varint hot path)."""

from __future__ import annotations

from aiolibp2p._accel import varint
from aiolibp2p.core.errors import DecodeError, VarintError

__all__ = ["read_uvarint"]


def read_uvarint(buf: bytes, pos: int, error: type[DecodeError], what: str) -> tuple[int, int]:
    """Read one complete, minimal uvarint at ``pos``; return ``(value, end)``.

    A truncated or malformed varint raises ``error`` (a :class:`DecodeError` subclass chosen by
    the caller, so each decoder reports in its own terms) naming ``what`` was being read.
    """
    try:
        result = varint.decode_uvarint(buf, pos)
    except VarintError as exc:
        raise error(f"bad varint ({what}): {exc}") from exc
    if result is None:
        raise error(f"truncated varint ({what})")
    value: int = result[0]
    end: int = result[1]
    return value, end
