"""The connection upgrade (``aiolibp2p.proto.upgrade``) with ``/tls/1.0.0``: two upgraders in
memory, multistream + TLS + ALPN (or multistream muxer fallback)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aiolibp2p.core.crypto import PrivateKey, generate_private_key
from aiolibp2p.core.errors import (
    CertificateError,
    LocalProtocolError,
    NegotiationError,
    PeerIdMismatch,
    RemoteProtocolError,
)
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.tls import TlsConfig, TlsTransport
from aiolibp2p.proto.upgrade import NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID, UpgradeComplete, Upgrader

YAMUX, MPLEX = "/yamux/1.0.0", "/mplex/6.7.0"
NOW = time.time()


def tls_config(key: PrivateKey, muxers: Any = (YAMUX, MPLEX), now: float = NOW) -> TlsConfig:
    return TlsConfig(
        key, ec.generate_private_key(ec.SECP256R1()), now=now, serial=11, muxers=muxers
    )


def upgrader(
    initiator: bool,
    key: PrivateKey,
    *,
    security: Any = (TLS_PROTOCOL_ID,),
    muxers: Any = (YAMUX, MPLEX),
    tls: TlsConfig | None = None,
    now: float = NOW,
    expected_peer: PeerId | None = None,
) -> Upgrader:
    return Upgrader(
        initiator=initiator,
        identity_key=key,
        muxers=muxers,
        static_key=os.urandom(32),
        ephemeral_key=os.urandom(32),
        expected_peer=expected_peer,
        security=security,
        tls_config=tls or tls_config(key, muxers),
        now=now,
    )


def run(
    dialer: Upgrader, listener: Upgrader, rounds: int = 12
) -> tuple[UpgradeComplete, UpgradeComplete]:
    done: dict[bool, UpgradeComplete] = {}
    pending: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
    for _ in range(rounds):
        for src, dst in ((dialer, listener), (listener, dialer)):
            out = src.data_to_send()
            if not out:
                continue
            if dst.initiator in done:
                pending[dst.initiator] += out  # bytes for the muxer
                continue
            complete = dst.receive_data(out)
            if complete is not None:
                done[dst.initiator] = complete
        if len(done) == 2:
            break
    assert len(done) == 2, "upgrade did not finish"
    return done[True], done[False]


def test_tls_upgrade_with_alpn_muxer() -> None:
    a, b = generate_private_key(), generate_private_key()
    d, li = run(
        upgrader(True, a, expected_peer=PeerId.from_public_key(b.public_key())),
        upgrader(False, b, security=(NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID)),
    )
    assert d.security == li.security == TLS_PROTOCOL_ID
    assert d.muxer == li.muxer == YAMUX and d.early_muxer and li.early_muxer
    assert isinstance(d.transport, TlsTransport)
    assert d.remote_peer == PeerId.from_public_key(b.public_key())
    assert li.remote_peer == PeerId.from_public_key(a.public_key())
    assert li.transport.decrypt(d.transport.encrypt(b"yamux bytes")) == b"yamux bytes"


def test_tls_upgrade_multistream_muxer_fallback() -> None:
    # No muxers in the listener's ALPN list: "libp2p" is chosen, multistream picks the muxer.
    a, b = generate_private_key(), generate_private_key()
    d, li = run(
        upgrader(True, a, muxers=(MPLEX,)),
        upgrader(False, b, muxers=(YAMUX, MPLEX), tls=tls_config(b, muxers=())),
    )
    assert d.muxer == li.muxer == MPLEX
    assert not d.early_muxer and not li.early_muxer


def test_noise_still_default_for_dialers() -> None:
    a, b = generate_private_key(), generate_private_key()
    d, li = run(
        upgrader(True, a, security=(NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID)),
        upgrader(False, b, security=(NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID)),
    )
    assert d.security == li.security == NOISE_PROTOCOL_ID


def test_listener_without_tls_refuses() -> None:
    a, b = generate_private_key(), generate_private_key()
    dialer = upgrader(True, a)
    listener = upgrader(False, b, security=(NOISE_PROTOCOL_ID,))
    with pytest.raises(RemoteProtocolError):
        run(dialer, listener)


def test_wrong_peer_and_expired_certificate() -> None:
    a, b, c = generate_private_key(), generate_private_key(), generate_private_key()
    with pytest.raises(PeerIdMismatch):
        run(
            upgrader(True, a, expected_peer=PeerId.from_public_key(c.public_key())),
            upgrader(False, b),
        )
    old = tls_config(b, now=NOW - 10_000)
    # The listener's certificate expired an hour before the dialer checks it.
    short = TlsConfig(
        b,
        ec.generate_private_key(ec.SECP256R1()),
        now=NOW - 10_000,
        serial=3,
        lifetime=100,
        muxers=(YAMUX,),
    )
    with pytest.raises(CertificateError, match="expired"):
        run(upgrader(True, a), upgrader(False, b, tls=short))
    d, _ = run(upgrader(True, a), upgrader(False, b, tls=old))  # long-lived: still fine
    assert d.remote_peer == PeerId.from_public_key(b.public_key())


def test_alpn_no_overlap_is_a_negotiation_error() -> None:
    # A listener whose TLS config offers only "libp2p" still accepts: ALPN always overlaps for
    # libp2p peers; a mismatch needs a foreign client (tests/unit/test_tls_machine.py).
    a, b = generate_private_key(), generate_private_key()
    d, li = run(upgrader(True, a, tls=tls_config(a, muxers=())), upgrader(False, b))
    assert d.muxer == li.muxer == YAMUX and not d.early_muxer
    assert issubclass(NegotiationError, RemoteProtocolError)


def test_bad_arguments() -> None:
    a = generate_private_key()
    with pytest.raises(LocalProtocolError):
        upgrader(True, a, security=("/secio/1.0.0",))
    with pytest.raises(LocalProtocolError):
        upgrader(True, a, security=(TLS_PROTOCOL_ID, TLS_PROTOCOL_ID))
    with pytest.raises(LocalProtocolError):
        Upgrader(
            initiator=True,
            identity_key=a,
            muxers=(YAMUX,),
            static_key=os.urandom(32),
            ephemeral_key=os.urandom(32),
            security=(TLS_PROTOCOL_ID,),
        )


def test_eof_during_tls_handshake() -> None:
    a, b = generate_private_key(), generate_private_key()
    dialer, listener = upgrader(True, a), upgrader(False, b)
    listener.receive_data(dialer.data_to_send())
    dialer.receive_data(listener.data_to_send()[:40])  # the listener's header and part of TLS
    from aiolibp2p.core.errors import HandshakeError

    with pytest.raises(HandshakeError):
        dialer.receive_eof()
