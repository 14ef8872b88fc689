"""Peer records (libp2p/specs ``RFC/0003-routing-records.md``): a peer's addresses, signed.

The RFC text names the domain ``libp2p-routing-state`` and the payload type
``/libp2p/routing-state-record``; go-libp2p (``core/peer/record.go``) and js-libp2p use domain
``libp2p-peer-record`` and payload type ``0x03 0x01`` (multicodec ``libp2p-peer-record``), and so
does this module.

``seq`` is chosen by the caller (this layer has no clock); it must grow with every new record from
the same peer.  A receiver keeps the highest ``seq`` seen per peer and drops older records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as _PbDecodeError

from aiolibp2p.core.crypto import PrivateKey
from aiolibp2p.core.errors import EnvelopeError, Libp2pError, LocalProtocolError
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr
from aiolibp2p.core.pb import peer_record_pb2
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record.envelope import DEFAULT_MAX_ENVELOPE_SIZE, Envelope

__all__ = ["PeerRecord"]

_MAX_SEQ = 2**64 - 1


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """The addresses of ``peer_id``, ordered in time by ``seq`` (an unsigned 64-bit counter)."""

    DOMAIN = "libp2p-peer-record"
    PAYLOAD_TYPE = b"\x03\x01"

    peer_id: PeerId
    seq: int
    addrs: tuple[Multiaddr, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.peer_id, PeerId):
            raise LocalProtocolError(f"peer_id must be a PeerId, not {type(self.peer_id).__name__}")
        if not isinstance(self.seq, int) or isinstance(self.seq, bool):
            raise LocalProtocolError(f"seq must be an int, not {type(self.seq).__name__}")
        if not 0 <= self.seq <= _MAX_SEQ:
            raise LocalProtocolError(f"seq {self.seq} is outside [0, 2**64 - 1]")
        addrs: Iterable[object] = self.addrs
        if isinstance(addrs, (str, bytes, Multiaddr)):
            raise LocalProtocolError("addrs must be a sequence of Multiaddr, not a single address")
        addrs = tuple(addrs)
        for addr in addrs:
            if not isinstance(addr, Multiaddr):
                raise LocalProtocolError(f"addrs must hold Multiaddr, not {type(addr).__name__}")
        object.__setattr__(self, "addrs", addrs)

    def to_bytes(self) -> bytes:
        """The serialized ``PeerRecord`` protobuf message (the envelope payload)."""
        msg = peer_record_pb2.PeerRecord(
            peer_id=self.peer_id.to_bytes(),
            seq=self.seq,
            addresses=[
                peer_record_pb2.PeerRecord.AddressInfo(multiaddr=addr.to_bytes())
                for addr in self.addrs
            ],
        )
        return msg.SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes, *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE) -> PeerRecord:
        """Decode a serialized ``PeerRecord`` (not signed: see :meth:`open_signed`).

        Raises :class:`EnvelopeError` if ``data`` is longer than ``max_size`` (checked before
        decoding), is not a ``PeerRecord`` message, or its peer id is invalid.  Addresses that do
        not decode (malformed, or a protocol missing from our protocol table) are dropped, as
        go-libp2p does, so that one new transport does not discard a peer's whole record.
        """
        if not isinstance(max_size, int) or max_size < 0:
            raise LocalProtocolError(f"max_size must be a non-negative int, got {max_size!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"record data must be bytes, not {type(data).__name__}")
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > max_size:
            raise EnvelopeError(f"peer record of {size} bytes exceeds the limit of {max_size}")
        data = bytes(data)
        try:
            msg = peer_record_pb2.PeerRecord.FromString(data)
        except _PbDecodeError as exc:
            raise EnvelopeError(f"malformed peer record: {exc}") from exc
        try:
            peer_id = PeerId.from_bytes(msg.peer_id)
        except Libp2pError as exc:
            raise EnvelopeError(f"peer record has an invalid peer id: {exc}") from exc
        addrs = []
        for info in msg.addresses:
            try:
                addrs.append(parse_multiaddr(info.multiaddr))
            except Libp2pError:
                continue
        return cls(peer_id, msg.seq, tuple(addrs))

    def seal(self, private_key: PrivateKey) -> Envelope:
        """Sign this record into an :class:`Envelope` with the peer's own key.

        Raises :class:`LocalProtocolError` if ``private_key`` does not belong to ``peer_id``.
        """
        if not self.peer_id.matches_public_key(private_key.public_key()):
            raise LocalProtocolError(f"the signing key does not belong to peer {self.peer_id}")
        return Envelope.seal(private_key, self.DOMAIN, self.PAYLOAD_TYPE, self.to_bytes())

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> PeerRecord:
        """The record inside an already opened (verified) ``envelope``.

        Raises :class:`EnvelopeError` if the payload type is not a peer record's, the payload does
        not decode, or the record's peer id is not the envelope signer's.
        """
        if envelope.payload_type != cls.PAYLOAD_TYPE:
            raise EnvelopeError(
                f"envelope payload type {envelope.payload_type.hex()} is not a peer record's"
            )
        record = cls.from_bytes(envelope.payload)
        if not record.peer_id.matches_public_key(envelope.public_key):
            raise EnvelopeError(f"peer record for {record.peer_id} is signed by a different key")
        return record

    @classmethod
    def open_signed(
        cls, data: bytes, *, max_size: int = DEFAULT_MAX_ENVELOPE_SIZE
    ) -> tuple[Envelope, PeerRecord]:
        """Open a serialized signed peer record: verify the envelope, then decode and check it."""
        envelope = Envelope.open(
            data, cls.DOMAIN, expected_payload_type=cls.PAYLOAD_TYPE, max_size=max_size
        )
        return envelope, cls.from_envelope(envelope)
