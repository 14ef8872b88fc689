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
