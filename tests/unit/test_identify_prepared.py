"""Identify encoded once per state (:class:`PreparedIdentify`) and signed records that are not
verified twice (``known_record``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolibp2p._accel import varint
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import LocalProtocolError
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import PeerRecord
from aiolibp2p.proto.identify import (
    MAX_OUTGOING_SIZE,
    OBSERVED_ADDR_RESERVE,
    PreparedIdentify,
    build_identify,
    decode_identify,
)
from aiolibp2p.proto.identify.pb import identify_pb2

KEY = generate_private_key()
PEER = PeerId.from_public_key(KEY.public_key())
ADDRS = (
    parse_multiaddr("/ip4/1.2.3.4/tcp/4001"),
    parse_multiaddr("/ip6/2606:4700::1/udp/4001/quic-v1"),
)
PROTOCOLS = ("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/echo/1.0.0")
ENVELOPE = PeerRecord(PEER, 7, ADDRS).seal(KEY)
OBSERVED = (
    None,
    parse_multiaddr("/ip4/203.0.114.7/tcp/55555"),
    parse_multiaddr("/ip6/2001:db8::1234:5678:9abc:def0/udp/4001/quic-v1"),
)


def _body(framed: bytes) -> bytes:
    decoded = varint.decode_lp(framed, max_size=1 << 20)
    assert decoded is not None and decoded[1] == len(framed)
    return decoded[0]


def _args(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "private_key": KEY,
        "listen_addrs": ADDRS,
        "protocols": PROTOCOLS,
        "protocol_version": "ipfs/0.1.0",
        "agent_version": "aiolibp2p/test",
        "signed_envelope": ENVELOPE,
    }
    args.update(over)
    return args


@pytest.mark.parametrize("observed", OBSERVED, ids=["none", "ip4-tcp", "ip6-quic"])
@pytest.mark.parametrize(
    "over",
    [{}, {"signed_envelope": None}, {"private_key": None}, {"agent_version": None}],
    ids=["full", "no-record", "no-key", "no-agent"],
)
def test_prepared_message_is_what_a_full_encode_gives(
    observed: Multiaddr | None, over: dict[str, Any]
) -> None:
    prepared = PreparedIdentify(**_args(**over))
    full = build_identify(observed_addr=observed, **_args(**over)).data
    assert prepared.encode(observed) == full
    assert prepared.encode(observed) == full  # reusable


def test_decoding_a_prepared_message() -> None:
    observed = OBSERVED[1]
    info = decode_identify(_body(PreparedIdentify(**_args()).encode(observed)), expected_peer=PEER)
    assert info.observed_addr == observed
    assert info.protocols == PROTOCOLS
    assert info.listen_addrs == ADDRS
    assert info.signed_record == PeerRecord(PEER, 7, ADDRS)


def test_the_reserve_keeps_room_for_the_observed_address() -> None:
    # Enough protocols to overflow 4 KiB: the prepared message trims them and leaves the reserve.
    protocols = tuple(f"/p/{i:04d}/" + "x" * 40 for i in range(200))
    prepared = PreparedIdentify(**_args(protocols=protocols))
    assert prepared.dropped_protocols
    assert len(_body(prepared.encode(None))) <= MAX_OUTGOING_SIZE - OBSERVED_ADDR_RESERVE
    for observed in OBSERVED:
        assert len(_body(prepared.encode(observed))) <= MAX_OUTGOING_SIZE


def test_a_long_observed_address_falls_back_to_a_full_encode() -> None:
    long_addr = parse_multiaddr("/dns4/" + "a" * 60 + ".example.com/tcp/443")
    prepared = PreparedIdentify(**_args())
    assert prepared.encode(long_addr) == build_identify(observed_addr=long_addr, **_args()).data


def test_prepared_arguments_are_checked() -> None:
    with pytest.raises(LocalProtocolError):
        PreparedIdentify(**_args(protocols="/not/a/sequence"))
    with pytest.raises(LocalProtocolError):
        PreparedIdentify(**_args(listen_addrs=["/ip4/1.2.3.4/tcp/1"]))
    with pytest.raises(LocalProtocolError):
        PreparedIdentify(**_args()).encode("/ip4/1.2.3.4/tcp/1")  # type: ignore[arg-type]


_protocol = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(
    protocols=st.lists(_protocol, max_size=120, unique=True),
    observed=st.sampled_from(OBSERVED),
    agent=st.text(max_size=300),
)
def test_prepared_never_exceeds_the_cap(
    protocols: list[str], observed: Multiaddr | None, agent: str
) -> None:
    prepared = PreparedIdentify(**_args(protocols=protocols, agent_version=agent))
    body = _body(prepared.encode(observed))
    assert len(body) <= MAX_OUTGOING_SIZE
    msg: Any = identify_pb2.Identify.FromString(body)
    kept = [p.decode() for p in msg.protocols]
    assert kept == protocols[: len(kept)]
    assert list(prepared.dropped_protocols) == protocols[len(kept) :]


# ------------------------------------------------------------------------------- known record


def _message(envelope: Any = ENVELOPE) -> bytes:
    return _body(build_identify(**_args(signed_envelope=envelope)).data)


def test_a_known_record_is_reused_without_opening_it() -> None:
    first = decode_identify(_message(), expected_peer=PEER)
    assert first.signed_envelope_bytes is not None
    assert first.signed_envelope is not None and first.signed_record is not None
    known = (first.signed_envelope_bytes, first.signed_envelope, first.signed_record)
    again = decode_identify(_message(), expected_peer=PEER, known_record=known)
    assert again.signed_envelope is first.signed_envelope  # the same objects: not re-opened
    assert again.signed_record is first.signed_record
    assert again.effective_addrs == ADDRS


def test_other_bytes_than_the_known_record_are_verified() -> None:
    first = decode_identify(_message(), expected_peer=PEER)
    assert first.signed_envelope is not None and first.signed_record is not None
    known = (first.signed_envelope_bytes or b"", first.signed_envelope, first.signed_record)
    newer = PeerRecord(PEER, 8, ADDRS[:1]).seal(KEY)
    info = decode_identify(_message(newer), expected_peer=PEER, known_record=known)
    assert info.signed_record == PeerRecord(PEER, 8, ADDRS[:1])
    # A corrupted record with the known one on file is still rejected.
    raw = bytearray(newer.to_bytes())
    raw[-1] ^= 1
    msg = identify_pb2.Identify.FromString(_message())
    msg.signedPeerRecord = bytes(raw)
    bad = decode_identify(msg.SerializeToString(), expected_peer=PEER, known_record=known)
    assert bad.signed_record is None and bad.record_error is not None
    assert bad.signed_envelope_bytes is None


def test_a_known_record_of_another_peer_is_still_refused() -> None:
    other = generate_private_key()
    other_peer = PeerId.from_public_key(other.public_key())
    first = decode_identify(_message(), expected_peer=PEER)
    assert first.signed_envelope is not None and first.signed_record is not None
    known = (first.signed_envelope_bytes or b"", first.signed_envelope, first.signed_record)
    # The same bytes arriving from another peer (no publicKey field to contradict it).
    msg = identify_pb2.Identify.FromString(_message())
    msg.ClearField("publicKey")
    info = decode_identify(msg.SerializeToString(), expected_peer=other_peer, known_record=known)
    assert info.signed_record is None
    assert info.record_error is not None and "not of" in info.record_error
