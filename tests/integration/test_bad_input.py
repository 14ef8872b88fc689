"""Misbehaving peers against a real listening host (loopback TCP, asyncio and uvloop).

Every case opens a raw socket to the host (``asyncio.open_connection``) and breaks a rule:
garbage, a truncated or stalled handshake, a bad Noise signature, bad Noise transport frames,
yamux and mplex violations.  To misbehave *after* a legitimate handshake the test drives our own
sans-IO :class:`~aiolibp2p.proto.upgrade.Upgrader` over the raw socket, then writes hand-built
muxer frames sealed with the resulting Noise transport.

Each case asserts that

* the host closes that connection (EOF or reset on the raw socket) within a bounded time;
* the host logged exactly one WARNING for it on ``aiolibp2p.connection``, naming the expected
  :class:`~aiolibp2p.core.errors.RemoteProtocolError` subclass, and nothing else at WARNING or
  above (no ERROR: no internal error);
* a well-behaved host connected to the same host at the same time carries on: the same
  connection is still open, a stream opened before the misbehaviour still echoes, a new stream
  echoes, ping answers;

and the ``aio`` fixture checks that no task or socket leaked and that nothing reached the
loop's exception handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from _echo import ECHO, echo_handler

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p._accel import varint
from aiolibp2p._accel import yamux as yamux_wire
from aiolibp2p.config import MPLEX, YAMUX
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import (
    DecryptError,
    DialError,
    HandshakeError,
    HandshakeTimeout,
    InvalidSignature,
    MessageTooLarge,
    NegotiationError,
    PeerIdMismatch,
    RemoteProtocolError,
    VarintError,
    YamuxError,
)
from aiolibp2p.core.peer import PeerId
from aiolibp2p.net.connection import Connection
from aiolibp2p.net.stream import Stream
from aiolibp2p.net.transports.tcp import tcp_endpoint
from aiolibp2p.proto.multistream import Dialer
from aiolibp2p.proto.noise.pb import payload_pb2
from aiolibp2p.proto.upgrade import UpgradeComplete, Upgrader

LOCAL = "/ip4/127.0.0.1/tcp/0"
#: A protocol whose handler never reads: its receive window is never granted back.
HOLD = "/hold/1.0.0"
#: How long the host may take to close a connection it should close at once.
CLOSE_BOUND = 3.0
#: The handshake deadline of the hosts in the stall cases, and the bounds on when they close.
HANDSHAKE_DEADLINE = 0.5
STALL_BOUNDS = (HANDSHAKE_DEADLINE * 0.8, 2.0)

#: The multistream-select bytes that propose ``/noise`` (header + proposal).
NOISE_PROPOSAL = Dialer(["/noise"], lazy=True).data_to_send()

# yamux wire values (libp2p/specs yamux/README.md).
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 0x1, 0x2, 0x4, 0x8
# mplex flags (libp2p/specs mplex/README.md).
NEW_STREAM, MESSAGE_INITIATOR = 0, 2


async def hold_handler(stream: Stream) -> None:
    """Never read: hold the stream until its connection closes."""
    await asyncio.shield(stream.connection.closed)


def yamux_frame(
    frame_type: int,
    flags: int,
    stream_id: int,
    length: int,
    payload: bytes = b"",
    *,
    version: int = 0,
) -> bytes:
    return struct.pack(">BBHII", version, frame_type, flags, stream_id, length) + payload


def mplex_frame(wire_id: int, flag: int, payload: bytes = b"", length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return varint.encode_uvarint((wire_id << 3) | flag) + varint.encode_uvarint(size) + payload


def noise_message(body: bytes, length: int | None = None) -> bytes:
    return (len(body) if length is None else length).to_bytes(2, "big") + body


# ---------------------------------------------------------------------------------- raw client


class RawClient:
    """A raw TCP connection to the host, driven by the test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.port: int = writer.get_extra_info("sockname")[1]
        self.opened = time.monotonic()
        #: Set by :meth:`handshake`: the Noise transport and the plaintext received so far.
        self.upgrade: UpgradeComplete | None = None
        self.plaintext = bytearray()
        self.reset = False
        #: After a handshake, wait for the host's first transport bytes (proof that its
        #: connection is open) before misbehaving; otherwise misbehave in the same write as
        #: Noise message 3 (the host then meets the bad bytes while finishing its upgrade).
        self.wait_open = False

    @classmethod
    async def connect(cls, host: aiolibp2p.Host) -> RawClient:
        ip, port, _family = tcp_endpoint(host.listen_addrs[0])
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def handshake(
        self,
        host: aiolibp2p.Host,
        muxer: str = YAMUX,
        *,
        tamper: Callable[[Upgrader], None] | None = None,
    ) -> UpgradeComplete:
        """Upgrade legitimately (as the dialer) with our own machine over the raw socket."""
        upgrader = Upgrader(
            initiator=True,
            identity_key=generate_private_key(),
            muxers=[muxer],
            static_key=os.urandom(32),
            ephemeral_key=os.urandom(32),
            expected_peer=host.peer_id,
        )
        if tamper is not None:
            tamper(upgrader)
        self.send(upgrader.data_to_send())
        while True:
            data = await asyncio.wait_for(self.reader.read(1 << 16), 5)
            assert data, "the host closed the connection during a legitimate handshake"
            complete = upgrader.receive_data(data)
            out = upgrader.data_to_send()
            if out:
                self.send(out)
            if complete is not None:
                break
        assert complete.muxer == muxer
        self.upgrade = complete
        self.plaintext += complete.leftover
        while self.wait_open and not self.plaintext:
            # yamux: the host's first ping; mplex: identify's NewStream.
            data = await asyncio.wait_for(self.reader.read(1 << 16), 5)
            assert data, "the host closed the connection after a legitimate handshake"
            self.plaintext += complete.transport.decrypt(data)
        return complete

    async def expect_closed(self, within: float = CLOSE_BOUND) -> float:
        """Read until the host closes the connection (EOF or reset); the seconds it took
        since the connection was opened.  Bytes received after a handshake are decrypted."""
        received = bytearray()

        async def drain() -> None:
            while True:
                try:
                    chunk = await self.reader.read(1 << 16)
                except (ConnectionResetError, BrokenPipeError):
                    self.reset = True
                    return
                if not chunk:
                    return
                received.extend(chunk)

        try:
            await asyncio.wait_for(drain(), within)
        except asyncio.TimeoutError:
            pytest.fail(f"the host did not close the misbehaving connection within {within} s")
        elapsed = time.monotonic() - self.opened
        if self.upgrade is not None and not self.reset:
            self.plaintext += self.upgrade.transport.decrypt(bytes(received))
        return elapsed

    def yamux_frames(self) -> list[tuple[int, int, int, int, bytes | None]]:
        frames, end = yamux_wire.split_frames(bytes(self.plaintext), max_data=1 << 30)
        assert end == len(self.plaintext), "the host's yamux output ended inside a frame"
        return frames

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


# ------------------------------------------------------------------------------ log checks


def connection_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "aiolibp2p.connection" and r.levelno >= logging.WARNING
    ]


def logged_error(record: logging.LogRecord) -> tuple[Connection, BaseException]:
    """The connection and the exception of a ``Connection._fail`` record
    (``"closing %r: %s: %s"`` with the connection, the type name and the exception)."""
    assert record.levelno == logging.WARNING, record.getMessage()
    assert isinstance(record.args, tuple) and len(record.args) == 3, record.getMessage()
    conn, type_name, exc = record.args
    assert isinstance(conn, Connection)
    assert isinstance(exc, BaseException)
    assert type_name == type(exc).__name__
    assert type(exc).__name__ in record.getMessage()
    return conn, exc


def assert_logged_once(
    caplog: pytest.LogCaptureFixture,
    expected: type[RemoteProtocolError],
    match: str,
    *,
    remote_port: int | None = None,
) -> BaseException:
    """Exactly one WARNING on the connection logger, for the misbehaving connection, naming a
    ``RemoteProtocolError`` subclass; and no ERROR anywhere in the library."""
    errors = [
        r for r in caplog.records if r.name.startswith("aiolibp2p") and r.levelno >= logging.ERROR
    ]
    assert not errors, [r.getMessage() for r in errors]
    records = connection_warnings(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    conn, exc = logged_error(records[0])
    if remote_port is not None:
        assert conn.remote_addr is not None
        assert str(conn.remote_addr).endswith(f"/tcp/{remote_port}"), conn
    assert isinstance(exc, RemoteProtocolError), f"{type(exc).__name__} is not remote: {exc}"
    assert isinstance(exc, expected), f"expected {expected.__name__}, got {exc!r}"
    assert match in str(exc), f"{match!r} not in {exc}"
    return exc


async def wait_logged(caplog: pytest.LogCaptureFixture, within: float = CLOSE_BOUND) -> None:
    """``Connection._fail`` logs before it closes the socket, so the warning is normally there
    already; wait for it anyway (bounded), then a moment longer so a second one would show."""
    deadline = time.monotonic() + within
    while not connection_warnings(caplog) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------- harness


@dataclass
class Case:
    """One misbehaviour: ``act(client, host)`` breaks a rule; the host must log ``expected``
    (with ``match`` in its message) and close."""

    act: Callable[[RawClient, aiolibp2p.Host], Awaitable[None]]
    expected: type[RemoteProtocolError]
    match: str
    #: yamux: the host must say goodbye with Go Away(protocol error) before closing.
    go_away: bool = False
    #: The host may close with our input unread (e.g. the rest of a burst past the window):
    #: the kernel then resets the connection and the Go Away may be lost on the way.
    may_reset: bool = False
    #: Bounds on the seconds from connect to close.
    closed_within: tuple[float, float] = (0.0, CLOSE_BOUND)


async def good_traffic_survives(
    good: aiolibp2p.Host, host: aiolibp2p.Host, conn: Connection, stream: Stream
) -> None:
    """The well-behaved peer's connection is the same, open, and works."""
    assert conn.is_open
    assert good.connections(host.peer_id) == [conn]
    assert len(host.connections(good.peer_id)) == 1
    await stream.write(b"after")
    await stream.close()
    assert await asyncio.wait_for(stream.read(), 5) == b"after"
    fresh = await conn.new_stream([ECHO])
    await fresh.write(b"a new stream")
    await fresh.close()
    assert await asyncio.wait_for(fresh.read(), 5) == b"a new stream"
    assert await asyncio.wait_for(good.ping(host.peer_id), 5) > 0
    assert good.connections(host.peer_id) == [conn]


async def run_case(
    case: Case,
    caplog: pytest.LogCaptureFixture,
    *,
    host_options: Sequence[Any] = (),
    wait_open: bool = False,
) -> None:
    host = await aiolibp2p.new_host(o.listen(LOCAL), *host_options)
    good = await aiolibp2p.new_host(o.listen(LOCAL))
    try:
        host.set_stream_handler(ECHO, echo_handler)
        host.set_stream_handler(HOLD, hold_handler)
        conn = await good.connect(host.full_addrs()[0])
        stream = await conn.new_stream([ECHO])
        await stream.write(b"before")
        assert await asyncio.wait_for(stream.readexactly(6), 5) == b"before"
        assert not connection_warnings(caplog)

        client = await RawClient.connect(host)
        client.wait_open = wait_open
        try:
            await case.act(client, host)
            elapsed = await client.expect_closed(case.closed_within[1])
        finally:
            await client.close()
        low, high = case.closed_within
        assert low <= elapsed <= high, f"closed after {elapsed:.3f} s, not in [{low}, {high}]"
        await wait_logged(caplog)
        assert_logged_once(caplog, case.expected, case.match, remote_port=client.port)
        if not case.may_reset:
            assert not client.reset, "the host reset the connection instead of closing it"
        if case.go_away and not client.reset:
            frames = client.yamux_frames()
            assert frames and frames[-1][:2] == (GO_AWAY, 0), frames[-3:]
            assert frames[-1][3] == 1, "Go Away code is not 1 (protocol error)"

        await good_traffic_survives(good, host, conn, stream)
        assert len(connection_warnings(caplog)) == 1
    finally:
        await good.close()
        await host.close()


# ----------------------------------------------------------------------- handshake: garbage


def _send(data: bytes) -> Callable[[RawClient, aiolibp2p.Host], Awaitable[None]]:
    async def act(client: RawClient, host: aiolibp2p.Host) -> None:
        client.send(data)

    return act


MSG1 = noise_message(b"\x09" * 32)

GARBAGE = {
    "varint-never-ends": Case(_send(b"\xff" * 64), NegotiationError, "uvarint"),
    "http-request": Case(
        _send(b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" * 4),
        NegotiationError,
        "",
    ),
    "wrong-multistream-header": Case(
        _send(b"\x13/multistream/2.0.0\n\x07/noise\n"), NegotiationError, "multistream"
    ),
    "message-too-large-for-multistream": Case(
        _send(varint.encode_uvarint(5000) + b"x" * 100), NegotiationError, "5000"
    ),
    "noise-message-1-oversized": Case(
        _send(NOISE_PROPOSAL + noise_message(b"", length=0xFFFF)),
        HandshakeError,
        "must be 32 bytes",
    ),
    "noise-message-1-short": Case(
        _send(NOISE_PROPOSAL + noise_message(b"\x09" * 31)), HandshakeError, "must be 32 bytes"
    ),
    "noise-message-3-garbage": Case(
        _send(NOISE_PROPOSAL + MSG1 + noise_message(b"\x5a" * 200)),
        HandshakeError,
        "authentication",
    ),
    "noise-message-3-too-short": Case(
        _send(NOISE_PROPOSAL + MSG1 + noise_message(b"\x5a" * 20)), HandshakeError, "shorter"
    ),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_during_handshake(aio: Any, caplog: pytest.LogCaptureFixture, name: str) -> None:
    aio(lambda: run_case(GARBAGE[name], caplog))


# ---------------------------------------------------------------- handshake: truncated, stalled


def _truncated(data: bytes) -> Callable[[RawClient, aiolibp2p.Host], Awaitable[None]]:
    async def act(client: RawClient, host: aiolibp2p.Host) -> None:
        client.send(data)
        client.writer.write_eof()  # then the host sees end of stream mid-handshake

    return act


TRUNCATED = {
    "nothing": Case(_truncated(b""), NegotiationError, "ended"),
    "inside-multistream": Case(_truncated(NOISE_PROPOSAL[:10]), NegotiationError, "ended"),
    "inside-noise-message-1": Case(
        _truncated(NOISE_PROPOSAL + MSG1[:17]), HandshakeError, "ended during the noise handshake"
    ),
    "after-noise-message-1": Case(
        _truncated(NOISE_PROPOSAL + MSG1), HandshakeError, "ended during the noise handshake"
    ),
}


@pytest.mark.parametrize("name", list(TRUNCATED))
def test_truncated_handshake(aio: Any, caplog: pytest.LogCaptureFixture, name: str) -> None:
    aio(lambda: run_case(TRUNCATED[name], caplog))


async def _stall_silent(client: RawClient, host: aiolibp2p.Host) -> None:
    pass  # connect, send nothing, keep the socket open


async def _stall_half(client: RawClient, host: aiolibp2p.Host) -> None:
    client.send(NOISE_PROPOSAL + MSG1[:17])  # half of message 1, then nothing


async def _stall_drip(client: RawClient, host: aiolibp2p.Host) -> None:
    """A valid start, one byte every 50 ms: activity must not push the deadline back."""
    data = NOISE_PROPOSAL + MSG1  # 62 bytes: about 3 s of dripping, far past the deadline
    closed = asyncio.ensure_future(client.expect_closed())
    try:
        for i in range(len(data)):
            if closed.done():
                break
            client.send(data[i : i + 1])
            await asyncio.wait([closed], timeout=0.05)
    finally:
        await closed


STALLED = {
    "silent": Case(_stall_silent, HandshakeTimeout, "not finished", closed_within=STALL_BOUNDS),
    "half-message-1": Case(
        _stall_half, HandshakeTimeout, "not finished", closed_within=STALL_BOUNDS
    ),
    # a byte may cross the host's close and draw a reset
    "byte-by-byte": Case(
        _stall_drip,
        HandshakeTimeout,
        "not finished",
        closed_within=STALL_BOUNDS,
        may_reset=True,
    ),
}


@pytest.mark.parametrize("name", list(STALLED))
def test_stalled_handshake_hits_the_deadline(
    aio: Any, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    aio(
        lambda: run_case(
            STALLED[name], caplog, host_options=[o.timeouts(handshake=HANDSHAKE_DEADLINE)]
        )
    )


# ------------------------------------------------------------------ handshake: bad signature


def _corrupt_signature(upgrader: Upgrader) -> None:
    """Flip a bit of the identity signature our machine will send in message 3.

    The initiator's payload only leaves with message 3, so replacing the payload the machine
    built at construction is enough; the host under test is untouched.
    """
    noise = upgrader._noise
    payload: Any = payload_pb2.NoiseHandshakePayload()
    payload.ParseFromString(noise._payload)
    sig = bytearray(payload.identity_sig)
    sig[len(sig) // 2] ^= 0x01
    payload.identity_sig = bytes(sig)
    noise._payload = payload.SerializeToString(deterministic=True)


def _claim_other_identity(upgrader: Upgrader) -> None:
    """Send someone else's identity key with our signature: the signature cannot verify."""
    noise = upgrader._noise
    payload: Any = payload_pb2.NoiseHandshakePayload()
    payload.ParseFromString(noise._payload)
    payload.identity_key = generate_private_key().public_key().to_protobuf()
    noise._payload = payload.SerializeToString(deterministic=True)


def _handshake_with(tamper: Callable[[Upgrader], None]) -> Callable[..., Awaitable[None]]:
    async def act(client: RawClient, host: aiolibp2p.Host) -> None:
        # Our side completes on message 2; the host checks our signature on message 3.
        await client.handshake(host, tamper=tamper)

    return act


SIGNATURES = {
    "flipped-bit": Case(_handshake_with(_corrupt_signature), InvalidSignature, "does not verify"),
    "someone-elses-key": Case(
        _handshake_with(_claim_other_identity), InvalidSignature, "does not verify"
    ),
}


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_bad_noise_signature(aio: Any, caplog: pytest.LogCaptureFixture, name: str) -> None:
    aio(lambda: run_case(SIGNATURES[name], caplog))


# -------------------------------------------------------------- peer id mismatch (outbound)


def test_dialed_peer_id_mismatch(aio: Any, caplog: pytest.LogCaptureFixture) -> None:
    """We dial ``<addr>/p2p/<someone else>``: the dial fails with PeerIdMismatch, logged once
    by the dialing host, and the dialer's other connection carries on."""

    async def main() -> None:
        dialer = await aiolibp2p.new_host(o.listen(LOCAL))
        target = await aiolibp2p.new_host(o.listen(LOCAL))
        good = await aiolibp2p.new_host(o.listen(LOCAL))
        other = PeerId.from_public_key(generate_private_key().public_key())
        try:
            dialer.set_stream_handler(ECHO, echo_handler)
            conn = await good.connect(dialer.full_addrs()[0])
            stream = await conn.new_stream([ECHO])
            await stream.write(b"before")
            assert await asyncio.wait_for(stream.readexactly(6), 5) == b"before"

            with pytest.raises(DialError) as info:
                await dialer.connect(f"{target.listen_addrs[0]}/p2p/{other}")
            (error,) = info.value.errors.values()
            assert isinstance(error, PeerIdMismatch), repr(error)
            assert not dialer.connections(other) and not dialer.connections(target.peer_id)

            await wait_logged(caplog)
            records = [
                r
                for r in connection_warnings(caplog)
                if logged_error(r)[0].direction.value == "outbound"
            ]
            assert len(records) == 1, [r.getMessage() for r in records]
            conn_logged, exc = logged_error(records[0])
            assert isinstance(exc, PeerIdMismatch) and str(other) in str(exc)
            assert str(conn_logged.remote_addr) == str(target.listen_addrs[0])
            # The target saw its dialer hang up after message 2: one typed warning there too.
            inbound = [r for r in connection_warnings(caplog) if r is not records[0]]
            assert len(inbound) <= 1, [r.getMessage() for r in inbound]
            for record in inbound:
                assert isinstance(logged_error(record)[1], RemoteProtocolError)

            await good_traffic_survives(good, dialer, conn, stream)
            # and the target itself is fine when dialed with its real id
            assert await asyncio.wait_for(dialer.ping(target.full_addrs()[0]), 5) > 0
        finally:
            await good.close()
            await target.close()
            await dialer.close()

    aio(main)


# ------------------------------------------------------------ Noise transport frames (after)

#: When the bad bytes follow the handshake: in the same write as Noise message 3, or once the
#: host's connection is open.  Two code paths: the upgrade's leftover, and the open pump.
WHEN = ["with-message-3", "after-upgrade"]


def _after_handshake(
    frames: Callable[[RawClient], bytes], muxer: str = YAMUX
) -> Callable[[RawClient, aiolibp2p.Host], Awaitable[None]]:
    async def act(client: RawClient, host: aiolibp2p.Host) -> None:
        await client.handshake(host, muxer)
        client.send(frames(client))

    return act


def _tampered(client: RawClient) -> bytes:
    assert client.upgrade is not None
    frame = bytearray(client.upgrade.transport.encrypt(yamux_frame(PING, SYN, 0, 7)))
    frame[6] ^= 0x40
    return bytes(frame)


def _replayed(client: RawClient) -> bytes:
    assert client.upgrade is not None
    frame = client.upgrade.transport.encrypt(yamux_frame(PING, SYN, 0, 7))
    return frame + frame  # the copy is sealed under the next nonce: it cannot open


def _unencrypted(client: RawClient) -> bytes:
    return yamux_frame(PING, SYN, 0, 7)  # 2-byte "length" 0x0002: shorter than a tag


def _max_size_garbage(client: RawClient) -> bytes:
    return noise_message(b"\x5a" * 0xFFFF)  # the largest frame there is, and not authentic


NOISE_FRAMES = {
    "tampered-ciphertext": Case(_after_handshake(_tampered), DecryptError, ""),
    "replayed-frame": Case(_after_handshake(_replayed), DecryptError, ""),
    "plaintext-after-handshake": Case(_after_handshake(_unencrypted), DecryptError, ""),
    "max-size-garbage-frame": Case(_after_handshake(_max_size_garbage), DecryptError, ""),
    "tampered-mplex": Case(_after_handshake(_tampered, MPLEX), DecryptError, ""),
}


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("name", list(NOISE_FRAMES))
def test_bad_noise_transport_frame(
    aio: Any, caplog: pytest.LogCaptureFixture, name: str, when: str
) -> None:
    aio(lambda: run_case(NOISE_FRAMES[name], caplog, wait_open=when == "after-upgrade"))


# ------------------------------------------------------------------------------------ yamux


def _sealed(
    frames: Callable[[RawClient], bytes], muxer: str = YAMUX
) -> Callable[[RawClient, aiolibp2p.Host], Awaitable[None]]:
    def seal(client: RawClient) -> bytes:
        assert client.upgrade is not None
        return client.upgrade.transport.encrypt(frames(client))

    return _after_handshake(seal, muxer)


def _beyond_window(client: RawClient) -> bytes:
    # Negotiate HOLD (whose handler never reads), then send 320 KiB: the host granted 256 KiB
    # plus what negotiation consumed, so the last frames exceed the window.
    negotiation = Dialer([HOLD], lazy=True).data_to_send()
    frames = [yamux_frame(DATA, SYN, 1, len(negotiation), negotiation)]
    chunk = b"\x00" * 32 * 1024
    frames += [yamux_frame(DATA, 0, 1, len(chunk), chunk) for _ in range(10)]
    return b"".join(frames)


def _hold_stream(stream_id: int) -> bytes:
    negotiation = Dialer([HOLD], lazy=True).data_to_send()
    return yamux_frame(DATA, SYN, stream_id, len(negotiation), negotiation)


YAMUX_CASES = {
    "bad-version": Case(
        _sealed(lambda c: yamux_frame(PING, SYN, 0, 1, version=1)),
        YamuxError,
        "unsupported yamux version 1",
        go_away=True,
    ),
    "unknown-type": Case(
        _sealed(lambda c: yamux_frame(4, 0, 1, 0)),
        YamuxError,
        "unknown yamux frame type 4",
        go_away=True,
    ),
    "data-beyond-window": Case(
        _sealed(_beyond_window),
        YamuxError,
        "exceed its receive window",
        go_away=True,
        may_reset=True,
    ),
    "data-frame-over-max-window": Case(
        _sealed(lambda c: yamux_frame(DATA, SYN, 1, 0xFFFFFFFF)),
        YamuxError,
        "exceeds the limit",
        go_away=True,
    ),
    "syn-reuses-stream-id": Case(
        _sealed(lambda c: _hold_stream(1) + yamux_frame(WINDOW_UPDATE, SYN, 1, 0)),
        YamuxError,
        "reused stream id 1",
        go_away=True,
    ),
    "syn-reuses-lower-stream-id": Case(
        _sealed(lambda c: _hold_stream(5) + yamux_frame(WINDOW_UPDATE, SYN, 3, 0)),
        YamuxError,
        "reused stream id 3",
        go_away=True,
    ),
    "syn-with-listener-parity": Case(
        _sealed(lambda c: yamux_frame(WINDOW_UPDATE, SYN, 2, 0)),
        YamuxError,
        "an id of our parity",
        go_away=True,
    ),
    "ack-for-unknown-stream": Case(
        _sealed(lambda c: yamux_frame(WINDOW_UPDATE, ACK, 1000, 0)),
        YamuxError,
        "which we never opened",
        go_away=True,
    ),
    "data-for-unopened-stream": Case(
        _sealed(lambda c: yamux_frame(DATA, 0, 7, 3, b"abc")),
        YamuxError,
        "which the remote never opened",
        go_away=True,
    ),
    "data-on-session-stream": Case(
        _sealed(lambda c: yamux_frame(DATA, 0, 0, 3, b"abc")),
        YamuxError,
        "stream 0",
        go_away=True,
    ),
    "data-after-fin": Case(
        _sealed(
            lambda c: (
                _hold_stream(1)
                + yamux_frame(WINDOW_UPDATE, FIN, 1, 0)
                + yamux_frame(DATA, 0, 1, 3, b"abc")
            )
        ),
        YamuxError,
        "after the remote closed it",
        go_away=True,
    ),
}


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("name", list(YAMUX_CASES))
def test_yamux_violation(aio: Any, caplog: pytest.LogCaptureFixture, name: str, when: str) -> None:
    aio(lambda: run_case(YAMUX_CASES[name], caplog, wait_open=when == "after-upgrade"))


# ------------------------------------------------------------------------------------ mplex

MPLEX_CASES = {
    "oversized-message": Case(
        _sealed(lambda c: mplex_frame(1, MESSAGE_INITIATOR, length=(1 << 20) + 1), MPLEX),
        MessageTooLarge,
        str((1 << 20) + 1),
    ),
    "duplicate-new-stream": Case(
        _sealed(lambda c: mplex_frame(1, NEW_STREAM, b"1") * 2, MPLEX),
        RemoteProtocolError,
        "which is open",
    ),
    "unknown-flag": Case(
        _sealed(lambda c: mplex_frame(1, 7), MPLEX), RemoteProtocolError, "unknown flag 7"
    ),
    "bad-varint": Case(_sealed(lambda c: b"\xff" * 12, MPLEX), VarintError, ""),
}


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("name", list(MPLEX_CASES))
def test_mplex_violation(aio: Any, caplog: pytest.LogCaptureFixture, name: str, when: str) -> None:
    aio(lambda: run_case(MPLEX_CASES[name], caplog, wait_open=when == "after-upgrade"))
