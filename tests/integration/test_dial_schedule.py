"""Dial ranking in the swarm, with real sockets on 127.0.0.1: QUIC first, TCP ``tcp_dial_delay``
later, the first connection wins, losers are cancelled, a failed attempt starts the next address
at once, and nothing waits after a success.

The QUIC attempts that fail or stall come from small dial transports registered in the swarm's
table for the ``/quic-v1`` addresses (the table is how a transport plugs in): one sends a
datagram on a connected UDP socket to a port with no listener and fails on the ICMP refusal; one
waits on a UDP socket that never answers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.core.errors import DialError
from aiolibp2p.core.multiaddr import Multiaddr, transport_family
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.swarm import DialTransport

LOCAL_TCP = "/ip4/127.0.0.1/tcp/0"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _is_quic(addr: Multiaddr) -> bool:
    return transport_family(addr) == "quic-v1"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.failed: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

    def error_received(self, exc: Exception) -> None:
        if not self.failed.done():
            self.failed.set_result(exc)


class RefusedQuic:
    """Dials a ``/quic-v1`` address with a connected UDP socket and fails on the ICMP refusal."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def dial(self, peer: PeerId, addr: Multiaddr) -> Connection:
        self.calls.append(time.monotonic())
        host, port = str(addr).split("/")[2], int(str(addr).split("/")[4])
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_Udp, remote_addr=(host, port))
        try:
            transport.sendto(b"\x00" * 1200)
            exc = await asyncio.wait_for(proto.failed, 5.0)
            raise DialError(f"{addr}: {exc!r}")
        finally:
            transport.close()


class StalledQuic:
    """Dials a ``/quic-v1`` address whose UDP socket never answers; records its cancellation."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.cancelled = 0

    async def dial(self, peer: PeerId, addr: Multiaddr) -> Connection:
        self.calls.append(time.monotonic())
        host, port = str(addr).split("/")[2], int(str(addr).split("/")[4])
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(_Udp, remote_addr=(host, port))
        try:
            transport.sendto(b"\x00" * 1200)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            transport.close()
        raise AssertionError("unreachable")


async def _hosts(*opts: Any) -> tuple[aiolibp2p.Host, aiolibp2p.Host]:
    a = await aiolibp2p.new_host(*opts)
    b = await aiolibp2p.new_host(o.listen(LOCAL_TCP))
    return a, b


def test_undialable_quic_address_does_not_delay_tcp(aio: Any) -> None:
    async def main() -> None:
        a, b = await _hosts(o.tcp_dial_delay(5.0))
        a.swarm.remove_transport("quic")
        assert [t.name for t in a.swarm.transports] == ["tcp"]
        try:
            quic = Multiaddr(f"/ip4/127.0.0.1/udp/{_free_udp_port()}/quic-v1")
            info = aiolibp2p.PeerInfo(b.peer_id, (quic, b.listen_addrs[0]))
            start = time.monotonic()
            conn = await a.connect(info)
            assert time.monotonic() - start < 2.0  # far below the 5 s TCP delay
            assert transport_family(conn.remote_addr) == "tcp"
            # With QUIC as the only address there is nothing to dial at all.
            a2 = await aiolibp2p.new_host()
            a2.swarm.remove_transport("quic")
            try:
                with pytest.raises(DialError, match="no dialable address") as err:
                    await a2.connect(aiolibp2p.PeerInfo(b.peer_id, (quic,)))
                assert str(quic) in err.value.errors
            finally:
                await a2.close()
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_failed_quic_attempt_starts_tcp_at_once(aio: Any) -> None:
    async def main() -> None:
        a, b = await _hosts(o.tcp_dial_delay(5.0))
        refused = RefusedQuic()
        a.swarm.remove_transport("quic")
        a.swarm.add_transport(DialTransport("refused-quic", _is_quic, refused.dial))
        try:
            quic = Multiaddr(f"/ip4/127.0.0.1/udp/{_free_udp_port()}/quic-v1")
            info = aiolibp2p.PeerInfo(b.peer_id, (b.listen_addrs[0], quic))
            start = time.monotonic()
            conn = await a.connect(info)
            elapsed = time.monotonic() - start
            assert len(refused.calls) == 1
            assert refused.calls[0] - start < 0.5  # QUIC went first, TCP second
            assert elapsed < 2.0  # TCP did not wait out its 5 s delay
            assert transport_family(conn.remote_addr) == "tcp"
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_stalled_quic_lets_tcp_win_after_the_delay_and_is_cancelled(aio: Any) -> None:
    async def main() -> None:
        delay = 0.3
        a, b = await _hosts(o.tcp_dial_delay(delay))
        stalled = StalledQuic()
        a.swarm.remove_transport("quic")
        a.swarm.add_transport(DialTransport("stalled-quic", _is_quic, stalled.dial))
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
        silent.bind(("127.0.0.1", 0))
        try:
            quic = Multiaddr(f"/ip4/127.0.0.1/udp/{silent.getsockname()[1]}/quic-v1")
            info = aiolibp2p.PeerInfo(b.peer_id, (b.listen_addrs[0], quic))
            start = time.monotonic()
            conn = await a.connect(info)
            elapsed = time.monotonic() - start
            assert delay <= elapsed < delay + 2.0
            assert transport_family(conn.remote_addr) == "tcp"
            assert len(stalled.calls) == 1 and stalled.calls[0] - start < delay
            assert stalled.cancelled == 1  # the loser was cancelled before connect returned
        finally:
            silent.close()
            await a.close()
            await b.close()

    aio(main)


def test_every_attempt_failing_raises_with_each_error(aio: Any) -> None:
    async def main() -> None:
        a, b = await _hosts(o.tcp_dial_delay(5.0), o.dial_stagger(5.0))
        refused = RefusedQuic()
        a.swarm.remove_transport("quic")
        a.swarm.add_transport(DialTransport("refused-quic", _is_quic, refused.dial))
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_tcp = Multiaddr(f"/ip4/127.0.0.1/tcp/{dead.getsockname()[1]}")
        dead.close()
        try:
            quic = Multiaddr(f"/ip4/127.0.0.1/udp/{_free_udp_port()}/quic-v1")
            info = aiolibp2p.PeerInfo(b.peer_id, (dead_tcp, quic))
            start = time.monotonic()
            with pytest.raises(DialError) as err:
                await a.connect(info)
            assert time.monotonic() - start < 2.0  # no 5 s waits between failures
            assert set(err.value.errors) == {str(dead_tcp), str(quic)}
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_real_quic_wins_and_tcp_is_never_dialed(aio: Any) -> None:
    pytest.importorskip("aioquic")

    async def main() -> None:
        a = await aiolibp2p.new_host(o.tcp_dial_delay(5.0))
        b = await aiolibp2p.new_host(o.listen("/ip4/127.0.0.1/udp/0/quic-v1"))
        # The peer's "TCP address" is a plain listener of ours: any TCP dial shows up here.
        accepted: list[object] = []
        loop = asyncio.get_running_loop()
        tcp_server = await loop.create_server(
            lambda: accepted.append(1) or asyncio.Protocol(), "127.0.0.1", 0
        )
        try:
            tcp = Multiaddr(f"/ip4/127.0.0.1/tcp/{tcp_server.sockets[0].getsockname()[1]}")
            (quic,) = b.listen_addrs
            start = time.monotonic()
            conn = await a.connect(aiolibp2p.PeerInfo(b.peer_id, (tcp, quic)))
            assert time.monotonic() - start < 2.0
            assert transport_family(conn.remote_addr) == "quic-v1"
            assert await a.ping(b.peer_id) > 0
            await asyncio.sleep(0.1)
            assert accepted == []  # TCP was never dialed
        finally:
            tcp_server.close()
            await tcp_server.wait_closed()
            await a.close()
            await b.close()

    aio(main)
