"""The identify codec: round trips, the 4 KiB cap, signed records, hostile bytes, a real capture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p._accel import varint
from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import (
    DecodeError,
    KeyDecodeError,
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    PeerIdMismatch,
)
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr
from aiolibp2p.core.peer import PeerId
from aiolibp2p.core.record import Envelope, PeerRecord
from aiolibp2p.proto.identify import (
    DEFAULT_AGENT_VERSION,
    MAX_INCOMING_SIZE,
    MAX_LISTEN_ADDRS,
    MAX_MESSAGES,
    MAX_OUTGOING_SIZE,
    MAX_PROTOCOLS,
    PROTOCOL_ID,
    PUSH_PROTOCOL_ID,
    IdentifyReader,
    build_identify,
    decode_identify,
    encode_identify,
)
from aiolibp2p.proto.identify.pb import identify_pb2

ADDRS = (
    parse_multiaddr("/ip4/1.2.3.4/tcp/4001"),
    parse_multiaddr("/ip6/2606:4700::1/udp/4001/quic-v1"),
    parse_multiaddr("/dns4/example.com/tcp/443/wss"),
)
PROTOCOLS = ("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0", "/meshsub/1.1.0")
OBSERVED = parse_multiaddr("/ip4/203.0.114.7/tcp/55555")

# A real identify message from a parity-polkadot v0.7.18 node (rust-libp2p), captured by the
# emeraldpay polkadot crawler: github.com/splix/moonbeam @ 567aa5d23da2be64e62fdab53c9b5adeccca6227,
# src/test/groovy/io/emeraldpay/polkadotcrawler/libp2p/IdentifyProtocolSpec.groovy (protobuf body,
# no length prefix).  Only the hex is taken; the expected values below were read from it.
CAPTURED_RUST = bytes.fromhex(
    "2a0e2f7375627374726174652f312e30323b7061726974792d706f6c6b61646f742f76302e372e31382d"
    "66633130306536352d7838365f36342d6c696e75782d676e752028756e6b6e6f776e290a240801122042"
    "130f7467bf5bf6c68677a986615f8d5490b2ea23d96f8f7e6614b3de566a54121d36187032702e636333"
    "2d332e6b7573616d612e6e6574776f726b06759412080423b2c350067594120804030a87f20675941208"
    "047f0000010675941208040a00010f0675942208040a00018606d4d21a132f7375627374726174652f6b"
    "736d6363332f351a132f7375627374726174652f6b736d6363332f341a132f7375627374726174652f6b"
    "736d6363332f331a102f697066732f70696e672f312e302e301a0e2f697066732f69642f312e302e301a"
    "0f2f697066732f6b61642f312e302e30"
)


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    return {t: generate_private_key(t) for t in KeyType}


@pytest.fixture(scope="module")
def key(keys: dict[KeyType, PrivateKey]) -> PrivateKey:
    return keys[KeyType.Ed25519]


@pytest.fixture(scope="module")
def other_key() -> PrivateKey:
    return generate_private_key(KeyType.Ed25519)


def _peer(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key())


def _envelope(key: PrivateKey, addrs: tuple[Multiaddr, ...] = ADDRS, seq: int = 1) -> Envelope:
    return PeerRecord(_peer(key), seq, addrs).seal(key)


def _body(framed: bytes) -> bytes:
    decoded = varint.decode_lp(framed, max_size=1 << 20)
    assert decoded is not None
    body, end = decoded
    assert end == len(framed)
    return body


def _pb(**fields: object) -> bytes:
    return identify_pb2.Identify(**fields).SerializeToString()  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- round trips


def test_constants() -> None:
    assert PROTOCOL_ID == "/ipfs/id/1.0.0"
    assert PUSH_PROTOCOL_ID == "/ipfs/id/push/1.0.0"
    assert (MAX_OUTGOING_SIZE, MAX_INCOMING_SIZE) == (4096, 8192)
    assert (MAX_LISTEN_ADDRS, MAX_PROTOCOLS, MAX_MESSAGES) == (500, 1024, 10)
    assert DEFAULT_AGENT_VERSION.startswith("aiolibp2p/")


def test_full_round_trip(key: PrivateKey) -> None:
    env = _envelope(key)
    framed = encode_identify(
        private_key=key,
        listen_addrs=ADDRS,
        protocols=PROTOCOLS,
        observed_addr=OBSERVED,
        protocol_version="ipfs/0.1.0",
        agent_version="test-agent/1.2.3",
        signed_envelope=env,
    )
    info = decode_identify(_body(framed), expected_peer=_peer(key))
    assert info.public_key == key.public_key()
    assert info.peer_id == _peer(key)
    assert info.listen_addrs == ADDRS
    assert info.protocols == PROTOCOLS
    assert info.observed_addr == OBSERVED
    assert info.protocol_version == "ipfs/0.1.0"
    assert info.agent_version == "test-agent/1.2.3"
    assert info.signed_envelope == env
    assert info.signed_record == PeerRecord(_peer(key), 1, ADDRS)
    assert info.record_error is None
    assert info.effective_addrs == ADDRS
    assert info.push is False


def test_wire_layout_field_numbers(key: PrivateKey) -> None:
    framed = encode_identify(
        private_key=key,
        listen_addrs=ADDRS[:1],
        protocols=PROTOCOLS[:1],
        observed_addr=OBSERVED,
        protocol_version="p",
        agent_version="a",
    )
    body = _body(framed)
    pk = key.public_key().to_protobuf()
    addr = ADDRS[0].to_bytes()
    obs = OBSERVED.to_bytes()
    # proto2 field order: 1 publicKey, 2 listenAddrs, 3 protocols, 4 observedAddr, 5, 6
    expected = (
        b"\x0a" + bytes([len(pk)]) + pk
        + b"\x12" + bytes([len(addr)]) + addr
        + b"\x1a" + bytes([len(PROTOCOLS[0])]) + PROTOCOLS[0].encode()
        + b"\x22" + bytes([len(obs)]) + obs
        + b"\x2a\x01p" + b"\x32\x01a"
    )  # fmt: skip
    assert body == expected


def test_defaults_and_omitted_fields(key: PrivateKey) -> None:
    info = decode_identify(_body(encode_identify()))
    assert info.protocol_version == "ipfs/0.1.0"
    assert info.agent_version == DEFAULT_AGENT_VERSION
    assert info.public_key is None and info.peer_id is None
    assert info.listen_addrs == () and info.protocols == ()
    assert info.observed_addr is None
    assert info.signed_record is None and info.signed_envelope is None
    assert info.record_error is None
    bare = encode_identify(protocol_version=None, agent_version=None)
    assert bare == b"\x00"  # an empty protobuf, length-prefixed
    info = decode_identify(_body(bare), push=True)
    assert (info.protocol_version, info.agent_version, info.push) == (None, None, True)


def test_empty_strings_are_present_not_absent() -> None:
    info = decode_identify(_body(encode_identify(protocol_version="", agent_version="")))
    assert (info.protocol_version, info.agent_version) == ("", "")


@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda t: t.name)
def test_every_key_type(keys: dict[KeyType, PrivateKey], key_type: KeyType) -> None:
    k = keys[key_type]
    framed = encode_identify(private_key=k, protocols=PROTOCOLS, signed_envelope=_envelope(k))
    info = decode_identify(_body(framed), expected_peer=_peer(k))
    assert info.public_key == k.public_key()
    assert info.signed_record is not None
    assert info.signed_record.peer_id == _peer(k)


def test_push_with_only_protocols(key: PrivateKey) -> None:
    framed = encode_identify(protocols=("/new/1.0.0",), protocol_version=None, agent_version=None)
    info = decode_identify(_body(framed), expected_peer=_peer(key), push=True)
    assert info.push
    assert info.protocols == ("/new/1.0.0",)
    assert info.public_key is None
    assert info.protocol_version is None and info.agent_version is None
    assert info.observed_addr is None and info.signed_record is None


# ----------------------------------------------------------------------------- 4 KiB cap


def _framed_body_len(data: bytes) -> int:
    return len(_body(data))


def _field(n: int) -> int:
    return 1 + varint.uvarint_size(n) + n


def test_many_protocols_are_trimmed_from_the_end(key: PrivateKey) -> None:
    protocols = tuple(f"/app/protocol-number-{i:04d}/1.0.0" for i in range(400))
    env = _envelope(key)
    result = build_identify(
        private_key=key,
        listen_addrs=ADDRS,
        protocols=protocols,
        observed_addr=OBSERVED,
        signed_envelope=env,
    )
    body = _body(result.data)
    assert len(body) <= MAX_OUTGOING_SIZE
    assert result.trimmed
    assert not result.dropped_signed_record
    assert result.dropped_listen_addrs == ADDRS  # addresses go first (the record has them)
    kept = len(protocols) - len(result.dropped_protocols)
    assert 0 < kept < len(protocols)
    assert result.dropped_protocols == protocols[kept:]
    # greedy: the next protocol would not have fitted
    assert len(body) + _field(len(protocols[kept])) > MAX_OUTGOING_SIZE
    info = decode_identify(body, expected_peer=_peer(key))
    assert info.protocols == protocols[:kept]
    assert info.listen_addrs == ()
    assert info.signed_envelope == env  # the record survived
    assert info.effective_addrs == ADDRS


def test_addresses_trimmed_before_protocols(key: PrivateKey) -> None:
    addrs = tuple(parse_multiaddr(f"/dns4/host-{i:05d}.example.com/tcp/4001") for i in range(200))
    result = build_identify(private_key=key, listen_addrs=addrs, protocols=PROTOCOLS)
    assert result.dropped_protocols == ()
    kept = len(addrs) - len(result.dropped_listen_addrs)
    assert 0 < kept < len(addrs)
    assert result.dropped_listen_addrs == addrs[kept:]
    body = _body(result.data)
    assert len(body) <= MAX_OUTGOING_SIZE
    assert len(body) + _field(len(addrs[kept].to_bytes())) > MAX_OUTGOING_SIZE
    assert decode_identify(body).listen_addrs == addrs[:kept]


def test_nothing_trimmed_when_it_fits(key: PrivateKey) -> None:
    result = build_identify(private_key=key, listen_addrs=ADDRS, protocols=PROTOCOLS)
    assert not result.trimmed
    assert result.data == encode_identify(private_key=key, listen_addrs=ADDRS, protocols=PROTOCOLS)


def test_exactly_at_the_limit(key: PrivateKey) -> None:
    base = _framed_body_len(encode_identify(agent_version="", protocol_version=None))
    agent = "x" * (MAX_OUTGOING_SIZE - base - 1)  # the length prefix grows by one byte at 128+
    body = _body(encode_identify(agent_version=agent, protocol_version=None))
    assert len(body) == MAX_OUTGOING_SIZE
    with pytest.raises(LocalProtocolError, match="4096"):
        encode_identify(agent_version=agent + "x", protocol_version=None)


def test_exact_fit_is_kept(key: PrivateKey) -> None:
    env = _envelope(key)
    record_field = _field(len(env.to_bytes()))
    proto = "/p/1.0.0"
    # agentVersion field + record field == 4096 exactly: the record stays; one byte more: dropped
    agent = "a" * (MAX_OUTGOING_SIZE - record_field - 3)  # tag + 2-byte length prefix
    assert _field(len(agent)) + record_field == MAX_OUTGOING_SIZE
    result = build_identify(agent_version=agent, protocol_version=None, signed_envelope=env)
    assert not result.dropped_signed_record
    assert len(_body(result.data)) == MAX_OUTGOING_SIZE
    result = build_identify(agent_version=agent + "a", protocol_version=None, signed_envelope=env)
    assert result.dropped_signed_record
    # the same for a protocol (and an address) that exactly fills the rest
    for kwargs in ({"protocols": [proto]}, {"listen_addrs": [ADDRS[0]]}):
        item = proto.encode() if "protocols" in kwargs else ADDRS[0].to_bytes()
        agent = "a" * (MAX_OUTGOING_SIZE - _field(len(item)) - 3)
        assert _field(len(agent)) + _field(len(item)) == MAX_OUTGOING_SIZE
        result = build_identify(agent_version=agent, protocol_version=None, **kwargs)  # type: ignore[arg-type]
        assert not result.trimmed
        assert len(_body(result.data)) == MAX_OUTGOING_SIZE
        result = build_identify(agent_version=agent + "a", protocol_version=None, **kwargs)  # type: ignore[arg-type]
        assert result.trimmed


def test_record_dropped_only_when_it_cannot_fit(key: PrivateKey) -> None:
    env = _envelope(key)
    agent = "a" * (MAX_OUTGOING_SIZE - 200)
    result = build_identify(private_key=key, agent_version=agent, signed_envelope=env)
    assert result.dropped_signed_record
    body = _body(result.data)
    assert len(body) <= MAX_OUTGOING_SIZE
    info = decode_identify(body)
    assert info.signed_record is None and info.record_error is None
    assert info.agent_version == agent


def test_encode_argument_checks(key: PrivateKey, other_key: PrivateKey) -> None:
    with pytest.raises(LocalProtocolError):
        encode_identify(listen_addrs=["/ip4/1.2.3.4/tcp/1"])  # type: ignore[list-item]
    with pytest.raises(LocalProtocolError):
        encode_identify(listen_addrs=ADDRS[0])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_identify(protocols="/one/1.0.0")
    with pytest.raises(LocalProtocolError):
        encode_identify(protocols=[""])
    with pytest.raises(LocalProtocolError):
        encode_identify(protocols=[b"/bytes"])  # type: ignore[list-item]
    with pytest.raises(LocalProtocolError):
        encode_identify(protocols=["\udcff"])
    with pytest.raises(LocalProtocolError):
        encode_identify(observed_addr="/ip4/1.2.3.4/tcp/1")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_identify(private_key=key.public_key())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_identify(agent_version=5)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="not signed by"):
        encode_identify(private_key=key, signed_envelope=_envelope(other_key))
    foreign = Envelope.seal(key, "some-domain", b"\x03\x99", b"payload")
    with pytest.raises(LocalProtocolError, match="peer record"):
        encode_identify(private_key=key, signed_envelope=foreign)
    with pytest.raises(LocalProtocolError):
        encode_identify(signed_envelope=b"bytes")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- trust


def test_public_key_of_another_peer(key: PrivateKey, other_key: PrivateKey) -> None:
    body = _body(encode_identify(private_key=key))
    with pytest.raises(PeerIdMismatch):
        decode_identify(body, expected_peer=_peer(other_key))
    assert decode_identify(body, expected_peer=_peer(key)).peer_id == _peer(key)
    with pytest.raises(LocalProtocolError):
        decode_identify(body, expected_peer="peer")  # type: ignore[arg-type]


def test_tampered_record_is_dropped(key: PrivateKey) -> None:
    wire = bytearray(_envelope(key).to_bytes())
    wire[-1] ^= 0x01  # the signature is the last field
    body = _pb(
        publicKey=key.public_key().to_protobuf(),
        listenAddrs=[a.to_bytes() for a in ADDRS],
        protocols=[p.encode() for p in PROTOCOLS],
        signedPeerRecord=bytes(wire),
    )
    info = decode_identify(body, expected_peer=_peer(key))
    assert info.signed_record is None and info.signed_envelope is None
    assert info.record_error is not None and "invalid signed peer record" in info.record_error
    assert info.listen_addrs == ()  # unsigned addresses of a peer with a bad record: not believed
    assert info.effective_addrs == ()
    assert info.protocols == PROTOCOLS  # the rest is still usable
    assert info.public_key == key.public_key()


def test_tampered_record_payload_is_dropped(key: PrivateKey) -> None:
    env = _envelope(key)
    forged = Envelope(env.public_key, env.payload_type, env.payload + b"\x00", env.signature)
    body = _pb(signedPeerRecord=forged.to_bytes())
    info = decode_identify(body, expected_peer=_peer(key))
    assert info.signed_record is None and info.record_error is not None


def test_record_of_a_foreign_peer_is_dropped(key: PrivateKey, other_key: PrivateKey) -> None:
    body = _pb(
        publicKey=key.public_key().to_protobuf(),
        listenAddrs=[ADDRS[0].to_bytes()],
        signedPeerRecord=_envelope(other_key).to_bytes(),  # valid, but someone else's
    )
    info = decode_identify(body)
    assert info.signed_record is None
    assert info.record_error is not None and str(_peer(other_key)) in info.record_error
    assert info.listen_addrs == ()
    # with no public key in the message, the connection's peer is the reference
    body = _pb(signedPeerRecord=_envelope(other_key).to_bytes())
    assert decode_identify(body, expected_peer=_peer(key)).signed_record is None
    assert decode_identify(body, expected_peer=_peer(other_key)).signed_record is not None
    # and with neither, a self-signed record is all we can check
    assert decode_identify(body).signed_record is not None


def test_garbage_record_is_dropped() -> None:
    info = decode_identify(_pb(signedPeerRecord=b"\xff\xff", listenAddrs=[ADDRS[0].to_bytes()]))
    assert info.signed_record is None and info.record_error is not None
    assert info.listen_addrs == ()


def test_go_and_js_signed_records_in_an_identify() -> None:
    """Peer records signed by go- and js-libp2p (the foundation's vectors) verify in identify."""
    vectors = json.loads(
        (Path(__file__).resolve().parents[1] / "vectors" / "signed_peer_records.json").read_text()
    )
    for vector in vectors["records"]:
        peer = PeerId.from_string(vector["peer_id"])
        info = decode_identify(
            _pb(signedPeerRecord=bytes.fromhex(vector["envelope"])), expected_peer=peer
        )
        assert info.record_error is None, vector["producer"]
        assert info.signed_record is not None
        assert [str(a) for a in info.effective_addrs] == vector["addrs"]


# ----------------------------------------------------------------------------- lenient parts


def test_unparseable_addresses_and_protocols_are_skipped() -> None:
    body = _pb(
        listenAddrs=[
            b"\xff\xff",
            ADDRS[0].to_bytes(),
            b"",
            ADDRS[0].to_bytes(),
            ADDRS[1].to_bytes(),
        ],
        protocols=[b"/ok/1", b"\xff\xfe", b"", b"/ok/1", b"/with\nnewline", b"x" * 1024, b"/ok/2"],
        observedAddr=b"\x00\x01garbage",
        protocolVersion=b"\xffversion",
        agentVersion=b"agent\xc3",
    )
    info = decode_identify(body)
    assert info.listen_addrs == ADDRS[:2]
    assert info.protocols == ("/ok/1", "/ok/2")
    assert info.observed_addr is None
    assert info.protocol_version == "\ufffdversion"
    assert info.agent_version == "agent\ufffd"


def test_counts_are_bounded() -> None:
    addrs = [
        parse_multiaddr(f"/ip4/10.0.{i // 256}.{i % 256}/tcp/1").to_bytes() for i in range(600)
    ]
    protocols = [f"/{i}".encode() for i in range(1100)]
    body = _pb(listenAddrs=addrs)
    assert len(body) <= MAX_INCOMING_SIZE
    info = decode_identify(body)
    assert len(info.listen_addrs) == MAX_LISTEN_ADDRS
    assert [a.to_bytes() for a in info.listen_addrs] == addrs[:MAX_LISTEN_ADDRS]
    body = _pb(protocols=protocols)
    assert len(body) <= MAX_INCOMING_SIZE
    info = decode_identify(body)
    assert info.protocols == tuple(p.decode() for p in protocols[:MAX_PROTOCOLS])


# ----------------------------------------------------------------------------- malformed input


def test_too_large() -> None:
    body = _pb(agentVersion=b"a" * MAX_INCOMING_SIZE)
    with pytest.raises(MessageTooLarge):
        decode_identify(body)
    decode_identify(_pb(agentVersion=b"a" * (MAX_INCOMING_SIZE - 3)))
    assert len(_pb(agentVersion=b"a" * (MAX_INCOMING_SIZE - 3))) == MAX_INCOMING_SIZE


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x05abc",  # truncated publicKey
        b"\x12",  # tag without a length
        b"\x0b",  # group start
        b"\x07",  # field 0
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint too long
    ],
)
def test_malformed_protobuf(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_identify(body)


def test_malformed_public_key() -> None:
    with pytest.raises(KeyDecodeError):
        decode_identify(_pb(publicKey=b"\x08\x01\x12\x03abc"))
    with pytest.raises(DecodeError):
        decode_identify(_pb(publicKey=b""))
    with pytest.raises(LocalProtocolError):
        decode_identify("text")  # type: ignore[arg-type]


def test_captured_rust_libp2p_message() -> None:
    info = decode_identify(CAPTURED_RUST)
    assert info.agent_version == "parity-polkadot/v0.7.18-fc100e65-x86_64-linux-gnu (unknown)"
    assert info.protocol_version == "/substrate/1.0"
    assert info.peer_id is not None and info.public_key is not None
    assert info.public_key.key_type is KeyType.Ed25519
    assert str(info.peer_id).startswith("12D3KooW")
    assert decode_identify(CAPTURED_RUST, expected_peer=info.peer_id).peer_id == info.peer_id
    assert [str(a) for a in info.listen_addrs] == [
        "/dns4/p2p.cc3-3.kusama.network/tcp/30100",
        "/ip4/35.178.195.80/tcp/30100",
        "/ip4/3.10.135.242/tcp/30100",
        "/ip4/127.0.0.1/tcp/30100",
        "/ip4/10.0.1.15/tcp/30100",
    ]
    assert str(info.observed_addr) == "/ip4/10.0.1.134/tcp/54482"
    assert info.protocols == (
        "/substrate/ksmcc3/5",
        "/substrate/ksmcc3/4",
        "/substrate/ksmcc3/3",
        "/ipfs/ping/1.0.0",
        "/ipfs/id/1.0.0",
        "/ipfs/kad/1.0.0",
    )
    assert info.signed_record is None and info.record_error is None


# ----------------------------------------------------------------------------- reader


def test_reader_single_message_byte_by_byte(key: PrivateKey) -> None:
    framed = encode_identify(private_key=key, protocols=PROTOCOLS, signed_envelope=_envelope(key))
    reader = IdentifyReader()
    for i in range(len(framed)):
        reader.receive_data(framed[i : i + 1])
    assert reader.message_count == 1
    info = reader.finish(expected_peer=_peer(key))
    assert info.protocols == PROTOCOLS and info.signed_record is not None


def test_reader_merges_a_split_answer(key: PrivateKey) -> None:
    """go-libp2p sends the signed record as a second message when the whole exceeds 2 KiB."""
    first = varint.encode_lp(
        _pb(
            publicKey=key.public_key().to_protobuf(),
            listenAddrs=[a.to_bytes() for a in ADDRS],
            protocols=[p.encode() for p in PROTOCOLS],
            agentVersion=b"go-libp2p/test",
        )
    )
    second = varint.encode_lp(_pb(signedPeerRecord=_envelope(key).to_bytes()))
    reader = IdentifyReader()
    reader.receive_data(bytearray(first + second[:5]))
    reader.receive_data(memoryview(second[5:]))
    info = reader.finish(expected_peer=_peer(key), push=True)
    assert reader.message_count == 2
    assert info.agent_version == "go-libp2p/test"
    assert info.signed_record is not None and info.listen_addrs == ADDRS
    assert info.push


def test_reader_bounds() -> None:
    reader = IdentifyReader(max_messages=2)
    reader.receive_data(b"\x00\x00")
    with pytest.raises(DecodeError, match="more than 2"):
        reader.receive_data(b"\x00")
    with pytest.raises(MessageTooLarge):
        IdentifyReader().receive_data(varint.encode_uvarint(MAX_INCOMING_SIZE + 1))
    reader = IdentifyReader()
    reader.receive_data(b"\x05abc")
    with pytest.raises(DecodeError, match="inside a message"):
        reader.finish()
    with pytest.raises(DecodeError, match="without a message"):
        IdentifyReader().finish()
    with pytest.raises(LocalProtocolError):
        IdentifyReader(max_size=0)


# ----------------------------------------------------------------------------- hypothesis


def _typed(fn: object, *args: object, **kwargs: object) -> None:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except Libp2pError as exc:
        assert isinstance(exc, (DecodeError, PeerIdMismatch)), type(exc)


@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    _typed(decode_identify, data)
    _typed(decode_identify, data, push=True)


_fields = st.fixed_dictionaries(
    {},
    optional={
        "publicKey": st.binary(max_size=80),
        "listenAddrs": st.lists(st.binary(max_size=40), max_size=8),
        "protocols": st.lists(st.binary(max_size=20), max_size=8),
        "observedAddr": st.binary(max_size=40),
        "protocolVersion": st.binary(max_size=20),
        "agentVersion": st.binary(max_size=20),
        "signedPeerRecord": st.binary(max_size=200),
    },
)


@given(_fields)
def test_random_well_formed_messages_raise_only_typed_errors(fields: dict[str, object]) -> None:
    _typed(decode_identify, _pb(**fields))


@given(st.data())
def test_truncated_messages_raise_only_typed_errors(data: st.DataObject) -> None:
    body = CAPTURED_RUST
    cut = data.draw(st.integers(0, len(body)))
    flip = data.draw(st.integers(0, len(body) - 1))
    _typed(decode_identify, body[:cut])
    mutated = bytearray(body)
    mutated[flip] ^= data.draw(st.integers(1, 255))
    _typed(decode_identify, bytes(mutated))


@given(st.binary(max_size=300), st.integers(1, 50))
def test_reader_random_stream(data: bytes, chunk: int) -> None:
    reader = IdentifyReader()
    try:
        for i in range(0, len(data), chunk):
            reader.receive_data(data[i : i + chunk])
        reader.finish()
    except Libp2pError as exc:
        assert isinstance(exc, (DecodeError, PeerIdMismatch))


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
    min_size=1,
    max_size=30,
)


@given(st.lists(_text, max_size=20, unique=True), _text, _text)
def test_round_trip_random_text(protocols: list[str], pv: str, av: str) -> None:
    result = build_identify(protocols=protocols, protocol_version=pv, agent_version=av)
    info = decode_identify(_body(result.data))
    assert info.protocols == tuple(protocols)
    assert (info.protocol_version, info.agent_version) == (pv, av)
