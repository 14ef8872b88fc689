"""noise-libp2p (``/noise``): the secure-channel handshake as a sans-IO machine.

Spec: libp2p/specs ``noise/README.md`` (r4) and ``connections/inlined-muxer-negotiation.md``.
The Noise protocol is ``Noise_XX_25519_ChaChaPoly_SHA256`` (see :mod:`.core`)::

    -> e                     message 1: the initiator's ephemeral key, no payload
    <- e, ee, s, es          message 2: the responder's keys and its signed payload
    -> s, se                 message 3: the initiator's static key and its signed payload

Every message, handshake or transport, travels as ``uint16_be(len) || noise_message``
(at most 65535 bytes).  The payload of messages 2 and 3 is a ``NoiseHandshakePayload``
protobuf (``pb/payload.proto``): the sender's identity public key, its signature of
``b"noise-libp2p-static-key:" || static X25519 public key``, and ``extensions`` with the
sender's stream-muxer list (early muxer negotiation).  Message 1 carries no payload and no
extensions.

Driving the machine (ARCHITECTURE.md rule 3, output is pulled):

* construct it with the identity key, a fresh 32-byte X25519 ephemeral private key and a static
  key: either 32 more random bytes (a key for this handshake alone, signed here) or, better, a
  :class:`NoiseStaticKey` made once per host (the spec lets a peer keep one static key for its
  lifetime; the identity key's signature of it and our payload are then computed once, not per
  connection).  The driver draws the random bytes with ``os.urandom``; the machine draws
  nothing.  An initiator queues message 1 at once, so it can be written together with the
  multistream proposal of ``/noise``;
* write ``data_to_send()`` whenever it is non-empty, and feed every received chunk to
  ``receive_data(chunk)`` until it returns :class:`~.events.HandshakeComplete`;
* on completion write ``data_to_send()`` (the initiator's message 3) *before* any transport
  frame, then use ``result.transport``: ``encrypt`` what goes out, ``decrypt`` what comes in,
  starting with ``result.leftover`` (frames that arrived with the last handshake message);
* on end of stream before completion call ``receive_eof()`` (it raises).

Checks (each a :class:`~aiolibp2p.core.errors.RemoteProtocolError` subclass; the machine then
moves to :attr:`State.ERROR`, forgets everything the peer sent and clears its queued output):

* framing: a length prefix above ``max_message_size`` raises
  :class:`~aiolibp2p.core.errors.MessageTooLarge`; message 1 must be exactly 32 bytes,
  message 2 at least 96 and message 3 at least 64 bytes (:class:`HandshakeError`), checked as
  soon as the 2-byte prefix is in, before the body is buffered;
* AEAD failures and low-order X25519 keys: :class:`HandshakeError`;
* the payload: malformed protobuf or a missing identity key or signature
  (:class:`HandshakeError`), an undecodable key (:class:`KeyDecodeError`), a signature that does
  not verify (:class:`InvalidSignature`), a peer id other than ``expected_peer``
  (:class:`PeerIdMismatch`), muxer lists with no entry in common (:class:`NegotiationError`);
  unknown payload or extension fields are ignored.

Early muxer negotiation: the result is the first entry of the *initiator's* list that the
responder also lists.  If either side sent no list (or an empty one) the result is ``None`` and
the driver negotiates a muxer with multistream-select after the handshake.  If both sent lists
and they share no entry, the handshake fails (the initiator finds out on message 2 and never
sends message 3).

Verified-signature cache: a :class:`VerifiedKeys` passed to the machines of one host remembers
the remote payloads whose signature verified, keyed by the exact identity key, static key and
signature bytes.  A peer that reuses its static key (as we, js-libp2p and rust-libp2p do) then
costs no signature verification on reconnect.  Only the signature check is skipped: the remote
still proves it holds the static key through the DH tokens of the handshake.

Nonces: the transport ends before ``2**64 - 1`` messages per direction
(:attr:`NoiseHandshake.MAX_NONCE`, a class attribute a test may lower).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NoReturn, TypeAlias

from google.protobuf.message import DecodeError as _PbDecodeError

from aiolibp2p._accel import noise_cipher
from aiolibp2p.core.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from aiolibp2p.core.errors import (
    HandshakeError,
    InvalidSignature,
    LocalProtocolError,
    MessageTooLarge,
    NegotiationError,
    PeerIdMismatch,
)
from aiolibp2p.core.lru import Lru
from aiolibp2p.core.peer import PeerId

from .core import DHLEN, TAGLEN, StaticKeyPair, XXHandshakeState
from .events import Event, HandshakeComplete
from .pb import payload_pb2

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ID",
    "STATIC_KEY_SIGNATURE_PREFIX",
    "HandshakeResult",
    "NoiseHandshake",
    "NoiseStaticKey",
    "NoiseTransport",
    "State",
    "VerifiedKeys",
]

#: The multistream-select protocol id of noise-libp2p.
PROTOCOL_ID: Final = "/noise"
#: What the identity key signs, followed by the 32-byte static X25519 public key.
STATIC_KEY_SIGNATURE_PREFIX: Final = b"noise-libp2p-static-key:"
#: Largest Noise message (the most a 2-byte length prefix can announce).
MAX_MESSAGE_SIZE: Final = 65535

_HEADER: Final = 2
#: Smallest handshake messages: message 1 is exactly ``e``; message 2 is ``e``, the encrypted
#: ``s`` and a payload tag; message 3 the encrypted ``s`` and a payload tag.
_MIN_LENGTH: Final = {1: DHLEN, 2: DHLEN + (DHLEN + TAGLEN) + TAGLEN, 3: (DHLEN + TAGLEN) + TAGLEN}

#: What ``receive_data`` and the transport accept.
Buffer: TypeAlias = bytes | bytearray | memoryview


class State(enum.Enum):
    """Where a handshake stands."""

    #: Responder: waiting for message 1 (``-> e``).
    AWAIT_MESSAGE_1 = "await-message-1"
    #: Initiator: message 1 is queued; waiting for message 2 (``<- e, ee, s, es``).
    AWAIT_MESSAGE_2 = "await-message-2"
    #: Responder: message 2 is queued; waiting for message 3 (``-> s, se``).
    AWAIT_MESSAGE_3 = "await-message-3"
    #: The handshake succeeded; the machine takes no more input.
    COMPLETE = "complete"
    #: The handshake failed; the machine takes no more input.
    ERROR = "error"


#: The transition table: in each state, which message is expected and the state after it.
#: A state missing here takes no input.
_TRANSITIONS: Final = {
    State.AWAIT_MESSAGE_1: (1, State.AWAIT_MESSAGE_3),
    State.AWAIT_MESSAGE_2: (2, State.COMPLETE),
    State.AWAIT_MESSAGE_3: (3, State.COMPLETE),
}


class NoiseTransport:
    """The two transport cipher states of a finished handshake, one per direction.

    Each direction is keyed once and reused for every frame, behind the ``noise_cipher`` hot
    path (compiled when available: it then calls libcrypto's ChaCha20-Poly1305 directly).
    """

    __slots__ = ("_opener", "_sealer")

    def __init__(
        self, send_key: bytes, receive_key: bytes, *, max_nonce: int = noise_cipher.MAX_NONCE
    ) -> None:
        self._sealer = noise_cipher.FrameSealer(send_key, 0, max_nonce)
        self._opener = noise_cipher.FrameOpener(receive_key, 0, max_nonce)

    def encrypt(self, data: Buffer) -> bytes:
        """Seal ``data`` into frames of at most 65519 plaintext bytes, each with its 2-byte
        length, concatenated (``b""`` for ``b""``).

        Raises :class:`~aiolibp2p.core.errors.NonceExhausted` (sealing nothing) once the send
        nonces are used up: close the connection then.
        """
        return self._sealer.seal(data)

    def encrypt_gather(self, parts: Sequence[Buffer]) -> bytes:
        """:meth:`encrypt` of the concatenation of ``parts``, without joining them first (the
        compiled twin feeds each frame's cipher from the parts it spans)."""
        return self._sealer.seal_gather(parts)

    def encrypt_many(self, chunks: Sequence[Buffer]) -> bytes:
        """Seal each chunk as its own frame(s), in one call and one output buffer."""
        return self._sealer.seal_many(chunks)

    def decrypt(self, data: Buffer) -> bytes:
        """Open every complete frame of the buffered bytes followed by ``data``; return the
        plaintexts concatenated and buffer an incomplete last frame (at most one frame).

        Raises :class:`~aiolibp2p.core.errors.DecryptError` for a frame shorter than its tag,
        a frame that fails authentication, or frames past the nonce limit; the transport is
        then unusable.
        """
        return self._opener.open(data)

    @property
    def send_nonce(self) -> int:
        """How many frames were sealed."""
        return self._sealer.nonce

    @property
    def receive_nonce(self) -> int:
        """How many frames were opened."""
        return self._opener.nonce

    @property
    def pending(self) -> int:
        """Bytes of an incomplete received frame held by :meth:`decrypt`."""
        return self._opener.pending

    def __repr__(self) -> str:
        return f"<NoiseTransport sent={self.send_nonce} received={self.receive_nonce}>"


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """What a successful Noise handshake established."""

    #: The authenticated remote peer (derived from ``remote_public_key``).
    remote_peer: PeerId
    #: The remote identity key that signed its static Noise key.
    remote_public_key: PublicKey
    #: The early-negotiated stream muxer, or ``None`` (negotiate with multistream-select).
    muxer: str | None
    #: The muxer list the remote sent (empty if it sent none).
    remote_muxers: tuple[str, ...]
    #: Encrypts and decrypts transport frames from now on.
    transport: NoiseTransport
    #: Bytes received after the last handshake message: already encrypted transport frames,
    #: for ``transport.decrypt``.
    leftover: bytes


def _check_muxers(muxers: object) -> tuple[str, ...]:
    if isinstance(muxers, (str, bytes)) or not isinstance(muxers, Sequence):
        raise LocalProtocolError("muxers must be a sequence of protocol id strings")
    checked: list[str] = []
    for muxer in muxers:
        if not isinstance(muxer, str) or not muxer:
            raise LocalProtocolError(f"a muxer must be a non-empty str, not {muxer!r}")
        try:
            muxer.encode("utf-8")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"muxer {muxer!r} is not valid UTF-8") from None
        if muxer in checked:
            raise LocalProtocolError(f"muxer {muxer!r} is listed twice")
        checked.append(muxer)
    return tuple(checked)


def _as_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise LocalProtocolError(f"{name} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _encode_payload(identity_key: PrivateKey, signature: bytes, muxers: tuple[str, ...]) -> bytes:
    """Our serialized ``NoiseHandshakePayload``: the public identity key, its ``signature`` of
    the static key and the ``muxers`` extension (omitted when empty)."""
    message: Any = payload_pb2.NoiseHandshakePayload(
        identity_key=identity_key.public_key().to_protobuf(), identity_sig=signature
    )
    if muxers:
        message.extensions.stream_muxers.extend(muxers)
    return bytes(message.SerializeToString(deterministic=True))


class NoiseStaticKey:
    """A static Noise key with the identity key's signature of it, for many handshakes.

    ``identity_key`` signs ``b"noise-libp2p-static-key:" || public static key`` once, here;
    ``private_key`` is 32 random bytes (the caller draws them).  :meth:`payload` encodes our
    handshake payload once per muxer list.  Pass the object as ``static_key`` to
    :class:`NoiseHandshake`; make a new one to rotate the key.
    """

    __slots__ = ("_payloads", "identity_key", "key_pair", "signature")

    #: Muxer lists whose payload is kept (a host uses one or two).
    MAX_PAYLOADS: ClassVar[int] = 8

    def __init__(self, identity_key: PrivateKey, private_key: bytes) -> None:
        if not isinstance(identity_key, PrivateKey):
            raise LocalProtocolError(
                f"identity_key must be a PrivateKey, not {type(identity_key).__name__}"
            )
        self.identity_key = identity_key
        self.key_pair = StaticKeyPair(_as_bytes("private_key", private_key))
        self.signature: bytes = identity_key.sign(
            STATIC_KEY_SIGNATURE_PREFIX + self.key_pair.public
        )
        self._payloads: dict[tuple[str, ...], bytes] = {}

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte static X25519 public key."""
        return self.key_pair.public

    def payload(self, muxers: tuple[str, ...]) -> bytes:
        """Our serialized ``NoiseHandshakePayload`` announcing ``muxers`` (checked tuple)."""
        payload = self._payloads.get(muxers)
        if payload is None:
            payload = _encode_payload(self.identity_key, self.signature, muxers)
            if len(self._payloads) >= self.MAX_PAYLOADS:
                self._payloads.clear()
            self._payloads[muxers] = payload
        return payload

    def __repr__(self) -> str:
        return f"<NoiseStaticKey {self.key_pair.public.hex()[:16]}...>"


class VerifiedKeys:
    """The remote handshake payloads whose signature verified: a bounded LRU map from
    ``(identity key protobuf, static key, signature)`` to the decoded key and its peer id.

    Share one per host between its handshakes.  A hit skips decoding the key and verifying the
    signature (deterministic functions of exactly these bytes); any other byte string is
    verified as usual.
    """

    __slots__ = ("_entries",)

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: Lru[tuple[bytes, bytes, bytes], tuple[PublicKey, PeerId]] = Lru(max_entries)

    @property
    def max_entries(self) -> int:
        return self._entries.max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[bytes, bytes, bytes]) -> tuple[PublicKey, PeerId] | None:
        """The verified key and peer for exactly these bytes, or ``None``."""
        return self._entries.get(key)

    def put(self, key: tuple[bytes, bytes, bytes], value: tuple[PublicKey, PeerId]) -> None:
        """Remember a payload whose signature verified (the oldest entry goes when full)."""
        self._entries.put(key, value)


class NoiseHandshake:
    """One side of a noise-libp2p handshake (see the module docstring for how to drive it).

    ``identity_key`` signs our static key; ``static_key`` is a :class:`NoiseStaticKey` of the
    same identity key (reused across handshakes) or a 32-byte X25519 private key (signed for
    this handshake); ``ephemeral_key`` is a fresh 32-byte X25519 private key; ``muxers`` our
    stream muxers in order of preference (sent in our payload; empty: no early negotiation);
    ``expected_peer`` the peer we dialled, if known; ``prologue`` is mixed into the handshake
    hash (empty on TCP and WebSocket); ``max_message_size`` bounds every handshake message,
    sent or received; ``verified_keys`` a :class:`VerifiedKeys` shared by a host's handshakes.

    Bad arguments raise :class:`LocalProtocolError`, as does an own payload that would not fit
    in ``max_message_size``.
    """

    #: Nonce limit of the transport cipher states (``2**64 - 1``, reserved by Noise).  A class
    #: attribute so that tests can lower it in a subclass.
    MAX_NONCE: ClassVar[int] = noise_cipher.MAX_NONCE

    def __init__(
        self,
        *,
        initiator: bool,
        identity_key: PrivateKey,
        static_key: bytes | NoiseStaticKey,
        ephemeral_key: bytes,
        muxers: Sequence[str] = (),
        expected_peer: PeerId | None = None,
        prologue: bytes = b"",
        max_message_size: int = MAX_MESSAGE_SIZE,
        verified_keys: VerifiedKeys | None = None,
    ) -> None:
        if not isinstance(identity_key, PrivateKey):
            raise LocalProtocolError(
                f"identity_key must be a PrivateKey, not {type(identity_key).__name__}"
            )
        if expected_peer is not None and not isinstance(expected_peer, PeerId):
            raise LocalProtocolError(
                f"expected_peer must be a PeerId or None, not {type(expected_peer).__name__}"
            )
        if (
            not isinstance(max_message_size, int)
            or isinstance(max_message_size, bool)
            or not _MIN_LENGTH[2] <= max_message_size <= MAX_MESSAGE_SIZE
        ):
            raise LocalProtocolError(
                f"max_message_size must be an int in [{_MIN_LENGTH[2]}, {MAX_MESSAGE_SIZE}], "
                f"not {max_message_size!r}"
            )
        if verified_keys is not None and not isinstance(verified_keys, VerifiedKeys):
            raise LocalProtocolError(
                f"verified_keys must be VerifiedKeys or None, not {type(verified_keys).__name__}"
            )
        self._initiator = bool(initiator)
        self._muxers = _check_muxers(muxers)
        self._expected_peer = expected_peer
        self._max_message_size = max_message_size
        self._verified_keys = verified_keys
        if isinstance(static_key, NoiseStaticKey):
            if static_key.identity_key is not identity_key and (
                static_key.identity_key.public_key() != identity_key.public_key()
            ):
                raise LocalProtocolError("static_key was signed by another identity key")
            static: bytes | StaticKeyPair = static_key.key_pair
        else:
            static = _as_bytes("static_key", static_key)
        self._noise: XXHandshakeState | None = XXHandshakeState(
            initiator=self._initiator,
            static_key=static,
            ephemeral_key=_as_bytes("ephemeral_key", ephemeral_key),
            prologue=_as_bytes("prologue", prologue),
        )
        if isinstance(static_key, NoiseStaticKey):
            self._payload = static_key.payload(self._muxers)
        else:
            self._payload = self._make_payload(identity_key, self._noise.static_public_key)
        own_size = len(self._payload) + TAGLEN + (DHLEN + TAGLEN)
        if not self._initiator:
            own_size += DHLEN
        if own_size > max_message_size:
            raise LocalProtocolError(
                f"our noise handshake message of {own_size} bytes would exceed "
                f"max_message_size ({max_message_size})"
            )
        self._buffer = bytearray()
        self._outbound = bytearray()
        self._result: HandshakeResult | None = None
        if self._initiator:
            self._send(self._noise.write_message(b""))
            self._state = State.AWAIT_MESSAGE_2
        else:
            self._state = State.AWAIT_MESSAGE_1

    # -- public API ------------------------------------------------------------------------

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def state(self) -> State:
        return self._state

    @property
    def complete(self) -> bool:
        """Whether the handshake succeeded."""
        return self._state is State.COMPLETE

    @property
    def result(self) -> HandshakeResult:
        """The outcome; :class:`LocalProtocolError` before the handshake is complete."""
        if self._result is None:
            raise LocalProtocolError(
                f"the noise handshake is not complete (state {self._state.value})"
            )
        return self._result

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (handshake messages with their length prefix);
        ``b""`` if there are none.  Each call drains what it returns."""
        data = bytes(self._outbound)
        self._outbound.clear()
        return data

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes received from the peer; return the events they caused.

        Partial frames are buffered.  Raises a :class:`RemoteProtocolError` subclass if the peer
        broke the protocol (see the module docstring) and :class:`LocalProtocolError` once the
        handshake is complete or failed.  An error is final.
        """
        self._require_running("receive_data")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"data must be bytes, not {type(data).__name__}")
        events: list[Event] = []
        try:
            self._buffer += data
            self._process(events)
        except BaseException:
            self._fail()
            raise
        return events

    def receive_eof(self) -> NoReturn:
        """The peer closed its side before the handshake finished: always raises.

        :class:`HandshakeError` during the handshake (the machine moves to ``ERROR``);
        :class:`LocalProtocolError` once it is complete or failed.
        """
        self._require_running("receive_eof")
        state = self._state
        self._fail()
        raise HandshakeError(f"the connection ended during the noise handshake ({state.value})")

    def __repr__(self) -> str:
        role = "initiator" if self._initiator else "responder"
        return f"<NoiseHandshake {role} {self._state.value}>"

    # -- machinery -------------------------------------------------------------------------

    def _require_running(self, what: str) -> None:
        if self._state is State.COMPLETE:
            raise LocalProtocolError(
                f"{what}: the noise handshake is complete; "
                "pass further bytes to result.transport.decrypt()"
            )
        if self._state is State.ERROR:
            raise LocalProtocolError(f"{what}: the noise handshake failed")

    def _fail(self) -> None:
        # Early data (the remote payload, anything buffered) is discarded with the keys.
        self._state = State.ERROR
        self._noise = None
        self._buffer = bytearray()
        self._outbound.clear()
        self._result = None

    def _send(self, message: bytes) -> None:
        self._outbound += len(message).to_bytes(_HEADER, "big")
        self._outbound += message

    def _check_length(self, number: int, length: int) -> None:
        if length > self._max_message_size:
            raise MessageTooLarge(length, self._max_message_size)
        if number == 1 and length != _MIN_LENGTH[1]:
            raise HandshakeError(
                f"noise handshake message 1 must be {_MIN_LENGTH[1]} bytes "
                f"(an ephemeral key and no payload), got {length}"
            )
        if length < _MIN_LENGTH[number]:
            raise HandshakeError(
                f"noise handshake message {number} of {length} bytes is shorter than "
                f"the minimum of {_MIN_LENGTH[number]}"
            )

    def _process(self, events: list[Event]) -> None:
        while self._state in _TRANSITIONS:
            number, next_state = _TRANSITIONS[self._state]
            buf = self._buffer
            if len(buf) < _HEADER:
                return
            length = (buf[0] << 8) | buf[1]
            self._check_length(number, length)
            end = _HEADER + length
            if len(buf) < end:
                return
            message = bytes(buf[_HEADER:end])
            del buf[:end]
            self._handle(number, message, events)
            self._state = next_state

    def _handle(self, number: int, message: bytes, events: list[Event]) -> None:
        noise = self._noise
        assert noise is not None
        payload = noise.read_message(message)
        if number == 1:  # responder: answer with message 2
            self._send(noise.write_message(self._payload))
            return
        remote_static = noise.remote_static_key
        assert remote_static is not None
        remote_key, remote_peer, remote_muxers = self._verify_payload(payload, remote_static)
        muxer = self._select_muxer(remote_muxers)
        if number == 2:  # initiator: message 3 finishes our side
            self._send(noise.write_message(self._payload))
        send_key, receive_key = noise.split()
        self._result = HandshakeResult(
            remote_peer=remote_peer,
            remote_public_key=remote_key,
            muxer=muxer,
            remote_muxers=remote_muxers,
            transport=NoiseTransport(send_key, receive_key, max_nonce=self.MAX_NONCE),
            leftover=bytes(self._buffer),
        )
        self._buffer = bytearray()
        self._noise = None
        events.append(HandshakeComplete(self._result))

    def _make_payload(self, identity_key: PrivateKey, static_public_key: bytes) -> bytes:
        signature = identity_key.sign(STATIC_KEY_SIGNATURE_PREFIX + static_public_key)
        return _encode_payload(identity_key, signature, self._muxers)

    def _verify_payload(
        self, payload: bytes, remote_static: bytes
    ) -> tuple[PublicKey, PeerId, tuple[str, ...]]:
        message: Any = payload_pb2.NoiseHandshakePayload()
        try:
            message.ParseFromString(payload)
        except _PbDecodeError as exc:
            raise HandshakeError(f"malformed noise handshake payload: {exc}") from None
        if not message.HasField("identity_key"):
            raise HandshakeError("the noise handshake payload has no identity_key")
        if not message.HasField("identity_sig"):
            raise HandshakeError("the noise handshake payload has no identity_sig")
        cache = self._verified_keys
        cache_key = (message.identity_key, remote_static, message.identity_sig)
        known = cache.get(cache_key) if cache is not None else None
        if known is not None:
            remote_key, remote_peer = known
        else:
            remote_key = public_key_from_protobuf(message.identity_key)
            if not remote_key.verify(
                STATIC_KEY_SIGNATURE_PREFIX + remote_static, message.identity_sig
            ):
                raise InvalidSignature(
                    "the identity key's signature of the noise static key does not verify"
                )
            remote_peer = PeerId.from_public_key(remote_key)
            if cache is not None:
                cache.put(cache_key, (remote_key, remote_peer))
        if self._expected_peer is not None and remote_peer != self._expected_peer:
            raise PeerIdMismatch(
                f"expected peer {self._expected_peer}, the remote proved {remote_peer}"
            )
        muxers: tuple[str, ...] = ()
        if message.HasField("extensions"):
            muxers = tuple(message.extensions.stream_muxers)
            for muxer in muxers:
                if not isinstance(muxer, str):  # upb hands invalid UTF-8 over as bytes
                    raise HandshakeError("a stream muxer id in the noise extensions is not UTF-8")
        return remote_key, remote_peer, muxers

    def _select_muxer(self, remote_muxers: tuple[str, ...]) -> str | None:
        if not self._muxers or not remote_muxers:
            return None
        if self._initiator:
            preferred, supported = self._muxers, remote_muxers
        else:
            preferred, supported = remote_muxers, self._muxers
        for muxer in preferred:
            if muxer in supported:
                return muxer
        raise NegotiationError(
            f"no stream muxer in common: ours {list(self._muxers)}, the remote's "
            f"{list(remote_muxers)}"
        )
