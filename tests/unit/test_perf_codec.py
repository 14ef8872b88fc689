"""perf: the request header codec and the client/server machines' order rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import (
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from aiolibp2p.proto.perf import (
    BLOCK_SIZE,
    HEADER_SIZE,
    MAX_U64,
    PROTOCOL_ID,
    ClientState,
    PerfClient,
    PerfProtocolError,
    PerfRequestTooLarge,
    PerfResult,
    PerfServer,
    ServerState,
    TruncatedRequest,
    decode_request,
    encode_request,
)

u64 = st.integers(min_value=0, max_value=MAX_U64)


def test_constants() -> None:
    assert PROTOCOL_ID == "/perf/1.0.0"
    assert HEADER_SIZE == 8
    assert MAX_U64 == 2**64 - 1
    assert BLOCK_SIZE == 65536
    assert issubclass(PerfProtocolError, RemoteProtocolError)
    assert issubclass(TruncatedRequest, PerfProtocolError)
    assert issubclass(TruncatedRequest, DecodeError)
    assert issubclass(PerfRequestTooLarge, RemoteProtocolError)


# ------------------------------------------------------------------------------------ codec


def test_header_vectors() -> None:
    assert encode_request(0) == b"\x00" * 8
    assert encode_request(1) == b"\x00" * 7 + b"\x01"
    assert encode_request(0x0102030405060708) == bytes(range(1, 9))  # big-endian
    assert encode_request(MAX_U64) == b"\xff" * 8
    assert decode_request(b"\xff" * 8) == MAX_U64
    assert decode_request(bytearray(bytes(range(1, 9)))) == 0x0102030405060708
    assert decode_request(memoryview(b"\x00" * 7 + b"\x2a")) == 42


@given(u64)
def test_header_roundtrip(n: int) -> None:
    wire = encode_request(n)
    assert len(wire) == HEADER_SIZE
    assert decode_request(wire) == n
    assert wire == n.to_bytes(8, "big")


@given(st.binary(min_size=8, max_size=8))
def test_any_8_bytes_decode(data: bytes) -> None:
    assert decode_request(data) == int.from_bytes(data, "big")


@given(st.binary(max_size=7))
def test_truncated_header_is_typed(data: bytes) -> None:
    with pytest.raises(TruncatedRequest) as info:
        decode_request(data)
    assert info.value.received == len(data)


@given(st.binary(min_size=9, max_size=64))
def test_long_header_is_typed(data: bytes) -> None:
    with pytest.raises(PerfProtocolError):
        decode_request(data)


@pytest.mark.parametrize("bad", [-1, MAX_U64 + 1, 2**70, True, 1.0, "8", None])
def test_encode_rejects_out_of_range(bad: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- server


def feed_in_chunks(server: PerfServer, data: bytes, cuts: list[int]) -> None:
    pos = 0
    for cut in sorted(cuts):
        server.receive_data(data[pos:cut])
        pos = cut
    server.receive_data(data[pos:])


def drain_sends(server: PerfServer, limit: int = BLOCK_SIZE) -> list[int]:
    sizes = []
    for _ in range(1 << 20):  # bounded
        n = server.next_send(limit)
        if not n:
            return sizes
        sizes.append(n)
    raise AssertionError("next_send never returned 0")


@given(
    requested=st.integers(min_value=0, max_value=5 * BLOCK_SIZE + 17),
    upload=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=308), max_size=6),
)
def test_server_reads_header_then_upload_then_sends(
    requested: int, upload: bytes, cuts: list[int]
) -> None:
    server = PerfServer()
    wire = encode_request(requested) + upload
    feed_in_chunks(server, wire, [c for c in cuts if c <= len(wire)])
    assert server.state is ServerState.RECEIVING
    assert server.requested == requested
    assert server.uploaded == len(upload)
    # nothing may be sent while the upload goes on
    with pytest.raises(LocalProtocolError):
        server.next_send()
    server.receive_eof()
    sizes = drain_sends(server)
    assert sum(sizes) == requested == server.sent
    assert all(0 < s <= BLOCK_SIZE for s in sizes)
    assert server.state is ServerState.DONE
    assert server.next_send() == 0  # stays done


def test_server_zero_request_is_done_at_eof() -> None:
    server = PerfServer()
    server.receive_data(encode_request(0))
    server.receive_eof()
    assert server.state is ServerState.DONE
    assert server.next_send() == 0


def test_server_header_split_byte_by_byte() -> None:
    server = PerfServer()
    for b in encode_request(3 * BLOCK_SIZE + 1):
        assert server.state is ServerState.AWAIT_REQUEST
        server.receive_data(bytes([b]))
    assert server.requested == 3 * BLOCK_SIZE + 1
    assert server.uploaded == 0
    server.receive_eof()
    assert drain_sends(server) == [BLOCK_SIZE] * 3 + [1]


def test_server_send_limit() -> None:
    server = PerfServer()
    server.receive_data(encode_request(10))
    server.receive_eof()
    assert drain_sends(server, limit=4) == [4, 4, 2]
    with pytest.raises(LocalProtocolError):
        server.next_send(0)


@given(st.binary(max_size=7))
def test_server_eof_inside_header(data: bytes) -> None:
    server = PerfServer()
    server.receive_data(data)
    with pytest.raises(TruncatedRequest) as info:
        server.receive_eof()
    assert info.value.received == len(data)
    assert server.state is ServerState.FAILED
    with pytest.raises(LocalProtocolError):
        server.next_send()


def test_server_cap() -> None:
    server = PerfServer(max_send_bytes=1000)
    server.receive_data(encode_request(1000) + b"x")
    assert server.state is ServerState.RECEIVING
    over = PerfServer(max_send_bytes=1000)
    with pytest.raises(PerfRequestTooLarge) as info:
        over.receive_data(encode_request(1001))
    assert (info.value.requested, info.value.limit) == (1001, 1000)
    assert over.state is ServerState.FAILED
    with pytest.raises(PerfProtocolError):  # nothing more is accepted
        over.receive_data(b"more")


def test_server_max_request_allowed_by_default() -> None:
    server = PerfServer()
    server.receive_data(encode_request(MAX_U64))
    server.receive_eof()
    assert server.next_send() == BLOCK_SIZE
    assert server.state is ServerState.SENDING


def test_server_data_or_eof_after_eof_is_a_remote_error() -> None:
    server = PerfServer()
    server.receive_data(encode_request(5))
    server.receive_eof()
    with pytest.raises(PerfProtocolError):
        server.receive_data(b"late")
    assert server.state is ServerState.FAILED


@pytest.mark.parametrize("bad", [-1, MAX_U64 + 1, True])
def test_server_bad_cap(bad: int) -> None:
    with pytest.raises(LocalProtocolError):
        PerfServer(max_send_bytes=bad)


# ----------------------------------------------------------------------------------- client


def test_client_happy_path() -> None:
    client = PerfClient(upload_bytes=BLOCK_SIZE + 3, download_bytes=7)
    assert client.state is ClientState.IDLE
    assert client.start() == encode_request(7)
    assert client.state is ClientState.UPLOADING
    assert client.next_upload() == BLOCK_SIZE
    assert client.next_upload() == 3
    assert client.next_upload() == 0
    assert client.uploaded == BLOCK_SIZE + 3
    client.close_write()
    assert client.state is ClientState.DOWNLOADING
    client.receive_data(b"\0" * 4)
    client.receive_data(b"")
    client.receive_data(memoryview(b"\0" * 3))
    client.receive_eof()
    assert client.state is ClientState.DONE
    assert client.downloaded == 7


def test_client_order_is_enforced_locally() -> None:
    client = PerfClient(upload_bytes=10, download_bytes=0)
    with pytest.raises(LocalProtocolError):
        client.next_upload()  # before start()
    client.start()
    with pytest.raises(LocalProtocolError):
        client.start()  # twice
    with pytest.raises(LocalProtocolError):
        client.close_write()  # before the upload is all out
    assert client.next_upload(4) == 4
    with pytest.raises(LocalProtocolError):
        client.next_upload(0)


def test_client_rejects_early_reply() -> None:
    client = PerfClient(upload_bytes=10, download_bytes=10)
    client.start()
    with pytest.raises(PerfProtocolError, match="before our upload ended"):
        client.receive_data(b"\0")
    assert client.state is ClientState.FAILED


def test_client_rejects_early_eof() -> None:
    client = PerfClient(upload_bytes=10, download_bytes=0)
    client.start()
    with pytest.raises(PerfProtocolError):
        client.receive_eof()


def test_client_rejects_surplus_and_short_replies() -> None:
    client = PerfClient(upload_bytes=0, download_bytes=3)
    client.start()
    client.close_write()
    with pytest.raises(PerfProtocolError, match="sent 4 bytes, 3 requested"):
        client.receive_data(b"\0" * 4)
    short = PerfClient(upload_bytes=0, download_bytes=3)
    short.start()
    short.close_write()
    short.receive_data(b"\0\0")
    with pytest.raises(PerfProtocolError, match="after 2 of 3"):
        short.receive_eof()
    assert short.state is ClientState.FAILED


@pytest.mark.parametrize(("up", "down"), [(-1, 0), (0, -1), (MAX_U64 + 1, 0), (0, 1.5)])
def test_client_bad_counts(up: int, down: int) -> None:
    with pytest.raises(LocalProtocolError):
        PerfClient(up, down)


@given(
    up=st.integers(min_value=0, max_value=4 * BLOCK_SIZE),
    down=st.integers(min_value=0, max_value=4 * BLOCK_SIZE),
    read_size=st.integers(min_value=1, max_value=3 * BLOCK_SIZE),
)
def test_client_and_server_together(up: int, down: int, read_size: int) -> None:
    """A whole exchange through both machines, with arbitrary read sizes on each side."""
    client, server = PerfClient(up, down), PerfServer()
    wire = bytearray(client.start())
    while n := client.next_upload():
        wire += bytes(n)
    client.close_write()
    for off in range(0, len(wire), read_size):
        server.receive_data(wire[off : off + read_size])
    server.receive_eof()
    assert (server.requested, server.uploaded) == (down, up)
    reply = sum(drain_sends(server))
    for off in range(0, reply, read_size):
        client.receive_data(bytes(min(read_size, reply - off)))
    client.receive_eof()
    assert (client.uploaded, client.downloaded) == (up, down)


@given(st.binary(max_size=64))
def test_server_random_input_only_typed_errors(data: bytes) -> None:
    server = PerfServer(max_send_bytes=1 << 20)
    try:
        server.receive_data(data)
        server.receive_eof()
        drain_sends(server)
    except RemoteProtocolError:
        assert server.state is ServerState.FAILED


def test_result_json_shape() -> None:
    result = PerfResult(0.5, 1, 2)
    assert result.to_json() == {
        "type": "final",
        "timeSeconds": 0.5,
        "uploadBytes": 1,
        "downloadBytes": 2,
    }
