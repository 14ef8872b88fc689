#!/usr/bin/env python3
"""Ceiling: raw TCP throughput between two processes on loopback (no libp2p at all).

    python bench/e2e/raw_tcp.py [--size 1GiB] [--chunk 64KiB] [--repeat 3] [--loop uvloop]
    python bench/e2e/raw_tcp.py --pingpong 1000 [--pin] [--loop uvloop]

The server is an ``asyncio.BufferedProtocol`` reading into one 256 KiB buffer (as our
connections do) and answering 8 bytes once it has the whole size; the client writes ``--chunk``
slices of one buffer through ``transport.write`` and waits on ``pause_writing``/
``resume_writing``, the same 1 MiB high-water mark as our connections.  Timed at the client from
the first write to the server's 8-byte answer.  Prints one JSON line (median MiB/s).

``--pingpong N``: the floor under our ping RTT instead.  The server echoes every byte it gets
(``asyncio.Protocol``); the client writes 1 byte and waits (on a future) for it to come back,
``N`` times after a warm-up, and reports the RTT median/p95 and CPU microseconds per round trip of
each process (``getrusage``).  ``latency.py`` runs this in the same run as its libp2p ping.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MIB,
    Child,
    add_common_args,
    base_result,
    child_env,
    children,
    cpu_seconds,
    cpu_self,
    emit,
    fail,
    parse_size,
    pinned_env,
    run_loop,
    script_argv,
    stdin_closed_event,
    summary,
)

SCENARIO = "raw_tcp"
_U64 = struct.Struct(">Q")
_HIGH_WATER = 1 << 20


class Sink(asyncio.BufferedProtocol):
    """Reads ``u64 size`` then ``size`` bytes, answers ``u64 size``; repeats."""

    def __init__(self) -> None:
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
        self.header = b""
        self.expect = -1
        self.got = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        start = 0
        while start < nbytes:
            if self.expect < 0:
                need = 8 - len(self.header)
                self.header += bytes(self.view[start : start + need])
                start += need
                if len(self.header) == 8:
                    (self.expect,) = _U64.unpack(self.header)
                    self.got = 0
                continue
            take = min(nbytes - start, self.expect - self.got)
            self.got += take
            start += take
            if self.got == self.expect:
                self.transport.write(_U64.pack(self.got))
                self.header, self.expect = b"", -1


class Source(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.paused = False
        self.resumed: asyncio.Future[None] | None = None
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.pending = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) >= 8:
            self.answers.put_nowait(self.pending[:8])
            self.pending = self.pending[8:]

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)

    async def send(self, size: int, chunk: int) -> None:
        payload = memoryview(bytes(chunk))
        loop = asyncio.get_running_loop()
        self.transport.write(_U64.pack(size))
        remaining = size
        while remaining:
            n = min(chunk, remaining)
            self.transport.write(payload[:n] if n < chunk else payload)
            remaining -= n
            if self.paused:
                self.resumed = loop.create_future()
                await self.resumed
        answer = await self.answers.get()
        if _U64.unpack(answer)[0] != size:
            raise RuntimeError(f"server counted {answer!r}, sent {size}")


class Echo(asyncio.Protocol):
    """Writes back every byte it receives (the ping-pong server)."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class PingPong(asyncio.Protocol):
    """The ping-pong client: ``await ping()`` writes 1 byte and waits for its echo."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("server went away"))

    async def ping(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"x")
        await self.waiter


async def pingpong_client(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    host, _, port = args.target.rpartition(":")
    transport, proto = await loop.create_connection(PingPong, host, int(port))
    try:
        for _ in range(args.ping_warmup):
            await proto.ping()
        emit({"event": "mark", "name": "start"})
        c0 = cpu_self()
        rtts = []
        for _ in range(args.pingpong):
            t0 = time.perf_counter()
            await proto.ping()
            rtts.append((time.perf_counter() - t0) * 1e6)
        cpu = cpu_self() - c0
        emit({"event": "mark", "name": "end"})
        emit({"event": "result", "rtt_us": rtts, "client_cpu_s": cpu})
    finally:
        transport.close()


async def server(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Echo if args.pingpong else Sink, "127.0.0.1", 0)
    try:
        stop = stdin_closed_event(server_command)
        port = srv.sockets[0].getsockname()[1]
        emit({"event": "listening", "addr": f"127.0.0.1:{port}"})
        await stop.wait()
    finally:
        srv.close()
        await srv.wait_closed()


def server_command(msg: dict[str, Any]) -> None:
    if msg.get("cmd") == "stats":
        emit({"event": "stats", "cpu_s": cpu_self()})


async def client(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    host, _, port = args.target.rpartition(":")
    transport, proto = await loop.create_connection(Source, host, int(port))
    try:
        await proto.send(min(args.size, 16 * MIB), args.chunk)  # warm-up
        runs, cpu = [], []
        for _ in range(args.repeat):
            emit({"event": "mark", "name": "start"})
            c0, t0 = cpu_self(), time.perf_counter()
            await proto.send(args.size, args.chunk)
            runs.append(args.size / (time.perf_counter() - t0) / MIB)
            cpu.append(cpu_self() - c0)
            emit({"event": "mark", "name": "end"})
        emit({"event": "result", "runs_mib_s": runs, "client_cpu_s": cpu})
    finally:
        transport.close()


def measure_pingpong(
    count: int,
    *,
    warmup: int = 50,
    loop: str = "uvloop",
    cpus: tuple[int | None, int | None] = (None, None),
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Run the 1-byte ping-pong (server and client processes); RTT summary and CPU per ping.

    ``cpus``: the (server, client) CPU to pin to, ``None`` for the scheduler's choice.
    """
    common = ["--loop", loop, "--pingpong", str(count), "--ping-warmup", str(warmup)]
    env = child_env("compiled")
    with children() as kids:
        srv = Child(
            script_argv(Path(__file__), *common, "--role", "server"),
            env=pinned_env(env, cpus[0]),
            name="raw-server",
        )
        kids.append(srv)
        addr = srv.read_json(30, "listening")["addr"]
        cli = Child(
            script_argv(Path(__file__), *common, "--role", "client", "--target", addr),
            env=pinned_env(env, cpus[1]),
            name="raw-client",
        )
        kids.append(cli)
        server_cpu: list[float] = []
        while True:
            msg = cli.read_json(timeout)
            if msg.get("event") == "mark":
                srv.send({"cmd": "stats"})
                server_cpu.append(srv.read_json(30, "stats")["cpu_s"])
            elif msg.get("event") == "result":
                break
    # The server's stats are read after the client's marks (it is idle then: nothing to echo).
    return {
        "rtt_us": {k: round(v, 3) for k, v in summary(msg["rtt_us"]).items()},
        "client_cpu_us_per_ping": round(msg["client_cpu_s"] / count * 1e6, 3),
        "server_cpu_us_per_ping": round((server_cpu[1] - server_cpu[0]) / count * 1e6, 3),
    }


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    if args.pingpong:
        result.update({"mode": "pingpong", "pings": args.pingpong, "pinned": args.pin})
        try:
            cpus = (0, 1) if args.pin else (None, None)
            result.update(
                measure_pingpong(
                    args.pingpong,
                    warmup=args.ping_warmup,
                    loop=args.loop,
                    cpus=cpus,
                    timeout=args.timeout,
                )
            )
        except Exception as exc:
            return fail(SCENARIO, args, exc)
        emit(result)
        return 0
    result.update(
        {"size": args.size, "chunk": args.chunk, "repeat": args.repeat, "pinned": args.pin}
    )
    common = ["--loop", args.loop, "--size", str(args.size), "--chunk", str(args.chunk)]
    env = child_env("compiled")
    try:
        with children() as kids:
            srv = Child(
                script_argv(Path(__file__), *common, "--role", "server"),
                env=pinned_env(env, 0 if args.pin else None),
            )
            kids.append(srv)
            addr = srv.read_json(30, "listening")["addr"]
            cli = Child(
                script_argv(
                    Path(__file__),
                    *common,
                    "--role",
                    "client",
                    "--target",
                    addr,
                    "--repeat",
                    str(args.repeat),
                ),
                env=pinned_env(env, 1 if args.pin else None),
                name="client",
            )
            kids.append(cli)
            server_cpu, start = [], 0.0
            while True:
                msg = cli.read_json(args.timeout)
                if msg.get("event") == "mark":
                    now = cpu_seconds(srv.pid)
                    if msg["name"] == "start":
                        start = now
                    else:
                        server_cpu.append(now - start)
                elif msg.get("event") == "result":
                    break
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    runs = msg["runs_mib_s"]
    result.update(
        {
            "mib_s": statistics.median(runs),
            "gbit_s": statistics.median(runs) * MIB * 8 / 1e9,
            "runs_mib_s": [round(r, 1) for r in runs],
            "client_cpu_s": round(statistics.median(msg["client_cpu_s"]), 3),
            "server_cpu_s": round(statistics.median(server_cpu), 3),
        }
    )
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--chunk", type=parse_size, default=64 * 1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, client on CPU 1")
    parser.add_argument(
        "--pingpong", type=int, default=0, help="1-byte round trips instead of throughput"
    )
    parser.add_argument("--ping-warmup", type=int, default=50)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.impl = None  # no libp2p involved
    if args.role == "server":
        run_loop(lambda: server(args), args.loop, 24 * 3600.0)
        return 0
    if args.role == "client":
        main_ = pingpong_client if args.pingpong else client
        run_loop(lambda: main_(args), args.loop, args.timeout)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
