"""The benchmarks' delaying proxy (``bench/proxy.py``): delay, rate limit, TCP semantics, UDP.

Plain TCP/UDP echo and sink servers on loopback; the ``aio`` fixture runs each case on asyncio
and on uvloop and fails on a task, timer or socket left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# The proxy lives in the checkout's bench/, not in the package: $AIOLIBP2P_CHECKOUT when set
# (scripts/build-wheel runs a copy of the tests against an installed wheel), else the checkout
# these tests live in.  Only a wheel run (AIOLIBP2P_WHEEL_RUN=1) may skip for want of it.
ROOT = Path(os.environ.get("AIOLIBP2P_CHECKOUT") or Path(__file__).resolve().parents[2])
PROXY_PATH = ROOT / "bench" / "proxy.py"
if not PROXY_PATH.exists():
    if os.environ.get("AIOLIBP2P_WHEEL_RUN", "") not in ("", "0"):
        pytest.skip(f"wheel run without the checkout ({PROXY_PATH})", allow_module_level=True)
    pytest.fail(f"{PROXY_PATH} is missing: run the suite from the checkout", pytrace=False)


def _load_proxy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiolibp2p_bench_proxy", PROXY_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


proxy_mod = _load_proxy()
DelayProxy = proxy_mod.DelayProxy

LOCAL = "127.0.0.1"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the proxy was closed (aborted) under us: expected in the shutdown test
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def tcp_server(handler: Any) -> Any:
    server = await asyncio.start_server(handler, LOCAL, 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def connection(addr: tuple[str, int]) -> Any:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_tcp_round_trip_is_the_configured_rtt(aio: Any) -> None:
    rtt = 0.050

    async def main() -> None:
        async with (
            tcp_server(_echo) as target,
            DelayProxy(target, rtt=rtt) as proxy,
            connection(proxy.tcp_address) as (reader, writer),
        ):
            samples = []
            for i in range(9):
                start = time.perf_counter()
                writer.write(bytes([i]))
                await writer.drain()
                assert await reader.readexactly(1) == bytes([i])
                samples.append(time.perf_counter() - start)
            # The first exchange waits for the proxy's delayed connect to the target too: the
            # client's byte travels with it, so it still takes one RTT.
            assert rtt * 0.95 <= samples[0] <= rtt * 1.6, samples
            median = statistics.median(samples[1:])
            assert rtt * 0.95 <= median <= rtt + 0.025, samples
            assert proxy.connections == 1

    aio(main, timeout=30)


def test_tcp_rate_limit_is_honoured(aio: Any) -> None:
    rate_bps = 80e6  # 10 MB/s
    size = 4_000_000
    arrivals: list[tuple[float, int]] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = 0
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            total += len(data)
            arrivals.append((time.perf_counter(), total))
        writer.write(struct.pack(">Q", total))
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with (
            tcp_server(sink) as target,
            DelayProxy(target, rtt=0.010, rate_bps=rate_bps) as proxy,
            connection(proxy.tcp_address) as (reader, writer),
        ):
            writer.write(os.urandom(size))
            await writer.drain()
            writer.write_eof()
            assert struct.unpack(">Q", await reader.readexactly(8))[0] == size
            assert await reader.read() == b""
            # Rate between the first and the last arrival (the first chunk's own
            # serialization is not in that interval: count only the bytes after it).
            (t0, n0), (t1, n1) = arrivals[0], arrivals[-1]
            measured = (n1 - n0) * 8 / (t1 - t0)
            assert 0.75 * rate_bps <= measured <= 1.08 * rate_bps, measured / 1e6
            assert proxy.link_up.stats.bytes == size

    aio(main, timeout=30)


def test_tcp_order_and_half_close(aio: Any) -> None:
    """Bytes arrive in order and a FIN arrives after them, each way, through half-closes."""
    payload = os.urandom(3 << 20)
    reply = os.urandom(1 << 20)

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's FIN
        writer.write(hashlib.sha256(data).digest() + struct.pack(">Q", len(data)))
        writer.write(reply)  # still allowed: only the client's half is closed
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with (
            tcp_server(server) as target,
            DelayProxy(target, rtt=0.010, rate_bps=400e6) as proxy,
            connection(proxy.tcp_address) as (reader, writer),
        ):
            for i in range(0, len(payload), 100_000):  # many small writes
                writer.write(payload[i : i + 100_000])
            await writer.drain()
            start = time.perf_counter()
            writer.write_eof()
            head = await reader.readexactly(40)
            assert head[:32] == hashlib.sha256(payload).digest()
            assert struct.unpack(">Q", head[32:])[0] == len(payload)
            assert await reader.read() == reply  # then EOF
            assert time.perf_counter() - start >= 0.009  # the FIN took the delay too
        # both sockets of the relay are closed once both FINs went through
        for _ in range(100):
            if proxy.connections == 0:
                break
            await asyncio.sleep(0.01)

    aio(main, timeout=30)


def test_tcp_reset_is_forwarded_both_ways(aio: Any) -> None:
    rtt = 0.020

    async def resetting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        _rst(writer)

    async def main() -> None:
        # the target resets: the client sees a reset (not a clean EOF) after the delay
        async with (
            tcp_server(resetting) as target,
            DelayProxy(target, rtt=rtt) as proxy,
            connection(proxy.tcp_address) as (reader, writer),
        ):
            start = time.perf_counter()
            writer.write(b"x")
            with pytest.raises(ConnectionResetError):
                while await reader.read(1024):
                    pass
            assert time.perf_counter() - start >= rtt * 0.9

        # the client resets: the target sees a reset
        seen: asyncio.Future[BaseException | bytes] = asyncio.get_running_loop().create_future()

        async def watching(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                data = await reader.read()
            except ConnectionResetError as exc:
                seen.set_result(exc)
            else:
                seen.set_result(data)
            finally:
                writer.close()

        async with tcp_server(watching) as target, DelayProxy(target, rtt=rtt) as proxy:
            reader, writer = await asyncio.open_connection(*proxy.tcp_address)
            writer.write(b"hello")
            await writer.drain()
            await asyncio.sleep(rtt)  # the target connection exists and got the bytes
            _rst(writer)
            result = await asyncio.wait_for(seen, 5)
            assert isinstance(result, ConnectionResetError), result

    aio(main, timeout=30)


def test_target_refusing_resets_the_client(aio: Any) -> None:
    async def main() -> None:
        with socket.socket() as s:  # a port with nothing listening
            s.bind((LOCAL, 0))
            port = s.getsockname()[1]
        async with (
            DelayProxy((LOCAL, port), rtt=0.010) as proxy,
            connection(proxy.tcp_address) as (reader, _writer),
        ):
            with pytest.raises(ConnectionResetError):
                await reader.read(1)

    aio(main, timeout=30)


def test_udp_datagrams_are_delayed(aio: Any) -> None:
    rtt = 0.030

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data, addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.queue.put_nowait((time.perf_counter(), data))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo_transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(LOCAL, 0))
        client = Client()
        client_transport = None
        try:
            target = echo_transport.get_extra_info("sockname")[:2]
            async with DelayProxy(target, rtt=rtt) as proxy:
                assert proxy.udp_address is not None
                client_transport, _ = await loop.create_datagram_endpoint(
                    lambda: client, remote_addr=proxy.udp_address
                )
                samples = []
                for i in range(6):
                    start = time.perf_counter()
                    client_transport.sendto(b"d%d" % i)
                    arrived, data = await asyncio.wait_for(client.queue.get(), 5)
                    assert data == b"d%d" % i
                    samples.append(arrived - start)
                assert rtt * 0.95 <= statistics.median(samples) <= rtt + 0.025, samples
                # a burst keeps its order and all arrives
                for i in range(50):
                    client_transport.sendto(b"b%d" % i)
                got = [(await asyncio.wait_for(client.queue.get(), 5))[1] for _ in range(50)]
                assert got == [b"b%d" % i for i in range(50)]
                assert proxy.udp_sessions == 1
        finally:
            if client_transport is not None:
                client_transport.close()
            echo_transport.close()
            await asyncio.sleep(0)

    aio(main, timeout=30)


class _UdpPeer(asyncio.DatagramProtocol):
    """A UDP socket that queues what it receives as (arrival time, data, source address) and,
    with ``echo``, sends every datagram back to its source, prefixed with that source's port."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.queue: asyncio.Queue[tuple[float, bytes, Any]] = asyncio.Queue()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((time.perf_counter(), data, addr))
        if self.echo:
            self.transport.sendto(struct.pack(">H", addr[1]) + data, addr)

    async def get(self, timeout: float = 5.0) -> tuple[float, bytes, Any]:
        return await asyncio.wait_for(self.queue.get(), timeout)


@contextlib.asynccontextmanager
async def udp_peer(echo: bool = False, remote: Any = None) -> Any:
    """A :class:`_UdpPeer` bound to loopback (connected to ``remote`` if given); closed after."""
    loop = asyncio.get_running_loop()
    peer = _UdpPeer(echo)
    if remote is None:
        await loop.create_datagram_endpoint(lambda: peer, local_addr=(LOCAL, 0))
    else:
        await loop.create_datagram_endpoint(lambda: peer, remote_addr=remote)
    try:
        yield peer
    finally:
        peer.transport.close()
        await asyncio.sleep(0)


def _addr(peer: _UdpPeer) -> tuple[str, int]:
    return peer.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]


def test_udp_each_direction_takes_half_the_rtt(aio: Any) -> None:
    rtt = 0.040

    async def main() -> None:
        async with (
            udp_peer(echo=True) as target,
            DelayProxy(_addr(target), rtt=rtt, tcp=False) as proxy,
            udp_peer(remote=proxy.udp_address) as client,
        ):
            assert proxy.tcp_address is None
            ups, rounds = [], []
            for i in range(5):
                start = time.perf_counter()
                client.transport.sendto(b"u%d" % i)
                arrived, data, _ = await target.get()
                assert data == b"u%d" % i
                back, reply, _ = await client.get()
                assert reply[2:] == data
                ups.append(arrived - start)
                rounds.append(back - start)
            up, rnd = statistics.median(ups), statistics.median(rounds)
            assert rtt / 2 * 0.95 <= up <= rtt / 2 + 0.015, ups
            assert rtt * 0.95 <= rnd <= rtt + 0.025, rounds
            assert rnd - up >= rtt / 2 * 0.95  # the reply was delayed too
            assert proxy.link_up.stats.chunks == 5 and proxy.link_down.stats.chunks == 5

    aio(main, timeout=30)


def test_udp_session_per_client_address(aio: Any) -> None:
    """Each client address gets its own socket towards the target; replies go back to the
    client that sent the request, and only to it."""

    async def main() -> None:
        async with (
            udp_peer(echo=True) as target,
            DelayProxy(_addr(target), rtt=0.010, tcp=False) as proxy,
            udp_peer(remote=proxy.udp_address) as a,
            udp_peer(remote=proxy.udp_address) as b,
        ):
            seen_by_target = {}
            for round_ in range(3):
                for name, client in (("a", a), ("b", b)):
                    client.transport.sendto(b"%s%d" % (name.encode(), round_))
                for name, client in (("a", a), ("b", b)):
                    _, reply, _ = await client.get()
                    (port,) = struct.unpack(">H", reply[:2])
                    assert reply[2:] == b"%s%d" % (name.encode(), round_)
                    seen_by_target.setdefault(name, set()).add(port)
            # one stable upstream address per client, a different one for each client
            assert len(seen_by_target["a"]) == 1 and len(seen_by_target["b"]) == 1
            assert seen_by_target["a"] != seen_by_target["b"]
            assert {_addr(a)[1], _addr(b)[1]}.isdisjoint(seen_by_target["a"] | seen_by_target["b"])
            assert proxy.udp_sessions == 2
            assert a.queue.empty() and b.queue.empty()  # nothing crossed over

    aio(main, timeout=30)


def test_udp_rate_limit_and_bounded_queue(aio: Any) -> None:
    """With a rate, datagrams leave one serialization time apart; a burst beyond the queue bound
    is dropped (not queued without bound), and what gets through keeps its order."""
    rate_bps = 8e6  # 1 MB/s: a 1000-byte datagram takes 1 ms
    queue_bytes = 20_000

    async def main() -> None:
        async with (
            udp_peer() as target,
            DelayProxy(
                _addr(target), rtt=0.010, rate_bps=rate_bps, tcp=False, queue_bytes=queue_bytes
            ) as proxy,
            udp_peer(remote=proxy.udp_address) as client,
        ):
            # 60 datagrams: well within the proxy socket's receive buffer (the kernel would
            # drop a much larger burst before the proxy sees it)
            sent_at = time.perf_counter()
            for i in range(60):
                client.transport.sendto(struct.pack(">I", i) + bytes(996))
            dropped = 0
            for _ in range(200):  # until the proxy has seen all 60 (bounded)
                stats = proxy.link_up.stats
                dropped = stats.datagrams_dropped
                if stats.chunks + dropped >= 60:
                    break
                await asyncio.sleep(0.01)
            passed = proxy.link_up.stats.chunks
            assert passed + dropped == 60
            assert dropped >= 25, (passed, dropped)  # ~20 fit the 20 kB backlog
            assert passed >= 15, (passed, dropped)
            arrivals = [await target.get() for _ in range(passed)]
            order = [struct.unpack(">I", data[:4])[0] for _, data, _ in arrivals]
            assert order == sorted(order)
            # the last one left the link after all of them were serialized, then took half
            # the RTT (a late timer only delays arrivals, so this lower bound is robust)
            last = arrivals[-1][0] - sent_at
            assert last >= 0.005 + 0.95 * passed * 1000 * 8 / rate_bps, (last, passed)
            await asyncio.sleep(0.05)
            assert target.queue.empty()  # the dropped ones never arrive

    aio(main, timeout=30)


def test_udp_idle_sessions_expire_and_the_session_limit_holds(aio: Any) -> None:
    async def main() -> None:
        async with (
            udp_peer(echo=True) as target,
            DelayProxy(
                _addr(target), rtt=0.010, tcp=False, udp_idle_timeout=0.2, max_udp_sessions=1
            ) as proxy,
            udp_peer(remote=proxy.udp_address) as a,
            udp_peer(remote=proxy.udp_address) as b,
        ):
            a.transport.sendto(b"first")
            assert (await a.get())[1][2:] == b"first"
            assert proxy.udp_sessions == 1
            # a second client address is over the limit: dropped, not queued
            b.transport.sendto(b"over")
            await asyncio.sleep(0.05)
            assert b.queue.empty()
            assert proxy.link_up.stats.datagrams_dropped == 1
            # idle for longer than the timeout: the session (and its socket) goes away
            for _ in range(100):
                if proxy.udp_sessions == 0:
                    break
                await asyncio.sleep(0.02)
            assert proxy.udp_sessions == 0
            # then a new client address gets a session
            b.transport.sendto(b"again")
            assert (await b.get())[1][2:] == b"again"
            assert proxy.udp_sessions == 1

    aio(main, timeout=30)


def test_quic_connection_through_the_udp_proxy(aio: Any) -> None:
    """Our QUIC-v1 hosts through the UDP proxy: a new connection + 1-byte echo takes at least
    two round trips (handshake, request), as rtt_count.py reports."""
    pytest.importorskip("aioquic")  # the quic extra (a test dependency)
    import aiolibp2p
    from aiolibp2p import options as o

    rtt = 0.040

    async def echo(stream: Any) -> None:
        while data := await stream.read(65536):
            await stream.write(data)
        await stream.close()

    async def main() -> None:
        server = await aiolibp2p.new_host(o.listen("/ip4/127.0.0.1/udp/0/quic-v1"))
        client = await aiolibp2p.new_host()
        try:
            server.set_stream_handler("/echo/1.0.0", echo)
            parts = str(server.full_addrs()[0]).split("/")
            async with DelayProxy((parts[2], int(parts[4])), rtt=rtt, tcp=False) as proxy:
                host, port = proxy.udp_address
                start = time.perf_counter()
                conn = await client.connect(f"/ip4/{host}/udp/{port}/quic-v1/p2p/{parts[-1]}")
                stream = await conn.new_stream(["/echo/1.0.0"])
                await stream.write(b"x")
                assert await stream.readexactly(1) == b"x"
                elapsed = time.perf_counter() - start
                assert conn.muxer == "quic-v1"
                assert 2 * rtt * 0.95 <= elapsed <= 2 * rtt + 1.0, elapsed
                assert proxy.udp_sessions == 1
                await stream.close()
                await client.close()
        finally:
            await client.close()
            await server.close()

    aio(main, timeout=60)


def test_close_with_traffic_in_flight_leaves_nothing_behind(aio: Any) -> None:
    async def main() -> None:
        async with tcp_server(_echo) as target:
            proxy = await DelayProxy(target, rtt=0.050, rate_bps=50e6).start()
            conns = [await asyncio.open_connection(*proxy.tcp_address) for _ in range(3)]
            for _, writer in conns:
                writer.write(os.urandom(1 << 20))  # in the delay lines and the backlog
            await asyncio.sleep(0.08)
            await proxy.close()
            assert proxy.connections == 0
            for reader, writer in conns:
                with contextlib.suppress(ConnectionError):
                    while await reader.read(1 << 20):
                        pass
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    aio(main, timeout=30)


def test_cli_prints_its_address_and_exits_on_stdin_eof() -> None:
    with socket.socket() as listener:
        listener.bind((LOCAL, 0))
        listener.listen()
        port = listener.getsockname()[1]
        argv = [sys.executable, str(PROXY_PATH), "--listen", f"{LOCAL}:0", "--stdin-eof-exit"]
        argv += ["--target", f"{LOCAL}:{port}", "--rtt-ms", "20", "--rate-mbit", "100"]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            info = json.loads(proc.stdout.readline())
            assert info["event"] == "listening" and info["rtt_ms"] == 20
            host, _, proxy_port = info["tcp"].rpartition(":")
            assert info["udp"]
            with socket.create_connection((host, int(proxy_port)), timeout=5) as client:
                listener.settimeout(5)
                start = time.perf_counter()
                client.sendall(b"ping")
                accepted, _ = listener.accept()
                with accepted:
                    accepted.settimeout(5)
                    assert accepted.recv(16) == b"ping"
                    assert time.perf_counter() - start >= 0.009  # half the RTT
                    accepted.sendall(b"pong")
                    assert client.recv(16) == b"pong"
            proc.stdin.close()
            assert proc.wait(timeout=15) == 0
            closed = json.loads(proc.stdout.readline())
            assert closed["event"] == "closed" and closed["up_bytes"] == 4
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()


def test_cli_udp_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
        target.bind((LOCAL, 0))
        target.settimeout(5)
        argv = [sys.executable, str(PROXY_PATH), "--no-tcp", "--stdin-eof-exit", "--rtt-ms", "20"]
        argv += ["--target", f"{LOCAL}:{target.getsockname()[1]}"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            info = json.loads(proc.stdout.readline())
            assert info["event"] == "listening" and info["tcp"] is None
            host, _, port = info["udp"].rpartition(":")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                start = time.perf_counter()
                client.sendto(b"ping", (host, int(port)))
                data, source = target.recvfrom(64)
                assert data == b"ping" and time.perf_counter() - start >= 0.009
                target.sendto(b"pong", source)
                assert client.recvfrom(64)[0] == b"pong"
                assert time.perf_counter() - start >= 0.019
            proc.stdin.close()
            assert proc.wait(timeout=15) == 0
            closed = json.loads(proc.stdout.readline())
            assert closed["up_bytes"] == 4 and closed["down_bytes"] == 4
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
