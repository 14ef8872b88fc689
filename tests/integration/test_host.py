"""Two (or more) real hosts over loopback TCP: the node's behaviour end to end."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

import pytest
from _echo import ECHO, echo_handler

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import MPLEX, YAMUX
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import (
    DialError,
    Libp2pError,
    PeerIdMismatch,
    ProtocolNotSupported,
    StreamResetError,
)
from aiolibp2p.core.events import ConnectionOpened, PeerConnected, PeerIdentified, StreamOpened
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net._compat import timeout
from aiolibp2p.net.stream import Stream

LOCAL = "/ip4/127.0.0.1/tcp/0"


async def pair(muxer: str = YAMUX, **kw: object) -> tuple[aiolibp2p.Host, aiolibp2p.Host]:
    a = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
    b = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
    b.set_stream_handler(ECHO, echo_handler)
    a.set_stream_handler(ECHO, echo_handler)
    return a, b


MUXERS = [YAMUX, MPLEX]


@pytest.mark.parametrize("muxer", MUXERS)
def test_connect_identify_ping(aio: Any, muxer: str) -> None:
    async def main() -> None:
        a, b = await pair(muxer)
        try:
            conn = await a.connect(b.full_addrs()[0])
            assert conn.remote_peer == b.peer_id
            assert conn.muxer == muxer
            assert conn.early_muxer  # both sides list muxers in the Noise extension
            info = await a.identify(b.peer_id)
            assert ECHO in info.protocols and "/ipfs/ping/1.0.0" in info.protocols
            assert info.agent_version and info.agent_version.startswith("aiolibp2p/")
            assert info.signed_record is not None and info.signed_record.peer_id == b.peer_id
            assert set(info.listen_addrs) == set(b.listen_addrs)
            assert info.observed_addr is not None
            assert str(info.observed_addr).startswith("/ip4/127.0.0.1/tcp/")
            assert ECHO in a.peerstore.protocols(b.peer_id)
            # and the other side identified us too
            back = await b.identify(a.peer_id)
            assert ECHO in back.protocols
            rtt = await a.ping(b.peer_id)
            assert 0 < rtt < 1.0
            rtt2 = await a.ping(b.peer_id)  # the ping stream is reused
            assert 0 < rtt2 < 1.0
        finally:
            await a.close()
            await b.close()

    aio(main)


@pytest.mark.parametrize("muxer", MUXERS)
def test_echo_10_mib_with_hash(aio: Any, muxer: str) -> None:
    payload = os.urandom(10 * 1024 * 1024)

    async def main() -> None:
        a, b = await pair(muxer)
        try:
            stream = await a.new_stream(b.full_addrs()[0], [ECHO])
            assert stream.protocol == ECHO

            async def send() -> None:
                view = memoryview(payload)
                for i in range(0, len(view), 256 * 1024):
                    await stream.write(view[i : i + 256 * 1024])
                await stream.close()

            sender = asyncio.ensure_future(send())
            received = await stream.read()
            await sender
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


@pytest.mark.parametrize("muxer", MUXERS)
def test_100_concurrent_streams(aio: Any, muxer: str) -> None:
    async def main() -> None:
        a, b = await pair(muxer)
        try:
            await a.connect(b.full_addrs()[0])

            async def one(i: int) -> None:
                body = (f"stream {i} ".encode()) * (i + 1)
                stream = await a.new_stream(b.peer_id, [ECHO])
                await stream.write(body)
                await stream.close()
                assert await stream.read() == body

            await asyncio.gather(*(one(i) for i in range(100)))
            assert len(a.connections(b.peer_id)) == 1
            # every inbound negotiation was counted back down
            (conn_at_b,) = b.connections(a.peer_id)
            assert conn_at_b.negotiating_inbound == 0
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


def test_half_close_and_reset(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def collect(stream: Stream) -> None:
            await got.put(await stream.read())
            await stream.write(b"after your close")
            await stream.close()

        b.set_stream_handler("/collect", collect)
        try:
            s = await a.new_stream(b.full_addrs()[0], ["/collect"])
            await s.write(b"hello")
            await s.close()
            assert await asyncio.wait_for(got.get(), 5) == b"hello"
            assert await s.read() == b"after your close"
            with pytest.raises(Libp2pError):
                await s.write(b"write after close")
            # reset: the remote sees an error, not EOF
            s2 = await a.new_stream(b.peer_id, [ECHO])
            await s2.write(b"x")
            assert await s2.read(1) == b"x"
            await s2.reset()
            with pytest.raises(StreamResetError):
                await s2.read()
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_protocol_negotiation_refusals(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        try:
            await a.connect(b.full_addrs()[0])
            # several proposals: the first supported one wins (non-lazy)
            s = await a.new_stream(b.peer_id, ["/nope/1", "/nope/2", ECHO])
            assert s.protocol == ECHO
            await s.reset()
            # none supported
            with pytest.raises(ProtocolNotSupported):
                await a.new_stream(b.peer_id, ["/nope/1", "/nope/2"])
            # lazy (one proposal): refusal surfaces on read
            lazy = await a.new_stream(b.peer_id, ["/nope/lazy"])
            await lazy.write(b"data behind the proposal")
            with pytest.raises(ProtocolNotSupported):
                await lazy.read()
            # the connection survived all of it
            assert await a.ping(b.peer_id) > 0
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_handlers_change_and_identify_push(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        try:
            await a.connect(b.full_addrs()[0])
            await a.identify(b.peer_id)
            sub = a.subscribe()
            b.set_stream_handler("/new/1.0.0", echo_handler)
            for _ in range(100):
                if "/new/1.0.0" in a.peerstore.protocols(b.peer_id):
                    break
                await asyncio.sleep(0.02)
            assert "/new/1.0.0" in a.peerstore.protocols(b.peer_id)
            b.remove_stream_handler("/new/1.0.0")
            for _ in range(100):
                if "/new/1.0.0" not in a.peerstore.protocols(b.peer_id):
                    break
                await asyncio.sleep(0.02)
            assert "/new/1.0.0" not in a.peerstore.protocols(b.peer_id)
            with pytest.raises(ProtocolNotSupported):
                await a.new_stream(b.peer_id, ["/new/1.0.0", "/other"])
            sub.close()
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_events(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        sub = a.subscribe()
        try:
            await a.connect(b.full_addrs()[0])
            seen = []
            async with timeout(5):
                async for event in sub:
                    seen.append(type(event))
                    if event.__class__ is PeerIdentified:
                        break
            assert seen[:2] == [ConnectionOpened, PeerConnected]
            stream = await a.new_stream(b.peer_id, [ECHO])
            await stream.close()
            async with timeout(5):
                async for event in sub:
                    if isinstance(event, StreamOpened) and event.protocol == ECHO:
                        assert event.direction == "outbound" and event.peer == b.peer_id
                        break
            assert await stream.read() == b""
        finally:
            sub.close()
            await a.close()
            await b.close()

    aio(main)


def test_concurrent_dials_are_deduplicated(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        try:
            conns = await asyncio.gather(*(a.connect(b.full_addrs()[0]) for _ in range(10)))
            assert all(c is conns[0] for c in conns)
            assert len(a.connections(b.peer_id)) == 1
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_dial_falls_through_bad_addresses_without_fixed_waits(aio: Any) -> None:
    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen(LOCAL), o.dial_stagger(5.0))
        b = await aiolibp2p.new_host(o.listen(LOCAL))
        # a port nobody listens on: refused at once, so the stagger delay never applies
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
        probe.close()
        try:
            dead = Multiaddr(f"/ip4/127.0.0.1/tcp/{dead_port}")
            info = aiolibp2p.PeerInfo(b.peer_id, (dead, b.listen_addrs[0]))
            start = time.monotonic()
            conn = await a.connect(info)
            assert time.monotonic() - start < 2.0
            assert conn.remote_peer == b.peer_id
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_wrong_peer_id_is_refused(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        other = PeerId.from_public_key(generate_private_key().public_key())
        try:
            with pytest.raises(DialError) as info:
                await a.connect(f"{b.listen_addrs[0]}/p2p/{other}")
            assert any(isinstance(e, PeerIdMismatch) for e in info.value.errors.values())
            assert not a.connections()
            # b is unharmed
            assert await a.ping(b.full_addrs()[0]) > 0
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_handshake_deadline_with_a_silent_listener(aio: Any) -> None:
    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.append(w)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        a = await aiolibp2p.new_host(o.timeouts(handshake=0.5, dial=5))
        someone = PeerId.from_public_key(generate_private_key().public_key())
        try:
            start = time.monotonic()
            with pytest.raises(DialError):
                await a.connect(f"/ip4/127.0.0.1/tcp/{port}/p2p/{someone}")
            assert time.monotonic() - start < 3
        finally:
            await a.close()
            for w in accepted:
                w.close()
            server.close()
            await server.wait_closed()

    aio(main)


def test_close_is_clean_with_streams_open(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        stream = await a.new_stream(b.full_addrs()[0], [ECHO])
        await stream.write(b"x")
        assert await stream.read(1) == b"x"
        await a.close()
        with pytest.raises(Libp2pError):
            await stream.read()
        await b.close()

    aio(main)


def test_a_burst_of_handler_changes_sends_one_push(aio: Any) -> None:
    async def main() -> None:
        a, b = await pair()
        pushes: list[object] = []
        push_id = "/ipfs/id/push/1.0.0"
        serve_push = a._handlers[push_id]

        async def counting(stream: Stream) -> None:
            pushes.append(stream)
            await serve_push(stream)

        a.set_stream_handler(push_id, counting)
        try:
            await a.connect(b.full_addrs()[0])
            await a.identify(b.peer_id)
            await b.identify(a.peer_id)
            for i in range(20):
                b.set_stream_handler(f"/burst/{i}", echo_handler)
            for _ in range(200):
                if "/burst/19" in a.peerstore.protocols(b.peer_id):
                    break
                await asyncio.sleep(0.01)
            assert "/burst/19" in a.peerstore.protocols(b.peer_id)
            await asyncio.sleep(0.1)  # a second push, if any, would have arrived by now
            assert len(pushes) == 1
        finally:
            await a.close()
            await b.close()

    aio(main)
