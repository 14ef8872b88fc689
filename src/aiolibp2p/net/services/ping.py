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

_STATE_KEY = "ping.state"
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


class _PingState:
    """Per connection: the reused ping stream, its client half, and a lock (one ping at a time)."""

    __slots__ = ("client", "lock", "offset", "random", "stream")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.stream: Stream | None = None
        self.client = PingClient()
        self.random = b""
        self.offset = 0

    def payload(self) -> bytes:
        """32 random bytes, drawn from the OS 64 pings at a time (one syscall, not 64)."""
        offset = self.offset
        if offset >= len(self.random):
            self.random, offset = os.urandom(PING_SIZE * 64), 0
        self.offset = offset + PING_SIZE
        return self.random[offset : offset + PING_SIZE]


async def ping_over(conn: Connection) -> float:
    """One ping on the connection's (reused) ping stream; returns the RTT in seconds."""
    state = conn.data.get(_STATE_KEY)
    if state is None:
        state = conn.data[_STATE_KEY] = _PingState()
    assert isinstance(state, _PingState)
    async with state.lock:
        stream = state.stream
        if stream is None or stream._error is not None:
            stream = state.stream = await conn.new_stream([PROTOCOL_ID])
            state.client = PingClient()
        client = state.client
        try:
            await stream.write(client.start(state.payload(), time.monotonic()))
            while True:
                data = await stream.read(PING_SIZE)
                if not data:
                    raise StreamResetError("ping stream closed by the remote")
                rtt = client.receive_data(data, time.monotonic())
                if rtt is not None:
                    return rtt
        except BaseException:
            state.stream = None
            await stream.reset()
            raise
