"""Driver for ``/ipfs/ping/1.0.0`` (codec: :mod:`aiolibp2p.proto.ping`)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from aiolibp2p.core.errors import StreamResetError
from aiolibp2p.proto.ping import PING_SIZE, PROTOCOL_ID, PingClient, PingServer

if TYPE_CHECKING:
    from aiolibp2p.net.connection import Connection
    from aiolibp2p.net.stream import Stream

__all__ = ["PROTOCOL_ID", "serve_ping", "ping_over"]

_STREAM_KEY = "ping.stream"
_LOCK_KEY = "ping.lock"
#: Inbound ping streams served at once per connection (the spec: accept at most 2).
MAX_INBOUND_PER_CONNECTION = 2
_INBOUND_KEY = "ping.inbound"


async def serve_ping(stream: Stream) -> None:
    """Echo 32-byte blocks until the remote closes."""
    conn = stream.connection
    active = int(conn.data.get(_INBOUND_KEY, 0))  # type: ignore[call-overload]
    if active >= MAX_INBOUND_PER_CONNECTION:
        await stream.reset()
        return
    conn.data[_INBOUND_KEY] = active + 1
    server = PingServer()
    try:
        while True:
            data = await stream.read(64 * PING_SIZE)
            if not data:
                break
            echo = server.receive_data(data)
            if echo:
                await stream.write(echo)
        await stream.close()
    except StreamResetError:
        pass
    finally:
        conn.data[_INBOUND_KEY] = int(conn.data.get(_INBOUND_KEY, 1)) - 1  # type: ignore[call-overload]


async def ping_over(conn: Connection) -> float:
    """One ping on the connection's (reused) ping stream; returns the RTT in seconds."""
    lock = conn.data.get(_LOCK_KEY)
    if lock is None:
        lock = conn.data[_LOCK_KEY] = asyncio.Lock()
    assert isinstance(lock, asyncio.Lock)
    async with lock:
        stream = conn.data.get(_STREAM_KEY)
        if stream is None or getattr(stream, "_error", None) is not None:
            stream = await conn.new_stream([PROTOCOL_ID])
            conn.data[_STREAM_KEY] = stream
        client = PingClient()
        try:
            await stream.write(client.start(os.urandom(PING_SIZE), time.monotonic()))  # type: ignore[attr-defined]
            while True:
                data = await stream.read(PING_SIZE)  # type: ignore[attr-defined]
                if not data:
                    raise StreamResetError("ping stream closed by the remote")
                rtt = client.receive_data(data, time.monotonic())
                if rtt is not None:
                    return rtt
        except BaseException:
            conn.data.pop(_STREAM_KEY, None)
            await stream.reset()  # type: ignore[attr-defined]
            raise
