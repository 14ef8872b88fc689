"""Key types, the abstract key interfaces, the ``PublicKey``/``PrivateKey`` protobuf codec and the
per-type dispatch (libp2p/specs ``peer-ids/peer-ids.md``).

The protobuf messages are tiny and fixed (``{required KeyType Type = 1; required bytes Data = 2}``),
so they are encoded and decoded here by hand, strictly: the spec requires a *deterministic*
encoding (minimal varints, fields in tag order, every field present, no other field), and a
decoder that accepts only that encoding guarantees that ``decode(b).to_protobuf() == b`` for every
accepted ``b``.  That property is what keeps peer ids (hashes of these bytes) unambiguous.
``aiolibp2p/core/pb/crypto.proto`` describes the same messages for other ``.proto`` files to import.

Nothing here imports ``cryptography``: each key type lives in its own module, imported on first
use, so ``import aiolibp2p.core.crypto`` (and ``aiolibp2p.core.peer``) stays cheap.
"""

from __future__ import annotations

import abc
import enum
import hmac
import importlib
from types import ModuleType
from typing import Any

from aiolibp2p._accel import varint
from aiolibp2p.core._wire import read_uvarint
from aiolibp2p.core.errors import CryptoError, KeyDecodeError, UnsupportedKeyType

__all__ = [
    "KeyType",
    "PublicKey",
    "PrivateKey",
    "KeySizeError",
    "KeySizeDecodeError",
    "RSA_MIN_BITS",
    "RSA_MAX_BITS",
    "generate_private_key",
    "public_key_from_protobuf",
    "private_key_from_protobuf",
    "public_key_from_raw",
    "private_key_from_raw",
    "encode_key_message",
    "decode_key_message",
    "as_bytes",
]

#: RSA moduli outside ``[RSA_MIN_BITS, RSA_MAX_BITS]`` are refused (go-libp2p uses the same bounds).
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 8192


class KeyType(enum.IntEnum):
    """The ``KeyType`` enum of the libp2p key protobuf."""

    RSA = 0
    Ed25519 = 1
    Secp256k1 = 2
    ECDSA = 3


class KeySizeError(CryptoError, ValueError):
    """A key size is outside the supported range (e.g. RSA below 2048 or above 8192 bits).

    Raised as is when *we* ask for such a key (:func:`generate_private_key`); decoders raise the
    subclass :class:`KeySizeDecodeError`, which is also a :class:`KeyDecodeError`.
    """

    def __init__(self, bits: int, min_bits: int = RSA_MIN_BITS, max_bits: int = RSA_MAX_BITS):
        super().__init__(f"RSA key of {bits} bits is outside [{min_bits}, {max_bits}]")
        self.bits = bits
        self.min_bits = min_bits
        self.max_bits = max_bits


class KeySizeDecodeError(KeySizeError, KeyDecodeError):
    """A serialized key decoded to a key whose size is outside the supported range."""

    def __init__(self, bits: int, min_bits: int = RSA_MIN_BITS, max_bits: int = RSA_MAX_BITS):
        KeySizeError.__init__(self, bits, min_bits, max_bits)
        self.code = None  # RemoteProtocolError attribute (its __init__ is bypassed here)


# --------------------------------------------------------------------------- interfaces


class PublicKey(abc.ABC):
    """A public key of one of the four libp2p key types.

    Equality and hashing go by ``(key_type, to_raw())``.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def key_type(self) -> KeyType:
        """The key's :class:`KeyType`."""

    @abc.abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid signature of ``data``; ``False`` (never an exception)
        for any bad or malformed signature."""

    @abc.abstractmethod
    def to_raw(self) -> bytes:
        """The key in its libp2p serialization: the protobuf ``Data`` field."""

    def to_protobuf(self) -> bytes:
        """The deterministic marshalled ``PublicKey`` message."""
        return encode_key_message(self.key_type, self.to_raw())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.key_type == other.key_type and self.to_raw() == other.to_raw()

    def __hash__(self) -> int:
        return hash((int(self.key_type), self.to_raw()))

    def __repr__(self) -> str:
        raw = self.to_raw()
        if len(raw) > 16:
            shown = raw[-8:].hex()  # DER keys share their prefix; the tail tells them apart
            return f"<{type(self).__name__} ...{shown} ({len(raw)} bytes)>"
        return f"<{type(self).__name__} {raw.hex()}>"

    def __reduce__(self) -> Any:
        return (public_key_from_protobuf, (self.to_protobuf(),))


class PrivateKey(abc.ABC):
    """A private key of one of the four libp2p key types.

    Equality compares the serialized keys in constant time; the hash is the public key's hash.
    ``repr`` never shows secret material.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def key_type(self) -> KeyType:
        """The key's :class:`KeyType`."""

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` as the spec says for this key type."""

    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        """The matching public key."""

    @abc.abstractmethod
    def to_raw(self) -> bytes:
        """The key in its libp2p serialization: the protobuf ``Data`` field."""

    def to_protobuf(self) -> bytes:
        """The deterministic marshalled ``PrivateKey`` message (also the key file format)."""
        return encode_key_message(self.key_type, self.to_raw())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return self.key_type == other.key_type and hmac.compare_digest(
            self.to_raw(), other.to_raw()
        )

    def __hash__(self) -> int:
        return hash(self.public_key())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} public={self.public_key()!r}>"

    def __reduce__(self) -> Any:
        # Pickling a private key is allowed (it is just bytes) but never implicit via __dict__.
        return (private_key_from_protobuf, (self.to_protobuf(),))


def as_bytes(data: object) -> bytes:
    """``data`` as ``bytes`` if it is a bytes-like object; :class:`TypeError` otherwise (never the
    ``bytes(int)`` zero-fill or a ``str``)."""
    if isinstance(data, bytes):
        return data
    return bytes(memoryview(data))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- protobuf codec

_TAG_TYPE = 0x08  # field 1, wire type 0 (varint)
_TAG_DATA = 0x12  # field 2, wire type 2 (length-delimited)


def encode_key_message(key_type: int, data: bytes) -> bytes:
    """Marshal a ``PublicKey``/``PrivateKey`` message deterministically."""
    return (
        bytes((_TAG_TYPE,))
        + varint.encode_uvarint(key_type)
        + bytes((_TAG_DATA,))
        + varint.encode_uvarint(len(data))
        + data
    )


def decode_key_message(data: bytes, what: str = "key") -> tuple[KeyType, bytes]:
    """Unmarshal a ``PublicKey``/``PrivateKey`` message, accepting only the canonical encoding.

    Raises :class:`KeyDecodeError` for anything but ``08 <type> 12 <len> <data>`` with minimal
    varints and nothing after the data, and :class:`UnsupportedKeyType` for an unknown type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise KeyDecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    buf = bytes(data)
    if not buf:
        raise KeyDecodeError(f"{what}: empty message")
    if buf[0] != _TAG_TYPE:
        raise KeyDecodeError(
            f"{what}: not a canonical key message (expected field 1 (Type) first, got tag "
            f"0x{buf[0]:02x})"
        )
    type_value, pos = read_uvarint(buf, 1, KeyDecodeError, f"{what} Type")
    if pos >= len(buf) or buf[pos] != _TAG_DATA:
        raise KeyDecodeError(f"{what}: not a canonical key message (expected field 2 (Data))")
    length, pos = read_uvarint(buf, pos + 1, KeyDecodeError, f"{what} Data length")
    if length > len(buf) - pos:
        raise KeyDecodeError(f"{what}: Data truncated ({len(buf) - pos} of {length} bytes)")
    if length < len(buf) - pos:
        raise KeyDecodeError(f"{what}: {len(buf) - pos - length} trailing bytes after Data")
    try:
        key_type = KeyType(type_value)
    except ValueError:
        raise UnsupportedKeyType(f"{what}: unsupported key type {type_value}") from None
    return key_type, buf[pos:]


# --------------------------------------------------------------------------- dispatch

_MODULES = {
    KeyType.RSA: "aiolibp2p.core.crypto.rsa",
    KeyType.Ed25519: "aiolibp2p.core.crypto.ed25519",
    KeyType.Secp256k1: "aiolibp2p.core.crypto.secp256k1",
    KeyType.ECDSA: "aiolibp2p.core.crypto.ecdsa",
}


def _module(key_type: object) -> ModuleType:
    # Reject bools and non-integers; accept plain ints equal to a KeyType value.
    if isinstance(key_type, bool) or not isinstance(key_type, int):
        raise UnsupportedKeyType(f"unsupported key type {key_type!r}")
    try:
        kt = KeyType(key_type)
    except ValueError:
        raise UnsupportedKeyType(f"unsupported key type {key_type!r}") from None
    return importlib.import_module(_MODULES[kt])


def _as_bytes(data: object, what: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise KeyDecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    return bytes(data)


def generate_private_key(key_type: KeyType = KeyType.Ed25519, *, bits: int = 2048) -> PrivateKey:
    """Generate a new private key.  ``bits`` applies to RSA only (2048..8192, else
    :class:`KeySizeError`); ECDSA keys are P-256."""
    module = _module(key_type)
    key: PrivateKey = module.generate(bits=bits)
    return key


def public_key_from_raw(key_type: KeyType, data: bytes) -> PublicKey:
    """Decode the ``Data`` field of a ``PublicKey`` of the given type (canonical form only)."""
    module = _module(key_type)
    key: PublicKey = module.public_key_from_raw(_as_bytes(data, "public key"))
    return key


def private_key_from_raw(key_type: KeyType, data: bytes) -> PrivateKey:
    """Decode the ``Data`` field of a ``PrivateKey`` of the given type."""
    module = _module(key_type)
    key: PrivateKey = module.private_key_from_raw(_as_bytes(data, "private key"))
    return key


def public_key_from_protobuf(data: bytes) -> PublicKey:
    """Decode a marshalled ``PublicKey``; only the deterministic encoding is accepted, so the
    result always re-encodes to exactly ``data``.

    Raises :class:`KeyDecodeError` (or its subclass :class:`UnsupportedKeyType`).
    """
    key_type, raw = decode_key_message(data, "PublicKey")
    return public_key_from_raw(key_type, raw)


def private_key_from_protobuf(data: bytes) -> PrivateKey:
    """Decode a marshalled ``PrivateKey`` (the key file format).

    The message framing must be canonical; inside it the legacy 96-byte Ed25519 form is accepted
    (see :mod:`aiolibp2p.core.crypto.ed25519`).
    """
    key_type, raw = decode_key_message(data, "PrivateKey")
    return private_key_from_raw(key_type, raw)
