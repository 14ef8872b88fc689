"""Dial ranking (:func:`aiolibp2p.net.dial_ranking.rank_addrs`): QUIC first, TCP behind it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import LocalProtocolError
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr, transport_family
from aiolibp2p.net.dial_ranking import rank_addrs

Q4 = parse_multiaddr("/ip4/1.2.3.4/udp/4001/quic-v1")
Q6 = parse_multiaddr("/ip6/2001:db8::1/udp/4001/quic-v1")
T4 = parse_multiaddr("/ip4/1.2.3.4/tcp/4001")
T6 = parse_multiaddr("/ip6/2001:db8::1/tcp/4001")
WS = parse_multiaddr("/ip4/1.2.3.4/tcp/4002/ws")


def test_tcp_only_starts_at_once_and_staggers() -> None:
    assert rank_addrs([T4, T6], tcp_delay=0.25, stagger=0.1) == [(0.0, T4), (0.1, T6)]


def test_quic_only() -> None:
    assert rank_addrs([Q6, Q4], tcp_delay=0.25, stagger=0.1) == [(0.0, Q6), (0.1, Q4)]


def test_quic_goes_first_and_tcp_waits_behind_the_last_quic() -> None:
    ranked = rank_addrs([T4, Q4, WS, Q6, T6], tcp_delay=0.25, stagger=0.1)
    assert ranked == [
        (0.0, Q4),
        (0.1, Q6),
        (pytest.approx(0.35), T4),
        (pytest.approx(0.45), WS),
        (pytest.approx(0.55), T6),
    ]


def test_zero_delays_keep_the_order() -> None:
    ranked = rank_addrs([T4, Q4], tcp_delay=0, stagger=0)
    assert ranked == [(0.0, Q4), (0.0, T4)]


def test_duplicates_are_dialed_once() -> None:
    same = parse_multiaddr(str(T4))
    assert rank_addrs([T4, same, Q4, Q4], tcp_delay=0.25, stagger=0.1) == [
        (0.0, Q4),
        (0.25, T4),
    ]


def test_empty() -> None:
    assert rank_addrs([], tcp_delay=0.25, stagger=0.25) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tcp_delay": -1, "stagger": 0},
        {"tcp_delay": 0, "stagger": -0.1},
        {"tcp_delay": True, "stagger": 0},
        {"tcp_delay": "1", "stagger": 0},
        {"tcp_delay": 0, "stagger": 1e9},
    ],
)
def test_bad_delays(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        rank_addrs([T4], **kwargs)  # type: ignore[arg-type]


def test_bad_address() -> None:
    with pytest.raises(LocalProtocolError):
        rank_addrs(["/ip4/1.2.3.4/tcp/1"], tcp_delay=0, stagger=0)  # type: ignore[list-item]


POOL = [Q4, Q6, T4, T6, WS, parse_multiaddr("/ip4/5.6.7.8/udp/9/quic-v1")]


@given(
    addrs=st.lists(st.sampled_from(POOL), max_size=12),
    tcp_delay=st.floats(0, 10),
    stagger=st.floats(0, 10),
)
def test_properties(addrs: list[Multiaddr], tcp_delay: float, stagger: float) -> None:
    ranked = rank_addrs(addrs, tcp_delay=tcp_delay, stagger=stagger)
    # Every distinct address exactly once, in non-decreasing time.
    assert sorted(a.to_bytes() for _, a in ranked) == sorted({a.to_bytes() for a in addrs})
    times = [t for t, _ in ranked]
    assert times == sorted(times)
    quic = [t for t, a in ranked if transport_family(a) == "quic-v1"]
    other = [t for t, a in ranked if transport_family(a) != "quic-v1"]
    if quic:
        assert quic[0] == 0.0
        assert all(t >= max(quic) + tcp_delay - 1e-9 for t in other)
    elif other:
        assert other[0] == 0.0
    # Within a group the caller's order is kept.
    order = [a.to_bytes() for a in dict.fromkeys(addrs)]
    for group in (
        [a for _, a in ranked if transport_family(a) == "quic-v1"],
        [a for _, a in ranked if transport_family(a) != "quic-v1"],
    ):
        keys = [a.to_bytes() for a in group]
        assert keys == [k for k in order if k in keys]
