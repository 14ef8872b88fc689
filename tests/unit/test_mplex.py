"""The mplex machine: framing, stream lifecycle, bounds, hostile bytes (two machines in memory)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p._accel import varint
from aiolibp2p.core.errors import (
    ConfigError,
    DecodeError,
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    VarintError,
)
from aiolibp2p.proto.mplex import (
    MAX_STREAM_ID,
    PROTOCOL_ID,
    SEND_CAPACITY,
    Flag,
    MplexConfig,
    MplexMachine,
)
from aiolibp2p.proto.muxer import (
    DataReceived,
    MuxerEvent,
    MuxerMachine,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)

NOW = 100.0


# ----------------------------------------------------------------------------- helpers


def frame(wire_id: int, flag: int, data: bytes = b"") -> bytes:
    """One mplex frame, built by hand."""
    return varint.encode_uvarint((wire_id << 3) | flag) + varint.encode_uvarint(len(data)) + data


def parse_frames(wire: bytes) -> list[tuple[int, int, bytes]]:
    """Split wire bytes into (wire_id, flag, data) triples (test-side reference decoder)."""
    out = []
    pos = 0
    for _ in range(len(wire) + 1):
        if pos == len(wire):
            return out
        decoded = varint.decode_uvarint(wire, pos)
        assert decoded is not None
        header, pos = decoded
        decoded = varint.decode_uvarint(wire, pos)
        assert decoded is not None
        length, pos = decoded
        out.append((header >> 3, header & 7, wire[pos : pos + length]))
        pos += length
    raise AssertionError("parse_frames did not terminate")


class Pair:
    """Two machines back to back; ``pump`` moves bytes until both are quiet."""

    def __init__(
        self, config_a: MplexConfig | None = None, config_b: MplexConfig | None = None
    ) -> None:
        self.a = MplexMachine(is_initiator=True, config=config_a)
        self.b = MplexMachine(is_initiator=False, config=config_b)

    def pump(self) -> tuple[list[MuxerEvent], list[MuxerEvent]]:
        """Deliver everything queued; return (events at a, events at b)."""
        got_a: list[MuxerEvent] = []
        got_b: list[MuxerEvent] = []
        for _ in range(100):
            to_b = self.a.data_to_send()
            to_a = self.b.data_to_send()
            if not to_a and not to_b:
                return got_a, got_b
            if to_b:
                got_b += self.b.receive_data(to_b, NOW)
            if to_a:
                got_a += self.a.receive_data(to_a, NOW)
        raise AssertionError("pump did not settle in 100 rounds")


def data_of(events: list[MuxerEvent], stream_id: int) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, DataReceived) and e.stream_id == stream_id
    )


# ----------------------------------------------------------------------------- config


def test_contract_and_defaults() -> None:
    m = MplexMachine(is_initiator=True)
    assert isinstance(m, MuxerMachine)
    assert MplexMachine.protocol_id == PROTOCOL_ID == "/mplex/6.7.0"
    assert m.is_initiator and not m.is_closed
    assert m.next_deadline() is None
    assert m.handle_timer(NOW) == []
    assert m.data_to_send() == b""
    cfg = m.config
    assert cfg.max_message_size == 1 << 20
    assert cfg.max_stream_buffer == 4 << 20
    assert cfg.max_frame_size == 64 << 10
    assert MAX_STREAM_ID == 2**60 - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_message_size": 0},
        {"max_message_size": -1},
        {"max_message_size": 1 << 40},
        {"max_frame_size": 0},
        {"max_frame_size": (1 << 20) + 1},  # peers refuse frames above 1 MiB
        {"max_inbound_streams": 0},
        {"max_outbound_streams": 0},
        {"max_stream_buffer": 0},
        {"max_inbound_streams": True},
        {"max_frame_size": 1.5},
        {"max_stream_buffer": "1"},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MplexConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen_and_type_checked() -> None:
    cfg = MplexConfig(max_frame_size=1 << 20)
    with pytest.raises(AttributeError):
        cfg.max_frame_size = 5  # type: ignore[misc]
    with pytest.raises(LocalProtocolError):
        MplexMachine(is_initiator=True, config={"max_frame_size": 5})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- wire format


def test_open_stream_wire_bytes_and_ids() -> None:
    a = MplexMachine(is_initiator=True)
    b = MplexMachine(is_initiator=False)
    # Session initiator: odd wire ids 1, 3, ...; receiver: even 0, 2, ...; name = decimal id.
    assert [a.open_stream(NOW), a.open_stream(NOW)] == [2, 6]
    assert a.data_to_send() == frame(1, 0, b"1") + frame(3, 0, b"3")
    assert [b.open_stream(NOW), b.open_stream(NOW)] == [0, 4]
    assert b.data_to_send() == frame(0, 0, b"0") + frame(2, 0, b"2")


def test_data_close_reset_flags_on_the_wire() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    _, got_b = p.pump()
    (opened,) = got_b
    assert isinstance(opened, StreamOpened)
    sb = opened.stream_id
    assert sb % 2 == 1  # opened by the remote: odd

    p.a.send_data(sa, b"hi", NOW)
    assert p.a.data_to_send() == frame(1, Flag.MESSAGE_INITIATOR, b"hi")
    p.b.send_data(sb, b"yo", NOW)
    assert p.b.data_to_send() == frame(1, Flag.MESSAGE_RECEIVER, b"yo")
    p.a.close_stream(sa, NOW)
    assert p.a.data_to_send() == frame(1, Flag.CLOSE_INITIATOR)
    p.b.close_stream(sb, NOW)
    assert p.b.data_to_send() == frame(1, Flag.CLOSE_RECEIVER)

    p2 = Pair()
    sa = p2.a.open_stream(NOW)
    (opened,) = p2.pump()[1]
    assert isinstance(opened, StreamOpened)
    p2.b.reset_stream(opened.stream_id, NOW)
    assert p2.b.data_to_send() == frame(1, Flag.RESET_RECEIVER)
    p3 = Pair()
    sa = p3.a.open_stream(NOW)
    p3.pump()
    p3.a.reset_stream(sa, NOW)
    assert p3.a.data_to_send() == frame(1, Flag.RESET_INITIATOR)


def test_round_trip_both_directions() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    assert p.a.send_data(sa, b"request", NOW) == 7  # data may follow NewStream at once
    got_a, got_b = p.pump()
    assert got_a == []
    sb = got_b[0].stream_id  # type: ignore[attr-defined]
    assert got_b == [StreamOpened(sb), DataReceived(sb, b"request")]
    p.b.send_data(sb, bytearray(b"response"), NOW)
    got_a, got_b = p.pump()
    assert got_a == [DataReceived(sa, b"response")]
    assert got_b == []


@pytest.mark.parametrize("frame_size", [1, 7, 1000, 64 << 10, 1 << 20])
@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 200_000])
def test_send_data_splits_into_frames(frame_size: int, size: int) -> None:
    p = Pair(config_a=MplexConfig(max_frame_size=frame_size))
    sa = p.a.open_stream(NOW)
    payload = bytes(i % 251 for i in range(size))
    wire_open = p.a.data_to_send()
    assert p.a.send_data(sa, memoryview(payload), NOW) == size
    wire = p.a.data_to_send()
    frames = parse_frames(wire)
    expected = -(-size // frame_size)
    assert len(frames) == expected
    assert all(wid == 1 and flag == Flag.MESSAGE_INITIATOR for wid, flag, _ in frames)
    assert all(len(d) <= frame_size for _, _, d in frames)
    assert b"".join(d for _, _, d in frames) == payload
    got = p.b.receive_data(wire_open + wire, NOW)
    assert data_of(got, got[0].stream_id) == payload  # type: ignore[attr-defined]


def test_send_data_copies_the_caller_buffer() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    buf = bytearray(b"abcdef")
    p.a.send_data(sa, buf, NOW)
    buf[:] = b"XXXXXX"
    _, got_b = p.pump()
    assert data_of(got_b, got_b[0].stream_id) == b"abcdef"  # type: ignore[attr-defined]


def _sample_wire() -> bytes:
    return b"".join(
        [
            frame(0, Flag.NEW_STREAM, b"0"),  # go/js number from 0 on both sides
            frame(0, Flag.MESSAGE_INITIATOR, b"first"),
            frame(1, Flag.NEW_STREAM, b""),
            frame(1, Flag.MESSAGE_INITIATOR, bytes(range(200))),  # two-byte length prefix
            frame(0, Flag.CLOSE_INITIATOR),
            frame(1, Flag.RESET_INITIATOR),
            frame(2, Flag.NEW_STREAM, b"a-name"),
            frame(2, Flag.MESSAGE_INITIATOR, b"x" * 300),
        ]
    )


def _expected_sample_events() -> list[MuxerEvent]:
    return [
        StreamOpened(1),
        DataReceived(1, b"first"),
        StreamOpened(3),
        DataReceived(3, bytes(range(200))),
        StreamEnded(1),
        StreamReset(3),
        StreamOpened(5),
        DataReceived(5, b"x" * 300),
    ]


def test_whole_input_at_once() -> None:
    m = MplexMachine(is_initiator=False)
    assert m.receive_data(_sample_wire(), NOW) == _expected_sample_events()
    assert m.buffered_bytes() == 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_every_split_point(kind: type) -> None:
    wire = _sample_wire()
    for cut in range(len(wire) + 1):
        m = MplexMachine(is_initiator=False)
        events = m.receive_data(kind(wire[:cut]), NOW)
        events += m.receive_data(kind(wire[cut:]), NOW)
        assert events == _expected_sample_events(), cut
        assert m.buffered_bytes() == 0


@pytest.mark.parametrize("cut", [1, 2, 3, 50])
def test_pending_frame_takes_only_what_it_lacks(cut: int) -> None:
    # A partial frame, then its rest with whole frames and a new partial one in the same
    # chunk: the rest completes it, the whole frames are handled, only the new tail is kept.
    big = frame(0, 2, b"a" * 1000)  # 2-byte length varint: cuts 1 and 2 split the header
    wire = frame(0, 0) + big + frame(0, 2, b"bc") + frame(0, 2, b"d" * 200)
    head = len(frame(0, 0)) + cut
    m = MplexMachine(is_initiator=False)
    assert m.receive_data(wire[:head], NOW) == [StreamOpened(1)]
    assert m.buffered_bytes() == cut
    tail_kept = 30
    events = m.receive_data(memoryview(wire)[head : len(wire) - tail_kept], NOW)
    assert events == [DataReceived(1, b"a" * 1000), DataReceived(1, b"bc")]
    assert m.buffered_bytes() == len(frame(0, 2, b"d" * 200)) - tail_kept
    assert m.receive_data(wire[len(wire) - tail_kept :], NOW) == [DataReceived(1, b"d" * 200)]
    assert m.buffered_bytes() == 0


def test_byte_by_byte() -> None:
    wire = _sample_wire()
    m = MplexMachine(is_initiator=False)
    events: list[MuxerEvent] = []
    for i in range(len(wire)):
        events += m.receive_data(wire[i : i + 1], NOW)
        assert m.buffered_bytes() <= 18 + 300
    assert events == _expected_sample_events()


def test_empty_input_is_a_no_op() -> None:
    m = MplexMachine(is_initiator=False)
    assert m.receive_data(b"", NOW) == []
    assert m.receive_data(memoryview(b""), NOW) == []


def test_wide_memoryview_is_read_as_bytes() -> None:
    import array

    wire = frame(0, 0, b"ab") + frame(0, 2, b"cd")  # 8 bytes: two 4-byte items
    m = MplexMachine(is_initiator=False)
    arr = array.array("I", wire)
    assert m.receive_data(memoryview(arr), NOW) == [StreamOpened(1), DataReceived(1, b"cd")]


# ----------------------------------------------------------------------------- stream ids


def test_same_wire_id_from_both_sides_is_two_streams() -> None:
    """go/js open wire id 0 on both sides: the opener flag keeps the two streams apart."""
    b = MplexMachine(is_initiator=False)
    ours = b.open_stream(NOW)  # our wire id 0
    assert ours == 0
    b.data_to_send()
    events = b.receive_data(frame(0, Flag.NEW_STREAM, b"0"), NOW)
    assert events == [StreamOpened(1)]  # their wire id 0
    events = b.receive_data(
        frame(0, Flag.MESSAGE_INITIATOR, b"to-theirs")
        + frame(0, Flag.MESSAGE_RECEIVER, b"to-ours"),
        NOW,
    )
    assert events == [DataReceived(1, b"to-theirs"), DataReceived(0, b"to-ours")]
    b.send_data(0, b"a", NOW)
    b.send_data(1, b"b", NOW)
    assert b.data_to_send() == frame(0, Flag.MESSAGE_INITIATOR, b"a") + frame(
        0, Flag.MESSAGE_RECEIVER, b"b"
    )


def test_largest_remote_wire_id() -> None:
    m = MplexMachine(is_initiator=True)
    events = m.receive_data(frame(MAX_STREAM_ID, Flag.NEW_STREAM), NOW)
    assert events == [StreamOpened(MAX_STREAM_ID * 2 + 1)]
    events = m.receive_data(frame(MAX_STREAM_ID, Flag.MESSAGE_INITIATOR, b"z"), NOW)
    assert events == [DataReceived(MAX_STREAM_ID * 2 + 1, b"z")]


def test_local_wire_ids_exhausted() -> None:
    m = MplexMachine(is_initiator=True)
    m._next_wire_id = MAX_STREAM_ID  # white-box: skip 2**59 opens
    sid = m.open_stream(NOW)
    assert sid == MAX_STREAM_ID * 2
    with pytest.raises(LocalProtocolError, match="exhausted"):
        m.open_stream(NOW)


# ----------------------------------------------------------------------------- lifecycle


def test_half_close_and_table_cleanup() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    sb = p.pump()[1][0].stream_id  # type: ignore[attr-defined]
    p.a.close_stream(sa, NOW)
    got_a, got_b = p.pump()
    assert got_b == [StreamEnded(sb)]
    with pytest.raises(StreamClosedError):
        p.a.send_data(sa, b"late", NOW)
    assert p.a.send_capacity(sa) == 0
    assert p.b.send_capacity(sb) == SEND_CAPACITY
    # the other direction still works
    p.b.send_data(sb, b"still open", NOW)
    got_a, _ = p.pump()
    assert got_a == [DataReceived(sa, b"still open")]
    assert p.a.stream_count == p.b.stream_count == 1
    p.a.close_stream(sa, NOW)  # closing twice: no-op, no second frame
    assert p.a.data_to_send() == b""
    p.b.close_stream(sb, NOW)
    got_a, _ = p.pump()
    assert got_a == [StreamEnded(sa)]
    assert p.a.stream_count == p.b.stream_count == 0
    # both gone: operations are refused or ignored
    with pytest.raises(StreamClosedError):
        p.b.send_data(sb, b"x", NOW)
    p.b.close_stream(sb, NOW)
    p.b.reset_stream(sb, NOW)
    p.b.consume(sb, 0, NOW)
    assert p.b.data_to_send() == b""


def test_remote_close_then_local_close_cleans_up() -> None:
    m = MplexMachine(is_initiator=False)
    assert m.receive_data(frame(5, 0) + frame(5, Flag.CLOSE_INITIATOR), NOW) == [
        StreamOpened(11),
        StreamEnded(11),
    ]
    assert m.stream_count == 1
    # data and a second close after the remote's close are dropped
    assert m.receive_data(frame(5, Flag.MESSAGE_INITIATOR, b"x") + frame(5, 4), NOW) == []
    m.close_stream(11, NOW)
    assert m.data_to_send() == frame(5, Flag.CLOSE_RECEIVER)
    assert m.stream_count == 0


def test_remote_reset() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    sb = p.pump()[1][0].stream_id  # type: ignore[attr-defined]
    p.b.reset_stream(sb, NOW)
    got_a, got_b = p.pump()
    assert got_a == [StreamReset(sa)]
    assert got_b == []
    assert p.a.stream_count == p.b.stream_count == 0
    with pytest.raises(StreamClosedError):
        p.a.send_data(sa, b"x", NOW)
    with pytest.raises(StreamClosedError):
        p.b.send_data(sb, b"x", NOW)


def test_frames_after_our_reset_are_ignored() -> None:
    m = MplexMachine(is_initiator=False)
    (opened,) = m.receive_data(frame(3, 0), NOW)
    m.reset_stream(opened.stream_id, NOW)  # type: ignore[attr-defined]
    assert m.data_to_send() == frame(3, Flag.RESET_RECEIVER)
    late = frame(3, 2, b"in flight") + frame(3, 4) + frame(3, 6)
    assert m.receive_data(late, NOW) == []
    assert m.data_to_send() == b""  # nothing sent back


def test_frames_for_never_opened_streams_are_dropped() -> None:
    m = MplexMachine(is_initiator=True)
    wire = b"".join(frame(9, flag, b"d" if flag in (1, 2) else b"") for flag in range(1, 7))
    assert m.receive_data(wire, NOW) == []
    assert m.data_to_send() == b""
    assert m.stream_count == 0
    assert not m.is_closed


def test_close_and_reset_bodies_are_tolerated() -> None:
    m = MplexMachine(is_initiator=False)
    m.receive_data(frame(0, 0) + frame(1, 0), NOW)
    events = m.receive_data(frame(0, 4, b"junk") + frame(1, 6, b"junk"), NOW)
    assert events == [StreamEnded(1), StreamReset(3)]


def test_empty_data_frame_gives_no_event() -> None:
    m = MplexMachine(is_initiator=False)
    assert m.receive_data(frame(0, 0) + frame(0, 2, b""), NOW) == [StreamOpened(1)]


def test_stream_name_is_optional_and_free_form() -> None:
    m = MplexMachine(is_initiator=False)
    names = [b"", b"0", b"/ipfs/id/1.0.0", b"\xff\xfe not utf-8", b"n" * 60_000]
    wire = b"".join(frame(i, 0, name) for i, name in enumerate(names))
    assert m.receive_data(wire, NOW) == [StreamOpened(2 * i + 1) for i in range(len(names))]


# ----------------------------------------------------------------------------- protocol errors


def _assert_failed(m: MplexMachine) -> None:
    assert m.is_closed
    assert m.stream_count == 0
    with pytest.raises(LocalProtocolError):
        m.receive_data(frame(100, 0), NOW)
    with pytest.raises(LocalProtocolError):
        m.open_stream(NOW)


def test_duplicate_new_stream_is_a_protocol_error() -> None:
    m = MplexMachine(is_initiator=False)
    m.receive_data(frame(4, 0), NOW)
    with pytest.raises(RemoteProtocolError, match="open"):
        m.receive_data(frame(4, 0, b"again"), NOW)
    _assert_failed(m)


def test_new_stream_reuses_an_id_after_it_was_forgotten() -> None:
    m = MplexMachine(is_initiator=False)
    m.receive_data(frame(4, 0) + frame(4, 6), NOW)  # opened, reset, forgotten
    assert m.receive_data(frame(4, 0), NOW) == [StreamOpened(9)]


def test_flag_seven_is_a_protocol_error() -> None:
    m = MplexMachine(is_initiator=False)
    with pytest.raises(RemoteProtocolError, match="flag 7"):
        m.receive_data(frame(0, 7, b"??"), NOW)
    _assert_failed(m)


def test_oversized_frame_fails_before_its_body_arrives() -> None:
    m = MplexMachine(is_initiator=False, config=MplexConfig(max_message_size=1000))
    m.receive_data(frame(0, 0), NOW)
    assert m.receive_data(frame(0, 2, b"y" * 1000), NOW) == [DataReceived(1, b"y" * 1000)]
    prefix = varint.encode_uvarint(2) + varint.encode_uvarint(1001)
    with pytest.raises(MessageTooLarge) as info:
        m.receive_data(prefix, NOW)  # no body at all yet
    assert (info.value.length, info.value.limit) == (1001, 1000)
    _assert_failed(m)


def test_default_message_bound_is_one_mebibyte() -> None:
    m = MplexMachine(is_initiator=False, config=MplexConfig(max_stream_buffer=2 << 20))
    m.receive_data(frame(0, 0), NOW)
    events = m.receive_data(frame(0, 2, bytes(1 << 20)), NOW)
    assert len(events) == 1 and len(events[0].data) == 1 << 20  # type: ignore[attr-defined]
    with pytest.raises(MessageTooLarge):
        m.receive_data(varint.encode_uvarint(2) + varint.encode_uvarint((1 << 20) + 1), NOW)


@pytest.mark.parametrize(
    "wire",
    [
        b"\x80\x00\x00",  # non-minimal header
        b"\xff" * 9 + b"\x01",  # header longer than 9 bytes
        b"\x00\x80\x00",  # non-minimal length
        b"\x00" + b"\xff" * 10,  # length longer than 9 bytes
    ],
)
def test_bad_varints(wire: bytes) -> None:
    m = MplexMachine(is_initiator=False)
    with pytest.raises(VarintError):
        m.receive_data(wire, NOW)
    _assert_failed(m)


def test_protocol_error_after_valid_frames_in_the_same_call() -> None:
    m = MplexMachine(is_initiator=False)
    with pytest.raises(RemoteProtocolError):
        m.receive_data(frame(0, 0) + frame(0, 2, b"x") + frame(0, 7), NOW)
    _assert_failed(m)


# ----------------------------------------------------------------------------- bounds


def test_inbound_stream_limit_resets_extra_streams() -> None:
    m = MplexMachine(is_initiator=True, config=MplexConfig(max_inbound_streams=3))
    events = m.receive_data(b"".join(frame(i, 0) for i in range(3)), NOW)
    assert events == [StreamOpened(1), StreamOpened(3), StreamOpened(5)]
    assert m.receive_data(frame(3, 0), NOW) == []
    assert m.data_to_send() == frame(3, Flag.RESET_RECEIVER)
    # frames for the refused stream are dropped
    assert m.receive_data(frame(3, 2, b"x"), NOW) == []
    # our own streams do not count against the inbound limit
    m.open_stream(NOW)
    m.data_to_send()
    # after one inbound stream goes away, a new one is accepted
    m.receive_data(frame(0, 6), NOW)
    assert m.receive_data(frame(4, 0), NOW) == [StreamOpened(9)]


def test_outbound_stream_limit() -> None:
    m = MplexMachine(is_initiator=True, config=MplexConfig(max_outbound_streams=2))
    s1 = m.open_stream(NOW)
    m.open_stream(NOW)
    with pytest.raises(LocalProtocolError, match="too many"):
        m.open_stream(NOW)
    m.reset_stream(s1, NOW)
    m.open_stream(NOW)


def test_unconsumed_buffer_bound_resets_the_stream() -> None:
    p = Pair(config_b=MplexConfig(max_stream_buffer=100))
    sa = p.a.open_stream(NOW)
    sb = p.pump()[1][0].stream_id  # type: ignore[attr-defined]
    p.a.send_data(sa, b"x" * 60, NOW)
    _, got_b = p.pump()
    assert got_b == [DataReceived(sb, b"x" * 60)]
    assert p.b.unconsumed(sb) == 60
    p.b.consume(sb, 30, NOW)
    assert p.b.unconsumed(sb) == 30
    p.a.send_data(sa, b"y" * 70, NOW)  # 30 + 70 = 100: exactly at the bound
    _, got_b = p.pump()
    assert got_b == [DataReceived(sb, b"y" * 70)]
    assert p.b.unconsumed(sb) == 100
    p.a.send_data(sa, b"z", NOW)  # one byte past the bound
    to_b = p.a.data_to_send()
    got_b = p.b.receive_data(to_b, NOW)
    assert got_b == [StreamReset(sb)]
    assert p.b.data_to_send() == frame(1, Flag.RESET_RECEIVER)
    assert p.b.stream_count == 0
    # the reset reaches the writer
    assert p.a.receive_data(frame(1, Flag.RESET_RECEIVER), NOW) == [StreamReset(sa)]
    assert p.a.stream_count == 0


def test_buffer_bound_uses_the_initiator_flag_for_our_streams() -> None:
    m = MplexMachine(is_initiator=True, config=MplexConfig(max_stream_buffer=10))
    sid = m.open_stream(NOW)
    m.data_to_send()
    assert m.receive_data(frame(1, Flag.MESSAGE_RECEIVER, b"a" * 11), NOW) == [StreamReset(sid)]
    assert m.data_to_send() == frame(1, Flag.RESET_INITIATOR)


def test_consume_misuse() -> None:
    m = MplexMachine(is_initiator=False)
    m.receive_data(frame(0, 0) + frame(0, 2, b"abc"), NOW)
    with pytest.raises(LocalProtocolError):
        m.consume(1, -1, NOW)
    with pytest.raises(LocalProtocolError):
        m.consume(1, 4, NOW)
    m.consume(1, 3, NOW)
    assert m.unconsumed(1) == 0
    m.consume(12345, 10, NOW)  # unknown stream: ignored


def test_go_away() -> None:
    p = Pair()
    sa = p.a.open_stream(NOW)
    sb = p.pump()[1][0].stream_id  # type: ignore[attr-defined]
    p.b.go_away()
    assert p.b.is_closed
    with pytest.raises(LocalProtocolError):
        p.b.open_stream(NOW)
    s2 = p.a.open_stream(NOW)  # the remote does not know: its NewStream is reset
    got_a, got_b = p.pump()
    assert got_b == []
    assert got_a == [StreamReset(s2)]
    # existing streams carry on
    p.a.send_data(sa, b"still", NOW)
    p.b.send_data(sb, b"here", NOW)
    got_a, got_b = p.pump()
    assert got_a == [DataReceived(sa, b"here")]
    assert got_b == [DataReceived(sb, b"still")]


def test_thousand_streams() -> None:
    n = 1000
    p = Pair()
    ours = [p.a.open_stream(NOW) for _ in range(n)]
    assert len(set(ours)) == n
    with pytest.raises(LocalProtocolError):
        p.a.open_stream(NOW)
    _, got_b = p.pump()
    theirs = [e.stream_id for e in got_b if isinstance(e, StreamOpened)]
    assert len(theirs) == n
    assert p.b.stream_count == n
    # the remote's limit is 1000 too: one more inbound stream is reset
    extra = p.b.receive_data(frame(99_999, 0), NOW)
    assert extra == []
    assert p.b.data_to_send() == frame(99_999, Flag.RESET_RECEIVER)
    for i, sid in enumerate(ours):
        p.a.send_data(sid, i.to_bytes(2, "big"), NOW)
        p.a.close_stream(sid, NOW)
    _, got_b = p.pump()
    for i, sid in enumerate(theirs):
        assert data_of(got_b, sid) == i.to_bytes(2, "big")
        assert StreamEnded(sid) in got_b
        p.b.send_data(sid, b"ok", NOW)
        p.b.close_stream(sid, NOW)
    got_a, _ = p.pump()
    assert sum(isinstance(e, StreamEnded) for e in got_a) == n
    assert p.a.stream_count == p.b.stream_count == 0
    assert p.a.buffered_bytes() == p.b.buffered_bytes() == 0


# ----------------------------------------------------------------------------- hypothesis


@given(st.binary(max_size=2048), st.integers(min_value=1, max_value=64))
def test_random_bytes_raise_only_typed_errors(data: bytes, chunk: int) -> None:
    m = MplexMachine(is_initiator=False, config=MplexConfig(max_message_size=512))
    try:
        for i in range(0, len(data), chunk):
            events = m.receive_data(data[i : i + chunk], NOW)
            assert all(
                isinstance(e, (StreamOpened, DataReceived, StreamEnded, StreamReset))
                for e in events
            )
            m.data_to_send()  # the driver drains after every call
            assert m.buffered_bytes() < 9 + 9 + 512  # at most one incomplete frame is kept
    except RemoteProtocolError:
        assert m.is_closed
    assert m.stream_count <= m.config.max_inbound_streams


@given(st.binary(max_size=256), st.sampled_from([bytes, bytearray, memoryview]))
def test_random_bytes_any_buffer_type(data: bytes, kind: type) -> None:
    m = MplexMachine(is_initiator=True)
    try:
        m.receive_data(kind(data), NOW)
    except Libp2pError as exc:
        assert isinstance(exc, (DecodeError, RemoteProtocolError))


_frame_st = st.tuples(
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=6),
    st.binary(max_size=40),
)


@given(st.lists(_frame_st, max_size=30), st.data())
def test_valid_frames_chunked_anyhow_give_the_same_events(
    frames: list[tuple[int, int, bytes]], data: st.DataObject
) -> None:
    wire = b"".join(frame(w, f, d) for w, f, d in frames)
    whole = MplexMachine(is_initiator=False)
    try:
        expected = whole.receive_data(wire, NOW)
    except RemoteProtocolError:
        expected = None
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    m = MplexMachine(is_initiator=False)
    got: list[MuxerEvent] = []
    try:
        prev = 0
        for cut in [*cuts, len(wire)]:
            got += m.receive_data(wire[prev:cut], NOW)
            prev = cut
    except RemoteProtocolError:
        assert expected is None
    else:
        assert got == expected
        assert m.buffered_bytes() == len(m.data_to_send())


@given(st.lists(_frame_st, min_size=1, max_size=20), st.data())
def test_truncated_valid_input_is_buffered_not_an_error(
    frames: list[tuple[int, int, bytes]], data: st.DataObject
) -> None:
    # only NewStream and data frames for distinct streams: always valid
    wire = b"".join(frame(i, 0) + frame(i, 2, d) for i, (_, _, d) in enumerate(frames))
    cut = data.draw(st.integers(0, len(wire)))
    m = MplexMachine(is_initiator=False)
    events = m.receive_data(wire[:cut], NOW)
    assert len(events) <= 2 * len(frames)
    assert m.buffered_bytes() <= 18 + 40
    rest = m.receive_data(wire[cut:], NOW)
    assert len([e for e in events + rest if isinstance(e, StreamOpened)]) == len(frames)


_op_st = st.one_of(
    st.tuples(st.just("open"), st.sampled_from("ab")),
    st.tuples(st.just("send"), st.sampled_from("ab"), st.integers(0, 9), st.binary(max_size=300)),
    st.tuples(st.just("close"), st.sampled_from("ab"), st.integers(0, 9)),
    st.tuples(st.just("reset"), st.sampled_from("ab"), st.integers(0, 9)),
    st.tuples(
        st.just("pump"),
    ),
)


@given(st.lists(_op_st, max_size=40))
def test_random_operations_keep_both_sides_consistent(ops: list[tuple[object, ...]]) -> None:
    """Whatever the two sides do, every byte written on a live stream arrives in order."""
    p = Pair(MplexConfig(max_frame_size=100), MplexConfig(max_frame_size=100))
    machines = {"a": p.a, "b": p.b}
    opened: dict[str, list[int]] = {"a": [], "b": []}  # stream ids known on each side
    sent: dict[tuple[str, int], bytes] = {}
    received: dict[tuple[str, int], bytes] = {}

    def record(side: str, events: list[MuxerEvent]) -> None:
        for e in events:
            if isinstance(e, StreamOpened):
                opened[side].append(e.stream_id)
            elif isinstance(e, DataReceived):
                received[(side, e.stream_id)] = received.get((side, e.stream_id), b"") + e.data
                machines[side].consume(e.stream_id, len(e.data), NOW)

    def pump() -> None:
        got_a, got_b = p.pump()
        record("a", got_a)
        record("b", got_b)

    for op in ops:
        kind, *args = op
        if kind == "pump":
            pump()
            continue
        side = str(args[0])
        m = machines[side]
        if kind == "open":
            opened[side].append(m.open_stream(NOW))
            continue
        if not opened[side]:
            continue
        sid = opened[side][int(args[1]) % len(opened[side])]  # type: ignore[call-overload]
        if kind == "send":
            payload = args[2]
            assert isinstance(payload, bytes)
            try:
                assert m.send_data(sid, payload, NOW) == len(payload)
            except StreamClosedError:
                assert m.send_capacity(sid) == 0
            else:
                sent[(side, sid)] = sent.get((side, sid), b"") + payload
        elif kind == "close":
            m.close_stream(sid, NOW)
        else:
            m.reset_stream(sid, NOW)
    pump()
    any_reset = any(op[0] == "reset" for op in ops)
    # the peer's stream id differs only in the low bit (who opened it)
    for (side, sid), payload in sent.items():
        other = "b" if side == "a" else "a"
        got = received.get((other, sid ^ 1), b"")
        if any_reset:
            assert payload.startswith(got)  # a reset may cut it short, never reorder or corrupt
        else:
            assert got == payload
    assert p.a.buffered_bytes() == p.b.buffered_bytes() == 0
