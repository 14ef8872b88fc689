"""The libp2p TLS machine (``aiolibp2p.proto.tls.machine``): two machines talking in memory,
plus raw pyOpenSSL peers for what our machine never sends (no ALPN overlap, TLS 1.2, two
certificates).  Spec: libp2p/specs ``tls/tls.md``, ``connections/inlined-muxer-negotiation.md``.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import (
    CertificateError,
    DecryptError,
    HandshakeError,
    LocalProtocolError,
    MessageTooLarge,
    NegotiationError,
    PeerIdMismatch,
    RemoteProtocolError,
)
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.tls import (
    PROTOCOL_ID,
    HandshakeComplete,
    State,
    TlsConfig,
    TlsHandshake,
    build_certificate,
)
from aiolibp2p.proto.tls.machine import MAX_RECORD_SIZE

NOW = 1_790_000_000.0
YAMUX, MPLEX = "/yamux/1.0.0", "/mplex/6.7.0"
_rng = random.Random(5)


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    return {kt: generate_private_key(kt) for kt in KeyType}


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def config(identity: PrivateKey, muxers: Any = (YAMUX, MPLEX), **kw: Any) -> TlsConfig:
    return TlsConfig(
        identity, kw.pop("cert_key", None) or p256(), now=NOW, serial=7, muxers=muxers, **kw
    )


def pid(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key())


def run(client: TlsHandshake, server: TlsHandshake, *, max_rounds: int = 10) -> tuple[Any, Any]:
    """Shuttle bytes until both sides complete (bounded); return both results."""
    results: dict[bool, Any] = {}
    for _ in range(max_rounds):
        for a, b in ((client, server), (server, client)):
            data = a.data_to_send()
            if data and b.state is State.HANDSHAKE:
                for event in b.receive_data(data):
                    assert isinstance(event, HandshakeComplete)
                    results[b.initiator] = event.result
            elif data and b.complete:
                results[b.initiator].transport.decrypt(data)  # post-handshake records
        if len(results) == 2 and not client.data_to_send() and not server.data_to_send():
            break
    assert len(results) == 2, "handshake did not finish"
    return results[True], results[False]


def pair(
    a: PrivateKey, b: PrivateKey, amux: Any = (YAMUX, MPLEX), bmux: Any = (YAMUX, MPLEX), **kw: Any
) -> tuple[TlsHandshake, TlsHandshake]:
    client = TlsHandshake(initiator=True, config=config(a, amux), now=NOW, **kw)
    server = TlsHandshake(initiator=False, config=config(b, bmux), now=NOW)
    return client, server


# ----------------------------------------------------------------------------- success


@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda kt: kt.name)
def test_handshake_every_key_type(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    a, b = keys[KeyType.Ed25519], keys[key_type]
    client, server = pair(a, b, expected_peer=pid(b))
    cr, sr = run(client, server)
    assert cr.remote_peer == pid(b) and cr.remote_public_key == b.public_key()
    assert sr.remote_peer == pid(a) and sr.remote_public_key == a.public_key()
    assert cr.muxer == sr.muxer == YAMUX
    assert sr.remote_muxers == (YAMUX, MPLEX)
    assert client.complete and server.complete
    assert PROTOCOL_ID == "/tls/1.0.0"
    # Application data both ways.
    assert sr.transport.decrypt(cr.transport.encrypt(b"ping")) == b"ping"
    assert cr.transport.decrypt(sr.transport.encrypt(b"pong")) == b"pong"


@pytest.mark.parametrize(
    ("client_muxers", "server_muxers", "expected"),
    [
        ((YAMUX, MPLEX), (MPLEX, YAMUX), YAMUX),  # the client's order wins
        ((MPLEX, YAMUX), (YAMUX, MPLEX), MPLEX),
        ((YAMUX, MPLEX), (MPLEX,), MPLEX),
        ((YAMUX,), (MPLEX,), None),  # only "libp2p" in common: multistream afterwards
        ((), (YAMUX,), None),
        ((YAMUX,), (), None),
    ],
)
def test_alpn_muxer_selection(
    keys: dict[KeyType, PrivateKey], client_muxers: Any, server_muxers: Any, expected: Any
) -> None:
    client, server = pair(keys[KeyType.Ed25519], keys[KeyType.ECDSA], client_muxers, server_muxers)
    cr, sr = run(client, server)
    assert cr.muxer == sr.muxer == expected


def test_byte_by_byte_and_leftover(keys: dict[KeyType, PrivateKey]) -> None:
    client, server = pair(keys[KeyType.Ed25519], keys[KeyType.Secp256k1])
    hello = client.data_to_send()
    for i in range(len(hello)):
        assert server.receive_data(hello[i : i + 1]) == []
    flight = server.data_to_send()
    events: list[Any] = []
    for i in range(len(flight)):
        events += client.receive_data(flight[i : i + 1])
    assert len(events) == 1
    cr = events[0].result
    # The client's Finished and its first application data arrive in one chunk.
    chunk = client.data_to_send() + cr.transport.encrypt(b"/multistream/1.0.0\n")
    [done] = server.receive_data(chunk)
    sr = done.result
    assert sr.leftover  # the application record stayed outside OpenSSL
    assert sr.transport.decrypt(sr.leftover) == b"/multistream/1.0.0\n"


def test_transport_sizes_and_eof(keys: dict[KeyType, PrivateKey]) -> None:
    cr, sr = run(*pair(keys[KeyType.Ed25519], keys[KeyType.Ed25519]))
    for size in (1, 16383, 16384, 16385, 65536, 300_001, 1 << 20):
        data = _rng.randbytes(size)
        sealed = cr.transport.encrypt(data)
        # Fed in odd pieces, the plaintext comes out whole and in order.
        got = b"".join(
            sr.transport.decrypt(sealed[i : i + 7777]) for i in range(0, len(sealed), 7777)
        )
        assert got == data
    assert cr.transport.encrypt(b"") == b""
    sealed = cr.transport.encrypt_many([b"ab", bytearray(b"cd"), memoryview(b"e")])
    assert sr.transport.decrypt(sealed) == b"abcde"
    close = cr.transport.close()
    assert close
    assert sr.transport.decrypt(close) == b""
    assert sr.transport.eof
    assert sr.transport.decrypt(b"anything") == b""


@pytest.fixture(scope="module")
def sealed_pair() -> tuple[Any, Any]:
    key = generate_private_key(KeyType.Ed25519)
    cr, sr = run(*pair(key, key))
    return cr.transport, sr.transport


_PART_SIZES = st.one_of(
    st.integers(0, 40), st.integers(16_370, 16_400), st.integers(60_000, 70_000)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_PART_SIZES, max_size=12), st.integers(0, 2**32))
def test_encrypt_gather_is_encrypt_of_the_join(
    sealed_pair: tuple[Any, Any], sizes: list[int], seed: int
) -> None:
    """Gathered parts (frame headers, payloads around the record size and the slice size,
    as bytes, bytearray or memoryview) decrypt to their concatenation."""
    enc, dec = sealed_pair
    rng = random.Random(seed)
    kinds = (bytes, bytearray, memoryview)
    parts = [rng.choice(kinds)(rng.randbytes(n)) for n in sizes]  # type: ignore[operator]
    sealed = enc.encrypt_gather(parts)
    joined = b"".join(bytes(p) for p in parts)
    assert (sealed == b"") == (joined == b"")
    assert dec.decrypt(sealed) == joined


def test_encrypt_gather_gives_small_parts_no_record_of_their_own(
    sealed_pair: tuple[Any, Any],
) -> None:
    enc, dec = sealed_pair
    header, payload = b"h" * 12, b"p" * 65536
    sealed = enc.encrypt_gather([header, payload, header, payload])
    plain = 2 * (12 + 65536)
    records = -(-plain // 16384)  # whole records: the headers ride with payload bytes
    assert len(sealed) == plain + 22 * records
    assert dec.decrypt(sealed) == header + payload + header + payload
    big = enc.encrypt_gather([payload] * 8)  # 512 KiB: read out of OpenSSL in pieces
    assert dec.decrypt(big) == payload * 8


def test_tampered_record(keys: dict[KeyType, PrivateKey]) -> None:
    cr, sr = run(*pair(keys[KeyType.Ed25519], keys[KeyType.Ed25519]))
    sealed = bytearray(cr.transport.encrypt(b"x" * 100))
    sealed[-1] ^= 1
    with pytest.raises(DecryptError):
        sr.transport.decrypt(bytes(sealed))
    assert sr.transport.eof


def test_api_misuse(keys: dict[KeyType, PrivateKey]) -> None:
    client, server = pair(keys[KeyType.Ed25519], keys[KeyType.Ed25519])
    with pytest.raises(LocalProtocolError):
        _ = client.result
    with pytest.raises(LocalProtocolError):
        client.receive_data("text")  # type: ignore[arg-type]
    run(client, server)
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        client.receive_eof()
    with pytest.raises(LocalProtocolError):
        TlsHandshake(initiator=True, config=object(), now=NOW)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        TlsConfig(keys[KeyType.Ed25519], p256(), now=NOW, serial=1, muxers="/yamux/1.0.0")
    with pytest.raises(LocalProtocolError, match="does not belong"):
        other = build_certificate(keys[KeyType.Ed25519], p256(), now=NOW, serial=1)
        TlsConfig(keys[KeyType.Ed25519], p256(), now=NOW, serial=1, certificate=other)


# ----------------------------------------------------------------------------- failures


def test_wrong_peer_id(keys: dict[KeyType, PrivateKey]) -> None:
    a, b, c = keys[KeyType.Ed25519], keys[KeyType.ECDSA], keys[KeyType.Secp256k1]
    client, server = pair(a, b, expected_peer=pid(c))
    server.receive_data(client.data_to_send())
    with pytest.raises(PeerIdMismatch):
        client.receive_data(server.data_to_send())
    assert client.state is State.ERROR
    alert = client.data_to_send()
    assert alert and alert[0] == 21  # a fatal alert record for the server
    with pytest.raises(HandshakeError):
        server.receive_data(alert)
    assert server.state is State.ERROR


def bad_cert(
    cert_key: ec.EllipticCurvePrivateKey, *, ext: bool, days: tuple[float, float]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "9")])
    utc = datetime.timezone.utc
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(9)
        .not_valid_before(datetime.datetime.fromtimestamp(NOW + days[0] * 86400, tz=utc))
        .not_valid_after(datetime.datetime.fromtimestamp(NOW + days[1] * 86400, tz=utc))
    )
    if ext:  # a valid extension copied from a proper certificate for the same key
        good = build_certificate(generate_private_key(KeyType.Ed25519), cert_key, now=NOW, serial=1)
        builder = builder.add_extension(
            good.extensions.get_extension_for_oid(
                x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.1")
            ).value,
            critical=False,
        )
    return builder.sign(cert_key, hashes.SHA256())


@pytest.mark.parametrize(
    ("ext", "days", "match"),
    [
        (False, (-1, 1), "no libp2p Public Key Extension"),
        (True, (-10, -1), "expired"),
        (True, (1, 10), "not yet valid"),
    ],
    ids=["no-extension", "expired", "not-yet-valid"],
)
@pytest.mark.parametrize("bad_side", ["server", "client"])
def test_bad_certificates(
    keys: dict[KeyType, PrivateKey], ext: bool, days: tuple[float, float], match: str, bad_side: str
) -> None:
    key = p256()
    bad = TlsConfig(
        keys[KeyType.Ed25519], key, now=NOW, serial=1, certificate=bad_cert(key, ext=ext, days=days)
    )
    good = config(keys[KeyType.ECDSA])
    client = TlsHandshake(initiator=True, config=good if bad_side == "server" else bad, now=NOW)
    server = TlsHandshake(initiator=False, config=bad if bad_side == "server" else good, now=NOW)
    server.receive_data(client.data_to_send())
    if bad_side == "server":
        with pytest.raises(CertificateError, match=match):
            client.receive_data(server.data_to_send())
        with pytest.raises(HandshakeError):
            server.receive_data(client.data_to_send())  # the alert
    else:
        [done] = client.receive_data(server.data_to_send())  # the client cannot know yet
        with pytest.raises(CertificateError, match=match):
            server.receive_data(client.data_to_send())
        with pytest.raises(DecryptError):
            done.result.transport.decrypt(server.data_to_send())  # the alert
    assert server.state is State.ERROR
    if bad_side == "server":
        assert client.state is State.ERROR


def raw_client(
    cert_key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, **kw: Any
) -> SSL.Connection:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(kw.get("min_version", SSL.TLS1_3_VERSION))
    if "max_version" in kw:
        ctx.set_max_proto_version(kw["max_version"])
    ctx.use_certificate(cert)
    ctx.use_privatekey(cert_key)
    for extra in kw.get("extra_chain", ()):
        ctx.add_extra_chain_cert(extra)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    ctx.set_alpn_protos(kw.get("alpn", [b"libp2p"]))
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    return conn


def raw_hello(conn: SSL.Connection) -> bytes:
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    return conn.bio_read(65536)


def test_alpn_mismatch(keys: dict[KeyType, PrivateKey]) -> None:
    key = p256()
    cert = build_certificate(keys[KeyType.Ed25519], key, now=NOW, serial=3)
    client = raw_client(key, cert, alpn=[b"h2", b"http/1.1"])
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.ECDSA]), now=NOW)
    with pytest.raises(NegotiationError, match="no ALPN protocol in common"):
        server.receive_data(raw_hello(client))
    alert = server.data_to_send()
    client.bio_write(alert)
    with pytest.raises(SSL.Error, match="no application protocol"):
        client.do_handshake()


def test_alpn_mismatch_seen_by_our_client(keys: dict[KeyType, PrivateKey]) -> None:
    # A server that refuses every protocol answers with the no_application_protocol alert.
    key = p256()
    cert = build_certificate(keys[KeyType.ECDSA], key, now=NOW, serial=3)
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)

    def refuse(conn: Any, offered: Any) -> bytes:
        raise ValueError("nothing")

    ctx.set_alpn_select_callback(refuse)
    server = SSL.Connection(ctx, None)
    server.set_accept_state()
    client = TlsHandshake(initiator=True, config=config(keys[KeyType.Ed25519]), now=NOW)
    server.bio_write(client.data_to_send())
    with pytest.raises(ValueError):
        server.do_handshake()
    with pytest.raises(NegotiationError):
        client.receive_data(server.bio_read(65536))


def test_tls12_refused(keys: dict[KeyType, PrivateKey]) -> None:
    key = p256()
    cert = build_certificate(keys[KeyType.Ed25519], key, now=NOW, serial=3)
    client = raw_client(key, cert, min_version=SSL.TLS1_2_VERSION, max_version=SSL.TLS1_2_VERSION)
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.ECDSA]), now=NOW)
    with pytest.raises(HandshakeError):
        server.receive_data(raw_hello(client))
    assert server.state is State.ERROR


def test_two_certificates_refused(keys: dict[KeyType, PrivateKey]) -> None:
    key = p256()
    cert = build_certificate(keys[KeyType.Ed25519], key, now=NOW, serial=3)
    extra = build_certificate(keys[KeyType.ECDSA], p256(), now=NOW, serial=4)
    client = raw_client(key, cert, extra_chain=[extra])
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.ECDSA]), now=NOW)
    server.receive_data(raw_hello(client))
    client.bio_write(server.data_to_send())
    client.do_handshake()
    with pytest.raises(CertificateError, match="certificate"):
        server.receive_data(client.bio_read(65536))


def test_record_limits_and_garbage(keys: dict[KeyType, PrivateKey]) -> None:
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.Ed25519]), now=NOW)
    with pytest.raises(MessageTooLarge):
        server.receive_data(bytes([22, 3, 1]) + (MAX_RECORD_SIZE + 1).to_bytes(2, "big"))
    assert server.state is State.ERROR
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.Ed25519]), now=NOW)
    with pytest.raises(HandshakeError, match="not a TLS record"):
        server.receive_data(b"/multistream/1.0.0\n")
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.Ed25519]), now=NOW)
    server.receive_data(b"\x16\x03\x01")
    with pytest.raises(HandshakeError, match="ended"):
        server.receive_eof()


@pytest.fixture(scope="module")
def shared_config(keys: dict[KeyType, PrivateKey]) -> TlsConfig:
    return config(keys[KeyType.Ed25519])


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=3000))
def test_random_bytes_to_server(shared_config: TlsConfig, data: bytes) -> None:
    server = TlsHandshake(initiator=False, config=shared_config, now=NOW)
    try:
        events = server.receive_data(data)
    except RemoteProtocolError:
        assert server.state is State.ERROR
        return
    assert events == []  # random bytes never complete a handshake


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_corrupted_server_flight(shared_config: TlsConfig, data: st.DataObject) -> None:
    client = TlsHandshake(initiator=True, config=shared_config, now=NOW)
    server = TlsHandshake(initiator=False, config=shared_config, now=NOW)
    server.receive_data(client.data_to_send())
    flight = bytearray(server.data_to_send())
    # The flight's length varies (OpenSSL draws its own randomness): draw positions as fractions.
    cut = data.draw(st.integers(0, 1000)) * len(flight) // 1000
    pos = data.draw(st.integers(0, 999)) * len(flight) // 1000
    flight[pos] ^= data.draw(st.integers(1, 255))
    try:
        events = client.receive_data(bytes(flight[:cut]))
    except RemoteProtocolError:
        assert client.state is State.ERROR
        return
    assert events == [] or pos >= cut  # a corrupted record never authenticates


def test_client_without_certificate_refused(keys: dict[KeyType, PrivateKey]) -> None:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    ctx.set_alpn_protos([b"libp2p"])
    client = SSL.Connection(ctx, None)
    client.set_connect_state()
    server = TlsHandshake(initiator=False, config=config(keys[KeyType.Ed25519]), now=NOW)
    server.receive_data(raw_hello(client))
    client.bio_write(server.data_to_send())
    client.do_handshake()  # a TLS 1.3 client finishes first
    with pytest.raises(HandshakeError, match="certificate"):
        server.receive_data(client.bio_read(65536))
    assert server.state is State.ERROR
