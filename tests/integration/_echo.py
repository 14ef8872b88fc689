"""The echo service the integration tests share, and a QUIC host serving it."""

from __future__ import annotations

from typing import Any

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.net.stream import Stream

ECHO = "/echo/1.0.0"
LOCAL_TCP = "/ip4/127.0.0.1/tcp/0"
LOCAL_QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"


async def echo_handler(stream: Stream) -> None:
    """Write back what is read until EOF, then close."""
    while True:
        data = await stream.read(1 << 16)
        if not data:
            break
        await stream.write(data)
    await stream.close()


async def quic_host(*options: Any) -> aiolibp2p.Host:
    """A host listening on 127.0.0.1 over QUIC only, serving :data:`ECHO`."""
    host = await aiolibp2p.new_host(o.listen(LOCAL_QUIC), *options)
    host.set_stream_handler(ECHO, echo_handler)
    return host
