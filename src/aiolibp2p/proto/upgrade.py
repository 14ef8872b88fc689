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
End of stream before completion goes to :meth:`Upgrader.receive_eof`, which raises a typed
remote error (a truncated handshake).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from aiolibp2p.core.crypto import PrivateKey, PublicKey
from aiolibp2p.core.errors import LocalProtocolError, NegotiationError
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.multistream import Dialer, Listener, NegotiationComplete
from aiolibp2p.proto.noise import HandshakeComplete, NoiseHandshake, NoiseTransport

__all__ = ["NOISE_PROTOCOL_ID", "Upgrader", "UpgradeComplete", "UpgradeState"]

NOISE_PROTOCOL_ID = "/noise"


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
    #: True when the muxer came from the Noise extension (no multistream round trip).
    early_muxer: bool
    transport: NoiseTransport
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
        static_key: bytes,
        ephemeral_key: bytes,
        expected_peer: PeerId | None = None,
        security: Sequence[str] = (NOISE_PROTOCOL_ID,),
    ) -> None:
        if not muxers:
            raise LocalProtocolError("at least one muxer is required")
        if tuple(security) != (NOISE_PROTOCOL_ID,):
            raise LocalProtocolError(f"only {NOISE_PROTOCOL_ID} is supported, got {security!r}")
        self.initiator = initiator
        self._muxers = tuple(muxers)
        self._state = UpgradeState.SECURITY_NEGOTIATION
        #: The security protocol's multistream exchange is over (for a lazy dialer: the
        #: listener's header and echo have been consumed).
        self._mss_done = False
        self._out = bytearray()
        self._noise = NoiseHandshake(
            initiator=initiator,
            identity_key=identity_key,
            static_key=static_key,
            ephemeral_key=ephemeral_key,
            muxers=self._muxers,
            expected_peer=expected_peer,
        )
        self._transport: NoiseTransport | None = None
        self._handshake: HandshakeComplete | None = None
        self._muxer_mss: Dialer | Listener | None = None
        self._security_mss: Dialer | Listener
        if initiator:
            # Lazy proposal: header + "/noise" + Noise message 1 in one write.
            self._security_mss = Dialer([NOISE_PROTOCOL_ID], lazy=True)
            self._out += self._security_mss.data_to_send()
            self._out += self._noise.data_to_send()
        else:
            self._security_mss = Listener(lambda proto: proto == NOISE_PROTOCOL_ID)
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
        if state is UpgradeState.HANDSHAKE:
            self._noise.receive_eof()  # raises HandshakeError
        raise NegotiationError(f"the connection ended during the upgrade ({state.value})")

    # ------------------------------------------------------------------------------- internals

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
        for event in self._noise.receive_data(data):
            if isinstance(event, HandshakeComplete):
                self._handshake = event
        self._out += self._noise.data_to_send()
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
            security=NOISE_PROTOCOL_ID,
            muxer=muxer,
            early_muxer=early,
            transport=self._transport,
            leftover=leftover,
        )
