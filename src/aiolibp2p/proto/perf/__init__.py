"""perf (``/perf/1.0.0``): the request header codec and sans-IO client and server machines.

See :mod:`aiolibp2p.proto.perf.codec` (wire format) and :mod:`aiolibp2p.proto.perf.machine`
(the order rules: upload, end of stream, then the reply, never overlapping).
"""

from __future__ import annotations

from .codec import (
    BLOCK_SIZE,
    HEADER_SIZE,
    MAX_U64,
    PROTOCOL_ID,
    PerfProtocolError,
    PerfRequestTooLarge,
    TruncatedRequest,
    decode_request,
    encode_request,
)
from .machine import ClientState, PerfClient, PerfResult, PerfServer, ServerState

__all__ = [
    "BLOCK_SIZE",
    "HEADER_SIZE",
    "MAX_U64",
    "PROTOCOL_ID",
    "ClientState",
    "PerfClient",
    "PerfProtocolError",
    "PerfRequestTooLarge",
    "PerfResult",
    "PerfServer",
    "ServerState",
    "TruncatedRequest",
    "decode_request",
    "encode_request",
]
