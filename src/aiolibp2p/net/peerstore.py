"""What the host knows about other peers: addresses (with TTLs), keys, protocols, metadata.

Bounded: at most ``max_peers`` peers, at most ``MAX_ADDRS`` addresses and ``MAX_PROTOCOLS``
protocols per peer; when full, the least recently updated peer that is not protected (connected)
is evicted.  Time comes from the ``clock`` given at construction (the loop's clock in the host).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiolibp2p.core.crypto import PublicKey
from aiolibp2p.core.multiaddr import Multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import Envelope, PeerRecord

__all__ = ["Peerstore", "PeerData", "ADDR_TTL_PERMANENT", "ADDR_TTL_CONNECTED", "ADDR_TTL_RECENT"]

#: Addresses of a connected peer (kept while connected, then lowered to RECENT).
ADDR_TTL_CONNECTED = float("inf")
#: Addresses given by the application.
ADDR_TTL_PERMANENT = float("inf")
#: Addresses of a peer we were connected to recently (go: 15 minutes).
ADDR_TTL_RECENT = 15 * 60.0
#: Addresses learned from others (go: 1 hour... we keep it shorter for unverified ones).
ADDR_TTL_TEMPORARY = 10 * 60.0

MAX_ADDRS = 500
MAX_PROTOCOLS = 1024
MAX_METADATA = 64


@dataclass(slots=True)
class PeerData:
    """Everything known about one peer."""

    addrs: dict[bytes, tuple[Multiaddr, float]] = field(default_factory=dict)  # key -> (addr, exp)
    public_key: PublicKey | None = None
    protocols: tuple[str, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict)
    record: PeerRecord | None = None
    envelope: Envelope | None = None
    #: The bytes ``envelope`` arrived as, when known (a peer sending them again is not
    #: re-verified).
    envelope_bytes: bytes | None = None


class Peerstore:
    """A bounded map of :class:`PeerId` to :class:`PeerData`."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_peers: int = 10_000,
        is_protected: Callable[[PeerId], bool] | None = None,
    ) -> None:
        self._clock = clock
        self._max_peers = max_peers
        self._is_protected = is_protected or (lambda _peer: False)
        self._peers: OrderedDict[PeerId, PeerData] = OrderedDict()

    def __contains__(self, peer: PeerId) -> bool:
        return peer in self._peers

    def __len__(self) -> int:
        return len(self._peers)

    def peers(self) -> list[PeerId]:
        return list(self._peers)

    def get(self, peer: PeerId) -> PeerData | None:
        return self._peers.get(peer)

    # ---------------------------------------------------------------------------- addresses

    def add_addrs(self, peer: PeerId, addrs: Iterable[Multiaddr], ttl: float) -> None:
        """Add addresses valid for ``ttl`` seconds (a longer TTL for a known address wins)."""
        data = self._touch(peer)
        expires = self._clock() + ttl
        for addr in addrs:
            key = addr.to_bytes()
            old = data.addrs.get(key)
            if old is not None:
                if old[1] < expires:
                    data.addrs[key] = (addr, expires)
                continue
            if len(data.addrs) >= MAX_ADDRS:
                self._expire(data)
                if len(data.addrs) >= MAX_ADDRS:
                    break
            data.addrs[key] = (addr, expires)

    def set_addrs_ttl(self, peer: PeerId, ttl: float) -> None:
        """Set the TTL of every address of ``peer`` (e.g. RECENT on disconnect)."""
        data = self._peers.get(peer)
        if data is None:
            return
        expires = self._clock() + ttl
        data.addrs = {k: (a, expires) for k, (a, _exp) in data.addrs.items()}

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        """The unexpired addresses of ``peer``."""
        data = self._peers.get(peer)
        if data is None:
            return []
        self._expire(data)
        return [addr for addr, _exp in data.addrs.values()]

    def _expire(self, data: PeerData) -> None:
        now = self._clock()
        stale = [k for k, (_a, exp) in data.addrs.items() if exp <= now]
        for key in stale:
            del data.addrs[key]

    # ------------------------------------------------------------------ keys, protocols, meta

    def add_public_key(self, peer: PeerId, key: PublicKey) -> None:
        data = self._peers.get(peer)
        if data is not None and data.public_key is key:  # the same checked object again
            self._peers.move_to_end(peer)
            return
        if not peer.matches_public_key(key):
            raise ValueError("public key does not match the peer id")
        self._touch(peer).public_key = key

    def public_key(self, peer: PeerId) -> PublicKey | None:
        data = self._peers.get(peer)
        if data is not None and data.public_key is not None:
            return data.public_key
        return peer.extract_public_key()

    def set_protocols(self, peer: PeerId, protocols: Iterable[str]) -> None:
        self._touch(peer).protocols = tuple(protocols)[:MAX_PROTOCOLS]

    def protocols(self, peer: PeerId) -> tuple[str, ...]:
        data = self._peers.get(peer)
        return data.protocols if data is not None else ()

    def put(self, peer: PeerId, key: str, value: object) -> None:
        data = self._touch(peer)
        if key not in data.metadata and len(data.metadata) >= MAX_METADATA:
            raise ValueError(f"at most {MAX_METADATA} metadata keys per peer")
        data.metadata[key] = value

    def metadata(self, peer: PeerId, key: str, default: object = None) -> object:
        data = self._peers.get(peer)
        return data.metadata.get(key, default) if data is not None else default

    def agent_version(self, peer: PeerId) -> str | None:
        value = self.metadata(peer, "AgentVersion")
        return value if isinstance(value, str) else None

    def consume_peer_record(
        self, envelope: Envelope, record: PeerRecord, ttl: float, *, raw: bytes | None = None
    ) -> bool:
        """Store a verified signed record if it is newer than what we have; True if stored.

        ``raw``: the bytes the envelope arrived as.  The record we hold (the same ``seq``) has
        its addresses' TTL raised to ``ttl`` again (e.g. on reconnect).
        """
        data = self._touch(record.peer_id)
        if data.record is not None and data.record.seq >= record.seq:
            if data.record.seq == record.seq and data.record == record:
                self.add_addrs(record.peer_id, record.addrs, ttl)
                if raw is not None and data.envelope_bytes is None:
                    data.envelope_bytes = raw
            return False
        data.record = record
        data.envelope = envelope
        data.envelope_bytes = raw
        self.add_addrs(record.peer_id, record.addrs, ttl)
        return True

    def signed_record(self, peer: PeerId) -> PeerRecord | None:
        data = self._peers.get(peer)
        return data.record if data is not None else None

    # ---------------------------------------------------------------------------- internals

    def _touch(self, peer: PeerId) -> PeerData:
        data = self._peers.get(peer)
        if data is None:
            if len(self._peers) >= self._max_peers:
                self._evict()
            data = self._peers[peer] = PeerData()
        else:
            self._peers.move_to_end(peer)
        return data

    def _evict(self) -> None:
        for peer in list(self._peers):
            if not self._is_protected(peer):
                del self._peers[peer]
                return
        # Every peer is protected (connected): the bound still holds, drop the oldest.
        self._peers.popitem(last=False)
