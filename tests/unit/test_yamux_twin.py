"""The yamux frame codec twins (``aiolibp2p._accel.yamux_py`` / ``yamux_c``).

Every behavioural test runs against both twins through the ``impl`` fixture; the differential
tests at the end feed the same random inputs to both and require equal results or the same
error (class, message and attributes for the library's own errors).  Frames are built here with
``struct`` (``>BBHII``), independently of the encoders under test.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolibp2p.core.errors import Libp2pError, LocalProtocolError, YamuxError

HEADER = struct.Struct(">BBHII")
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 0x1, 0x2, 0x4, 0x8


def frame(ftype: int, flags: int, sid: int, length: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(0, ftype, flags, sid, length) + payload


def data(flags: int, sid: int, payload: bytes) -> bytes:
    return frame(DATA, flags, sid, len(payload), payload)


def wrap(kind: str, raw: bytes) -> Any:
    if kind == "bytes":
        return raw
    if kind == "bytearray":
        return bytearray(raw)
    if kind == "memoryview":
        return memoryview(raw)
    return memoryview(b"\xff" + raw + b"\x80")[1:-1]


BUFFER_KINDS = ["bytes", "bytearray", "memoryview", "memoryview-slice"]


# --- constants and encoders -----------------------------------------------------------------


def test_constants(impl: Any) -> None:
    y = impl.yamux
    assert (y.HEADER_SIZE, y.VERSION, y.MAX_UINT32) == (12, 0, 2**32 - 1)
    assert (y.TYPE_DATA, y.TYPE_WINDOW_UPDATE, y.TYPE_PING, y.TYPE_GO_AWAY) == (0, 1, 2, 3)
    assert (y.FLAG_SYN, y.FLAG_ACK, y.FLAG_FIN, y.FLAG_RST) == (1, 2, 4, 8)


@pytest.mark.parametrize(
    "fields", [(0, 0, 0, 0), (1, 0x2, 7, 262144), (3, 0xFFFF, 2**32 - 1, 2**32 - 1), (255, 8, 1, 1)]
)
def test_encode_header(impl: Any, fields: tuple[int, int, int, int]) -> None:
    assert impl.yamux.encode_header(*fields) == HEADER.pack(0, *fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((256, 0, 0, 0), r"yamux type 256 out of range \[0, 255\]"),
        ((0, 0x10000, 0, 0), r"yamux flags 65536 out of range \[0, 65535\]"),
        ((0, 0, 2**32, 0), r"yamux stream_id 4294967296 out of range"),
        ((0, 0, 0, -1), r"yamux length -1 out of range"),
        ((0, 0, 0, 2**70), r"yamux length 1180591620717411303424 out of range"),
        ((0, 0, 0, 1.0), r"yamux length must be an int, not float"),
        (("0", 0, 0, 0), r"yamux type must be an int, not str"),
    ],
)
def test_encode_header_rejects_bad_fields(impl: Any, fields: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        impl.yamux.encode_header(*fields)
    with pytest.raises(LocalProtocolError, match=message):
        impl.yamux.encode_header_into(bytearray(12), 0, *fields)


def test_encode_header_into(impl: Any) -> None:
    y = impl.yamux
    buf = bytearray(b"\xee" * 30)
    assert y.encode_header_into(buf, 5, 1, ACK, 9, 1000) == 17
    assert buf == b"\xee" * 5 + HEADER.pack(0, 1, ACK, 9, 1000) + b"\xee" * 13
    assert y.encode_header_into(memoryview(buf)[18:], 0, 2, SYN, 0, 5) == 12
    assert buf[18:] == HEADER.pack(0, 2, SYN, 0, 5)
    with pytest.raises(LocalProtocolError, match="does not fit at offset 19 of a 30-byte"):
        y.encode_header_into(buf, 19, 0, 0, 0, 0)
    with pytest.raises(LocalProtocolError, match="offset 31 out of range"):
        y.encode_header_into(buf, 31, 0, 0, 0, 0)
    with pytest.raises(LocalProtocolError, match="writable"):
        y.encode_header_into(bytes(12), 0, 0, 0, 0, 0)
    with pytest.raises(BufferError):
        y.encode_header_into(memoryview(bytearray(48))[::2], 0, 0, 0, 0, 0)
    with pytest.raises(TypeError):
        y.encode_header_into(object(), 0, 0, 0, 0, 0)
    buf.extend(b"x")  # every buffer was released, even after the errors


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_encode_data_frames(impl: Any, kind: str) -> None:
    y = impl.yamux
    payload = bytes(range(256)) * 4  # 1024 bytes
    out = y.encode_data_frames(5, SYN | ACK, wrap(kind, payload), 300)
    assert out == (
        data(SYN | ACK, 5, payload[:300])
        + data(0, 5, payload[300:600])
        + data(0, 5, payload[600:900])
        + data(0, 5, payload[900:])
    )
    assert y.encode_data_frames(5, 0, wrap(kind, payload), 1024) == data(0, 5, payload)
    assert y.encode_data_frames(5, 0, wrap(kind, payload), 2**32 - 1) == data(0, 5, payload)
    assert y.encode_data_frames(3, SYN, wrap(kind, b""), 10) == data(SYN, 3, b"")


def test_encode_data_frames_rejects_bad_arguments(impl: Any) -> None:
    y = impl.yamux
    for max_frame in (0, -1, 2**32, 2**64):
        with pytest.raises(LocalProtocolError, match=f"max_frame {max_frame} out of range"):
            y.encode_data_frames(1, 0, b"x", max_frame)
    with pytest.raises(LocalProtocolError, match="max_frame must be an int"):
        y.encode_data_frames(1, 0, b"x", 1.5)
    with pytest.raises(LocalProtocolError, match="stream_id"):
        y.encode_data_frames(-1, 0, b"x", 10)
    with pytest.raises(LocalProtocolError, match="flags"):
        y.encode_data_frames(1, 1 << 16, b"x", 10)
    with pytest.raises(TypeError):
        y.encode_data_frames(1, 0, "text", 10)
    with pytest.raises(BufferError):
        y.encode_data_frames(1, 0, memoryview(b"abcdef")[::2], 10)


# --- split_frames ---------------------------------------------------------------------------

STREAM = (
    data(SYN, 1, b"hello")
    + frame(WINDOW_UPDATE, ACK, 2, 65536)
    + frame(PING, SYN, 0, 0xDEADBEEF)
    + data(0, 1, b"")
    + frame(GO_AWAY, 0, 0, 2)
    + data(FIN, 1, b"bye")
)
FRAMES = [
    (DATA, SYN, 1, 5, b"hello"),
    (WINDOW_UPDATE, ACK, 2, 65536, None),
    (PING, SYN, 0, 0xDEADBEEF, None),
    (DATA, 0, 1, 0, b""),
    (GO_AWAY, 0, 0, 2, None),
    (DATA, FIN, 1, 3, b"bye"),
]


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_split_frames(impl: Any, kind: str) -> None:
    frames, end = impl.yamux.split_frames(wrap(kind, STREAM), max_data=1000)
    assert (frames, end) == (FRAMES, len(STREAM))
    assert all(type(f[4]) is bytes for f in frames if f[0] == DATA)


def test_split_frames_stops_at_an_incomplete_frame(impl: Any) -> None:
    y = impl.yamux
    for cut in range(len(STREAM) + 1):
        frames, end = y.split_frames(STREAM[:cut], max_data=1000)
        assert frames == FRAMES[: len(frames)]
        rest, end2 = y.split_frames(STREAM, end, max_data=1000)
        assert frames + rest == FRAMES and end2 == len(STREAM)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (HEADER.pack(1, 0, 0, 1, 0), "unsupported yamux version 1"),
        (HEADER.pack(0, 4, 0, 1, 0), "unknown yamux frame type 4"),
        (HEADER.pack(0, 0, 0, 1, 1001), "data frame of 1001 bytes exceeds the limit of 1000"),
    ],
)
def test_split_frames_errors(impl: Any, bad: bytes, message: str) -> None:
    # Raised as soon as the header is complete, even after complete frames.
    buf = bytearray(STREAM + bad)
    with pytest.raises(YamuxError, match=message) as info:
        impl.yamux.split_frames(buf, max_data=1000)
    assert info.value.code == 1
    buf.extend(b"x")  # the buffer was released
    with pytest.raises(YamuxError, match=message):
        impl.yamux.FrameReader(max_data=1000).feed(bad)


def test_split_frames_limit_applies_to_data_only(impl: Any) -> None:
    wu = frame(WINDOW_UPDATE, 0, 1, 2**32 - 1)
    assert impl.yamux.split_frames(wu, max_data=0) == ([(1, 0, 1, 2**32 - 1, None)], 12)
    assert impl.yamux.split_frames(data(0, 1, b""), max_data=0) == ([(0, 0, 1, 0, b"")], 12)


def test_split_frames_argument_errors(impl: Any) -> None:
    y = impl.yamux
    with pytest.raises(LocalProtocolError, match="offset 13 out of range"):
        y.split_frames(bytes(12), 13, max_data=10)
    with pytest.raises(LocalProtocolError, match="max_data must not be negative"):
        y.split_frames(b"", max_data=-1)
    with pytest.raises(LocalProtocolError, match="max_data must be an int"):
        y.split_frames(b"", max_data="1")
    with pytest.raises(TypeError):
        y.split_frames(b"")  # max_data is required
    assert y.split_frames(STREAM, max_data=2**80)[1] == len(STREAM)


# --- FrameReader ----------------------------------------------------------------------------


def test_reader_merges_flag_free_runs_of_one_stream(impl: Any) -> None:
    reader = impl.yamux.FrameReader(max_data=1000)
    stream = (
        data(SYN, 1, b"ab")
        + data(0, 1, b"cd")
        + data(0, 1, b"")
        + data(0, 1, b"ef")
        + data(0, 3, b"gh")  # another stream: a new item
        + data(ACK, 3, b"ij")  # flags: a new item
        + data(FIN, 3, b"kl")  # flags: a new item
        + data(0, 3, b"mn")  # after FIN: not merged (the machine must see it)
        + frame(WINDOW_UPDATE, 0, 3, 5)
        + data(0, 3, b"op")
    )
    assert reader.feed(stream) == [
        (DATA, SYN, 1, 6, b"abcdef"),
        (DATA, 0, 3, 2, b"gh"),
        (DATA, ACK, 3, 2, b"ij"),
        (DATA, FIN, 3, 2, b"kl"),
        (DATA, 0, 3, 2, b"mn"),
        (WINDOW_UPDATE, 0, 3, 5, None),
        (DATA, 0, 3, 2, b"op"),
    ]
    assert reader.buffered == reader.remaining == 0


@pytest.mark.parametrize("count", [31, 32, 33, 64, 65, 1000])
def test_reader_merges_long_runs(impl: Any, count: int) -> None:
    # The compiled twin keeps up to 32 merged pieces on feed()'s stack, more on the heap.
    reader = impl.yamux.FrameReader(max_data=1000)
    pieces = [bytes([i % 251]) * (i % 5) for i in range(count)]
    stream = b"".join(data(0, 5, piece) for piece in pieces) + frame(PING, 0, 0, 9)
    payload = b"".join(pieces)
    for _ in range(2):  # the piece storage is reusable after a call that needed the heap
        assert reader.feed(stream) == [(DATA, 0, 5, len(payload), payload), (PING, 0, 0, 9, None)]


def test_reader_hands_out_partial_payloads_with_flags_in_order(impl: Any) -> None:
    reader = impl.yamux.FrameReader(max_data=1000)
    whole = data(SYN | FIN, 7, b"0123456789")
    assert reader.feed(whole[:5]) == []
    assert reader.buffered == 5
    assert reader.feed(whole[5:15]) == [(DATA, SYN, 7, 3, b"012")]
    assert (reader.buffered, reader.remaining) == (0, 7)
    assert reader.feed(whole[15:20]) == [(DATA, 0, 7, 5, b"34567")]
    assert reader.feed(whole[20:] + data(0, 7, b"x")) == [
        (DATA, FIN, 7, 2, b"89"),
        (DATA, 0, 7, 1, b"x"),
    ]
    assert (reader.buffered, reader.remaining) == (0, 0)
    # A header alone yields an empty item, so a session can check the stream id at once.
    assert reader.feed(data(0, 9, b"abc")[:12]) == [(DATA, 0, 9, 0, b"")]
    assert reader.feed(b"abc" + data(0, 9, b"d")) == [(DATA, 0, 9, 4, b"abcd")]


def test_reader_refuses_input_after_an_error(impl: Any) -> None:
    reader = impl.yamux.FrameReader(max_data=10)
    with pytest.raises(YamuxError, match="exceeds the limit of 10"):
        reader.feed(data(0, 1, b"x" * 5) + HEADER.pack(0, 0, 0, 1, 11))
    with pytest.raises(LocalProtocolError, match="after a decoding error"):
        reader.feed(b"")


def test_reader_argument_errors(impl: Any) -> None:
    y = impl.yamux
    with pytest.raises(LocalProtocolError, match="max_data must not be negative"):
        y.FrameReader(max_data=-5)
    with pytest.raises(TypeError):
        y.FrameReader()
    with pytest.raises(TypeError):
        y.FrameReader(1000)
    with pytest.raises(TypeError):
        y.FrameReader(max_data=10).feed("text")


def flatten(items: list[Any]) -> tuple[dict[int, bytes], list[Any]]:
    """Per-stream payloads, and the sequence of everything else (flags and control frames)."""
    payloads: dict[int, bytes] = {}
    others = []
    for ftype, flags, sid, length, payload in items:
        if ftype == DATA:
            assert len(payload) == length
            payloads[sid] = payloads.get(sid, b"") + payload
            if flags & (SYN | ACK):  # SYN/ACK come before the payload, FIN/RST after it
                others.append((sid, "start", flags & (SYN | ACK)))
            if flags & (FIN | RST):
                others.append((sid, "end", flags & (FIN | RST)))
        else:
            others.append((ftype, flags, sid, length))
    return payloads, others


frames_strategy = st.lists(
    st.one_of(
        st.builds(
            data,
            st.sampled_from([0, 0, 0, SYN, ACK, FIN, RST, SYN | FIN]),
            st.integers(0, 4),
            st.binary(max_size=40),
        ),
        st.builds(
            frame,
            st.sampled_from([WINDOW_UPDATE, PING, GO_AWAY]),
            st.integers(0, 15),
            st.integers(0, 4),
            st.integers(0, 2**32 - 1),
        ),
    ),
    max_size=20,
)


@given(frames_strategy, st.lists(st.integers(1, 60), min_size=1, max_size=10))
def test_reader_any_chunking_matches_split_frames(
    impl: Any, frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frames)
    y = impl.yamux
    whole, end = y.split_frames(stream, max_data=100)
    assert end == len(stream) and len(whole) == len(frames)
    reader = y.FrameReader(max_data=100)
    items: list[Any] = []
    pos = n = 0
    while pos < len(stream):
        size = cuts[n % len(cuts)]
        items += reader.feed(memoryview(stream)[pos : pos + size])
        assert 0 <= reader.buffered < 12
        pos += size
        n += 1
    assert reader.buffered == reader.remaining == 0
    # Merging and splitting never lose or reorder bytes, flags or control frames.
    expected_payloads, expected_others = flatten(whole)
    got_payloads, got_others = flatten(items)
    assert got_payloads == expected_payloads
    assert got_others == expected_others


# --- differential: py vs c -------------------------------------------------------------------


@pytest.fixture(scope="session")
def twins(py_impl: Any, c_impl: Any) -> tuple[Any, Any]:
    return py_impl.yamux, c_impl.yamux


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args, **kwargs))
    except Libp2pError as exc:
        return ("error", type(exc), str(exc), exc.__dict__)
    except (TypeError, BufferError, ValueError) as exc:
        return ("error", type(exc))  # messages from CPython may differ


def same(py: Callable[..., Any], c: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    expected = outcome(py, *args, **kwargs)
    assert outcome(c, *args, **kwargs) == expected, (args, kwargs)
    return expected


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    raw = bytearray(b"".join(draw(frames_strategy)))
    for _ in range(draw(st.integers(0, 3))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut]) + draw(st.binary(max_size=14))


inputs = st.one_of(st.binary(max_size=80), frames_strategy.map(b"".join), corrupted())
limits = st.one_of(st.integers(0, 50), st.integers(0, 50), st.sampled_from([-1, 2**64, None, "3"]))
anything = st.one_of(
    st.integers(0, 2**32 - 1),
    st.integers(-(2**66), 2**66),
    st.sampled_from([True, 1.0, "1", None]),
)


@settings(max_examples=300)
@given(inputs, st.sampled_from(BUFFER_KINDS), st.integers(0, 100), limits)
def test_split_frames_differential(
    twins: tuple[Any, Any], raw: bytes, kind: str, offset: int, max_data: Any
) -> None:
    py, c = twins
    offset = offset % (len(raw) + 2)  # sometimes one past the end
    same(py.split_frames, c.split_frames, wrap(kind, raw), offset, max_data=max_data)


@settings(max_examples=300)
@given(inputs, st.lists(st.integers(1, 40), min_size=1, max_size=8), st.integers(0, 50))
def test_reader_differential(
    twins: tuple[Any, Any], raw: bytes, cuts: list[int], max_data: int
) -> None:
    py, c = twins
    readers = py.FrameReader(max_data=max_data), c.FrameReader(max_data=max_data)
    pos = n = 0
    while pos < len(raw):
        size = cuts[n % len(cuts)]
        chunk = bytearray(raw[pos : pos + size])
        result = same(readers[0].feed, readers[1].feed, chunk)
        assert (readers[0].buffered, readers[0].remaining) == (
            readers[1].buffered,
            readers[1].remaining,
        )
        chunk.extend(b"!")  # released by both
        if result[0] == "error":
            same(readers[0].feed, readers[1].feed, b"")  # both refuse further input
            break
        pos += size
        n += 1


@given(anything, anything, anything, anything)
def test_encode_header_differential(
    twins: tuple[Any, Any], ftype: Any, flags: Any, sid: Any, length: Any
) -> None:
    py, c = twins
    same(py.encode_header, c.encode_header, ftype, flags, sid, length)
    size = 12 + (sid % 5 if isinstance(sid, int) and not isinstance(sid, bool) else 0)
    buffers = bytearray(size), bytearray(size)
    py_out = outcome(py.encode_header_into, buffers[0], size - 12, ftype, flags, sid, length)
    c_out = outcome(c.encode_header_into, buffers[1], size - 12, ftype, flags, sid, length)
    assert py_out == c_out and buffers[0] == buffers[1]


@given(
    st.tuples(anything, anything), st.binary(max_size=100), st.sampled_from(BUFFER_KINDS), anything
)
def test_encode_data_frames_differential(
    twins: tuple[Any, Any], ids: tuple[Any, Any], payload: bytes, kind: str, max_frame: Any
) -> None:
    py, c = twins
    sid, flags = ids
    if isinstance(max_frame, int) and not isinstance(max_frame, bool) and max_frame > 0:
        max_frame = max_frame % 120 + 1  # keep the frame count small
    same(py.encode_data_frames, c.encode_data_frames, sid, flags, wrap(kind, payload), max_frame)
