"""Events returned by the multistream-select machines (small frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "NegotiationComplete", "ProtocolRefused", "ProtocolsListed"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every multistream-select event."""


@dataclass(frozen=True, slots=True)
class ProtocolRefused(Event):
    """A proposal was answered with ``na``; negotiation goes on.

    Dialer: the listener refused ``protocol`` and the next proposal is already queued in
    ``data_to_send()``.  Listener: we refused ``protocol`` (the ``na`` is queued).
    """

    protocol: str


@dataclass(frozen=True, slots=True)
class ProtocolsListed(Event):
    """Dialer only: the listener's answer to our ``ls`` request.

    ``protocols`` is empty when the listener has nothing to list, or answered ``ls`` with ``na``.
    """

    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NegotiationComplete(Event):
    """Both sides agreed on ``protocol``; the machine is done and takes no more input.

    ``leftover`` holds the bytes that arrived after the last negotiation message in the data fed
    so far (application data the peer pipelined), untouched and in order.  The driver hands it
    to the application first, then passes every later byte straight to the application.
    """

    protocol: str
    leftover: bytes
