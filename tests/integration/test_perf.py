"""``/perf/1.0.0`` between real hosts over loopback TCP, and the ``aiolibp2p perf`` command.

The host tests run on asyncio and uvloop (the ``aio`` fixture: no task, timer or socket may be
left behind).  The CLI tests run ``python -m aiolibp2p`` as real subprocesses, read with
timeouts and killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import aiolibp2p
from aiolibp2p import options as o
from aiolibp2p.config import MPLEX, YAMUX
from aiolibp2p.core.errors import (
    ConfigError,
    LocalProtocolError,
    ProtocolNotSupported,
    StreamResetError,
)
from aiolibp2p.net.services.perf import PerfHandler, perf
from aiolibp2p.proto.perf import MAX_U64, PROTOCOL_ID, encode_request

LOCAL = "/ip4/127.0.0.1/tcp/0"
MIB = 1024 * 1024
MUXERS = [YAMUX, MPLEX]


@contextlib.asynccontextmanager
async def hosts(
    muxer: str = YAMUX, *server_options: o.Option
) -> AsyncIterator[tuple[aiolibp2p.Host, aiolibp2p.Host, PerfHandler]]:
    """A client host and a perf-serving host (with an inspectable handler), both closed after."""
    client = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
    server = await aiolibp2p.new_host(
        o.listen(LOCAL), o.muxers(muxer), o.services(perf=True), *server_options
    )
    handler = PerfHandler(max_send_bytes=server.config.max_perf_bytes)
    server.set_stream_handler(PROTOCOL_ID, handler)
    try:
        yield client, server, handler
    finally:
        await client.close()
        await server.close()


async def until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    """Wait (bounded) for a condition the test cannot await directly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("muxer", MUXERS)
@pytest.mark.parametrize(
    ("up", "down"),
    [(0, 0), (1, 1), (3 * MIB + 5, 0), (0, 3 * MIB + 5), (MIB + 1, 2 * MIB - 1)],
    ids=["zero", "one-byte", "upload-only", "download-only", "both"],
)
def test_perf_byte_counts(aio: Any, muxer: str, up: int, down: int) -> None:
    async def main() -> None:
        async with hosts(muxer) as (client, server, handler):
            result = await perf(
                client, server.full_addrs()[0], upload_bytes=up, download_bytes=down, timeout=30
            )
            assert (result.upload_bytes, result.download_bytes) == (up, down)
            assert 0 < result.time_seconds < 30
            await until(lambda: len(handler.completed) == 1, "the server to finish")
            seen = handler.completed[0]
            assert (seen.requested, seen.uploaded, seen.sent) == (down, up, down)
            assert seen.peer == client.peer_id
            assert (handler.active, handler.aborted, handler.failed) == (0, 0, 0)

    aio(main, timeout=60)


@pytest.mark.parametrize("muxer", MUXERS)
def test_perf_10_mib_each_way_on_one_connection(aio: Any, muxer: str) -> None:
    async def main() -> None:
        async with hosts(muxer) as (client, server, handler):
            conn = await client.connect(server.full_addrs()[0])
            for _ in range(2):  # the same connection (passed in), twice
                result = await perf(
                    client, conn, upload_bytes=10 * MIB, download_bytes=10 * MIB, timeout=30
                )
                assert (result.upload_bytes, result.download_bytes) == (10 * MIB, 10 * MIB)
            await until(lambda: len(handler.completed) == 2, "both exchanges")
            for seen in handler.completed:
                assert (seen.uploaded, seen.sent) == (10 * MIB, 10 * MIB)
            assert client.connections(server.peer_id) == [conn]

    aio(main, timeout=60)


def test_server_sends_nothing_before_the_upload_ends(aio: Any) -> None:
    """The reply must not overlap the upload: no byte arrives until we close our write side."""

    async def main() -> None:
        async with hosts() as (client, server, handler):
            stream = await client.new_stream(server.full_addrs()[0], [PROTOCOL_ID])
            await stream.write(encode_request(MIB))
            for _ in range(3):
                await stream.write(bytes(100_000))
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(stream.read(1), 0.2)
            assert handler.active == 1
            await stream.close()
            got = 0
            while chunk := await asyncio.wait_for(stream.read(1 << 20), 10):
                got += len(chunk)
            assert got == MIB
            await until(lambda: len(handler.completed) == 1, "the server to finish")
            assert handler.completed[0].uploaded == 300_000

    aio(main, timeout=30)


@pytest.mark.parametrize("muxer", MUXERS)
def test_client_reset_mid_download_ends_the_handler_quietly(
    aio: Any, muxer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The timer variant: ask for 2**64 - 1 bytes, reset after a while."""
    caplog.set_level(logging.DEBUG, logger="aiolibp2p")

    async def main() -> None:
        async with hosts(muxer) as (client, server, handler):
            stream = await client.new_stream(server.full_addrs()[0], [PROTOCOL_ID])
            await stream.write(encode_request(MAX_U64))
            await stream.close()
            got = 0
            while got < 4 * MIB:
                chunk = await asyncio.wait_for(stream.read(1 << 20), 10)
                assert chunk
                got += len(chunk)
            await stream.reset()
            await until(lambda: handler.active == 0, "the handler to end")
            assert (handler.aborted, handler.failed, len(handler.completed)) == (1, 0, 0)
            # the connection is fine: another run on it works
            result = await perf(
                client, server.peer_id, upload_bytes=10, download_bytes=10, timeout=10
            )
            assert result.download_bytes == 10

            # and the timer variant through perf() itself: its timeout resets the stream
            with pytest.raises(asyncio.TimeoutError):
                await perf(client, server.peer_id, upload_bytes=0, download_bytes=MAX_U64,
                           timeout=0.3)  # fmt: skip
            await until(lambda: handler.active == 0, "the second handler to end")
            assert handler.aborted == 2

            # a connection closed mid-download ends it too
            stream = await client.new_stream(server.peer_id, [PROTOCOL_ID])
            await stream.write(encode_request(MAX_U64))
            await stream.close()
            assert await asyncio.wait_for(stream.read(1 << 16), 10)
            await client.disconnect(server.peer_id)
            await until(lambda: handler.active == 0, "the third handler to end")
            assert handler.aborted == 3

    aio(main, timeout=60)
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not loud, [r.getMessage() for r in loud]


@pytest.mark.parametrize("muxer", MUXERS)
def test_perf_is_off_by_default(aio: Any, muxer: str) -> None:
    async def main() -> None:
        a = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
        b = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer))
        try:
            assert not a.config.perf
            assert PROTOCOL_ID not in b.protocols()
            with pytest.raises(ProtocolNotSupported):
                await perf(a, b.full_addrs()[0], upload_bytes=10, download_bytes=10, timeout=10)
            # services() leaves it off unless asked
            c = await aiolibp2p.new_host(o.listen(LOCAL), o.services(ping=False))
            d = await aiolibp2p.new_host(o.listen(LOCAL), o.muxers(muxer), o.services(perf=True))
            try:
                assert PROTOCOL_ID not in c.protocols()
                assert PROTOCOL_ID in d.protocols()
                result = await perf(a, d.full_addrs()[0], upload_bytes=5, download_bytes=7)
                assert (result.upload_bytes, result.download_bytes) == (5, 7)
                info = await a.identify(d.peer_id)
                assert PROTOCOL_ID in info.protocols
            finally:
                await c.close()
                await d.close()
        finally:
            await a.close()
            await b.close()

    aio(main, timeout=30)


def test_server_cap_refuses_larger_requests(aio: Any) -> None:
    async def main() -> None:
        async with hosts(YAMUX, o.limits(max_perf_bytes=1000)) as (client, server, handler):
            assert handler.max_send_bytes == 1000
            ok = await perf(client, server.full_addrs()[0], upload_bytes=0, download_bytes=1000)
            assert ok.download_bytes == 1000
            with pytest.raises(StreamResetError):
                await perf(client, server.peer_id, upload_bytes=10, download_bytes=1001, timeout=10)
            await until(lambda: handler.refused == 1, "the refusal")
            assert handler.active == 0

    aio(main, timeout=30)


def test_truncated_request_resets_the_stream(aio: Any) -> None:
    async def main() -> None:
        async with hosts() as (client, server, handler):
            stream = await client.new_stream(server.full_addrs()[0], [PROTOCOL_ID])
            await stream.write(b"\x00\x01\x02")
            await stream.close()
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(stream.read(-1), 10)
            await until(lambda: handler.failed == 1, "the server to fail the stream")
            assert handler.active == 0

    aio(main, timeout=30)


def test_bad_arguments_and_config() -> None:
    with pytest.raises(ConfigError):
        aiolibp2p.build_config(o.limits(max_perf_bytes=-1))
    with pytest.raises(ConfigError):
        aiolibp2p.build_config(o.limits(max_perf_bytes=1 << 64))
    assert aiolibp2p.build_config().max_perf_bytes == MAX_U64
    with pytest.raises(LocalProtocolError):
        PerfHandler(max_send_bytes=-1)


def test_perf_rejects_bad_counts(aio: Any) -> None:
    async def main() -> None:
        async with hosts() as (client, server, handler):
            with pytest.raises(LocalProtocolError):
                await perf(client, server.full_addrs()[0], upload_bytes=-1, download_bytes=0)
            assert handler.active == 0

    aio(main, timeout=30)


# ------------------------------------------------------------------------------------- CLI

START_TIMEOUT = 30.0


def _pump(pipe: IO[str], sink: queue.Queue[str | None]) -> None:
    for line in pipe:
        sink.put(line.rstrip("\n"))
    sink.put(None)


@contextlib.contextmanager
def cli_node(tmp_path: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    """``aiolibp2p node --listen 127.0.0.1:0 ARGS``: yields (its first address, its stderr)."""
    env = dict(os.environ, AIOLIBP2P_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolibp2p", "node", "--listen", LOCAL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True),
    ]
    for thread in threads:
        thread.start()
    stderr: list[str] = []
    try:
        try:
            addr = out.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise AssertionError("the node printed no address") from None
        assert addr is not None and "/p2p/" in addr, addr
        for _ in range(100):  # until it says it runs (bounded)
            line = err.get(timeout=START_TIMEOUT)
            if line is None:
                raise AssertionError("the node exited before running")
            stderr.append(line)
            if "running" in line:
                break
        yield addr, stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
        while True:
            try:
                line = err.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                stderr.append(line)


def run_cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AIOLIBP2P_HOME=str(tmp_path / "client-home"))
    return subprocess.run(
        [sys.executable, "-m", "aiolibp2p", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def final_lines(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    for line in lines:
        assert set(line) == {"type", "timeSeconds", "uploadBytes", "downloadBytes"}, line
        assert line["type"] == "final"
        assert isinstance(line["timeSeconds"], float) and line["timeSeconds"] > 0
    return lines


@pytest.mark.parametrize("new_connection", [True, False], ids=["new-connection", "one-connection"])
def test_cli_node_perf_and_perf_client(tmp_path: Path, new_connection: bool) -> None:
    with cli_node(tmp_path, "--perf") as (addr, stderr):
        assert any("/perf/1.0.0" in line for line in stderr), stderr
        extra = ["--new-connection"] if new_connection else []
        out = run_cli(
            tmp_path,
            "perf",
            addr,
            "--upload-bytes",
            "1" if new_connection else str(3 * MIB),
            "--download-bytes",
            "1" if new_connection else str(2 * MIB + 1),
            "--iterations",
            "3",
            *extra,
        )
        assert out.returncode == 0, out.stderr
        lines = final_lines(out.stdout)
        assert len(lines) == 3
        want = (1, 1) if new_connection else (3 * MIB, 2 * MIB + 1)
        for line in lines:
            assert (line["uploadBytes"], line["downloadBytes"]) == want
        assert "Traceback" not in out.stderr


def test_cli_perf_errors(tmp_path: Path) -> None:
    with cli_node(tmp_path) as (addr, _stderr):  # no --perf
        out = run_cli(tmp_path, "perf", addr, "--upload-bytes", "1", "--download-bytes", "1")
        assert out.returncode == 1
        assert out.stdout == ""
        assert "does not serve /perf/1.0.0" in out.stderr and "--perf" in out.stderr
        assert "Traceback" not in out.stderr
    # nobody listens there any more
    out = run_cli(tmp_path, "perf", addr, "--upload-bytes", "1", "--download-bytes", "1")
    assert out.returncode == 1
    assert out.stderr.startswith("aiolibp2p: error:") and "Traceback" not in out.stderr
    # no peer id in the address
    out = run_cli(tmp_path, "perf", "/ip4/127.0.0.1/tcp/1", "--upload-bytes", "1",
                  "--download-bytes", "1")  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    # argument errors: argparse's exit code 2
    for bad in (
        ["--upload-bytes", "-1", "--download-bytes", "1"],
        ["--upload-bytes", "1", "--download-bytes", str(1 << 64)],
        ["--upload-bytes", "x", "--download-bytes", "1"],
        ["--upload-bytes", "1", "--download-bytes", "1", "--iterations", "0"],
        ["--upload-bytes", "1"],
    ):
        out = run_cli(tmp_path, "perf", addr, *bad)
        assert out.returncode == 2, (bad, out.stderr)
        assert "Traceback" not in out.stderr
