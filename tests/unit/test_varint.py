"""Unsigned varints and length-prefixed messages, run against both twins (``impl`` fixture).

Known vectors come from the multiformats unsigned-varint spec: ``multiformats/unsigned-varint``
``README.md`` (commit dd184f1, 2025-04-28), section "Spec", "Examples".  The same README fixes the
"practical maximum of 9 bytes" (63 bits) and requires minimal encodings ("The only number that
can end in a 0x00 is 0").
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import (
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    VarintError,
)

MAX = 2**63 - 1

# multiformats/unsigned-varint README.md, "Examples".
SPEC_VECTORS = [
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (255, "ff01"),
    (300, "ac02"),
    (16384, "808001"),
]

BOUNDARIES = [
    (0, "00"),
    (127, "7f"),
    (128, "8001"),
    (2**14 - 1, "ff7f"),
    (2**14, "808001"),
    (2**21 - 1, "ffff7f"),
    (2**56 - 1, "ff" * 7 + "7f"),  # 8 bytes
    (2**56, "80" * 8 + "01"),  # 9 bytes
    (2**63 - 1, "ff" * 8 + "7f"),
]

BUFFER_TYPES = [bytes, bytearray, memoryview]


def as_type(kind: Any, data: bytes) -> Any:
    return kind(bytearray(data)) if kind is memoryview else kind(data)


# --- encode / decode ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hexed"), SPEC_VECTORS + BOUNDARIES)
def test_known_vectors(impl: Any, value: int, hexed: str) -> None:
    encoded = bytes.fromhex(hexed)
    assert impl.varint.encode_uvarint(value) == encoded
    assert impl.varint.uvarint_size(value) == len(encoded)
    assert impl.varint.decode_uvarint(encoded) == (value, len(encoded))


def test_constants(impl: Any) -> None:
    assert impl.varint.MAX_UVARINT_LEN == 9
    assert impl.varint.MAX_UVARINT == MAX


@pytest.mark.parametrize("value", [-1, -(2**70), 2**63, 2**64, 2**100])
def test_encode_out_of_range(impl: Any, value: int) -> None:
    with pytest.raises(LocalProtocolError, match="out of range"):
        impl.varint.encode_uvarint(value)
    with pytest.raises(LocalProtocolError):
        impl.varint.uvarint_size(value)
    with pytest.raises(LocalProtocolError):
        impl.varint.encode_uvarint_into(value, bytearray(16))


@pytest.mark.parametrize("value", [1.0, "1", None, b"\x01"])
def test_encode_not_an_int(impl: Any, value: object) -> None:
    with pytest.raises(LocalProtocolError, match="must be an int"):
        impl.varint.encode_uvarint(value)


@pytest.mark.parametrize(
    "hexed",
    [
        "8000",  # 0 in two bytes
        "8100",  # 1 with a trailing zero group
        "ff8000",
        "80" * 8 + "00",  # nine bytes ending in 0x00
    ],
)
def test_non_minimal_rejected(impl: Any, hexed: str) -> None:
    with pytest.raises(VarintError, match="non-minimal"):
        impl.varint.decode_uvarint(bytes.fromhex(hexed))


@pytest.mark.parametrize(
    "hexed",
    [
        "ff" * 9 + "01",  # 10 bytes: 2**63 .. (the Go-style 64-bit encoding)
        "80" * 9 + "01",
        "ff" * 9,  # 9 continuation bytes: too long even before the 10th arrives
        "80" * 9,
        "ff" * 9 + "7f",
    ],
)
def test_too_long_rejected(impl: Any, hexed: str) -> None:
    with pytest.raises(VarintError, match="longer than 9 bytes"):
        impl.varint.decode_uvarint(bytes.fromhex(hexed))


def test_overflow_above_2_63_is_too_long(impl: Any) -> None:
    # 2**63 needs 10 groups; there is no 9-byte encoding above 2**63 - 1.
    with pytest.raises(VarintError):
        impl.varint.decode_uvarint(b"\x80" * 9 + b"\x01")


@pytest.mark.parametrize(("value", "hexed"), SPEC_VECTORS + BOUNDARIES)
def test_incomplete_at_every_cut(impl: Any, value: int, hexed: str) -> None:
    encoded = bytes.fromhex(hexed)
    for cut in range(len(encoded)):
        assert impl.varint.decode_uvarint(encoded[:cut]) is None
        assert impl.varint.decode_uvarint(b"xy" + encoded[:cut], 2) is None


@pytest.mark.parametrize("kind", BUFFER_TYPES)
def test_decode_buffer_types_and_offset(impl: Any, kind: Any) -> None:
    data = b"\x00\x7f" + bytes.fromhex("ac02") + b"\x80"
    buf = as_type(kind, data)
    assert impl.varint.decode_uvarint(buf) == (0, 1)
    assert impl.varint.decode_uvarint(buf, 1) == (127, 2)
    assert impl.varint.decode_uvarint(buf, 2) == (300, 4)
    assert impl.varint.decode_uvarint(buf, 4) is None
    assert impl.varint.decode_uvarint(buf, 5) is None  # offset == len: nothing yet


def test_decode_memoryview_slice_and_wider_format(impl: Any) -> None:
    backing = bytearray(b"zz\xac\x02zz")
    assert impl.varint.decode_uvarint(memoryview(backing)[2:4]) == (300, 2)
    # A multi-byte item format is read as its raw bytes.
    wide = memoryview(bytearray(b"\xac\x02\x00\x00")).cast("H")
    assert impl.varint.decode_uvarint(wide) == (300, 2)


@pytest.mark.parametrize("offset", [-1, 6, 2**70, -(2**70)])
def test_decode_offset_out_of_range(impl: Any, offset: int) -> None:
    with pytest.raises(LocalProtocolError, match="out of range"):
        impl.varint.decode_uvarint(b"\x01\x02\x03\x04\x05", offset)


def test_decode_offset_not_int(impl: Any) -> None:
    with pytest.raises(LocalProtocolError, match="must be an int"):
        impl.varint.decode_uvarint(b"\x01", 0.0)


def test_not_a_buffer(impl: Any) -> None:
    with pytest.raises(TypeError):
        impl.varint.decode_uvarint("\x01")
    with pytest.raises(TypeError):
        impl.varint.split_lp([1, 2], max_size=10)


def test_non_contiguous_buffer(impl: Any) -> None:
    strided = memoryview(b"\x01\x00\x02\x00")[::2]
    with pytest.raises(BufferError):
        impl.varint.decode_uvarint(strided)
    with pytest.raises(BufferError):
        impl.varint.encode_uvarint_into(1, memoryview(bytearray(4))[::2])


# --- encode_uvarint_into ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hexed"), SPEC_VECTORS + BOUNDARIES)
def test_encode_into_exact_fit(impl: Any, value: int, hexed: str) -> None:
    encoded = bytes.fromhex(hexed)
    buf = bytearray(b"\xee" * (len(encoded) + 2))
    assert impl.varint.encode_uvarint_into(value, buf, 2) == len(buf)
    assert buf == b"\xee\xee" + encoded
    # One byte short: refused, and nothing written.
    short = bytearray(b"\xee" * (len(encoded) + 1))
    with pytest.raises(LocalProtocolError, match="does not fit"):
        impl.varint.encode_uvarint_into(value, short, 2)
    assert short == b"\xee" * (len(encoded) + 1)


def test_encode_into_default_offset_and_memoryview(impl: Any) -> None:
    backing = bytearray(8)
    view = memoryview(backing)[3:]
    assert impl.varint.encode_uvarint_into(300, view) == 2
    assert backing == b"\x00\x00\x00\xac\x02\x00\x00\x00"
    assert impl.varint.encode_uvarint_into(1, view, 4) == 5
    with pytest.raises(LocalProtocolError):
        impl.varint.encode_uvarint_into(1, view, 5)  # offset == len: no room


@pytest.mark.parametrize("offset", [-1, 9, 2**64])
def test_encode_into_bad_offset(impl: Any, offset: int) -> None:
    with pytest.raises(LocalProtocolError):
        impl.varint.encode_uvarint_into(1, bytearray(8), offset)


@pytest.mark.parametrize("buf", [b"\x00" * 4, memoryview(b"\x00" * 4)])
def test_encode_into_read_only(impl: Any, buf: Any) -> None:
    with pytest.raises(LocalProtocolError, match="writable"):
        impl.varint.encode_uvarint_into(1, buf)


def test_encode_into_releases_buffer(impl: Any) -> None:
    buf = bytearray(1)
    with pytest.raises(LocalProtocolError):
        impl.varint.encode_uvarint_into(300, buf)
    buf.extend(b"\x00")  # would raise BufferError if an export had leaked
    assert impl.varint.encode_uvarint_into(300, buf) == 2


# --- length-prefixed messages -------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"a", b"x" * 127, b"y" * 128, b"z" * 70000])
def test_lp_round_trip(impl: Any, body: bytes) -> None:
    framed = impl.varint.encode_lp(body)
    assert framed == impl.varint.encode_uvarint(len(body)) + body
    assert impl.varint.decode_lp(framed, max_size=len(body)) == (body, len(framed))
    assert impl.varint.encode_lp(bytearray(body)) == framed
    assert impl.varint.encode_lp(memoryview(body)) == framed


def test_encode_lp_rejects_non_buffers(impl: Any) -> None:
    for bad in ("text", 5, None):
        with pytest.raises(TypeError):
            impl.varint.encode_lp(bad)


def test_decode_lp_incomplete(impl: Any) -> None:
    framed = impl.varint.encode_lp(b"hello world" * 20)  # two-byte prefix
    for cut in range(len(framed)):
        assert impl.varint.decode_lp(framed[:cut], max_size=1000) is None
    assert impl.varint.decode_lp(b"..." + framed, 3, max_size=1000) == (
        b"hello world" * 20,
        3 + len(framed),
    )


def test_decode_lp_max_size_before_body(impl: Any) -> None:
    # The prefix alone announces 1000 bytes: refused before any body byte has arrived.
    prefix = impl.varint.encode_uvarint(1000)
    with pytest.raises(MessageTooLarge) as info:
        impl.varint.decode_lp(prefix, max_size=999)
    assert (info.value.length, info.value.limit) == (1000, 999)
    assert str(info.value) == "message of 1000 bytes exceeds the limit of 999 bytes"
    assert impl.varint.decode_lp(prefix, max_size=1000) is None  # at the limit: just incomplete
    # A huge announced length is refused just as early.
    with pytest.raises(MessageTooLarge):
        impl.varint.decode_lp(impl.varint.encode_uvarint(MAX), max_size=2**20)
    # An incomplete prefix is not judged yet.
    assert impl.varint.decode_lp(prefix[:1], max_size=0) is None


@pytest.mark.parametrize("max_size", [-1, 1.5, None, "10"])
def test_bad_max_size(impl: Any, max_size: Any) -> None:
    with pytest.raises(LocalProtocolError, match="max_size"):
        impl.varint.decode_lp(b"\x00", max_size=max_size)
    with pytest.raises(LocalProtocolError, match="max_size"):
        impl.varint.split_lp(b"\x00", max_size=max_size)


def test_huge_max_size_is_no_limit(impl: Any) -> None:
    assert impl.varint.split_lp(b"\x01a", max_size=2**80) == ([b"a"], 2)


def test_max_size_is_keyword_only_and_required(impl: Any) -> None:
    with pytest.raises(TypeError):
        impl.varint.split_lp(b"", 0, 10)
    with pytest.raises(TypeError):
        impl.varint.decode_lp(b"")


# --- split_lp -----------------------------------------------------------------------------------


def _stream(impl: Any, bodies: list[bytes]) -> bytes:
    return b"".join(impl.varint.encode_lp(body) for body in bodies)


BODIES = [b"", b"a", b"hello", b"x" * 200, b"\x00\n\xff", b"y" * 127]


@pytest.mark.parametrize("kind", BUFFER_TYPES)
def test_split_all(impl: Any, kind: Any) -> None:
    stream = _stream(impl, BODIES)
    messages, end = impl.varint.split_lp(as_type(kind, stream), max_size=1000)
    assert messages == BODIES
    assert all(type(message) is bytes for message in messages)
    assert end == len(stream)


def test_split_every_cut_point(impl: Any) -> None:
    stream = _stream(impl, BODIES)
    boundaries = [0]
    for body in BODIES:
        boundaries.append(boundaries[-1] + len(impl.varint.encode_lp(body)))
    for cut in range(len(stream) + 1):
        messages, end = impl.varint.split_lp(stream[:cut], max_size=1000)
        complete = max(i for i, b in enumerate(boundaries) if b <= cut)
        assert messages == BODIES[:complete]
        assert end == boundaries[complete]


def test_split_with_offsets(impl: Any) -> None:
    stream = b"junk" + _stream(impl, [b"one", b"two", b"three"]) + b"\x05ab"
    messages, end = impl.varint.split_lp(stream, 4, max_size=10)
    assert messages == [b"one", b"two", b"three"]
    assert stream[end:] == b"\x05ab"
    # Resume from where the last call stopped, once the rest has arrived.
    stream += b"cde"
    assert impl.varint.split_lp(stream, end, max_size=10) == ([b"abcde"], len(stream))
    assert impl.varint.split_lp(stream, len(stream), max_size=10) == ([], len(stream))
    assert impl.varint.split_lp(b"", max_size=10) == ([], 0)
    with pytest.raises(LocalProtocolError):
        impl.varint.split_lp(stream, len(stream) + 1, max_size=10)


def test_split_max_size_before_body(impl: Any) -> None:
    stream = _stream(impl, [b"ok"]) + impl.varint.encode_uvarint(5000)  # no body at all
    with pytest.raises(MessageTooLarge) as info:
        impl.varint.split_lp(stream, max_size=4096)
    assert info.value.length == 5000
    assert info.value.limit == 4096


def test_split_bad_varint_after_good_messages(impl: Any) -> None:
    with pytest.raises(VarintError):
        impl.varint.split_lp(b"\x01a\x80\x00", max_size=10)
    with pytest.raises(VarintError):
        impl.varint.split_lp(b"\x01a" + b"\xff" * 9, max_size=10)


def test_split_releases_buffer_on_error(impl: Any) -> None:
    buf = bytearray(b"\x01a\x7f")
    with pytest.raises(MessageTooLarge):
        impl.varint.split_lp(buf, max_size=10)
    buf.clear()  # would raise BufferError if an export had leaked
    impl.varint.split_lp(buf, max_size=10)
    buf.extend(b"\x01b")
    assert impl.varint.split_lp(buf, max_size=10) == ([b"b"], 2)
    buf.clear()


# --- properties ---------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX))
def test_prop_round_trip(impl: Any, value: int) -> None:
    encoded = impl.varint.encode_uvarint(value)
    assert len(encoded) == impl.varint.uvarint_size(value) <= 9
    assert impl.varint.decode_uvarint(encoded) == (value, len(encoded))
    assert impl.varint.decode_uvarint(encoded + b"\xff\x00") == (value, len(encoded))
    buf = bytearray(12)
    assert impl.varint.encode_uvarint_into(value, buf, 3) == 3 + len(encoded)
    assert buf[3 : 3 + len(encoded)] == encoded
    for cut in range(len(encoded)):
        assert impl.varint.decode_uvarint(encoded[:cut]) is None


@given(st.binary(max_size=24), st.integers(min_value=0, max_value=24))
def test_prop_random_bytes_typed_errors_only(impl: Any, data: bytes, offset: int) -> None:
    offset = min(offset, len(data))
    try:
        result = impl.varint.decode_uvarint(data, offset)
    except Libp2pError:
        return
    if result is not None:
        value, end = result
        assert offset < end <= min(len(data), offset + 9)
        assert impl.varint.encode_uvarint(value) == data[offset:end]  # minimal, hence canonical


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_prop_split_random_bytes(impl: Any, data: bytes, max_size: int) -> None:
    try:
        messages, end = impl.varint.split_lp(data, max_size=max_size)
    except Libp2pError:
        return
    assert _stream(impl, messages) == data[:end]
    assert all(len(message) <= max_size for message in messages)


@given(st.lists(st.binary(max_size=200), max_size=12), st.data())
def test_prop_split_truncated(impl: Any, bodies: list[bytes], data: st.DataObject) -> None:
    stream = _stream(impl, bodies)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    messages, end = impl.varint.split_lp(memoryview(stream)[:cut], max_size=200)
    assert messages == bodies[: len(messages)]
    assert end == len(_stream(impl, messages)) <= cut
    if cut == len(stream):
        assert messages == bodies
    else:
        assert impl.varint.decode_lp(stream[:cut], end, max_size=200) is None
