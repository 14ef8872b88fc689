"""Peer records (RFC 0003) in signed envelopes: round trips, identity checks, interop vectors.

``tests/vectors/signed_peer_records.json`` holds signed peer records made by go-libp2p and
js-libp2p, taken from libp2p/rust-libp2p commit 0fd4938f6f4f11c38f2c10e3b3698acb9bdd5c06
(``core/tests/fixtures/{go,js}/*-signed-peer-record.bin``); see the file's ``source`` block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import EnvelopeError, LocalProtocolError
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr
from aiolibp2p.core.pb import envelope_pb2, peer_record_pb2
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import DEFAULT_MAX_ENVELOPE_SIZE, Envelope, PeerRecord
from aiolibp2p.core.record import peer_record as peer_record_module

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "signed_peer_records.json").read_text()
)
KEY_TYPES = [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA, KeyType.RSA]
ADDRS = (
    parse_multiaddr("/ip4/1.2.3.4/tcp/4001"),
    parse_multiaddr("/ip6/2606:4700::1/udp/4001/quic-v1"),
    parse_multiaddr("/dns4/example.com/tcp/443/wss"),
)


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    return {t: generate_private_key(t) for t in KEY_TYPES}


def _peer(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key())


@pytest.fixture(scope="module")
def signed(keys: dict[KeyType, PrivateKey]) -> bytes:
    key = keys[KeyType.Ed25519]
    return PeerRecord(_peer(key), 7, ADDRS).seal(key).to_bytes()


def test_constants() -> None:
    assert PeerRecord.DOMAIN == "libp2p-peer-record"
    assert PeerRecord.PAYLOAD_TYPE == b"\x03\x01"


@pytest.mark.parametrize("vector", VECTORS["records"], ids=lambda v: v["producer"])
def test_interop_vectors(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["envelope"])
    envelope, record = PeerRecord.open_signed(wire)
    assert str(record.peer_id) == vector["peer_id"]
    assert record.peer_id.matches_public_key(envelope.public_key)
    assert record.seq == vector["seq"]
    assert [str(a) for a in record.addrs] == vector["addrs"]
    # our encoders reproduce the other implementations' bytes exactly
    assert envelope.to_bytes() == wire
    assert record.to_bytes() == envelope.payload
    assert Envelope.open(wire, PeerRecord.DOMAIN) == envelope


@pytest.mark.parametrize("vector", VECTORS["records"], ids=lambda v: v["producer"])
def test_interop_vectors_fail_for_other_domains(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["envelope"])
    for domain in ("libp2p-routing-state", "libp2p-peer-records"):  # RFC text, and a near miss
        with pytest.raises(EnvelopeError):
            Envelope.open(wire, domain)


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("addrs", [(), ADDRS[:1], ADDRS])
@pytest.mark.parametrize("seq", [0, 1, 1_700_000_000_000_000_000, 2**64 - 1])
def test_seal_open_round_trip(
    keys: dict[KeyType, PrivateKey], key_type: KeyType, addrs: tuple[Multiaddr, ...], seq: int
) -> None:
    key = keys[key_type]
    record = PeerRecord(_peer(key), seq, addrs)
    envelope = record.seal(key)
    assert envelope.payload_type == PeerRecord.PAYLOAD_TYPE
    assert envelope.public_key == key.public_key()
    opened_env, opened = PeerRecord.open_signed(envelope.to_bytes())
    assert opened == record
    assert opened_env == envelope
    assert PeerRecord.from_envelope(envelope) == record
    assert PeerRecord.from_bytes(record.to_bytes()) == record


def test_record_fields_on_the_wire(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Ed25519]
    record = PeerRecord(_peer(key), 300, ADDRS[:2])
    msg = peer_record_pb2.PeerRecord.FromString(record.to_bytes())
    assert msg.peer_id == record.peer_id.to_bytes()
    assert msg.seq == 300
    assert [a.multiaddr for a in msg.addresses] == [a.to_bytes() for a in ADDRS[:2]]


def test_seal_with_a_foreign_key_is_our_mistake(keys: dict[KeyType, PrivateKey]) -> None:
    record = PeerRecord(_peer(keys[KeyType.Ed25519]), 1, ADDRS)
    for key_type in (KeyType.Secp256k1, KeyType.ECDSA, KeyType.RSA):
        with pytest.raises(LocalProtocolError):
            record.seal(keys[key_type])
    with pytest.raises(LocalProtocolError):
        record.seal(generate_private_key(KeyType.Ed25519))


@pytest.mark.parametrize("signer_type", KEY_TYPES, ids=lambda t: t.name)
def test_record_for_another_peer_is_rejected(
    keys: dict[KeyType, PrivateKey], signer_type: KeyType
) -> None:
    """A valid envelope whose record names a peer other than the signer (RFC 0003 MUST)."""
    signer = keys[signer_type]
    victim = _peer(generate_private_key(KeyType.Ed25519))
    payload = PeerRecord(victim, 1, ADDRS).to_bytes()
    forged = Envelope.seal(signer, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, payload)
    with pytest.raises(EnvelopeError, match="different key"):
        PeerRecord.open_signed(forged.to_bytes())
    with pytest.raises(EnvelopeError, match="different key"):
        PeerRecord.from_envelope(forged)


def test_wrong_payload_type_is_rejected(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Ed25519]
    payload = PeerRecord(_peer(key), 1, ADDRS).to_bytes()
    for payload_type in (b"/libp2p/routing-state-record", b"\x03\x02", b"\x03\x01\x00"):
        env = Envelope.seal(key, PeerRecord.DOMAIN, payload_type, payload)
        with pytest.raises(EnvelopeError, match="payload type"):
            PeerRecord.open_signed(env.to_bytes())
        with pytest.raises(EnvelopeError, match="payload type"):
            PeerRecord.from_envelope(env)


def test_wrong_domain_is_rejected(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Ed25519]
    payload = PeerRecord(_peer(key), 1, ADDRS).to_bytes()
    env = Envelope.seal(key, "libp2p-routing-state", PeerRecord.PAYLOAD_TYPE, payload)
    with pytest.raises(EnvelopeError, match="signature"):
        PeerRecord.open_signed(env.to_bytes())


def test_wrong_type_payload_is_rejected(keys: dict[KeyType, PrivateKey]) -> None:
    """A correctly signed and typed envelope whose payload is not a peer record."""
    key = keys[KeyType.Ed25519]
    for payload in (b"\xff\xff\xff", b"\x0a\x05hello", b"\x08\x01\x12\x00", b""):
        env = Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, payload)
        with pytest.raises(EnvelopeError):
            PeerRecord.open_signed(env.to_bytes())


def test_tampered_signed_record(signed: bytes) -> None:
    msg = envelope_pb2.Envelope.FromString(signed)
    record = peer_record_pb2.PeerRecord.FromString(msg.payload)
    record.seq += 1
    msg.payload = record.SerializeToString()
    with pytest.raises(EnvelopeError, match="signature"):
        PeerRecord.open_signed(msg.SerializeToString())


def test_undecodable_addresses_are_dropped(keys: dict[KeyType, PrivateKey]) -> None:
    """As go-libp2p: a malformed or unknown-protocol address does not void the whole record."""
    key = keys[KeyType.Ed25519]
    msg = peer_record_pb2.PeerRecord(peer_id=_peer(key).to_bytes(), seq=5)
    for raw in (ADDRS[0].to_bytes(), b"\xff\xff\x03\x00", b"\x04\x01", b"", ADDRS[1].to_bytes()):
        msg.addresses.add(multiaddr=raw)
    env = Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, msg.SerializeToString())
    _, record = PeerRecord.open_signed(env.to_bytes())
    assert record.addrs == ADDRS[:2]


def test_invalid_peer_id_is_rejected() -> None:
    for peer_id in (b"", b"\x12\x20" + bytes(31), b"\x00\x05hello"):
        raw = peer_record_pb2.PeerRecord(peer_id=peer_id, seq=1).SerializeToString()
        with pytest.raises(EnvelopeError, match="peer id"):
            PeerRecord.from_bytes(raw)


def test_constructor_validation(keys: dict[KeyType, PrivateKey]) -> None:
    peer = _peer(keys[KeyType.Ed25519])
    assert PeerRecord(peer, 1, list(ADDRS)).addrs == ADDRS  # type: ignore[arg-type]
    assert PeerRecord(peer, 1).addrs == ()
    bad: list[tuple[Any, Any, Any]] = [
        (str(peer), 1, ADDRS),
        (peer, -1, ADDRS),
        (peer, 2**64, ADDRS),
        (peer, 1.0, ADDRS),
        (peer, True, ADDRS),
        (peer, 1, ("/ip4/1.2.3.4/tcp/1",)),
        (peer, 1, ADDRS[0]),
        (peer, 1, "/ip4/1.2.3.4/tcp/1"),
    ]
    for args in bad:
        with pytest.raises(LocalProtocolError):
            PeerRecord(*args)


def test_record_is_frozen_and_hashable(keys: dict[KeyType, PrivateKey]) -> None:
    record = PeerRecord(_peer(keys[KeyType.Ed25519]), 1, ADDRS)
    with pytest.raises(AttributeError):
        record.seq = 2  # type: ignore[misc]
    assert hash(record) == hash(PeerRecord(record.peer_id, 1, ADDRS))
    assert len({record, PeerRecord(record.peer_id, 1, ADDRS)}) == 1


def test_size_bound_is_checked_before_decoding(
    signed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = Envelope.open(signed, PeerRecord.DOMAIN).payload

    class Boom:
        @staticmethod
        def FromString(data: bytes) -> None:
            raise AssertionError("decoded an oversized record")

    monkeypatch.setattr(peer_record_module.peer_record_pb2, "PeerRecord", Boom)
    with pytest.raises(EnvelopeError, match="exceeds"):
        PeerRecord.from_bytes(payload, max_size=len(payload) - 1)
    with pytest.raises(EnvelopeError, match="exceeds"):
        PeerRecord.from_bytes(b"\x00" * (DEFAULT_MAX_ENVELOPE_SIZE + 1))
    with pytest.raises(EnvelopeError, match="exceeds"):
        PeerRecord.open_signed(signed, max_size=len(signed) - 1)
    with pytest.raises(LocalProtocolError):
        PeerRecord.from_bytes(payload, max_size=-1)
    with pytest.raises(LocalProtocolError):
        PeerRecord.from_bytes(payload.hex())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hostile bytes


@given(st.binary(max_size=2048))
def test_random_record_bytes_only_raise_envelope_errors(data: bytes) -> None:
    try:
        record = PeerRecord.from_bytes(data)
    except EnvelopeError:
        return
    assert isinstance(record.peer_id, PeerId)  # random bytes can only decode to a valid record


@given(st.binary(max_size=2048))
def test_random_signed_bytes_only_raise_envelope_errors(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        PeerRecord.open_signed(data)


@given(st.data())
def test_truncated_signed_records(signed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(signed) - 1))
    with pytest.raises(EnvelopeError):
        PeerRecord.open_signed(signed[:cut])


@given(st.data())
def test_truncated_record_payloads(signed: bytes, data: st.DataObject) -> None:
    payload = Envelope.open(signed, PeerRecord.DOMAIN).payload
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        record = PeerRecord.from_bytes(payload[:cut])
    except EnvelopeError:
        return
    assert len(record.addrs) <= len(ADDRS)  # a cut between fields can leave a shorter record


@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_input_above_max_size_is_refused(data: bytes, draw: st.DataObject) -> None:
    limit = draw.draw(st.integers(0, len(data) - 1))
    with pytest.raises(EnvelopeError, match="exceeds"):
        PeerRecord.from_bytes(data, max_size=limit)
    with pytest.raises(EnvelopeError, match="exceeds"):
        PeerRecord.open_signed(data, max_size=limit)


@given(
    st.integers(0, 2**64 - 1),
    st.lists(st.sampled_from(ADDRS), max_size=5),
    st.sampled_from([KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA]),
)
def test_round_trip_property(
    keys: dict[KeyType, PrivateKey], seq: int, addrs: list[Multiaddr], key_type: KeyType
) -> None:
    key = keys[key_type]
    record = PeerRecord(_peer(key), seq, tuple(addrs))
    assert PeerRecord.open_signed(record.seal(key).to_bytes())[1] == record
