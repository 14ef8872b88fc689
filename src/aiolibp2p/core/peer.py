"""Peer ids (libp2p/specs ``peer-ids/peer-ids.md``).

A peer id is the multihash of a marshalled ``PublicKey``: the *identity* multihash when the
marshalled key is at most 42 bytes (Ed25519 -> ``12D3KooW...``, secp256k1 -> ``16Uiu2...``),
sha2-256 otherwise (RSA, ECDSA -> ``Qm...``).

Validation is strict.  A peer id is accepted only if it is

* a sha2-256 multihash (code ``0x12``) with a 32-byte digest, or
* an identity multihash (code ``0x00``) of at most 42 bytes whose digest is a canonical,
  valid ``PublicKey`` message (a peer id that names no key names no peer),

with minimal varints and nothing after the digest.  Text forms: base58btc of the multihash (the
legacy form we print), or a CIDv1 with the ``libp2p-key`` codec (``0x72``) in multibase base32
(``b``, what :meth:`PeerId.to_cid` writes); base32upper (``B``), base36 (``k``/``K``), base58btc
(``z``) and base16 (``f``/``F``) CIDs are parsed too.  Every text form must be canonical in its base
(so one peer id has one spelling per base).  All failures raise :class:`PeerIdError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import base58

from aiolibp2p.core._wire import read_uvarint
from aiolibp2p.core.crypto.keys import PublicKey, public_key_from_protobuf
from aiolibp2p.core.errors import KeyDecodeError, PeerIdError

__all__ = ["PeerId", "MAX_INLINE_KEY_LENGTH", "LIBP2P_KEY_CODEC"]

#: Marshalled public keys up to this many bytes are inlined with the identity multihash.
MAX_INLINE_KEY_LENGTH = 42
#: The ``libp2p-key`` multicodec, used by peer ids in CID form.
LIBP2P_KEY_CODEC = 0x72

_IDENTITY = 0x00
_SHA2_256 = 0x12
_SHA2_256_LENGTH = 32
_CID_V1 = 0x01
# Longer than any valid text peer id (a CIDv1 of a 44-byte identity multihash is 76 chars);
# refuses absurd inputs before any decoding work.
_MAX_TEXT_LENGTH = 256

_B58_ALPHABET = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_B32_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_B36_LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"
_HEX_LOWER = frozenset("0123456789abcdef")


def _validate_multihash(mh: bytes) -> PublicKey | None:
    """Check that ``mh`` is an acceptable peer id multihash; return the inlined key, if any."""
    code, pos = read_uvarint(mh, 0, PeerIdError, "multihash code")
    length, pos = read_uvarint(mh, pos, PeerIdError, "multihash length")
    if length != len(mh) - pos:
        raise PeerIdError(
            f"multihash digest length {length} does not match the {len(mh) - pos} bytes present"
        )
    if code == _SHA2_256:
        if length != _SHA2_256_LENGTH:
            raise PeerIdError(f"sha2-256 multihash digest must be 32 bytes, got {length}")
        return None
    if code == _IDENTITY:
        if length > MAX_INLINE_KEY_LENGTH:
            raise PeerIdError(
                f"identity multihash of {length} bytes (at most {MAX_INLINE_KEY_LENGTH} allowed)"
            )
        try:
            return public_key_from_protobuf(mh[pos:])
        except KeyDecodeError as exc:
            raise PeerIdError(f"identity peer id does not hold a valid public key: {exc}") from exc
    raise PeerIdError(f"unsupported multihash code 0x{code:x} (only identity and sha2-256)")


class PeerId:
    """An immutable, hashable peer id; ordered and compared by its binary (multihash) form."""

    __slots__ = ("_b58", "_bytes", "_hash", "_key")

    _bytes: bytes
    _hash: int
    _b58: str | None
    _key: PublicKey | None

    def __init__(self, data: bytes) -> None:
        """Same as :meth:`from_bytes`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise PeerIdError(f"a binary peer id must be bytes, not {type(data).__name__}")
        raw = bytes(data)
        key = _validate_multihash(raw)
        self._init(raw, key)

    def _init(self, raw: bytes, key: PublicKey | None) -> None:
        object.__setattr__(self, "_bytes", raw)
        object.__setattr__(self, "_hash", hash(raw))
        object.__setattr__(self, "_b58", None)
        object.__setattr__(self, "_key", key)

    @classmethod
    def _trusted(cls, raw: bytes, key: PublicKey | None) -> PeerId:
        self = object.__new__(cls)
        self._init(raw, key)
        return self

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PeerId:
        """The peer id of ``key``."""
        if not isinstance(key, PublicKey):
            raise TypeError(f"expected a PublicKey, got {type(key).__name__}")
        encoded = key.to_protobuf()
        if len(encoded) <= MAX_INLINE_KEY_LENGTH:
            return cls._trusted(bytes((_IDENTITY, len(encoded))) + encoded, key)
        digest = hashlib.sha256(encoded).digest()
        return cls._trusted(bytes((_SHA2_256, _SHA2_256_LENGTH)) + digest, None)

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerId:
        """Parse the binary form (a multihash); raises :class:`PeerIdError`."""
        return cls(data)

    @classmethod
    def from_string(cls, text: str) -> PeerId:
        """Parse a base58btc multihash (``Qm...``, ``12D3KooW...``, ``16Uiu2...``) or a CIDv1
        (``bafz...``); raises :class:`PeerIdError`."""
        if not isinstance(text, str):
            raise PeerIdError(f"a text peer id must be str, not {type(text).__name__}")
        if not text:
            raise PeerIdError("empty peer id")
        if len(text) > _MAX_TEXT_LENGTH:
            raise PeerIdError(f"peer id text too long ({len(text)} characters)")
        if text[0] == "1" or text.startswith("Qm"):
            return cls(_b58decode(text))
        return cls(_decode_cid(text))

    # ---------------------------------------------------------------- views

    def to_bytes(self) -> bytes:
        """The binary form: the multihash bytes."""
        return self._bytes

    def to_base58(self) -> str:
        """The legacy text form (base58btc of the multihash), which is what ``str()`` prints."""
        b58 = self._b58
        if b58 is None:
            b58 = base58.b58encode(self._bytes).decode("ascii")
            object.__setattr__(self, "_b58", b58)
        return b58

    def to_cid(self) -> str:
        """The CIDv1 text form: ``libp2p-key`` codec, multibase base32 lowercase (``b...``)."""
        cid = bytes((_CID_V1, LIBP2P_KEY_CODEC)) + self._bytes
        return "b" + base64.b32encode(cid).decode("ascii").rstrip("=").lower()

    def extract_public_key(self) -> PublicKey | None:
        """The public key inlined in an identity peer id; ``None`` for a sha2-256 peer id."""
        return self._key

    def matches_public_key(self, key: PublicKey) -> bool:
        """Whether ``key`` is the key this peer id was derived from."""
        try:
            return PeerId.from_public_key(key)._bytes == self._bytes
        except Exception:
            return False

    # ---------------------------------------------------------------- dunder

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PeerId):
            return self._bytes == other._bytes
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, PeerId):
            return self._bytes != other._bytes
        return NotImplemented

    def __lt__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes < other._bytes
        return NotImplemented

    def __le__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes <= other._bytes
        return NotImplemented

    def __gt__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes > other._bytes
        return NotImplemented

    def __ge__(self, other: PeerId) -> bool:
        if isinstance(other, PeerId):
            return self._bytes >= other._bytes
        return NotImplemented

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PeerId is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PeerId is immutable")

    def __reduce__(self) -> Any:
        return (PeerId.from_bytes, (self._bytes,))

    def __copy__(self) -> PeerId:
        return self

    def __deepcopy__(self, memo: object) -> PeerId:
        return self


# -------------------------------------------------------------------- text decoding


def _b58decode(text: str) -> bytes:
    if not _B58_ALPHABET.issuperset(text):
        raise PeerIdError(f"invalid base58btc peer id {text!r}")
    return bytes(base58.b58decode(text))


def _b32decode(body: str) -> bytes:
    """RFC 4648 base32 without padding; the spelling must be canonical (zero trailing bits)."""
    if not _B32_LOWER.issuperset(body) or len(body) % 8 in (1, 3, 6):
        raise PeerIdError("invalid base32 in peer id CID")
    padded = body.upper() + "=" * (-len(body) % 8)
    try:
        data = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        raise PeerIdError("invalid base32 in peer id CID") from None
    if base64.b32encode(data).decode("ascii").rstrip("=").lower() != body:
        raise PeerIdError("non-canonical base32 in peer id CID")
    return data


def _b36decode(body: str) -> bytes:
    if not body or any(c not in _B36_LOWER for c in body):
        raise PeerIdError("invalid base36 in peer id CID")
    zeros = len(body) - len(body.lstrip("0"))
    rest = body[zeros:]
    number = int(rest, 36) if rest else 0
    return b"\x00" * zeros + (
        number.to_bytes((number.bit_length() + 7) // 8, "big") if rest else b""
    )


def _multibase_decode(text: str) -> bytes:
    prefix, body = text[0], text[1:]
    if not body:
        raise PeerIdError(f"empty multibase body in peer id {text!r}")
    if prefix == "b":
        return _b32decode(body)
    if prefix == "B":
        if body.upper() != body:
            raise PeerIdError("invalid base32upper in peer id CID")
        return _b32decode(body.lower())
    if prefix == "z":
        return _b58decode(body)
    if prefix == "k":
        return _b36decode(body)
    if prefix == "K":
        if body.upper() != body:
            raise PeerIdError("invalid base36upper in peer id CID")
        return _b36decode(body.lower())
    if prefix in "fF":
        lower = body.lower()
        if (prefix == "f" and lower != body) or (prefix == "F" and body.upper() != body):
            raise PeerIdError("mixed-case base16 in peer id CID")
        if not _HEX_LOWER.issuperset(lower) or len(lower) % 2:
            raise PeerIdError("invalid base16 in peer id CID")
        return bytes.fromhex(lower)
    raise PeerIdError(f"not a peer id (neither base58btc nor a supported multibase CID): {text!r}")


def _decode_cid(text: str) -> bytes:
    cid = _multibase_decode(text)
    version, pos = read_uvarint(cid, 0, PeerIdError, "CID version")
    if version != _CID_V1:
        raise PeerIdError(f"peer id CID must be CIDv1, got version {version}")
    codec, pos = read_uvarint(cid, pos, PeerIdError, "CID codec")
    if codec != LIBP2P_KEY_CODEC:
        raise PeerIdError(f"peer id CID must use the libp2p-key codec (0x72), got 0x{codec:x}")
    return cid[pos:]
