"""The yamux session machine: two machines back to back in memory, and hand-built wire bytes.

Frames on the wire are built and decoded here with ``struct`` (``>BBHII``), independently of the
codec under test.  Time is a counter advanced by the test: ``Link.delay`` is the one-way latency
of each delivery round, so the round-trip time is ``2 * delay``.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolibp2p.core.errors import (
    ConfigError,
    KeepAliveTimeout,
    LocalProtocolError,
    RemoteProtocolError,
    YamuxError,
)
from aiolibp2p.proto.muxer import (
    DataReceived,
    GoAwayReceived,
    MuxerEvent,
    MuxerMachine,
    PingAcknowledged,
    SendWindowAvailable,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from aiolibp2p.proto.yamux import SPEC_INITIAL_WINDOW, YamuxConfig, YamuxMachine

HEADER = struct.Struct(">BBHII")
KiB = 1024
MiB = 1024 * KiB
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 0x1, 0x2, 0x4, 0x8
Frame = tuple[int, int, int, int, Any]


def frame(ftype: int, flags: int, sid: int, length: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(0, ftype, flags, sid, length) + payload


def data_frame(flags: int, sid: int, payload: bytes) -> bytes:
    return frame(DATA, flags, sid, len(payload), payload)


def decode(data: bytes) -> list[Frame]:
    """Every frame of a complete output buffer (the machine never emits partial frames)."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        version, ftype, flags, sid, length = HEADER.unpack_from(data, pos)
        assert version == 0
        pos += HEADER.size
        payload = None
        if ftype == DATA:
            payload = data[pos : pos + length]
            assert len(payload) == length
            pos += length
        frames.append((ftype, flags, sid, length, payload))
    return frames


def quiet(**overrides: Any) -> YamuxConfig:
    """A config without the automatic pings, so that wire traces hold only what a test sends."""
    options: dict[str, Any] = {"keepalive_interval": 0, "auto_tune": False}
    options.update(overrides)
    return YamuxConfig(**options)


class Link:
    """A client and a server machine wired back to back, each with a tiny "application"."""

    def __init__(
        self,
        client: YamuxConfig | None = None,
        server: YamuxConfig | None = None,
        *,
        delay: float = 0.0,
        consume: bool = True,
        accept: bool = False,
    ) -> None:
        self.client = YamuxMachine(is_initiator=True, config=client or quiet())
        self.server = YamuxMachine(is_initiator=False, config=server or quiet())
        self.now = 0.0
        self.delay = delay
        self.consume = {self.client: consume, self.server: consume}
        self.accept = accept
        self.events: dict[YamuxMachine, list[MuxerEvent]] = {self.client: [], self.server: []}
        self.wire: dict[YamuxMachine, list[Frame]] = {self.client: [], self.server: []}
        self.received: dict[YamuxMachine, dict[int, bytearray]] = {
            self.client: defaultdict(bytearray),
            self.server: defaultdict(bytearray),
        }

    def peer(self, machine: YamuxMachine) -> YamuxMachine:
        return self.server if machine is self.client else self.client

    def step(self) -> bool:
        """One delivery round both ways (``delay`` seconds); False if nothing was queued."""
        out = {m: m.data_to_send() for m in (self.client, self.server)}
        if not any(out.values()):
            return False
        self.now += self.delay
        for src, data in out.items():
            if data:
                self.wire[src].extend(decode(data))
                dst = self.peer(src)
                self.handle(dst, dst.receive_data(data, self.now))
        return True

    def pump(self, rounds: int = 10_000) -> None:
        for _ in range(rounds):
            if not self.step():
                return
        raise AssertionError("the machines did not settle")

    def handle(self, machine: YamuxMachine, events: list[MuxerEvent]) -> None:
        self.events[machine].extend(events)
        for event in events:
            if isinstance(event, DataReceived):
                assert event.data, "empty DataReceived"
                self.received[machine][event.stream_id] += event.data
                if self.consume[machine]:
                    machine.consume(event.stream_id, len(event.data), self.now)
            elif isinstance(event, StreamOpened) and self.accept:
                machine.consume(event.stream_id, 0, self.now)

    def of(self, machine: YamuxMachine, kind: type[MuxerEvent]) -> list[Any]:
        return [e for e in self.events[machine] if isinstance(e, kind)]

    def sent(self, machine: YamuxMachine, ftype: int, sid: int | None = None) -> list[Frame]:
        return [f for f in self.wire[machine] if f[0] == ftype and (sid is None or f[2] == sid)]


def fresh(
    is_initiator: bool = False, config: YamuxConfig | None = None, now: float = 0.0
) -> YamuxMachine:
    machine = YamuxMachine(is_initiator=is_initiator, config=config or quiet())
    machine.handle_timer(now)
    assert machine.data_to_send() == b""
    return machine


def assert_protocol_error(machine: YamuxMachine, data: bytes, match: str) -> None:
    with pytest.raises(YamuxError, match=match) as info:
        machine.receive_data(data, 1.0)
    assert info.value.code == 1
    assert isinstance(info.value, RemoteProtocolError)
    assert machine.is_closed
    assert decode(machine.data_to_send())[-1] == (GO_AWAY, 0, 0, 1, None)
    # The machine has stopped: input is ignored, nothing more is sent.
    assert machine.receive_data(frame(PING, SYN, 0, 1), 2.0) == []
    assert machine.data_to_send() == b""


# --- the contract ---------------------------------------------------------------------------


def test_is_a_muxer_machine() -> None:
    machine = YamuxMachine(is_initiator=True)
    assert isinstance(machine, MuxerMachine)
    assert YamuxMachine.protocol_id == "/yamux/1.0.0"
    assert machine.is_initiator and not machine.is_closed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_window", SPEC_INITIAL_WINDOW - 1),
        ("initial_window", 32 * MiB),
        ("max_window", 2**32),
        ("max_window", 1000),
        ("max_window", 1.5),
        ("max_frame_data", 0),
        ("max_frame_data", True),
        ("max_inbound_streams", -1),
        ("max_ack_backlog", 0),
        ("keepalive_interval", -1),
        ("keepalive_interval", float("inf")),
        ("keepalive_interval", "30"),
        ("keepalive_timeout", 0),
        ("keepalive_timeout", float("nan")),
        ("auto_tune", 1),
    ],
)
def test_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        YamuxConfig(**{field: value})


def test_config_defaults() -> None:
    cfg = YamuxConfig()
    assert cfg.initial_window == 256 * KiB and cfg.max_window == 16 * MiB
    assert cfg.max_frame_data == 64 * KiB and cfg.max_ack_backlog == 256
    assert cfg.pong_timeout == 60.0
    assert YamuxConfig(keepalive_interval=0).pong_timeout == 0.0
    assert YamuxConfig(keepalive_timeout=5).pong_timeout == 5.0
    with pytest.raises(LocalProtocolError):
        YamuxMachine(is_initiator=True, config={"max_window": 1})  # type: ignore[arg-type]


# --- streams ----------------------------------------------------------------------------------


def test_open_accept_and_data_both_ways() -> None:
    link = Link()
    c, s = link.client, link.server
    sid = c.open_stream(link.now)
    assert sid == 1
    assert c.send_data(sid, b"hello", link.now) == 5
    link.pump()
    assert link.of(s, StreamOpened) == [StreamOpened(1)]
    assert bytes(link.received[s][1]) == b"hello"
    # 0-RTT: the SYN rode on the data frame, nothing went before it.
    assert link.wire[c][0] == (DATA, SYN, 1, 5, b"hello")
    # The server's first read acknowledged the stream (a Window Update with ACK).
    assert link.wire[s][0][:3] == (WINDOW_UPDATE, ACK, 1)
    assert s.send_data(sid, b"world", link.now) == 5
    link.pump()
    assert bytes(link.received[c][1]) == b"world"
    assert link.sent(s, DATA, 1)[0][1] == 0  # already acknowledged: no second ACK
    assert c.outbound_ack_backlog == 0 and s.ack_backlog == 0


def test_ack_rides_on_the_first_data_frame() -> None:
    link = Link(consume=False)
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    c.send_data(sid, b"ping", 0.0)
    link.pump()
    assert s.ack_backlog == 1 and c.outbound_ack_backlog == 1
    s.send_data(sid, b"pong", 0.0)
    link.pump()
    assert link.wire[s] == [(DATA, ACK, 1, 4, b"pong")]
    assert s.ack_backlog == 0 and c.outbound_ack_backlog == 0


def test_consume_zero_acknowledges_an_accepted_stream() -> None:
    link = Link(consume=False, accept=True)
    sid = link.client.open_stream(0.0)
    link.pump()
    assert link.wire[link.client] == [(WINDOW_UPDATE, SYN, 1, 0, None)]  # a bare SYN
    assert link.wire[link.server] == [(WINDOW_UPDATE, ACK, sid, 0, None)]
    assert link.server.ack_backlog == 0 and link.client.outbound_ack_backlog == 0


def test_has_output_tells_whether_data_to_send_has_bytes() -> None:
    link = Link(consume=False)
    client, server = link.client, link.server
    assert not client.has_output
    sid = client.open_stream(0.0)
    assert client.has_output  # the SYN is due
    link.pump()
    assert not client.has_output and not server.has_output
    client.send_data(sid, b"x" * 1000, 0.0)
    assert client.has_output
    link.pump()
    server.consume(sid, 0, 0.0)  # the first consume acknowledges the stream
    assert server.has_output
    assert server.data_to_send()
    assert not server.has_output
    server.consume(sid, 1000, 0.0)  # far below half a window: no update due
    assert not server.has_output and server.data_to_send() == b""
    window = server.receive_window(sid)
    client.send_data(sid, bytes(window // 2), 0.0)
    link.pump()
    server.consume(sid, window // 2, 0.0)  # half the window read: an update is due
    assert server.has_output
    assert decode(server.data_to_send())[0][0] == WINDOW_UPDATE


def test_large_immutable_payloads_are_queued_by_reference_with_the_same_bytes() -> None:
    def queued(payload: Any, *, parts: bool) -> Any:
        machine = YamuxMachine(is_initiator=True, config=quiet(max_frame_data=40_000))
        sid = machine.open_stream(0.0)
        assert machine.send_data(sid, payload, 0.0) == len(payload)
        return machine.data_to_send_parts() if parts else machine.data_to_send()

    data = bytes(range(256)) * 400  # 102400 bytes: three frames of at most 40000
    reference = queued(bytearray(data), parts=False)  # mutable: copied, as ever
    assert [f[3] for f in decode(reference)] == [40_000, 40_000, 22_400]
    assert decode(reference)[0][1] == SYN and decode(reference)[1][1] == 0
    for payload in (data, memoryview(data), memoryview(data).cast("B")):
        got = queued(payload, parts=True)
        assert b"".join(got) == reference
        views = [p for p in got if isinstance(p, memoryview)]
        assert len(views) == 3 and all(v.obj is data for v in views)  # no copy
        assert queued(payload, parts=False) == reference
    mutable = queued(bytearray(data), parts=True)
    assert not any(isinstance(p, memoryview) for p in mutable)  # a bytearray may change later
    small = queued(data[:100], parts=True)
    assert len(small) == 1 and type(small[0]) is bytes  # small payloads: one copied frame


def test_stream_ids_have_the_opener_parity_and_are_never_reused() -> None:
    link = Link()
    c, s = link.client, link.server
    client_ids = [c.open_stream(0.0) for _ in range(3)]
    server_ids = [s.open_stream(0.0) for _ in range(3)]
    assert client_ids == [1, 3, 5] and server_ids == [2, 4, 6]
    link.pump()
    for sid in client_ids:
        c.reset_stream(sid, 0.0)
    link.pump()
    assert c.open_stream(0.0) == 7
    assert {e.stream_id for e in link.of(s, StreamOpened)} == set(client_ids)
    assert {e.stream_id for e in link.of(c, StreamOpened)} == set(server_ids)


@pytest.mark.parametrize("first", ["client", "server"])
def test_half_close_each_direction(first: str) -> None:
    link = Link()
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    c.send_data(sid, b"request", 0.0)
    link.pump()
    closer, other = (c, s) if first == "client" else (s, c)
    closer.close_stream(sid, 0.0)
    link.pump()
    assert link.of(other, StreamEnded) == [StreamEnded(sid)]
    assert link.of(closer, StreamEnded) == []
    with pytest.raises(StreamClosedError):
        closer.send_data(sid, b"more", 0.0)
    assert closer.send_capacity(sid) == 0
    closer.close_stream(sid, 0.0)  # idempotent
    # The other direction still works.
    assert other.send_data(sid, b"reply", 0.0) == 5
    link.pump()
    assert bytes(link.received[closer][sid]).endswith(b"reply")
    assert c.stream_count == s.stream_count == 1
    other.close_stream(sid, 0.0)
    link.pump()
    assert link.of(closer, StreamEnded) == [StreamEnded(sid)]
    assert c.stream_count == s.stream_count == 0  # both sides closed: forgotten
    with pytest.raises(StreamClosedError):
        other.send_data(sid, b"x", 0.0)
    other.close_stream(sid, 0.0)  # no-op on a finished stream
    other.reset_stream(sid, 0.0)
    other.consume(sid, 0, 0.0)
    assert link.client.data_to_send() == link.server.data_to_send() == b""


def test_reset_both_sides_forget_the_stream() -> None:
    link = Link()
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    c.send_data(sid, b"x" * 1000, 0.0)
    link.pump()
    s.reset_stream(sid, 0.0)
    assert s.stream_count == 0
    link.pump()
    assert link.of(c, StreamReset) == [StreamReset(sid)]
    assert c.stream_count == 0
    assert link.sent(s, WINDOW_UPDATE, sid)[-1][1] & RST
    for machine in (c, s):
        with pytest.raises(StreamClosedError):
            machine.send_data(sid, b"x", 0.0)
        assert machine.send_capacity(sid) == 0


def test_frames_crossing_our_reset_are_ignored_within_the_window() -> None:
    link = Link(consume=False)
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    c.send_data(sid, b"a", 0.0)
    link.pump()
    # The server writes, while the client resets: the data crosses the RST.
    s.send_data(sid, b"b" * 1000, 0.0)
    c.reset_stream(sid, 0.0)
    link.pump()
    assert link.of(c, DataReceived) == [] and link.of(c, StreamReset) == []
    assert link.of(s, StreamReset) == [StreamReset(sid)]
    # A late window update and FIN are ignored too, without error.
    assert c.receive_data(frame(WINDOW_UPDATE, FIN, sid, 10), 1.0) == []
    assert not c.is_closed


def test_data_beyond_the_window_of_a_reset_stream_is_an_error() -> None:
    machine = fresh(is_initiator=False)
    machine.receive_data(data_frame(SYN, 1, b"x" * 100), 0.0)
    machine.reset_stream(1, 0.0)
    assert decode(machine.data_to_send()) == [(WINDOW_UPDATE, RST, 1, 0, None)]
    left = SPEC_INITIAL_WINDOW - 100
    assert machine.receive_data(data_frame(0, 1, b"y" * left), 0.0) == []  # crossed the RST
    assert_protocol_error(machine, data_frame(0, 1, b"z"), "reset stream 1")


def test_reset_of_a_stream_never_announced_sends_nothing() -> None:
    machine = fresh(is_initiator=True)
    sid = machine.open_stream(0.0)
    machine.reset_stream(sid, 0.0)
    assert machine.data_to_send() == b"" and machine.stream_count == 0


def test_zero_rtt_data_and_fin_in_the_syn_frame() -> None:
    machine = fresh(is_initiator=False)
    events = machine.receive_data(data_frame(SYN | FIN, 1, b"one-shot"), 0.0)
    assert events == [StreamOpened(1), DataReceived(1, b"one-shot"), StreamEnded(1)]
    assert machine.send_data(1, b"answer", 0.0) == 6
    machine.close_stream(1, 0.0)
    assert decode(machine.data_to_send()) == [
        (DATA, ACK, 1, 6, b"answer"),
        (WINDOW_UPDATE, FIN, 1, 0, None),
    ]
    assert machine.stream_count == 0


def test_larger_initial_window_is_announced_on_syn_and_ack() -> None:
    cfg = quiet(initial_window=1 * MiB)
    link = Link(cfg, cfg, consume=False, accept=True)
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    assert link.client.data_to_send() == frame(WINDOW_UPDATE, SYN, 1, 1 * MiB - 256 * KiB)
    s.receive_data(frame(WINDOW_UPDATE, SYN, 1, 1 * MiB - 256 * KiB), 0.0)
    assert s.send_capacity(sid) == 1 * MiB
    s.consume(sid, 0, 0.0)  # accept: the ACK grants our larger window
    c.receive_data(s.data_to_send(), 0.0)
    assert c.send_capacity(sid) == 1 * MiB
    assert c.send_data(sid, b"x" * (2 * MiB), 0.0) == 1 * MiB
    link.pump()
    assert len(link.received[s][sid]) == 1 * MiB


def test_large_write_is_split_into_max_frame_data_frames() -> None:
    link = Link(quiet(max_frame_data=10 * KiB))
    sid = link.client.open_stream(0.0)
    payload = bytes(range(256)) * 100  # 25600 bytes
    assert link.client.send_data(sid, memoryview(payload), 0.0) == len(payload)
    link.pump()
    sizes = [f[3] for f in link.sent(link.client, DATA, sid)]
    assert sizes == [10 * KiB, 10 * KiB, len(payload) - 20 * KiB]
    assert link.sent(link.client, DATA, sid)[0][1] == SYN
    assert bytes(link.received[link.server][sid]) == payload


# --- flow control -----------------------------------------------------------------------------


def test_send_window_exhaustion_and_recovery() -> None:
    link = Link(consume=False)
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    blob = b"w" * (300 * KiB)
    assert c.send_data(sid, blob, 0.0) == 256 * KiB
    assert c.send_data(sid, blob, 0.0) == 0
    assert c.send_capacity(sid) == 0
    link.pump()
    assert len(link.received[s][sid]) == 256 * KiB
    assert link.sent(s, WINDOW_UPDATE) == []  # nothing consumed: no window granted
    s.consume(sid, 100 * KiB, link.now)  # acknowledges, grants what is free: 100 KiB
    link.pump()
    assert link.of(c, SendWindowAvailable) == [SendWindowAvailable(sid)]
    assert c.send_capacity(sid) == 100 * KiB
    s.consume(sid, 27 * KiB, link.now)  # 27 KiB free: under half the window, batched
    link.pump()
    assert len(link.sent(s, WINDOW_UPDATE)) == 1
    s.consume(sid, 101 * KiB, link.now)  # 128 KiB free: half the window
    link.pump()
    assert link.sent(s, WINDOW_UPDATE)[-1][3] == 128 * KiB
    assert c.send_capacity(sid) == 228 * KiB
    assert link.of(c, SendWindowAvailable) == [SendWindowAvailable(sid)]  # never went to 0
    with pytest.raises(LocalProtocolError):
        s.consume(sid, 256 * KiB, link.now)  # more than was received and not consumed


def test_window_updates_are_batched() -> None:
    link = Link(consume=False)
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    total = 4 * MiB
    sent = consumed = 0
    for _ in range(10_000):
        if sent < total:
            sent += c.send_data(sid, memoryview(BLOB)[: total - sent], link.now)
        link.step()
        while len(link.received[s][sid]) - consumed >= KiB:  # the reader takes 1 KiB at a time
            s.consume(sid, KiB, link.now)
            consumed += KiB
        if consumed == total:
            break
    assert consumed == total
    updates = link.sent(s, WINDOW_UPDATE, sid)
    assert updates[0][1] == ACK  # the first read acknowledged the stream (1 KiB granted)
    assert all(u[3] >= 128 * KiB for u in updates[1:])
    assert len(updates) <= total // (128 * KiB) + 1  # not one per read: 4096 reads
    assert s.receive_window(sid) == 256 * KiB  # auto-tuning is off


def transfer(link: Link, total: int, app_time: float = 0.0) -> tuple[int, int]:
    """Client writes ``total`` bytes on a new stream; the server app reads everything it gets,
    taking ``app_time`` seconds per read.  Returns (stream id, largest client send capacity)."""
    c, s = link.client, link.server
    sid = c.open_stream(link.now)
    sent = consumed = 0
    largest = 0
    link.consume[s] = False
    for _ in range(100_000):
        largest = max(largest, c.send_capacity(sid))
        if sent < total:
            sent += c.send_data(sid, memoryview(BLOB)[: min(len(BLOB), total - sent)], link.now)
        link.step()
        pending = len(link.received[s][sid]) - consumed
        if pending:
            link.now += app_time
            s.consume(sid, pending, link.now)
            consumed += pending
        if consumed == total:
            return sid, largest
    raise AssertionError("transfer did not finish")


BLOB = b"\xa5" * (8 * MiB)


def test_rtt_is_measured_by_the_first_ping() -> None:
    cfg = YamuxConfig(keepalive_interval=0, auto_tune=True)
    link = Link(cfg, cfg, delay=0.05)
    c, s = link.client, link.server
    assert c.next_deadline() == 0.0  # before any timestamp: run the timer now
    c.handle_timer(link.now)
    assert c.next_deadline() is None  # keep-alive is off: only the first ping
    link.pump()  # the server starts on its first input and pings back
    assert link.sent(c, PING) == [(PING, SYN, 0, 0, None), (PING, ACK, 0, 0, None)]
    assert sorted(link.sent(s, PING)) == [(PING, SYN, 0, 0, None), (PING, ACK, 0, 0, None)]
    assert c.rtt == pytest.approx(0.1)
    assert s.rtt == pytest.approx(0.1)
    assert link.of(c, PingAcknowledged) == []  # internal pings make no events


def test_no_automatic_ping_without_keepalive_and_auto_tune() -> None:
    machine = YamuxMachine(is_initiator=True, config=quiet())
    assert machine.next_deadline() is None
    machine.open_stream(1.0)
    assert decode(machine.data_to_send()) == [(WINDOW_UPDATE, SYN, 1, 0, None)]


def test_auto_tuning_grows_the_window_when_the_reader_is_fast() -> None:
    cfg = YamuxConfig(keepalive_interval=0, max_window=4 * MiB)
    link = Link(cfg, cfg, delay=0.05)
    link.client.handle_timer(0.0)
    link.server.handle_timer(0.0)
    link.pump()
    assert link.server.rtt == pytest.approx(0.1)
    sid, largest = transfer(link, 24 * MiB)
    assert link.server.receive_window(sid) == 4 * MiB  # grown to max_window, not beyond
    assert largest > 2 * MiB
    deltas = [f[3] for f in link.sent(link.server, WINDOW_UPDATE, sid)]
    # Every grant was at least half the window of its time; the window doubled step by step.
    assert max(deltas) <= 4 * MiB


def test_auto_tuning_keeps_the_window_when_the_reader_is_slow() -> None:
    cfg = YamuxConfig(keepalive_interval=0, max_window=4 * MiB)
    link = Link(cfg, cfg, delay=0.05)
    link.client.handle_timer(0.0)
    link.server.handle_timer(0.0)
    link.pump()
    sid, largest = transfer(link, 3 * MiB, app_time=1.0)  # 1 s per read, RTT 0.1 s
    assert link.server.receive_window(sid) == 256 * KiB
    assert largest <= 256 * KiB


def test_auto_tuning_off_keeps_the_window() -> None:
    cfg = YamuxConfig(keepalive_interval=0, max_window=4 * MiB, auto_tune=False)
    link = Link(cfg, cfg, delay=0.05)
    link.client.ping(1, 0.0)
    link.pump()
    assert link.client.rtt == pytest.approx(0.1)
    sid, largest = transfer(link, 3 * MiB)
    assert link.server.receive_window(sid) == 256 * KiB and largest <= 256 * KiB


def test_window_update_overflow_is_a_protocol_error() -> None:
    machine = fresh(is_initiator=False)
    machine.receive_data(frame(WINDOW_UPDATE, SYN, 1, 0), 0.0)
    room = 2**32 - 1 - SPEC_INITIAL_WINDOW
    assert machine.receive_data(frame(WINDOW_UPDATE, 0, 1, room), 0.0) == []
    assert machine.send_capacity(1) == 2**32 - 1
    assert_protocol_error(machine, frame(WINDOW_UPDATE, 0, 1, 1), "overflows")


# --- ping, keep-alive, go away ----------------------------------------------------------------


def test_ping_round_trip_time() -> None:
    link = Link(delay=0.05)
    link.client.ping(42, link.now)
    link.pump()
    assert link.of(link.client, PingAcknowledged) == [PingAcknowledged(42, pytest.approx(0.1))]
    assert link.wire[link.server] == [(PING, ACK, 0, 42, None)]
    assert link.client.rtt == pytest.approx(0.1)
    assert link.of(link.server, PingAcknowledged) == []


def test_ping_misuse() -> None:
    machine = fresh(is_initiator=True)
    machine.ping(7, 0.0)
    with pytest.raises(LocalProtocolError, match="outstanding"):
        machine.ping(7, 0.0)
    for bad in (-1, 2**32, "1"):
        with pytest.raises(LocalProtocolError):
            machine.ping(bad, 0.0)  # type: ignore[arg-type]
    for opaque in range(100, 163):
        machine.ping(opaque, 0.0)
    with pytest.raises(LocalProtocolError, match="too many"):
        machine.ping(1000, 0.0)
    # An answer to a ping we did not send is ignored.
    assert machine.receive_data(frame(PING, ACK, 0, 99999), 0.0) == []


def test_keepalive_pings_and_timeout() -> None:
    cfg = YamuxConfig(keepalive_interval=1.0, auto_tune=False)
    machine = YamuxMachine(is_initiator=True, config=cfg)
    assert machine.next_deadline() == 0.0
    assert machine.handle_timer(10.0) == []
    (ping,) = decode(machine.data_to_send())
    assert ping[:3] == (PING, SYN, 0)
    assert machine.next_deadline() == 12.0  # the pong is due within 2 intervals
    machine.receive_data(frame(PING, ACK, 0, ping[3]), 10.2)
    assert machine.rtt == pytest.approx(0.2)
    assert machine.next_deadline() == 11.0  # the next ping, one interval after the last
    machine.handle_timer(10.9)
    assert machine.data_to_send() == b""
    machine.handle_timer(11.0)
    (ping2,) = decode(machine.data_to_send())
    assert ping2[:3] == (PING, SYN, 0) and ping2[3] != ping[3]
    assert machine.next_deadline() == 13.0
    assert machine.handle_timer(12.99) == []
    with pytest.raises(KeepAliveTimeout):
        machine.handle_timer(13.0)
    assert machine.is_closed and machine.next_deadline() is None
    assert machine.handle_timer(20.0) == []


def test_keepalive_timeout_setting() -> None:
    cfg = YamuxConfig(keepalive_interval=10.0, keepalive_timeout=0.5, auto_tune=False)
    machine = YamuxMachine(is_initiator=False, config=cfg)
    machine.handle_timer(0.0)
    assert machine.next_deadline() == 0.5
    with pytest.raises(KeepAliveTimeout) as info:
        machine.handle_timer(0.5)
    assert isinstance(info.value, YamuxError) and info.value.code is None


def test_go_away_both_ways() -> None:
    link = Link()
    c, s = link.client, link.server
    sid = c.open_stream(0.0)
    c.send_data(sid, b"before", 0.0)
    link.pump()
    c.go_away()
    c.go_away(2)  # only the first is sent
    link.pump()
    assert link.of(s, GoAwayReceived) == [GoAwayReceived(0)]
    assert link.sent(c, GO_AWAY) == [(GO_AWAY, 0, 0, 0, None)]
    with pytest.raises(LocalProtocolError, match="Go Away"):
        s.open_stream(0.0)
    with pytest.raises(LocalProtocolError, match="Go Away"):
        c.open_stream(0.0)
    assert not c.is_closed and not s.is_closed
    # Existing streams go on both ways.
    s.send_data(sid, b"after", 0.0)
    c.send_data(sid, b"after", 0.0)
    link.pump()
    assert bytes(link.received[c][sid]) == b"after"
    assert bytes(link.received[s][sid]) == b"beforeafter"
    s.go_away(2)
    link.pump()
    assert link.of(c, GoAwayReceived) == [GoAwayReceived(2)]
    assert c.is_closed and s.is_closed


def test_syn_after_our_go_away_is_refused() -> None:
    machine = fresh(is_initiator=True)
    machine.go_away()
    assert decode(machine.data_to_send()) == [(GO_AWAY, 0, 0, 0, None)]
    assert machine.receive_data(data_frame(SYN, 2, b"late"), 0.0) == []
    assert decode(machine.data_to_send()) == [(WINDOW_UPDATE, RST, 2, 0, None)]
    assert machine.stream_count == 0


def test_go_away_code_must_fit() -> None:
    with pytest.raises(LocalProtocolError):
        fresh().go_away(2**32)


# --- limits -----------------------------------------------------------------------------------


def test_inbound_stream_limit_resets_extra_syns() -> None:
    link = Link(server=quiet(max_inbound_streams=2))
    c, s = link.client, link.server
    ids = [c.open_stream(0.0) for _ in range(3)]
    for sid in ids:
        c.send_data(sid, b"0-rtt", 0.0)
    link.pump()
    assert [e.stream_id for e in link.of(s, StreamOpened)] == ids[:2]
    assert link.of(c, StreamReset) == [StreamReset(ids[2])]
    assert link.sent(s, WINDOW_UPDATE, ids[2]) == [(WINDOW_UPDATE, RST, ids[2], 0, None)]
    assert s.stream_count == 2 and c.stream_count == 2
    assert not s.is_closed  # the refused stream's 0-RTT data was ignored
    # Once a stream is finished there is room again.
    c.reset_stream(ids[0], 0.0)
    link.pump()
    sid = c.open_stream(0.0)
    c.send_data(sid, b"x", 0.0)
    link.pump()
    assert link.of(s, StreamOpened)[-1] == StreamOpened(sid)


def test_outbound_stream_limit_raises() -> None:
    machine = fresh(is_initiator=True, config=quiet(max_outbound_streams=2))
    first = machine.open_stream(0.0)
    machine.open_stream(0.0)
    with pytest.raises(LocalProtocolError, match="max_outbound_streams"):
        machine.open_stream(0.0)
    machine.reset_stream(first, 0.0)
    assert machine.open_stream(0.0) == 5


def test_ack_backlog_resets_extra_syns() -> None:
    link = Link(server=quiet(max_ack_backlog=3), consume=False)
    c, s = link.client, link.server
    ids = [c.open_stream(0.0) for _ in range(5)]
    for sid in ids:
        c.send_data(sid, b"hi", 0.0)
    link.pump()
    assert [e.stream_id for e in link.of(s, StreamOpened)] == ids[:3]
    assert [e.stream_id for e in link.of(c, StreamReset)] == ids[3:]
    assert s.ack_backlog == 3
    s.consume(ids[0], 0, 0.0)  # the application accepts one stream: room for one more
    link.pump()
    assert s.ack_backlog == 2
    sid = c.open_stream(0.0)
    link.pump()
    assert link.of(s, StreamOpened)[-1] == StreamOpened(sid)
    assert s.ack_backlog == 3


def test_opener_queues_streams_past_the_ack_backlog() -> None:
    link = Link(client=quiet(max_ack_backlog=2), consume=False)
    c, s = link.client, link.server
    ids = [c.open_stream(0.0) for _ in range(5)]
    assert c.outbound_ack_backlog == 2 and c.queued_streams == 3
    for sid in ids[2:]:
        assert c.send_capacity(sid) == 0
        assert c.send_data(sid, b"later", 0.0) == 0
    c.close_stream(ids[3], 0.0)  # closed while queued: its FIN goes out with its SYN
    link.pump()
    assert {f[2] for f in link.wire[c]} == set(ids[:2])
    s.consume(ids[0], 0, 0.0)  # ACK for the first stream: room for the third
    link.pump()
    assert link.of(c, SendWindowAvailable) == [SendWindowAvailable(ids[2])]
    assert c.send_capacity(ids[2]) == 256 * KiB
    assert c.send_data(ids[2], b"now", 0.0) == 3
    link.pump()
    # Released during the pump, its SYN went out as soon as the client's bytes were drained.
    assert link.sent(c, WINDOW_UPDATE, ids[2]) == [(WINDOW_UPDATE, SYN, ids[2], 0, None)]
    assert link.sent(c, DATA, ids[2]) == [(DATA, 0, ids[2], 3, b"now")]
    assert c.queued_streams == 2
    c.reset_stream(ids[1], 0.0)  # an unacknowledged stream ends: room for the fourth,
    assert c.next_deadline() is None  # which was closed: nothing to announce
    link.pump()
    assert link.sent(c, WINDOW_UPDATE, ids[3]) == [(WINDOW_UPDATE, SYN | FIN, ids[3], 0, None)]
    assert link.of(s, StreamEnded) == [StreamEnded(ids[3])]
    c.reset_stream(ids[2], 0.0)  # room for the fifth: announced by the next timer or input
    assert c.next_deadline() == 0.0
    assert c.handle_timer(0.0) == [SendWindowAvailable(ids[4])]
    assert c.next_deadline() is None
    assert c.queued_streams == 0 and c.send_capacity(ids[4]) == 256 * KiB


def test_queued_streams_are_reset_by_go_away() -> None:
    machine = fresh(is_initiator=True, config=quiet(max_ack_backlog=1))
    machine.open_stream(0.0)
    queued = machine.open_stream(0.0)
    events = machine.receive_data(frame(GO_AWAY, 0, 0, 0), 0.0)
    assert events == [GoAwayReceived(0), StreamReset(queued)]
    assert machine.stream_count == 1


def test_frame_for_a_queued_stream_is_a_protocol_error() -> None:
    machine = fresh(is_initiator=True, config=quiet(max_ack_backlog=1))
    machine.open_stream(0.0)
    queued = machine.open_stream(0.0)
    assert_protocol_error(machine, frame(WINDOW_UPDATE, ACK, queued, 0), "never opened")


# --- protocol errors, byte for byte -----------------------------------------------------------

PROTOCOL_ERRORS = [
    # (name, is_initiator, frames before, offending bytes, message)
    ("bad version", False, b"", HEADER.pack(1, DATA, SYN, 1, 0), "version"),
    ("unknown type", False, b"", HEADER.pack(0, 4, 0, 0, 0), "type"),
    (
        "data beyond the window (one frame)",
        False,
        b"",
        data_frame(SYN, 1, b"x" * (SPEC_INITIAL_WINDOW + 1)),
        "receive window",
    ),
    (
        "data beyond the window (two frames)",
        False,
        data_frame(SYN, 1, b"x" * SPEC_INITIAL_WINDOW),
        data_frame(0, 1, b"y"),
        "receive window",
    ),
    (
        "data frame longer than the largest window",
        False,
        b"",
        HEADER.pack(0, DATA, SYN, 1, 16 * MiB + 1),
        "exceeds the limit",
    ),
    ("reused stream id", False, data_frame(SYN, 1, b"a"), data_frame(SYN, 1, b"b"), "reused"),
    ("lower stream id", False, data_frame(SYN, 3, b"a"), data_frame(SYN, 1, b"b"), "reused"),
    ("SYN of our parity", False, b"", frame(WINDOW_UPDATE, SYN, 2, 0), "parity"),
    ("SYN of our parity (client)", True, b"", frame(WINDOW_UPDATE, SYN, 1, 0), "parity"),
    ("data without SYN", False, b"", data_frame(0, 1, b"a"), "never opened"),
    ("window update without SYN", False, b"", frame(WINDOW_UPDATE, 0, 5, 1), "never opened"),
    ("ACK for a stream we never opened", True, b"", frame(WINDOW_UPDATE, ACK, 1, 0), "never"),
    (
        "ACK for a stream the remote opened",
        False,
        frame(WINDOW_UPDATE, SYN, 1, 0),
        frame(WINDOW_UPDATE, ACK, 1, 0),
        "ACK",
    ),
    (
        "data after FIN",
        False,
        data_frame(SYN | FIN, 1, b"a"),
        data_frame(0, 1, b"b"),
        "after the remote closed",
    ),
    (
        "data after RST",
        False,
        data_frame(SYN, 1, b"a") + frame(WINDOW_UPDATE, RST, 1, 0),
        data_frame(0, 1, b"b"),
        "after the remote closed",
    ),
    ("data on stream 0", False, b"", data_frame(0, 0, b"a"), "stream 0"),
    ("SYN on stream 0", False, b"", frame(WINDOW_UPDATE, SYN, 0, 0), "stream 0"),
    ("ping on a stream", False, b"", frame(PING, SYN, 1, 0), "ping frame on stream 1"),
    ("go away on a stream", False, b"", frame(GO_AWAY, 0, 3, 0), "go away frame on stream 3"),
]


@pytest.mark.parametrize(
    ("is_initiator", "before", "bad", "match"),
    [case[1:] for case in PROTOCOL_ERRORS],
    ids=[case[0] for case in PROTOCOL_ERRORS],
)
def test_protocol_errors(is_initiator: bool, before: bytes, bad: bytes, match: str) -> None:
    machine = fresh(is_initiator=is_initiator)
    machine.receive_data(before, 0.0)
    machine.data_to_send()
    assert not machine.is_closed
    assert_protocol_error(machine, bad, match)


def test_data_after_both_sides_closed_is_a_protocol_error() -> None:
    machine = fresh(is_initiator=False)
    machine.receive_data(data_frame(SYN | FIN, 1, b"a"), 0.0)
    machine.close_stream(1, 0.0)
    assert machine.stream_count == 0
    # A late window update (the remote read our data) is fine; data is not.
    assert machine.receive_data(frame(WINDOW_UPDATE, 0, 1, 100), 0.0) == []
    assert_protocol_error(machine, data_frame(0, 1, b"b"), "after the remote closed")


def test_after_a_protocol_error_writes_are_refused() -> None:
    machine = fresh(is_initiator=True)
    sid = machine.open_stream(0.0)
    with pytest.raises(YamuxError):
        machine.receive_data(HEADER.pack(7, 0, 0, 0, 0), 0.0)
    with pytest.raises(StreamClosedError):
        machine.send_data(sid, b"x", 0.0)
    with pytest.raises(LocalProtocolError):
        machine.open_stream(0.0)
    with pytest.raises(LocalProtocolError):
        machine.ping(1, 0.0)
    machine.close_stream(sid, 0.0)
    machine.reset_stream(sid, 0.0)
    machine.go_away()
    # Only the Go Away for the error went out (the pending SYN was dropped with the reset).
    assert decode(machine.data_to_send()) == [(GO_AWAY, 0, 0, 1, None)]


def test_api_misuse() -> None:
    machine = fresh(is_initiator=True)
    for call in (
        lambda: machine.send_data(99, b"x", 0.0),
        lambda: machine.send_capacity(3),
        lambda: machine.close_stream(2, 0.0),
        lambda: machine.reset_stream(0, 0.0),
        lambda: machine.consume(1, 0, 0.0),
        lambda: machine.receive_window(1),
    ):
        with pytest.raises(LocalProtocolError, match="no such"):
            call()
    sid = machine.open_stream(0.0)
    with pytest.raises(LocalProtocolError):
        machine.consume(sid, -1, 0.0)
    with pytest.raises(LocalProtocolError):
        machine.consume(sid, 1, 0.0)
    assert machine.send_data(sid, b"", 0.0) == 0


def test_stream_ids_run_out() -> None:
    machine = fresh(is_initiator=True)
    machine._next_id = 2**32 - 1  # white box: skip two billion streams
    assert machine.open_stream(0.0) == 2**32 - 1
    with pytest.raises(LocalProtocolError, match="exhausted"):
        machine.open_stream(0.0)


# --- no leaks, many streams -------------------------------------------------------------------


def test_stream_tables_empty_after_streams_finish() -> None:
    link = Link(accept=True)
    c, s = link.client, link.server
    for round_ in range(5):
        ids = [c.open_stream(link.now) for _ in range(40)]
        for sid in ids:
            c.send_data(sid, b"request %d" % sid, link.now)
        link.pump()
        for n, sid in enumerate(ids):
            if n % 4 == 0:
                s.reset_stream(sid, link.now)  # some are reset by the server
            elif n % 4 == 1:
                c.reset_stream(sid, link.now)  # some by the client
            else:
                s.send_data(sid, b"response", link.now)
                s.close_stream(sid, link.now)
                c.close_stream(sid, link.now)
        link.pump()
        assert c.stream_count == 0 and s.stream_count == 0, round_
        assert c.ack_backlog == s.ack_backlog == 0
        assert c.outbound_ack_backlog == s.outbound_ack_backlog == 0
    # Remembered resets are bounded.
    assert len(c._recent_resets) <= 1024 and len(s._recent_resets) <= 1024
    assert not c.is_closed and not s.is_closed


def test_remembered_resets_are_bounded() -> None:
    machine = fresh(is_initiator=False, config=quiet(max_inbound_streams=1))
    for sid in range(1, 2 * 3000, 2):
        machine.receive_data(data_frame(SYN, sid, b"x"), 0.0)  # all but the first refused
        machine.data_to_send()
    assert len(machine._recent_resets) == 1024
    assert machine.stream_count == 1


def test_thousand_concurrent_streams() -> None:
    link = Link(accept=True)
    c, s = link.client, link.server
    ids = [c.open_stream(link.now) for _ in range(1000)]
    assert c.queued_streams == 1000 - 256  # the opener keeps the spec's ACK backlog
    with pytest.raises(LocalProtocolError):
        c.open_stream(link.now)  # max_outbound_streams
    requests = {sid: b"request-%d" % sid for sid in ids}
    written: set[int] = set()

    def write_ready() -> None:
        for sid in ids:
            if sid not in written and c.send_capacity(sid):
                assert c.send_data(sid, requests[sid], link.now) == len(requests[sid])
                c.close_stream(sid, link.now)
                written.add(sid)

    answered: set[int] = set()
    for _ in range(1000):
        write_ready()
        if not link.step():
            break
        for event in link.of(s, StreamEnded):
            sid = event.stream_id
            if sid not in answered:
                assert bytes(link.received[s][sid]) == requests[sid]
                s.send_data(sid, requests[sid].upper(), link.now)
                s.close_stream(sid, link.now)
                answered.add(sid)
    assert written == answered == set(ids)
    assert all(bytes(link.received[c][sid]) == requests[sid].upper() for sid in ids)
    assert len(link.of(s, StreamOpened)) == 1000
    assert link.of(c, StreamReset) == [] and link.of(s, StreamReset) == []
    assert c.stream_count == s.stream_count == 0


# --- untrusted input ------------------------------------------------------------------------

valid_session = st.lists(
    st.one_of(
        st.builds(
            lambda sid, n: data_frame(SYN, 2 * sid + 1, b"d" * n),
            st.integers(0, 20),
            st.integers(0, 300),
        ),
        st.builds(
            lambda sid, n: data_frame(0, 2 * sid + 1, b"e" * n),
            st.integers(0, 20),
            st.integers(0, 300),
        ),
        st.builds(
            lambda sid, f, n: frame(WINDOW_UPDATE, f, 2 * sid + 1, n),
            st.integers(0, 20),
            st.sampled_from([0, SYN, ACK, FIN, RST, FIN | RST]),
            st.integers(0, 2**32 - 1),
        ),
        st.builds(
            lambda f, n: frame(PING, f, 0, n),
            st.sampled_from([0, SYN, ACK]),
            st.integers(0, 2**32 - 1),
        ),
        st.builds(lambda n: frame(GO_AWAY, 0, 0, n), st.integers(0, 3)),
    ),
    max_size=12,
).map(b"".join)


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_session))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=30))


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=200), valid_session, hostile()), st.integers(1, 64))
def test_untrusted_bytes_raise_only_typed_errors(data: bytes, chunk: int) -> None:
    machine = YamuxMachine(is_initiator=False, config=quiet(max_inbound_streams=5))
    now = 0.0
    try:
        for pos in range(0, len(data), chunk):
            piece = data[pos : pos + chunk]
            events = machine.receive_data(piece, now)
            now += 0.01
            out = machine.data_to_send()
            # Replies are bounded by the input: at most one 12-byte frame per frame received.
            assert len(out) <= 12 * (len(piece) // 12 + 2)
            assert machine.receive_buffered < 12
            assert machine.stream_count <= 5 and machine.ack_backlog <= 5
            for event in events:
                if isinstance(event, StreamOpened):
                    machine.consume(event.stream_id, 0, now)
                elif isinstance(event, DataReceived):
                    machine.consume(event.stream_id, len(event.data), now)
    except YamuxError as exc:
        assert exc.code == 1
        assert machine.is_closed
        assert decode(machine.data_to_send())[-1] == (GO_AWAY, 0, 0, 1, None)


@settings(max_examples=100)
@given(
    st.lists(st.binary(min_size=0, max_size=2000), min_size=1, max_size=6),
    st.lists(st.integers(1, 5000), min_size=1, max_size=20),
)
def test_any_chunking_delivers_the_same_bytes(messages: list[bytes], cuts: list[int]) -> None:
    client = YamuxMachine(is_initiator=True, config=quiet(max_frame_data=700))
    ids = []
    for message in messages:
        sid = client.open_stream(0.0)
        ids.append(sid)
        assert client.send_data(sid, message, 0.0) == len(message)
        client.close_stream(sid, 0.0)
    wire = client.data_to_send()
    server = YamuxMachine(is_initiator=False, config=quiet())
    received: dict[int, bytearray] = defaultdict(bytearray)
    ended = []
    pos = 0
    for n in range(len(wire) + 1):
        if pos >= len(wire):
            break
        size = cuts[n % len(cuts)]
        for event in server.receive_data(memoryview(wire)[pos : pos + size], 0.0):
            if isinstance(event, DataReceived):
                received[event.stream_id] += event.data
            elif isinstance(event, StreamEnded):
                ended.append(event.stream_id)
        pos += size
        assert server.receive_buffered < 12
    assert ended == ids
    assert [bytes(received[sid]) for sid in ids] == messages
