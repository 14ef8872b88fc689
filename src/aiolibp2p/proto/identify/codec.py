"""identify (``/ipfs/id/1.0.0``) and identify/push (``/ipfs/id/push/1.0.0``) messages.

libp2p/specs ``identify/README.md``: the identified peer writes one length-prefixed ``Identify``
protobuf (``pb/identify.proto``) and closes the stream; a pusher opens the push protocol, writes one
message and closes, and the receiver applies the fields that are present ("missing fields should
be ignored").

Sizes.  We send at most :data:`MAX_OUTGOING_SIZE` (4 KiB) of protobuf, the limit of rust-libp2p
(go-libp2p caps its own message at 4 KiB for that reason), and accept up to
:data:`MAX_INCOMING_SIZE` (8 KiB, go's and js's read limit) per message.  go-libp2p splits its
answer in two messages when it exceeds 2 KiB and carries a signed record (the second message holds
only the record); protobuf merges concatenated messages, so :class:`IdentifyReader` reads up to
:data:`MAX_MESSAGES` messages until end of stream and decodes their concatenation.  We always send
one message (js-libp2p and rust-libp2p read only one).

Trust.  ``publicKey`` must match the peer the connection authenticated (``expected_peer``), or
:func:`decode_identify` raises :class:`~aiolibp2p.core.errors.PeerIdMismatch`.  The signed peer
record is opened with :meth:`PeerRecord.open_signed` and must belong to the same peer.  A record
that is malformed, fails its signature, or names another peer is *dropped*, not raised: the rest of
the message is still usable (protocols, versions, observed address), and go-libp2p does the same.
But a peer that sent a bad record does not get its unsigned ``listenAddrs`` believed either: like
go-libp2p, the decoded :attr:`IdentifyInfo.listen_addrs` is then empty, and
:attr:`IdentifyInfo.record_error` says why.  With a valid record, the spec says its addresses win
over ``listenAddrs``: :attr:`IdentifyInfo.effective_addrs` applies that rule.

Hostile input: any bytes raise only :class:`~aiolibp2p.core.errors.DecodeError` subclasses (or
:class:`~aiolibp2p.core.errors.PeerIdMismatch`); addresses that do not parse and protocol ids that
are not UTF-8 are skipped; at most :data:`MAX_LISTEN_ADDRS` addresses and :data:`MAX_PROTOCOLS`
protocols are kept (go-libp2p's per-peer bounds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast

from google.protobuf.message import DecodeError as _PbDecodeError

from aiolibp2p._accel import varint
from aiolibp2p._version import __version__
from aiolibp2p.core.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from aiolibp2p.core.errors import (
    DecodeError,
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    PeerIdMismatch,
)
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import Envelope, PeerRecord
from aiolibp2p.proto.multistream import MAX_PROTOCOL_ID_LENGTH

from .pb import identify_pb2

__all__ = [
    "DEFAULT_AGENT_VERSION",
    "DEFAULT_PROTOCOL_VERSION",
    "MAX_INCOMING_SIZE",
    "MAX_LISTEN_ADDRS",
    "MAX_MESSAGES",
    "MAX_OUTGOING_SIZE",
    "MAX_PROTOCOLS",
    "PROTOCOL_ID",
    "PUSH_PROTOCOL_ID",
    "EncodedIdentify",
    "IdentifyInfo",
    "IdentifyReader",
    "KnownRecord",
    "OBSERVED_ADDR_RESERVE",
    "PreparedIdentify",
    "build_identify",
    "decode_identify",
    "encode_identify",
]

#: The identify protocol id: the dialer asks, the listener answers with one message.
PROTOCOL_ID: Final = "/ipfs/id/1.0.0"
#: The identify/push protocol id: the opener sends one (possibly partial) message.
PUSH_PROTOCOL_ID: Final = "/ipfs/id/push/1.0.0"
#: Largest protobuf body we send (rust-libp2p refuses more).
MAX_OUTGOING_SIZE: Final = 4096
#: Largest protobuf body we accept per message (go-libp2p and js-libp2p read up to 8 KiB).
MAX_INCOMING_SIZE: Final = 8192
#: Most messages merged into one identify answer (go-libp2p's bound).
MAX_MESSAGES: Final = 10
#: Most listen addresses kept from one message.
MAX_LISTEN_ADDRS: Final = 500
#: Most protocol ids kept from one message.
MAX_PROTOCOLS: Final = 1024
#: ``protocolVersion`` sent unless told otherwise (what go-, js- and rust-libp2p send).
DEFAULT_PROTOCOL_VERSION: Final = "ipfs/0.1.0"
#: ``agentVersion`` sent unless told otherwise.
DEFAULT_AGENT_VERSION: Final = f"aiolibp2p/{__version__}"

_Buffer = bytes | bytearray | memoryview
#: A signed peer record verified earlier: the bytes it arrived as, its envelope and its record.
KnownRecord = tuple[bytes, Envelope, PeerRecord]


# ----------------------------------------------------------------------------- encoding


@dataclass(frozen=True, slots=True)
class EncodedIdentify:
    """What :func:`build_identify` produced, and what it had to leave out to stay in 4 KiB."""

    #: The length-prefixed message, ready to write.
    data: bytes
    #: Listen addresses left out (a suffix of those given), in order.
    dropped_listen_addrs: tuple[Multiaddr, ...] = ()
    #: Protocol ids left out (a suffix of those given), in order.
    dropped_protocols: tuple[str, ...] = ()
    #: Whether the signed peer record was left out (it alone did not fit with the fixed fields).
    dropped_signed_record: bool = False

    @property
    def trimmed(self) -> bool:
        """Whether anything was left out."""
        return bool(
            self.dropped_listen_addrs or self.dropped_protocols or self.dropped_signed_record
        )


def _field_size(length: int) -> int:
    """Bytes of one length-delimited protobuf field with a one-byte tag (field numbers < 16)."""
    return 1 + varint.uvarint_size(length) + length


def _text(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{name} is not valid UTF-8: {exc}") from None


def _addr_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, Multiaddr):
        raise LocalProtocolError(f"{name} must hold Multiaddr, not {type(value).__name__}")
    raw: bytes = value.to_bytes()
    return raw


def _sequence(name: str, values: object) -> tuple[object, ...]:
    if isinstance(values, (str, bytes, Multiaddr)) or not isinstance(values, Iterable):
        raise LocalProtocolError(f"{name} must be a sequence, not {type(values).__name__}")
    return tuple(values)


def build_identify(
    *,
    private_key: PrivateKey | None = None,
    listen_addrs: Iterable[Multiaddr] = (),
    protocols: Iterable[str] = (),
    observed_addr: Multiaddr | None = None,
    protocol_version: str | None = DEFAULT_PROTOCOL_VERSION,
    agent_version: str | None = DEFAULT_AGENT_VERSION,
    signed_envelope: Envelope | None = None,
) -> EncodedIdentify:
    """Encode an Identify message of at most :data:`MAX_OUTGOING_SIZE` bytes, and say what was cut.

    ``private_key`` supplies ``publicKey`` (omitted when ``None``, e.g. in a push);
    ``protocol_version``/``agent_version``/``observed_addr``/``signed_envelope`` are omitted when
    ``None``.  ``signed_envelope`` must hold our :class:`PeerRecord` (payload type ``0x0301``),
    signed by ``private_key`` when one is given.

    When the message would exceed 4 KiB, listen addresses are dropped from the end first, then
    protocols from the end (addresses are also in the signed record, protocols are not); the
    signed record is dropped only if it does not fit next to the key, versions and observed
    address alone.  Raises :class:`LocalProtocolError` for arguments of the wrong type, and if the
    key, versions and observed address alone exceed 4 KiB.
    """
    body, dropped = _build(
        private_key=private_key,
        listen_addrs=listen_addrs,
        protocols=protocols,
        observed_addr=observed_addr,
        protocol_version=protocol_version,
        agent_version=agent_version,
        signed_envelope=signed_envelope,
        reserve=0,
    )
    return EncodedIdentify(varint.encode_lp(body), *dropped)


_Dropped = tuple[tuple[Multiaddr, ...], tuple[str, ...], bool]


def _build(
    *,
    private_key: PrivateKey | None,
    listen_addrs: Iterable[Multiaddr],
    protocols: Iterable[str],
    observed_addr: Multiaddr | None,
    protocol_version: str | None,
    agent_version: str | None,
    signed_envelope: Envelope | None,
    reserve: int,
) -> tuple[bytes, _Dropped]:
    """The protobuf body (no prefix) and what was dropped, in ``MAX_OUTGOING_SIZE - reserve``."""
    limit = MAX_OUTGOING_SIZE - reserve
    if private_key is not None and not isinstance(private_key, PrivateKey):
        raise LocalProtocolError(
            f"private_key must be a PrivateKey, not {type(private_key).__name__}"
        )
    addrs: list[Multiaddr] = []
    addr_bytes: list[bytes] = []
    for addr in _sequence("listen_addrs", listen_addrs):
        addr_bytes.append(_addr_bytes("listen_addrs", addr))
        addrs.append(cast(Multiaddr, addr))  # _addr_bytes checked the type
    protos: list[str] = []
    proto_bytes: list[bytes] = []
    for proto in _sequence("protocols", protocols):
        if not isinstance(proto, str) or not proto:
            raise LocalProtocolError(f"a protocol id must be a non-empty str, not {proto!r}")
        proto_bytes.append(_text("protocols", proto))
        protos.append(proto)

    msg = identify_pb2.Identify()
    fixed = 0
    if private_key is not None:
        msg.publicKey = private_key.public_key().to_protobuf()
        fixed += _field_size(len(msg.publicKey))
    if observed_addr is not None:
        msg.observedAddr = _addr_bytes("observed_addr", observed_addr)
        fixed += _field_size(len(msg.observedAddr))
    if protocol_version is not None:
        msg.protocolVersion = _text("protocol_version", protocol_version)
        fixed += _field_size(len(msg.protocolVersion))
    if agent_version is not None:
        msg.agentVersion = _text("agent_version", agent_version)
        fixed += _field_size(len(msg.agentVersion))
    if fixed > limit:
        raise LocalProtocolError(
            f"identify key, versions and observed address take {fixed} bytes, "
            f"more than the {limit}-byte limit"
        )

    dropped_record = False
    if signed_envelope is not None:
        if not isinstance(signed_envelope, Envelope):
            raise LocalProtocolError(
                f"signed_envelope must be an Envelope, not {type(signed_envelope).__name__}"
            )
        if signed_envelope.payload_type != PeerRecord.PAYLOAD_TYPE:
            raise LocalProtocolError("signed_envelope does not hold a peer record")
        if private_key is not None and signed_envelope.public_key != private_key.public_key():
            raise LocalProtocolError("signed_envelope is not signed by private_key")
        record = signed_envelope.to_bytes()
        size = _field_size(len(record))
        if fixed + size <= limit:
            msg.signedPeerRecord = record
            fixed += size
        else:
            dropped_record = True

    budget = limit - fixed
    kept_protocols = 0
    for raw in proto_bytes:
        size = _field_size(len(raw))
        if size > budget:
            break
        budget -= size
        kept_protocols += 1
    kept_addrs = 0
    for raw in addr_bytes:
        size = _field_size(len(raw))
        if size > budget:
            break
        budget -= size
        kept_addrs += 1
    msg.protocols.extend(proto_bytes[:kept_protocols])
    msg.listenAddrs.extend(addr_bytes[:kept_addrs])

    body: bytes = msg.SerializeToString(deterministic=True)
    if len(body) > limit:  # pragma: no cover - the arithmetic above forbids it
        raise AssertionError(f"identify body of {len(body)} bytes after trimming")
    dropped = (tuple(addrs[kept_addrs:]), tuple(protos[kept_protocols:]), dropped_record)
    return body, dropped


def encode_identify(
    *,
    private_key: PrivateKey | None = None,
    listen_addrs: Iterable[Multiaddr] = (),
    protocols: Iterable[str] = (),
    observed_addr: Multiaddr | None = None,
    protocol_version: str | None = DEFAULT_PROTOCOL_VERSION,
    agent_version: str | None = DEFAULT_AGENT_VERSION,
    signed_envelope: Envelope | None = None,
) -> bytes:
    """The length-prefixed Identify message: :func:`build_identify` ``(...).data``.

    Use :func:`build_identify` to learn which addresses or protocols the 4 KiB cap left out.
    """
    return build_identify(
        private_key=private_key,
        listen_addrs=listen_addrs,
        protocols=protocols,
        observed_addr=observed_addr,
        protocol_version=protocol_version,
        agent_version=agent_version,
        signed_envelope=signed_envelope,
    ).data


#: Bytes a :class:`PreparedIdentify` keeps free for ``observedAddr`` (its field header and an
#: IPv6 address with TCP or UDP/QUIC take under 30).
OBSERVED_ADDR_RESERVE: Final = 64
#: The tag of ``observedAddr`` (field 4, length-delimited).
_OBSERVED_TAG: Final = b"\x22"


class PreparedIdentify:
    """Our Identify message encoded once, for every connection until our state changes.

    Takes the arguments of :func:`build_identify` except ``observed_addr``, which differs per
    connection: :meth:`encode` inserts it into the prepared bytes (where a full encode would put
    it, so the output is :func:`build_identify`'s while the cap cuts nothing).  The prepared
    message keeps :data:`OBSERVED_ADDR_RESERVE` bytes of the 4 KiB free for it (so near the cap
    it may cut a little more than a full encode); a longer observed address falls back to a full
    encode.
    """

    __slots__ = ("_full", "_head", "_tail", "dropped_listen_addrs", "dropped_protocols")

    def __init__(
        self,
        *,
        private_key: PrivateKey | None = None,
        listen_addrs: Iterable[Multiaddr] = (),
        protocols: Iterable[str] = (),
        protocol_version: str | None = DEFAULT_PROTOCOL_VERSION,
        agent_version: str | None = DEFAULT_AGENT_VERSION,
        signed_envelope: Envelope | None = None,
    ) -> None:
        addrs = cast(tuple[Multiaddr, ...], _sequence("listen_addrs", listen_addrs))
        protos = cast(tuple[str, ...], _sequence("protocols", protocols))

        def full(observed_addr: Multiaddr | None, reserve: int) -> tuple[bytes, _Dropped]:
            return _build(
                private_key=private_key,
                listen_addrs=addrs,
                protocols=protos,
                observed_addr=observed_addr,
                protocol_version=protocol_version,
                agent_version=agent_version,
                signed_envelope=signed_envelope,
                reserve=reserve,
            )

        self._full = full
        body, dropped = full(None, OBSERVED_ADDR_RESERVE)
        #: What the 4 KiB cap (less the reserve) left out, as in :class:`EncodedIdentify`.
        self.dropped_listen_addrs, self.dropped_protocols, _ = dropped
        # Fields 1-3 come before observedAddr (4) in a deterministic encoding, 5-8 after it.
        msg = identify_pb2.Identify.FromString(body)
        for name in ("protocolVersion", "agentVersion", "signedPeerRecord"):
            msg.ClearField(name)
        head: bytes = msg.SerializeToString(deterministic=True)
        if not body.startswith(head):  # pragma: no cover - protobuf orders fields by number
            raise AssertionError("identify fields are not in field-number order")
        self._head = head
        self._tail = body[len(head) :]

    def encode(self, observed_addr: Multiaddr | None = None) -> bytes:
        """The length-prefixed message with ``observed_addr`` (omitted when ``None``)."""
        if observed_addr is None:
            return varint.encode_lp(self._head + self._tail)
        raw = _addr_bytes("observed_addr", observed_addr)
        field = _OBSERVED_TAG + varint.encode_uvarint(len(raw)) + raw
        if len(field) > OBSERVED_ADDR_RESERVE:
            return varint.encode_lp(self._full(observed_addr, 0)[0])
        return varint.encode_lp(b"".join((self._head, field, self._tail)))


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True, slots=True)
class IdentifyInfo:
    """A decoded, checked Identify message.  ``None`` means the field was absent.

    Repeated fields cannot say "absent" on the wire: an empty tuple is "none sent", which in a
    push (``push=True``) means "no change".
    """

    #: The sender's key (``publicKey``), checked against the expected peer.
    public_key: PublicKey | None
    #: The peer id of :attr:`public_key`.
    peer_id: PeerId | None
    #: ``listenAddrs`` that parse, deduplicated, at most :data:`MAX_LISTEN_ADDRS`; empty when a
    #: signed record was present but rejected (see :attr:`record_error`).
    listen_addrs: tuple[Multiaddr, ...]
    #: ``protocols`` that are valid protocol ids, deduplicated, at most :data:`MAX_PROTOCOLS`.
    protocols: tuple[str, ...]
    #: Our address as the sender sees it (``None`` if absent or unparseable).
    observed_addr: Multiaddr | None
    protocol_version: str | None
    agent_version: str | None
    #: The verified peer record, or ``None`` (absent or rejected).
    signed_record: PeerRecord | None
    #: The verified envelope holding :attr:`signed_record`.
    signed_envelope: Envelope | None
    #: Why a signed record that was present got rejected (``None`` if absent or accepted).
    record_error: str | None = None
    #: Whether this came from identify/push (absent fields mean "no change").
    push: bool = False
    #: The bytes :attr:`signed_envelope` arrived as (for ``known_record`` next time).
    signed_envelope_bytes: bytes | None = None

    @property
    def effective_addrs(self) -> tuple[Multiaddr, ...]:
        """The addresses to use: the signed record's when there is one (the spec's rule), else
        :attr:`listen_addrs`."""
        if self.signed_record is not None:
            return self.signed_record.addrs[:MAX_LISTEN_ADDRS]
        return self.listen_addrs


def _parse_addrs(raws: Iterable[bytes]) -> tuple[Multiaddr, ...]:
    seen: set[bytes] = set()
    out: list[Multiaddr] = []
    for raw in raws:
        if len(out) >= MAX_LISTEN_ADDRS:
            break
        if raw in seen:
            continue
        try:
            addr = parse_multiaddr(raw)
        except Libp2pError:
            continue
        seen.add(raw)
        out.append(addr)
    return tuple(out)


def _parse_protocols(raws: Iterable[bytes]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for raw in raws:
        if len(out) >= MAX_PROTOCOLS:
            break
        if not raw or len(raw) > MAX_PROTOCOL_ID_LENGTH or b"\n" in raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text not in seen:
            seen.add(text)
            out.append(text)
    return tuple(out)


def decode_identify(
    data: _Buffer,
    *,
    expected_peer: PeerId | None = None,
    push: bool = False,
    max_size: int = MAX_INCOMING_SIZE,
    known_record: KnownRecord | None = None,
) -> IdentifyInfo:
    """Decode and check an Identify protobuf body (without its length prefix).

    ``expected_peer`` is the peer the connection authenticated; a ``publicKey`` of another peer
    raises :class:`PeerIdMismatch`, and the signed record must name it too.  For a message split
    over several length-prefixed parts, pass the concatenated bodies and a ``max_size`` covering
    them (or use :class:`IdentifyReader`).

    ``known_record``: ``(bytes, envelope, record)`` of a signed record this peer sent before and
    that verified then (:attr:`IdentifyInfo.signed_envelope_bytes` and what came with it).  When
    the message carries exactly these bytes, the envelope is not opened and verified again; a
    ``publicKey`` equal to the envelope's key is not decoded again either.

    Raises :class:`MessageTooLarge` above ``max_size``, :class:`DecodeError` (or a subclass, e.g.
    :class:`~aiolibp2p.core.errors.KeyDecodeError`) for a malformed message or key.  See the module
    docstring for what is skipped or dropped rather than raised.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LocalProtocolError(f"identify data must be bytes, not {type(data).__name__}")
    if expected_peer is not None and not isinstance(expected_peer, PeerId):
        raise LocalProtocolError(
            f"expected_peer must be a PeerId, not {type(expected_peer).__name__}"
        )
    body = bytes(data)
    if len(body) > max_size:
        raise MessageTooLarge(len(body), max_size)
    try:
        msg = identify_pb2.Identify.FromString(body)
    except _PbDecodeError as exc:
        raise DecodeError(f"malformed identify message: {exc}") from exc

    public_key: PublicKey | None = None
    peer_id: PeerId | None = None
    if msg.HasField("publicKey"):
        if known_record is not None and msg.publicKey == known_record[1].public_key.to_protobuf():
            # The key that signed the known record (whose peer id is that key's).
            public_key, peer_id = known_record[1].public_key, known_record[2].peer_id
        else:
            public_key = public_key_from_protobuf(
                msg.publicKey
            )  # a KeyDecodeError is a DecodeError
            peer_id = PeerId.from_public_key(public_key)
        if expected_peer is not None and peer_id != expected_peer:
            raise PeerIdMismatch(
                f"identify public key belongs to {peer_id}, not to the connected {expected_peer}"
            )
    sender = peer_id if peer_id is not None else expected_peer

    listen_addrs = _parse_addrs(msg.listenAddrs)
    signed_envelope: Envelope | None = None
    signed_record: PeerRecord | None = None
    record_error: str | None = None
    signed_bytes: bytes | None = None
    if msg.HasField("signedPeerRecord"):
        signed_bytes = msg.signedPeerRecord
        try:
            if known_record is not None and known_record[0] == signed_bytes:
                signed_envelope, signed_record = known_record[1], known_record[2]
            else:
                signed_envelope, signed_record = PeerRecord.open_signed(
                    signed_bytes, max_size=max_size
                )
        except Libp2pError as exc:
            record_error = f"invalid signed peer record: {exc}"
        else:
            if sender is not None and signed_record.peer_id != sender:
                record_error = f"signed peer record of {signed_record.peer_id}, not of {sender}"
        if record_error is not None:
            signed_envelope = signed_record = signed_bytes = None
            listen_addrs = ()

    observed: Multiaddr | None = None
    if msg.HasField("observedAddr"):
        try:
            observed = parse_multiaddr(msg.observedAddr)
        except Libp2pError:
            observed = None

    return IdentifyInfo(
        public_key=public_key,
        peer_id=peer_id,
        listen_addrs=listen_addrs,
        protocols=_parse_protocols(msg.protocols),
        observed_addr=observed,
        protocol_version=(
            msg.protocolVersion.decode("utf-8", "replace")
            if msg.HasField("protocolVersion")
            else None
        ),
        agent_version=(
            msg.agentVersion.decode("utf-8", "replace") if msg.HasField("agentVersion") else None
        ),
        signed_record=signed_record,
        signed_envelope=signed_envelope,
        record_error=record_error,
        push=bool(push),
        signed_envelope_bytes=signed_bytes,
    )


class IdentifyReader:
    """Collect the length-prefixed Identify message(s) of one stream until its end (sans-IO).

    Feed every chunk to :meth:`receive_data`; at end of stream call :meth:`finish`, which merges
    the messages (go-libp2p may send the signed record in a second one) and decodes them.  Holds
    at most ``max_messages`` bodies of ``max_size`` bytes plus one incomplete message.
    """

    __slots__ = ("_bodies", "_buf", "_max_messages", "_max_size")

    def __init__(self, *, max_size: int = MAX_INCOMING_SIZE, max_messages: int = MAX_MESSAGES):
        for name, value in (("max_size", max_size), ("max_messages", max_messages)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LocalProtocolError(f"{name} must be a positive int, got {value!r}")
        self._max_size = max_size
        self._max_messages = max_messages
        self._buf = bytearray()
        self._bodies: list[bytes] = []

    @property
    def message_count(self) -> int:
        """Complete messages received so far."""
        return len(self._bodies)

    def receive_data(self, data: _Buffer) -> None:
        """Take bytes from the stream.

        Raises :class:`MessageTooLarge` for a message above ``max_size`` (as soon as its length
        prefix is complete), :class:`DecodeError` for more than ``max_messages`` messages or a
        malformed prefix.
        """
        if not data:
            return
        buf = self._buf
        buf += data
        with memoryview(buf) as view:
            bodies, used = varint.split_lp(view, max_size=self._max_size)
        del buf[:used]
        if len(self._bodies) + len(bodies) > self._max_messages:
            raise DecodeError(f"more than {self._max_messages} identify messages on one stream")
        self._bodies += bodies

    def finish(
        self,
        *,
        expected_peer: PeerId | None = None,
        push: bool = False,
        known_record: KnownRecord | None = None,
    ) -> IdentifyInfo:
        """The stream ended: decode the merged messages (see :func:`decode_identify`).

        Raises :class:`DecodeError` if the stream ended inside a message or held no message.
        """
        if self._buf:
            raise DecodeError(f"identify stream ended inside a message ({len(self._buf)} bytes)")
        if not self._bodies:
            raise DecodeError("identify stream ended without a message")
        return decode_identify(
            b"".join(self._bodies),
            expected_peer=expected_peer,
            push=push,
            max_size=self._max_size * self._max_messages,
            known_record=known_record,
        )
