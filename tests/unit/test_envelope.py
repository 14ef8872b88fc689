"""Signed envelopes (RFC 0002): seal/open, tampering, domains, payload types, hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p._accel import varint
from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import EnvelopeError, Libp2pError, LocalProtocolError
from aiolibp2p.core.pb import envelope_pb2
from aiolibp2p.core.record import DEFAULT_MAX_ENVELOPE_SIZE, Envelope
from aiolibp2p.core.record import envelope as envelope_module

DOMAIN = "aiolibp2p-test"
TYPE = b"\x03\x99"
KEY_TYPES = [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA, KeyType.RSA]


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    return {t: generate_private_key(t) for t in KEY_TYPES}


@pytest.fixture(scope="module")
def sealed(keys: dict[KeyType, PrivateKey]) -> bytes:
    return Envelope.seal(keys[KeyType.Ed25519], DOMAIN, TYPE, b"hello").to_bytes()


def _pb(data: bytes) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope.FromString(data)


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 40])
def test_seal_open_round_trip(
    keys: dict[KeyType, PrivateKey], key_type: KeyType, payload: bytes
) -> None:
    key = keys[key_type]
    env = Envelope.seal(key, DOMAIN, TYPE, payload)
    assert env.public_key == key.public_key()
    assert (env.payload_type, env.payload) == (TYPE, payload)
    wire = env.to_bytes()
    opened = Envelope.open(wire, DOMAIN, expected_payload_type=TYPE)
    assert opened == env
    assert opened.to_bytes() == wire
    assert Envelope.open(wire, DOMAIN) == env


def test_signature_covers_the_spec_buffer(keys: dict[KeyType, PrivateKey]) -> None:
    """uvarint(len(domain)) || domain || uvarint(len(type)) || type || uvarint(len(p)) || p."""
    payload = b"p" * 300  # a two-byte length prefix
    env = Envelope.seal(keys[KeyType.Ed25519], DOMAIN, TYPE, payload)
    d = DOMAIN.encode()
    expected = varint.encode_uvarint(len(d)) + d + b"\x02" + TYPE + b"\xac\x02" + payload
    assert env.public_key.verify(expected, env.signature)
    assert not env.public_key.verify(d + TYPE + payload, env.signature)


def test_wire_format_field_numbers(keys: dict[KeyType, PrivateKey]) -> None:
    """Fields 1, 2, 3 and 5: signature = 5 as in go/js/rust (the RFC text says 4)."""
    key = keys[KeyType.Ed25519]
    env = Envelope.seal(key, DOMAIN, TYPE, b"hi")
    pk = key.public_key().to_protobuf()
    expected = (
        b"\x0a"
        + bytes([len(pk)])
        + pk
        + b"\x12\x02"
        + TYPE
        + b"\x1a\x02hi"
        + b"\x2a"
        + bytes([len(env.signature)])
        + env.signature
    )
    assert env.to_bytes() == expected


def test_unicode_domain(keys: dict[KeyType, PrivateKey]) -> None:
    key = keys[KeyType.Ed25519]
    wire = Envelope.seal(key, "dömäin-✓", TYPE, b"x").to_bytes()
    assert Envelope.open(wire, "dömäin-✓").payload == b"x"
    with pytest.raises(EnvelopeError):
        Envelope.open(wire, "domain-✓")


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
def test_foreign_domain_is_rejected(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    wire = Envelope.seal(keys[key_type], DOMAIN, TYPE, b"payload").to_bytes()
    for other in ("libp2p-peer-record", DOMAIN + "x", DOMAIN[:-1], DOMAIN.upper()):
        with pytest.raises(EnvelopeError, match="signature"):
            Envelope.open(wire, other)


def test_length_prefixes_prevent_field_shifting(keys: dict[KeyType, PrivateKey]) -> None:
    """Moving bytes between domain, type and payload changes the signed buffer."""
    key = keys[KeyType.Ed25519]
    wire = Envelope.seal(key, "ab", b"cd", b"ef").to_bytes()
    msg = _pb(wire)
    msg.payload_type, msg.payload = b"c", b"def"
    with pytest.raises(EnvelopeError):
        Envelope.open(msg.SerializeToString(), "ab")
    msg = _pb(wire)
    msg.payload_type = b"bcd"
    with pytest.raises(EnvelopeError):
        Envelope.open(msg.SerializeToString(), "a")


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
def test_tampered_payload(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    msg = _pb(Envelope.seal(keys[key_type], DOMAIN, TYPE, b"payload").to_bytes())
    msg.payload = b"paylOad"
    with pytest.raises(EnvelopeError, match="signature"):
        Envelope.open(msg.SerializeToString(), DOMAIN)


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
def test_tampered_signature(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    msg = _pb(Envelope.seal(keys[key_type], DOMAIN, TYPE, b"payload").to_bytes())
    sig = bytearray(msg.signature)
    for mutate in (
        lambda s: s.__setitem__(len(s) // 2, s[len(s) // 2] ^ 1),
        lambda s: s.__delitem__(-1),
        lambda s: s.append(0),
        lambda s: s.clear(),
    ):
        bad = bytearray(sig)
        mutate(bad)
        msg.signature = bytes(bad)
        with pytest.raises(EnvelopeError, match="signature"):
            Envelope.open(msg.SerializeToString(), DOMAIN)


@pytest.mark.parametrize("key_type", KEY_TYPES, ids=lambda t: t.name)
def test_swapped_public_key(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    """A valid key that did not sign: every other key type, and a fresh key of the same type."""
    msg = _pb(Envelope.seal(keys[key_type], DOMAIN, TYPE, b"payload").to_bytes())
    others = [k for t, k in keys.items() if t != key_type]
    if key_type is not KeyType.RSA:
        others.append(generate_private_key(key_type))
    for other in others:
        msg.public_key = other.public_key().to_protobuf()
        with pytest.raises(EnvelopeError, match="signature"):
            Envelope.open(msg.SerializeToString(), DOMAIN)


def test_malformed_public_key(sealed: bytes) -> None:
    for bad_key in (b"", b"\x08\x01", b"\x08\x01\x12\x03abc", b"\x08\x07\x12\x20" + bytes(32)):
        msg = _pb(sealed)
        msg.public_key = bad_key
        with pytest.raises(EnvelopeError, match="public key") as info:
            Envelope.open(msg.SerializeToString(), DOMAIN)
        assert isinstance(info.value.__cause__, Libp2pError)


def test_tampered_payload_type(sealed: bytes) -> None:
    msg = _pb(sealed)
    msg.payload_type = b"\x03\x01"
    with pytest.raises(EnvelopeError, match="signature"):
        Envelope.open(msg.SerializeToString(), DOMAIN)


def test_expected_payload_type(sealed: bytes) -> None:
    assert Envelope.open(sealed, DOMAIN, expected_payload_type=TYPE).payload == b"hello"
    assert Envelope.open(sealed, DOMAIN, expected_payload_type=bytearray(TYPE)).payload_type == TYPE
    for other in (b"\x03\x01", TYPE + b"\x00", TYPE[:1], b""):
        with pytest.raises(EnvelopeError, match="payload type"):
            Envelope.open(sealed, DOMAIN, expected_payload_type=other)


def test_empty_domain_is_our_mistake(keys: dict[KeyType, PrivateKey], sealed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        Envelope.seal(keys[KeyType.Ed25519], "", TYPE, b"x")
    with pytest.raises(LocalProtocolError):
        Envelope.open(sealed, "")


@pytest.mark.parametrize(
    ("domain", "payload_type", "payload"),
    [
        (b"bytes-domain", TYPE, b"x"),
        ("\ud800", TYPE, b"x"),  # not encodable as UTF-8
        (DOMAIN, b"", b"x"),  # empty payload type (go refuses it too)
        (DOMAIN, "text", b"x"),
        (DOMAIN, TYPE, "text"),
    ],
)
def test_seal_argument_errors(
    keys: dict[KeyType, PrivateKey], domain: object, payload_type: object, payload: object
) -> None:
    with pytest.raises(LocalProtocolError):
        Envelope.seal(keys[KeyType.Ed25519], domain, payload_type, payload)  # type: ignore[arg-type]


def test_seal_needs_a_private_key(keys: dict[KeyType, PrivateKey]) -> None:
    with pytest.raises(LocalProtocolError):
        Envelope.seal(keys[KeyType.Ed25519].public_key(), DOMAIN, TYPE, b"x")  # type: ignore[arg-type]


def test_open_argument_errors(sealed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        Envelope.open(sealed.hex(), DOMAIN)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Envelope.open(sealed, DOMAIN, max_size=-1)


def test_bytes_like_input(sealed: bytes) -> None:
    assert Envelope.open(bytearray(sealed), DOMAIN) == Envelope.open(sealed, DOMAIN)
    assert Envelope.open(memoryview(sealed), DOMAIN) == Envelope.open(sealed, DOMAIN)


def test_oversized_is_rejected_before_decoding(
    sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Envelope.open(sealed, DOMAIN, max_size=len(sealed)).payload == b"hello"

    class Boom:
        @staticmethod
        def FromString(data: bytes) -> None:
            raise AssertionError("decoded an oversized envelope")

    monkeypatch.setattr(envelope_module.envelope_pb2, "Envelope", Boom)
    with pytest.raises(EnvelopeError, match="exceeds"):
        Envelope.open(sealed, DOMAIN, max_size=len(sealed) - 1)
    with pytest.raises(EnvelopeError, match="exceeds"):
        Envelope.open(b"\x00" * (DEFAULT_MAX_ENVELOPE_SIZE + 1), DOMAIN)
    with pytest.raises(EnvelopeError, match="exceeds"):
        Envelope.open(memoryview(b"\x00" * (DEFAULT_MAX_ENVELOPE_SIZE + 1)), DOMAIN)


def test_a_large_envelope_within_the_limit(keys: dict[KeyType, PrivateKey]) -> None:
    payload = b"\xab" * (DEFAULT_MAX_ENVELOPE_SIZE - 200)
    wire = Envelope.seal(keys[KeyType.Ed25519], DOMAIN, TYPE, payload).to_bytes()
    assert len(wire) <= DEFAULT_MAX_ENVELOPE_SIZE
    assert Envelope.open(wire, DOMAIN).payload == payload


def test_unknown_fields_are_ignored(sealed: bytes) -> None:
    extra = sealed + b"\x22\x03abc"  # field 4 (the RFC's signature number): not ours
    assert Envelope.open(extra, DOMAIN).payload == b"hello"


def test_envelope_is_frozen_and_hashable(sealed: bytes) -> None:
    env = Envelope.open(sealed, DOMAIN)
    with pytest.raises(AttributeError):
        env.payload = b"other"  # type: ignore[misc]
    assert hash(env) == hash(Envelope.open(sealed, DOMAIN))
    assert "5 bytes" in repr(env)


def test_direct_construction_checks_types(keys: dict[KeyType, PrivateKey]) -> None:
    pk = keys[KeyType.Ed25519].public_key()
    assert Envelope(pk, bytearray(b"t"), memoryview(b"p"), b"s").payload == b"p"  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Envelope(b"key", b"t", b"p", b"s")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Envelope(pk, "t", b"p", b"s")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hostile bytes


@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_envelope_errors(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.open(data, DOMAIN)


@given(st.data())
def test_truncated_envelopes(sealed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(EnvelopeError):
        Envelope.open(sealed[:cut], DOMAIN)


@given(st.data())
def test_mutated_envelopes(sealed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(sealed)
    pos = data.draw(st.integers(0, len(sealed) - 1))
    mutated[pos] ^= data.draw(st.integers(1, 255))
    try:
        env = Envelope.open(bytes(mutated), DOMAIN)
    except EnvelopeError:
        return
    # Only an encoding change that leaves every signed field intact may pass.
    assert env == Envelope.open(sealed, DOMAIN)


@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_input_above_max_size_is_refused(data: bytes, draw: st.DataObject) -> None:
    """Valid or not, an input longer than ``max_size`` fails on its size alone."""
    limit = draw.draw(st.integers(0, len(data) - 1))
    with pytest.raises(EnvelopeError, match="exceeds"):
        Envelope.open(data, DOMAIN, max_size=limit)
