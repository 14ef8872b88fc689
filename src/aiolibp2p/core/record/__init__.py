"""aiolibp2p.core.record: signed envelopes (RFC 0002) and peer records (RFC 0003)."""

from __future__ import annotations

from aiolibp2p.core.record.envelope import DEFAULT_MAX_ENVELOPE_SIZE, Envelope
from aiolibp2p.core.record.peer_record import PeerRecord

__all__ = ["DEFAULT_MAX_ENVELOPE_SIZE", "Envelope", "PeerRecord"]
