"""QUIC 0-RTT between real hosts on 127.0.0.1: early streams, idempotent marking, rejection,
replayed first flights, and a handshake that never completes after an early open."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

pytest.importorskip("aioquic")

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import DEFAULT_EARLY_DATA_PROTOCOLS, build_config
from aiolibp2p.core.errors import ConfigError, Libp2pError
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net._compat import timeout
from aiolibp2p.net.quic_connection import QuicConn
from aiolibp2p.net.stream import Stream
from aiolibp2p.net.transports.quic import quic_endpoint

LOCAL = "/ip4/127.0.0.1/udp/0/quic-v1"
SAFE = "/test/safe/1"  # marked idempotent on both sides
UNSAFE = "/test/unsafe/1"  # not marked


class Recorder:
    """Echo handler that records whether each stream arrived before the handshake completed."""

    def __init__(self) -> None:
        self.confirmed_at_start: list[bool] = []

    async def __call__(self, stream: Stream) -> None:
        self.confirmed_at_start.append(stream.connection.confirmed)
        data = await stream.read(64)
        await stream.write(data)
        await stream.close()


class _Tap(asyncio.DatagramProtocol):
    """A UDP relay between one client and the server that delays each datagram by ``delay``
    seconds (so a handshake takes a known time: ``4 * delay`` at least) and records the
    client's first flight."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.client: tuple[str, int] | None = None
        self.first_flight: list[bytes] = []  # client datagrams before the server's first reply
        self.replied = False
        self.pending: set[asyncio.TimerHandle] = set()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.upstream:
            self.replied = True
            if self.client is not None:
                self._later(data, self.client)
            return
        self.client = addr
        if not self.replied and len(self.first_flight) < 16:
            self.first_flight.append(data)
        self._later(data, self.upstream)

    def _later(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.pending) < 1024:  # bounded: more in flight is dropped, as a queue would
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle
            handle = loop.call_later(self.delay, lambda: self._send(handle, data, addr))
            self.pending.add(handle)

    def cancel(self) -> None:
        for handle in self.pending:
            handle.cancel()
        self.pending.clear()

    def _send(self, handle: asyncio.TimerHandle, data: bytes, addr: tuple[str, int]) -> None:
        self.pending.discard(handle)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


class Server:
    """A QUIC host serving SAFE (idempotent) and UNSAFE, reachable directly (``addr``) and
    through a delaying relay (``tapped``: a resumed handshake takes 4 x 30 ms there, so what
    travels in 0-RTT does not depend on how fast the loop runs)."""

    def __init__(self, host: aiolibp2p.Host) -> None:
        self.host = host
        self.safe, self.unsafe = Recorder(), Recorder()
        host.set_stream_handler(SAFE, self.safe, idempotent=True)
        host.set_stream_handler(UNSAFE, self.unsafe)
        self.addr = str(host.full_addrs()[0])
        self.tap: _Tap | None = None
        self._tap_transport: asyncio.BaseTransport | None = None
        self.tapped = ""

    async def open_tap(self, delay: float = 0.03) -> None:
        host, port, _ = quic_endpoint(self.host.listen_addrs[0])
        transport, tap = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Tap((host, port), delay), local_addr=("127.0.0.1", 0)
        )
        self.tap, self._tap_transport = tap, transport
        tap_port = transport.get_extra_info("sockname")[1]
        self.tapped = f"/ip4/127.0.0.1/udp/{tap_port}/quic-v1/p2p/{self.host.peer_id}"

    async def close(self) -> None:
        if self._tap_transport is not None:
            self._tap_transport.close()
        if self.tap is not None:
            self.tap.cancel()
        await self.host.close()


async def server_host(*options: Any) -> Server:
    server = Server(await aiolibp2p.new_host(o.listen(LOCAL), *options))
    await server.open_tap()
    return server


async def request(conn: Any, protocol: str, payload: bytes) -> bytes:
    stream = await conn.new_stream([protocol])
    await stream.write(payload)
    got = await stream.read(64)
    await stream.close()
    return bytes(got)


async def wait_disconnected(a: aiolibp2p.Host, peer: PeerId) -> None:
    async with timeout(5):
        while a.connections(peer):
            await asyncio.sleep(0.01)


async def ticket_for(client: aiolibp2p.Host, server: Server) -> None:
    """A first (full) connection, kept until the server's session ticket has arrived."""
    conn = await client.connect(server.addr)
    assert isinstance(conn, QuicConn) and conn.confirmed
    assert client.swarm._quic is not None
    async with timeout(5):
        while server.host.peer_id not in client.swarm._quic.tickets._client:
            await asyncio.sleep(0.005)
    await conn.close()
    await wait_disconnected(server.host, client.peer_id)


async def resumed(client: aiolibp2p.Host, server: Server) -> QuicConn:
    """A second connection, through the delaying relay: open on 0-RTT before any reply."""
    conn = await client.connect(server.tapped)
    assert isinstance(conn, QuicConn)
    return conn


def test_resumed_connection_sends_idempotent_stream_in_0rtt(aio: Any) -> None:
    async def main() -> None:
        server = await server_host()
        client = await aiolibp2p.new_host(o.early_data_protocols(SAFE))
        try:
            await ticket_for(client, server)
            conn = await resumed(client, server)
            # open at once, as the peer the ticket names
            assert not conn.confirmed and conn.remote_peer == server.host.peer_id
            assert await request(conn, SAFE, b"early") == b"early"
            # the server ran the idempotent handler on 0-RTT data, before the handshake ended
            assert server.safe.confirmed_at_start == [False]
            await conn.wait_confirmed()
            assert conn.quic.tls.session_resumed and conn.quic.tls.early_data_accepted
            (server_side,) = server.host.connections(client.peer_id)
            assert server_side.remote_peer == client.peer_id
            assert server_side.remote_public_key == client.config.identity.public_key()
            # built-in ping is idempotent by default; identify ran over the early connection too
            assert 0 < await client.ping(server.host.peer_id) < 1.0
            info = await client.identify(server.host.peer_id)
            assert SAFE in (info.protocols or ())
            # a stream of an unmarked protocol works too (opened after the handshake)
            assert await request(conn, UNSAFE, b"later") == b"later"
            assert server.unsafe.confirmed_at_start == [True]
        finally:
            await client.close()
            await server.close()

    aio(main)


def test_unmarked_protocol_waits_for_the_handshake(aio: Any) -> None:
    async def main() -> None:
        server = await server_host()
        client = await aiolibp2p.new_host()  # SAFE not marked on the client
        try:
            await ticket_for(client, server)
            conn = await resumed(client, server)
            assert not conn.confirmed
            assert not conn.early_data_allowed([UNSAFE])
            assert not conn.early_data_allowed([SAFE])
            assert not conn.early_data_allowed([])
            assert conn.early_data_allowed(["/ipfs/ping/1.0.0"])
            assert await request(conn, UNSAFE, b"u") == b"u"
            assert conn.confirmed
            assert server.unsafe.confirmed_at_start == [True]
        finally:
            await client.close()
            await server.close()

    aio(main)


def test_server_defers_unmarked_handler_until_confirmed(aio: Any) -> None:
    async def main() -> None:
        server = await server_host()
        # a client that (wrongly) treats UNSAFE as idempotent sends it in 0-RTT: the server
        # still runs the handler only once the handshake has completed
        client = await aiolibp2p.new_host(o.early_data_protocols(UNSAFE))
        try:
            await ticket_for(client, server)
            conn = await resumed(client, server)
            assert not conn.confirmed
            assert await request(conn, UNSAFE, b"deferred") == b"deferred"
            assert server.unsafe.confirmed_at_start == [True]
            assert conn.quic.tls.early_data_accepted
        finally:
            await client.close()
            await server.close()

    aio(main)


def test_rejected_0rtt_data_is_sent_again(aio: Any) -> None:
    async def main() -> None:
        server = await server_host()
        client = await aiolibp2p.new_host(o.early_data_protocols(SAFE))
        try:
            await ticket_for(client, server)
            assert server.host.swarm._quic is not None
            server.host.swarm._quic.tickets._server.clear()  # e.g. a restarted server
            conn = await resumed(client, server)
            assert not conn.confirmed
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await request(conn, SAFE, b"again") == b"again"
            # resent as soon as the handshake ends (3 relay round trips of 60 ms with the
            # certificates), not after a probe timeout
            assert loop.time() - began < 0.6
            assert conn.confirmed
            assert not conn.quic.tls.session_resumed and not conn.quic.tls.early_data_accepted
            assert server.safe.confirmed_at_start == [True]  # no early data reached the server
            assert 0 < await client.ping(server.host.peer_id) < 1.0
        finally:
            await client.close()
            await server.close()

    aio(main)


@pytest.mark.parametrize("side", ["client", "server"])
def test_early_data_can_be_turned_off(aio: Any, side: str) -> None:
    async def main() -> None:
        off = o.quic(early_data=False)
        server = await (server_host(off) if side == "server" else server_host())
        client = await aiolibp2p.new_host(
            o.early_data_protocols(SAFE), *([off] if side == "client" else [])
        )
        try:
            await ticket_for(client, server)
            conn = await resumed(client, server)
            assert conn.confirmed  # waited for the handshake
            assert conn.quic.tls.session_resumed and not conn.quic.tls.early_data_accepted
            assert await request(conn, SAFE, b"x") == b"x"
            assert server.safe.confirmed_at_start == [True]
        finally:
            await client.close()
            await server.close()

    aio(main)


def test_replayed_first_flight_gets_no_early_data(aio: Any) -> None:
    async def main() -> None:
        server = await server_host(o.timeouts(handshake=0.5))
        client = await aiolibp2p.new_host(o.early_data_protocols(SAFE, UNSAFE))
        target = quic_endpoint(server.host.listen_addrs[0])[:2]
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await ticket_for(client, server)
            conn = await resumed(client, server)
            assert not conn.confirmed
            safe_stream = await conn.new_stream([SAFE])
            unsafe_stream = await conn.new_stream([UNSAFE])
            await safe_stream.write(b"s")
            await unsafe_stream.write(b"u")
            assert await safe_stream.read(64) == b"s"
            assert await unsafe_stream.read(64) == b"u"
            await conn.wait_confirmed()
            assert conn.quic.tls.early_data_accepted
            tap = server.tap
            assert tap is not None
            assert len(tap.first_flight) >= 2  # the Initial and at least one 0-RTT packet
            recorded = (server.safe.confirmed_at_start, server.unsafe.confirmed_at_start)
            assert recorded == ([False], [True])

            # 1. replayed while the genuine connection is open (its connection ids route it)
            for data in tap.first_flight:
                attacker.sendto(data, target)
            await asyncio.sleep(0.2)
            assert len(server.host.connections(client.peer_id)) == 1

            # 2. replayed after the genuine connection closed: a new server connection, but
            # the ticket was single use, so no early-data keys; the handshake cannot complete
            await conn.close()
            await wait_disconnected(server.host, client.peer_id)
            for data in tap.first_flight:
                attacker.sendto(data, target)
            await asyncio.sleep(0.1)
            assert not server.host.connections(client.peer_id)
            async with timeout(5):  # the half-open replay ends by the handshake timeout
                while server.host.swarm._pending:
                    await asyncio.sleep(0.02)
            after = (server.safe.confirmed_at_start, server.unsafe.confirmed_at_start)
            assert after == ([False], [True])  # no handler ran again
            # the server still serves the real client
            assert 0 < await client.ping(server.addr) < 1.0
        finally:
            attacker.close()
            await client.close()
            await server.close()

    aio(main)


def test_early_open_fails_cleanly_when_the_handshake_never_completes(aio: Any) -> None:
    async def main() -> None:
        server = await server_host()
        client = await aiolibp2p.new_host(o.early_data_protocols(SAFE), o.timeouts(handshake=0.5))
        try:
            await ticket_for(client, server)
            await server.host.close()  # nobody answers now (the relay still forwards)
            conn = await resumed(client, server)
            assert not conn.confirmed
            stream = await conn.new_stream([SAFE])
            await stream.write(b"lost")
            with pytest.raises(Libp2pError):
                async with timeout(5):
                    await stream.read(64)
            with pytest.raises(Libp2pError):
                await conn.wait_confirmed()
            with pytest.raises(Libp2pError):  # an unmarked stream waited and fails the same way
                await conn.new_stream([UNSAFE])
            assert not client.connections(server.host.peer_id)
        finally:
            await client.close()
            await server.close()

    aio(main)


def test_early_data_protocols_option() -> None:
    config = build_config(o.early_data_protocols("/a/1"), o.quic())
    assert config.early_data_protocols == frozenset({"/a/1", "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"})
    assert config.quic_early_data
    assert not build_config(o.quic(early_data=False)).quic_early_data
    with pytest.raises(ConfigError):
        o.early_data_protocols("")
    with pytest.raises(ConfigError):
        build_config(o.quic(early_data="yes"))  # type: ignore[arg-type]


def test_default_early_protocols_are_the_builtin_ids() -> None:
    from aiolibp2p.proto.identify.codec import PROTOCOL_ID as IDENTIFY
    from aiolibp2p.proto.ping.codec import PROTOCOL_ID as PING

    assert frozenset({PING, IDENTIFY}) == DEFAULT_EARLY_DATA_PROTOCOLS


def test_idempotent_marking_follows_the_handler(aio: Any) -> None:
    async def main() -> None:
        host = await aiolibp2p.new_host()
        try:
            early = host.swarm.early_protocols
            host.set_stream_handler(SAFE, Recorder(), idempotent=True)
            assert SAFE in early
            host.set_stream_handler(SAFE, Recorder())  # re-registered without the mark
            assert SAFE not in early
            host.set_stream_handler(SAFE, Recorder(), idempotent=True)
            host.remove_stream_handler(SAFE)
            assert SAFE not in early
            host.remove_stream_handler("/ipfs/ping/1.0.0")  # configured ones stay marked
            assert "/ipfs/ping/1.0.0" in early
        finally:
            await host.close()

    aio(main)
