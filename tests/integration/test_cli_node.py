"""``aiolibp2p node`` and ``aiolibp2p ping`` as real subprocesses (``python -m aiolibp2p``).

Every process is started by :class:`Node` or :func:`run_cli`, read with timeouts (a reader
thread per pipe, never a blocking ``readline`` in the test), and killed in ``finally`` if it is
still running.  ``AIOLIBP2P_HOME`` always points into the test's tmp dir, so no run touches the
user's data directory; ``AIOLIBP2P_NO_EXTENSIONS`` is inherited, so the pure build is covered
when the suite runs with it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FULL_ADDR = re.compile(r"^/(ip4|ip6)/([^/]+)/tcp/(\d+)/p2p/(12D3KooW[1-9A-HJ-NP-Za-km-z]+)$")
#: A default listen line: TCP or QUIC-v1.
ANY_ADDR = re.compile(
    r"^/(ip4|ip6)/([^/]+)/(tcp|udp)/(\d+)(/quic-v1)?/p2p/(12D3KooW[1-9A-HJ-NP-Za-km-z]+)$"
)
RTT_LINE = re.compile(r"^ping (\d+): \d+\.\d+ ms$")
#: Generous for a loaded 2-core machine; a healthy run takes a fraction of it.
START_TIMEOUT = 30.0
EXIT_TIMEOUT = 5.0


def cli_env(home: Path) -> dict[str, str]:
    return dict(os.environ, AIOLIBP2P_HOME=str(home), PYTHONUNBUFFERED="1")


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiolibp2p", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def peer_id_of(identity: Path | None, env: dict[str, str]) -> str:
    """What ``aiolibp2p id`` says for ``identity`` (the default identity when ``None``)."""
    args = ["id"] if identity is None else ["id", "--identity", str(identity)]
    out = run_cli(*args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class Proc:
    """A running ``aiolibp2p`` command; its output is read by two threads into queues."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiolibp2p", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._out: queue.Queue[str | None] = queue.Queue()
        self._err: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.stdout, self._out)),
            threading.Thread(target=_pump, args=(self.proc.stderr, self.stderr, self._err)),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def next_stdout_line(self, timeout: float) -> str | None:
        """The next stdout line (``None`` at EOF); AssertionError after ``timeout`` s."""
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output after {timeout} s: {self.stderr}") from None

    def wait_running(self, timeout: float = START_TIMEOUT) -> None:
        """Until the node says it runs (after its listeners and signal handlers are up)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"node not running after {timeout} s: {self.stderr}")
            try:
                line = self._err.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"node exited before running: {self.stderr}")
            if "running" in line:
                return

    def addresses(self, expected: int | None = None, timeout: float = START_TIMEOUT) -> list[str]:
        """The addresses printed on stdout: ``expected`` lines, or (``None``) every line that
        arrives by the time stdout has been quiet for a moment after the node runs."""
        self.wait_running(timeout)
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while expected is None or len(lines) < expected:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {expected} address lines, got {lines}")
            try:
                line = self._out.get(timeout=min(left, 0.5 if expected is None else left))
            except queue.Empty:
                if expected is None:
                    break  # printed before "running": all of it has arrived by now
                continue
            if line is None:
                break
            lines.append(line)
        return lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT) -> tuple[int, float]:
        """Send ``sig``; return the exit code and how long the exit took."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        elapsed = time.monotonic() - start
        for thread in self._threads:
            thread.join(timeout=5)
        return code, elapsed

    def kill(self) -> None:
        """Make sure the process is gone and its pipes are closed (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _pump(pipe: object, sink: list[str], lines: queue.Queue[str | None]) -> None:
    try:
        for raw in pipe:  # type: ignore[attr-defined]
            line = raw.rstrip("\n")
            sink.append(line)
            lines.put(line)
    except ValueError:  # the pipe was closed under us by kill()
        pass
    finally:
        lines.put(None)


@contextlib.contextmanager
def running(*args: str, env: dict[str, str]) -> Iterator[Proc]:
    """``aiolibp2p <args>`` started; killed on exit if it is still running."""
    started = Proc(*args, env=env)
    try:
        yield started
    finally:
        started.kill()


def node(*args: str, env: dict[str, str]) -> contextlib.AbstractContextManager[Proc]:
    return running("node", *args, env=env)


def assert_clean_exit(n: Proc, code: int, elapsed: float) -> None:
    stderr = "\n".join(n.stderr)
    assert code == 0, stderr
    assert elapsed < EXIT_TIMEOUT
    assert "shutting down" in stderr
    assert "Traceback" not in stderr, stderr


def free_port(host: str = "127.0.0.1", family: int = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ipv6_loopback_reason() -> str | None:
    """Why IPv6 loopback cannot be used here (``None`` when it can)."""
    if not socket.has_ipv6:
        return "Python was built without IPv6 support (socket.has_ipv6 is False)"
    try:
        free_port("::1", socket.AF_INET6)
    except OSError as exc:
        return f"cannot bind [::1]: {exc}"
    return None


# ------------------------------------------------------------------------------------- tests


def test_node_prints_its_full_listen_address(tmp_path: Path) -> None:
    """One line per listen address, ``/ip4/127.0.0.1/tcp/<port>/p2p/<id>``, where the id is the
    one ``aiolibp2p id`` gives for the same key file."""
    env = cli_env(tmp_path / "home")
    key = tmp_path / "key"
    with node("--listen", "/ip4/127.0.0.1/tcp/0", "--identity", str(key), env=env) as n:
        (line,) = n.addresses(expected=1)
        match = FULL_ADDR.match(line)
        assert match, line
        family, ip, port, peer = match.groups()
        assert (family, ip) == ("ip4", "127.0.0.1")
        assert 0 < int(port) < 65536
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert peer == peer_id_of(key, env)
        code, elapsed = n.stop()
        assert_clean_exit(n, code, elapsed)
        assert n.stdout == [line]  # nothing else on stdout, ever


def test_ping_a_running_node(tmp_path: Path) -> None:
    """``aiolibp2p ping <addr> -n 3`` exits 0 with three RTT lines."""
    env = cli_env(tmp_path / "home")
    with node("--listen", "/ip4/127.0.0.1/tcp/0", "--identity", str(tmp_path / "k"), env=env) as n:
        (addr,) = n.addresses(expected=1)
        peer = addr.rsplit("/", 1)[1]
        out = run_cli("ping", addr, "-n", "3", "--interval", "0.05", env=env)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        lines = out.stdout.splitlines()
        rtts = [m for m in map(RTT_LINE.match, lines) if m]
        assert [int(m.group(1)) for m in rtts] == [1, 2, 3], lines
        assert lines[0].startswith(f"connected to {peer} ")
        assert lines[-1].startswith("3 pings: min ")
        code, elapsed = n.stop()
        assert_clean_exit(n, code, elapsed)


@pytest.mark.parametrize("with_peer", [False, True], ids=["idle", "peer-connected"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_node_exits_cleanly_on_signal(tmp_path: Path, sig: int, with_peer: bool) -> None:
    """SIGTERM and SIGINT each stop the node within seconds: exit 0, "shutting down" on
    stderr, no traceback; also while a peer is connected and pinging it."""
    env = cli_env(tmp_path / "home")
    with node("--listen", "/ip4/127.0.0.1/tcp/0", "--identity", str(tmp_path / "k"), env=env) as n:
        (addr,) = n.addresses(expected=1)
        with contextlib.ExitStack() as stack:
            client = None
            if with_peer:
                ping = ["ping", addr, "-n", "1000", "--interval", "0.05", "--timeout", "5"]
                client = stack.enter_context(running(*ping, env=env))
                first = client.next_stdout_line(START_TIMEOUT)
                assert first is not None and first.startswith("connected to "), client.stderr
                assert client.next_stdout_line(START_TIMEOUT) is not None  # a ping went through
            code, elapsed = n.stop(sig)
            assert_clean_exit(n, code, elapsed)
            if client is not None:
                assert client.proc.wait(timeout=30) != 0  # its peer went away mid-run
                client.kill()  # joins the readers
                err = "\n".join(client.stderr)
                assert "aiolibp2p: error:" in err and "Traceback" not in err, err


def _check_default_listen(n: Proc, env: dict[str, str]) -> tuple[set[int], list[str]]:
    """The default listen addresses: TCP and QUIC-v1 (aioquic is installed for the tests),
    concrete (no wildcard), with 127.0.0.1, the default identity's id.  Returns the IPv4 ports
    (TCP and UDP) and the lines."""
    lines = n.addresses()
    assert lines, n.stderr
    ports4: set[int] = set()
    tcp4: set[int] = set()
    quic4: set[int] = set()
    peers = set()
    for line in lines:
        match = ANY_ADDR.match(line)
        assert match, line
        family, ip, kind, port, quic, peer = match.groups()
        assert (kind == "udp") == (quic is not None), line
        peers.add(peer)
        assert ip not in ("0.0.0.0", "::"), line
        if family == "ip4":
            ports4.add(int(port))
            (tcp4 if kind == "tcp" else quic4).add(int(port))
            with socket.socket() as probe:  # a concrete address of this machine: bindable
                probe.bind((ip, 0))
    assert any(line.startswith("/ip4/127.0.0.1/tcp/") for line in lines), lines
    assert any(line.startswith("/ip4/127.0.0.1/udp/") for line in lines), lines
    # one IPv4 listener per transport, printed once per interface
    assert len(tcp4) == 1 and len(quic4) == 1, lines
    home = Path(env["AIOLIBP2P_HOME"])
    key = home / "identity.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert peers == {peer_id_of(None, env)}
    return ports4, lines


def test_default_listen_uses_port_4001(tmp_path: Path) -> None:
    """With no --listen the node takes port 4001 on every interface when it is free."""
    try:
        with socket.socket() as probe, socket.socket(type=socket.SOCK_DGRAM) as udp_probe:
            probe.bind(("0.0.0.0", 4001))
            udp_probe.bind(("0.0.0.0", 4001))
    except OSError as exc:
        pytest.skip(f"port 4001 is in use on this machine ({exc}); the fallback test covers it")
    env = cli_env(tmp_path / "home")
    with node(env=env) as n:
        ports, lines = _check_default_listen(n, env)
        if ports != {4001}:
            with socket.socket() as probe:
                try:
                    probe.bind(("0.0.0.0", 4001))
                except OSError:
                    pytest.skip("another process took port 4001 between our probe and the node")
        assert ports == {4001}, lines
        for prefix in ("/ip4/127.0.0.1/tcp/", "/ip4/127.0.0.1/udp/"):  # TCP and QUIC answer
            local = next(line for line in lines if line.startswith(prefix))
            out = run_cli("ping", local, "-n", "1", env=env)
            assert out.returncode == 0, out.stderr
        code, elapsed = n.stop()
        assert_clean_exit(n, code, elapsed)


def test_default_listen_falls_back_when_4001_is_taken(tmp_path: Path) -> None:
    """With 0.0.0.0:4001 taken, the node listens on a free port instead, still printing
    concrete interface addresses (127.0.0.1 among them) that work."""
    blocker = socket.socket()
    try:
        try:
            blocker.bind(("0.0.0.0", 4001))
            blocker.listen()
        except OSError as exc:  # someone else holds it: taken all the same
            assert exc.errno == errno.EADDRINUSE, exc
        env = cli_env(tmp_path / "home")
        with node(env=env) as n:
            ports, lines = _check_default_listen(n, env)
            assert 4001 not in ports, lines
            assert all("/4001/" not in line for line in lines), lines
            for prefix in ("/ip4/127.0.0.1/tcp/", "/ip4/127.0.0.1/udp/"):
                local = next(line for line in lines if line.startswith(prefix))
                out = run_cli("ping", local, "-n", "1", env=env)
                assert out.returncode == 0, out.stderr
            code, elapsed = n.stop()
            assert_clean_exit(n, code, elapsed)
    finally:
        blocker.close()


def test_second_listen_address_ipv6(tmp_path: Path) -> None:
    """``--listen`` twice (IPv4 and IPv6 loopback): both printed, both reachable."""
    reason = ipv6_loopback_reason()
    if reason:
        pytest.skip(reason)
    env = cli_env(tmp_path / "home")
    args = ["--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip6/::1/tcp/0"]
    with node(*args, "--identity", str(tmp_path / "k"), env=env) as n:
        lines = n.addresses(expected=2)
        matches = [FULL_ADDR.match(line) for line in lines]
        assert all(matches), lines
        kinds = sorted((m.group(1), m.group(2)) for m in matches if m)
        assert kinds == [("ip4", "127.0.0.1"), ("ip6", "::1")], lines
        assert len({m.group(4) for m in matches if m}) == 1  # one peer id
        for line in lines:
            out = run_cli("ping", line, "-n", "1", env=env)
            assert out.returncode == 0, (line, out.stderr)
            assert RTT_LINE.match(out.stdout.splitlines()[1]), out.stdout
        code, elapsed = n.stop()
        assert_clean_exit(n, code, elapsed)
        assert sorted(n.stdout) == sorted(lines)


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_ping_a_dead_address_fails_cleanly(tmp_path: Path, kind: str) -> None:
    """Nobody listening (refused), or a listener that never answers (times out): a non-zero
    exit with an error message, no traceback, within the timeout."""
    env = cli_env(tmp_path / "home")
    peer = peer_id_of(tmp_path / "other", env)
    silent = socket.socket()
    try:
        if kind == "silent":
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
        else:
            port = free_port()
        start = time.monotonic()
        out = run_cli(
            "ping", f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer}", "-n", "3", "--timeout", "2", env=env
        )
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert out.returncode != 0
    assert out.stderr.startswith("aiolibp2p: error: "), out.stderr
    assert "Traceback" not in out.stderr
    assert not RTT_LINE.search(out.stdout)
    assert elapsed < 20
