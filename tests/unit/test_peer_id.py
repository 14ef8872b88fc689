"""Peer ids: spec vectors, text forms, strict multihash validation, value semantics."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle
from pathlib import Path

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.crypto import (
    KeyType,
    PublicKey,
    generate_private_key,
    private_key_from_protobuf,
    public_key_from_protobuf,
)
from aiolibp2p.core.crypto.keys import encode_key_message
from aiolibp2p.core.errors import DecodeError, PeerIdError
from aiolibp2p.core.peer import LIBP2P_KEY_CODEC, MAX_INLINE_KEY_LENGTH, PeerId

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "peer_ids.json").read_text()
)
SPEC_KEYS = {v["key_type"]: v for v in VECTORS["keys"]}
ED_PUB = bytes.fromhex(SPEC_KEYS["Ed25519"]["public_key"])
ED_ID = bytes([0x00, len(ED_PUB)]) + ED_PUB

_KEYS = {kt: generate_private_key(kt) for kt in (KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA)}


def _independent_peer_id(public_protobuf: bytes) -> tuple[str, str]:
    """The spec algorithm, written out with hashlib/base58/base64 only (no aiolibp2p code)."""
    if len(public_protobuf) <= 42:
        mh = bytes([0x00, len(public_protobuf)]) + public_protobuf
    else:
        mh = bytes([0x12, 0x20]) + hashlib.sha256(public_protobuf).digest()
    b58 = base58.b58encode(mh).decode()
    cid = "b" + base64.b32encode(b"\x01\x72" + mh).decode().rstrip("=").lower()
    return b58, cid


# ----------------------------------------------------------------------------- spec vectors


@pytest.mark.parametrize("vector", VECTORS["keys"], ids=lambda v: v["key_type"])
def test_spec_vector_peer_ids(vector: dict[str, str]) -> None:
    pub_bytes = bytes.fromhex(vector["public_key"])
    assert _independent_peer_id(pub_bytes) == (vector["peer_id_base58"], vector["peer_id_cid"])

    pub = public_key_from_protobuf(pub_bytes)
    pid = PeerId.from_public_key(pub)
    assert pid.to_base58() == vector["peer_id_base58"]
    assert str(pid) == vector["peer_id_base58"]
    assert pid.to_cid() == vector["peer_id_cid"]
    # both text forms parse back
    assert PeerId.from_string(vector["peer_id_base58"]) == pid
    assert PeerId.from_string(vector["peer_id_cid"]) == pid
    assert PeerId.from_bytes(pid.to_bytes()) == pid
    # the private key vector leads to the same peer id
    priv = private_key_from_protobuf(bytes.fromhex(vector["private_key"]))
    assert PeerId.from_public_key(priv.public_key()) == pid
    assert pid.matches_public_key(pub)
    # identity for <= 42 bytes (Ed25519, secp256k1), sha2-256 otherwise (ECDSA, RSA)
    if len(pub_bytes) <= MAX_INLINE_KEY_LENGTH:
        assert pid.to_bytes() == bytes([0, len(pub_bytes)]) + pub_bytes
        assert pid.extract_public_key() == pub
    else:
        assert pid.to_bytes()[:2] == b"\x12\x20"
        assert pid.extract_public_key() is None


def test_spec_text_examples() -> None:
    examples = {e["text"]: e for e in VECTORS["text_examples"]}
    cid = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    b58 = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    assert examples[cid]["same_as"] == b58
    assert PeerId.from_string(cid) == PeerId.from_string(b58)
    assert PeerId.from_string(b58).to_cid() == cid
    assert PeerId.from_string(cid).to_base58() == b58
    ed = PeerId.from_string("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
    key = ed.extract_public_key()
    assert key is not None and key.key_type is KeyType.Ed25519
    assert PeerId.from_public_key(key) == ed


def test_prefixes() -> None:
    for _ in range(5):
        ed = PeerId.from_public_key(generate_private_key(KeyType.Ed25519).public_key())
        assert str(ed).startswith("12D3KooW")
        assert ed.to_cid().startswith("bafzaa")
    assert str(PeerId.from_public_key(_KEYS[KeyType.Secp256k1].public_key())).startswith("16Uiu2")
    assert str(PeerId.from_public_key(_KEYS[KeyType.ECDSA].public_key())).startswith("Qm")
    rsa_pub = public_key_from_protobuf(bytes.fromhex(SPEC_KEYS["RSA"]["public_key"]))
    rsa_id = PeerId.from_public_key(rsa_pub)
    assert str(rsa_id).startswith("Qm")
    assert rsa_id.to_cid().startswith("bafzbei")


@pytest.mark.parametrize("key_type", list(_KEYS), ids=lambda kt: kt.name)
def test_roundtrips(key_type: KeyType) -> None:
    pid = PeerId.from_public_key(_KEYS[key_type].public_key())
    assert PeerId.from_bytes(pid.to_bytes()) == pid
    assert PeerId.from_string(pid.to_base58()) == pid
    assert PeerId.from_string(pid.to_cid()) == pid
    assert pid.matches_public_key(_KEYS[key_type].public_key())
    other = generate_private_key(key_type).public_key()
    assert not pid.matches_public_key(other)


def test_cid_structure() -> None:
    pid = PeerId.from_public_key(_KEYS[KeyType.Ed25519].public_key())
    cid = pid.to_cid()
    assert cid[0] == "b"
    assert cid == cid.lower()
    assert "=" not in cid
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    assert raw[0] == 0x01  # CIDv1
    assert raw[1] == LIBP2P_KEY_CODEC == 0x72
    assert raw[2:] == pid.to_bytes()


def test_other_multibases_parse() -> None:
    pid = PeerId.from_public_key(_KEYS[KeyType.Secp256k1].public_key())
    cid = b"\x01\x72" + pid.to_bytes()
    b32 = base64.b32encode(cid).decode().rstrip("=")
    n = int.from_bytes(cid, "big")
    b36 = ""
    while n:
        n, r = divmod(n, 36)
        b36 = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + b36
    forms = [
        "b" + b32.lower(),
        "B" + b32,
        "z" + base58.b58encode(cid).decode(),
        "f" + cid.hex(),
        "F" + cid.hex().upper(),
        "k" + b36,
        "K" + b36.upper(),
    ]
    for text in forms:
        assert PeerId.from_string(text) == pid, text


# ----------------------------------------------------------------------------- rejection


def _mh(code: int, digest: bytes) -> bytes:
    return bytes([code, len(digest)]) + digest


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x12", "code only"),
        (b"\x12\x20" + bytes(31), "sha2-256 digest truncated"),
        (b"\x12\x20" + bytes(33), "trailing byte"),
        (_mh(0x12, bytes(31)), "sha2-256 with 31-byte digest"),
        (_mh(0x12, bytes(33)), "sha2-256 with 33-byte digest"),
        (_mh(0x11, bytes(20)), "sha1"),
        (_mh(0x13, bytes(64)), "sha2-512"),
        (b"\xb2\x20" + bytes(32), "truncated varint code"),
        (b"\xa0\xe4\x02\x20" + bytes(32), "blake2b-256"),
        (b"\x92\x00\x20" + bytes(32), "non-minimal code varint"),
        (b"\x12\xa0\x00" + bytes(32), "non-minimal length varint"),
        (b"\x00\x00", "empty identity"),
        (_mh(0x00, b"hello"), "identity of non-key"),
        (_mh(0x00, ED_PUB + b"\x00"), "identity of key with trailing byte"),
        (_mh(0x00, ED_PUB[:-1]), "identity of truncated key"),
        (_mh(0x00, b"\x08\x81\x00" + ED_PUB[2:]), "identity of non-canonical key"),
        (_mh(0x00, encode_key_message(7, bytes(32))), "identity of unknown key type"),
        (_mh(0x00, encode_key_message(2, b"\x02" + bytes(32))), "identity of invalid point"),
        (_mh(0x00, encode_key_message(1, bytes(39))), "identity of 43 bytes"),
        (ED_ID[:-1], "identity truncated"),
        (ED_ID + b"\x00", "identity with trailing byte"),
    ],
)
def test_from_bytes_rejects(data: bytes, why: str) -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_bytes(data)


def test_identity_longer_than_42_rejected_even_if_valid_key() -> None:
    ecdsa = _KEYS[KeyType.ECDSA].public_key().to_protobuf()
    assert len(ecdsa) > 42
    with pytest.raises(PeerIdError):
        PeerId.from_bytes(bytes([0x00, len(ecdsa)]) + ecdsa)


def test_peer_id_error_is_decode_error() -> None:
    assert issubclass(PeerIdError, DecodeError)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "Qm",
        "1",
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA ",
        " 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S",
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA1",
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S0",  # '0' is not base58
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5Nx",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",
        "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxf",  # non-canonical tail bits
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx",  # truncated
        "bAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE",  # case mismatch
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe=",  # padding
        "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",  # dag-pb codec (0x70)
        "xafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",  # unknown multibase
        "b",
        "Qm\u00e9",
        "12D3KooW\u0000",
        "1" * 300,
    ],
)
def test_from_string_rejects(text: str) -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_string(text)


def test_cid_wrong_version_and_codec() -> None:
    mh = PeerId.from_string("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").to_bytes()

    def b32(raw: bytes) -> str:
        return "b" + base64.b32encode(raw).decode().rstrip("=").lower()

    assert PeerId.from_string(b32(b"\x01\x72" + mh))
    for prefix in (b"\x00\x72", b"\x02\x72", b"\x01\x70", b"\x01\x55", b"\x01\xf2\x00", b"\x01"):
        with pytest.raises(PeerIdError):
            PeerId.from_string(b32(prefix + mh))
    with pytest.raises(PeerIdError):
        PeerId.from_string(b32(b"\x01\x72" + mh + b"\x00"))


@pytest.mark.parametrize("junk", [None, 42, b"12D3Koo", object()])
def test_from_string_type_errors_are_peer_id_errors(junk: object) -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_string(junk)  # type: ignore[arg-type]


@pytest.mark.parametrize("junk", [None, 42, "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"])
def test_from_bytes_type_errors_are_peer_id_errors(junk: object) -> None:
    with pytest.raises(PeerIdError):
        PeerId.from_bytes(junk)  # type: ignore[arg-type]


def test_from_public_key_type_check() -> None:
    with pytest.raises(TypeError):
        PeerId.from_public_key(b"key")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- hypothesis fuzz

_VALID_IDS = [PeerId.from_public_key(k.public_key()).to_bytes() for k in _KEYS.values()] + [
    bytes.fromhex("1220") + hashlib.sha256(b"x").digest(),
    ED_ID,
]


def _byte_mutations() -> st.SearchStrategy[bytes]:
    base = st.sampled_from(_VALID_IDS)
    truncated = base.flatmap(lambda b: st.integers(0, len(b) - 1).map(lambda n: b[:n]))
    oversized = st.tuples(base, st.binary(min_size=1, max_size=64)).map(lambda t: t[0] + t[1])
    flipped = st.tuples(base, st.integers(0, 10_000), st.integers(1, 255)).map(
        lambda t: (
            t[0][: t[1] % len(t[0])]
            + bytes([t[0][t[1] % len(t[0])] ^ t[2]])
            + t[0][t[1] % len(t[0]) + 1 :]
        )
    )
    headed = st.tuples(st.sampled_from([0x00, 0x12, 0x11, 0x13]), st.binary(max_size=80)).map(
        lambda t: bytes([t[0], len(t[1]) & 0x7F]) + t[1]
    )
    return st.one_of(st.binary(max_size=100), truncated, oversized, flipped, headed)


@given(data=_byte_mutations())
def test_fuzz_from_bytes(data: bytes) -> None:
    try:
        pid = PeerId.from_bytes(data)
    except PeerIdError:
        return
    assert pid.to_bytes() == data
    assert PeerId.from_string(str(pid)) == pid
    assert PeerId.from_string(pid.to_cid()) == pid
    key = pid.extract_public_key()
    if data[0] == 0x00:
        assert key is not None and PeerId.from_public_key(key) == pid
    else:
        assert key is None


def _text_mutations() -> st.SearchStrategy[str]:
    valid = [PeerId(b).to_base58() for b in _VALID_IDS] + [PeerId(b).to_cid() for b in _VALID_IDS]
    base = st.sampled_from(valid)
    truncated = base.flatmap(lambda s: st.integers(0, len(s) - 1).map(lambda n: s[:n]))
    replaced = st.tuples(base, st.integers(0, 10_000), st.characters()).map(
        lambda t: t[0][: t[1] % len(t[0])] + t[2] + t[0][t[1] % len(t[0]) + 1 :]
    )
    extended = st.tuples(base, st.text(min_size=1, max_size=8)).map(lambda t: t[0] + t[1])
    prefixed = st.tuples(st.sampled_from("1QbBzfFkKm"), st.text(max_size=80)).map(
        lambda t: t[0] + t[1]
    )
    return st.one_of(st.text(max_size=120), truncated, replaced, extended, prefixed)


@given(text=_text_mutations())
def test_fuzz_from_string(text: str) -> None:
    try:
        pid = PeerId.from_string(text)
    except PeerIdError:
        return
    # Accepted text is canonical in its base: re-encoding in that base gives it back.
    if text[0] == "1" or text.startswith("Qm"):
        assert pid.to_base58() == text
    elif text[0] == "b":
        assert pid.to_cid() == text


# ----------------------------------------------------------------------------- value semantics


def test_value_semantics() -> None:
    a = PeerId.from_public_key(_KEYS[KeyType.Ed25519].public_key())
    b = PeerId.from_bytes(a.to_bytes())
    c = PeerId.from_public_key(_KEYS[KeyType.ECDSA].public_key())
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != c
    assert a != a.to_bytes() and a != str(a)
    assert len({a, b, c}) == 2
    assert sorted([c, a]) == sorted([a, c])
    assert (a < c) == (a.to_bytes() < c.to_bytes())
    assert (a <= b) and (a >= b) and not (a < b) and not (a > b)
    assert repr(a) == f"PeerId({str(a)!r})"
    assert not hasattr(a, "__dict__")
    with pytest.raises(AttributeError):
        a._bytes = b"x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.foo = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del a._bytes
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.copy(a) is a and copy.deepcopy(a) is a
    with pytest.raises(TypeError):
        _ = a < "x"  # type: ignore[operator]


def test_extract_public_key() -> None:
    for kt, key in _KEYS.items():
        pid = PeerId.from_public_key(key.public_key())
        extracted = pid.extract_public_key()
        if kt is KeyType.ECDSA:
            assert extracted is None
        else:
            assert isinstance(extracted, PublicKey)
            assert extracted == key.public_key()
            # also after a round trip through text (the key is recovered from the bytes)
            again = PeerId.from_string(str(pid)).extract_public_key()
            assert again == key.public_key()
            assert again is not None and again.verify(b"m", key.sign(b"m"))
