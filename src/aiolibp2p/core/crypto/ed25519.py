"""Ed25519 keys (the mandatory libp2p key type).

Public ``Data``: the raw 32-byte key.  Private ``Data``: ``seed || public`` (64 bytes); the legacy
``seed || public || public`` form (96 bytes) is accepted when both copies agree, and re-encoded as
64 bytes.  A private key whose public half does not match its seed is rejected.

``cryptography`` is imported only when a key is actually used to sign or verify, so parsing
identity peer ids (which embed Ed25519 keys) stays cheap.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiolibp2p.core.crypto.keys import KeyType, PrivateKey, PublicKey, as_bytes
from aiolibp2p.core.errors import KeyDecodeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed

__all__ = [
    "Ed25519PublicKey",
    "Ed25519PrivateKey",
    "generate",
    "public_key_from_raw",
    "private_key_from_raw",
]

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


class Ed25519PublicKey(PublicKey):
    __slots__ = ("_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != PUBLIC_KEY_SIZE:
            raise KeyDecodeError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self._key: _ed.Ed25519PublicKey | None = None

    @classmethod
    def from_cryptography(cls, key: _ed.Ed25519PublicKey) -> Ed25519PublicKey:
        self = cls(key.public_bytes_raw())
        self._key = key
        return self

    def to_cryptography(self) -> _ed.Ed25519PublicKey:
        if self._key is None:
            from cryptography.hazmat.primitives.asymmetric import ed25519

            self._key = ed25519.Ed25519PublicKey.from_public_bytes(self._raw)
        return self._key

    @property
    def key_type(self) -> KeyType:
        return KeyType.Ed25519

    def to_raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            if len(signature) != SIGNATURE_SIZE:
                return False
            self.to_cryptography().verify(as_bytes(signature), as_bytes(data))
        except Exception:
            return False
        return True


class Ed25519PrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")

    def __init__(self, key: _ed.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey.from_cryptography(key.public_key())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        if len(seed) != SEED_SIZE:
            raise KeyDecodeError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    def to_cryptography(self) -> _ed.Ed25519PrivateKey:
        return self._key

    @property
    def key_type(self) -> KeyType:
        return KeyType.Ed25519

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(as_bytes(data))

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def to_raw(self) -> bytes:
        return self._key.private_bytes_raw() + self._public.to_raw()


def generate(*, bits: int = 0) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    del bits
    return Ed25519PrivateKey(ed25519.Ed25519PrivateKey.generate())


def public_key_from_raw(data: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey(data)


def private_key_from_raw(data: bytes) -> Ed25519PrivateKey:
    if len(data) == 96:
        # Legacy [seed][public][public]: the two public copies must agree (spec).
        if not hmac.compare_digest(data[32:64], data[64:96]):
            raise KeyDecodeError("legacy 96-byte Ed25519 private key: public key copies differ")
        data = data[:64]
    if len(data) != 64:
        raise KeyDecodeError(
            f"Ed25519 private key must be 64 (or legacy 96) bytes, got {len(data)}"
        )
    key = Ed25519PrivateKey.from_seed(data[:32])
    if not hmac.compare_digest(key.public_key().to_raw(), data[32:]):
        raise KeyDecodeError("Ed25519 private key: public half does not match the seed")
    return key
