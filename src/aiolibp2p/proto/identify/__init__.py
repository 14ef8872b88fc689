"""identify and identify/push: the Identify message codec.

See :mod:`aiolibp2p.proto.identify.codec` for sizes, trust rules and what is skipped on input.
"""

from __future__ import annotations

from .codec import (
    DEFAULT_AGENT_VERSION,
    DEFAULT_PROTOCOL_VERSION,
    MAX_INCOMING_SIZE,
    MAX_LISTEN_ADDRS,
    MAX_MESSAGES,
    MAX_OUTGOING_SIZE,
    MAX_PROTOCOLS,
    OBSERVED_ADDR_RESERVE,
    PROTOCOL_ID,
    PUSH_PROTOCOL_ID,
    EncodedIdentify,
    IdentifyInfo,
    IdentifyReader,
    KnownRecord,
    PreparedIdentify,
    build_identify,
    decode_identify,
    encode_identify,
)

__all__ = [
    "DEFAULT_AGENT_VERSION",
    "DEFAULT_PROTOCOL_VERSION",
    "MAX_INCOMING_SIZE",
    "MAX_LISTEN_ADDRS",
    "MAX_MESSAGES",
    "MAX_OUTGOING_SIZE",
    "MAX_PROTOCOLS",
    "OBSERVED_ADDR_RESERVE",
    "PROTOCOL_ID",
    "PUSH_PROTOCOL_ID",
    "EncodedIdentify",
    "IdentifyInfo",
    "IdentifyReader",
    "KnownRecord",
    "PreparedIdentify",
    "build_identify",
    "decode_identify",
    "encode_identify",
]
