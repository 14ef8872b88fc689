"""noise-libp2p (``/noise``): the Noise XX secure-channel handshake as a sans-IO machine.

:class:`NoiseHandshake` runs one side of the handshake (bytes in with ``receive_data``, bytes
out with ``data_to_send``) and returns :class:`HandshakeComplete` with a
:class:`HandshakeResult`: the authenticated remote peer, the early-negotiated muxer and the
:class:`NoiseTransport` that encrypts and decrypts every later frame.  See
:mod:`aiolibp2p.proto.noise.machine` for the wire format, the checks and how to drive it, and
:mod:`aiolibp2p.proto.noise.core` for the Noise framework core it is built on.
"""

from __future__ import annotations

from .events import Event, HandshakeComplete
from .machine import (
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    STATIC_KEY_SIGNATURE_PREFIX,
    HandshakeResult,
    NoiseHandshake,
    NoiseStaticKey,
    NoiseTransport,
    State,
    VerifiedKeys,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ID",
    "STATIC_KEY_SIGNATURE_PREFIX",
    "Event",
    "HandshakeComplete",
    "HandshakeResult",
    "NoiseHandshake",
    "NoiseStaticKey",
    "NoiseTransport",
    "State",
    "VerifiedKeys",
]
