"""aiolibp2p.core.multiaddr: strict parsing, /p2p split and join, transport family, address scope.

Text and binary vectors marked "go-multiaddr" come from multiformats/go-multiaddr
``multiaddr_test.go`` (commit 7fae00adf671d9d4b931e591f2357a261567fee5): ``TestConstructFails``,
the ``good`` list, ``TestBytesToString`` and ``TestZone``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aiolibp2p.core.multiaddr as mod
from aiolibp2p._accel import varint
from aiolibp2p.core.crypto import KeyType, generate_private_key
from aiolibp2p.core.errors import Libp2pError, MultiaddrError
from aiolibp2p.core.multiaddr import (
    MAX_MULTIADDR_BYTES,
    MAX_MULTIADDR_TEXT,
    AddressScope,
    Component,
    Multiaddr,
    address_scope,
    components,
    is_link_local,
    is_loopback,
    is_private,
    is_public,
    join_p2p,
    parse_multiaddr,
    protocol_with_name,
    split_p2p,
    transport_family,
)
from aiolibp2p.core.peer import PeerId

# Peer ids used by go-multiaddr's tests: a sha2-256 one (RSA key) and an identity one (Ed25519).
QM = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
ED = "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV"
# go-multiaddr: the CIDv1 of ED, and a base36 CIDv1 of QM
ED_CID = "bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u"
QM_B36 = "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7"
CERTHASH = "uEiAkH5a4DPGKUuOBjYw0CgwjvcJCJMD2K_1aluKR_tpevQ"


def ma(text: str) -> Multiaddr:
    return parse_multiaddr(text)


# --------------------------------------------------------------------------- parse_multiaddr

GOOD = [  # a selection of go-multiaddr's "good" list
    "/ip4/1.2.3.4",
    "/ip4/0.0.0.0",
    "/ip4/192.0.2.0/ipcidr/24",
    "/ip6/::1",
    "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic-v1",
    "/ip6zone/x/ip6/fe80::1",
    "/ip6zone/x/ip6/fe80::1/udp/1234/quic-v1",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234",
    "/udp/0",
    "/tcp/65535",
    f"/ipfs/{QM}",
    f"/p2p/{QM}",
    f"/p2p/{ED}",
    f"/p2p/{ED_CID}",
    f"/p2p/{QM_B36}",
    "/tcp/1234/tls/http",
    "/ip4/127.0.0.1/tcp/1234/",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport",
    "/unix/a/b/c/d/e",
    "/unix/stdio",
    "/ip4/1.2.3.4/tcp/80/unix/a/b/c/d/e/f",
    f"/ip4/127.0.0.1/p2p/{QM}/tcp/1234/unix/stdio",
    "/ip4/127.0.0.1/tcp/127/tls/ws",
    "/ip4/127.0.0.1/tcp/127/wss",
    "/ip4/127.0.0.1/tcp/127/noise",
    "/dns4/example.com/tcp/443/tls/sni/example.com/ws",
    f"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/{CERTHASH}/p2p/{ED}",
    "/memory/1234",
]

BAD = [  # go-multiaddr TestConstructFails (a selection), plus our own strictness
    "/ip4",
    "/ip4/::1",
    "/ip4/fdpsofodsajfdoisa",
    "/ip6",
    "/ip6zone",
    "/ip6zone/",
    "/ip6zone//ip6/fe80::1",
    "/udp",
    "/tcp/65536",
    "/ip4/1.2.3.4/tcp/-1",
    "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa",
    "/ip4/127.0.0.1/quic-v1/1234",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash",
    "/ip4/127.0.0.1/ipfs",
    "/ip4/127.0.0.1/ipfs/tcp",
    "/ip4/127.0.0.1/p2p/tcp",
    "/unix",
    "/ip4/1.2.3.4/tcp/80/unix",
    "/ip4/127.0.0.1/tcp/9090/http/p2p-webcrt-direct",
    "/",
    "",
    "/p2p/QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",  # sha2-256 digest longer than 32
    # ours: a leading "/" is required, no empty components, legacy inet_aton forms refused
    "ip4/1.2.3.4",
    "/ip4//1.2.3.4",
    "/ip4/1.2.3.4//tcp/1",
    "/ip4/1.2.3",
    "/ip4/01.2.3.4",
    "/p2p/12D3KooWnotapeerid",
    "/dns4/ex ample.com",
]


@pytest.mark.parametrize("text", GOOD)
def test_good_text_round_trips(text: str) -> None:
    addr = parse_multiaddr(text)
    assert isinstance(addr, Multiaddr)
    assert parse_multiaddr(addr.to_bytes()) == addr
    assert parse_multiaddr(str(addr)) == addr
    assert parse_multiaddr(addr) is addr


@pytest.mark.parametrize("text", BAD)
def test_bad_text_is_a_multiaddr_error(text: str) -> None:
    with pytest.raises(MultiaddrError):
        parse_multiaddr(text)


def test_multiaddr_error_is_a_value_error_and_a_libp2p_error() -> None:
    with pytest.raises(ValueError):
        parse_multiaddr("/nope")
    with pytest.raises(Libp2pError):
        parse_multiaddr(b"\xff")


@pytest.mark.parametrize(
    ("text", "hex_bytes"),
    [
        ("/ip4/127.0.0.1/udp/1234", "047f000001910204d2"),  # go-multiaddr TestBytesToString
        ("/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"),
        ("/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"),
        ("/ip6zone/eth0/ip6/::1", "2a0465746830" + "29" + "00" * 15 + "01"),  # go TestZone
        ("/unix/stdio", "9003062f737464696f"),  # go keeps the path's leading "/" in the value
        ("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"),  # as in go's and js's peer records
    ],
)
def test_binary_form_matches_go(text: str, hex_bytes: str) -> None:
    addr = parse_multiaddr(text)
    assert addr.to_bytes().hex() == hex_bytes
    assert parse_multiaddr(bytes.fromhex(hex_bytes)) == addr
    assert str(parse_multiaddr(bytes.fromhex(hex_bytes))) == text


def test_peer_id_text_forms_share_one_binary_form() -> None:
    """/p2p/<CIDv1> is stored as the bare multihash, as go-multiaddr stores it."""
    b58 = parse_multiaddr(f"/ip4/1.2.3.4/tcp/1/p2p/{ED}")
    assert parse_multiaddr(f"/ip4/1.2.3.4/tcp/1/p2p/{ED_CID}") == b58
    assert parse_multiaddr(f"/ip4/1.2.3.4/tcp/1/ipfs/{ED}") == b58
    assert str(parse_multiaddr(f"/ip4/1.2.3.4/tcp/1/ipfs/{ED}")) == f"/ip4/1.2.3.4/tcp/1/p2p/{ED}"
    assert components(b58)[-1].value == PeerId.from_string(ED).to_bytes()
    assert parse_multiaddr(f"/p2p/{QM_B36}") == parse_multiaddr(f"/p2p/{QM}")


def test_bytes_like_inputs() -> None:
    raw = bytes.fromhex("047f0000010610e1")
    assert parse_multiaddr(bytearray(raw)) == parse_multiaddr(raw)
    assert parse_multiaddr(memoryview(raw)) == parse_multiaddr(raw)


@pytest.mark.parametrize("value", [None, 42, 1.5, ["/ip4/1.2.3.4"]])
def test_wrong_input_type(value: Any) -> None:
    with pytest.raises(MultiaddrError):
        parse_multiaddr(value)


@pytest.mark.parametrize(
    "hex_bytes",
    [
        "",  # empty
        "04",  # ip4 without its 4 bytes
        "047f0000",  # ip4 truncated
        "047f00000106",  # tcp port missing
        "047f0000010610",  # tcp port truncated
        "ff",  # truncated protocol code
        "ffffffffffffffffff01",  # protocol code varint longer than 9 bytes
        "8000",  # non-minimal varint
        "01",  # unknown protocol code 1
        "a503",  # p2p without a length
        "a50305",  # p2p length beyond the end
        "a503020000",  # p2p value that is not a peer id
        "3600",  # dns4 with an empty name
        "3602ffff",  # dns4 name that is not UTF-8
        "2a00",  # empty ip6zone
        "90030561",  # unix path length beyond the end
    ],
)
def test_bad_binary_is_a_multiaddr_error(hex_bytes: str) -> None:
    with pytest.raises(MultiaddrError):
        parse_multiaddr(bytes.fromhex(hex_bytes))


def test_no_unvalidated_multiaddr_exists() -> None:
    """``Multiaddr(bytes)`` validates, so the helpers never see a malformed address."""
    with pytest.raises(MultiaddrError):
        Multiaddr(b"\x04\x7f")
    for helper in (components, split_p2p, transport_family, address_scope):
        with pytest.raises(MultiaddrError):  # text or bytes passed where a Multiaddr belongs
            helper(b"\x04\x7f")  # type: ignore[arg-type]
    assert components("/ip4/1.2.3.4")[0].name == "ip4"  # type: ignore[arg-type]


def test_components_read_ip6zone_correctly() -> None:
    addr = parse_multiaddr("/ip6zone/eth0/ip6/fe80::1/tcp/5")
    assert [c.name for c in components(addr)] == ["ip6zone", "ip6", "tcp"]
    assert components(addr)[0] == Component(42, "ip6zone", b"eth0")
    assert components(addr)[2] == Component(6, "tcp", b"\x00\x05")


def test_size_bounds() -> None:
    # The longest acceptable binary: one /dns4 name padded with valid labels would be too
    # contrived; repeat a small component instead.
    unit = bytes.fromhex("047f0000010610e1")  # 8 bytes
    fits = unit * (MAX_MULTIADDR_BYTES // len(unit))
    assert len(parse_multiaddr(fits).to_bytes()) <= MAX_MULTIADDR_BYTES
    with pytest.raises(MultiaddrError):
        parse_multiaddr(fits + unit)
    with pytest.raises(MultiaddrError):
        parse_multiaddr("/ip4/127.0.0.1" * (MAX_MULTIADDR_TEXT // 14 + 1))


def test_size_bound_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("decoded an oversized input")

    monkeypatch.setattr(mod, "_walk", boom)
    monkeypatch.setattr(mod, "_parse_text", boom)
    with pytest.raises(MultiaddrError, match="exceeds"):
        parse_multiaddr(b"\x04" * (MAX_MULTIADDR_BYTES + 1))
    with pytest.raises(MultiaddrError, match="exceeds"):
        parse_multiaddr(memoryview(b"\x04" * (MAX_MULTIADDR_BYTES + 1)))
    with pytest.raises(MultiaddrError, match="exceeds"):
        parse_multiaddr("/" + "a" * MAX_MULTIADDR_TEXT)


VALID_BINARY = [
    parse_multiaddr(t).to_bytes()
    for t in (
        f"/ip4/1.2.3.4/tcp/1/p2p/{ED}",
        "/ip6zone/eth0/ip6/fe80::1/udp/1/quic-v1",
        f"/dns4/example.com/tcp/443/wss/p2p/{QM}",
        f"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/{CERTHASH}",
        "/unix/tmp/sock",
    )
]


@given(st.binary(max_size=2 * MAX_MULTIADDR_BYTES))
def test_random_bytes_only_raise_multiaddr_error(data: bytes) -> None:
    try:
        addr = parse_multiaddr(data)
    except MultiaddrError:
        return
    assert addr.to_bytes() == data
    str(addr)  # whatever validated can be rendered


def _boundaries(raw: bytes) -> set[int]:
    """Offsets at which a component of ``raw`` ends."""
    ends, pos = set(), 0
    for comp in components(parse_multiaddr(raw)):
        pos += len(mod._from_components([comp]).to_bytes())
        ends.add(pos)
    return ends


@given(st.sampled_from(VALID_BINARY), st.data())
def test_truncated_valid_bytes(raw: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(raw) - 1))
    if cut in _boundaries(raw):  # a whole-component prefix is itself a valid multiaddr
        assert parse_multiaddr(raw[:cut]).to_bytes() == raw[:cut]
    else:
        with pytest.raises(MultiaddrError):
            parse_multiaddr(raw[:cut])


@given(st.sampled_from(VALID_BINARY), st.data())
def test_mutated_valid_bytes(raw: bytes, data: st.DataObject) -> None:
    mutated = bytearray(raw)
    pos = data.draw(st.integers(0, len(raw) - 1))
    mutated[pos] ^= data.draw(st.integers(1, 255))
    try:
        addr = parse_multiaddr(bytes(mutated))
    except MultiaddrError:
        return
    assert addr.to_bytes() == bytes(mutated)


_SOUP_PROTOCOLS = (  # noqa: SIM905 (a word list)
    "ip4 ip6 ip6zone tcp udp dns dns4 dnsaddr p2p quic-v1 ws tls sni certhash webtransport"
    " p2p-circuit memory http-path unix"
).split()
_CODES = [protocol_with_name(name).code for name in _SOUP_PROTOCOLS]


@st.composite
def component_soup(draw: st.DrawFn) -> bytes:
    """Known protocol codes followed by random values, prefixed or not: mostly near-misses."""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        out += varint.encode_uvarint(draw(st.sampled_from(_CODES)))
        value = draw(st.binary(max_size=40))
        if draw(st.booleans()):
            out += varint.encode_uvarint(len(value))
        out += value
    return out


@given(component_soup())
def test_component_soup_validates_or_raises(data: bytes) -> None:
    try:
        addr = parse_multiaddr(data)
    except MultiaddrError:
        return
    assert addr.to_bytes() == data
    assert parse_multiaddr(str(addr)) == addr  # a /unix path can only come last, so always


@given(st.text(max_size=200))
def test_random_text_only_raises_multiaddr_error(text: str) -> None:
    with contextlib.suppress(MultiaddrError):
        parse_multiaddr(text)


_TEXT_WORDS = "ip4 ip6 tcp udp p2p ipfs unix dns quic-v1 ws 1.2.3.4 ::1 80 x % ip6zone".split()  # noqa: SIM905


@given(
    st.lists(
        st.sampled_from([*_TEXT_WORDS, QM, ED, ""]),
        max_size=8,
    )
)
def test_random_component_soup_only_raises_multiaddr_error(parts: list[str]) -> None:
    text = "/" + "/".join(parts)
    try:
        addr = parse_multiaddr(text)
    except MultiaddrError:
        return
    assert parse_multiaddr(addr.to_bytes()) == addr


# --------------------------------------------------------------------------- split / join /p2p


def test_split_p2p_strips_the_trailing_peer_id() -> None:
    transport, peer = split_p2p(ma(f"/ip4/1.2.3.4/tcp/1/p2p/{ED}"))
    assert transport == ma("/ip4/1.2.3.4/tcp/1")
    assert peer == PeerId.from_string(ED)


def test_split_p2p_legacy_ipfs_name() -> None:
    transport, peer = split_p2p(ma(f"/ip4/1.2.3.4/tcp/1/ipfs/{QM}"))
    assert transport == ma("/ip4/1.2.3.4/tcp/1")
    assert peer == PeerId.from_string(QM)


def test_split_p2p_only_a_peer_id() -> None:
    assert split_p2p(ma(f"/p2p/{ED}")) == (None, PeerId.from_string(ED))


def test_split_p2p_without_a_peer_id() -> None:
    addr = ma("/ip4/1.2.3.4/tcp/1")
    assert split_p2p(addr) == (addr, None)


def test_split_p2p_relayed_address() -> None:
    relayed = ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit/p2p/{ED}")
    transport, peer = split_p2p(relayed)
    assert transport == ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit")
    assert peer == PeerId.from_string(ED)
    # the relay's id is not the last component of a bare circuit address: nothing to split
    circuit = ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit")
    assert split_p2p(circuit) == (circuit, None)


def test_split_p2p_keeps_certhash_and_ip6zone() -> None:
    base = f"/ip6zone/eth0/ip6/fe80::1/udp/1/quic-v1/webtransport/certhash/{CERTHASH}"
    transport, _ = split_p2p(ma(f"{base}/p2p/{ED}"))
    assert str(transport) == base


def test_join_p2p_appends() -> None:
    peer = PeerId.from_string(ED)
    assert join_p2p(ma("/ip4/1.2.3.4/tcp/1"), peer) == ma(f"/ip4/1.2.3.4/tcp/1/p2p/{ED}")
    assert join_p2p(ma("/ip6zone/eth0/ip6/fe80::1/tcp/1"), peer) == ma(
        f"/ip6zone/eth0/ip6/fe80::1/tcp/1/p2p/{ED}"
    )


def test_join_p2p_is_idempotent_for_the_same_id() -> None:
    peer = PeerId.from_string(ED)
    once = join_p2p(ma("/ip4/1.2.3.4/tcp/1"), peer)
    assert join_p2p(once, peer) == once
    assert join_p2p(ma(f"/ipfs/{ED}"), peer) == ma(f"/p2p/{ED}")


def test_join_p2p_refuses_a_different_id() -> None:
    with pytest.raises(MultiaddrError):
        join_p2p(ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}"), PeerId.from_string(ED))


def test_join_p2p_after_a_circuit() -> None:
    circuit = ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit")
    joined = join_p2p(circuit, PeerId.from_string(ED))
    assert joined == ma(f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit/p2p/{ED}")


@pytest.mark.parametrize("key_type", [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def test_split_join_round_trip(key_type: KeyType) -> None:
    peer = PeerId.from_public_key(generate_private_key(key_type).public_key())
    base = ma("/dns6/example.org/udp/4001/quic-v1")
    joined = join_p2p(base, peer)
    assert split_p2p(joined) == (base, peer)
    assert split_p2p(parse_multiaddr(str(joined))) == (base, peer)
    assert split_p2p(join_p2p(ma(f"/p2p/{peer}"), peer)) == (None, peer)


# --------------------------------------------------------------------------- transport_family


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("/ip4/1.2.3.4/tcp/1", "tcp"),
        (f"/ip4/1.2.3.4/tcp/1/p2p/{ED}", "tcp"),
        ("/dns/example.com/tcp/1", "tcp"),
        ("/ip4/1.2.3.4/udp/1/quic-v1", "quic-v1"),
        (f"/ip6/::1/udp/1/quic-v1/p2p/{ED}", "quic-v1"),
        ("/ip4/1.2.3.4/udp/1/quic", "quic"),
        ("/ip4/1.2.3.4/tcp/1/ws", "ws"),
        (f"/ip4/1.2.3.4/tcp/1/ws/p2p/{ED}", "ws"),
        ("/ip4/1.2.3.4/tcp/1/wss", "wss"),
        ("/ip4/1.2.3.4/tcp/1/tls/ws", "wss"),
        ("/dns4/example.com/tcp/443/tls/sni/example.com/ws", "wss"),
        (f"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/{CERTHASH}/p2p/{ED}", "webtransport"),
        ("/ip4/1.2.3.4/udp/1/quic-v1/webtransport", "webtransport"),
        (f"/ip4/1.2.3.4/udp/1/webrtc-direct/certhash/{CERTHASH}/p2p/{ED}", "webrtc-direct"),
        (f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit/webrtc/p2p/{ED}", "webrtc"),
        ("/webrtc", "webrtc"),
        (f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit/p2p/{ED}", "p2p-circuit"),
        (f"/ip4/1.2.3.4/udp/1/quic-v1/p2p/{QM}/p2p-circuit", "p2p-circuit"),
        ("/p2p-circuit", "p2p-circuit"),
        ("/memory/42", "memory"),
        ("/ip4/1.2.3.4/udp/1", "udp"),
        ("/unix/tmp/sock", "unix"),
        ("/ip4/1.2.3.4", "unknown"),
        (f"/p2p/{ED}", "unknown"),
        ("/ip4/1.2.3.4/tcp/1/tls/http", "unknown"),
        ("/ip4/1.2.3.4/tcp/1/http", "unknown"),
        ("/ip4/1.2.3.4/tcp/1/tls", "unknown"),
    ],
)
def test_transport_family(text: str, family: str) -> None:
    assert transport_family(ma(text)) == family


# --------------------------------------------------------------------------- address scope

S = AddressScope


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        # IPv4: public, and the edges of every special range
        ("/ip4/1.1.1.1/tcp/1", S.PUBLIC),
        ("/ip4/8.8.8.8", S.PUBLIC),
        ("/ip4/0.0.0.0/tcp/0", S.UNSPECIFIED),
        ("/ip4/0.0.0.1", S.PRIVATE),  # 0/8 "this network"
        ("/ip4/0.255.255.255", S.PRIVATE),
        ("/ip4/1.0.0.0", S.PUBLIC),
        ("/ip4/9.255.255.255", S.PUBLIC),
        ("/ip4/10.0.0.0", S.PRIVATE),
        ("/ip4/10.255.255.255", S.PRIVATE),
        ("/ip4/11.0.0.0", S.PUBLIC),
        ("/ip4/100.63.255.255", S.PUBLIC),
        ("/ip4/100.64.0.0", S.PRIVATE),  # RFC 6598
        ("/ip4/100.127.255.255", S.PRIVATE),
        ("/ip4/100.128.0.0", S.PUBLIC),
        ("/ip4/126.255.255.255", S.PUBLIC),
        ("/ip4/127.0.0.0", S.LOOPBACK),
        ("/ip4/127.0.0.1/tcp/4001", S.LOOPBACK),
        ("/ip4/127.255.255.255", S.LOOPBACK),
        ("/ip4/128.0.0.0", S.PUBLIC),
        ("/ip4/169.253.255.255", S.PUBLIC),
        ("/ip4/169.254.0.0", S.LINK_LOCAL),
        ("/ip4/169.254.255.255", S.LINK_LOCAL),
        ("/ip4/169.255.0.0", S.PUBLIC),
        ("/ip4/172.15.255.255", S.PUBLIC),
        ("/ip4/172.16.0.0", S.PRIVATE),
        ("/ip4/172.31.255.255", S.PRIVATE),
        ("/ip4/172.32.0.0", S.PUBLIC),
        ("/ip4/192.0.0.8", S.PRIVATE),  # IETF protocol assignments
        ("/ip4/192.0.2.1", S.PRIVATE),  # TEST-NET-1
        ("/ip4/192.88.99.1", S.PRIVATE),
        ("/ip4/192.167.255.255", S.PUBLIC),
        ("/ip4/192.168.0.0", S.PRIVATE),
        ("/ip4/192.168.255.255", S.PRIVATE),
        ("/ip4/192.169.0.0", S.PUBLIC),
        ("/ip4/198.17.255.255", S.PUBLIC),
        ("/ip4/198.18.0.0", S.PRIVATE),  # benchmarking
        ("/ip4/198.19.255.255", S.PRIVATE),
        ("/ip4/198.20.0.0", S.PUBLIC),
        ("/ip4/198.51.100.7", S.PRIVATE),
        ("/ip4/203.0.113.7", S.PRIVATE),
        ("/ip4/223.255.255.255", S.PUBLIC),
        ("/ip4/224.0.0.1", S.PRIVATE),  # multicast
        ("/ip4/240.0.0.1", S.PRIVATE),  # reserved
        ("/ip4/255.255.255.255", S.PRIVATE),
        # IPv6
        ("/ip6/2606:4700:4700::1111/udp/1/quic-v1", S.PUBLIC),
        ("/ip6/2000::", S.PUBLIC),
        ("/ip6/3ffe:ffff::1", S.PUBLIC),
        ("/ip6/1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", S.PRIVATE),  # outside 2000::/3
        ("/ip6/4000::1", S.PRIVATE),
        ("/ip6/2001:db8::1", S.PRIVATE),  # documentation
        ("/ip6/2001:db9::1", S.PUBLIC),
        ("/ip6/3fff::1", S.PRIVATE),  # documentation (RFC 9637)
        ("/ip6/::", S.UNSPECIFIED),
        ("/ip6/::1/tcp/1", S.LOOPBACK),
        ("/ip6/::2", S.PRIVATE),
        ("/ip6/fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", S.PRIVATE),
        ("/ip6/fc00::", S.PRIVATE),  # ULA fc00::/7
        ("/ip6/fd12:3456:789a::1", S.PRIVATE),
        ("/ip6/fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", S.PRIVATE),
        ("/ip6/fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", S.PRIVATE),
        ("/ip6/fe80::", S.LINK_LOCAL),
        ("/ip6/fe80::1/tcp/1", S.LINK_LOCAL),
        ("/ip6/febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", S.LINK_LOCAL),
        ("/ip6/fec0::1", S.PRIVATE),  # deprecated site-local
        ("/ip6/ff02::1", S.PRIVATE),  # multicast
        ("/ip6zone/eth0/ip6/fe80::1/tcp/1", S.LINK_LOCAL),
        ("/ip6zone/eth0/ip6/::1", S.LOOPBACK),
        ("/ip6zone/x/ip6/2606:4700::1", S.PUBLIC),
        ("/ip6/::ffff:1.2.3.4", S.PUBLIC),  # IPv4-mapped: judged as IPv4
        ("/ip6/::ffff:127.0.0.1", S.LOOPBACK),
        ("/ip6/::ffff:192.168.1.1", S.PRIVATE),
        ("/ip6/64:ff9b::808:808", S.PUBLIC),  # NAT64 of 8.8.8.8
        ("/ip6/64:ff9b::a00:1", S.PRIVATE),  # NAT64 of 10.0.0.1: not a valid translation
        ("/ip6/64:ff9b:1::1", S.PUBLIC),  # RFC 8215 local-use NAT64 (as go-multiaddr)
        # DNS
        ("/dns/example.com/tcp/1", S.DNS),
        ("/dns4/example.com/tcp/1", S.DNS),
        ("/dns6/example.com/tcp/1", S.DNS),
        ("/dnsaddr/bootstrap.libp2p.io", S.DNS),
        ("/dns4/localhost/tcp/1", S.LOOPBACK),
        ("/dns/LocalHost./tcp/1", S.LOOPBACK),
        ("/dns/foo.localhost/tcp/1", S.LOOPBACK),
        ("/dns/notlocalhost/tcp/1", S.DNS),
        # the first IP component decides (a relayed address is judged by its relay)
        (f"/ip4/1.2.3.4/tcp/1/p2p/{QM}/p2p-circuit/p2p/{ED}", S.PUBLIC),
        ("/ip4/10.0.0.1/tcp/1/ip4/1.2.3.4/tcp/2", S.PRIVATE),
        # no IP or DNS component
        ("/unix/tmp/sock", S.OTHER),
        ("/memory/1", S.OTHER),
        (f"/p2p/{ED}", S.OTHER),
        ("/p2p-circuit", S.OTHER),
    ],
)
def test_address_scope(text: str, scope: AddressScope) -> None:
    addr = ma(text)
    assert address_scope(addr) is scope
    assert is_public(addr) is (scope is S.PUBLIC)
    assert is_private(addr) is (scope is S.PRIVATE)
    assert is_loopback(addr) is (scope is S.LOOPBACK)
    assert is_link_local(addr) is (scope is S.LINK_LOCAL)


def test_dns_names_are_neither_public_nor_private() -> None:
    addr = ma("/dns4/example.com/tcp/443")
    assert not is_public(addr)
    assert not is_private(addr)
