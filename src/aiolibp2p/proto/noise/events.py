"""Events returned by the Noise handshake machine (small frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .machine import HandshakeResult

__all__ = ["Event", "HandshakeComplete"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every Noise handshake event."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    """The handshake succeeded: the remote is authenticated and the transport keys are ready.

    The initiator returns it on reading message 2 (message 3 is then queued in
    ``data_to_send()`` and must be written before any transport frame); the responder returns
    it on reading message 3.  ``result.leftover`` holds the bytes that arrived after the last
    handshake message (encrypted transport frames the peer pipelined).
    """

    result: HandshakeResult
