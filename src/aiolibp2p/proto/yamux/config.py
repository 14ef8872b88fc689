"""The yamux session settings: one frozen object, validated when it is built."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiolibp2p.core.errors import ConfigError

__all__ = ["SPEC_INITIAL_WINDOW", "YamuxConfig"]

#: The receive window both sides assume for a new stream (spec: 256 KiB).  A larger window is
#: announced with a Window Update on the SYN/ACK; a smaller one cannot be, so it is the minimum.
SPEC_INITIAL_WINDOW = 256 * 1024

_MAX_UINT32 = 0xFFFFFFFF


def _int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value}")


def _seconds(name: str, value: object, *, zero: bool) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be a finite number of seconds > 0, got {value}")


@dataclass(frozen=True, slots=True)
class YamuxConfig:
    """Settings of one yamux session; every field is checked at construction (``ConfigError``).

    Defaults follow the spec and the js/go/rust implementations (see ``research/specs.md`` §6).
    """

    #: Receive window of a new stream, in bytes: at least the spec's 256 KiB, at most
    #: ``max_window``.  Above 256 KiB, the surplus rides on the stream's SYN or ACK.
    initial_window: int = SPEC_INITIAL_WINDOW
    #: The largest receive window auto-tuning may grow a stream's window to (and the largest
    #: Data frame accepted).  go-libp2p and js use 16 MiB.
    max_window: int = 16 * 1024 * 1024
    #: The most payload bytes per Data frame we send (what we accept is bounded by the window
    #: only).  64 KiB, as js: a frame fits about one Noise transport message.
    max_frame_data: int = 64 * 1024
    #: Inbound streams open at once; a SYN beyond it is answered with RST.
    max_inbound_streams: int = 1000
    #: Outbound streams open at once; ``open_stream`` beyond it raises ``LocalProtocolError``.
    max_outbound_streams: int = 1000
    #: Inbound streams we have not acknowledged yet; a SYN beyond it is answered with RST.
    #: The spec says peers SHOULD NOT open more than 256 unacknowledged streams.
    max_ack_backlog: int = 256
    #: Seconds between keep-alive pings; 0 disables keep-alive (the first ping, which measures
    #: the RTT for auto-tuning, is still sent when ``auto_tune`` is on).
    keepalive_interval: float = 30.0
    #: Seconds a keep-alive ping may go unanswered before the session fails with
    #: ``KeepAliveTimeout``; ``None`` means twice ``keepalive_interval``.
    keepalive_timeout: float | None = None
    #: Grow a stream's receive window (doubling, up to ``max_window``) while the application
    #: reads a window's worth in less than two round trips.
    auto_tune: bool = True

    def __post_init__(self) -> None:
        _int("max_window", self.max_window, SPEC_INITIAL_WINDOW, _MAX_UINT32)
        _int("initial_window", self.initial_window, SPEC_INITIAL_WINDOW, self.max_window)
        _int("max_frame_data", self.max_frame_data, 1, _MAX_UINT32)
        _int("max_inbound_streams", self.max_inbound_streams, 0, 1 << 31)
        _int("max_outbound_streams", self.max_outbound_streams, 0, 1 << 31)
        _int("max_ack_backlog", self.max_ack_backlog, 1, 1 << 31)
        _seconds("keepalive_interval", self.keepalive_interval, zero=True)
        if self.keepalive_timeout is not None:
            _seconds("keepalive_timeout", self.keepalive_timeout, zero=False)
        if not isinstance(self.auto_tune, bool):
            raise ConfigError(f"auto_tune must be a bool, not {type(self.auto_tune).__name__}")

    @property
    def pong_timeout(self) -> float:
        """Seconds a keep-alive ping may stay unanswered (0.0 when keep-alive is disabled)."""
        if self.keepalive_interval == 0:
            return 0.0
        if self.keepalive_timeout is not None:
            return float(self.keepalive_timeout)
        return 2.0 * self.keepalive_interval
