"""The lean QUIC data path (``net/_quic_fast.py``): same bytes on the wire as aioquic, same
state after receiving, exact delivery under loss, and real hosts over UDP.

The sans-IO cases drive two real ``_Machine`` objects (aioquic's ``QuicConnection`` with our
overrides, full TLS handshake) through an in-memory link with a fake clock, so that loss and
timing are reproducible.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import os
import random
import socket
import sys
import time
from collections import deque
from typing import Any

import pytest

pytest.importorskip("aioquic")

from aioquic import tls
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from hypothesis import example, given, settings
from hypothesis import strategies as st

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.net import _quic_fast, _udp
from aiolibp2p.net._quic_fast import FastQuicConnection, SendBuffer
from aiolibp2p.net.quic_connection import (
    QuicConn,
    QuicSettings,
    _Machine,
    new_certificate_key,
    random_serial,
)
from aiolibp2p.net.stream import Stream
from aiolibp2p.proto.tls.certificate import ALPN, build_certificate

CLIENT = ("127.0.0.1", 40001)
SERVER = ("127.0.0.1", 40002)
SINK = "/test/sink/1"


SUITES = {
    "aes128": tls.CipherSuite.AES_128_GCM_SHA256,
    "aes256": tls.CipherSuite.AES_256_GCM_SHA384,
    "chacha20": tls.CipherSuite.CHACHA20_POLY1305_SHA256,
}


def _config(is_client: bool, suite: str | None = None) -> QuicConfiguration:
    key = new_certificate_key()
    cert = build_certificate(generate_private_key(), key, now=time.time(), serial=random_serial())
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        connection_id_length=8,
        idle_timeout=30.0,
        max_data=15 << 20,
        max_stream_data=10 << 20,
        max_datagram_size=1350,
        verify_mode=0,
        certificate=cert,
        private_key=key,
        congestion_control_algorithm="cubic",
    )
    config.server_name = None
    if suite is not None:
        config.cipher_suites = [SUITES[suite]]
    return config


class Link:
    """Two machines and the datagrams between them: optional loss and reordering, fake clock."""

    def __init__(
        self,
        *,
        loss: float = 0.0,
        reorder: bool = False,
        seed: int = 1,
        suite: str | None = None,
    ) -> None:
        self.now = 1000.0
        self.rng = random.Random(seed)
        self.loss = loss
        self.reorder = reorder
        s = QuicSettings()
        self.client = _Machine(settings=s, configuration=_config(True, suite))
        self.client.connect(SERVER, now=self.now)
        self.server = _Machine(
            settings=s,
            configuration=_config(False, suite),
            original_destination_connection_id=self.client._peer_cid.cid,
        )
        self.received: dict[int, bytearray] = {}
        self.finished: set[int] = set()
        for _ in range(200):
            self.step(lossless=True)
            if self.client._handshake_confirmed and self.server._handshake_confirmed:
                break
        assert self.client._handshake_confirmed and self.server._handshake_confirmed
        self.first_server_cid = self.server.host_cid
        if suite is not None:
            schedule = self.client.tls.key_schedule
            assert schedule is not None and schedule.cipher_suite == SUITES[suite]

    def _send(self, src: _Machine, dst: _Machine, addr: Any, lossless: bool) -> int:
        datagrams = [d for d, _ in src.datagrams_to_send(self.now)]
        if self.reorder and len(datagrams) > 2:
            i = self.rng.randrange(len(datagrams) - 1)
            datagrams[i], datagrams[i + 1] = datagrams[i + 1], datagrams[i]
        for data in datagrams:
            if lossless or self.rng.random() >= self.loss:
                dst.receive_datagram(data, addr, self.now)
        return len(datagrams)

    def _events(self, quic: _Machine) -> None:
        while (event := quic.next_event()) is not None:
            if isinstance(event, qe.StreamDataReceived):
                sid = event.stream_id
                self.received.setdefault(sid, bytearray()).extend(event.data)
                quic.consumed[sid] = quic.consumed.get(sid, 0) + len(event.data)
                quic.consumed_total += len(event.data)
                if event.end_stream:
                    self.finished.add(sid)

    def step(self, *, lossless: bool = False) -> int:
        self.now += 0.0005
        moved = 0
        for quic in (self.client, self.server):
            timer = quic.get_timer()
            if timer is not None and self.now >= timer:
                quic.handle_timer(self.now)
        moved += self._send(self.client, self.server, CLIENT, lossless)
        self._events(self.server)
        moved += self._send(self.server, self.client, SERVER, lossless)
        self._events(self.client)
        return moved


def _upload(link: Link, payloads: dict[int, bytes], *, chunk_sizes: list[int]) -> None:
    """Write each payload on its stream in chunks (bounded send buffer), then FIN; run the link
    until everything arrived."""
    client = link.client
    offsets = dict.fromkeys(payloads, 0)
    for sid in payloads:
        client.consumed[sid] = 0
    for _ in range(200_000):
        for sid, data in payloads.items():
            qstream = client._streams.get(sid)
            queued = (
                0 if qstream is None else qstream.sender._buffer_stop - qstream.sender._buffer_start
            )
            pos = offsets[sid]
            if pos < len(data) and queued < (2 << 20):
                n = chunk_sizes[pos % len(chunk_sizes)]
                piece = data[pos : pos + n]
                # Every kind of buffer a stream write may hand over.
                kind = (pos // n) % 3
                buf: Any = (
                    piece if kind == 0 else bytearray(piece) if kind == 1 else memoryview(piece)
                )
                offsets[sid] = pos + len(piece)
                client.send_stream_data(sid, buf, end_stream=offsets[sid] == len(data))
        link.step()
        if link.finished >= set(payloads):
            break
    for sid, data in payloads.items():
        assert sid in link.finished, f"stream {sid} did not finish"
        assert bytes(link.received[sid]) == data


@pytest.mark.parametrize("suite", sorted(SUITES))
@pytest.mark.parametrize("fast", ["both", "client", "server", "neither"])
@pytest.mark.parametrize("loss", [0.0, 0.03])
def test_streams_arrive_exactly(fast: str, loss: float, suite: str) -> None:
    link = Link(loss=loss, reorder=loss > 0, seed=7, suite=suite)
    link.client.fast_path = fast in ("both", "client")
    link.server.fast_path = fast in ("both", "server")
    rng = random.Random(3)
    payloads = {
        link.client.get_next_available_stream_id(): rng.randbytes(3 << 20),
    }
    for sid in payloads:
        link.client.send_stream_data(sid, b"")
    second = link.client.get_next_available_stream_id()
    payloads[second] = rng.randbytes(700_000)
    link.client.send_stream_data(second, b"")
    third = link.client.get_next_available_stream_id()
    payloads[third] = b""  # FIN only
    link.client.send_stream_data(third, b"", end_stream=True)
    _upload(link, payloads, chunk_sizes=[65536, 1000, 20_000, 1])
    if link.client.fast_path:
        assert link.client.lean_sent > 1000
    else:
        assert link.client.lean_sent == 0
    if link.server.fast_path:
        assert link.server.lean_received > 1000
    else:
        assert link.server.lean_received == 0


# ----------------------------------------------------------------- same bytes, same state


def _sender_state(quic: _Machine) -> dict[str, Any]:
    """Everything a send round changes on the sending machine (restored by _restore)."""
    loss = quic._loss
    pacer = loss._pacer
    return {
        "quic": {
            k: getattr(quic, k)
            for k in (
                "_packet_number",
                "_remote_max_data_used",
                "_pacing_at",
                "_close_at",
                "_ack_eliciting_sent_since_receipt",
            )
        },
        "queue": list(quic._streams_queue),
        "streams": {
            sid: (
                copy.deepcopy(s.sender._pending),
                s.sender.highest_offset,
                s.sender._pending_eof,
                s.sender.buffer_is_empty,
            )
            for sid, s in quic._streams.items()
        },
        "pacer": dict(vars(pacer)),
        "cc": dict(vars(loss._cc)),
        "loss": {k: v for k, v in vars(loss).items() if k.startswith("_time")},
        "spaces": [(dict(sp.sent_packets), sp.ack_eliciting_in_flight) for sp in loss.spaces],
        "path": quic._network_paths[0].bytes_sent,
        "ack": (
            quic._spaces[tls.Epoch.ONE_RTT].ack_at,
            copy.deepcopy(quic._spaces[tls.Epoch.ONE_RTT].ack_queue),
        ),
    }


def _restore(quic: _Machine, state: dict[str, Any]) -> None:
    for k, v in state["quic"].items():
        setattr(quic, k, v)
    quic._streams_queue = list(state["queue"])
    for sid, (pending, highest, eof, empty) in state["streams"].items():
        sender = quic._streams[sid].sender
        sender._pending = copy.deepcopy(pending)
        sender.highest_offset = highest
        sender._pending_eof = eof
        sender.buffer_is_empty = empty
    vars(quic._loss._pacer).update(state["pacer"])
    vars(quic._loss._cc).update(state["cc"])
    vars(quic._loss).update(state["loss"])
    for sp, (sent, eliciting) in zip(quic._loss.spaces, state["spaces"], strict=True):
        sp.sent_packets = dict(sent)
        sp.ack_eliciting_in_flight = eliciting
    quic._network_paths[0].bytes_sent = state["path"]
    space = quic._spaces[tls.Epoch.ONE_RTT]
    space.ack_at, space.ack_queue = state["ack"][0], copy.deepcopy(state["ack"][1])


def _handler(handler: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A delivery handler and its arguments; the lean path's ``_delivered(sender, ...)`` is
    ``sender.on_data_delivery(...)`` (test_delivered_matches_on_data_delivery)."""
    if isinstance(handler, functools.partial) and handler.func is _quic_fast._delivered:
        return (handler.args[0].on_data_delivery, *args)
    return (handler, *args)


def _sent(state: dict[str, Any]) -> list[Any]:
    """The sent-packet records of a state, comparable across two send rounds."""
    return [
        (
            [
                (
                    p.packet_number,
                    p.sent_bytes,
                    p.sent_time,
                    p.in_flight,
                    p.is_ack_eliciting,
                    p.is_crypto_packet,
                    p.packet_type,
                    [_handler(h, args) for h, args in p.delivery_handlers],
                )
                for p in sent.values()
            ],
            eliciting,
        )
        for sent, eliciting in state["spaces"]
    ]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_lean_packets_are_the_bytes_aioquic_builds(suite: str) -> None:
    link = Link(suite=suite)
    client = link.client
    rng = random.Random(5)
    sids = []
    for _ in range(2):
        sid = client.get_next_available_stream_id()
        client.send_stream_data(sid, b"")
        client.consumed[sid] = 0
        sids.append(sid)
    # Warm up: offsets beyond 2^14 (4-byte varints), a grown congestion window.
    for _ in range(40):
        client.send_stream_data(sids[0], rng.randbytes(50_000))
        link.step()
    rounds = same_state = with_ack = 0
    for i in range(30):
        client.send_stream_data(sids[0], rng.randbytes(40_000))
        client.send_stream_data(sids[1], rng.randbytes(3000), end_stream=i == 29)
        link.now += 0.003  # the pacer lets a burst out (and an ACK falls due)
        ack_at = client._spaces[tls.Epoch.ONE_RTT].ack_at
        ack_due = ack_at is not None and ack_at <= link.now
        state = _sender_state(client)
        before = client.lean_sent
        client.fast_path = True
        lean = [d for d, _ in client.datagrams_to_send(link.now)]
        used = client.lean_sent - before
        after_lean = _sender_state(client)
        _restore(client, state)
        client.fast_path = False
        plain = [d for d, _ in client.datagrams_to_send(link.now)]
        client.fast_path = True
        # aioquic may add one partial packet where the lean path stops at a full one
        # (the congestion window's last bytes); all else must be byte-identical.
        assert lean == plain[: len(lean)], "lean packets differ from aioquic's"
        assert len(plain) - len(lean) <= 1
        if len(plain) == len(lean):
            after_plain = _sender_state(client)
            for key in ("quic", "streams", "pacer", "cc", "loss", "path"):
                assert after_lean[key] == after_plain[key], key
            assert after_lean["ack"][0] == after_plain["ack"][0]
            assert list(after_lean["ack"][1]) == list(after_plain["ack"][1])
            assert _sent(after_lean) == _sent(after_plain)
            same_state += 1
        rounds += 1 if used else 0
        with_ack += 1 if used and ack_due else 0
        for data in plain:
            link.server.receive_datagram(data, CLIENT, link.now)
        link._events(link.server)
        if i % 2:  # data back: the client owes an ACK in the next round
            link.server.send_stream_data(sids[0], b"r" * 100)
        link._send(link.server, client, SERVER, True)
        link._events(client)
    assert rounds >= 10  # the lean path built packets in most rounds
    assert with_ack >= 5  # ... after aioquic's packet with a due ACK
    assert same_state >= 5


def _receiver_state(quic: _Machine) -> dict[str, Any]:
    space = quic._spaces[tls.Epoch.ONE_RTT]
    return {
        "space": (
            list(space.ack_queue),
            sorted(space.received_packets._received),
            space.received_packets._lower,
            space.expected_packet_number,
            space.largest_received_packet,
            space.largest_received_time,
            space.ack_at,
        ),
        "quic": (
            quic._spin_bit,
            quic._spin_highest_pn,
            quic._local_max_data.used,
            quic._close_at,
            quic._ack_eliciting_sent_since_receipt,
        ),
        "streams": {
            sid: (
                s.receiver.highest_offset,
                s.receiver._buffer_start,
                bytes(s.receiver._buffer),
                list(s.receiver._ranges),
                s.receiver.is_finished,
                s.receiver._final_size,
            )
            for sid, s in quic._streams.items()
        },
        "events": [
            (
                type(e).__name__,
                getattr(e, "stream_id", None),
                getattr(e, "data", None),
                getattr(e, "end_stream", None),
            )
            for e in quic._events
        ],
    }


def _receiver_snapshot(quic: _Machine) -> dict[str, Any]:
    """What receiving packets changes on a machine (restored by _receiver_restore)."""
    space = quic._spaces[tls.Epoch.ONE_RTT]
    return {
        "ack_queue": copy.deepcopy(space.ack_queue),
        "received": copy.deepcopy(space.received_packets),
        "space": (
            space.expected_packet_number,
            space.largest_received_packet,
            space.largest_received_time,
            space.ack_at,
        ),
        "quic": (
            quic._spin_bit,
            quic._spin_highest_pn,
            quic._local_max_data.used,
            quic._close_at,
            quic._ack_eliciting_sent_since_receipt,
        ),
        "streams": {
            s: (
                r.receiver.highest_offset,
                r.receiver._buffer_start,
                bytearray(r.receiver._buffer),
                copy.deepcopy(r.receiver._ranges),
                r.receiver.is_finished,
                r.receiver._final_size,
            )
            for s, r in quic._streams.items()
        },
        "stream_ids": set(quic._streams),
        "queue": list(quic._streams_queue),
        "opened": (quic._local_max_streams_bidi.used, quic._local_max_streams_uni.used),
        "events": deque(quic._events),
    }


def _receiver_restore(quic: _Machine, snapshot: dict[str, Any]) -> None:
    space = quic._spaces[tls.Epoch.ONE_RTT]
    space.ack_queue = copy.deepcopy(snapshot["ack_queue"])
    space.received_packets = copy.deepcopy(snapshot["received"])
    (
        space.expected_packet_number,
        space.largest_received_packet,
        space.largest_received_time,
        space.ack_at,
    ) = snapshot["space"]
    (
        quic._spin_bit,
        quic._spin_highest_pn,
        quic._local_max_data.used,
        quic._close_at,
        quic._ack_eliciting_sent_since_receipt,
    ) = snapshot["quic"]
    for s, (high, start, buf, ranges, done, final) in snapshot["streams"].items():
        r = quic._streams[s].receiver
        r.highest_offset, r._buffer_start, r._buffer = high, start, bytearray(buf)
        r._ranges = copy.deepcopy(ranges)
        r.is_finished, r._final_size = done, final
    quic._events = deque(snapshot["events"])
    for sid in set(quic._streams) - snapshot["stream_ids"]:  # streams a packet opened
        del quic._streams[sid]
    quic._streams_queue = list(snapshot["queue"])
    quic._local_max_streams_bidi.used, quic._local_max_streams_uni.used = snapshot["opened"]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_lean_receive_leaves_aioquic_state(suite: str) -> None:
    link = Link(suite=suite)
    client, server = link.client, link.server
    rng = random.Random(9)
    sid = client.get_next_available_stream_id()
    client.send_stream_data(sid, b"x")  # the stream exists on both sides from here
    client.consumed[sid] = 0
    link.step()
    assert sid in server._streams
    checked = 0
    for i in range(25):
        client.send_stream_data(sid, rng.randbytes(30_000), end_stream=i == 24)
        link.now += 0.003
        datagrams = [d for d, _ in client.datagrams_to_send(link.now)]
        if not datagrams:
            continue
        if i % 5 == 2 and len(datagrams) > 3:  # reordered and duplicated packets too
            datagrams[1], datagrams[2] = datagrams[2], datagrams[1]
            datagrams.append(datagrams[0])
        snapshot = _receiver_snapshot(server)
        results = []
        for fast in (True, False):
            _receiver_restore(server, snapshot)
            server.fast_path = fast
            server._fast_idle_now = -1.0
            before = server.lean_received
            for data in datagrams:
                server.receive_datagram(data, CLIENT, link.now)
            lean = server.lean_received - before
            if fast:
                assert lean >= max(1, len(datagrams) - 1)  # all but a duplicate
            else:
                assert lean == 0
            results.append(_receiver_state(server))
        assert results[0] == results[1]
        checked += 1
        server.fast_path = True
        link._events(server)
        link.now += 0.002  # the ACK is due
        link._send(server, client, SERVER, True)
        link._events(client)
    assert checked >= 20
    assert server.lean_received > 300
    for _ in range(200):
        if sid in link.finished:
            break
        link.step()
    assert bytes(link.received[sid][:1]) == b"x" and sid in link.finished


# ----------------------------------------------------------------------- the send buffer


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.binary(min_size=0, max_size=300), st.integers(0, 2)),
            st.tuples(st.just("get"), st.integers(0, 2000), st.integers(0, 2000)),
            st.tuples(st.just("drop"), st.integers(0, 2000), st.just(0)),
        ),
        max_size=60,
    )
)
def test_send_buffer_behaves_like_a_bytearray(ops: list[tuple[Any, ...]]) -> None:
    model = bytearray()
    buf = SendBuffer()
    for op, a, b in ops:
        if op == "add":
            data = a if b == 0 else bytearray(a) if b == 1 else memoryview(a)
            model += data
            buf += data
        elif op == "get":
            assert buf[a:b] == bytes(model[a:b])
        else:
            n = min(a, len(model))
            del model[:n]
            del buf[:n]
        assert len(buf) == len(model)
        assert bool(buf) == bool(model)
    assert buf[0 : len(model)] == bytes(model)


def test_send_buffer_keeps_no_reference_to_mutable_input() -> None:
    buf = SendBuffer()
    data = bytearray(b"abcdef")
    buf += data
    buf += memoryview(data)[:2]
    data[:] = b"zzzzzz"
    assert buf[0:8] == b"abcdefab"
    with pytest.raises(ValueError):
        del buf[2:4]
    with pytest.raises(ValueError):
        buf[0:4:2]


# ----------------------------------------------------------------- real hosts, real UDP


async def _sink(stream: Stream) -> None:
    digest = hashlib.sha256()
    while data := await stream.read(1 << 20):
        digest.update(data)
    await stream.write(digest.digest())
    await stream.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "listen",
    [
        "/ip4/127.0.0.1/udp/0/quic-v1",
        pytest.param(
            "/ip6/::1/udp/0/quic-v1",
            marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
    ids=["ip4", "ip6"],
)
@pytest.mark.parametrize("fast", [True, False], ids=["lean", "aioquic"])
def test_upload_between_hosts(
    aio: Any, fast: bool, listen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FastQuicConnection, "fast_path", fast)

    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen(listen))
        b = await aiolibp2p.new_host()
        try:
            a.set_stream_handler(SINK, _sink)
            data = os.urandom(12 << 20)
            stream = await b.new_stream(a.full_addrs()[0], [SINK])
            view = memoryview(data)
            for i in range(0, len(data), 50_000):
                await stream.write(view[i : i + 50_000])
            await stream.close()
            assert await stream.read(-1) == hashlib.sha256(data).digest()
            conn = b.connections(a.peer_id)[0]
            assert isinstance(conn, QuicConn)
            (server,) = a.connections(b.peer_id)
            (client,) = b.connections(a.peer_id)
            assert isinstance(server, QuicConn) and isinstance(client, QuicConn)
            if fast:
                assert conn.quic.lean_sent > 5000
                assert server.quic.lean_received > 5000
            if sys.platform == "linux":
                # Most datagrams went out in segmented (GSO) runs.
                assert conn._endpoint.gso
                assert conn._endpoint.segmented > (12 << 20) // 1350 // 2
            else:
                assert conn.quic.lean_sent == server.quic.lean_received == 0
            # The connection window follows what the application consumed.
            assert server.quic._local_max_data.value <= (12 << 20) + (15 << 20) + (1 << 20)
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


@pytest.mark.skipif(sys.platform != "linux", reason="UDP GSO is Linux only")
def test_refused_gso_falls_back_to_plain_sends(aio: Any) -> None:
    """A socket the kernel refuses segmented sends on (checksums off: EINVAL): the endpoint
    stops segmenting and resends the run datagram by datagram; nothing is lost."""

    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen("/ip4/127.0.0.1/udp/0/quic-v1"))
        b = await aiolibp2p.new_host()
        try:
            a.set_stream_handler(SINK, _sink)
            conn = await b.connect(a.full_addrs()[0])
            assert isinstance(conn, QuicConn)
            endpoint = conn._endpoint
            endpoint._sock.setsockopt(socket.SOL_SOCKET, _SO_NO_CHECK, 1)
            data = os.urandom(4 << 20)
            stream = await conn.new_stream([SINK])
            for i in range(0, len(data), 65536):
                await stream.write(data[i : i + 65536])
            await stream.close()
            assert await stream.read(-1) == hashlib.sha256(data).digest()
            assert not endpoint.gso
            assert endpoint.segmented == 0
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=120)


_SO_NO_CHECK = 11  # asm-generic/socket.h


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 1500), st.sampled_from([("10.0.0.1", 1), ("10.0.0.2", 1)])),
        max_size=200,
    )
)
def test_segment_runs_cover_every_datagram_once(spec: list[tuple[int, Any]]) -> None:
    datagrams = [(bytes(n), addr) for n, addr in spec]
    runs = list(_udp.segment_runs(datagrams))
    position = 0
    for start, stop, size in runs:
        assert start == position and stop > start
        position = stop
        run = datagrams[start:stop]
        assert len(run) <= _udp.MAX_SEGMENTS
        assert sum(len(d) for d, _ in run) <= _udp.MAX_BYTES
        assert all(addr == run[0][1] for _, addr in run)
        assert len(run[0][0]) == size
        assert all(len(d) == size for d, _ in run[:-1])  # only the last may be shorter
        assert len(run[-1][0]) <= size
    assert position == len(datagrams)
    # Equal sizes to one address: as few runs as the limits allow.
    same = [(bytes(1350), ("10.0.0.1", 1))] * 100
    assert [stop - start for start, stop, _ in _udp.segment_runs(same)] == [48, 48, 4]


@settings(max_examples=500, deadline=None)
@example(  # the FIN acknowledged before the data that completes the stream
    sizes=[10, 10], chunked=True, events=[(1, True), (0, True)], reset=False, separate_fin=True
)
@given(
    st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=40),
    st.booleans(),
    st.booleans(),
)
def test_delivered_matches_on_data_delivery(
    sizes: list[int],
    chunked: bool,
    events: list[tuple[int, bool]],
    reset: bool,
    separate_fin: bool,
) -> None:
    """The lean path's delivery handler leaves a sender as aioquic's on_data_delivery does,
    for acknowledgements and losses in any order (frames as a sender cuts them)."""
    from aioquic.quic.packet_builder import QuicDeliveryState
    from aioquic.quic.stream import QuicStream

    streams = []
    for _ in range(2):
        stream = QuicStream(
            stream_id=0, max_stream_data_local=1 << 20, max_stream_data_remote=1 << 20
        )
        if chunked:
            stream.sender._buffer = SendBuffer()  # type: ignore[assignment]
        streams.append(stream)
    frames = []
    for stream in streams:
        for k, n in enumerate(sizes):
            last = k == len(sizes) - 1
            stream.sender.write(bytes([k]) * n, end_stream=last and not separate_fin)
    for fin_now in (False, True):
        if fin_now:  # a FIN-only frame after the data frames
            if not separate_fin:
                break
            for stream in streams:
                stream.sender.write(b"", end_stream=True)
        while True:
            frame = streams[0].sender.get_frame(1000)
            streams[1].sender.get_frame(1000)
            if frame is None:
                break
            frames.append((frame.offset, frame.offset + len(frame.data), frame.fin))
    if reset:
        for stream in streams:
            stream.sender.reset(0)
    for index, acked in events:
        start, stop, fin = frames[index % len(frames)]
        state = QuicDeliveryState.ACKED if acked else QuicDeliveryState.LOST
        _quic_fast._delivered(streams[0].sender, state, start, stop, fin)
        streams[1].sender.on_data_delivery(state, start, stop, fin)
        a, b = streams[0].sender, streams[1].sender
        for name in ("_buffer_start", "is_finished", "_acked_fin", "buffer_is_empty"):
            assert getattr(a, name) == getattr(b, name), name
        assert list(a._acked) == list(b._acked)
        assert list(a._pending) == list(b._pending)
        assert a._buffer[0 : len(a._buffer)] == bytes(b._buffer[0 : len(b._buffer)])


def test_key_updates_and_new_connection_ids_mid_transfer() -> None:
    """Key updates (both sides) and a switch to another connection id in the middle of an
    upload: aioquic handles the packets that change them, the lean paths resume after."""
    link = Link(suite="aes128")
    client, server = link.client, link.server
    rng = random.Random(11)
    sid = client.get_next_available_stream_id()
    client.consumed[sid] = 0
    data = rng.randbytes(6 << 20)
    pos = 0
    marks: list[tuple[int, int, int]] = []
    for _ in range(100_000):
        qstream = client._streams.get(sid)
        queued = (
            0 if qstream is None else qstream.sender._buffer_stop - qstream.sender._buffer_start
        )
        if pos < len(data) and queued < (1 << 20):
            client.send_stream_data(
                sid, data[pos : pos + 65536], end_stream=pos + 65536 >= len(data)
            )
            pos += 65536
        link.step()
        if pos in (1 << 20, 3 << 20, 5 << 20) and pos not in [m[0] for m in marks]:
            marks.append((pos, client.lean_sent, server.lean_received))
            if pos == 1 << 20:
                client.request_key_update()
            elif pos == 3 << 20:
                server.request_key_update()
            else:
                client.change_connection_id()
        if sid in link.finished:
            break
    assert sid in link.finished and bytes(link.received[sid]) == data
    assert len(marks) == 3
    key_phases = (
        client._cryptos[tls.Epoch.ONE_RTT].send.key_phase,
        server._cryptos[tls.Epoch.ONE_RTT].recv.key_phase,
    )
    assert key_phases == (0, 0)  # two updates: back to phase 0 on both sides
    assert server.host_cid != link.first_server_cid
    # After each change the lean paths were used again.
    ends = [*marks[1:], (len(data), client.lean_sent, server.lean_received)]
    for (_, sent0, recv0), (_, sent1, recv1) in zip(marks, ends, strict=True):
        assert sent1 - sent0 > 500 and recv1 - recv0 > 500


def test_overdue_ack_leaves_with_the_read_batch(aio: Any) -> None:
    """The loop can hand an endpoint thousands of datagrams before a scheduled flush runs;
    an ACK overdue by more than the slack then goes out with the read batch that found it,
    not at the end of the loop iteration (max_ack_delay is 25 ms)."""
    from aiolibp2p.net.transports import quic as quic_transport

    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen("/ip4/127.0.0.1/udp/0/quic-v1"))
        b = await aiolibp2p.new_host()
        try:
            a.set_stream_handler(SINK, _sink)
            stream = await b.new_stream(a.full_addrs()[0], [SINK])
            await stream.write(b"x")
            await asyncio.sleep(0.05)  # settled: everything acknowledged
            (server,) = a.connections(b.peer_id)
            (client,) = b.connections(a.peer_id)
            assert isinstance(server, QuicConn) and isinstance(client, QuicConn)
            endpoint = server._endpoint
            space = server.quic._spaces[tls.Epoch.ONE_RTT]

            def feed() -> int:
                """Let the endpoint read what arrived, as the loop would (no awaiting)."""
                n = 0
                for _ in range(200):
                    try:
                        data, addr = endpoint._sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    endpoint.datagram_received(data, addr)
                    n += 1
                return n

            def send(n: int) -> None:
                """Queue n bytes on the stream and make the client send them now."""
                assert client._send(stream, os.urandom(n)) == n
                client._flush()

            # From here to the last check nothing awaits: no scheduled flush, no timer runs.
            start = time.monotonic()
            send(3000)
            assert feed() > 0
            if time.monotonic() - start < quic_transport._ACK_SLACK:  # (a very slow machine)
                assert space.ack_at is not None  # an ACK is pending: not overdue yet
            time.sleep(0.001 + quic_transport._ACK_SLACK + 0.002)
            send(3000)
            assert feed() > 0
            assert space.ack_at is None  # overdue: sent with that batch
            await stream.close()
            assert len(await stream.read(-1)) == 32  # the sink saw everything (its digest)
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=60)


_RECEIVER_LINK: list[Link] = []


def _varint_bytes(value: int) -> bytes:
    for size, prefix in ((1, 0), (2, 0x4000), (4, 0x80000000), (8, 0xC000000000000000)):
        if value < 1 << (8 * size - 2):
            return (value | prefix).to_bytes(size, "big")
    raise ValueError(value)


@settings(max_examples=300, deadline=None)
@example(0x0E, 0, "stream-limit", b"ab", None, 0, b"")  # exactly at the stream's window
@example(0x0E, 0, "stream-limit+1", b"ab", None, 0, b"")  # one byte beyond it
@example(0x0F, 0, "stream-limit", b"", None, 0, b"")  # FIN at the window
@given(
    st.integers(0x08, 0x0F),
    st.sampled_from([0, 4, 8, 400, 1, 2, 3, 7, 1 << 20]),
    st.one_of(
        st.integers(0, 3000),
        st.integers(0, (1 << 62) - 1),
        st.sampled_from(["stream-limit", "stream-limit+1", "conn-limit", "conn-limit+1"]),
    ),
    st.binary(max_size=300),
    st.one_of(st.none(), st.integers(0, 400)),
    st.integers(0, 40),
    st.sampled_from([b"", b"\x00\x00", b"\x01", b"\x00\x1e"]),
)
def test_stream_frame_decoding_matches_aioquic(  # noqa: PLR0917 - one per strategy
    frame_type: int,
    stream_id: int,
    offset: int | str,
    data: bytes,
    length: int | None,
    cut: int,
    trailer: bytes,
) -> None:
    """Random and truncated STREAM frames (bad offsets, lengths, stream ids, trailing frames):
    the lean decoder ends as aioquic's frame handlers do (same result or the same
    QuicConnectionError code), leaving the same state."""
    from aioquic.quic.connection import QuicConnectionError, QuicReceiveContext

    if not _RECEIVER_LINK:
        link = Link()
        sid = link.client.get_next_available_stream_id()
        link.client.send_stream_data(sid, b"x" * 10)
        link.client.consumed[sid] = 0
        link.step()
        _RECEIVER_LINK.append(link)
    server = _RECEIVER_LINK[0].server
    if isinstance(offset, str):  # exactly at (or one past) a flow-control limit
        if offset.startswith("stream"):
            limit = server._streams[0].max_stream_data_local
        else:
            limit = server._local_max_data.value - server._local_max_data.used + 10
        offset = max(0, limit - len(data) + (1 if offset.endswith("+1") else 0))
    frame = bytearray([frame_type]) + _varint_bytes(stream_id)
    if frame_type & 4:
        frame += _varint_bytes(offset)
    if frame_type & 2:
        frame += _varint_bytes(len(data) if length is None else length)
    frame += data
    plain = bytes(frame[: max(1, len(frame) - cut)]) + (trailer if frame_type & 2 else b"")
    snapshot = _receiver_snapshot(server)
    path = server._network_paths[0]
    outcomes = []
    for fast in (True, False):
        _receiver_restore(server, snapshot)
        try:
            if fast:
                result: Any = server._fast_payload(plain, path, server.host_cid, 1.0)
            else:
                context = QuicReceiveContext(
                    epoch=tls.Epoch.ONE_RTT,
                    host_cid=server.host_cid,
                    network_path=path,
                    quic_logger_frames=None,
                    time=1.0,
                    version=None,
                )
                result = server._payload_received(context, plain)[0]
        except QuicConnectionError as exc:
            result = ("error", exc.error_code, exc.frame_type)
        state = _receiver_state(server)
        state["stream_ids"] = set(server._streams)
        outcomes.append((result, state))
    _receiver_restore(server, snapshot)
    assert outcomes[0] == outcomes[1]
