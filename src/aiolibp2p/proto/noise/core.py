"""The Noise Protocol Framework core for one protocol: ``Noise_XX_25519_ChaChaPoly_SHA256``.

This module follows the Noise specification, revision 34 (noiseprotocol.org/noise.html):
section 5.1 (:class:`CipherState`), 5.2 (:class:`SymmetricState`, with HKDF from section 4.3)
and 5.3 (the ``HandshakeState``, here :class:`XXHandshakeState`, specialised to the one pattern
libp2p uses)::

    XX:
      -> e
      <- e, ee, s, es
      -> s, se

with the 25519 DH functions (X25519, section 12.1), the ChaChaPoly cipher functions (section
12.3: ChaCha20-Poly1305 with a 96-bit nonce of four zero bytes and the 64-bit little-endian
counter) and SHA-256 (section 12.5).  It knows nothing of libp2p: no framing, no payload
encoding, no identity keys (see :mod:`aiolibp2p.proto.noise.machine` for those).  The cipher
states it uses are for handshake messages only; transport messages go through the
``noise_cipher`` hot path with the keys :meth:`XXHandshakeState.split` returns.

No randomness is drawn here: the static and ephemeral private keys are passed in.  Every
primitive comes from ``cryptography``, except SHA-256 from :mod:`hashlib` (faster for the
short inputs hashed here).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from aiolibp2p.core.errors import HandshakeError, LocalProtocolError, NonceExhausted

__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_NONCE",
    "PROTOCOL_NAME",
    "TAGLEN",
    "CipherState",
    "StaticKeyPair",
    "SymmetricState",
    "XXHandshakeState",
    "hkdf",
    "x25519_public_key",
]

#: The Noise protocol name, hashed into the initial handshake state.
PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"
#: Bytes of an X25519 public key and of a DH output.
DHLEN: Final = 32
#: Bytes of a SHA-256 output.
HASHLEN: Final = 32
#: Bytes of a Poly1305 tag.
TAGLEN: Final = 16
#: The reserved nonce: a cipher state never encrypts with it (Noise section 5.1).
MAX_NONCE: Final = 2**64 - 1

_pack_nonce = struct.Struct("<4xQ").pack


def _hash(data: bytes) -> bytes:
    # hashlib's one-shot SHA-256 costs a third of a ``cryptography`` Hash object here.
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def hkdf(chaining_key: bytes, input_key_material: bytes, num_outputs: int) -> tuple[bytes, ...]:
    """Noise ``HKDF`` (section 4.3): two or three 32-byte outputs."""
    if num_outputs not in (2, 3):
        raise LocalProtocolError(f"HKDF makes 2 or 3 outputs, not {num_outputs}")
    temp_key = _hmac(chaining_key, input_key_material)
    output1 = _hmac(temp_key, b"\x01")
    output2 = _hmac(temp_key, output1 + b"\x02")
    if num_outputs == 2:
        return output1, output2
    return output1, output2, _hmac(temp_key, output2 + b"\x03")


def _private_key(data: bytes, what: str) -> X25519PrivateKey:
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) != DHLEN:
        raise LocalProtocolError(f"{what} must be a {DHLEN}-byte X25519 private key")
    return X25519PrivateKey.from_private_bytes(bytes(data))


def x25519_public_key(private_key: bytes) -> bytes:
    """The raw 32-byte X25519 public key of a raw 32-byte private key."""
    return _private_key(private_key, "private_key").public_key().public_bytes_raw()


class StaticKeyPair:
    """An X25519 key pair prepared once (the key object and the raw public key), so that the
    handshakes that share a static key do not each decode it and derive its public half."""

    __slots__ = ("_private", "public")

    def __init__(self, private_key: bytes) -> None:
        self._private = _private_key(private_key, "static_key")
        #: The raw 32-byte public key.
        self.public: bytes = self._private.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return f"<StaticKeyPair public={self.public.hex()[:16]}...>"


def _dh(private_key: X25519PrivateKey, public_key: bytes) -> bytes:
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:  # an all-zero output: the peer sent a low-order point
        raise HandshakeError("X25519 exchange with the remote key gave no secret") from None


class CipherState:
    """Noise ``CipherState`` (section 5.1) for handshake messages: a key and a nonce counter.

    Without a key, encryption and decryption return their input.  Decryption failures raise
    :class:`HandshakeError`; a nonce at ``max_nonce`` (the reserved ``2**64 - 1`` by default)
    raises :class:`NonceExhausted` when encrypting and :class:`HandshakeError` when decrypting.
    """

    __slots__ = ("_aead", "_key", "max_nonce", "n")

    def __init__(self, key: bytes | None = None, *, max_nonce: int = MAX_NONCE) -> None:
        self._key: bytes | None = None
        self._aead: ChaCha20Poly1305 | None = None
        self.n = 0
        self.max_nonce = max_nonce
        if key is not None:
            self.initialize_key(key)

    def initialize_key(self, key: bytes) -> None:
        """Noise ``InitializeKey``: set the key and reset the nonce."""
        self._key = bytes(key)
        self._aead = ChaCha20Poly1305(self._key)
        self.n = 0

    def has_key(self) -> bool:
        return self._key is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= self.max_nonce:
            raise NonceExhausted(f"noise nonce exhausted at {self.n}")
        ciphertext = self._aead.encrypt(_pack_nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self.n >= self.max_nonce:
            raise HandshakeError(f"noise nonce exhausted at {self.n}")
        try:
            plaintext = self._aead.decrypt(_pack_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise HandshakeError("noise handshake message failed authentication") from None
        self.n += 1
        return plaintext


class SymmetricState:
    """Noise ``SymmetricState`` (section 5.2): chaining key ``ck``, handshake hash ``h``."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self, protocol_name: bytes = PROTOCOL_NAME) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = _hash(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_key = hkdf(self.ck, input_key_material, 2)
        self.cipher.initialize_key(temp_key)  # HASHLEN is 32: no truncation

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """The two transport keys: the initiator sends with the first, the responder with
        the second."""
        key1, key2 = hkdf(self.ck, b"", 2)
        return key1, key2


#: The XX message patterns: who writes each message and its tokens.
_PATTERN: Final = (
    (True, ("e",)),  # -> e
    (False, ("e", "ee", "s", "es")),  # <- e, ee, s, es
    (True, ("s", "se")),  # -> s, se
)


class XXHandshakeState:
    """Noise ``HandshakeState`` (section 5.3) for the XX pattern, without pre-messages or PSK.

    ``static_key`` and ``ephemeral_key`` are raw 32-byte X25519 private keys (``static_key`` may
    also be a :class:`StaticKeyPair`, prepared once for many handshakes).  Call
    :meth:`write_message` and :meth:`read_message` in the pattern's order (the initiator writes
    messages 1 and 3, the responder message 2); after the third message :attr:`finished` is true
    and :meth:`split` gives the transport keys.

    :meth:`read_message` raises :class:`HandshakeError` for a message too short for its tokens
    and tag, a failed AEAD or a low-order X25519 key; calling a method out of turn raises
    :class:`LocalProtocolError`.
    """

    __slots__ = ("_e", "_e_pub", "_index", "_initiator", "_re", "_rs", "_s", "_s_pub", "_ss")

    def __init__(
        self,
        *,
        initiator: bool,
        static_key: bytes | StaticKeyPair,
        ephemeral_key: bytes,
        prologue: bytes = b"",
    ) -> None:
        self._initiator = bool(initiator)
        pair = static_key if isinstance(static_key, StaticKeyPair) else StaticKeyPair(static_key)
        self._s = pair._private
        self._s_pub = pair.public
        self._e = _private_key(ephemeral_key, "ephemeral_key")
        self._e_pub = self._e.public_key().public_bytes_raw()
        self._rs: bytes | None = None
        self._re: bytes | None = None
        self._index = 0
        self._ss = SymmetricState(PROTOCOL_NAME)
        self._ss.mix_hash(bytes(prologue))

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def static_public_key(self) -> bytes:
        """Our static X25519 public key."""
        return self._s_pub

    @property
    def remote_static_key(self) -> bytes | None:
        """The remote static X25519 public key, once received."""
        return self._rs

    @property
    def handshake_hash(self) -> bytes:
        """The handshake hash ``h`` (channel binding once the handshake is finished)."""
        return self._ss.h

    @property
    def message_index(self) -> int:
        """How many handshake messages were written or read (0 to 3)."""
        return self._index

    @property
    def finished(self) -> bool:
        return self._index == len(_PATTERN)

    def _next(self, writing: bool) -> tuple[str, ...]:
        if self._index >= len(_PATTERN):
            raise LocalProtocolError("the noise handshake is finished")
        by_initiator, tokens = _PATTERN[self._index]
        if (by_initiator == self._initiator) != writing:
            verb = "write" if writing else "read"
            raise LocalProtocolError(f"not our turn to {verb} noise handshake message")
        return tokens

    def _mix_dh(self, token: str) -> None:
        assert self._re is not None
        if token == "ee":
            self._ss.mix_key(_dh(self._e, self._re))
            return
        # "es" is DH(initiator's e, responder's s); "se" is DH(initiator's s, responder's e).
        if (token == "es") == self._initiator:  # our e with their s
            assert self._rs is not None
            self._ss.mix_key(_dh(self._e, self._rs))
        else:  # our s with their e
            self._ss.mix_key(_dh(self._s, self._re))

    def write_message(self, payload: bytes = b"") -> bytes:
        """Noise ``WriteMessage``: the next handshake message, carrying ``payload``."""
        tokens = self._next(writing=True)
        out = bytearray()
        for token in tokens:
            if token == "e":
                out += self._e_pub
                self._ss.mix_hash(self._e_pub)
            elif token == "s":
                out += self._ss.encrypt_and_hash(self._s_pub)
            else:
                self._mix_dh(token)
        out += self._ss.encrypt_and_hash(bytes(payload))
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """Noise ``ReadMessage``: process the next handshake message, return its payload."""
        tokens = self._next(writing=False)
        number = self._index + 1
        message = bytes(message)
        pos = 0
        for token in tokens:
            if token in ("e", "s"):
                size = DHLEN + (TAGLEN if token == "s" and self._ss.cipher.has_key() else 0)
                if len(message) - pos < size:
                    raise HandshakeError(
                        f"noise handshake message {number} of {len(message)} bytes is too short"
                    )
                field = message[pos : pos + size]
                pos += size
                if token == "e":
                    self._re = field
                    self._ss.mix_hash(field)
                else:
                    self._rs = self._ss.decrypt_and_hash(field)
            else:
                self._mix_dh(token)
        if self._ss.cipher.has_key() and len(message) - pos < TAGLEN:
            raise HandshakeError(
                f"noise handshake message {number} of {len(message)} bytes is too short"
            )
        payload = self._ss.decrypt_and_hash(message[pos:])
        self._index += 1
        return payload

    def split(self) -> tuple[bytes, bytes]:
        """``(send_key, receive_key)`` for our side, once the handshake is finished."""
        if not self.finished:
            raise LocalProtocolError("the noise handshake is not finished")
        key1, key2 = self._ss.split()
        return (key1, key2) if self._initiator else (key2, key1)
