"""The ping driver's payloads: 32 random bytes each, drawn from the OS in batches."""

from __future__ import annotations

from aiolibp2p.net.services.ping import _PingState
from aiolibp2p.proto.ping import PING_SIZE


def test_payloads_are_fresh_random_blocks() -> None:
    state = _PingState()
    payloads = [state.payload() for _ in range(300)]  # crosses several batches
    assert all(len(p) == PING_SIZE for p in payloads)
    assert len(set(payloads)) == len(payloads)
