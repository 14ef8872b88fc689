"""Identity keys: spec vectors, encodings, signatures, strict decoding, RSA size bounds."""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.crypto import (
    RSA_MAX_BITS,
    RSA_MIN_BITS,
    KeySizeDecodeError,
    KeySizeError,
    KeyType,
    PrivateKey,
    PublicKey,
    generate_private_key,
    private_key_from_protobuf,
    private_key_from_raw,
    public_key_from_protobuf,
    public_key_from_raw,
)
from aiolibp2p.core.crypto.keys import decode_key_message, encode_key_message
from aiolibp2p.core.crypto.secp256k1 import CURVE_ORDER
from aiolibp2p.core.errors import (
    CryptoError,
    DecodeError,
    KeyDecodeError,
    Libp2pError,
    UnsupportedKeyType,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "peer_ids.json").read_text()
)
SPEC_KEYS = {v["key_type"]: v for v in VECTORS["keys"]}
NON_RSA = (KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA)
MESSAGE = b"libp2p test message"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    """The one RSA key this suite generates (2048 bits, the minimum)."""
    return generate_private_key(KeyType.RSA, bits=2048)


@pytest.fixture(scope="session")
def spec_rsa_key() -> PrivateKey:
    """The spec's 4096-bit RSA vector key (decoded, not generated)."""
    return private_key_from_protobuf(bytes.fromhex(SPEC_KEYS["RSA"]["private_key"]))


_NON_RSA_KEYS = {kt: generate_private_key(kt) for kt in NON_RSA}


@pytest.fixture(params=[*NON_RSA, KeyType.RSA], ids=lambda kt: kt.name)
def any_key(request: pytest.FixtureRequest, spec_rsa_key: PrivateKey) -> PrivateKey:
    if request.param is KeyType.RSA:
        return spec_rsa_key
    return _NON_RSA_KEYS[request.param]


# ----------------------------------------------------------------------------- spec vectors


@pytest.mark.parametrize("vector", VECTORS["keys"], ids=lambda v: v["key_type"])
def test_spec_vector_roundtrip(vector: dict[str, str]) -> None:
    key_type = KeyType[vector["key_type"]]
    priv_bytes = bytes.fromhex(vector["private_key"])
    pub_bytes = bytes.fromhex(vector["public_key"])

    priv = private_key_from_protobuf(priv_bytes)
    pub = public_key_from_protobuf(pub_bytes)

    assert priv.key_type is key_type
    assert pub.key_type is key_type
    # decode -> re-encode is byte-equal, for both messages
    assert priv.to_protobuf() == priv_bytes
    assert pub.to_protobuf() == pub_bytes
    # the spec: the provided public key belongs to the private key
    assert priv.public_key() == pub
    assert priv.public_key().to_protobuf() == pub_bytes
    # raw forms are the Data fields
    assert decode_key_message(pub_bytes) == (key_type, pub.to_raw())
    assert public_key_from_raw(key_type, pub.to_raw()) == pub
    assert private_key_from_raw(key_type, priv.to_raw()) == priv
    # and the vector key signs
    sig = priv.sign(MESSAGE)
    assert pub.verify(MESSAGE, sig)
    assert not pub.verify(MESSAGE + b"!", sig)


def test_spec_vector_data_formats() -> None:
    ed = private_key_from_protobuf(bytes.fromhex(SPEC_KEYS["Ed25519"]["private_key"]))
    assert len(ed.to_raw()) == 64
    assert ed.to_raw()[32:] == ed.public_key().to_raw()
    assert len(ed.public_key().to_raw()) == 32

    k1 = private_key_from_protobuf(bytes.fromhex(SPEC_KEYS["Secp256k1"]["private_key"]))
    assert len(k1.to_raw()) == 32
    assert len(k1.public_key().to_raw()) == 33
    assert k1.public_key().to_raw()[0] in (2, 3)

    ecdsa = public_key_from_protobuf(bytes.fromhex(SPEC_KEYS["ECDSA"]["public_key"]))
    loaded = serialization.load_der_public_key(ecdsa.to_raw())
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert isinstance(loaded.curve, ec.SECP256R1)

    rsa_pub = public_key_from_protobuf(bytes.fromhex(SPEC_KEYS["RSA"]["public_key"]))
    loaded_rsa = serialization.load_der_public_key(rsa_pub.to_raw())
    assert isinstance(loaded_rsa, rsa.RSAPublicKey)
    assert loaded_rsa.key_size == 4096
    rsa_priv = private_key_from_protobuf(bytes.fromhex(SPEC_KEYS["RSA"]["private_key"]))
    assert rsa_priv.to_raw().startswith(bytes.fromhex("3082092a020100"))  # PKCS#1, version 0


def test_protobuf_matches_generated_code(any_key: PrivateKey) -> None:
    from aiolibp2p.core.pb import crypto_pb2

    pub = any_key.public_key()
    msg = crypto_pb2.PublicKey(Type=int(pub.key_type), Data=pub.to_raw())
    assert msg.SerializeToString(deterministic=True) == pub.to_protobuf()
    parsed = crypto_pb2.PrivateKey()
    parsed.ParseFromString(any_key.to_protobuf())
    assert parsed.Type == int(any_key.key_type)
    assert parsed.Data == any_key.to_raw()


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("key_type", NON_RSA, ids=lambda kt: kt.name)
def test_generate_roundtrip(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    assert key.key_type is key_type
    assert isinstance(key, PrivateKey)
    assert isinstance(key.public_key(), PublicKey)
    again = private_key_from_protobuf(key.to_protobuf())
    assert again == key
    assert again.public_key() == key.public_key()
    assert public_key_from_protobuf(key.public_key().to_protobuf()) == key.public_key()
    assert generate_private_key(key_type) != key


def test_default_key_type_is_ed25519() -> None:
    assert generate_private_key().key_type is KeyType.Ed25519


def test_generated_ecdsa_is_p256() -> None:
    key = generate_private_key(KeyType.ECDSA)
    loaded = serialization.load_der_public_key(key.public_key().to_raw())
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert isinstance(loaded.curve, ec.SECP256R1)


def test_generated_rsa(rsa_key: PrivateKey) -> None:
    assert rsa_key.key_type is KeyType.RSA
    assert rsa_key.public_key().key_size == 2048  # type: ignore[attr-defined]
    assert private_key_from_protobuf(rsa_key.to_protobuf()) == rsa_key
    assert public_key_from_protobuf(rsa_key.public_key().to_protobuf()) == rsa_key.public_key()
    sig = rsa_key.sign(MESSAGE)
    assert len(sig) == 256
    assert rsa_key.public_key().verify(MESSAGE, sig)
    from aiolibp2p.core.peer import PeerId

    pid = PeerId.from_public_key(rsa_key.public_key())
    assert str(pid).startswith("Qm")  # > 42 bytes: sha2-256 multihash
    assert pid.extract_public_key() is None
    assert pid.matches_public_key(rsa_key.public_key())


@pytest.mark.parametrize("bad", [None, "ed25519", 4, -1, 1.0, True])
def test_generate_unknown_type(bad: object) -> None:
    with pytest.raises(UnsupportedKeyType):
        generate_private_key(bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- RSA size bounds


@pytest.mark.parametrize("bits", [512, 1024, 2047, 8193, 16384])
def test_rsa_generation_out_of_bounds(bits: int) -> None:
    with pytest.raises(KeySizeError) as info:
        generate_private_key(KeyType.RSA, bits=bits)
    assert not isinstance(info.value, KeyDecodeError)  # our mistake, not the peer's
    assert isinstance(info.value, ValueError)
    assert info.value.bits == bits
    assert (
        (info.value.min_bits, info.value.max_bits) == (RSA_MIN_BITS, RSA_MAX_BITS) == (2048, 8192)
    )


@pytest.fixture(scope="module")
def small_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_decode_too_small(small_rsa: rsa.RSAPrivateKey) -> None:
    spki = small_rsa.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = small_rsa.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for call, data in [
        (public_key_from_protobuf, encode_key_message(0, spki)),
        (private_key_from_protobuf, encode_key_message(0, pkcs1)),
    ]:
        with pytest.raises(KeySizeDecodeError) as info:
            call(data)
        assert isinstance(info.value, KeyDecodeError)
        assert isinstance(info.value, KeySizeError)
        assert info.value.bits == 1024


def _fake_big_modulus(bits: int) -> int:
    return (1 << (bits - 1)) | 0xFFFF_FFFF_FFFF_FFFF  # odd, exactly `bits` long; needs no primes


def test_rsa_decode_too_large_public() -> None:
    n = _fake_big_modulus(8200)
    spki = (
        rsa.RSAPublicNumbers(65537, n)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeySizeDecodeError) as info:
        public_key_from_raw(KeyType.RSA, spki)
    assert info.value.bits == 8200


def _der_int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_rsa_decode_too_large_private_is_refused_before_parsing() -> None:
    # Not a valid key at all: only the size peek can reject it, and it must.
    body = _der_int(0) + _der_int(_fake_big_modulus(9000)) + _der_int(65537)
    pkcs1 = b"\x30" + _der_len(len(body)) + body
    with pytest.raises(KeySizeDecodeError) as info:
        private_key_from_raw(KeyType.RSA, pkcs1)
    assert info.value.bits == 9000


def test_rsa_private_pkcs8_refused(rsa_key: PrivateKey) -> None:
    inner = serialization.load_der_private_key(rsa_key.to_raw(), None)
    pkcs8 = inner.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyDecodeError):
        private_key_from_raw(KeyType.RSA, pkcs8)


# ----------------------------------------------------------------------------- signatures


def test_sign_verify_roundtrip(any_key: PrivateKey) -> None:
    pub = any_key.public_key()
    for message in (b"", MESSAGE, bytes(range(256)) * 40):
        sig = any_key.sign(message)
        assert pub.verify(message, sig)
        assert pub.verify(bytearray(message), memoryview(sig))


def test_verify_wrong_key_and_tampered(any_key: PrivateKey) -> None:
    pub = any_key.public_key()
    other = generate_private_key(
        KeyType.Ed25519 if pub.key_type != KeyType.Ed25519 else KeyType.ECDSA
    )
    same_type_other = _NON_RSA_KEYS[any_key.key_type] if any_key.key_type != KeyType.RSA else None
    sig = any_key.sign(MESSAGE)
    assert not pub.verify(MESSAGE + b"x", sig)
    assert not pub.verify(MESSAGE[:-1], sig)
    assert not other.public_key().verify(MESSAGE, sig)
    if same_type_other is not None and same_type_other != any_key:
        assert not same_type_other.public_key().verify(MESSAGE, sig)
    fresh = generate_private_key(any_key.key_type) if any_key.key_type != KeyType.RSA else None
    if fresh is not None:
        assert not fresh.public_key().verify(MESSAGE, sig)
        assert not pub.verify(MESSAGE, fresh.sign(MESSAGE))
    tampered = bytearray(sig)
    tampered[len(tampered) // 2] ^= 0x01
    assert not pub.verify(MESSAGE, bytes(tampered))


@pytest.mark.parametrize(
    "bad_sig",
    [b"", b"\x00", b"\x30\x00", b"\x30\x06\x02\x01\x00\x02\x01\x00", b"\xff" * 64, b"\x00" * 512],
)
def test_verify_malformed_signature_is_false(any_key: PrivateKey, bad_sig: bytes) -> None:
    assert any_key.public_key().verify(MESSAGE, bad_sig) is False


@pytest.mark.parametrize("junk", [None, "text", 123, object(), [1, 2]])
def test_verify_never_raises_on_junk(any_key: PrivateKey, junk: object) -> None:
    pub = any_key.public_key()
    sig = any_key.sign(MESSAGE)
    assert pub.verify(MESSAGE, junk) is False  # type: ignore[arg-type]
    assert pub.verify(junk, sig) is False  # type: ignore[arg-type]


def test_verify_truncated_and_extended_signature(any_key: PrivateKey) -> None:
    pub = any_key.public_key()
    sig = any_key.sign(MESSAGE)
    assert not pub.verify(MESSAGE, sig[:-1])
    assert not pub.verify(MESSAGE, sig + b"\x00")


@given(message=st.binary(max_size=512), key_type=st.sampled_from(NON_RSA))
def test_sign_verify_property(message: bytes, key_type: KeyType) -> None:
    key = _NON_RSA_KEYS[key_type]
    sig = key.sign(message)
    assert key.public_key().verify(message, sig)
    assert not key.public_key().verify(message + b"\x01", sig)


@given(sig=st.binary(max_size=600), key_type=st.sampled_from(NON_RSA))
def test_verify_random_signature_property(sig: bytes, key_type: KeyType) -> None:
    assert _NON_RSA_KEYS[key_type].public_key().verify(MESSAGE, sig) is False


# ----------------------------------------------------------------------------- cross-checks


def _crypto_priv(key: PrivateKey) -> object:
    return key.to_cryptography()  # type: ignore[attr-defined]


def test_cross_check_ed25519() -> None:
    ours = generate_private_key(KeyType.Ed25519)
    theirs = ed25519.Ed25519PrivateKey.from_private_bytes(ours.to_raw()[:32])
    assert theirs.public_key().public_bytes_raw() == ours.public_key().to_raw()
    assert ours.public_key().verify(MESSAGE, theirs.sign(MESSAGE))
    theirs.public_key().verify(ours.sign(MESSAGE), MESSAGE)  # raises if invalid
    # Ed25519 is deterministic: both sides produce the same signature.
    assert ours.sign(MESSAGE) == theirs.sign(MESSAGE)


@pytest.mark.parametrize(
    ("key_type", "curve"),
    [(KeyType.ECDSA, ec.SECP256R1()), (KeyType.Secp256k1, ec.SECP256K1())],
    ids=["ECDSA", "Secp256k1"],
)
def test_cross_check_ec(key_type: KeyType, curve: ec.EllipticCurve) -> None:
    theirs = ec.generate_private_key(curve)
    if key_type is KeyType.ECDSA:
        raw_pub = theirs.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        raw_priv = theirs.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        raw_pub = theirs.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        raw_priv = theirs.private_numbers().private_value.to_bytes(32, "big")
    ours = private_key_from_raw(key_type, raw_priv)
    pub = public_key_from_raw(key_type, raw_pub)
    assert ours.public_key() == pub
    # theirs -> ours
    assert pub.verify(MESSAGE, theirs.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    # ours -> theirs (raises if invalid); DER over SHA-256
    theirs.public_key().verify(ours.sign(MESSAGE), MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_cross_check_rsa(spec_rsa_key: PrivateKey) -> None:
    theirs = serialization.load_der_private_key(spec_rsa_key.to_raw(), None)
    assert isinstance(theirs, rsa.RSAPrivateKey)
    pss = padding.PKCS1v15()
    assert spec_rsa_key.public_key().verify(MESSAGE, theirs.sign(MESSAGE, pss, hashes.SHA256()))
    theirs.public_key().verify(spec_rsa_key.sign(MESSAGE), MESSAGE, pss, hashes.SHA256())
    # PKCS#1 v1.5 is deterministic
    assert spec_rsa_key.sign(MESSAGE) == theirs.sign(MESSAGE, pss, hashes.SHA256())
    # a SHA-1 or PSS signature is not what the spec asks for
    assert not spec_rsa_key.public_key().verify(MESSAGE, theirs.sign(MESSAGE, pss, hashes.SHA1()))


def test_secp256k1_signatures_are_low_s() -> None:
    key = _NON_RSA_KEYS[KeyType.Secp256k1]
    for i in range(32):
        _, s = decode_dss_signature(key.sign(b"msg %d" % i))
        assert s <= CURVE_ORDER // 2


def test_secp256k1_high_s_still_verifies() -> None:
    key = _NON_RSA_KEYS[KeyType.Secp256k1]
    r, s = decode_dss_signature(key.sign(MESSAGE))
    high = encode_dss_signature(r, CURVE_ORDER - s)
    assert key.public_key().verify(MESSAGE, high)  # as go-libp2p: malleable form accepted


def test_ecdsa_non_der_signature_rejected() -> None:
    key = _NON_RSA_KEYS[KeyType.ECDSA]
    r, s = decode_dss_signature(key.sign(MESSAGE))
    der = encode_dss_signature(r, s)
    assert key.public_key().verify(MESSAGE, der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # IEEE P1363, not DER
    assert not key.public_key().verify(MESSAGE, raw)
    # BER: a non-minimal INTEGER (extra leading zero) must not verify
    rb = b"\x00" + r.to_bytes((r.bit_length() + 8) // 8, "big")
    sb = s.to_bytes((s.bit_length() + 8) // 8, "big")
    body = b"\x02" + bytes([len(rb)]) + rb + b"\x02" + bytes([len(sb)]) + sb
    assert not key.public_key().verify(MESSAGE, b"\x30" + bytes([len(body)]) + body)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()], ids=["P-384", "P-521"])
def test_ecdsa_other_nist_curves(curve: ec.EllipticCurve) -> None:
    theirs = ec.generate_private_key(curve)
    spki = theirs.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sec1 = theirs.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pub = public_key_from_raw(KeyType.ECDSA, spki)
    priv = private_key_from_raw(KeyType.ECDSA, sec1)
    assert priv.public_key() == pub
    assert pub.verify(MESSAGE, priv.sign(MESSAGE))
    assert pub.verify(MESSAGE, theirs.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    assert public_key_from_protobuf(pub.to_protobuf()) == pub


def test_ecdsa_rejects_other_curves_and_key_kinds() -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    spki = k1.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.ECDSA, spki)
    ed_spki = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.ECDSA, ed_spki)
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.RSA, ed_spki)


def test_ecdsa_private_pkcs8_refused() -> None:
    theirs = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = theirs.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyDecodeError):
        private_key_from_raw(KeyType.ECDSA, pkcs8)


# ----------------------------------------------------------------------------- canonical forms

ED_PUB = bytes.fromhex(SPEC_KEYS["Ed25519"]["public_key"])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (ED_PUB[:2], "no Data"),
        (ED_PUB[2:], "no Type"),
        (ED_PUB[2:] + ED_PUB[:2], "fields out of tag order"),
        (b"\x08\x81\x00" + ED_PUB[2:], "non-minimal Type varint"),
        (ED_PUB[:3] + b"\xa0\x00" + ED_PUB[4:], "non-minimal length varint"),
        (ED_PUB + b"\x18\x01", "extra field"),
        (ED_PUB + ED_PUB[2:], "duplicated Data"),
        (ED_PUB[:2] + ED_PUB, "duplicated Type"),
        (ED_PUB + b"\x00", "trailing byte"),
        (ED_PUB[:-1], "truncated Data"),
        (b"\x08\x01\x12\x21" + ED_PUB[4:] + b"\x00", "33-byte Ed25519 key"),
        (b"\x08\x01\x12\x1f" + ED_PUB[4:-1], "31-byte Ed25519 key"),
        (b"\x08\x01\x1a\x20" + ED_PUB[4:], "Data with wrong field number"),
        (b"\x08" + b"\xff" * 10 + b"\x01" + ED_PUB[2:], "overlong varint"),
    ],
)
def test_public_key_non_canonical_rejected(data: bytes, why: str) -> None:
    with pytest.raises(KeyDecodeError):
        public_key_from_protobuf(data)


@pytest.mark.parametrize("type_value", [4, 5, 127, 128, 2**32, 2**63 - 1])
def test_unknown_key_type(type_value: int) -> None:
    from aiolibp2p._accel.varint_py import encode_uvarint as _uvarint

    data = b"\x08" + _uvarint(type_value) + ED_PUB[2:]
    with pytest.raises(UnsupportedKeyType):
        public_key_from_protobuf(data)
    with pytest.raises(UnsupportedKeyType):
        private_key_from_protobuf(data)
    with pytest.raises(UnsupportedKeyType):
        public_key_from_raw(type_value, ED_PUB[4:])  # type: ignore[arg-type]


def test_error_hierarchy() -> None:
    assert issubclass(UnsupportedKeyType, KeyDecodeError)
    assert issubclass(KeyDecodeError, DecodeError)
    assert issubclass(KeySizeDecodeError, KeyDecodeError)
    assert issubclass(KeySizeError, CryptoError)
    assert issubclass(KeySizeError, Libp2pError)


def test_ecdsa_compressed_point_spki_rejected() -> None:
    key = _NON_RSA_KEYS[KeyType.ECDSA].to_cryptography()  # type: ignore[attr-defined]
    # Build an SPKI with a compressed point by hand: same prefix as the canonical one.
    canonical = _NON_RSA_KEYS[KeyType.ECDSA].public_key().to_raw()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    algo = canonical[2:23]  # SEQUENCE { id-ecPublicKey, prime256v1 }
    bitstring = b"\x03" + bytes([len(point) + 1]) + b"\x00" + point
    body = algo + bitstring
    spki = b"\x30" + bytes([len(body)]) + body
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.ECDSA, spki)


def test_secp256k1_uncompressed_rejected() -> None:
    key = _NON_RSA_KEYS[KeyType.Secp256k1].to_cryptography()  # type: ignore[attr-defined]
    uncompressed = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.Secp256k1, uncompressed)


@pytest.mark.parametrize(
    "data",
    [
        b"\x02" + b"\x00" * 32,  # x = 0 is not on the curve
        b"\x04" + b"\x11" * 32,  # wrong prefix for 33 bytes
        b"\x02" + b"\xff" * 32,  # x >= p
    ],
)
def test_secp256k1_invalid_points(data: bytes) -> None:
    with pytest.raises(KeyDecodeError):
        public_key_from_raw(KeyType.Secp256k1, data)


@pytest.mark.parametrize(
    "scalar", [0, CURVE_ORDER, CURVE_ORDER + 1, 2**256 - 1], ids=["0", "n", "n+1", "max"]
)
def test_secp256k1_private_out_of_range(scalar: int) -> None:
    with pytest.raises(KeyDecodeError):
        private_key_from_raw(KeyType.Secp256k1, scalar.to_bytes(32, "big"))


def test_secp256k1_private_wrong_length() -> None:
    for n in (0, 31, 33, 64):
        with pytest.raises(KeyDecodeError):
            private_key_from_raw(KeyType.Secp256k1, b"\x01" * n)


def test_ed25519_legacy_96_byte_private_key() -> None:
    key = _NON_RSA_KEYS[KeyType.Ed25519]
    raw = key.to_raw()
    legacy = raw + raw[32:]
    decoded = private_key_from_raw(KeyType.Ed25519, legacy)
    assert decoded == key
    assert decoded.to_raw() == raw  # re-encoded in the preferred 64-byte form
    bad = raw + bytes(32)
    with pytest.raises(KeyDecodeError):
        private_key_from_raw(KeyType.Ed25519, bad)


def test_ed25519_private_public_half_must_match() -> None:
    raw = _NON_RSA_KEYS[KeyType.Ed25519].to_raw()
    other = generate_private_key(KeyType.Ed25519).public_key().to_raw()
    with pytest.raises(KeyDecodeError):
        private_key_from_raw(KeyType.Ed25519, raw[:32] + other)
    for n in (0, 32, 63, 65, 95, 97):
        with pytest.raises(KeyDecodeError):
            private_key_from_raw(KeyType.Ed25519, bytes(n))


def test_raw_decoders_reject_non_bytes() -> None:
    for kt in KeyType:
        with pytest.raises(KeyDecodeError):
            public_key_from_raw(kt, "not bytes")  # type: ignore[arg-type]
        with pytest.raises(KeyDecodeError):
            private_key_from_raw(kt, None)  # type: ignore[arg-type]
    with pytest.raises(KeyDecodeError):
        public_key_from_protobuf("08011220")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- hypothesis fuzz

_VALID_PUBLIC = [bytes.fromhex(v["public_key"]) for v in VECTORS["keys"]] + [
    k.public_key().to_protobuf() for k in _NON_RSA_KEYS.values()
]
_VALID_PRIVATE = [
    bytes.fromhex(v["private_key"]) for v in VECTORS["keys"] if v["key_type"] != "RSA"
] + [k.to_protobuf() for k in _NON_RSA_KEYS.values()]


def _mutations(valid: list[bytes]) -> st.SearchStrategy[bytes]:
    base = st.sampled_from(valid)
    truncated = base.flatmap(lambda b: st.integers(0, len(b) - 1).map(lambda n: b[:n]))
    oversized = st.tuples(base, st.binary(min_size=1, max_size=64)).map(lambda t: t[0] + t[1])
    flipped = st.tuples(base, st.integers(0, 10_000), st.integers(1, 255)).map(
        lambda t: (
            t[0][: t[1] % len(t[0])]
            + bytes([t[0][t[1] % len(t[0])] ^ t[2]])
            + t[0][t[1] % len(t[0]) + 1 :]
        )
    )
    spliced = st.tuples(base, st.binary(max_size=8), st.integers(0, 10_000)).map(
        lambda t: t[0][: t[2] % (len(t[0]) + 1)] + t[1] + t[0][t[2] % (len(t[0]) + 1) :]
    )
    framed = st.tuples(st.sampled_from([0, 1, 2, 3]), st.binary(max_size=120)).map(
        lambda t: encode_key_message(t[0], t[1])
    )
    return st.one_of(st.binary(max_size=200), truncated, oversized, flipped, spliced, framed)


@given(data=_mutations(_VALID_PUBLIC))
def test_fuzz_public_key_from_protobuf(data: bytes) -> None:
    try:
        key = public_key_from_protobuf(data)
    except KeyDecodeError:
        return
    # Anything accepted is canonical: it re-encodes to exactly the input.
    assert key.to_protobuf() == data


@given(data=_mutations(_VALID_PRIVATE))
def test_fuzz_private_key_from_protobuf(data: bytes) -> None:
    try:
        key = private_key_from_protobuf(data)
    except KeyDecodeError:
        return
    assert private_key_from_protobuf(key.to_protobuf()) == key
    assert key.public_key().verify(MESSAGE, key.sign(MESSAGE))


@given(data=st.binary(max_size=100), key_type=st.sampled_from(list(KeyType)))
def test_fuzz_raw_decoders(data: bytes, key_type: KeyType) -> None:
    for decode in (public_key_from_raw, private_key_from_raw):
        with contextlib.suppress(KeyDecodeError):
            decode(key_type, data)


# ----------------------------------------------------------------------------- value semantics


def test_equality_hash_repr(any_key: PrivateKey) -> None:
    pub = any_key.public_key()
    same = public_key_from_protobuf(pub.to_protobuf())
    assert same == pub
    assert hash(same) == hash(pub)
    assert len({pub, same}) == 1
    assert pub != _NON_RSA_KEYS[KeyType.Ed25519].public_key() or pub.key_type is KeyType.Ed25519
    assert pub != "key"
    assert len(repr(pub)) < 80
    r = repr(any_key)
    assert any_key.to_raw().hex()[:16] not in r
    assert hash(any_key) == hash(pub)
    assert private_key_from_protobuf(any_key.to_protobuf()) == any_key
    assert pickle.loads(pickle.dumps(any_key)) == any_key
    assert pickle.loads(pickle.dumps(pub)) == pub


def test_key_type_enum() -> None:
    assert [(k.name, int(k)) for k in KeyType] == [
        ("RSA", 0),
        ("Ed25519", 1),
        ("Secp256k1", 2),
        ("ECDSA", 3),
    ]


def test_import_is_cheap() -> None:
    """``aiolibp2p`` does not import the key code; the key code does not import ``cryptography``
    until a key is used; parsing an Ed25519 identity peer id needs no ``cryptography`` either."""
    code = (
        "import sys\n"
        "import aiolibp2p\n"
        "assert 'aiolibp2p.core.crypto' not in sys.modules\n"
        "import aiolibp2p.core.crypto, aiolibp2p.core.peer\n"
        "assert 'cryptography' not in sys.modules, 'eager cryptography import'\n"
        "from aiolibp2p.core.peer import PeerId\n"
        "p = PeerId.from_string('12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA')\n"
        "assert p.extract_public_key() is not None\n"
        "assert 'cryptography' not in sys.modules, 'parsing a peer id imported cryptography'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("junk", [5, "text", None])
def test_sign_rejects_non_bytes(any_key: PrivateKey, junk: object) -> None:
    # never bytes(5) == b"\0" * 5 silently
    with pytest.raises(TypeError):
        any_key.sign(junk)  # type: ignore[arg-type]
    assert any_key.public_key().verify(b"\0" * 5, any_key.sign(b"\0" * 5))
    assert not any_key.public_key().verify(5, any_key.sign(b"\0" * 5))  # type: ignore[arg-type]
