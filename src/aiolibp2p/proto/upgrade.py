"""Connection upgrade as one sans-IO machine: raw bytes -> multistream -> security -> muxer choice.

The chain (libp2p/specs ``connections/README.md``)::

    multistream "/noise"  ->  Noise XX  ->  [multistream "<muxer>"]  ->  muxer

Round trips are pipelined wherever the specs allow:

* the dialer proposes the security protocol lazily: the multistream header, the ``/noise``
  proposal and Noise message 1 leave in one write;
* the muxer is negotiated inside the Noise handshake (``stream_muxers`` extension) when both sides
  list muxers, so the multistream muxer round trip disappears;
* otherwise the dialer proposes its muxer right behind Noise message 3 (lazily when it has only
  one muxer), and the listener answers behind its own handshake completion.

Output is pulled: :meth:`Upgrader.data_to_send` returns the bytes for the socket (plaintext
multistream, Noise frames).  When the upgrade is done, :class:`UpgradeComplete` carries the Noise
transport, the chosen muxer and the plaintext that arrived behind the negotiation (the first muxer
bytes).  Keys are injected (``static_key``, ``ephemeral_key``): the machine draws no randomness.
A host passes one :class:`~aiolibp2p.proto.noise.NoiseStaticKey` (and one
:class:`~aiolibp2p.proto.noise.VerifiedKeys`) to all its upgraders; the ephemeral key is fresh.

Security protocols: ``/noise`` and ``/tls/1.0.0`` (:mod:`aiolibp2p.proto.tls`; the host's
:class:`~aiolibp2p.proto.tls.TlsConfig` and ``now`` are passed in).  A listener accepts every
protocol in ``security``; a dialer proposes ``security[0]`` lazily (its handshake's first flight
rides with the proposal), so the other entries matter only when listening.  With TLS the muxer
is negotiated through ALPN (muxer ids before ``"libp2p"``) instead of the Noise extension.
End of stream before completion goes to :meth:`Upgrader.receive_eof`, which raises a typed
remote error (a truncated handshake).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from aiolibp2p.core.crypto import PrivateKey, PublicKey
from aiolibp2p.core.errors import LocalProtocolError, NegotiationError
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.multistream import Dialer, Listener, NegotiationComplete
from aiolibp2p.proto.noise import (
    HandshakeComplete,
    NoiseHandshake,
    NoiseStaticKey,
    NoiseTransport,
    VerifiedKeys,
)

if TYPE_CHECKING:
    from aiolibp2p.proto.tls import HandshakeComplete as TlsHandshakeComplete
    from aiolibp2p.proto.tls import TlsConfig, TlsHandshake, TlsTransport

__all__ = [
    "NOISE_PROTOCOL_ID",
    "TLS_PROTOCOL_ID",
    "SUPPORTED_SECURITY",
    "SecureTransport",
    "Upgrader",
    "UpgradeComplete",
    "UpgradeState",
]

NOISE_PROTOCOL_ID = "/noise"
TLS_PROTOCOL_ID = "/tls/1.0.0"
SUPPORTED_SECURITY = (NOISE_PROTOCOL_ID, TLS_PROTOCOL_ID)

#: The record layer of a finished handshake: ``encrypt``/``decrypt`` whole buffers.
SecureTransport: TypeAlias = "NoiseTransport | TlsTransport"
_Complete: TypeAlias = "HandshakeComplete | TlsHandshakeComplete"


class UpgradeState(enum.Enum):
    SECURITY_NEGOTIATION = "security-negotiation"
    HANDSHAKE = "handshake"
    MUXER_NEGOTIATION = "muxer-negotiation"
    DONE = "done"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class UpgradeComplete:
    """The connection is secured and its muxer chosen."""

    remote_peer: PeerId
    remote_public_key: PublicKey
    security: str
    muxer: str
    #: True when the muxer came from the Noise extension or TLS ALPN (no multistream round trip).
    early_muxer: bool
    transport: SecureTransport
    #: Decrypted bytes that followed the negotiation: the first bytes for the muxer.
    leftover: bytes


class Upgrader:
    """Upgrade one raw connection, as dialer (``initiator=True``) or listener."""

    def __init__(
        self,
        *,
        initiator: bool,
        identity_key: PrivateKey,
        muxers: Sequence[str],
        static_key: bytes | NoiseStaticKey,
        ephemeral_key: bytes,
        expected_peer: PeerId | None = None,
        security: Sequence[str] = (NOISE_PROTOCOL_ID,),
        verified_keys: VerifiedKeys | None = None,
        tls_config: TlsConfig | Callable[[], TlsConfig] | None = None,
        now: float | None = None,
    ) -> None:
        if not muxers:
            raise LocalProtocolError("at least one muxer is required")
        security = tuple(security)
        if (
            not security
            or len(set(security)) != len(security)
            or not set(security) <= set(SUPPORTED_SECURITY)
        ):
            raise LocalProtocolError(
                f"security must list protocols from {SUPPORTED_SECURITY}, got {security!r}"
            )
        if initiator:
            security = security[:1]  # proposed lazily: the others only matter when listening
        if TLS_PROTOCOL_ID in security and (tls_config is None or now is None):
            raise LocalProtocolError(f"{TLS_PROTOCOL_ID} needs tls_config and now")
        self._tls_config = tls_config
        self._now = now
        self._expected_peer = expected_peer
        self._security_id = security[0]
        self.initiator = initiator
        self._muxers = tuple(muxers)
        self._state = UpgradeState.SECURITY_NEGOTIATION
        #: The security protocol's multistream exchange is over (for a lazy dialer: the
        #: listener's header and echo have been consumed).
        self._mss_done = False
        self._out = bytearray()
        self._noise: NoiseHandshake | None = None
        if NOISE_PROTOCOL_ID in security:
            self._noise = NoiseHandshake(
                initiator=initiator,
                identity_key=identity_key,
                static_key=static_key,
                ephemeral_key=ephemeral_key,
                muxers=self._muxers,
                expected_peer=expected_peer,
                verified_keys=verified_keys,
            )
        #: The handshake machine of the chosen security protocol.
        self._secure: NoiseHandshake | TlsHandshake | None = None
        self._transport: SecureTransport | None = None
        self._handshake: _Complete | None = None
        self._muxer_mss: Dialer | Listener | None = None
        self._security_mss: Dialer | Listener
        if initiator:
            # Lazy proposal: header + protocol id + the handshake's first flight in one write.
            self._security_mss = Dialer([self._security_id], lazy=True)
            self._out += self._security_mss.data_to_send()
            secure = self._start_security(self._security_id)
            self._out += secure.data_to_send()
        else:
            self._security_mss = Listener(frozenset(security).__contains__)
            self._out += self._security_mss.data_to_send()

    @property
    def state(self) -> UpgradeState:
        return self._state

    def data_to_send(self) -> bytes:
        """Bytes for the socket, in order."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> UpgradeComplete | None:
        """Feed socket bytes; returns :class:`UpgradeComplete` once, when the upgrade is done.

        Raises a :class:`~aiolibp2p.core.errors.RemoteProtocolError` subclass when the remote
        breaks a rule (the machine is then unusable).
        """
        if self._state is UpgradeState.DONE:
            raise LocalProtocolError("upgrade already complete: feed the muxer instead")
        if self._state is UpgradeState.ERROR:
            raise LocalProtocolError("upgrade already failed")
        try:
            return self._receive(bytes(data))
        except BaseException:
            self._state = UpgradeState.ERROR
            raise

    def receive_eof(self) -> NoReturn:
        """The remote closed its side before the upgrade finished: always raises.

        :class:`~aiolibp2p.core.errors.HandshakeError` during the Noise handshake,
        :class:`~aiolibp2p.core.errors.NegotiationError` during a multistream negotiation (both
        remote errors; the machine is then unusable); :class:`LocalProtocolError` once the
        upgrade is complete or failed.
        """
        if self._state is UpgradeState.DONE:
            raise LocalProtocolError("upgrade already complete: end of stream is the muxer's")
        if self._state is UpgradeState.ERROR:
            raise LocalProtocolError("upgrade already failed")
        state = self._state
        self._state = UpgradeState.ERROR
        if state is UpgradeState.HANDSHAKE and self._secure is not None:
            self._secure.receive_eof()  # raises HandshakeError
        raise NegotiationError(f"the connection ended during the upgrade ({state.value})")

    # ------------------------------------------------------------------------------- internals

    def _start_security(self, protocol: str) -> NoiseHandshake | TlsHandshake:
        self._security_id = protocol
        secure: NoiseHandshake | TlsHandshake
        if protocol == TLS_PROTOCOL_ID:
            from aiolibp2p.proto.tls import TlsHandshake

            assert self._tls_config is not None and self._now is not None
            config = self._tls_config
            if callable(config):  # built on first use: a host that never speaks TLS never pays
                config = self._tls_config = config()
            secure = TlsHandshake(
                initiator=self.initiator,
                config=config,
                now=self._now,
                expected_peer=self._expected_peer,
            )
        else:
            assert self._noise is not None
            secure = self._noise
        self._secure = secure
        return secure

    def _receive(self, data: bytes) -> UpgradeComplete | None:
        if self._state is UpgradeState.SECURITY_NEGOTIATION:
            data = self._security_negotiation(data)
            if self._state is UpgradeState.SECURITY_NEGOTIATION:
                return None
        if self._state is UpgradeState.HANDSHAKE:
            if self.initiator and isinstance(self._security_mss, Dialer) and not self._mss_done:
                # The listener's multistream header and "/noise" echo precede Noise message 2.
                data = self._finish_lazy_security(data)
                if not self._mss_done:
                    return None
            plaintext = self._handshake_step(data)
            if self._state is UpgradeState.HANDSHAKE:
                return None
            data = plaintext
        else:
            data = self._decrypt(data)
        if self._state is UpgradeState.MUXER_NEGOTIATION:
            return self._muxer_negotiation(data)
        raise AssertionError(self._state)  # pragma: no cover

    def _security_negotiation(self, data: bytes) -> bytes:
        if self.initiator:
            # Lazy dialer: the protocol counts as selected already; Noise starts at once.
            self._state = UpgradeState.HANDSHAKE
            return data
        for event in self._security_mss.receive_data(data):
            if isinstance(event, NegotiationComplete):
                self._out += self._security_mss.data_to_send()
                self._mss_done = True
                self._start_security(event.protocol)
                self._state = UpgradeState.HANDSHAKE
                return event.leftover
        self._out += self._security_mss.data_to_send()
        return b""

    def _finish_lazy_security(self, data: bytes) -> bytes:
        for event in self._security_mss.receive_data(data):
            if isinstance(event, NegotiationComplete):
                self._mss_done = True
                return event.leftover
        return b""

    def _handshake_step(self, data: bytes) -> bytes:
        if not data:
            return b""
        secure = self._secure
        assert secure is not None
        for event in secure.receive_data(data):
            if isinstance(event, HandshakeComplete):
                self._handshake = event
            else:
                from aiolibp2p.proto.tls import HandshakeComplete as TlsHandshakeComplete

                if isinstance(event, TlsHandshakeComplete):
                    self._handshake = event
        self._out += secure.data_to_send()
        if self._handshake is None:
            return b""
        result = self._handshake.result
        self._transport = result.transport
        self._state = UpgradeState.MUXER_NEGOTIATION
        if result.muxer is None:
            self._start_muxer_negotiation()
        return self._transport.decrypt(result.leftover) if result.leftover else b""

    def _start_muxer_negotiation(self) -> None:
        assert self._transport is not None
        if self.initiator:
            self._muxer_mss = Dialer(list(self._muxers), lazy=len(self._muxers) == 1)
        else:
            muxers = frozenset(self._muxers)
            self._muxer_mss = Listener(muxers.__contains__)
        self._flush_muxer_mss()

    def _flush_muxer_mss(self) -> None:
        assert self._transport is not None and self._muxer_mss is not None
        out = self._muxer_mss.data_to_send()
        if out:
            self._out += self._transport.encrypt(out)

    def _decrypt(self, data: bytes) -> bytes:
        assert self._transport is not None
        return self._transport.decrypt(data)

    def _muxer_negotiation(self, plaintext: bytes) -> UpgradeComplete | None:
        assert self._handshake is not None and self._transport is not None
        result = self._handshake.result
        if result.muxer is not None:
            return self._complete(result.muxer, early=True, leftover=plaintext)
        assert self._muxer_mss is not None
        if not plaintext:
            return None
        events = self._muxer_mss.receive_data(plaintext)
        self._flush_muxer_mss()
        for event in events:
            if isinstance(event, NegotiationComplete):
                return self._complete(event.protocol, early=False, leftover=event.leftover)
        return None

    def _complete(self, muxer: str, *, early: bool, leftover: bytes) -> UpgradeComplete:
        assert self._handshake is not None and self._transport is not None
        if muxer not in self._muxers:
            raise NegotiationError(f"remote chose muxer {muxer!r} that we did not offer")
        self._state = UpgradeState.DONE
        result = self._handshake.result
        return UpgradeComplete(
            remote_peer=result.remote_peer,
            remote_public_key=result.remote_public_key,
            security=self._security_id,
            muxer=muxer,
            early_muxer=early,
            transport=self._transport,
            leftover=leftover,
        )
