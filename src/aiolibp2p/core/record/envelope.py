"""Signed envelopes (libp2p/specs ``RFC/0002-signed-envelopes.md``).

An envelope carries a payload, a type hint for it, the signer's public key and a signature over
``uvarint(len(domain)) || domain || uvarint(len(payload_type)) || payload_type ||
uvarint(len(payload)) || payload``.  The *domain* string is not on the wire: the receiver supplies
it, so a signature made for one purpose never verifies for another.

The protobuf field numbers are those of go-libp2p, js-libp2p and rust-libp2p (``signature = 5``;
the RFC text says 4).  An :class:`Envelope` is only known to be valid when it comes from
:meth:`Envelope.seal` or :meth:`Envelope.open`; constructing one directly checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError as _PbDecodeError

from aiolibp2p._accel import varint
from aiolibp2p.core.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from aiolibp2p.core.errors import EnvelopeError, Libp2pError, LocalProtocolError
from aiolibp2p.core.pb import envelope_pb2

__all__ = ["DEFAULT_MAX_ENVELOPE_SIZE", "Envelope"]

#: Largest serialized envelope :meth:`Envelope.open` accepts unless told otherwise.
DEFAULT_MAX_ENVELOPE_SIZE = 64 * 1024


def _domain_bytes(domain: str) -> bytes:
    if not isinstance(domain, str):
        raise LocalProtocolError(f"envelope domain must be a str, not {type(domain).__name__}")
    if not domain:
        raise LocalProtocolError("envelope domain must not be empty")
    try:
        return domain.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"envelope domain is not valid UTF-8: {exc}") from None


def _bytes_arg(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise LocalProtocolError(f"{name} must be bytes, not {type(value).__name__}")


def _unsigned(domain: bytes, payload_type: bytes, payload: bytes) -> bytes:
    """The bytes that are signed: each field prefixed with its length as a uvarint."""
    enc = varint.encode_uvarint
    return b"".join(
        (enc(len(domain)), domain, enc(len(payload_type)), payload_type, enc(len(payload)), payload)
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    """A payload signed by a libp2p key, in the context of a domain string."""

    public_key: PublicKey
    payload_type: bytes
    payload: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, PublicKey):
            raise LocalProtocolError(
                f"public_key must be a PublicKey, not {type(self.public_key).__name__}"
            )
        for name in ("payload_type", "payload", "signature"):
            object.__setattr__(self, name, _bytes_arg(name, getattr(self, name)))

    @classmethod
    def seal(
        cls, private_key: PrivateKey, domain: str, payload_type: bytes, payload: bytes
    ) -> Envelope:
        """Sign ``payload`` for ``domain`` with ``private_key``.

        Raises :class:`LocalProtocolError` for an empty or non-``str`` domain or an empty
        payload type.
        """
        if not isinstance(private_key, PrivateKey):
            raise LocalProtocolError(
                f"private_key must be a PrivateKey, not {type(private_key).__name__}"
            )
        domain_b = _domain_bytes(domain)
        payload_type = _bytes_arg("payload_type", payload_type)
        payload = _bytes_arg("payload", payload)
        if not payload_type:
            raise LocalProtocolError("envelope payload type must not be empty")
        signature = private_key.sign(_unsigned(domain_b, payload_type, payload))
        return cls(private_key.public_key(), payload_type, payload, signature)

    def to_bytes(self) -> bytes:
        """The serialized ``Envelope`` protobuf message."""
        msg = envelope_pb2.Envelope(
            public_key=self.public_key.to_protobuf(),
            payload_type=self.payload_type,
            payload=self.payload,
            signature=self.signature,
        )
        return msg.SerializeToString(deterministic=True)

    @classmethod
    def open(
        cls,
        data: bytes,
        domain: str,
        *,
        expected_payload_type: bytes | None = None,
        max_size: int = DEFAULT_MAX_ENVELOPE_SIZE,
    ) -> Envelope:
        """Decode a serialized envelope and verify its signature for ``domain``.

        Raises :class:`EnvelopeError` if ``data`` is longer than ``max_size`` (checked before
        decoding), malformed, carries an invalid public key, has a payload type other than
        ``expected_payload_type`` (when given), or if the signature does not verify (which is
        also what a different domain looks like).  Raises :class:`LocalProtocolError` for an
        empty domain.
        """
        domain_b = _domain_bytes(domain)
        if not isinstance(max_size, int) or max_size < 0:
            raise LocalProtocolError(f"max_size must be a non-negative int, got {max_size!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"envelope data must be bytes, not {type(data).__name__}")
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > max_size:
            raise EnvelopeError(f"envelope of {size} bytes exceeds the limit of {max_size}")
        data = bytes(data)
        try:
            msg = envelope_pb2.Envelope.FromString(data)
        except _PbDecodeError as exc:
            raise EnvelopeError(f"malformed envelope: {exc}") from exc
        try:
            public_key = public_key_from_protobuf(msg.public_key)
        except Libp2pError as exc:
            raise EnvelopeError(f"envelope carries an invalid public key: {exc}") from exc
        if expected_payload_type is not None and msg.payload_type != expected_payload_type:
            raise EnvelopeError(
                f"envelope payload type {msg.payload_type.hex()} is not the expected "
                f"{bytes(expected_payload_type).hex()}"
            )
        unsigned = _unsigned(domain_b, msg.payload_type, msg.payload)
        if not public_key.verify(unsigned, msg.signature):
            raise EnvelopeError("envelope signature is invalid (or made for another domain)")
        return cls(public_key, msg.payload_type, msg.payload, msg.signature)

    def __repr__(self) -> str:
        return (
            f"Envelope(public_key={self.public_key!r}, payload_type={self.payload_type.hex()}, "
            f"payload=<{len(self.payload)} bytes>, signature=<{len(self.signature)} bytes>)"
        )
