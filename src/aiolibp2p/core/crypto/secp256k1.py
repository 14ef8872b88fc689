"""secp256k1 keys (Bitcoin encoding).

Public ``Data``: the 33-byte compressed SEC1 point (``02``/``03`` || x); the 65-byte uncompressed
form is not canonical and is rejected.  Private ``Data``: the 32-byte big-endian scalar, which must
lie in ``[1, n-1]``.  Signatures: DER ``ECDSA-Sig-Value`` over ``SHA-256(message)``; signing always
produces low-S signatures (BIP 62, which libsecp256k1-based verifiers such as rust-libp2p's
require); verification accepts both halves of S, as go-libp2p does.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from aiolibp2p.core.crypto._ec import sign_der, verify_der
from aiolibp2p.core.crypto.keys import KeyType, PrivateKey, PublicKey
from aiolibp2p.core.errors import KeyDecodeError

__all__ = [
    "Secp256k1PublicKey",
    "Secp256k1PrivateKey",
    "generate",
    "public_key_from_raw",
    "private_key_from_raw",
    "CURVE_ORDER",
]

#: The order n of the secp256k1 group.
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = CURVE_ORDER // 2
_CURVE = ec.SECP256K1()


class Secp256k1PublicKey(PublicKey):
    __slots__ = ("_key", "_raw")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise KeyDecodeError(f"not a secp256k1 key: {key.curve.name}")
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def to_cryptography(self) -> ec.EllipticCurvePublicKey:
        return self._key

    @property
    def key_type(self) -> KeyType:
        return KeyType.Secp256k1

    def to_raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        return verify_der(self._key, data, signature)


class Secp256k1PrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise KeyDecodeError(f"not a secp256k1 key: {key.curve.name}")
        self._key = key
        self._public = Secp256k1PublicKey(key.public_key())

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    @property
    def key_type(self) -> KeyType:
        return KeyType.Secp256k1

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(sign_der(self._key, data))
        if s > _HALF_ORDER:
            s = CURVE_ORDER - s
        return encode_dss_signature(r, s)

    def public_key(self) -> Secp256k1PublicKey:
        return self._public

    def to_raw(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")


def generate(*, bits: int = 0) -> Secp256k1PrivateKey:
    del bits
    return Secp256k1PrivateKey(ec.generate_private_key(_CURVE))


def public_key_from_raw(data: bytes) -> Secp256k1PublicKey:
    if len(data) != 33 or data[0] not in (2, 3):
        raise KeyDecodeError(
            f"secp256k1 public key must be a 33-byte compressed point, got {len(data)} bytes"
        )
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, bytes(data))
    except Exception as exc:
        raise KeyDecodeError(f"invalid secp256k1 public key: {exc}") from None
    return Secp256k1PublicKey(key)


def private_key_from_raw(data: bytes) -> Secp256k1PrivateKey:
    if len(data) != 32:
        raise KeyDecodeError(f"secp256k1 private key must be 32 bytes, got {len(data)}")
    scalar = int.from_bytes(data, "big")
    if not 0 < scalar < CURVE_ORDER:
        raise KeyDecodeError("secp256k1 private key is out of range [1, n-1]")
    return Secp256k1PrivateKey(ec.derive_private_key(scalar, _CURVE))
