"""Shared plumbing of the end-to-end benchmarks: child processes, loops, JSON lines, /proc.

Every scenario script runs as an *orchestrator* (no aiolibp2p import, no event loop) that starts
its server and client as separate processes (``--role server`` / ``--role client`` of the same
script, or ``_node.py``), reads their JSON lines, and prints one JSON result line.  Children:

* select the build with the environment (``--impl pure`` sets ``AIOLIBP2P_NO_EXTENSIONS=1``,
  ``compiled`` clears it) and check that the twins they got are the ones asked for;
* run on uvloop or asyncio (``--loop``);
* exit when their stdin closes (the orchestrator holds it), so a dead orchestrator leaves nothing
  behind; the orchestrator also kills each child's process group in ``finally``;
* raise glibc's malloc mmap and trim thresholds, as a deployed node process would (see
  :func:`tune_malloc`; ``AIOLIBP2P_BENCH_MALLOC=default`` keeps glibc's defaults).  The library
  itself never touches the allocator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
PYTHON = sys.executable

IMPLS = ("compiled", "pure")
LOOPS = ("uvloop", "asyncio")
KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

# ------------------------------------------------------------------------------------ arguments


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"256MiB"``, ``"64KiB"``, ``"1000"`` -> bytes."""
    units = {"kib": KIB, "mib": MIB, "gib": GIB, "k": KIB, "m": MIB, "g": GIB, "b": 1}
    lowered = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * units[suffix])
    return int(lowered)


def add_common_args(parser: Any, *, default_timeout: float = 600.0) -> None:
    parser.add_argument("--impl", choices=IMPLS, default="compiled", help="twins to use")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help="event loop")
    parser.add_argument(
        "--timeout", type=float, default=default_timeout, help="bound on the whole run (s)"
    )
    parser.add_argument("--role", default="orchestrate", help=argparse_hidden())


def add_profile_args(parser: Any, *, default_out: str) -> None:
    """``--profile server|client`` and ``--profile-out`` (see :func:`profiled`)."""
    parser.add_argument(
        "--profile",
        choices=("server", "client"),
        help="run that side under py-spy ($PY_SPY or py-spy on PATH)",
    )
    parser.add_argument(
        "--profile-out",
        type=Path,
        default=Path(default_out),
        help="py-spy output (speedscope JSON; a .txt name gives collapsed stacks)",
    )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def child_env(impl: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AIOLIBP2P_NO_EXTENSIONS", None)
    if impl == "pure":
        env["AIOLIBP2P_NO_EXTENSIONS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------------------ inside children


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def check_impl(impl: str) -> dict[str, str]:
    """The twins in use; exits loudly if they are not the requested build's."""
    import aiolibp2p

    twins = aiolibp2p.accelerated()
    want = "c" if impl == "compiled" else "py"
    wrong = {k: v for k, v in twins.items() if v != want}
    if wrong:
        sys.stderr.write(f"bench: asked for the {impl} build but got twins {twins}\n")
        sys.exit(3)
    return twins


#: Environment variable a child reads to pin itself to one CPU (set by ``--pin``).
PIN_ENV = "AIOLIBP2P_BENCH_CPU"


def pinned_env(env: dict[str, str], cpu: int | None) -> dict[str, str]:
    """``env`` telling the child to pin itself to ``cpu`` (unchanged for ``None``)."""
    return env if cpu is None else {**env, PIN_ENV: str(cpu)}


#: Environment variable naming the children's malloc settings: ``tuned`` (the default) or
#: ``default`` (glibc's own).  Recorded in every result line.
MALLOC_ENV = "AIOLIBP2P_BENCH_MALLOC"


def malloc_setting() -> str:
    return "default" if os.environ.get(MALLOC_ENV, "tuned") == "default" else "tuned"


def tune_malloc() -> bool:
    """The node's malloc tuning (:func:`aiolibp2p.cli.tuning.tune_malloc`, which ``aiolibp2p
    node`` applies too), so the benchmark children run as a deployed node does."""
    from aiolibp2p.cli.tuning import tune_malloc as tune

    return tune()


def run_loop(main: Callable[[], Awaitable[Any]], loop_kind: str, timeout: float) -> Any:
    """Run ``main()`` on a fresh loop of ``loop_kind``, bounded by ``timeout`` seconds.

    Pins the process to the CPU named by ``$AIOLIBP2P_BENCH_CPU`` first, if set, and applies
    :func:`tune_malloc` unless ``$AIOLIBP2P_BENCH_MALLOC`` is ``default``.
    """
    if os.environ.get(PIN_ENV, "").isdigit():
        pin_cpu(int(os.environ[PIN_ENV]))
    if malloc_setting() == "tuned":
        tune_malloc()
    if loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def stdin_closed_event(
    on_command: Callable[[dict[str, Any]], None] | None = None,
) -> asyncio.Event:
    """An event set when our stdin reaches EOF (the orchestrator went away or is done).

    Each JSON line read before that is passed to ``on_command`` on the loop's thread.
    """
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def watch() -> None:
        with contextlib.suppress(Exception):
            while True:
                line = sys.stdin.buffer.readline()
                if not line:
                    break
                if on_command is not None and line.strip():
                    with contextlib.suppress(ValueError, RuntimeError):
                        loop.call_soon_threadsafe(on_command, json.loads(line))
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(event.set)

    threading.Thread(target=watch, daemon=True, name="stdin-watch").start()
    return event


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pin_cpu(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


# ------------------------------------------------------------------------------------- /proc


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# ------------------------------------------------------------------------------------ children


class ChildError(RuntimeError):
    pass


class Child:
    """One child process: JSON lines on stdout, stderr kept in a temp file, killed as a group."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        name: str = "child",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=str(ROOT),
            start_new_session=True,  # its own process group: killed as a whole
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.lines: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, n: int = 30) -> str:
        with contextlib.suppress(Exception):
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
            return "\n".join(text.splitlines()[-n:])
        return ""

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def read_json(self, timeout: float, event: str | None = None) -> dict[str, Any]:
        """The next JSON line (with ``"event": event`` if given; others are kept in .lines)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                if not raw.strip():
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    sys.stderr.write(f"[{self.name} stdout] {raw.decode(errors='replace')}\n")
                    continue
                self.lines.append(msg)
                if event is None or msg.get("event") == event:
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildError(
                    f"{self.name}: no {event or 'JSON'} line within {timeout:.0f} s\n"
                    f"{self.stderr_tail()}"
                )
            if self._sel.select(min(remaining, 1.0)):
                chunk = self.proc.stdout.read(65536)
                if chunk:
                    self._buf += chunk
                    continue
                if chunk == b"":  # EOF: the child exited
                    self.proc.wait(timeout=5)
                    raise ChildError(
                        f"{self.name} exited ({self.proc.returncode}) before its "
                        f"{event or 'JSON'} line\n{self.stderr_tail()}"
                    )
            elif self.proc.poll() is not None and not self._buf:
                raise ChildError(
                    f"{self.name} exited ({self.proc.returncode}) before its "
                    f"{event or 'JSON'} line\n{self.stderr_tail()}"
                )

    def close(self, grace: float = 5.0) -> int | None:
        """Close stdin (the child's cue to exit), wait ``grace`` s, then kill the group; reap."""
        proc = self.proc
        with contextlib.suppress(Exception):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
            with contextlib.suppress(Exception):
                self._sel.close()
            if proc.stdout is not None:
                proc.stdout.close()
            self._stderr.close()
        return proc.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def children() -> Iterator[list[Child]]:
    """Collects children; every one is closed (killed if need be) and reaped on exit."""
    kids: list[Child] = []
    try:
        yield kids
    finally:
        for kid in reversed(kids):
            with contextlib.suppress(Exception):
                kid.close(grace=3.0)


def script_argv(script: Path | str, *args: str) -> list[str]:
    return [PYTHON, str(script), *args]


def profiled(argv: list[str], out: Path | str | None) -> list[str]:
    """``argv`` run under ``py-spy record`` (speedscope format, native frames) into ``out``.

    py-spy is not a project dependency: ``$PY_SPY`` or ``py-spy`` on PATH (e.g. ``pip install
    py-spy`` into a throwaway venv).  ``out`` None: ``argv`` unchanged.
    """
    if out is None:
        return argv
    import shutil

    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not spy:
        raise ChildError("--profile needs py-spy: set $PY_SPY or put py-spy on PATH")
    fmt = "raw" if str(out).endswith(".txt") else "speedscope"
    return [
        spy,
        "record",
        "--native",
        "--rate",
        "250",
        "--format",
        fmt,
        "-o",
        str(out),
        "--",
        *argv,
    ]


def finish_profiled(args: Any, server: Child, client: Child) -> None:
    """With ``--profile``: close the profiled child's stdin and wait for it to exit by itself,
    so that py-spy writes its file (a killed child leaves none)."""
    if not args.profile:
        return
    child = server if args.profile == "server" else client
    if child.proc.stdin is not None:
        child.proc.stdin.close()
    child.proc.wait(timeout=120)


# ---------------------------------------------------------------------- transports, security

#: ``--transport`` -> the address a benchmark server listens on.
LISTEN_ADDRS = {"tcp": "/ip4/127.0.0.1/tcp/0", "quic": "/ip4/127.0.0.1/udp/0/quic-v1"}
TRANSPORTS = tuple(LISTEN_ADDRS)
#: ``--security`` -> protocol id (TCP only: QUIC always runs its built-in TLS 1.3).
SECURITY_IDS = {"noise": "/noise", "tls": "/tls/1.0.0"}


def add_transport_args(parser: Any) -> None:
    """``--transport tcp|quic`` and ``--security noise|tls`` (see :func:`resolve_security`)."""
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp")
    parser.add_argument(
        "--security",
        choices=tuple(SECURITY_IDS),
        default=None,
        help="TCP: noise (default) or tls; QUIC: tls (built in, the only choice)",
    )


def resolve_security(parser: Any, args: Any) -> None:
    """Fill in ``args.security``'s default for ``args.transport``; reject QUIC with Noise."""
    if args.security is None:
        args.security = "tls" if args.transport == "quic" else "noise"
    elif args.transport == "quic" and args.security != "tls":
        parser.error("QUIC has TLS 1.3 built in: --security noise applies to TCP only")


def transport_options(transport: str, security: str, *, listen: bool) -> list[Any]:
    """Host options for one transport and security (inside children: imports aiolibp2p)."""
    from aiolibp2p import options as o

    opts: list[Any] = []
    if transport == "tcp":
        opts.append(o.security(SECURITY_IDS[security]))
    if listen:
        opts.append(o.listen(LISTEN_ADDRS[transport]))
    return opts


def early_data_options(*protocols: str) -> list[Any]:
    """``early_data_protocols(*protocols)`` (QUIC 0-RTT, besides ping and identify) if this
    aiolibp2p has it; else nothing (the streams then wait for the handshake)."""
    from aiolibp2p import options as o

    option = getattr(o, "early_data_protocols", None)
    return [] if option is None else [option(*protocols)]


def set_idempotent_handler(host: Any, protocol: str, handler: Any) -> bool:
    """Serve ``protocol`` marked idempotent (may run on 0-RTT data) if the host supports the
    flag, else as a plain handler; returns whether it was marked."""
    import inspect

    if "idempotent" in inspect.signature(host.set_stream_handler).parameters:
        host.set_stream_handler(protocol, handler, idempotent=True)
        return True
    host.set_stream_handler(protocol, handler)
    return False


async def timed_echo_connect(host: Any, info: Any, protocol: str) -> tuple[Any, float, float]:
    """Connect ``host`` to ``info`` and echo one byte on a new ``protocol`` stream.

    Returns (the stream, still open, ms to connect, ms to the echoed byte).
    """
    t0 = time.perf_counter()
    conn = await host.connect(info)
    t1 = time.perf_counter()
    stream = await conn.new_stream([protocol])
    await stream.write(b"x")
    if await stream.read(1) != b"x":
        raise RuntimeError("echo returned something else")
    t2 = time.perf_counter()
    return stream, (t1 - t0) * 1e3, (t2 - t0) * 1e3


# -------------------------------------------------------------------------------------- output


def summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    p95 = ordered[min(n - 1, max(0, round(0.95 * n) - 1))]
    return {
        "median": statistics.median(ordered),
        "p95": p95,
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "n": n,
    }


def base_result(scenario: str, args: Any) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "impl": getattr(args, "impl", None),
        "loop": getattr(args, "loop", None),
        "python": sys.version.split()[0],
        "malloc": malloc_setting(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def fail(scenario: str, args: Any, error: BaseException | str) -> int:
    """Print the failure as the result line (so collectors see it) and return exit code 1."""
    result = base_result(scenario, args)
    result["error"] = str(error)
    emit(result)
    sys.stderr.write(f"{scenario}: FAILED: {error}\n")
    return 1


# ------------------------------------------------------------------------------ machine load


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def busy_fraction(interval: float = 1.0) -> float:
    """Share of all CPUs busy over the next ``interval`` seconds."""
    b0, t0 = cpu_ticks()
    time.sleep(interval)
    b1, t1 = cpu_ticks()
    return (b1 - b0) / max(1, t1 - t0)


def wait_for_quiet(
    threshold: float = 0.15, max_wait: float = 300.0, interval: float = 1.0
) -> dict[str, float]:
    """Wait until the machine is idle (< ``threshold`` busy twice in a row), ``max_wait`` at most.

    This machine may be shared: other work skews every figure.  Returns the last busy share
    seen and the seconds waited (the caller records both).
    """
    t0 = time.monotonic()
    quiet = 0
    busy = busy_fraction(interval)
    while time.monotonic() - t0 < max_wait:
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= 2:
            break
        busy = busy_fraction(interval)
    return {"busy_before": round(busy, 3), "waited_s": round(time.monotonic() - t0, 1)}
