"""The stream-muxer conformance suite: what every muxer must do, over real hosts.

Each test runs once per muxer in :data:`MUXERS` (a new muxer joins that one list) and once per
event loop (asyncio, uvloop: the ``aio`` fixture, which also fails the test if a task, a socket
or a loop-level exception is left behind).  Both hosts listen on loopback TCP, secure with Noise
and negotiate only the muxer under test, so everything goes through the real data path:
``Stream`` -> ``Connection`` -> muxer machine -> Noise -> the kernel, and back.

The list of behaviours follows go-libp2p's ``p2p/muxer/testsuite`` in spirit: concurrent streams
both ways, half-close, reset, write after close, read after a remote reset, 1,000 streams on one
connection, large hash-checked transfers, backpressure with a slow reader (memory bounded),
closing a connection with streams open, and stream tables that end up empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import MPLEX, YAMUX
from aiolibp2p.core.errors import Libp2pError, LocalProtocolError, StreamResetError
from aiolibp2p.net import connection as connection_module
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.host import Host
from aiolibp2p.net.stream import Stream
from aiolibp2p.proto.mplex import MplexConfig
from aiolibp2p.proto.noise import machine as noise_machine
from aiolibp2p.proto.yamux.config import YamuxConfig

#: Every muxer the node supports; each must pass every test of this file.
MUXERS = [YAMUX, MPLEX]

LOCAL = "/ip4/127.0.0.1/tcp/0"
MiB = 1 << 20
KiB = 1 << 10

ECHO = "/conformance/echo/1.0.0"
#: Reads to EOF, then answers ``length (8 bytes) || sha256`` and closes.
SINK = "/conformance/sink/1.0.0"

Handler = Callable[[Stream], Awaitable[None]]


# ----------------------------------------------------------------------------------- helpers


@functools.cache
def blob() -> bytes:
    """64 MiB of random bytes, made once per test session (slices give distinct payloads)."""
    return os.urandom(64 * MiB)


def digest_of(data: bytes | memoryview) -> bytes:
    return len(data).to_bytes(8, "big") + hashlib.sha256(data).digest()


async def echo_handler(stream: Stream) -> None:
    while data := await stream.read(64 * KiB):
        await stream.write(data)
    await stream.close()


async def sink_handler(stream: Stream) -> None:
    hasher = hashlib.sha256()
    size = 0
    while chunk := await stream.read(MiB):
        hasher.update(chunk)
        size += len(chunk)
    await stream.write(size.to_bytes(8, "big") + hasher.digest())
    await stream.close()


async def send_all(stream: Stream, data: bytes | memoryview, *, chunk: int = MiB) -> None:
    """Write ``data`` in ``chunk``-sized writes, then half-close."""
    view = memoryview(data)
    for offset in range(0, len(view), chunk):
        await stream.write(view[offset : offset + chunk])
    await stream.close()


async def sink_transfer(stream: Stream, data: bytes | memoryview) -> None:
    """Send ``data`` to a sink and check the length and hash it saw."""
    await send_all(stream, data)
    assert await stream.read() == digest_of(data)


async def echo_transfer(stream: Stream, data: bytes | memoryview, *, chunk: int = MiB) -> None:
    """Send ``data`` through an echo while reading the echo back; compare hashes."""
    sender = asyncio.ensure_future(send_all(stream, data, chunk=chunk))
    try:
        hasher = hashlib.sha256()
        size = 0
        while piece := await stream.read(MiB):
            hasher.update(piece)
            size += len(piece)
        await sender
    finally:
        if not sender.done():
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
    assert size == len(data)
    assert hasher.digest() == hashlib.sha256(data).digest()


def machine_streams(conn: Connection) -> int:
    """Streams in the muxer machine's own table (0 once the connection is torn down)."""
    muxer = conn._muxer
    return 0 if muxer is None else muxer.stream_count  # type: ignore[attr-defined]


async def eventually(
    condition: Callable[[], bool], what: Callable[[], str], *, timeout: float = 5.0
) -> None:
    """Poll ``condition`` every 5 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout} s: {what()}")
        await asyncio.sleep(0.005)


async def tables_empty(*conns: Connection, timeout: float = 5.0) -> None:
    """Every stream finished: no stream left in the connections' or the machines' tables, and
    no inbound stream still counted as negotiating."""

    def sizes() -> list[tuple[int, int, int]]:
        return [(len(c.streams), machine_streams(c), c.negotiating_inbound) for c in conns]

    await eventually(
        lambda: all(s == (0, 0, 0) for s in sizes()),
        lambda: f"(connection streams, machine streams, negotiating) per side: {sizes()}",
        timeout=timeout,
    )


async def next_item(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


@dataclass
class Pair:
    """Two hosts speaking only ``muxer``, connected once: ``ab`` is a's side, ``ba`` b's."""

    muxer: str
    a: Host
    b: Host
    ab: Connection
    ba: Connection

    @property
    def conns(self) -> tuple[Connection, Connection]:
        return self.ab, self.ba


@contextlib.asynccontextmanager
async def connected(
    muxer: str, handlers: dict[str, Handler] | None = None, *options: Any
) -> AsyncIterator[Pair]:
    """Two hosts serving ``handlers`` (plus echo and sink), connected and identified both ways,
    with their stream tables empty; both closed on exit."""
    served: dict[str, Handler] = {ECHO: echo_handler, SINK: sink_handler, **(handlers or {})}
    hosts: list[Host] = []
    try:
        for _ in range(2):
            host = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer), *options)
            hosts.append(host)
            for protocol, handler in served.items():
                host.set_stream_handler(protocol, handler)
        a, b = hosts
        ab = await a.connect(b.full_addrs()[0])
        await a.identify(b.peer_id)
        await b.identify(a.peer_id)
        (ba,) = b.connections(a.peer_id)
        assert ab.muxer == ba.muxer == muxer
        await tables_empty(ab, ba)  # the identify streams are done
        yield Pair(muxer, a, b, ab, ba)
    finally:
        for host in hosts:
            await host.close()


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("muxer", MUXERS)
def test_concurrent_streams_both_directions(aio: Any, muxer: str) -> None:
    """Each side opens N streams to the other at once; every echo comes back intact."""
    n = 64

    def body(tag: bytes, i: int) -> bytes:
        size = 300 * KiB if i % 16 == 5 else 1 + (i * 7919) % 4096  # some exceed a window
        start = (i * 104729 + len(tag) * 7) % (len(blob()) - size)
        return tag + b"%d|" % i + blob()[start : start + size]

    async def main() -> None:
        async with connected(muxer) as p:

            async def side(src: Host, dst: Host, conn: Connection, tag: bytes) -> None:
                # new_stream with one protocol is lazy: all N are open before any byte moves
                streams = [await src.new_stream(dst.peer_id, [ECHO]) for _ in range(n)]
                assert src.connections(dst.peer_id) == [conn]
                assert len({s.stream_id for s in streams}) == n
                assert sum(1 for s in conn.streams if s in streams) == n

                async def one(i: int, stream: Stream) -> None:
                    data = body(tag, i)
                    await stream.write(data)
                    await stream.close()
                    assert await stream.read() == data

                await asyncio.gather(*(one(i, s) for i, s in enumerate(streams)))

            await asyncio.gather(side(p.a, p.b, p.ab, b"a->b "), side(p.b, p.a, p.ba, b"b->a "))
            await tables_empty(*p.conns)

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_half_close(aio: Any, muxer: str) -> None:
    """Closing our write side keeps our read side open; the remote sees EOF and writes back.

    Both ways: the opener half-closes first, then the acceptor does."""

    async def main() -> None:
        seen: asyncio.Queue[Any] = asyncio.Queue()

        async def answer_after_eof(stream: Stream) -> None:
            got = await stream.read()  # to EOF: the opener closed its write side
            await seen.put(("eof", got, await stream.read()))  # EOF again, not an error
            for k in range(3):  # still writable after the remote's close, over several turns
                await stream.write(b"reply %d: " % k + got[::-1])
                await asyncio.sleep(0.01)
            await stream.close()

        async def close_first(stream: Stream) -> None:
            await stream.write(b"greeting")
            await stream.close()
            await seen.put(("closed", stream._closed_write))
            await seen.put(("got", await stream.read()))  # reads on after its own close

        async with connected(
            muxer, {"/half/answer": answer_after_eof, "/half/first": close_first}
        ) as p:
            # 1. the opener half-closes
            s = await p.a.new_stream(p.b.peer_id, ["/half/answer"])
            await s.write(b"hello ")
            await s.write(b"world")
            await s.close()
            await s.close()  # idempotent
            assert await next_item(seen) == ("eof", b"hello world", b"")
            expected = b"".join(b"reply %d: dlrow olleh" % k for k in range(3))
            assert await s.read() == expected
            assert await s.read() == b""
            # 2. the acceptor half-closes
            t = await p.a.new_stream(p.b.peer_id, ["/half/first"])
            assert await t.read() == b"greeting"  # then EOF
            assert await next_item(seen) == ("closed", True)
            assert not t._closed_write
            for k in range(3):  # our side is still writable after the remote's EOF
                await t.write(b"late %d;" % k)
                await asyncio.sleep(0.01)
            await t.close()
            assert await next_item(seen) == ("got", b"late 0;late 1;late 2;")
            assert p.ab.is_open and p.ba.is_open
            await tables_empty(*p.conns)

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_reset(aio: Any, muxer: str) -> None:
    """A reset aborts the stream on both sides; the connection and other streams carry on."""

    async def main() -> None:
        outcomes: asyncio.Queue[Any] = asyncio.Queue()

        async def hold(stream: Stream) -> None:
            try:
                while data := await stream.read(64 * KiB):
                    await stream.write(data)
            except StreamResetError:
                try:
                    await stream.write(b"after the reset")
                except StreamResetError:
                    await outcomes.put(("read and write raised", stream.is_reset))
                    return
            await outcomes.put(("no reset seen", stream.is_reset))

        async def reset_after_echo(stream: Stream) -> None:
            data = await stream.readexactly(4)
            await stream.write(data)
            await asyncio.sleep(0.02)  # let the echo leave before the reset
            await stream.reset()
            raised = []
            for op in (stream.read(), stream.write(b"x")):
                try:
                    await op
                except StreamResetError:
                    raised.append(True)
            await outcomes.put(("acceptor reset", stream.is_reset, raised))

        async with connected(muxer, {"/hold": hold, "/reset-after-echo": reset_after_echo}) as p:
            # another stream is mid-transfer while the resets happen
            other = await p.a.new_stream(p.b.peer_id, [ECHO])
            transfer = asyncio.ensure_future(
                echo_transfer(other, blob()[: 4 * MiB], chunk=64 * KiB)
            )
            # 1. the opener resets
            s = await p.a.new_stream(p.b.peer_id, ["/hold"])
            await s.write(b"ping")
            assert await s.readexactly(4) == b"ping"
            await s.reset()
            assert s.is_reset
            with pytest.raises(StreamResetError):
                await s.read()
            with pytest.raises(StreamResetError):
                await s.write(b"x")
            await s.reset()  # idempotent
            assert await next_item(outcomes) == ("read and write raised", True)
            # 2. the acceptor resets
            t = await p.a.new_stream(p.b.peer_id, ["/reset-after-echo"])
            await t.write(b"pong")
            assert await t.readexactly(4) == b"pong"
            assert await next_item(outcomes) == ("acceptor reset", True, [True, True])
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(t.read(), 5)
            assert t.is_reset
            with pytest.raises(StreamResetError):
                await t.write(b"x")
            # the connection and the other stream were not affected
            await asyncio.wait_for(transfer, 30)
            assert p.a.connections(p.b.peer_id) == [p.ab] and p.ab.is_open
            assert p.b.connections(p.a.peer_id) == [p.ba] and p.ba.is_open
            u = await p.a.new_stream(p.b.peer_id, [ECHO])
            await u.write(b"still fine")
            await u.close()
            assert await u.read() == b"still fine"
            await tables_empty(*p.conns)

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_write_after_close(aio: Any, muxer: str) -> None:
    """A write after close raises a Libp2pError and puts nothing on the wire."""

    async def main() -> None:
        received: asyncio.Queue[Any] = asyncio.Queue()

        async def collect(stream: Stream) -> None:
            await received.put(await stream.read())

        async def close_then_write(stream: Stream) -> None:
            await stream.write(b"bye")
            await stream.close()
            try:
                await stream.write(b"after close")
            except Libp2pError as exc:
                await received.put(exc)
            else:
                await received.put("no error")

        async with connected(
            muxer, {"/collect": collect, "/close-then-write": close_then_write}
        ) as p:
            muxer_machine = p.ab._muxer
            assert muxer_machine is not None
            sent: list[tuple[int, int]] = []
            # Machines have __slots__: spy on the class, recording this machine's calls only.
            machine_class = type(muxer_machine)
            original = machine_class.send_data

            def spy(self: Any, stream_id: int, data: Any, now: float) -> int:
                if self is muxer_machine:
                    sent.append((stream_id, len(memoryview(data))))
                return original(self, stream_id, data, now)

            machine_class.send_data = spy  # type: ignore[method-assign]
            try:
                s = await p.a.new_stream(p.b.peer_id, ["/collect"])
                await s.write(b"abc")
                await s.close()
                before = list(sent)
                for payload in (b"more", b"", bytearray(100 * KiB)):
                    with pytest.raises(Libp2pError) as info:
                        await s.write(payload)
                    assert isinstance(info.value, LocalProtocolError)
                assert (s.stream_id, 3) in before
                assert sent == before  # nothing reached the muxer, so nothing reached the wire
            finally:
                machine_class.send_data = original  # type: ignore[method-assign]
            # the remote got exactly the bytes before the close, then EOF
            assert await next_item(received) == b"abc"
            assert await s.read() == b""
            # the acceptor's write after its own close fails the same way
            t = await p.a.new_stream(p.b.peer_id, ["/close-then-write"])
            assert await t.read() == b"bye"
            assert isinstance(await next_item(received), LocalProtocolError)
            await t.close()
            # no protocol error followed (yamux would fail the session on data after FIN)
            u = await p.a.new_stream(p.b.peer_id, [ECHO])
            await u.write(b"ok")
            await u.close()
            assert await u.read() == b"ok"
            assert p.ab.is_open and p.ba.is_open
            await tables_empty(*p.conns)

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_read_after_remote_reset(aio: Any, muxer: str) -> None:
    """After the remote resets, reads raise StreamResetError (a blocked read wakes up), every
    time, and so do writes; no byte is corrupted on the way."""

    async def main() -> None:
        results: asyncio.Queue[Any] = asyncio.Queue()

        async def blocked_reader(stream: Stream) -> None:
            first = await stream.readexactly(4)
            await results.put(("first", first))
            errors = []
            try:
                await stream.read()  # blocked here when the reset arrives
            except StreamResetError as exc:
                errors.append(exc)
            for op in (stream.read(), stream.read(10), stream.readexactly(1), stream.write(b"w")):
                try:
                    await op
                except StreamResetError as exc:
                    errors.append(exc)
            await results.put(("errors", len(errors), stream.is_reset))

        async def idle_reader(stream: Stream) -> None:
            # does not read until the reset arrived, then drains what is left
            await eventually(lambda: stream.is_reset, lambda: "no reset")
            got = bytearray()
            try:
                for _ in range(1000):
                    chunk = await stream.read(1000)
                    if not chunk:
                        break
                    got += chunk
            except StreamResetError:
                await results.put(("idle", bytes(got)))
            else:
                await results.put(("idle: no error", bytes(got)))

        async with connected(muxer, {"/blocked": blocked_reader, "/idle": idle_reader}) as p:
            s = await p.a.new_stream(p.b.peer_id, ["/blocked"])
            await s.write(b"data")
            assert await next_item(results) == ("first", b"data")
            await asyncio.sleep(0.02)  # the remote is now parked in read()
            await s.reset()
            assert await next_item(results) == ("errors", 5, True)

            t = await p.a.new_stream(p.b.peer_id, ["/idle"])
            payload = b"unread bytes " * 100
            await t.write(payload)
            await asyncio.sleep(0.05)
            await t.reset()
            kind, got = await next_item(results)
            assert kind == "idle"
            assert payload.startswith(got)  # what a reader still gets is never corrupted
            assert p.ab.is_open and p.ba.is_open
            await tables_empty(*p.conns)

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_1000_concurrent_streams(aio: Any, muxer: str) -> None:
    """1,000 streams open at once on one connection, each echoing a distinct payload."""
    n = 1000

    async def main() -> None:
        async with connected(muxer) as p:
            # Lazy proposals: new_stream returns at once, except that yamux makes streams past
            # 256 unacknowledged ones wait for acknowledgements (b acks as it reads the
            # proposals); none of them can finish before the echoes below start.
            streams = [await p.a.new_stream(p.b.peer_id, [ECHO]) for _ in range(n)]
            assert len(p.ab.streams) == n  # all open at the same time
            assert p.a.connections(p.b.peer_id) == [p.ab]

            async def one(i: int, stream: Stream) -> None:
                size = 1 + (i * 37) % 3000
                data = b"%04d:" % i + blob()[i * 4096 : i * 4096 + size]
                await stream.write(data)
                await stream.close()
                assert await stream.read() == data

            await asyncio.gather(*(one(i, s) for i, s in enumerate(streams)))
            assert p.a.connections(p.b.peer_id) == [p.ab]
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_large_one_way_transfer(aio: Any, muxer: str) -> None:
    """64 MiB one way on one stream, checked by hash on the far side."""
    size = 64 * MiB

    async def main() -> None:
        async with connected(muxer) as p:
            s = await p.a.new_stream(p.b.peer_id, [SINK])
            await sink_transfer(s, memoryview(blob())[:size])
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_bulk_writes_interleaved_with_small_ones_keep_order(aio: Any, muxer: str) -> None:
    """Bulk writes of several sizes that never wait (sealed and held for one transport write)
    interleaved with small writes and closes on other streams: every byte arrives intact and
    in order on each stream, and the FIN right after the last bulk write loses nothing."""
    sizes = [64 * KiB, 64 * KiB + 1, 200 * KiB, 17, 64 * KiB - 1, 300 * KiB, 5, 128 * KiB]

    async def main() -> None:
        async with connected(muxer) as p:
            bulk = await p.a.new_stream(p.b.peer_id, [SINK])
            small = [await p.a.new_stream(p.b.peer_id, [ECHO]) for _ in range(4)]
            sent = bytearray()
            offset = 0
            for round_ in range(3):
                for size in sizes:
                    piece = memoryview(blob())[offset : offset + size]
                    offset += size
                    await bulk.write(bytes(piece) if size % 2 else piece)
                    sent += piece
                    s = small[(round_ + size) % len(small)]
                    await s.write(b"%d:%d;" % (round_, size))
            await bulk.close()
            expected = {s.stream_id: b"" for s in small}
            for round_ in range(3):
                for size in sizes:
                    s = small[(round_ + size) % len(small)]
                    expected[s.stream_id] += b"%d:%d;" % (round_, size)
            for s in small:
                await s.close()
            assert await bulk.read() == digest_of(bytes(sent))
            for s in small:
                assert await s.read() == expected[s.stream_id]
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_reads_of_every_size_reassemble_the_stream(aio: Any, muxer: str) -> None:
    """Reads smaller and larger than the received chunks (split and joined) give back the
    exact byte sequence, and each read returns at most the bytes asked for."""
    size = 2 * MiB
    data = bytes(memoryview(blob())[3 * MiB : 3 * MiB + size])
    read_sizes = [1, 7, 4096, 64 * KiB - 1, 64 * KiB + 3, 300 * KiB, MiB]

    async def main() -> None:
        async with connected(muxer) as p:
            s = await p.a.new_stream(p.b.peer_id, [ECHO])
            sender = asyncio.ensure_future(send_all(s, data))
            got = bytearray()
            i = 0
            while True:
                want = read_sizes[i % len(read_sizes)]
                i += 1
                piece = await s.read(want)
                if not piece:
                    break
                assert type(piece) is bytes
                assert len(piece) <= want
                got += piece
            await sender
            assert bytes(got) == data
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_large_echo_both_ways(aio: Any, muxer: str) -> None:
    """16 MiB out and the same 16 MiB back on one stream at the same time, hash-checked."""
    size = 16 * MiB

    async def main() -> None:
        async with connected(muxer) as p:
            s = await p.a.new_stream(p.b.peer_id, [ECHO])
            await echo_transfer(s, memoryview(blob())[8 * MiB : 8 * MiB + size])
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_eight_large_streams_concurrently(aio: Any, muxer: str) -> None:
    """8 streams x 8 MiB at once (4 opened by each side), each checked by hash."""
    each = 8 * MiB

    async def main() -> None:
        async with connected(muxer) as p:
            view = memoryview(blob())

            async def one(k: int) -> None:
                src, dst = (p.a, p.b) if k % 2 == 0 else (p.b, p.a)
                s = await src.new_stream(dst.peer_id, [SINK])
                await sink_transfer(s, view[k * each : (k + 1) * each])

            await asyncio.gather(*(one(k) for k in range(8)))
            await tables_empty(*p.conns)

    aio(main, timeout=60)


#: The slow-reader test's per-stream buffer limit: low, so 8 MiB must pause the socket.
SLOW_READER_LIMIT = 1 << 20


def _mplex_buffer_bound() -> int:
    """The most unread bytes an mplex stream can hold, from the code.

    mplex has no flow control; ``Connection._check_backpressure`` pauses the socket as soon as a
    stream holds more than ``SLOW_READER_LIMIT`` unread bytes (the host's ``max_stream_buffer``,
    set low in this test), inside the
    ``buffer_updated`` call that delivered them, and resumes only below half of it.  One
    ``buffer_updated`` call delivers at most what it was handed (``_RECV_BUFFER`` bytes) plus
    what was carried over from the previous call: a partial Noise frame (< 65535 + 2 bytes)
    and a partial mplex frame (< ``max_frame_size`` + header).  So a stream holds at most
    the threshold plus one call's worth.
    """
    noise_frame = noise_machine.MAX_MESSAGE_SIZE + 2
    mplex_frame = MplexConfig().max_frame_size + 20
    return SLOW_READER_LIMIT + connection_module._RECV_BUFFER + noise_frame + mplex_frame


def _shrink_socket_buffers(sender: Connection, receiver: Connection) -> int:
    """Pin the kernel buffers between the two ends to ~64 KiB (no autotuning); return the
    bytes they can hold (what the kernel reports, i.e. doubled for its bookkeeping)."""
    send_sock = sender._transport.get_extra_info("socket")  # type: ignore[union-attr]
    recv_sock = receiver._transport.get_extra_info("socket")  # type: ignore[union-attr]
    send_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KiB)
    recv_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
    return send_sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + recv_sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF
    )


@pytest.mark.parametrize("muxer", MUXERS)
def test_slow_reader_backpressure(aio: Any, muxer: str) -> None:
    """A reader much slower than its writer loses nothing; the writer is suspended and the
    receiver's memory stays bounded.

    yamux: the receiver's ``_buffered`` never exceeds the stream's receive window (the machine
    refuses data beyond it), and after every write the writer is no further ahead of the
    reader than that window: every byte it sent was granted by a Window Update.

    mplex: ``_buffered`` stays under :func:`_mplex_buffer_bound`, the receiving connection
    did pause its socket reads, and the writer is never further ahead of the reader than what
    the path can hold: that bound, the two (pinned) kernel socket buffers, and the sender's
    transport buffer (it waits for drain above ``_WRITE_HIGH_WATER``) plus one write.
    """
    total = 8 * MiB
    chunk_size = 256 * KiB

    async def main() -> None:
        state: dict[str, Any] = {"read": 0, "peak": 0, "paused": False, "window_peak": 0}
        ready: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def receive_window(stream: Stream) -> int | None:
            machine = stream.connection._muxer
            if muxer != YAMUX or machine is None:
                return None
            try:
                return machine.receive_window(stream.stream_id)  # type: ignore[attr-defined]
            except Libp2pError:  # the stream left the table (remote FIN and our FIN)
                return None

        def sample(stream: Stream) -> None:
            buffered = stream._buffered
            state["peak"] = max(state["peak"], buffered)
            state["paused"] = state["paused"] or stream.connection._reading_paused
            window = receive_window(stream)
            if window is not None:
                state["window_peak"] = max(state["window_peak"], window)
                assert buffered <= window, (buffered, window)
            elif muxer == MPLEX:
                assert buffered <= _mplex_buffer_bound(), buffered

        async def slow_reader(stream: Stream) -> None:
            ready.set_result(stream)
            hasher = hashlib.sha256()
            for _ in range(total // (16 * KiB) + 10):  # bounded: 16 KiB per turn at least
                sample(stream)
                chunk = await stream.read(64 * KiB)
                if not chunk:
                    break
                hasher.update(chunk)
                state["read"] += len(chunk)
                await asyncio.sleep(0.002)  # ~30 MB/s: far slower than the writer
            done.set_result(hasher.digest())

        limit = o.limits(max_stream_buffer=SLOW_READER_LIMIT)
        async with connected(muxer, {"/slow": slow_reader}, limit) as p:
            kernel = _shrink_socket_buffers(p.ab, p.ba)
            lead_bound = (
                _mplex_buffer_bound()
                + kernel
                + connection_module._WRITE_HIGH_WATER
                + 2 * (chunk_size + 16 * KiB)  # one write in the transport, one in flight
            )
            data = memoryview(blob())[:total]
            s = await p.a.new_stream(p.b.peer_id, ["/slow"])
            lead = 0
            for offset in range(0, total, chunk_size):
                await s.write(data[offset : offset + chunk_size])
                written = offset + chunk_size
                lead = max(lead, written - state["read"])
                if muxer == YAMUX and ready.done():
                    window = receive_window(ready.result())
                    if window is not None:  # every byte sent was granted: sent <= read + window
                        assert written - state["read"] <= window, (written, state, window)
            await s.close()
            assert await asyncio.wait_for(done, 30) == hashlib.sha256(data).digest()
            assert state["read"] == total
            if muxer == YAMUX:
                assert 0 < state["peak"] <= state["window_peak"] <= YamuxConfig().max_window
                assert lead <= state["window_peak"]
            else:
                assert state["paused"], "the receiver never paused reading the socket"
                assert 0 < state["peak"] <= _mplex_buffer_bound()
                assert lead <= lead_bound, (lead, lead_bound)
            await tables_empty(*p.conns)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_closing_the_connection_resets_open_streams(aio: Any, muxer: str) -> None:
    """Closing a connection with streams open (both directions, idle or mid-transfer) resets
    every one of them on both sides; the hosts can connect again afterwards."""

    async def main() -> None:
        outcomes: asyncio.Queue[Any] = asyncio.Queue()

        async def park(stream: Stream) -> None:
            try:
                while await stream.read(64 * KiB):
                    pass
            except StreamResetError:
                await outcomes.put("reset")
            else:
                await outcomes.put("eof")

        async with connected(muxer, {"/park": park}) as p:
            mine = [await p.a.new_stream(p.b.peer_id, ["/park"]) for _ in range(3)]
            theirs = [await p.b.new_stream(p.a.peer_id, ["/park"]) for _ in range(3)]
            for s in mine + theirs:
                await s.write(b"x" * 1000)
            # one stream mid-transfer (a writer that would go on for a while)
            busy = await p.a.new_stream(p.b.peer_id, ["/park"])

            async def pump() -> None:
                for _ in range(10_000):
                    await busy.write(blob()[: 64 * KiB])
                    await asyncio.sleep(0)  # a loopback socket may never push back

            pumping = asyncio.ensure_future(pump())
            await eventually(lambda: len(p.ba.streams) >= 7, lambda: f"{p.ba.streams}")
            await eventually(lambda: len(p.ab.streams) >= 7, lambda: f"{p.ab.streams}")
            await asyncio.sleep(0.05)
            await p.ab.close()
            # a's side: its streams (and the busy writer) read and write StreamResetError
            for s in mine:
                with pytest.raises(StreamResetError):
                    await asyncio.wait_for(s.read(), 5)
                with pytest.raises(StreamResetError):
                    await s.write(b"y")
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(pumping, 5)
            # b's side: its own streams are reset as well (seen once the socket closes)
            for s in theirs:
                with pytest.raises(StreamResetError):
                    await asyncio.wait_for(s.read(), 5)
                with pytest.raises(StreamResetError):
                    await s.write(b"y")
            # every handler, b's for a's 4 streams and a's for b's 3, saw a reset, not EOF
            assert [await next_item(outcomes) for _ in range(7)] == ["reset"] * 7
            assert p.ab.streams == [] and p.ba.streams == []
            await eventually(lambda: not p.b.connections(p.a.peer_id), lambda: "b still connected")
            assert not p.a.connections(p.b.peer_id)
            # the hosts are fine: a new connection works
            again = await p.a.connect(p.b.full_addrs()[0])
            assert again is not p.ab
            s = await p.a.new_stream(p.b.peer_id, [ECHO])
            await s.write(b"again")
            await s.close()
            assert await s.read() == b"again"

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_stream_tables_empty_after_every_kind_of_ending(aio: Any, muxer: str) -> None:
    """However a stream ends, neither side keeps it: closed both ways, reset by either side,
    a handler that returns without closing or raises, a refused protocol, and a stream the
    opener closes before its protocol was even proposed."""

    async def main() -> None:
        async def returns_without_close(stream: Stream) -> None:
            await stream.read()

        async def raises(stream: Stream) -> None:
            await stream.read(1)
            raise RuntimeError("handler bug (expected in this test)")

        async def resets(stream: Stream) -> None:
            await stream.read(1)
            await stream.reset()

        handlers: dict[str, Handler] = {
            "/returns": returns_without_close,
            "/raises": raises,
            "/resets": resets,
        }
        async with connected(muxer, handlers) as p:
            # closed both ways
            s = await p.a.new_stream(p.b.peer_id, [ECHO])
            await s.write(b"1")
            await s.close()
            assert await s.read() == b"1"
            # reset by the opener
            s = await p.a.new_stream(p.b.peer_id, [ECHO])
            await s.write(b"2")
            assert await s.read(1) == b"2"
            await s.reset()
            # reset by the acceptor
            s = await p.a.new_stream(p.b.peer_id, ["/resets"])
            await s.write(b"3")
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(s.read(), 5)
            # the handler returns without closing (the host closes for it)
            s = await p.a.new_stream(p.b.peer_id, ["/returns"])
            await s.close()
            assert await s.read() == b""
            # the handler raises (the host resets the stream)
            s = await p.a.new_stream(p.b.peer_id, ["/raises"])
            await s.write(b"4")
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(s.read(), 5)
            # a refused protocol (lazy proposal: the refusal surfaces on read)
            s = await p.a.new_stream(p.b.peer_id, ["/not-served"])
            with pytest.raises(Libp2pError):
                await asyncio.wait_for(s.read(), 5)
            # refused, non-lazy
            with pytest.raises(Libp2pError):
                await p.a.new_stream(p.b.peer_id, ["/not-served", "/nor-this"])
            # a raw stream closed before any protocol was proposed: the acceptor sees EOF
            # during negotiation
            raw = p.ab.open_stream()
            await raw.close()
            with contextlib.suppress(StreamResetError):
                assert await asyncio.wait_for(raw.read(), 5) == b""
            await tables_empty(*p.conns)
            assert p.ab.is_open and p.ba.is_open

    aio(main)
