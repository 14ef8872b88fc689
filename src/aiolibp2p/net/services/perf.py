"""Driver for ``/perf/1.0.0`` (machines: :mod:`aiolibp2p.proto.perf`).

* :class:`PerfHandler` serves the protocol (the host registers one when ``config.perf`` is set:
  ``options.services(perf=True)``).  It reads the request, drains the upload until the client's
  end of stream, then (never before) writes the reply in 64 KiB blocks out of one preallocated
  zero buffer, and closes.  A client that resets or disconnects mid-way (the timer variant asks
  for ``2**64 - 1`` bytes and resets when its timer fires) ends the handler quietly.
* :func:`perf` is the client: one run on a new stream over an open connection (or a new one),
  timed from the call (so a dial is included when it dials) to the server's end of stream.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiolibp2p.core.errors import ConnectionClosedError, StreamResetError
from aiolibp2p.log import host_logger as log
from aiolibp2p.net._compat import timeout as _timeout
from aiolibp2p.proto.perf import (
    BLOCK_SIZE,
    MAX_U64,
    PROTOCOL_ID,
    PerfClient,
    PerfProtocolError,
    PerfRequestTooLarge,
    PerfResult,
    PerfServer,
)

if TYPE_CHECKING:
    from aiolibp2p.core.multiaddr import Multiaddr
    from aiolibp2p.core.peer import PeerId
    from aiolibp2p.net.connection import Connection
    from aiolibp2p.net.host import Host, PeerInfo
    from aiolibp2p.net.stream import Stream

__all__ = ["PROTOCOL_ID", "PerfExchange", "PerfHandler", "PerfResult", "perf", "run_client"]

#: The one buffer every perf write comes from (the payload is arbitrary: zeros).
_ZEROS = bytes(BLOCK_SIZE)
_ZEROS_VIEW = memoryview(_ZEROS)
#: Bytes asked of the stream per read while draining (the stream returns what it has, up to it).
_READ_SIZE = 256 * 1024
#: Blocks written between explicit yields to the loop (see :func:`_write_blocks`).
_YIELD_EVERY = 16


def _block(n: int) -> bytes | memoryview:
    return _ZEROS if n == BLOCK_SIZE else _ZEROS_VIEW[:n]


async def _write_blocks(stream: Stream, next_size: Callable[[int], int]) -> None:
    """Write zero blocks while ``next_size(BLOCK_SIZE)`` says so.

    ``stream.write`` suspends only when a window or the socket buffer is full, so a bulk writer
    may go a long way without giving the loop a turn (mplex has no window at all; a transport
    whose socket failed drops writes until its scheduled ``connection_lost`` runs).  Yield every
    ``_YIELD_EVERY`` blocks (1 MiB): resets and closes are seen promptly and other tasks run.
    Measured on loopback between two processes, this costs nothing; a yield per block costs 3x.
    """
    written = 0
    while n := next_size(BLOCK_SIZE):
        await stream.write(_block(n))
        written += 1
        if written % _YIELD_EVERY == 0:
            await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class PerfExchange:
    """What the server saw of one finished perf stream."""

    peer: PeerId
    requested: int
    uploaded: int
    sent: int


class PerfHandler:
    """The ``/perf/1.0.0`` stream handler, with counters for tests and operators.

    ``max_send_bytes`` caps the reply per stream: a larger request is refused with a reset right
    after its header (:class:`~aiolibp2p.proto.perf.PerfRequestTooLarge`, counted in
    ``refused``).  ``completed`` keeps the last ``history`` finished exchanges.
    """

    def __init__(self, *, max_send_bytes: int = MAX_U64, history: int = 64) -> None:
        PerfServer(max_send_bytes=max_send_bytes)  # validates the cap
        self.max_send_bytes = max_send_bytes
        self.active = 0
        #: Streams the client reset (or whose connection closed) before the reply was complete.
        self.aborted = 0
        #: Requests above ``max_send_bytes``.
        self.refused = 0
        #: Streams whose client broke the protocol (e.g. ended inside the header).
        self.failed = 0
        self.completed: collections.deque[PerfExchange] = collections.deque(maxlen=history)

    async def __call__(self, stream: Stream) -> None:
        server = PerfServer(max_send_bytes=self.max_send_bytes)
        self.active += 1
        try:
            # 1. the request header, then the upload, until the client's end of stream
            while True:
                data = await stream.read(_READ_SIZE)
                if not data:
                    server.receive_eof()
                    break
                server.receive_data(data)
            # 2. only then the reply, one block at a time (writes wait on the send window)
            await _write_blocks(stream, server.next_send)
            await stream.close()
        except (StreamResetError, ConnectionClosedError) as exc:
            # the client is gone: the timer variant ends this way on purpose
            self.aborted += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("perf stream from %s ended after %d bytes sent: %s",
                          stream.remote_peer, server.sent, exc)  # fmt: skip
            await stream.reset()
            return
        except PerfRequestTooLarge as exc:
            self.refused += 1
            log.info("perf request from %s refused: %s", stream.remote_peer, exc)
            await stream.reset()
            return
        except PerfProtocolError:
            self.failed += 1
            raise  # the host logs it (info) and resets the stream
        finally:
            self.active -= 1
        requested = server.requested
        assert requested is not None
        self.completed.append(
            PerfExchange(stream.remote_peer, requested, server.uploaded, server.sent)
        )


async def run_client(stream: Stream, upload_bytes: int, download_bytes: int) -> PerfClient:
    """One perf exchange on an open ``/perf/1.0.0`` stream; returns the finished machine.

    Resets the stream on any error (or cancellation) and re-raises.
    """
    client = PerfClient(upload_bytes, download_bytes)
    try:
        await stream.write(client.start())
        await _write_blocks(stream, client.next_upload)
        client.close_write()
        await stream.close()
        while True:
            data = await stream.read(_READ_SIZE)
            if not data:
                client.receive_eof()
                break
            client.receive_data(data)
    except BaseException:
        await stream.reset()
        raise
    return client


async def perf(
    host: Host,
    peer: PeerId | str | Multiaddr | PeerInfo | Connection,
    *,
    upload_bytes: int,
    download_bytes: int,
    timeout: float | None = None,
    protocols: Sequence[str] = (PROTOCOL_ID,),
) -> PerfResult:
    """Upload ``upload_bytes``, then download ``download_bytes`` on a new perf stream.

    ``peer`` is a :class:`~aiolibp2p.net.connection.Connection` to use, or anything
    :meth:`Host.connect` takes (an open connection to that peer is reused, else one is dialed).
    ``time_seconds`` runs from this call to the server's end of stream, so it includes the dial
    when there was one.  ``timeout`` bounds the whole run (:class:`asyncio.TimeoutError`); without
    it only the dial and the protocol negotiation are bounded (by the host's timeouts).
    Raises :class:`~aiolibp2p.core.errors.ProtocolNotSupported` if the peer does not serve perf,
    :class:`~aiolibp2p.proto.perf.PerfProtocolError` if the reply breaks the protocol.
    """
    from aiolibp2p.net.connection import Connection

    start = time.perf_counter()

    async def run() -> PerfClient:
        conn = peer if isinstance(peer, Connection) else await host.connect(peer)
        stream = await conn.new_stream(list(protocols), timeout=host.config.negotiation_timeout)
        return await run_client(stream, upload_bytes, download_bytes)

    if timeout is None:
        client = await run()
    else:
        async with _timeout(timeout):
            client = await run()
    return PerfResult(time.perf_counter() - start, client.uploaded, client.downloaded)
