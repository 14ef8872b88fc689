"""Dial ranking: when to dial each of a peer's addresses (pure: addresses in, a schedule out).

go-libp2p's ranking in the spirit of RFC 8305 (happy eyeballs): QUIC needs one round trip less
than TCP + Noise + yamux and survives NATs better, so a peer's QUIC addresses go first and its
TCP (and every other) address waits ``tcp_delay`` behind them.  Within each group the addresses
keep the caller's order, one ``stagger`` apart.  The swarm runs the schedule (see
:meth:`aiolibp2p.net.swarm.Swarm.dial_peer`): the first connection wins, the other attempts are
cancelled, and when every attempt in flight has failed the next address starts at once instead
of at its planned time (a failed QUIC dial does not make TCP wait).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiolibp2p.core.errors import LocalProtocolError
from aiolibp2p.core.multiaddr import Multiaddr, transport_family

__all__ = ["QUIC_FAMILY", "rank_addrs"]

#: The transport family (:func:`~aiolibp2p.core.multiaddr.transport_family`) dialed first.
QUIC_FAMILY = "quic-v1"


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise LocalProtocolError(f"{name} must be a number of seconds in [0, 3600], not {value!r}")
    return float(value)


def rank_addrs(
    addrs: Iterable[Multiaddr], *, tcp_delay: float, stagger: float
) -> list[tuple[float, Multiaddr]]:
    """``(delay, address)`` pairs in dial order: when to start dialing each address, in seconds
    after the dial begins.

    QUIC (``/quic-v1``) addresses come first, the i-th at ``i * stagger``; the other addresses
    follow in their given order, the first ``tcp_delay`` after the last QUIC address (at 0 when
    there is none), each next one ``stagger`` later.  Repeated addresses are dialed once.
    """
    tcp_delay = _seconds("tcp_delay", tcp_delay)
    stagger = _seconds("stagger", stagger)
    seen: set[bytes] = set()
    quic: list[Multiaddr] = []
    other: list[Multiaddr] = []
    for addr in addrs:
        if not isinstance(addr, Multiaddr):
            raise LocalProtocolError(f"addresses must be Multiaddr, not {type(addr).__name__}")
        key = addr.to_bytes()
        if key in seen:
            continue
        seen.add(key)
        (quic if transport_family(addr) == QUIC_FAMILY else other).append(addr)
    schedule = [(i * stagger, addr) for i, addr in enumerate(quic)]
    start = (len(quic) - 1) * stagger + tcp_delay if quic else 0.0
    schedule += [(start + i * stagger, addr) for i, addr in enumerate(other)]
    return schedule
