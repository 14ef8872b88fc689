"""When stream writes reach the socket: small writes on an idle connection at once, bulk writes
coalesced, and reads that owe the remote nothing schedule no flush."""

from __future__ import annotations

from typing import Any

import pytest
from _echo import ECHO, echo_handler

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import MPLEX, YAMUX
from aiolibp2p.net import connection as connection_module
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.stream import Stream

LOCAL = "/ip4/127.0.0.1/tcp/0"


async def open_echo(muxer: str) -> tuple[aiolibp2p.Host, aiolibp2p.Host, Connection, Stream]:
    a = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
    b = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
    b.set_stream_handler(ECHO, echo_handler)
    conn = await a.connect(b.full_addrs()[0])
    stream = await conn.new_stream([ECHO])
    await stream.write(b"warm-up")  # the lazy proposal goes out and is answered
    assert await stream.readexactly(7) == b"warm-up"
    return a, b, conn, stream


def sent_frames(conn: Connection) -> int:
    noise = conn._secure
    assert noise is not None
    return int(noise.send_nonce)  # type: ignore[attr-defined]


@pytest.mark.parametrize("muxer", [YAMUX, MPLEX])
def test_a_small_write_on_an_idle_connection_is_sealed_and_written_at_once(
    aio: Any, muxer: str
) -> None:
    async def main() -> None:
        a, b, conn, stream = await open_echo(muxer)
        try:
            for i in range(20):  # one write per round trip: each goes out in the write call
                before = sent_frames(conn)
                await stream.write(b"ping %02d" % i)
                assert sent_frames(conn) == before + 1
                assert conn._flush_handle is None and conn._held is None
                assert await stream.readexactly(7) == b"ping %02d" % i
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_a_burst_of_small_writes_coalesces_past_the_direct_limit(aio: Any) -> None:
    async def main() -> None:
        a, b, conn, stream = await open_echo(YAMUX)
        try:
            before = sent_frames(conn)
            burst = 3 * connection_module._DIRECT_MAX
            for i in range(burst):  # no read in between: the connection is never idle again
                await stream.write(b"%03d" % i)
            # the first _DIRECT_MAX went out one by one, the rest wait for one flush
            assert sent_frames(conn) == before + connection_module._DIRECT_MAX
            assert conn._flush_handle is not None
            expected = b"".join(b"%03d" % i for i in range(burst))
            assert await stream.readexactly(len(expected)) == expected
            assert sent_frames(conn) == before + connection_module._DIRECT_MAX + 1
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_bulk_writes_are_held_for_one_transport_write(aio: Any) -> None:
    async def main() -> None:
        a, b, conn, stream = await open_echo(YAMUX)
        try:
            block = bytes(range(256)) * 256  # 64 KiB: sealed as it is queued, then held
            await stream.write(block)
            assert conn._held is not None and conn._flush_handle is not None
            await stream.write(block)
            assert conn._held is not None  # still below the coalescing size
            received = await stream.readexactly(2 * len(block))
            assert received == block * 2
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_reading_schedules_no_flush_until_a_window_update_is_due(aio: Any) -> None:
    async def main() -> None:
        a, b, conn, stream = await open_echo(YAMUX)
        try:
            for _ in range(10):
                await stream.write(b"x" * 100)
                assert await stream.readexactly(100) == b"x" * 100
                assert conn._flush_handle is None  # 100 bytes owe the remote no window
            # Reading half a window does owe one: it is scheduled and the echo goes on.
            size = 512 * 1024
            payload = bytes(size)
            total = 0
            await stream.write(payload)
            while total < size:
                total += len(await stream.read(size))
            assert total == size
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=60)
