"""The peerstore: signed records (same record again refreshes its addresses), keys, bounds."""

from __future__ import annotations

import math

import pytest

from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.multiaddr import parse_multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import PeerRecord
from aiolibp2p.net.peerstore import ADDR_TTL_CONNECTED, ADDR_TTL_RECENT, Peerstore

KEY = generate_private_key()
PEER = PeerId.from_public_key(KEY.public_key())
ADDRS = (parse_multiaddr("/ip4/1.2.3.4/tcp/1"), parse_multiaddr("/ip4/1.2.3.4/udp/1/quic-v1"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_newer_record_replaces_an_older_one() -> None:
    store = Peerstore(Clock())
    old, new = PeerRecord(PEER, 1, ADDRS[:1]), PeerRecord(PEER, 2, ADDRS)
    assert store.consume_peer_record(old.seal(KEY), old, ADDR_TTL_CONNECTED, raw=b"old")
    assert store.consume_peer_record(new.seal(KEY), new, ADDR_TTL_CONNECTED, raw=b"new")
    assert not store.consume_peer_record(old.seal(KEY), old, ADDR_TTL_CONNECTED, raw=b"old")
    data = store.get(PEER)
    assert data is not None and data.record == new and data.envelope_bytes == b"new"


def test_the_same_record_again_refreshes_its_addresses() -> None:
    clock = Clock()
    store = Peerstore(clock)
    record = PeerRecord(PEER, 5, ADDRS)
    envelope = record.seal(KEY)
    assert store.consume_peer_record(envelope, record, ADDR_TTL_CONNECTED)
    store.set_addrs_ttl(PEER, ADDR_TTL_RECENT)  # disconnected
    data = store.get(PEER)
    assert data is not None and data.envelope_bytes is None
    assert all(not math.isinf(exp) for _a, exp in data.addrs.values())
    # Reconnected, identify brings the same record: not "newer", but its addresses are current.
    assert not store.consume_peer_record(envelope, record, ADDR_TTL_CONNECTED, raw=b"raw")
    assert all(math.isinf(exp) for _a, exp in data.addrs.values())
    assert data.envelope_bytes == b"raw"  # learned now
    clock.now += ADDR_TTL_RECENT + 1
    assert store.addrs(PEER) == list(ADDRS)


def test_a_different_record_with_the_same_seq_changes_nothing() -> None:
    store = Peerstore(Clock())
    record = PeerRecord(PEER, 5, ADDRS[:1])
    store.consume_peer_record(record.seal(KEY), record, 60.0)
    other = PeerRecord(PEER, 5, ADDRS[1:])
    assert not store.consume_peer_record(other.seal(KEY), other, ADDR_TTL_CONNECTED)
    assert store.addrs(PEER) == [ADDRS[0]]


def test_public_keys() -> None:
    store = Peerstore(Clock())
    key = KEY.public_key()
    store.add_public_key(PEER, key)
    store.add_public_key(PEER, key)  # the same object again: accepted without a re-check
    assert store.public_key(PEER) is key
    with pytest.raises(ValueError):
        store.add_public_key(PEER, generate_private_key().public_key())
    stranger = PeerId.from_public_key(generate_private_key().public_key())
    with pytest.raises(ValueError):
        store.add_public_key(stranger, key)
    assert stranger not in store  # a refused key adds no peer
