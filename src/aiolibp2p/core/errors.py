"""The project's error hierarchy.

Every error the library raises on purpose derives from :class:`Libp2pError`.  The split follows
h11: :class:`LocalProtocolError` means *we* (the caller of the API) misused it;
:class:`RemoteProtocolError` means the *peer* (or the bytes we were handed) broke the spec.
Wire-level codes, where a protocol has them, are attributes (``code``).
"""

from __future__ import annotations

__all__ = [
    "Libp2pError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "DecodeError",
    "VarintError",
    "MessageTooLarge",
    "ConfigError",
    "CryptoError",
    "KeyDecodeError",
    "UnsupportedKeyType",
    "InvalidSignature",
    "PeerIdError",
    "PeerIdMismatch",
    "EnvelopeError",
    "MultiaddrError",
    "NegotiationError",
    "ProtocolNotSupported",
    "HandshakeError",
    "CertificateError",
    "DecryptError",
    "NonceExhausted",
    "StreamResetError",
    "ConnectionClosedError",
    "DialError",
    "HandshakeTimeout",
    "YamuxError",
    "KeepAliveTimeout",
]


class Libp2pError(Exception):
    """Root of every error raised on purpose by aiolibp2p."""


class LocalProtocolError(Libp2pError):
    """We misused an API or asked for something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(Libp2pError):
    """The remote peer, or the bytes we were handed, broke the spec.

    ``code`` carries a protocol-specific wire code when there is one (e.g. a yamux GoAway code).
    """

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DecodeError(RemoteProtocolError):
    """Malformed bytes: a decoder rejected its input."""


class VarintError(DecodeError):
    """An unsigned varint is malformed: too long, non-minimal, or above 2**63 - 1."""


class MessageTooLarge(DecodeError):
    """A length prefix announced more bytes than the caller's limit (raised before buffering)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"message of {length} bytes exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit


class ConfigError(Libp2pError, ValueError):
    """A configuration value is invalid; raised when the configuration is built."""


class CryptoError(Libp2pError):
    """A key or signature operation failed."""


class KeyDecodeError(CryptoError, DecodeError):
    """Serialized key bytes are malformed."""


class UnsupportedKeyType(KeyDecodeError):
    """The key type is unknown or not supported."""


class InvalidSignature(CryptoError, RemoteProtocolError):
    """A signature did not verify."""


class PeerIdError(DecodeError):
    """A peer id (binary multihash or text form) is malformed."""


class PeerIdMismatch(RemoteProtocolError):
    """The peer proved a different identity from the one expected."""


class EnvelopeError(RemoteProtocolError):
    """A signed envelope or the record inside it is invalid (bad signature, domain, type, ...)."""


class MultiaddrError(DecodeError, ValueError):
    """A multiaddr (text or binary) is malformed or lacks a component the caller needs."""


class NegotiationError(RemoteProtocolError):
    """Protocol negotiation (multistream-select) failed."""


class ProtocolNotSupported(NegotiationError):
    """The remote answered ``na`` to every protocol we proposed."""

    def __init__(self, protocols: tuple[str, ...] | list[str]) -> None:
        super().__init__(f"protocols not supported by the remote: {', '.join(protocols)}")
        self.protocols = tuple(protocols)


class HandshakeError(RemoteProtocolError):
    """A security handshake (Noise) message is malformed: wrong length, bad key, failed AEAD."""


class CertificateError(HandshakeError):
    """A libp2p TLS certificate is unacceptable: malformed DER, outside its validity window, a
    bad self-signature, a missing or malformed libp2p Public Key Extension, or a host-key
    signature that does not verify (libp2p/specs ``tls/tls.md``)."""


class DecryptError(RemoteProtocolError):
    """An encrypted transport frame is malformed or failed authentication.

    Also raised when the peer sends past its nonce limit (it was bound to close before).
    """


class NonceExhausted(LocalProtocolError):
    """Our sending cipher used up its nonces (Noise: 2**64 - 1 messages): close the connection.

    Nothing was encrypted by the call that raised this.
    """


class StreamResetError(Libp2pError):
    """The stream was reset (by the remote, by us, or because its connection closed)."""


class ConnectionClosedError(Libp2pError):
    """The connection is closed; no stream can be opened or used on it."""


class DialError(Libp2pError):
    """Connecting to a peer failed on every address; ``errors`` maps each address to its error."""

    def __init__(self, message: str, errors: dict[str, BaseException] | None = None) -> None:
        detail = "; ".join(f"{addr}: {exc!r}" for addr, exc in (errors or {}).items())
        super().__init__(f"{message} ({detail})" if detail else message)
        self.errors = dict(errors or {})


class HandshakeTimeout(RemoteProtocolError):
    """The connection upgrade (security + muxer) did not finish before its deadline.

    A remote error: the peer stalled (or the path to it is dead), like
    :class:`KeepAliveTimeout`.
    """


class YamuxError(RemoteProtocolError):
    """The remote broke the yamux spec.

    ``code`` is the Go Away code the session queued before raising (1: protocol error), or
    ``None`` when no Go Away was sent.
    """


class KeepAliveTimeout(YamuxError):
    """A muxer keep-alive ping went unanswered for too long: the peer or the path is dead."""
