"""libp2p TLS (``/tls/1.0.0``): the TLS 1.3 handshake and record layer as a sans-IO machine.

Spec: libp2p/specs ``tls/tls.md`` and ``connections/inlined-muxer-negotiation.md``.  The engine
is OpenSSL through pyOpenSSL with memory BIOs (``SSL.Connection(context, None)``): bytes in with
``bio_write``, bytes out with ``bio_read``; no socket is involved.

Driving the machine has the same shape as :class:`aiolibp2p.proto.noise.NoiseHandshake`:

* build one :class:`TlsConfig` per host (identity key, certificate key, muxers): it holds the
  self-signed certificate and the two OpenSSL contexts, reused for every connection;
* construct :class:`TlsHandshake` per connection with ``now`` (seconds since the epoch, used to
  check the peer's certificate validity).  A client queues its ClientHello at once;
* write ``data_to_send()`` whenever it is non-empty, and feed received bytes to
  ``receive_data(chunk)`` until it returns :class:`HandshakeComplete`;
* on completion write ``data_to_send()`` (the client's Finished) before any record from
  ``result.transport``; ``encrypt`` what goes out, ``decrypt`` what comes in, starting with
  ``result.leftover`` (records that arrived behind the handshake: still encrypted);
* on end of stream before completion call ``receive_eof()`` (it raises).

Records are fed to OpenSSL one complete record at a time while the handshake runs, so the bytes
behind the last handshake record stay with the machine as ``leftover`` (as with Noise).  A record
header announcing more than ``2**14 + 256`` bytes raises :class:`MessageTooLarge` before the body
is buffered; an unknown record type raises :class:`HandshakeError`.

Checks (each a :class:`~aiolibp2p.core.errors.RemoteProtocolError` subclass; the machine then
moves to :attr:`State.ERROR` and keeps only the fatal alert OpenSSL queued, if any, in
``data_to_send()``): TLS 1.3 only; both sides present a certificate; exactly one certificate;
:func:`~.certificate.verify_certificate` (:class:`CertificateError`); the peer id matches
``expected_peer`` (:class:`PeerIdMismatch`); the server picks an ALPN protocol from the client's
list or aborts (:class:`NegotiationError`); any other OpenSSL failure is a
:class:`HandshakeError`.  The certificate checks run inside OpenSSL's verify callback, so a bad
certificate aborts the handshake with a TLS alert to the peer.

Early muxer negotiation: the client offers its muxers then ``"libp2p"`` in ALPN; the server
picks the first entry of the client's list that it supports.  ``"libp2p"`` (or no ALPN) means
the muxer is negotiated with multistream-select after the handshake (``result.muxer is None``).

Randomness: the certificate key and serial are injected through :class:`TlsConfig`, but OpenSSL
draws the handshake's own randomness (client/server randoms, ephemeral key shares) itself.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from aiolibp2p.core.crypto import PrivateKey, PublicKey
from aiolibp2p.core.errors import (
    CertificateError,
    DecryptError,
    HandshakeError,
    LocalProtocolError,
    MessageTooLarge,
    NegotiationError,
    PeerIdMismatch,
    RemoteProtocolError,
)
from aiolibp2p.core.peer import PeerId

from . import PROTOCOL_ID
from .certificate import (
    ALPN,
    CERTIFICATE_LIFETIME,
    alpn_protocols,
    build_certificate,
    muxer_from_alpn,
    select_alpn,
    verify_certificate,
)

__all__ = [
    "MAX_RECORD_SIZE",
    "PROTOCOL_ID",
    "HandshakeComplete",
    "HandshakeResult",
    "State",
    "TlsConfig",
    "TlsHandshake",
    "TlsTransport",
]

#: Largest TLS 1.3 record body (TLSCiphertext: 2**14 + 256, RFC 8446 section 5.2).
MAX_RECORD_SIZE: Final = 2**14 + 256

_HEADER: Final = 5
#: change_cipher_spec, alert, handshake, application_data.
_RECORD_TYPES: Final = frozenset({20, 21, 22, 23})
#: Per-record expansion of TLS 1.3 with an AEAD: 5-byte header, content type byte, 16-byte tag.
_RECORD_OVERHEAD: Final = 22
_PLAINTEXT_RECORD: Final = 2**14
#: Plaintext read per ``SSL_read`` (one record at most is returned per call).
_READ_SIZE: Final = _PLAINTEXT_RECORD
#: Plaintext or ciphertext handed to OpenSSL per call by the transport.
_SLICE: Final = 64 * 1024
#: SSL_MODE_ENABLE_PARTIAL_WRITE (openssl/ssl.h); pyOpenSSL has no name for it.
_MODE_ENABLE_PARTIAL_WRITE: Final = 0x1
#: Largest single ``bio_read``: bigger buffers cost more in allocation than the calls they save.
_MAX_READ: Final = 256 * 1024 + 512
#: Ciphertext left in OpenSSL's memory BIO before ``encrypt_gather`` reads it out.
_DRAIN_AT: Final = _MAX_READ - 512

Buffer: TypeAlias = bytes | bytearray | memoryview


class State(enum.Enum):
    """Where a handshake stands."""

    HANDSHAKE = "handshake"
    COMPLETE = "complete"
    ERROR = "error"


# ------------------------------------------------------------------------------ configuration


class _PeerCheck:
    """Per-connection state the verify callback reads and fills (kept apart from the machine
    so that the OpenSSL connection's app data does not form a reference cycle)."""

    __slots__ = ("error", "expected_peer", "key", "now", "offered")

    def __init__(self, now: float, expected_peer: PeerId | None) -> None:
        self.now = now
        self.expected_peer = expected_peer
        self.key: PublicKey | None = None
        self.error: RemoteProtocolError | None = None
        #: Server: the muxers the client offered in ALPN.
        self.offered: tuple[str, ...] = ()


def _verify_callback(conn: SSL.Connection, cert: Any, errno: int, depth: int, ok: int) -> bool:
    check: _PeerCheck = conn.get_app_data()
    if depth != 0:
        check.error = CertificateError("the peer sent more than one certificate")
        return False
    if check.key is not None:  # OpenSSL may call again for the same leaf
        return True
    try:
        key = verify_certificate(cert.to_cryptography(), now=check.now)
        peer = PeerId.from_public_key(key)
        if check.expected_peer is not None and peer != check.expected_peer:
            raise PeerIdMismatch(f"expected peer {check.expected_peer}, the remote proved {peer}")
    except RemoteProtocolError as exc:
        check.error = exc
        return False
    check.key = key
    return True


class TlsConfig:
    """One host's libp2p TLS setup: its certificate and the client and server OpenSSL contexts.

    ``identity`` is the host key; ``cert_key`` a fresh ECDSA key (P-256) that signs the
    certificate; ``now`` and ``serial`` go to :func:`~.certificate.build_certificate`; ``muxers``
    are our stream muxers in order of preference (offered in ALPN before ``"libp2p"``; empty: no
    early negotiation).  Build it once and reuse it: an OpenSSL context is costly to make and
    immutable once a connection uses it.  ``certificate`` replaces the one built here (a
    certificate made earlier for ``cert_key``, or a deliberately bad one in tests).
    """

    __slots__ = ("certificate", "client_context", "identity", "muxers", "server_context")

    def __init__(
        self,
        identity: PrivateKey,
        cert_key: ec.EllipticCurvePrivateKey,
        *,
        now: float,
        serial: int,
        muxers: Sequence[str] = (),
        lifetime: float = CERTIFICATE_LIFETIME,
        certificate: x509.Certificate | None = None,
    ) -> None:
        if isinstance(muxers, (str, bytes)):
            raise LocalProtocolError("muxers must be a sequence of protocol id strings")
        protocols = alpn_protocols(muxers)
        self.identity = identity
        self.muxers: tuple[str, ...] = tuple(protocols[:-1])
        if certificate is None:
            certificate = build_certificate(
                identity, cert_key, now=now, serial=serial, lifetime=lifetime
            )
        elif not isinstance(certificate, x509.Certificate):
            raise LocalProtocolError("certificate must be a cryptography x509.Certificate")
        self.certificate = certificate
        self.client_context = self._context(cert_key, server=False)
        self.client_context.set_alpn_protos([p.encode("utf-8") for p in protocols])
        self.server_context = self._context(cert_key, server=True)
        self.server_context.set_alpn_select_callback(self._select_alpn)

    def _context(self, cert_key: ec.EllipticCurvePrivateKey, *, server: bool) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        try:
            ctx.use_certificate(self.certificate)
            ctx.use_privatekey(cert_key)
            ctx.check_privatekey()
        except SSL.Error:
            raise LocalProtocolError("the certificate does not belong to cert_key") from None
        mode = SSL.VERIFY_PEER
        if server:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_verify(mode, _verify_callback)
        ctx.set_options(SSL.OP_NO_TICKET)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)  # idle connections keep no record buffers
        # The write BIO is memory: one SSL_write may seal a whole slice rather than one record
        # per call (pyOpenSSL enables partial writes; clear_mode exists from pyOpenSSL 25.3).
        clear_mode = getattr(ctx, "clear_mode", None)
        if clear_mode is not None:
            clear_mode(_MODE_ENABLE_PARTIAL_WRITE)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        return ctx

    def _select_alpn(self, conn: SSL.Connection, offered: list[bytes]) -> bytes:
        check: _PeerCheck = conn.get_app_data()
        names = [p.decode("utf-8", "replace") for p in offered[:64]]
        check.offered = tuple(name for name in names if name != ALPN)
        choice = select_alpn(offered, self.muxers)
        if choice is None:
            shown = [p.decode("utf-8", "replace") for p in offered]
            raise NegotiationError(f"no ALPN protocol in common: the client offered {shown}")
        return choice.encode("utf-8")


# ------------------------------------------------------------------------------ transport


class TlsTransport:
    """The TLS record layer of a finished handshake: ``encrypt``/``decrypt`` whole buffers.

    OpenSSL seals plaintext into records of at most 16 KiB; each call hands over or drains all
    bytes at once.  Protocol messages OpenSSL queues while decrypting (a KeyUpdate answer) leave
    with the next ``encrypt``.
    """

    __slots__ = ("_eof", "_ssl")

    def __init__(self, ssl: SSL.Connection) -> None:
        self._ssl = ssl
        self._eof = False

    def _drain(self, hint: int) -> bytes:
        ssl = self._ssl
        size = min(max(hint, 4096), _MAX_READ)
        try:
            out = ssl.bio_read(size)
        except SSL.WantReadError:
            return b""
        if len(out) < size:
            return out
        chunks = [out]
        while True:
            try:
                chunk = ssl.bio_read(size)
            except SSL.WantReadError:
                break
            chunks.append(chunk)
            if len(chunk) < size:
                break
        return b"".join(chunks)

    def encrypt(self, data: Buffer) -> bytes:
        """Seal ``data`` into TLS records and return them (``b""`` for ``b""``)."""
        if not len(data):
            return b""
        return self.encrypt_gather((data,))

    def encrypt_many(self, chunks: Sequence[Buffer]) -> bytes:
        """Seal the chunks one after another in one output buffer."""
        return self.encrypt_gather(chunks)

    def encrypt_gather(self, parts: Sequence[Buffer]) -> bytes:
        """Seal the concatenation of ``parts`` without joining them first.

        Parts under one record's worth of plaintext are gathered (a muxer's frame headers);
        a larger part is sealed where it lies in whole records, after topping the gathered
        bytes up to a whole record from its start, and its tail is gathered: every record but
        the last is full, as with ``encrypt(b"".join(parts))``.  The records are
        read out of OpenSSL's memory buffer in pieces of up to ``_MAX_READ`` (a buffer that
        grows larger makes ``SSL_write`` slow: the buffer is reallocated as it grows).
        """
        if self._eof:
            raise LocalProtocolError("the TLS session is closed")
        send = self._ssl.send
        small = bytearray()
        out: list[bytes] = []
        queued = 0  # ciphertext bytes in OpenSSL's memory BIO
        try:
            for part in parts:
                length = len(part)
                if length < _PLAINTEXT_RECORD:
                    small += part
                    if len(small) < _SLICE:
                        continue
                    queued += _seal_all(send, small)
                    small = bytearray()
                else:
                    view = memoryview(part)
                    start = 0
                    if small:
                        start = -len(small) % _PLAINTEXT_RECORD
                        small += view[:start]
                        queued += _seal_all(send, small)
                        small = bytearray()
                    # Whole records in place; the tail waits for what follows.
                    stop = length - (length - start) % _PLAINTEXT_RECORD
                    queued += _seal_all(send, view[start:stop])
                    small += view[stop:]
                if queued >= _DRAIN_AT:
                    out.append(self._drain(queued + 512))
                    queued = 0
            if small:
                queued += _seal_all(send, small)
        except SSL.Error as exc:
            raise LocalProtocolError(f"TLS encryption failed: {_reason(exc)}") from None
        if queued:
            out.append(self._drain(queued + 512))
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def decrypt(self, data: Buffer) -> bytes:
        """Open every complete record of the buffered bytes followed by ``data``; return the
        plaintext and keep an incomplete last record (at most one) in OpenSSL's buffer.

        After the peer's ``close_notify`` the rest is ignored (``eof`` is then true).  Raises
        :class:`~aiolibp2p.core.errors.DecryptError` for a record that fails authentication, a
        fatal alert or any other TLS error; the transport is then unusable.
        """
        if self._eof:
            return b""
        ssl = self._ssl
        pieces: list[bytes] = []
        recv = ssl.recv
        view = memoryview(data)
        length = len(view)
        start = 0
        try:
            while True:
                # Feed at most _SLICE bytes at a time so OpenSSL's memory BIO stays small.
                if start < length:
                    ssl.bio_write(view[start : start + _SLICE])
                    start += _SLICE
                try:
                    while True:
                        pieces.append(recv(_READ_SIZE))
                except SSL.WantReadError:
                    if start >= length:
                        break
        except SSL.ZeroReturnError:
            self._eof = True
        except SSL.Error as exc:
            self._eof = True
            raise DecryptError(f"TLS record layer error: {_reason(exc)}") from None
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def close(self) -> bytes:
        """Queue our ``close_notify`` alert and return the bytes to send (``b""`` if closed)."""
        try:
            self._ssl.shutdown()
        except SSL.Error:
            return b""
        return self._drain(512)

    @property
    def eof(self) -> bool:
        """Whether the peer sent ``close_notify`` (or the session failed)."""
        return self._eof

    @property
    def cipher(self) -> str | None:
        """The negotiated TLS 1.3 cipher suite name."""
        return self._ssl.get_cipher_name()

    def __repr__(self) -> str:
        return f"<TlsTransport {self.cipher} eof={self._eof}>"


# ------------------------------------------------------------------------------ handshake


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """What a successful libp2p TLS handshake established."""

    #: The authenticated remote peer (derived from ``remote_public_key``).
    remote_peer: PeerId
    #: The remote host key from the certificate's libp2p Public Key Extension.
    remote_public_key: PublicKey
    #: The muxer chosen through ALPN, or ``None`` (negotiate with multistream-select).
    muxer: str | None
    #: Server: the muxers the client offered (ALPN before ``"libp2p"``); client: the muxer
    #: the server chose, if any.
    remote_muxers: tuple[str, ...]
    #: Encrypts and decrypts application data from now on.
    transport: TlsTransport
    #: Bytes received behind the last handshake record: still encrypted, for
    #: ``transport.decrypt``.
    leftover: bytes


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The handshake succeeded (same shape as the Noise event)."""

    result: HandshakeResult


def _seal_all(send: Callable[[Buffer], int], data: Buffer) -> int:
    """Hand ``data`` to ``SSL_write`` (in slices, so OpenSSL's buffer grows by one slice's
    records per call); returns the ciphertext bytes that adds (TLS 1.3: 22 per record)."""
    view = memoryview(data)
    length = len(view)
    start = 0
    while start < length:
        start += send(view[start : start + _SLICE])
    return length + -(-length // _PLAINTEXT_RECORD) * _RECORD_OVERHEAD


def _reason(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], list):
        parts = [str(entry[-1]) for entry in args[0] if isinstance(entry, tuple) and entry]
        if parts:
            return "; ".join(parts)
    return str(exc) or type(exc).__name__


class TlsHandshake:
    """One side of a libp2p TLS handshake (see the module docstring for how to drive it).

    ``initiator`` is the TLS client (the dialer); ``config`` the host's :class:`TlsConfig`;
    ``now`` the time to check the peer's certificate against; ``expected_peer`` the peer we
    dialled, if known.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        config: TlsConfig,
        now: float,
        expected_peer: PeerId | None = None,
    ) -> None:
        if not isinstance(config, TlsConfig):
            raise LocalProtocolError(f"config must be a TlsConfig, not {type(config).__name__}")
        if expected_peer is not None and not isinstance(expected_peer, PeerId):
            raise LocalProtocolError(
                f"expected_peer must be a PeerId or None, not {type(expected_peer).__name__}"
            )
        self._initiator = bool(initiator)
        self._config = config
        self._check = _PeerCheck(float(now), expected_peer)
        context = config.client_context if self._initiator else config.server_context
        ssl: SSL.Connection | None = SSL.Connection(context, None)
        assert ssl is not None
        ssl.set_app_data(self._check)
        self._ssl = ssl
        self._buffer = bytearray()
        self._outbound = bytearray()
        self._result: HandshakeResult | None = None
        self._state = State.HANDSHAKE
        if self._initiator:
            ssl.set_connect_state()
            self._step()
        else:
            ssl.set_accept_state()

    # -- public API ------------------------------------------------------------------------

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def state(self) -> State:
        return self._state

    @property
    def complete(self) -> bool:
        return self._state is State.COMPLETE

    @property
    def result(self) -> HandshakeResult:
        """The outcome; :class:`LocalProtocolError` before the handshake is complete."""
        if self._result is None:
            raise LocalProtocolError(f"the TLS handshake is not complete ({self._state.value})")
        return self._result

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now; ``b""`` if none.  Each call drains them."""
        data = bytes(self._outbound)
        self._outbound.clear()
        return data

    def receive_data(self, data: Buffer) -> list[HandshakeComplete]:
        """Feed bytes received from the peer; return ``[HandshakeComplete]`` once done.

        Raises a :class:`RemoteProtocolError` subclass if the peer broke the protocol (see the
        module docstring) and :class:`LocalProtocolError` once the handshake is complete or
        failed.  An error is final.
        """
        if self._state is State.COMPLETE:
            raise LocalProtocolError(
                "receive_data: the TLS handshake is complete; "
                "pass further bytes to result.transport.decrypt()"
            )
        if self._state is State.ERROR:
            raise LocalProtocolError("receive_data: the TLS handshake failed")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"data must be bytes, not {type(data).__name__}")
        try:
            self._buffer += data
            return self._process()
        except BaseException:
            self._fail()
            raise

    def receive_eof(self) -> NoReturn:
        """The peer closed its side before the handshake finished: always raises."""
        if self._state is not State.HANDSHAKE:
            raise LocalProtocolError(f"receive_eof: the TLS handshake is {self._state.value}")
        self._fail()
        raise HandshakeError("the connection ended during the TLS handshake")

    def __repr__(self) -> str:
        role = "client" if self._initiator else "server"
        return f"<TlsHandshake {role} {self._state.value}>"

    # -- machinery -------------------------------------------------------------------------

    def _fail(self) -> None:
        if self._state is State.ERROR:
            return
        self._state = State.ERROR
        self._buffer = bytearray()
        self._result = None
        self._outbound.clear()
        # Keep the fatal alert OpenSSL queued so the driver may send it before closing.
        with contextlib.suppress(SSL.Error):
            self._outbound += self._ssl.bio_read(4096)

    def _flush(self) -> None:
        ssl = self._ssl
        while True:
            try:
                chunk = ssl.bio_read(65536)
            except SSL.WantReadError:
                return
            self._outbound += chunk

    def _step(self) -> bool:
        """Run the handshake as far as it goes; True once it completed."""
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return False
        except RemoteProtocolError:
            raise  # raised by our ALPN callback and re-raised by pyOpenSSL
        except SSL.Error as exc:
            if self._check.error is not None:
                raise self._check.error from None
            reason = _reason(exc)
            if "no application protocol" in reason:
                raise NegotiationError(
                    f"ALPN: the peer found no protocol in common ({reason})"
                ) from None
            raise HandshakeError(f"TLS handshake failed: {reason}") from None
        self._flush()
        return True

    def _process(self) -> list[HandshakeComplete]:
        buf = self._buffer
        while len(buf) >= _HEADER:
            kind = buf[0]
            if kind not in _RECORD_TYPES:
                raise HandshakeError(f"not a TLS record (content type {kind})")
            length = (buf[3] << 8) | buf[4]
            if length > MAX_RECORD_SIZE:
                raise MessageTooLarge(length, MAX_RECORD_SIZE)
            end = _HEADER + length
            if len(buf) < end:
                break
            self._ssl.bio_write(bytes(buf[:end]))
            del buf[:end]
            if self._step():
                return [HandshakeComplete(self._finish())]
        return []

    def _finish(self) -> HandshakeResult:
        ssl = self._ssl
        check = self._check
        if check.error is not None:  # pragma: no cover - OpenSSL aborts first
            raise check.error
        if ssl.get_protocol_version_name() != "TLSv1.3":
            raise HandshakeError(f"negotiated {ssl.get_protocol_version_name()}, not TLS 1.3")
        chain = ssl.get_peer_cert_chain(as_cryptography=True) or []
        # A client's chain includes the leaf; a server's does not.
        count = len(chain) + (0 if self._initiator else 1)
        if count != 1:
            raise CertificateError(f"the peer sent {count} certificates, not exactly one")
        key = check.key
        if key is None:
            # Only reachable if OpenSSL skipped the callback: verify here.
            peer_cert = ssl.get_peer_certificate(as_cryptography=True)
            if peer_cert is None:
                raise CertificateError("the peer sent no certificate")
            key = verify_certificate(peer_cert, now=check.now)
        peer = PeerId.from_public_key(key)
        if check.expected_peer is not None and peer != check.expected_peer:
            raise PeerIdMismatch(f"expected peer {check.expected_peer}, the remote proved {peer}")
        selected = ssl.get_alpn_proto_negotiated()
        muxer = muxer_from_alpn(selected)
        if muxer is not None and muxer not in self._config.muxers:
            raise NegotiationError(f"ALPN selected {muxer!r}, which we did not offer")
        if self._initiator:
            remote_muxers: tuple[str, ...] = (muxer,) if muxer is not None else ()
        else:
            remote_muxers = check.offered
        leftover = bytes(self._buffer)
        self._buffer = bytearray()
        self._state = State.COMPLETE
        self._result = HandshakeResult(
            remote_peer=peer,
            remote_public_key=key,
            muxer=muxer,
            remote_muxers=remote_muxers,
            transport=TlsTransport(ssl),
            leftover=leftover,
        )
        return self._result
