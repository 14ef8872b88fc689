"""mplex (``/mplex/6.7.0``): the deprecated libp2p stream muxer, as a sans-IO machine.

:class:`MplexMachine` implements :class:`~aiolibp2p.proto.muxer.MuxerMachine`; see
:mod:`aiolibp2p.proto.mplex.machine` for the wire format, the stream id mapping and the bounds.
"""

from __future__ import annotations

from .machine import MAX_STREAM_ID, PROTOCOL_ID, SEND_CAPACITY, Flag, MplexConfig, MplexMachine

__all__ = ["MAX_STREAM_ID", "PROTOCOL_ID", "SEND_CAPACITY", "Flag", "MplexConfig", "MplexMachine"]
