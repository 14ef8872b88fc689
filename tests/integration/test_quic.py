"""Real hosts over QUIC-v1 on 127.0.0.1: streams, services, limits and bad peers.

Foreign peers for the bad-input cases are aioquic's own asyncio client and server (a different
QUIC stack from our sans-IO driver), configured with certificates or ALPNs a libp2p peer must
refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import ssl
import time
from typing import Any

import pytest

pytest.importorskip("aioquic")

from _echo import ECHO, echo_handler, quic_host
from aioquic.asyncio import connect as aioquic_connect
from aioquic.asyncio import serve as aioquic_serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import (
    CertificateError,
    ConnectionClosedError,
    DialError,
    HandshakeError,
    PeerIdMismatch,
    StreamResetError,
)
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net._compat import timeout
from aiolibp2p.net.quic_connection import QuicConn
from aiolibp2p.net.stream import Stream
from aiolibp2p.net.transports.quic import quic_endpoint
from aiolibp2p.proto.tls.certificate import build_certificate

LOCAL = "/ip4/127.0.0.1/udp/0/quic-v1"
BAD_CERTIFICATE = 0x100 + 42


async def echo_over(stream: Stream, data: bytes) -> bytes:
    async def send() -> None:
        view = memoryview(data)
        for i in range(0, len(view), 1 << 16):
            await stream.write(view[i : i + (1 << 16)])
        await stream.close()

    writer = asyncio.ensure_future(send())
    try:
        got = await stream.read(-1)
    finally:
        await writer
    return got


def test_listen_connect_both_ways_identify_ping(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            (addr,) = a.listen_addrs
            assert str(addr).startswith("/ip4/127.0.0.1/udp/") and str(addr).endswith("/quic-v1")
            assert quic_endpoint(addr)[1] != 0
            conn = await b.connect(a.full_addrs()[0])
            assert isinstance(conn, QuicConn)
            assert conn.remote_peer == a.peer_id
            assert conn.security == "/tls/1.0.0"
            # the dial left from b's listening socket: a sees b's listen port (hole punching)
            info = await a.identify(b.peer_id)
            assert ECHO in info.protocols and "/ipfs/ping/1.0.0" in info.protocols
            assert info.signed_record is not None and info.signed_record.peer_id == b.peer_id
            assert set(info.listen_addrs) == set(b.listen_addrs)
            (a_side,) = a.connections(b.peer_id)
            assert a_side.remote_addr == b.listen_addrs[0]
            back = await b.identify(a.peer_id)
            assert back.observed_addr == b.listen_addrs[0]
            assert 0 < await b.ping(a.peer_id) < 1.0
            assert 0 < await a.ping(b.peer_id) < 1.0
            # the other direction on a fresh pair of hosts: a dials b
            await b.disconnect(a.peer_id)
            async with timeout(5):
                while a.connections(b.peer_id):
                    await asyncio.sleep(0.01)
            conn2 = await a.connect(b.full_addrs()[0])
            assert conn2.remote_peer == b.peer_id and conn2.direction.value == "outbound"
            assert 0 < await a.ping(b.peer_id) < 1.0
            stream = await a.new_stream(b.peer_id, [ECHO])
            assert await echo_over(stream, b"hello") == b"hello"
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_dial_without_listener(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await aiolibp2p.new_host()  # listens nowhere: the dial gets its own UDP socket
        try:
            conn = await b.connect(a.full_addrs()[0])
            assert conn.remote_peer == a.peer_id
            stream = await b.new_stream(a.peer_id, [ECHO])
            assert await echo_over(stream, b"x" * 5000) == b"x" * 5000
            assert 0 < await b.ping(a.peer_id) < 1.0
        finally:
            await b.close()
            await a.close()

    aio(main)


def test_echo_10_mib_hash(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            data = os.urandom(10 << 20)
            stream = await b.new_stream(a.full_addrs()[0], [ECHO])
            got = await echo_over(stream, data)
            assert len(got) == len(data)
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


def test_100_concurrent_streams(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            await b.connect(a.full_addrs()[0])

            async def one(i: int) -> None:
                payload = os.urandom(1000 + i * 97)
                stream = await b.new_stream(a.peer_id, [ECHO])
                assert await echo_over(stream, payload) == payload

            await asyncio.gather(*(one(i) for i in range(100)))
            assert len(b.connections(a.peer_id)) == 1
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


def test_stream_reset_both_ways(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        seen: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

        async def reader(stream: Stream) -> None:
            try:
                while await stream.read(1 << 16):
                    pass
            except StreamResetError as exc:
                seen.set_result(exc)

        async def resetter(stream: Stream) -> None:
            await stream.read(5)
            await stream.reset()

        a.set_stream_handler("/read", reader)
        a.set_stream_handler("/reset", resetter)
        try:
            # we reset: the remote reader sees StreamResetError
            stream = await b.new_stream(a.full_addrs()[0], ["/read"])
            await stream.write(b"some bytes")
            await asyncio.sleep(0.05)
            await stream.reset()
            async with timeout(5):
                assert isinstance(await seen, StreamResetError)
            with pytest.raises(StreamResetError):
                await stream.write(b"more")
            # the remote resets: our read and write fail with StreamResetError
            stream2 = await b.new_stream(a.peer_id, ["/reset"])
            await stream2.write(b"12345")
            with pytest.raises(StreamResetError):
                async with timeout(5):
                    while True:
                        await stream2.write(b"z" * 1000)
                        await asyncio.sleep(0.01)
            with pytest.raises(StreamResetError):
                await stream2.read()
            # the connection is unaffected
            s3 = await b.new_stream(a.peer_id, [ECHO])
            assert await echo_over(s3, b"still fine") == b"still fine"
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_close_connection_and_host(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            conn = await b.connect(a.full_addrs()[0])
            stream = await b.new_stream(a.peer_id, ["/ipfs/ping/1.0.0"])
            await conn.close()
            assert conn.closed.done()
            with pytest.raises((StreamResetError, ConnectionClosedError)):
                await stream.write(b"x" * 32)
            # the remote notices the CONNECTION_CLOSE promptly (not by idle timeout)
            async with timeout(5):
                while a.connections(b.peer_id):
                    await asyncio.sleep(0.01)
            # and a new connection works
            assert 0 < await b.ping(a.full_addrs()[0]) < 1.0
            # closing a host closes its connections on the other side too
            await a.close()
            async with timeout(5):
                while b.connections(a.peer_id):
                    await asyncio.sleep(0.01)
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_random_datagrams_to_listener(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        rng = random.Random(5)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await b.connect(a.full_addrs()[0])
            host, port, _ = quic_endpoint(a.listen_addrs[0])
            for i in range(400):
                size = rng.choice([0, 1, 8, 9, 30, 600, 1199, 1200, 1350, 1500])
                data = bytearray(rng.randbytes(size))
                if data and i % 3 == 0:
                    data[0] = 0xC0 | (data[0] & 0x0F)  # long header, Initial type
                    if size >= 6:
                        data[1:5] = (1).to_bytes(4, "big") if i % 2 else data[1:5]
                        data[5] = rng.choice([0, 8, 20, 21, 255])
                sock.sendto(bytes(data), (host, port))
                if i % 50 == 0:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            # the existing connection and new ones work
            assert 0 < await b.ping(a.peer_id) < 1.0
            c = await quic_host()
            try:
                assert 0 < await c.ping(a.full_addrs()[0]) < 1.0
            finally:
                await c.close()
            # whatever random Initials started is bounded and times out on its own
            assert len(a.swarm._pending) <= a.config.max_pending_inbound
        finally:
            sock.close()
            await a.close()
            await b.close()

    aio(main, timeout=60)


def test_wrong_peer_id(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        other = PeerId.from_public_key(generate_private_key().public_key())
        try:
            addr = Multiaddr(f"{a.listen_addrs[0]}/p2p/{other}")
            with pytest.raises(DialError) as info:
                await b.connect(addr)
            (err,) = info.value.errors.values()
            assert isinstance(err, PeerIdMismatch)
            assert not b.connections()
            # the listener closed its side (our CONNECTION_CLOSE) and serves others
            async with timeout(5):
                while a.connections():
                    await asyncio.sleep(0.01)
            assert 0 < await b.ping(a.full_addrs()[0]) < 1.0
        finally:
            await a.close()
            await b.close()

    aio(main)


# ------------------------------------------------------------------- foreign (aioquic) peers


def _plain_certificate(*, not_before: float, not_after: float) -> tuple[Any, Any]:
    """A self-signed certificate without the libp2p extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not libp2p")])
    import datetime

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(not_before, datetime.timezone.utc))
        .not_valid_after(datetime.datetime.fromtimestamp(not_after, datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _expired_libp2p_certificate() -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_certificate(
        generate_private_key(), key, now=time.time() - 10 * 86400, serial=7, lifetime=86400
    )
    return cert, key


def _foreign_config(*, is_client: bool, cert: Any, key: Any, alpn: str = "libp2p") -> Any:
    config = QuicConfiguration(
        is_client=is_client, alpn_protocols=[alpn], verify_mode=ssl.CERT_NONE
    )
    config.certificate = cert
    config.private_key = key
    return config


async def close_foreign_server(server: Any) -> None:
    """Close aioquic's own server, including the timers its connections leave armed."""
    protocols = set(server._protocols.values())
    server.close()
    await asyncio.sleep(0.05)
    for protocol in protocols:
        if protocol._timer is not None:
            protocol._timer.cancel()
            protocol._timer = None


BAD_CLIENTS = {
    "no-extension": lambda: _plain_certificate(
        not_before=time.time() - 3600, not_after=time.time() + 86400
    ),
    "expired": _expired_libp2p_certificate,
}


@pytest.mark.parametrize("kind", sorted(BAD_CLIENTS))
def test_listener_refuses_bad_client_certificate(aio: Any, kind: str) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            await b.connect(a.full_addrs()[0])
            host, port, _ = quic_endpoint(a.listen_addrs[0])
            cert, key = BAD_CLIENTS[kind]()
            config = _foreign_config(is_client=True, cert=cert, key=key)
            terminated: list[ConnectionTerminated] = []
            async with aioquic_connect(host, port, configuration=config) as client:
                # The TLS handshake completes on the client before the server checked the
                # certificate (tls.md "Note for clients"); the server then closes.
                original = client.quic_event_received

                def spy(event: Any) -> None:
                    if isinstance(event, ConnectionTerminated):
                        terminated.append(event)
                    original(event)

                client.quic_event_received = spy  # type: ignore[method-assign]
                await client.wait_closed()
            assert terminated and terminated[0].error_code == BAD_CERTIFICATE
            assert not [c for c in a.connections() if c.remote_peer != b.peer_id]
            assert 0 < await b.ping(a.peer_id) < 1.0  # other connections unaffected
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


def test_listener_refuses_client_without_certificate(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        try:
            host, port, _ = quic_endpoint(a.listen_addrs[0])
            config = QuicConfiguration(
                is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE
            )
            async with aioquic_connect(host, port, configuration=config) as client:
                with pytest.raises(ConnectionError):
                    await client.ping()  # the server closes as soon as the handshake ends
            assert not a.connections()
        finally:
            await a.close()

    aio(main, timeout=30)


def test_listener_refuses_wrong_alpn(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        try:
            host, port, _ = quic_endpoint(a.listen_addrs[0])
            cert, key = _plain_certificate(not_before=time.time() - 60, not_after=time.time() + 60)
            config = _foreign_config(is_client=True, cert=cert, key=key, alpn="h3")
            with pytest.raises(ConnectionError):
                async with aioquic_connect(host, port, configuration=config):
                    pass
            assert not a.connections()
        finally:
            await a.close()

    aio(main, timeout=30)


@pytest.mark.parametrize("case", ["no-extension", "wrong-alpn"])
def test_dial_refuses_bad_server(aio: Any, case: str) -> None:
    async def main() -> None:
        cert, key = _plain_certificate(not_before=time.time() - 60, not_after=time.time() + 3600)
        config = _foreign_config(
            is_client=False, cert=cert, key=key, alpn="libp2p" if case == "no-extension" else "h3"
        )
        server = await aioquic_serve("127.0.0.1", 0, configuration=config)
        b = await aiolibp2p.new_host()
        try:
            port = server._transport.get_extra_info("sockname")[1]
            peer = PeerId.from_public_key(generate_private_key().public_key())
            with pytest.raises(DialError) as info:
                await b.connect(f"/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{peer}")
            (err,) = info.value.errors.values()
            if case == "no-extension":
                assert isinstance(err, CertificateError)
            else:
                assert isinstance(err, HandshakeError)
            assert not b.connections()
        finally:
            await b.close()
            await close_foreign_server(server)

    aio(main, timeout=30)


# ------------------------------------------------------------------------------ stream limits


def test_stream_limit_queues_excess_streams(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host(o.quic(max_streams=8))
        b = await quic_host()
        active = 0
        peak = 0

        async def slow_echo(stream: Stream) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                await asyncio.sleep(0.01)
                await echo_handler(stream)
            finally:
                active -= 1

        a.set_stream_handler("/slow", slow_echo)
        try:
            await b.connect(a.full_addrs()[0])

            async def one(i: int) -> None:
                stream = await b.new_stream(a.peer_id, ["/slow"])
                assert await echo_over(stream, b"%d" % i) == b"%d" % i

            await asyncio.gather(*(one(i) for i in range(40)))
            assert 1 <= peak <= 8
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=60)


def test_stream_flood_beyond_limit_closes_that_connection(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host(o.quic(max_streams=8))
        b = await quic_host()
        c = await quic_host()
        try:
            conn = await b.connect(a.full_addrs()[0])
            await c.connect(a.full_addrs()[0])
            assert isinstance(conn, QuicConn)
            # b misbehaves: it ignores a's MAX_STREAMS and opens 20 streams at once
            conn.quic._remote_max_streams_bidi = 1000
            streams = [conn.open_stream() for _ in range(20)]
            for stream in streams:
                conn._send(stream, memoryview(b"\x13/multistream/1.0.0\n"))
            conn._flush()
            async with timeout(5):
                await conn.closed
            assert not a.connections(b.peer_id)
            assert 0 < await c.ping(a.peer_id) < 1.0  # other connections unaffected
        finally:
            for host in (a, b, c):
                with contextlib.suppress(Exception):
                    await host.close()

    aio(main, timeout=30)


def test_keep_alive_and_idle_timeout(aio: Any) -> None:
    async def main() -> None:
        settings = o.quic(idle_timeout=1.0, keep_alive=0.3)
        a = await quic_host(settings)
        b = await quic_host(settings)
        try:
            conn = await b.connect(a.full_addrs()[0])
            # idle for longer than the idle timeout: the keep-alive PINGs hold the connection
            await asyncio.sleep(2.0)
            assert conn.is_open and a.connections(b.peer_id)
            assert 0 < await b.ping(a.peer_id) < 1.0
            # b vanishes without a CONNECTION_CLOSE (its socket is gone): a times out alone
            assert b.swarm._quic is not None
            for endpoint in b.swarm._quic.endpoints:
                assert endpoint._transport is not None
                endpoint._transport.abort()
            started = time.monotonic()
            async with timeout(5):
                while a.connections(b.peer_id):
                    await asyncio.sleep(0.05)
            assert 0.5 < time.monotonic() - started < 3.0
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


def test_quic_options_are_validated() -> None:
    from aiolibp2p.config import build_config
    from aiolibp2p.core.errors import ConfigError

    config = build_config(o.quic(stream_window=1 << 20, max_streams=16, idle_timeout=5))
    assert (config.quic_stream_window, config.quic_max_streams) == (1 << 20, 16)
    for bad in (
        o.quic(stream_window=100),
        o.quic(max_streams=0),
        o.quic(max_datagram_size=1000),
        o.quic(idle_timeout=0),
        o.quic(keep_alive=-1),
    ):
        with pytest.raises(ConfigError):
            build_config(bad)


def test_ipv6_both_ways(aio: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen("/ip6/::1/udp/0/quic-v1"))
        b = await aiolibp2p.new_host(o.listen("/ip6/::1/udp/0/quic-v1"))
        a.set_stream_handler(ECHO, echo_handler)
        try:
            assert str(a.listen_addrs[0]).startswith("/ip6/::1/udp/")
            stream = await b.new_stream(a.full_addrs()[0], [ECHO])
            payload = os.urandom(300_000)
            assert await echo_over(stream, payload) == payload
            (conn,) = b.connections(a.peer_id)
            assert conn.remote_addr == a.listen_addrs[0]
            assert 0 < await a.ping(b.peer_id) < 1.0
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_flow_control_bounds_unread_data(aio: Any) -> None:
    async def main() -> None:
        window = 64 << 10
        small = o.quic(stream_window=window, connection_window=2 * window)
        a = await quic_host(small)
        b = await quic_host(small)
        held: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
        release = asyncio.Event()

        async def lazy_reader(stream: Stream) -> None:
            held.set_result(stream)
            await release.wait()
            await echo_handler(stream)

        a.set_stream_handler("/lazy", lazy_reader)
        try:
            stream = await b.new_stream(a.full_addrs()[0], ["/lazy"])
            payload = os.urandom(2 << 20)
            writer = asyncio.ensure_future(echo_over(stream, payload))
            remote = await held
            await asyncio.sleep(0.5)
            # the reader reads nothing: the sender is held back by the windows
            assert not writer.done()
            assert remote._buffered <= window
            (conn,) = b.connections(a.peer_id)
            assert isinstance(conn, QuicConn)
            assert conn._queued <= 2 * window  # the sender's queue is bounded too
            release.set()
            async with timeout(30):
                got = await writer
            assert got == payload  # windows moved as the reader consumed
        finally:
            release.set()
            await a.close()
            await b.close()

    aio(main, timeout=60)


def test_session_resumption(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            first = await b.connect(a.full_addrs()[0])
            assert isinstance(first, QuicConn) and not first.quic.tls.session_resumed
            await asyncio.sleep(0.05)  # the server's NewSessionTicket arrives after the handshake
            await first.close()
            async with timeout(5):
                while a.connections(b.peer_id):
                    await asyncio.sleep(0.01)
            # the reconnect resumes: no certificates, identities from the first session
            second = await b.connect(a.full_addrs()[0])
            assert isinstance(second, QuicConn)
            await second.wait_confirmed()  # resumed on 0-RTT: open before the handshake ends
            assert second.quic.tls.session_resumed
            async with timeout(5):
                while not a.connections(b.peer_id):
                    await asyncio.sleep(0.005)
            (a_side,) = a.connections(b.peer_id)
            assert isinstance(a_side, QuicConn) and a_side.quic.tls.session_resumed
            assert second.remote_peer == a.peer_id and a_side.remote_peer == b.peer_id
            assert a_side.remote_public_key == b.config.identity.public_key()
            stream = await b.new_stream(a.peer_id, [ECHO])
            assert await echo_over(stream, b"resumed") == b"resumed"
            await asyncio.sleep(0.05)
            await second.close()
            # a server that no longer has the ticket falls back to the full handshake
            assert a.swarm._quic is not None
            a.swarm._quic.tickets._server.clear()
            async with timeout(5):
                while a.connections(b.peer_id):
                    await asyncio.sleep(0.01)
            third = await b.connect(a.full_addrs()[0])
            assert isinstance(third, QuicConn)
            await third.wait_confirmed()
            assert not third.quic.tls.session_resumed
            assert third.remote_peer == a.peer_id
            assert 0 < await b.ping(a.peer_id) < 1.0
        finally:
            await a.close()
            await b.close()

    aio(main)
