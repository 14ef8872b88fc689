"""QUIC connection setup costs: what is reused across connections, and that reuse never skips a
check.

* One TLS certificate per host, replaced when it nears the end of its validity.
* :class:`~aiolibp2p.proto.tls.certificate.VerifiedCertificates`: a peer certificate verified
  once (exact DER bytes) is not parsed and signature-checked again; any other certificate is;
  the validity window is checked on every use; the peer id is still checked on every dial.
* Timers never fire before their deadline (uvloop rounds delays to whole milliseconds).
* Fewer connection ids issued per connection; QUIC v1 only.

Real hosts on 127.0.0.1 (both loops, leak-checked by the ``aio`` fixture), and the certificate
cache on its own with real certificates.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest

pytest.importorskip("aioquic")

from _echo import ECHO, quic_host
from aioquic import tls as aioquic_tls
from aioquic.quic import connection as aioquic_connection
from aioquic.quic.packet import QuicProtocolVersion
from cryptography.hazmat.primitives import serialization

import aiolibp2p
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import CertificateError, DialError, LocalProtocolError, PeerIdMismatch
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net.quic_connection import (
    QuicConn,
    _timer_delay,
    new_certificate_key,
    random_serial,
)
from aiolibp2p.net.transports.quic import QuicTransport
from aiolibp2p.proto.tls.certificate import (
    CLOCK_SKEW_ALLOWANCE,
    VerifiedCertificates,
    build_certificate,
    verify_certificate,
)

LOCAL = "/ip4/127.0.0.1/udp/0/quic-v1"
DAY = 86400.0


def transport(host: aiolibp2p.Host) -> QuicTransport:
    quic = host.swarm._quic
    assert quic is not None
    return quic


def der(cert: Any) -> bytes:
    return bytes(cert.public_bytes(serialization.Encoding.DER))


async def fresh_connect(
    client: aiolibp2p.Host, server: aiolibp2p.Host, target: Any = None
) -> QuicConn:
    """A new connection with a full handshake (certificates): no open connection, no ticket."""
    await client.disconnect(server.peer_id)
    quic = client.swarm._quic
    if quic is not None:
        quic.tickets.take_client(server.peer_id)
    conn = await client.connect(target if target is not None else server.full_addrs()[0])
    assert isinstance(conn, QuicConn)
    stream = await conn.new_stream([ECHO])
    await stream.write(b"ping")
    assert await stream.readexactly(4) == b"ping"
    await stream.close()
    assert not conn.quic.tls.session_resumed
    return conn


# ------------------------------------------------------------------- VerifiedCertificates


def make_cert(*, now: float | None = None, lifetime: float = DAY, identity: Any = None) -> Any:
    identity = identity if identity is not None else generate_private_key()
    return build_certificate(
        identity,
        new_certificate_key(),
        now=time.time() if now is None else now,
        serial=random_serial(),
        lifetime=lifetime,
    )


def test_verified_certificates_hit_returns_the_verified_key() -> None:
    cache = VerifiedCertificates()
    cert = make_cert()
    now = time.time()
    first = cache.verify(cert, now=now)
    assert first == verify_certificate(cert, now=now)
    assert len(cache) == 1
    # the same bytes (as an object or as DER): the remembered key, nothing new stored
    assert cache.verify(cert, now=now) is first
    assert cache.verify(der(cert), now=now) is first
    assert len(cache) == 1


def test_verified_certificates_verify_every_new_certificate() -> None:
    cache = VerifiedCertificates()
    identity = generate_private_key()
    now = time.time()
    a = make_cert(identity=identity)
    b = make_cert(identity=identity)  # same host key, another certificate: checked on its own
    assert cache.verify(a, now=now) == cache.verify(b, now=now)
    assert len(cache) == 2
    # a forged certificate after a good one: the signature check still runs and fails
    raw = bytearray(der(a))
    raw[-5] ^= 0x01  # in the self-signature
    for _ in range(2):  # failures are not remembered
        with pytest.raises(CertificateError):
            cache.verify(bytes(raw), now=now)
    assert len(cache) == 2
    with pytest.raises(LocalProtocolError):
        cache.verify("not a certificate", now=now)  # type: ignore[arg-type]


def test_verified_certificates_check_validity_on_every_use() -> None:
    cache = VerifiedCertificates()
    now = time.time()
    cert = make_cert(now=now, lifetime=60.0)
    cache.verify(cert, now=now)
    assert len(cache) == 1
    with pytest.raises(CertificateError, match="expired"):
        cache.verify(cert, now=now + 120.0)
    with pytest.raises(CertificateError, match="not yet valid"):
        cache.verify(cert, now=now - CLOCK_SKEW_ALLOWANCE - 60.0)
    assert cache.verify(cert, now=now + 30.0) is not None


def test_verified_certificates_are_bounded() -> None:
    now = time.time()
    certs = [make_cert() for _ in range(5)]
    by_count = VerifiedCertificates(max_entries=3)
    for cert in certs:
        by_count.verify(cert, now=now)
    assert len(by_count) == 3
    size = len(der(certs[0]))
    by_bytes = VerifiedCertificates(max_bytes=2 * size + size // 2)
    for cert in certs:
        by_bytes.verify(cert, now=now)
    assert len(by_bytes) == 2
    disabled = VerifiedCertificates(max_entries=0)
    disabled.verify(certs[0], now=now)
    assert len(disabled) == 0
    for bad in (-1, True, 1.5):
        with pytest.raises(LocalProtocolError):
            VerifiedCertificates(max_entries=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------- hosts: certificate reuse


def test_repeated_full_handshakes_reuse_certificates_and_still_check_peers(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        c = await quic_host()
        try:
            await fresh_connect(b, a)
            qa, qb = transport(a), transport(b)
            cert_a, cert_b = qa._certificate, qb._certificate
            assert len(qb._verified_certificates) == 1  # a's certificate
            assert len(qa._verified_certificates) == 1  # b's certificate
            conn = await fresh_connect(b, a)  # again: both certificates reused and remembered
            assert qa._certificate is cert_a and qb._certificate is cert_b
            assert len(qb._verified_certificates) == 1 and len(qa._verified_certificates) == 1
            assert conn.remote_peer == a.peer_id
            assert a.connections(b.peer_id)[0].remote_peer == b.peer_id
            # a new peer's certificate is verified (and remembered) in full
            conn = await fresh_connect(b, c)
            assert conn.remote_peer == c.peer_id
            assert len(qb._verified_certificates) == 2
            # a's certificate is remembered, but a dial expecting another peer id still fails
            await b.disconnect(a.peer_id)
            qb.tickets.take_client(a.peer_id)
            other = PeerId.from_public_key(generate_private_key().public_key())
            wrong = Multiaddr(f"{a.listen_addrs[0]}/p2p/{other}")
            with pytest.raises((PeerIdMismatch, DialError)):
                await b.connect(wrong)
            assert not b.connections(other)
        finally:
            for host in (a, b, c):
                await host.close()

    aio(main, timeout=30)


def test_certificate_near_expiry_is_replaced(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            await fresh_connect(b, a)
            qa, qb = transport(a), transport(b)
            identity = a.config.identity
            # plenty of validity left: kept
            key = new_certificate_key()
            lasting = build_certificate(
                identity, key, now=time.time(), serial=random_serial(), lifetime=DAY
            )
            qa._set_certificate(key, lasting)
            await fresh_connect(b, a)
            assert qa._certificate is lasting
            assert der(lasting) in qb._verified_certificates._entries
            # a minute left: a new certificate for the next connection, which b verifies
            key = new_certificate_key()
            ending = build_certificate(
                identity, key, now=time.time(), serial=random_serial(), lifetime=60.0
            )
            qa._set_certificate(key, ending)
            conn = await fresh_connect(b, a)
            renewed = qa._certificate
            assert renewed is not ending and qa._cert_key is not key
            assert renewed.not_valid_after_utc.timestamp() > time.time() + 365 * DAY
            assert verify_certificate(renewed, now=time.time()) == identity.public_key()
            assert der(renewed) in qb._verified_certificates._entries
            assert der(ending) not in qb._verified_certificates._entries
            assert conn.remote_peer == a.peer_id
            await fresh_connect(b, a)
            assert qa._certificate is renewed  # and then reused
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


# ------------------------------------------------------------------ connection parameters


def test_connection_ids_and_versions(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            conn = await fresh_connect(b, a)
            server = a.connections(b.peer_id)[0]
            assert isinstance(server, QuicConn)
            for side in (conn, server):
                # one spare connection id each way (aioquic's default issues seven)
                assert side.quic._local_active_connection_id_limit == 2
                assert side.quic._remote_active_connection_id_limit == 2
                assert len(side.quic._peer_cid_available) == 1
                assert side.quic._version == QuicProtocolVersion.VERSION_1
            # the server took the client's first key share: X25519, no P-256 key made
            assert server.quic.tls._x25519_private_key is not None
            assert not server.quic.tls._ec_private_keys
            for host in (a, b):
                config = transport(host)._configuration(is_client=True)
                assert config.supported_versions == [QuicProtocolVersion.VERSION_1]
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


def test_memoized_epochs_match_aioquic() -> None:
    epochs = aioquic_connection.EPOCHS
    assert hasattr(epochs, "cache_info")
    E = aioquic_tls.Epoch
    assert epochs("IH01") == frozenset({E.INITIAL, E.HANDSHAKE, E.ZERO_RTT, E.ONE_RTT})
    assert epochs("1") == frozenset({E.ONE_RTT})
    assert epochs("01") is epochs("01")


def test_closed_connection_frees_machine_state_without_gc(aio: Any) -> None:
    async def main() -> None:
        a = await quic_host()
        b = await quic_host()
        try:
            conn = await fresh_connect(b, a)
            stream = await conn.new_stream([ECHO])
            await stream.write(b"x")
            assert await stream.readexactly(1) == b"x"
            quic = conn.quic
            refs = [
                weakref.ref(quic._streams[stream.stream_id]),
                weakref.ref(quic._cryptos[aioquic_tls.Epoch.ONE_RTT]),
                weakref.ref(quic._spaces[aioquic_tls.Epoch.ONE_RTT]),
            ]
            gc.disable()
            try:
                await conn.close()
                await asyncio.sleep(0)
                assert conn.error is not None or conn.closed.done()
                assert [r() for r in refs] == [None, None, None]  # freed by reference counting
                assert quic._state is not None  # what is still read after closing remains
            finally:
                gc.enable()
            assert b.connections(a.peer_id) == []
            await fresh_connect(b, a)  # the transport works on
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


# ----------------------------------------------------------------------------------- timers


def test_timer_delay_never_fires_early(aio: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lateness: list[float] = []

        def fire(fired: asyncio.Future[float], deadline: float) -> None:
            fired.set_result(time.monotonic() - deadline)

        for i in range(40):
            deadline = time.monotonic() + 0.00025 * i
            fired: asyncio.Future[float] = loop.create_future()
            loop.call_later(_timer_delay(loop, deadline), fire, fired, deadline)
            lateness.append(await asyncio.wait_for(fired, 1.0))
        assert min(lateness) >= 0.0, lateness
        assert max(lateness) < 0.5, lateness  # bounded (a loaded machine delays callbacks)

    aio(main, timeout=30)
