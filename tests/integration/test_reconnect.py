"""Reconnecting to a known peer: what is reused (static Noise key, verified handshake payloads,
the prepared identify message, the peer's verified record) and what is not."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.core.events import PeerIdentified
from aiolibp2p.core.multiaddr import Multiaddr

LOCAL = "/ip4/127.0.0.1/tcp/0"


def test_reconnect_reuses_verified_state_and_refreshes_addresses(aio: Any) -> None:
    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen(LOCAL))
        b = await aiolibp2p.new_host(o.listen(LOCAL))
        try:
            info = await a.identify(b.full_addrs()[0])
            assert info.signed_record is not None
            data = a.peerstore.get(b.peer_id)
            assert data is not None and data.envelope is not None
            envelope, raw = data.envelope, data.envelope_bytes
            assert raw is not None
            assert len(a.swarm._verified_keys) == 1
            await a.disconnect(b.peer_id)
            await asyncio.sleep(0.05)
            # Disconnected: the record's addresses are now only "recent".
            assert all(not math.isinf(exp) for _a, exp in data.addrs.values())

            events = a.subscribe()
            again = await a.identify(b.full_addrs()[0])
            assert again.signed_record == info.signed_record
            assert again.signed_envelope is envelope  # the same bytes: not opened again
            assert data.envelope is envelope and data.envelope_bytes == raw
            assert len(a.swarm._verified_keys) == 1  # b's static key and signature: a hit
            # Connected again: the record's addresses are kept while connected.
            record_addrs = {x.to_bytes() for x in info.signed_record.addrs}
            assert all(math.isinf(data.addrs[k][1]) for k in record_addrs)
            event = await asyncio.wait_for(events.get(), 5)
            while not isinstance(event, PeerIdentified):
                event = await asyncio.wait_for(events.get(), 5)
            assert event.peer == b.peer_id
            events.close()

            # b's side sees the same from a (a listens too, so it has a record).
            back = await b.identify(a.peer_id)
            assert back.signed_record is not None
        finally:
            await a.close()
            await b.close()

    aio(main)


def test_a_new_signed_record_replaces_the_known_one(aio: Any) -> None:
    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen(LOCAL))
        b = await aiolibp2p.new_host(o.listen(LOCAL))
        try:
            first = await a.identify(b.full_addrs()[0])
            assert first.signed_record is not None
            await a.disconnect(b.peer_id)
            await b.swarm.listen([Multiaddr(LOCAL)])  # b's addresses change
            again = await a.identify(b.full_addrs()[0])
            assert again.signed_record is not None
            assert again.signed_record.seq > first.signed_record.seq
            assert len(again.signed_record.addrs) == 2
            data = a.peerstore.get(b.peer_id)
            assert data is not None and data.record == again.signed_record
        finally:
            await a.close()
            await b.close()

    aio(main)
