"""RSA keys (2048 to 8192 bits).

Public ``Data``: DER ``SubjectPublicKeyInfo`` (canonical form only).  Private ``Data``: DER PKCS#1
``RSAPrivateKey`` (two-prime, version 0; PKCS#8 is refused; OpenSSL checks the key's
consistency).  Signatures: RSASSA-PKCS1-v1_5 with SHA-256.  Moduli outside
``[RSA_MIN_BITS, RSA_MAX_BITS]`` are refused when generating (:class:`KeySizeError`) and when
decoding (:class:`KeySizeDecodeError`, a :class:`KeyDecodeError`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from aiolibp2p.core.crypto.keys import (
    RSA_MAX_BITS,
    RSA_MIN_BITS,
    KeySizeDecodeError,
    KeySizeError,
    KeyType,
    PrivateKey,
    PublicKey,
    as_bytes,
)
from aiolibp2p.core.errors import KeyDecodeError

__all__ = [
    "RSAPublicKey",
    "RSAPrivateKey",
    "generate",
    "public_key_from_raw",
    "private_key_from_raw",
]

_PADDING = padding.PKCS1v15()
_HASH = hashes.SHA256()


def _size_ok(bits: int) -> bool:
    return RSA_MIN_BITS <= bits <= RSA_MAX_BITS


class RSAPublicKey(PublicKey):
    __slots__ = ("_key", "_raw")

    def __init__(self, key: rsa.RSAPublicKey) -> None:
        if not _size_ok(key.key_size):
            raise KeySizeDecodeError(key.key_size)
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def to_cryptography(self) -> rsa.RSAPublicKey:
        return self._key

    @property
    def key_size(self) -> int:
        return self._key.key_size

    @property
    def key_type(self) -> KeyType:
        return KeyType.RSA

    def to_raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(as_bytes(signature), as_bytes(data), _PADDING, _HASH)
        except Exception:
            return False
        return True


class RSAPrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        if not _size_ok(key.key_size):
            raise KeySizeDecodeError(key.key_size)
        self._key = key
        self._public = RSAPublicKey(key.public_key())

    def to_cryptography(self) -> rsa.RSAPrivateKey:
        return self._key

    @property
    def key_size(self) -> int:
        return self._key.key_size

    @property
    def key_type(self) -> KeyType:
        return KeyType.RSA

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(as_bytes(data), _PADDING, _HASH)

    def public_key(self) -> RSAPublicKey:
        return self._public

    def to_raw(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 RSAPrivateKey for RSA keys
            serialization.NoEncryption(),
        )


def generate(*, bits: int = 2048) -> RSAPrivateKey:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int, not {type(bits).__name__}")
    if not _size_ok(bits):
        raise KeySizeError(bits)
    return RSAPrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def public_key_from_raw(data: bytes) -> RSAPublicKey:
    try:
        key = serialization.load_der_public_key(bytes(data))
    except Exception as exc:
        raise KeyDecodeError(f"invalid RSA public key (DER SubjectPublicKeyInfo): {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyDecodeError(f"RSA public key holds a {type(key).__name__}")
    result = RSAPublicKey(key)  # size check first: KeySizeDecodeError
    if result.to_raw() != data:
        raise KeyDecodeError("RSA public key is not in canonical DER form")
    return result


def _der_header(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Read a DER tag/length at ``pos``; return ``(content_start, content_length)``."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise KeyDecodeError("RSA private key must be a DER PKCS#1 RSAPrivateKey")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        return pos, first
    n = first & 0x7F
    if not 1 <= n <= 4 or pos + n > len(data):
        raise KeyDecodeError("RSA private key must be a DER PKCS#1 RSAPrivateKey")
    return pos + n, int.from_bytes(data[pos : pos + n], "big")


def _pkcs1_modulus_bits(data: bytes) -> int:
    """Peek at the modulus of a PKCS#1 ``RSAPrivateKey`` without parsing the whole key, so that
    oversized keys are refused before OpenSSL spends time checking them."""
    pos, _ = _der_header(data, 0, 0x30)  # SEQUENCE
    if data[pos : pos + 3] != b"\x02\x01\x00":  # version 0 (two-prime); PKCS#8 fails here too
        raise KeyDecodeError("RSA private key must be a DER PKCS#1 RSAPrivateKey (version 0)")
    pos, length = _der_header(data, pos + 3, 0x02)  # modulus INTEGER
    modulus = data[pos : pos + min(length, 2)]
    if not modulus:
        raise KeyDecodeError("RSA private key: empty modulus")
    bits = (length - 1) * 8 + modulus[0].bit_length()
    if modulus[0] == 0 and len(modulus) > 1:
        bits = (length - 2) * 8 + modulus[1].bit_length()
    return bits


def private_key_from_raw(data: bytes) -> RSAPrivateKey:
    bits = _pkcs1_modulus_bits(data)
    if not _size_ok(bits):
        raise KeySizeDecodeError(bits)
    try:
        key = serialization.load_der_private_key(bytes(data), password=None)
    except Exception as exc:
        raise KeyDecodeError(f"invalid RSA private key (DER PKCS#1): {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyDecodeError(f"RSA private key holds a {type(key).__name__}")
    return RSAPrivateKey(key)
