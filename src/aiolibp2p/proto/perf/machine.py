"""perf client and server as sans-IO machines: byte counts and events in, byte counts out.

The spec's rules, as this module enforces them:

* **Client**: :meth:`PerfClient.start` gives the request header (the bytes it wants back);
  :meth:`PerfClient.next_upload` says how many upload bytes to write next; once the upload is all
  written, :meth:`PerfClient.close_write` (then close the stream's write side); then feed what the
  stream yields to :meth:`PerfClient.receive_data` and its end to :meth:`PerfClient.receive_eof`.
  Bytes from the server before our write side closed, more bytes than requested, or an end of
  stream before all requested bytes raise :class:`PerfProtocolError`.
* **Server**: feed the stream to :meth:`PerfServer.receive_data` / :meth:`PerfServer.receive_eof`.
  The first 8 bytes are the request; the rest, up to the client's end of stream, is upload.  Only
  after that end of stream does :meth:`PerfServer.next_send` hand out byte counts to send (it
  raises :class:`LocalProtocolError` before: sending MUST NOT overlap the upload).  When it returns
  0 the reply is complete: close the stream.  An end of stream inside the header raises
  :class:`TruncatedRequest`; a request above the server's cap raises :class:`PerfRequestTooLarge`
  (reset the stream).

The payload is arbitrary, so neither machine keeps or returns payload bytes: the driver writes
counts out of one preallocated zero buffer.  Neither reads a clock: the driver times a run.
Legal transitions are tables (``_CLIENT_TRANSITIONS``, ``_SERVER_TRANSITIONS``); an input with
no entry for the current state is a :class:`PerfProtocolError` when it came from the remote
(data, end of stream) and a :class:`LocalProtocolError` when the driver made it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiolibp2p.core.errors import LocalProtocolError

from .codec import (
    BLOCK_SIZE,
    HEADER_SIZE,
    MAX_U64,
    PerfProtocolError,
    PerfRequestTooLarge,
    TruncatedRequest,
    _check_count,
    decode_request,
    encode_request,
)

__all__ = ["ClientState", "PerfClient", "PerfResult", "PerfServer", "ServerState"]

_Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class PerfResult:
    """One perf run as the client measured it."""

    time_seconds: float
    upload_bytes: int
    download_bytes: int

    def to_json(self) -> dict[str, Any]:
        """The test-plans perf output shape (``{"type": "final", "timeSeconds": ..., ...}``)."""
        return {
            "type": "final",
            "timeSeconds": self.time_seconds,
            "uploadBytes": self.upload_bytes,
            "downloadBytes": self.download_bytes,
        }


class _In(enum.Enum):
    START = "start"  # local
    UPLOAD = "upload"  # local
    CLOSE_WRITE = "close_write"  # local
    SEND = "send"  # local
    DATA = "data"  # remote
    EOF = "eof"  # remote


_REMOTE_INPUTS: Final = frozenset({_In.DATA, _In.EOF})


def _illegal(role: str, state: enum.Enum, event: _In) -> Exception:
    if event in _REMOTE_INPUTS:
        what = "data" if event is _In.DATA else "end of stream"
        return PerfProtocolError(f"perf {role}: unexpected {what} in state {state.value}")
    return LocalProtocolError(f"perf {role}: {event.value}() not allowed in state {state.value}")


# ----------------------------------------------------------------------------------- client


class ClientState(enum.Enum):
    IDLE = "idle"  # nothing sent yet
    UPLOADING = "uploading"  # request sent, upload in progress
    DOWNLOADING = "downloading"  # our write side closed, reading the reply
    DONE = "done"  # the whole reply and the server's end of stream arrived
    FAILED = "failed"


class PerfClient:
    """The client's half of one perf stream."""

    __slots__ = ("_download_bytes", "_downloaded", "_state", "_upload_bytes", "_uploaded")

    def __init__(self, upload_bytes: int, download_bytes: int) -> None:
        _check_count("upload_bytes", upload_bytes)
        _check_count("download_bytes", download_bytes)
        self._upload_bytes = upload_bytes
        self._download_bytes = download_bytes
        self._uploaded = 0
        self._downloaded = 0
        self._state = ClientState.IDLE

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def uploaded(self) -> int:
        """Upload bytes handed out by :meth:`next_upload` (the header not included)."""
        return self._uploaded

    @property
    def downloaded(self) -> int:
        """Reply bytes received so far."""
        return self._downloaded

    @property
    def upload_bytes(self) -> int:
        return self._upload_bytes

    @property
    def download_bytes(self) -> int:
        return self._download_bytes

    def start(self) -> bytes:
        """The request header to write first."""
        out: bytes = self._step(_In.START, None)
        return out

    def next_upload(self, limit: int = BLOCK_SIZE) -> int:
        """How many upload bytes to write now (at most ``limit``); 0 once the upload is done."""
        if limit <= 0:
            raise LocalProtocolError(f"limit must be positive, got {limit}")
        n: int = self._step(_In.UPLOAD, limit)
        return n

    def close_write(self) -> None:
        """Our upload is complete: the driver closes the stream's write side next."""
        self._step(_In.CLOSE_WRITE, None)

    def receive_data(self, data: _Buffer) -> None:
        """Count reply bytes; :class:`PerfProtocolError` for bytes the server must not send."""
        if data:
            self._step(_In.DATA, len(data))

    def receive_eof(self) -> None:
        """The server closed its side; :class:`PerfProtocolError` if the reply is short."""
        self._step(_In.EOF, None)

    def _step(self, event: _In, arg: Any) -> Any:
        handler = _CLIENT_TRANSITIONS.get((self._state, event))
        if handler is None:
            error = _illegal("client", self._state, event)
            if event in _REMOTE_INPUTS:
                self._state = ClientState.FAILED
            raise error
        try:
            return handler(self, arg)
        except PerfProtocolError:
            self._state = ClientState.FAILED
            raise

    # transitions
    def _on_start(self, _arg: None) -> bytes:
        self._state = ClientState.UPLOADING
        return encode_request(self._download_bytes)

    def _on_upload(self, limit: int) -> int:
        n = min(limit, self._upload_bytes - self._uploaded)
        self._uploaded += n
        return n

    def _on_close_write(self, _arg: None) -> None:
        if self._uploaded != self._upload_bytes:
            raise LocalProtocolError(
                f"perf client: closing after {self._uploaded} of {self._upload_bytes} upload bytes"
            )
        self._state = ClientState.DOWNLOADING

    def _on_early_data(self, n: int) -> None:
        raise PerfProtocolError(
            f"perf client: the server sent {n} bytes before our upload ended "
            "(the reply must not overlap the upload)"
        )

    def _on_early_eof(self, _arg: None) -> None:
        raise PerfProtocolError("perf client: the server closed the stream before our upload ended")

    def _on_data(self, n: int) -> None:
        total = self._downloaded + n
        if total > self._download_bytes:
            raise PerfProtocolError(
                f"perf client: the server sent {total} bytes, {self._download_bytes} requested"
            )
        self._downloaded = total

    def _on_eof(self, _arg: None) -> None:
        if self._downloaded != self._download_bytes:
            raise PerfProtocolError(
                f"perf client: the server closed the stream after {self._downloaded} of "
                f"{self._download_bytes} requested bytes"
            )
        self._state = ClientState.DONE


_CLIENT_TRANSITIONS: Final[Mapping[tuple[ClientState, _In], Callable[[PerfClient, Any], Any]]] = {
    (ClientState.IDLE, _In.START): PerfClient._on_start,
    (ClientState.UPLOADING, _In.UPLOAD): PerfClient._on_upload,
    (ClientState.UPLOADING, _In.CLOSE_WRITE): PerfClient._on_close_write,
    (ClientState.UPLOADING, _In.DATA): PerfClient._on_early_data,
    (ClientState.UPLOADING, _In.EOF): PerfClient._on_early_eof,
    (ClientState.DOWNLOADING, _In.DATA): PerfClient._on_data,
    (ClientState.DOWNLOADING, _In.EOF): PerfClient._on_eof,
}


# ----------------------------------------------------------------------------------- server


class ServerState(enum.Enum):
    AWAIT_REQUEST = "await_request"  # reading the 8-byte header
    RECEIVING = "receiving"  # draining the upload until the client's end of stream
    SENDING = "sending"  # the upload ended: sending the reply
    DONE = "done"  # the reply is complete: close the stream
    FAILED = "failed"


class PerfServer:
    """The server's half of one perf stream.

    ``max_send_bytes`` caps the reply of one stream: a request above it raises
    :class:`PerfRequestTooLarge` as soon as the header is complete.
    """

    __slots__ = ("_header", "_max_send_bytes", "_requested", "_sent", "_state", "_uploaded")

    def __init__(self, *, max_send_bytes: int = MAX_U64) -> None:
        _check_count("max_send_bytes", max_send_bytes)
        self._max_send_bytes = max_send_bytes
        self._header = bytearray()
        self._requested: int | None = None
        self._uploaded = 0
        self._sent = 0
        self._state = ServerState.AWAIT_REQUEST

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def requested(self) -> int | None:
        """The byte count the client asked for (``None`` until the header is complete)."""
        return self._requested

    @property
    def uploaded(self) -> int:
        """Upload bytes received after the header."""
        return self._uploaded

    @property
    def sent(self) -> int:
        """Reply bytes handed out by :meth:`next_send`."""
        return self._sent

    def receive_data(self, data: _Buffer) -> None:
        """Take bytes from the stream: the header first, then upload (counted, not kept)."""
        if data:
            self._step(_In.DATA, data)

    def receive_eof(self) -> None:
        """The client closed its write side: the reply may start."""
        self._step(_In.EOF, None)

    def next_send(self, limit: int = BLOCK_SIZE) -> int:
        """How many reply bytes to write now (at most ``limit``); 0 once the reply is complete.

        :class:`LocalProtocolError` before the client's end of stream.
        """
        if limit <= 0:
            raise LocalProtocolError(f"limit must be positive, got {limit}")
        n: int = self._step(_In.SEND, limit)
        return n

    def _step(self, event: _In, arg: Any) -> Any:
        handler = _SERVER_TRANSITIONS.get((self._state, event))
        if handler is None:
            error = _illegal("server", self._state, event)
            if event in _REMOTE_INPUTS:
                self._state = ServerState.FAILED
            raise error
        try:
            return handler(self, arg)
        except (PerfProtocolError, PerfRequestTooLarge):
            self._state = ServerState.FAILED
            raise

    # transitions
    def _on_header_data(self, data: _Buffer) -> None:
        header = self._header
        take = HEADER_SIZE - len(header)
        view = memoryview(data).cast("B")
        header += view[:take]
        rest = len(view) - take
        if len(header) < HEADER_SIZE:
            return
        requested = decode_request(header)
        header.clear()
        if requested > self._max_send_bytes:
            raise PerfRequestTooLarge(requested, self._max_send_bytes)
        self._requested = requested
        self._state = ServerState.RECEIVING
        if rest > 0:
            self._uploaded += rest

    def _on_header_eof(self, _arg: None) -> None:
        raise TruncatedRequest(len(self._header))

    def _on_upload(self, data: _Buffer) -> None:
        self._uploaded += len(data)

    def _on_upload_eof(self, _arg: None) -> None:
        self._state = ServerState.DONE if self._requested == 0 else ServerState.SENDING

    def _on_send(self, limit: int) -> int:
        assert self._requested is not None
        n = min(limit, self._requested - self._sent)
        self._sent += n
        if self._sent == self._requested:
            self._state = ServerState.DONE
        return n

    def _on_send_done(self, _limit: int) -> int:
        return 0


_SERVER_TRANSITIONS: Final[Mapping[tuple[ServerState, _In], Callable[[PerfServer, Any], Any]]] = {
    (ServerState.AWAIT_REQUEST, _In.DATA): PerfServer._on_header_data,
    (ServerState.AWAIT_REQUEST, _In.EOF): PerfServer._on_header_eof,
    (ServerState.RECEIVING, _In.DATA): PerfServer._on_upload,
    (ServerState.RECEIVING, _In.EOF): PerfServer._on_upload_eof,
    (ServerState.SENDING, _In.SEND): PerfServer._on_send,
    (ServerState.DONE, _In.SEND): PerfServer._on_send_done,
}
