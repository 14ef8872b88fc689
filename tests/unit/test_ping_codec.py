"""The ping helpers: echo, round-trip time, chunking, mismatches, bounds."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import LocalProtocolError, RemoteProtocolError
from aiolibp2p.proto.ping import PING_SIZE, PROTOCOL_ID, PingClient, PingMismatch, PingServer


def test_constants() -> None:
    assert PROTOCOL_ID == "/ipfs/ping/1.0.0"
    assert PING_SIZE == 32
    assert issubclass(PingMismatch, RemoteProtocolError)


def test_one_ping_through_a_server() -> None:
    client, server = PingClient(), PingServer()
    payload = os.urandom(32)
    wire = client.start(payload, now=10.0)
    assert wire == payload
    assert client.pending
    echo = server.receive_data(wire)
    assert echo == payload
    assert client.receive_data(echo, now=10.25) == pytest.approx(0.25)
    assert not client.pending


def test_repeated_pings_on_one_stream() -> None:
    client, server = PingClient(), PingServer()
    for i in range(5):
        payload = bytes([i]) * 32
        echo = server.receive_data(client.start(payload, now=float(i)))
        assert client.receive_data(echo, now=i + 0.001 * (i + 1)) == pytest.approx(0.001 * (i + 1))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_echo_split_at_every_point(kind: type) -> None:
    payload = bytes(range(32))
    for cut in range(33):
        client = PingClient()
        client.start(payload, now=1.0)
        first = client.receive_data(kind(payload[:cut]), now=1.5)
        assert first is None or cut == 32
        second = client.receive_data(kind(payload[cut:]), now=2.0)
        rtt = first if cut == 32 else second
        assert rtt == pytest.approx(0.5 if cut == 32 else 1.0)


def test_rtt_never_negative() -> None:
    client = PingClient()
    client.start(b"\x01" * 32, now=5.0)
    assert client.receive_data(b"\x01" * 32, now=4.0) == 0.0


def test_mismatched_echo() -> None:
    client = PingClient()
    client.start(b"a" * 32, now=0.0)
    assert client.receive_data(b"a" * 10, now=0.1) is None
    with pytest.raises(PingMismatch, match="differs"):
        client.receive_data(b"a" * 5 + b"b", now=0.2)
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"a", now=0.3)
    with pytest.raises(LocalProtocolError):
        client.start(b"c" * 32, now=0.4)


def test_bytes_past_the_echo() -> None:
    client = PingClient()
    client.start(b"a" * 32, now=0.0)
    with pytest.raises(PingMismatch, match="more bytes"):
        client.receive_data(b"a" * 33, now=0.1)


def test_unsolicited_bytes() -> None:
    client = PingClient()
    assert client.receive_data(b"", now=0.0) is None
    with pytest.raises(PingMismatch, match="no outstanding"):
        client.receive_data(b"x", now=0.0)


@pytest.mark.parametrize("payload", [b"", b"x" * 31, b"x" * 33, "x" * 32])
def test_start_rejects_bad_payloads(payload: object) -> None:
    with pytest.raises(LocalProtocolError):
        PingClient().start(payload, now=0.0)  # type: ignore[arg-type]


def test_one_outstanding_ping_at_a_time() -> None:
    client = PingClient()
    client.start(b"x" * 32, now=0.0)
    with pytest.raises(LocalProtocolError, match="outstanding"):
        client.start(b"y" * 32, now=0.0)


def test_server_buffers_partial_blocks() -> None:
    server = PingServer()
    assert server.receive_data(b"") == b""
    assert server.receive_data(b"a" * 20) == b""
    assert server.buffered == 20
    assert server.receive_data(b"a" * 12 + b"b" * 40) == b"a" * 32 + b"b" * 32
    assert server.buffered == 8
    with pytest.raises(RemoteProtocolError, match="8 of 32"):
        server.receive_eof()
    assert server.buffered == 0
    server.receive_eof()  # clean end


@given(st.lists(st.binary(max_size=100), max_size=30))
def test_server_echoes_exactly_the_complete_blocks(chunks: list[bytes]) -> None:
    server = PingServer()
    out = b""
    for chunk in chunks:
        out += server.receive_data(chunk)
        assert server.buffered < PING_SIZE
    total = b"".join(chunks)
    whole = len(total) - len(total) % PING_SIZE
    assert out == total[:whole]
    assert server.buffered == len(total) - whole


@given(st.binary(min_size=32, max_size=32), st.lists(st.binary(max_size=40), max_size=10))
def test_client_random_input_raises_only_typed_errors(payload: bytes, chunks: list[bytes]) -> None:
    client = PingClient()
    client.start(payload, now=0.0)
    got = b""
    try:
        for chunk in chunks:
            rtt = client.receive_data(chunk, now=1.0)
            got += chunk
            assert payload.startswith(got)
            if rtt is not None:
                assert got == payload and rtt == 1.0
                break
    except PingMismatch:
        assert not payload.startswith(got + chunk) or len(got + chunk) > 32
