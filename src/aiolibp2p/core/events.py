"""Host events: what subscribers of :meth:`aiolibp2p.net.host.Host.subscribe` receive."""

from __future__ import annotations

from dataclasses import dataclass

from aiolibp2p.core.peer import PeerId

__all__ = [
    "Event",
    "PeerConnected",
    "PeerDisconnected",
    "PeerIdentified",
    "ConnectionOpened",
    "ConnectionClosed",
    "StreamOpened",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of host events."""


@dataclass(frozen=True, slots=True)
class ConnectionOpened(Event):
    """A connection finished its upgrade (``direction`` is ``"inbound"`` or ``"outbound"``)."""

    peer: PeerId
    direction: str
    remote_addr: str
    muxer: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    peer: PeerId
    direction: str
    reason: str


@dataclass(frozen=True, slots=True)
class PeerConnected(Event):
    """The first connection to ``peer`` opened."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class PeerDisconnected(Event):
    """The last connection to ``peer`` closed."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class PeerIdentified(Event):
    """Identify with ``peer`` completed; ``protocols`` is what it announced."""

    peer: PeerId
    protocols: tuple[str, ...]
    agent_version: str | None


@dataclass(frozen=True, slots=True)
class StreamOpened(Event):
    """A stream's protocol was agreed (``direction``: ``"inbound"`` or ``"outbound"``).

    For a lazy outbound proposal (one protocol), it is emitted when the stream is handed out.
    """

    peer: PeerId
    protocol: str
    direction: str
