"""multistream-select 1.0: protocol negotiation as sans-IO state machines.

:class:`Dialer` (initiator) and :class:`Listener` (responder) take received bytes in
(``receive_data``), return events, and queue bytes for the peer (``data_to_send``).  See
:mod:`aiolibp2p.proto.multistream.machine` for the wire format, limits and how to drive them.
"""

from __future__ import annotations

from .events import Event, NegotiationComplete, ProtocolRefused, ProtocolsListed
from .machine import (
    DEFAULT_MAX_NA_ROUNDS,
    MAX_LS_PROTOCOLS,
    MAX_LS_RESPONSE_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_PROTOCOL_ID_LENGTH,
    PROTOCOL_ID,
    Dialer,
    Listener,
    State,
)

__all__ = [
    "DEFAULT_MAX_NA_ROUNDS",
    "MAX_LS_PROTOCOLS",
    "MAX_LS_RESPONSE_SIZE",
    "MAX_MESSAGE_SIZE",
    "MAX_PROTOCOL_ID_LENGTH",
    "PROTOCOL_ID",
    "Dialer",
    "Event",
    "Listener",
    "NegotiationComplete",
    "ProtocolRefused",
    "ProtocolsListed",
    "State",
]
