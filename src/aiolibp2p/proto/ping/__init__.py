"""ping (``/ipfs/ping/1.0.0``): sans-IO client and server halves.

See :mod:`aiolibp2p.proto.ping.codec`.
"""

from __future__ import annotations

from .codec import PING_SIZE, PROTOCOL_ID, PingClient, PingMismatch, PingServer

__all__ = ["PING_SIZE", "PROTOCOL_ID", "PingClient", "PingMismatch", "PingServer"]
