"""ECDSA keys on the NIST curves (P-256 generated; P-384 and P-521 also decoded).

Public ``Data``: DER ``SubjectPublicKeyInfo`` (named curve, uncompressed point), exactly as
go-libp2p's ``x509.MarshalPKIXPublicKey``; any other encoding of the same key (compressed point,
BER, explicit parameters) is not canonical and is rejected.  Private ``Data``: DER SEC 1
``ECPrivateKey`` (RFC 5915, what go-libp2p writes with ``x509.MarshalECPrivateKey`` and what the
spec's test vector is; the spec's prose says "PKIX" but the vector is SEC 1); PKCS#8 is refused.
Signatures: DER ``ECDSA-Sig-Value`` over ``SHA-256(message)`` on every curve.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aiolibp2p.core.crypto._ec import sign_der, verify_der
from aiolibp2p.core.crypto.keys import KeyType, PrivateKey, PublicKey
from aiolibp2p.core.errors import KeyDecodeError

__all__ = [
    "ECDSAPublicKey",
    "ECDSAPrivateKey",
    "generate",
    "public_key_from_raw",
    "private_key_from_raw",
    "SUPPORTED_CURVES",
]

SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def _check_curve(curve: ec.EllipticCurve) -> None:
    if not isinstance(curve, SUPPORTED_CURVES):
        raise KeyDecodeError(f"unsupported ECDSA curve {curve.name}")


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class ECDSAPublicKey(PublicKey):
    __slots__ = ("_key", "_raw")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        _check_curve(key.curve)
        self._key = key
        self._raw = _spki(key)

    def to_cryptography(self) -> ec.EllipticCurvePublicKey:
        return self._key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._key.curve

    @property
    def key_type(self) -> KeyType:
        return KeyType.ECDSA

    def to_raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        return verify_der(self._key, data, signature)


class ECDSAPrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        _check_curve(key.curve)
        self._key = key
        self._public = ECDSAPublicKey(key.public_key())

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    @property
    def key_type(self) -> KeyType:
        return KeyType.ECDSA

    def sign(self, data: bytes) -> bytes:
        return sign_der(self._key, data)

    def public_key(self) -> ECDSAPublicKey:
        return self._public

    def to_raw(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,  # SEC 1 ECPrivateKey for EC keys
            serialization.NoEncryption(),
        )


def generate(*, bits: int = 0) -> ECDSAPrivateKey:
    del bits
    return ECDSAPrivateKey(ec.generate_private_key(ec.SECP256R1()))


def public_key_from_raw(data: bytes) -> ECDSAPublicKey:
    try:
        key = serialization.load_der_public_key(bytes(data))
    except Exception as exc:
        raise KeyDecodeError(
            f"invalid ECDSA public key (DER SubjectPublicKeyInfo): {exc}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyDecodeError(f"ECDSA public key holds a {type(key).__name__}")
    result = ECDSAPublicKey(key)
    if result.to_raw() != data:
        raise KeyDecodeError("ECDSA public key is not in canonical DER form")
    return result


def _is_sec1(data: bytes) -> bool:
    # ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING, ... }
    # (PKCS#8 starts SEQUENCE { INTEGER 0, SEQUENCE ...} instead.)
    if len(data) < 2 or data[0] != 0x30:
        return False
    n = data[1]
    pos = 2 + (n & 0x7F if n & 0x80 else 0)
    return data[pos : pos + 3] == b"\x02\x01\x01"


def private_key_from_raw(data: bytes) -> ECDSAPrivateKey:
    if not _is_sec1(data):
        raise KeyDecodeError("ECDSA private key must be a DER SEC 1 ECPrivateKey")
    try:
        key = serialization.load_der_private_key(bytes(data), password=None)
    except Exception as exc:
        raise KeyDecodeError(f"invalid ECDSA private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyDecodeError(f"ECDSA private key holds a {type(key).__name__}")
    return ECDSAPrivateKey(key)
