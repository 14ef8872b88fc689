"""yamux (``/yamux/1.0.0``): the stream muxer machine and its settings.

See :mod:`aiolibp2p.proto.yamux.machine` for the rules and the choices the spec leaves open.
"""

from aiolibp2p.proto.yamux.config import SPEC_INITIAL_WINDOW, YamuxConfig
from aiolibp2p.proto.yamux.machine import (
    GO_AWAY_INTERNAL_ERROR,
    GO_AWAY_NORMAL,
    GO_AWAY_PROTOCOL_ERROR,
    YamuxMachine,
)

__all__ = [
    "GO_AWAY_INTERNAL_ERROR",
    "GO_AWAY_NORMAL",
    "GO_AWAY_PROTOCOL_ERROR",
    "SPEC_INITIAL_WINDOW",
    "YamuxConfig",
    "YamuxMachine",
]
