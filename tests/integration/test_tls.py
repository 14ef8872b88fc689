"""``/tls/1.0.0`` over real loopback TCP: hosts talking TLS (muxer via ALPN), and bad input
(certificates without the extension, expired or not yet valid, a wrong peer id, no ALPN
protocol in common) refused with a typed error, the connection closed and nothing leaked.

Spec: libp2p/specs ``tls/tls.md`` and ``connections/inlined-muxer-negotiation.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from _echo import ECHO, echo_handler
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import MPLEX, NOISE, TLS, YAMUX
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import (
    CertificateError,
    DialError,
    HandshakeError,
    Libp2pError,
    NegotiationError,
    PeerIdMismatch,
    ProtocolNotSupported,
    RemoteProtocolError,
)
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net.transports.tcp import tcp_endpoint
from aiolibp2p.proto.multistream import Dialer
from aiolibp2p.proto.tls import EXTENSION_OID, TlsConfig, build_certificate
from aiolibp2p.proto.upgrade import Upgrader

LOCAL = "/ip4/127.0.0.1/tcp/0"
CLOSE_BOUND = 3.0


async def hosts(
    *a_opts: Any, b_opts: tuple[Any, ...] = ()
) -> tuple[aiolibp2p.Host, aiolibp2p.Host]:
    a = await aiolibp2p.new_host(o.listen(LOCAL), *a_opts)
    b = await aiolibp2p.new_host(o.listen(LOCAL), *b_opts)
    a.set_stream_handler(ECHO, echo_handler)
    b.set_stream_handler(ECHO, echo_handler)
    return a, b


# ----------------------------------------------------------------------------- working TLS


@pytest.mark.parametrize("muxer", [YAMUX, MPLEX])
def test_tls_identify_ping_echo(aio: Any, muxer: str) -> None:
    payload = os.urandom(4 * 1024 * 1024)

    async def main() -> None:
        # a dials with TLS only; b listens with the default (noise, then TLS).
        a, b = await hosts(o.security(TLS), o.muxers(muxer), b_opts=(o.muxers(muxer),))
        try:
            conn = await a.connect(b.full_addrs()[0])
            assert conn.security == TLS and conn.muxer == muxer
            assert conn.early_muxer  # chosen through ALPN
            (back,) = b.connections(a.peer_id)
            assert back.security == TLS and back.muxer == muxer
            info = await a.identify(b.peer_id)
            assert ECHO in info.protocols
            assert info.signed_record is not None and info.signed_record.peer_id == b.peer_id
            assert ECHO in (await b.identify(a.peer_id)).protocols
            assert 0 < await a.ping(b.peer_id) < 1.0
            stream = await a.new_stream(b.peer_id, [ECHO])

            async def send() -> None:
                view = memoryview(payload)
                for i in range(0, len(view), 256 * 1024):
                    await stream.write(view[i : i + 256 * 1024])
                await stream.close()

            sender = asyncio.ensure_future(send())
            received = await stream.read()
            await sender
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()

            async def one(i: int) -> None:
                s = await a.new_stream(b.peer_id, [ECHO])
                await s.write(b"x" * (i + 1))
                await s.close()
                assert await s.read() == b"x" * (i + 1)

            await asyncio.gather(*(one(i) for i in range(50)))
            assert len(a.connections(b.peer_id)) == 1
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


def test_tls_only_listener(aio: Any) -> None:
    async def main() -> None:
        # A noise-first dialer meets a TLS-only listener: refused, typed; a TLS dialer gets in.
        a, b = await hosts(b_opts=(o.security(TLS),))
        c = await aiolibp2p.new_host(o.security(TLS, NOISE))
        try:
            with pytest.raises(DialError) as info:
                await a.connect(b.full_addrs()[0])
            # The listener meets Noise message 1 where it expects its next multistream message
            # and closes before its "na" leaves, so the dialer sees a typed handshake error.
            (error,) = info.value.errors.values()
            assert isinstance(error, (ProtocolNotSupported, HandshakeError)), repr(error)
            assert not a.connections() and not b.connections()
            conn = await c.connect(b.full_addrs()[0])
            assert conn.security == TLS
            assert await c.ping(b.peer_id) > 0
        finally:
            for h in (a, b, c):
                await h.close()

    aio(main)


def test_tls_wrong_peer_id(aio: Any) -> None:
    async def main() -> None:
        a, b = await hosts(o.security(TLS))
        other = PeerId.from_public_key(generate_private_key().public_key())
        try:
            with pytest.raises(DialError) as info:
                await a.connect(f"{b.listen_addrs[0]}/p2p/{other}")
            assert any(isinstance(e, PeerIdMismatch) for e in info.value.errors.values())
            assert not a.connections()
            assert await a.ping(b.full_addrs()[0]) > 0  # b is unharmed
        finally:
            await a.close()
            await b.close()

    aio(main)


# ----------------------------------------------------------------------------- bad certificates


def bad_certificate(key: ec.EllipticCurvePrivateKey, kind: str) -> x509.Certificate:
    """A certificate for ``key``: without the libp2p extension, expired or not yet valid."""
    now = time.time()
    validity = {"no-extension": (-60, 3600), "expired": (-7200, -3600), "future": (3600, 7200)}
    start, end = validity[kind]
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "5")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(datetime.datetime.fromtimestamp(now + start, tz=datetime.timezone.utc))
        .not_valid_after(datetime.datetime.fromtimestamp(now + end, tz=datetime.timezone.utc))
    )
    if kind != "no-extension":
        good = build_certificate(generate_private_key(), key, now=now, serial=1)
        ext = good.extensions.get_extension_for_oid(EXTENSION_OID)
        builder = builder.add_extension(ext.value, critical=False)
    return builder.sign(key, hashes.SHA256())


def bad_tls_config(kind: str) -> TlsConfig:
    key = ec.generate_private_key(ec.SECP256R1())
    return TlsConfig(
        generate_private_key(),
        key,
        now=time.time(),
        serial=5,
        muxers=(YAMUX,),
        certificate=bad_certificate(key, kind),
    )


MATCH = {
    "no-extension": "no libp2p Public Key Extension",
    "expired": "expired",
    "future": "not yet valid",
}
KINDS = list(MATCH)


def host_warnings(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    """The exceptions the host's connections logged when failing (``Connection._fail``)."""
    found = []
    for record in caplog.records:
        if record.name == "aiolibp2p.connection" and record.levelno >= logging.WARNING:
            args = record.args if isinstance(record.args, tuple) else ()
            found += [arg for arg in args if isinstance(arg, BaseException)]
    return found


async def wait_for_warning(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    deadline = time.monotonic() + CLOSE_BOUND
    while not host_warnings(caplog) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return host_warnings(caplog)


async def read_until_closed(reader: asyncio.StreamReader) -> None:
    async def drain() -> None:
        while True:
            try:
                if not await reader.read(1 << 16):
                    return
            except (ConnectionResetError, BrokenPipeError):
                return

    try:
        await asyncio.wait_for(drain(), CLOSE_BOUND)
    except asyncio.TimeoutError:
        pytest.fail(f"the host did not close the connection within {CLOSE_BOUND} s")


async def raw_dial(
    host: aiolibp2p.Host, first: bytes, step: Callable[[bytes], bytes] | None = None
) -> None:
    """Open a raw TCP connection to ``host``, send ``first``, answer with ``step(received)``
    until the host closes the connection (bounded)."""
    ip, port, _ = tcp_endpoint(host.listen_addrs[0])
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
    try:
        writer.write(first)
        deadline = time.monotonic() + CLOSE_BOUND
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), CLOSE_BOUND)
            except (ConnectionResetError, BrokenPipeError):
                return
            if not data:
                return
            if step is not None:
                with contextlib.suppress(Libp2pError, SSL.Error):
                    out = step(data)
                    if out:
                        writer.write(out)
        pytest.fail("the host did not close the connection")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def host_survives(host: aiolibp2p.Host) -> None:
    other = await aiolibp2p.new_host(o.security(TLS))
    try:
        assert await other.ping(host.full_addrs()[0]) > 0
    finally:
        await other.close()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_client_certificate(aio: Any, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    caplog.set_level(logging.WARNING, logger="aiolibp2p")

    async def main() -> None:
        host = await aiolibp2p.new_host(o.listen(LOCAL))
        try:
            upgrader = Upgrader(
                initiator=True,
                identity_key=generate_private_key(),
                muxers=(YAMUX,),
                static_key=os.urandom(32),
                ephemeral_key=os.urandom(32),
                security=(TLS,),
                tls_config=bad_tls_config(kind),
                now=time.time(),
            )

            def step(data: bytes) -> bytes:
                upgrader.receive_data(data)  # the client finishes: TLS 1.3 clients send last
                return upgrader.data_to_send()

            await raw_dial(host, upgrader.data_to_send(), step)
            errors = await wait_for_warning(caplog)
            assert len(errors) == 1, errors
            assert isinstance(errors[0], CertificateError), repr(errors[0])
            assert MATCH[kind] in str(errors[0])
            assert not host.connections()
            await host_survives(host)
        finally:
            await host.close()

    aio(main)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_server_certificate(aio: Any, kind: str) -> None:
    async def main() -> None:
        config = bad_tls_config(kind)
        failures: list[BaseException] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upgrader = Upgrader(
                initiator=False,
                identity_key=config.identity,
                muxers=(YAMUX,),
                static_key=os.urandom(32),
                ephemeral_key=os.urandom(32),
                security=(TLS,),
                tls_config=config,
                now=time.time(),
            )
            try:
                writer.write(upgrader.data_to_send())
                for _ in range(20):
                    data = await asyncio.wait_for(reader.read(1 << 16), CLOSE_BOUND)
                    if not data:
                        break
                    upgrader.receive_data(data)
                    writer.write(upgrader.data_to_send())
            except (RemoteProtocolError, OSError, asyncio.TimeoutError) as exc:
                failures.append(exc)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        peer = PeerId.from_public_key(config.identity.public_key())
        host = await aiolibp2p.new_host(o.security(TLS))
        try:
            with pytest.raises(DialError) as info:
                await host.connect(f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer}")
            errors = list(info.value.errors.values())
            assert len(errors) == 1 and isinstance(errors[0], CertificateError), errors
            assert MATCH[kind] in str(errors[0])
            assert not host.connections()
        finally:
            await host.close()
            server.close()
            await server.wait_closed()
            for _ in range(20):  # the handler sees our close and returns
                if failures:
                    break
                await asyncio.sleep(0.01)

    aio(main)


def test_alpn_mismatch(aio: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiolibp2p")

    async def main() -> None:
        host = await aiolibp2p.new_host(o.listen(LOCAL))
        try:
            key = ec.generate_private_key(ec.SECP256R1())
            ctx = SSL.Context(SSL.TLS_METHOD)
            ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
            ctx.use_certificate(
                build_certificate(generate_private_key(), key, now=time.time(), serial=9)
            )
            ctx.use_privatekey(key)
            ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
            ctx.set_alpn_protos([b"h2", b"http/1.1"])  # no "libp2p"
            client = SSL.Connection(ctx, None)
            client.set_connect_state()
            with pytest.raises(SSL.WantReadError):
                client.do_handshake()
            first = Dialer([TLS], lazy=True).data_to_send() + client.bio_read(65536)
            alerts: list[str] = []

            def step(data: bytes) -> bytes:
                tls = data[data.index(b"/tls/1.0.0\n") + 11 :] if b"/tls/1.0.0\n" in data else data
                client.bio_write(tls)
                try:
                    client.do_handshake()
                except SSL.Error as exc:
                    alerts.append(str(exc))
                return b""

            await raw_dial(host, first, step)
            errors = await wait_for_warning(caplog)
            assert len(errors) == 1 and isinstance(errors[0], NegotiationError), errors
            assert "ALPN" in str(errors[0])
            assert not host.connections()
            await host_survives(host)
        finally:
            await host.close()

    aio(main)
