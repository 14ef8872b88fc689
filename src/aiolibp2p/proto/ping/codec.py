"""ping (libp2p/specs ``ping/ping.md``) as two tiny sans-IO helpers.

The dialer writes :data:`PING_SIZE` (32) random bytes; the listener echoes them; the dialer
measures the time from writing to receiving the echo.  The dialer may repeat on the same stream,
one payload at a time, and closes its write side after the last one; the listener echoes every
complete 32-byte block until the dialer's end of stream, then closes.

Neither helper reads a clock nor draws randomness: the driver passes ``now`` (seconds, monotonic)
and the 32 random payload bytes in.  Both hold at most 31 buffered bytes between calls.
"""

from __future__ import annotations

from typing import Final

from aiolibp2p.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["PING_SIZE", "PROTOCOL_ID", "PingClient", "PingMismatch", "PingServer"]

#: The multistream protocol id.
PROTOCOL_ID: Final = "/ipfs/ping/1.0.0"
#: Bytes in one ping payload (and its echo).
PING_SIZE: Final = 32

_Buffer = bytes | bytearray | memoryview


class PingMismatch(RemoteProtocolError):
    """The remote answered a ping with bytes other than the payload, or sent unsolicited bytes."""


class PingClient:
    """The dialer's half: one outstanding ping at a time.

    ``start(payload, now)`` returns the bytes to write; feed what the stream yields to
    ``receive_data(data, now)``, which returns the round-trip time once the whole echo arrived
    (``None`` while it is incomplete).  Any byte that is not part of the expected echo raises
    :class:`PingMismatch`; the client is then unusable (close or reset the stream).
    """

    __slots__ = ("_buf", "_failed", "_payload", "_sent_at")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._sent_at = 0.0
        self._buf = bytearray()
        self._failed = False

    @property
    def pending(self) -> bool:
        """Whether a ping is waiting for its echo."""
        return self._payload is not None

    def start(self, payload: _Buffer, now: float) -> bytes:
        """Begin a ping with the caller's 32 random bytes; return the bytes to write.

        Raises :class:`LocalProtocolError` if the payload is not 32 bytes, a ping is already
        outstanding, or the client failed.
        """
        if self._failed:
            raise LocalProtocolError("the ping client failed; open a new stream")
        if self._payload is not None:
            raise LocalProtocolError("a ping is already outstanding on this stream")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"ping payload must be bytes, not {type(payload).__name__}")
        data = bytes(payload)
        if len(data) != PING_SIZE:
            raise LocalProtocolError(f"ping payload must be {PING_SIZE} bytes, got {len(data)}")
        self._payload = data
        self._sent_at = now
        return data

    def receive_data(self, data: _Buffer, now: float) -> float | None:
        """Take bytes from the stream; return the round-trip time when the echo is complete.

        Raises :class:`PingMismatch` for bytes with no ping outstanding, bytes past the echo, or
        an echo that differs from the payload; :class:`LocalProtocolError` after a failure.
        """
        if self._failed:
            raise LocalProtocolError("the ping client failed; open a new stream")
        if not data:
            return None
        payload = self._payload
        if payload is not None and not self._buf and data == payload:  # the whole echo at once
            self._payload = None
            return max(0.0, now - self._sent_at)
        have = len(self._buf)
        if payload is None or have + len(data) > PING_SIZE:
            self._failed = True
            raise PingMismatch(
                "ping: the remote sent bytes that answer no outstanding ping"
                if payload is None
                else "ping: the remote sent more bytes than the echo"
            )
        self._buf += data
        if payload[: len(self._buf)] != self._buf:
            self._failed = True
            raise PingMismatch("ping: the echo differs from the payload")
        if len(self._buf) < PING_SIZE:
            return None
        self._buf.clear()
        self._payload = None
        return max(0.0, now - self._sent_at)


class PingServer:
    """The listener's half: echo every complete 32-byte block, keep a partial one."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete ping held back (0 to 31)."""
        return len(self._buf)

    def receive_data(self, data: _Buffer) -> bytes:
        """Take bytes from the stream; return the bytes to echo (whole 32-byte blocks only)."""
        if not data:
            return b""
        buf = self._buf
        if not buf and not len(data) % PING_SIZE:  # whole pings only: echo them as they are
            return bytes(data)
        buf += data
        whole = len(buf) - len(buf) % PING_SIZE
        if not whole:
            return b""
        out = bytes(buf[:whole])
        del buf[:whole]
        return out

    def receive_eof(self) -> None:
        """The dialer closed its write side.  Raises :class:`RemoteProtocolError` if it left an
        incomplete ping behind (the driver then resets rather than closes the stream)."""
        if self._buf:
            left = len(self._buf)
            self._buf.clear()
            raise RemoteProtocolError(f"ping: stream ended inside a ping ({left} of 32 bytes)")
