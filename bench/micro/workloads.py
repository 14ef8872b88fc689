"""Inputs shared by the micro benchmarks (``test_*_bench.py``) and ``ratios.py``.

Deterministic (fixed seed) so every run and both twins see the same bytes.
"""

from __future__ import annotations

import random

#: Size budget of the split workloads: the buffers are at most this long.
BUFFER_SIZE = 64 * 1024

#: Protocol ids of the kind exchanged in multistream-select negotiations.
PROTOCOL_IDS = (
    "/multistream/1.0.0",
    "/noise",
    "/tls/1.0.0",
    "/yamux/1.0.0",
    "/mplex/6.7.0",
    "/ipfs/id/1.0.0",
    "/ipfs/id/push/1.0.0",
    "/ipfs/ping/1.0.0",
    "/ipfs/kad/1.0.0",
    "/meshsub/1.1.0",
    "/meshsub/1.2.0",
    "/libp2p/circuit/relay/0.2.0/hop",
    "/libp2p/autonat/2/dial-request",
    "/libp2p/dcutr",
    "na",
    "ls",
)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def lp_buffer(size: int = BUFFER_SIZE, seed: int = 1) -> tuple[bytes, int]:
    """Length-prefixed messages with 8-40 byte payloads, filling at most ``size`` bytes.

    Returns ``(buffer, message_count)``.
    """
    rng = random.Random(seed)
    out = bytearray()
    count = 0
    while True:
        body = rng.randbytes(rng.randint(8, 40))
        frame = _uvarint(len(body)) + body
        if len(out) + len(frame) > size:
            return bytes(out), count
        out += frame
        count += 1


def ms_buffer(size: int = BUFFER_SIZE, seed: int = 2) -> tuple[bytes, int]:
    """multistream-select messages (protocol ids + ``\\n``), filling at most ``size`` bytes."""
    rng = random.Random(seed)
    out = bytearray()
    count = 0
    while True:
        payload = rng.choice(PROTOCOL_IDS).encode() + b"\n"
        frame = _uvarint(len(payload)) + payload
        if len(out) + len(frame) > size:
            return bytes(out), count
        out += frame
        count += 1
