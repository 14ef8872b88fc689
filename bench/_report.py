"""``bench/report``: every end-to-end benchmark in one run, then a Markdown table and a chart.

    bench/report [--quick] [--only throughput,latency,...] [--merge] [--skip-foreign]
                 [--no-chart] [--from-json bench/results/results.json]

Runs (each scenario a separate script, each with its client and server in separate processes):

* for each configuration -- our compiled build on uvloop, our pure build
  (``AIOLIBP2P_NO_EXTENSIONS=1``) on uvloop, our compiled build on plain asyncio:
  1-stream throughput (yamux and mplex), 16-stream aggregate (yamux), new connection + stream +
  1-byte echo, ping RTT, RSS per idle connection (1,000 and 10,000), RTT count through the
  63 ms proxy, single-stream throughput through the 63 ms / 1 Gbit/s proxy;
* for each configuration, TLS and QUIC (``tls``, ``quic``): 1-stream throughput over TCP + TLS 1.3
  + yamux (its ratio to TCP + Noise of the same run) and over QUIC-v1; QUIC new connection +
  stream + 1-byte echo and ping; QUIC RTT counts through the 63 ms proxy (UDP), a new connection
  and a resumed one (session ticket, 0-RTT);
* the ceilings: raw TCP between two uvloop (and two asyncio) processes, single-core
  ChaCha20-Poly1305 on 65519-byte frames (and our Noise framing against it, both builds);
* js-libp2p and py-libp2p (``bench/compare/foreign.py``, the interop peers): 1-stream
  throughput and ping.

This machine may be shared: before each scenario the runner waits (up to ``--quiet-wait`` s)
for the CPUs to be idle, and records how much CPU *other* processes used while it ran
(``/proc/stat`` minus our own children); the report prints that next to every figure.

Writes ``bench/results/results.json`` (every JSON line), ``report.md`` and ``report.png``.  The
chart needs matplotlib: if this interpreter lacks it, ``bench/.venv-chart`` is created with it
(``--no-chart`` skips; if that fails the report is Markdown only and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
E2E = BENCH / "e2e"
sys.path.insert(0, str(E2E))

from _common import cpu_ticks, wait_for_quiet  # noqa: E402

RESULTS = BENCH / "results"
CHART_VENV = BENCH / ".venv-chart"

#: configuration name -> (--impl, --loop)
CONFIGS: dict[str, tuple[str, str]] = {
    "compiled": ("compiled", "uvloop"),
    "pure": ("pure", "uvloop"),
    "asyncio": ("compiled", "asyncio"),
}
CONFIG_LABELS = {
    "compiled": "ours, compiled, uvloop",
    "pure": "ours, pure, uvloop",
    "asyncio": "ours, compiled, asyncio",
    "js": "js-libp2p",
    "py": "py-libp2p",
}
COLUMNS = ["compiled", "pure", "asyncio", "js", "py"]

#: Figures of /work/shared/research/peers.md for what the interop peers cannot measure here.
PEERS_MD = {
    "echo_ms": {"js": 19.0, "py": 20.0},
    "rss_1k": {"js": 116.0, "py": 50.0},
}

SCENARIOS = (
    "throughput",
    "throughput16",
    "latency",
    "rss",
    "rtt",
    "wan",
    "tls",
    "quic",
    "ceilings",
    "foreign",
)


@dataclass
class Run:
    key: str
    argv: list[str]
    timeout: float
    #: Set: not run, recorded as skipped for this reason.
    skip: str | None = None


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(E2E / name), *args]


def plan(args: argparse.Namespace) -> list[Run]:
    q = args.quick
    size = "64MiB" if q else "1GiB"
    wan_size = "64MiB" if q else "1GiB"
    repeat = "1" if q else "3"
    conns = "200" if q else "1000,10000"
    runs: list[Run] = []
    want = set(args.only)
    for config, (impl, loop) in CONFIGS.items():
        common = ["--impl", impl, "--loop", loop]
        if "throughput" in want:
            runs.append(
                Run(
                    f"throughput1:{config}",
                    script("throughput.py", *common, "--size", size, "--repeat", repeat),
                    3600,
                )
            )
        if "throughput16" in want:
            runs.append(
                Run(
                    f"throughput16:{config}",
                    script(
                        "throughput.py",
                        *common,
                        "--size",
                        size,
                        "--repeat",
                        repeat,
                        "--streams",
                        "16",
                        "--muxer",
                        "yamux",
                    ),
                    3600,
                )
            )
        if "latency" in want:
            extra = ["--connections", "50", "--pings", "200"] if q else []
            runs.append(Run(f"latency:{config}", script("latency.py", *common, *extra), 900))
            # ping with both processes on one vCPU: no cross-CPU wake-up of an idle vCPU
            runs.append(
                Run(
                    f"latency_same_cpu:{config}",
                    script("latency.py", *common, "--pin", "same", "--connections", "20"),
                    900,
                )
            )
        if "rss" in want:
            runs.append(
                Run(f"rss:{config}", script("rss.py", *common, "--connections", conns), 1800)
            )
        if "rtt" in want:
            runs.append(Run(f"rtt:{config}", script("rtt_count.py", *common), 300))
        if "wan" in want:
            runs.append(
                Run(f"wan:{config}", script("wan_throughput.py", *common, "--size", wan_size), 900)
            )
        if "tls" in want:
            runs.append(
                Run(
                    f"throughput_tls:{config}",
                    script(
                        "throughput.py",
                        *common,
                        "--security",
                        "tls",
                        "--muxer",
                        "yamux",
                        "--size",
                        size,
                        "--repeat",
                        repeat,
                    ),
                    3600,
                )
            )
        if "quic" in want:
            runs += quic_runs(config, common, q, repeat)
    if "ceilings" in want:
        for loop in ("uvloop", "asyncio"):
            runs.append(
                Run(
                    f"raw_tcp:{loop}",
                    script("raw_tcp.py", "--loop", loop, "--size", size, "--repeat", repeat),
                    900,
                )
            )
        for impl in ("compiled", "pure"):
            runs.append(Run(f"aead:{impl}", script("aead.py", "--impl", impl), 300))
    if "foreign" in want and not args.skip_foreign:
        foreign = BENCH / "compare" / "foreign.py"
        js_size = "64MiB" if q else "1GiB"
        py_size = "32MiB" if q else "256MiB"
        pings = "20" if q else "200"
        for stack, fsize in (("js", js_size), ("py", py_size)):
            runs.append(
                Run(
                    f"foreign:{stack}",
                    [
                        sys.executable,
                        str(foreign),
                        "--stack",
                        stack,
                        "--size",
                        fsize,
                        "--repeat",
                        repeat,
                        "--pings",
                        pings,
                    ],
                    3600,
                )
            )
    return runs


def quic_runs(config: str, common: list[str], quick: bool, repeat: str) -> list[Run]:
    """QUIC throughput, latency (if ``latency.py`` has ``--transport``) and RTT counts."""
    quic = ["--transport", "quic"]
    runs = [
        Run(
            f"throughput_quic:{config}",
            script(
                "throughput.py",
                *common,
                *quic,
                "--size",
                "64MiB" if quick else "256MiB",
                "--repeat",
                repeat,
            ),
            1800,
        )
    ]
    extra = ["--connections", "50", "--pings", "200"] if quick else []
    latency = Run(f"latency_quic:{config}", script("latency.py", *common, *quic, *extra), 900)
    if "--transport" not in (E2E / "latency.py").read_text(encoding="utf-8"):
        latency.skip = "latency.py has no --transport option yet"
    runs.append(latency)
    runs.append(Run(f"rtt_quic:{config}", script("rtt_count.py", *common, *quic), 300))
    runs.append(
        Run(f"rtt_quic_resume:{config}", script("rtt_count.py", *common, *quic, "--resume"), 300)
    )
    return runs


def run_one(run: Run, quiet_wait: float) -> dict[str, Any]:
    """Run one scenario script; its last JSON line, plus what the machine was doing meanwhile."""
    if run.skip is not None:
        print(f"report: {run.key}: skipped: {run.skip}", file=sys.stderr, flush=True)
        return {"_key": run.key, "skipped": run.skip}
    load = wait_for_quiet(max_wait=quiet_wait)
    ncpu = os.cpu_count() or 1
    hz = os.sysconf("SC_CLK_TCK")
    busy0, _ = cpu_ticks()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    print(f"report: {run.key}: {' '.join(run.argv[1:])}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(
            run.argv,
            cwd=str(ROOT),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=run.timeout,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        result: dict[str, Any] = (
            json.loads(lines[-1]) if lines else {"error": f"no JSON line: {proc.stderr[-2000:]}"}
        )
        if proc.returncode and "error" not in result:
            result["error"] = f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {run.timeout} s"}
    wall = time.monotonic() - t0
    busy1, _ = cpu_ticks()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    all_busy = (busy1 - busy0) / hz
    other = max(0.0, all_busy - ours) / max(wall * ncpu, 1e-9)
    result["_key"] = run.key
    result["_wall_s"] = round(wall, 1)
    result["_load"] = {**load, "other_cpu_share": round(other, 3)}
    status = "FAILED: " + result["error"][:300] if "error" in result else "ok"
    print(
        f"report: {run.key}: {status} ({wall:.0f} s, other load {other:.0%})",
        file=sys.stderr,
        flush=True,
    )
    return result


# ----------------------------------------------------------------------------------- extraction


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


class Figures:
    """Lookup of figures by (metric, column) from the collected results."""

    def __init__(self, results: list[dict[str, Any]]) -> None:
        self.by_key = {r["_key"]: r for r in results}

    def r(self, key: str) -> dict[str, Any] | None:
        res = self.by_key.get(key)
        return None if res is None or "error" in res or "skipped" in res else res

    def tput(self, col: str, muxer: str, direction: str, streams: int = 1) -> float | None:
        if col in ("js", "py"):
            if streams != 1:
                return None  # the peers' perf command runs one stream
            return _get(self.r(f"foreign:{col}"), "results", muxer, direction, "mib_s")
        key = f"throughput{1 if streams == 1 else 16}:{col}"
        return _get(self.r(key), "results", muxer, direction, "mib_s")

    def variant(self, col: str, variant: str, direction: str) -> float | None:
        """1-stream MiB/s of ``tls`` (TCP + TLS + yamux) or ``quic``; ours only."""
        muxer = "quic" if variant == "quic" else "yamux"
        return _get(self.r(f"throughput_{variant}:{col}"), "results", muxer, direction, "mib_s")

    def cpu_per_gib(
        self, col: str, direction: str, side: str, variant: str | None = None
    ) -> float | None:
        """CPU seconds per GiB of one side, 1 stream: TCP + Noise + yamux, or ``variant``."""
        key = f"throughput_{variant}:{col}" if variant else f"throughput1:{col}"
        res = self.r(key)
        cpu = _get(
            res, "results", "quic" if variant == "quic" else "yamux", direction, f"{side}_cpu_s"
        )
        if res is None or cpu is None:
            return None
        return cpu / (res["size"] / 2**30)

    def latency(
        self, col: str, what: str, stat: str, same_cpu: bool = False, quic: bool = False
    ) -> float | None:
        if col in ("js", "py"):
            if what == "ping_us" and stat == "median" and not same_cpu and not quic:
                return _get(self.r(f"foreign:{col}"), "results", "ping_us", "median")
            return None
        if quic:
            key = f"latency_quic:{col}"
        else:
            key = f"latency_same_cpu:{col}" if same_cpu else f"latency:{col}"
        return _get(self.r(key), what, stat)

    def rss_counts(self) -> list[str]:
        """The connection counts the RSS scenario ran with (e.g. ``["1000", "10000"]``)."""
        counts: set[str] = set()
        for key, res in self.by_key.items():
            if key.startswith("rss:") and isinstance(res.get("results"), dict):
                counts.update(res["results"])
        return sorted(counts, key=int) or ["1000", "10000"]

    def rss(self, col: str, n: str) -> float | None:
        return _get(self.r(f"rss:{col}"), "results", n, "kib_per_conn")

    def rtt(self, col: str, what: str = "rtt_count", kind: str = "") -> float | None:
        """``kind``: "" (TCP), ``quic`` (new connection) or ``quic_resume`` (resumed)."""
        return _get(self.r(f"rtt{'_' + kind if kind else ''}:{col}"), what)

    def wan(self, col: str, direction: str, what: str = "mib_s") -> float | None:
        return _get(self.r(f"wan:{col}"), "results", direction, what)

    def raw(self, loop: str = "uvloop") -> float | None:
        return _get(self.r(f"raw_tcp:{loop}"), "mib_s")

    def aead(self, impl: str, what: str) -> float | None:
        return _get(self.r(f"aead:{impl}"), what)


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 and digits <= 1:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# ------------------------------------------------------------------------------------ rendering


def render(results: list[dict[str, Any]], meta: dict[str, Any], chart: str | None) -> str:
    f = Figures(results)
    out: list[str] = []
    w = out.append
    w("# aiolibp2p end-to-end benchmarks\n")
    w(
        f"Run {meta['started']} to {meta['finished']} on {meta['machine']}; "
        f"Python {meta['python']}, uvloop {meta['uvloop']}, cryptography {meta['cryptography']}; "
        f"commit `{meta['commit']}`{' (with uncommitted changes)' if meta['dirty'] else ''}.  "
        "Client and server are separate processes on loopback; `bench/report` produced this "
        "file (`bench/results/results.json` has every raw figure).\n"
    )
    if chart:
        w(f"![chart]({chart})\n")
    else:
        w(f"_No chart: {meta.get('chart_note', 'matplotlib unavailable')}._\n")

    # ---------------------------------------------------------------- targets
    raw = f.raw("uvloop")
    up, down = f.tput("compiled", "yamux", "upload"), f.tput("compiled", "yamux", "download")
    rows: list[tuple[str, str, str, bool | None]] = []

    def check(
        label: str, value: float | None, target: str, ok: Callable[[float], bool], shown: str
    ) -> None:
        rows.append((label, target, shown, None if value is None else ok(value)))

    for d, v in (("upload", up), ("download", down)):
        r = ratio(v, raw)
        check(f"1-stream {d} / raw uvloop TCP", r, "≥ 50%", lambda x: x >= 0.5, fmt_pct(r))
        rj = ratio(v, f.tput("js", "yamux", d))
        check(f"1-stream {d} / js-libp2p", rj, "≥ 4.5x", lambda x: x >= 4.5, fmt(rj, 2, "x"))
        rp = ratio(v, f.tput("py", "yamux", d))
        check(f"1-stream {d} / py-libp2p", rp, "≥ 13x", lambda x: x >= 13, fmt(rp, 2, "x"))
    echo = f.latency("compiled", "echo_ms", "median")
    check(
        "new connection + stream + 1-byte echo, median",
        echo,
        "≤ 1.5 ms",
        lambda x: x <= 1.5,
        fmt(echo, 2, " ms"),
    )
    ping = f.latency("compiled", "ping_us", "median")
    ping1 = f.latency("compiled", "ping_us", "median", same_cpu=True)
    check(
        "ping RTT on an open stream, median, both processes on one vCPU",
        ping1,
        "≤ 100 µs",
        lambda x: x <= 100,
        fmt(ping1, 0, " µs"),
    )
    check(
        "ping RTT on an open stream, median (scheduler's choice of CPUs)",
        ping,
        "≤ 100 µs",
        lambda x: x <= 100,
        fmt(ping, 0, " µs"),
    )
    rss10 = f.rss("compiled", "10000")
    check(
        "RSS per idle connection at 10,000",
        rss10,
        "≤ 16 KiB",
        lambda x: x <= 16,
        fmt(rss10, 1, " KiB"),
    )
    rtts = f.rtt("compiled")
    check("connect + 1-byte request at 63 ms (RTTs)", rtts, "3", lambda x: x <= 3.25, fmt(rtts, 2))
    for d in ("upload", "download"):
        pct = f.wan("compiled", d, "pct_of_link")
        check(
            f"single stream at 63 ms / 1 Gbit/s, {d}",
            pct,
            "≥ 80% of link",
            lambda x: x >= 80,
            fmt(pct, 1, "%"),
        )
    # issue 5: TLS and QUIC
    for d in ("upload", "download"):
        q = f.variant("compiled", "quic", d)
        check(f"QUIC 1-stream {d}", q, "≥ 150 MiB/s", lambda x: x >= 150, fmt(q, 0, " MiB/s"))
    for d in ("upload", "download"):
        t = ratio(f.variant("compiled", "tls", d), f.tput("compiled", "yamux", d))
        check(
            f"TCP+TLS 1-stream {d} / TCP+Noise (same run)",
            t,
            "≥ 80%",
            lambda x: x >= 0.8,
            fmt_pct(t),
        )
    qecho = f.latency("compiled", "echo_ms", "median", quic=True)
    check(
        "QUIC new connection + stream + 1-byte echo, median",
        qecho,
        "≤ 2 ms",
        lambda x: x <= 2.0,
        fmt(qecho, 2, " ms"),
    )
    qrtt = f.rtt("compiled", kind="quic")
    check(
        "QUIC connect + 1-byte request at 63 ms, new connection (RTTs)",
        qrtt,
        "2",
        lambda x: x <= 2.25,
        fmt(qrtt, 2),
    )
    qres = f.rtt("compiled", kind="quic_resume")
    check(
        "QUIC connect + 1-byte request at 63 ms, resumed with 0-RTT (RTTs)",
        qres,
        "1",
        lambda x: x <= 1.25,
        fmt(qres, 2),
    )
    w("## Targets (our compiled build on uvloop)\n")
    w("| figure | target | measured | met? |")
    w("|---|---|---:|:---:|")
    for label, target, shown, ok in rows:
        mark = "—" if ok is None else ("yes" if ok else "**no**")
        w(f"| {label} | {target} | {shown} | {mark} |")
    w(
        "\nThe RTT count is elapsed / RTT **+ 1**: the proxy accepts the client's TCP connection "
        "without delay, so the TCP handshake's round trip is added back (`rtt_count.py`).  "
        '"met" for the RTT counts allows 0.25 RTT of CPU time on top of the target.  Ping: on '
        "this VM an idle vCPU halts and waking it costs tens of µs, twice per round trip between "
        "two processes on two vCPUs; the one-vCPU row shows the RTT without those wake-ups.  "
        "QUIC RTT counts are elapsed / RTT with nothing added (the proxy delays every datagram, "
        "the first one included); the resumed row times a second connection from the same host, "
        "with the session ticket of the first and `/echo/1.0.0` allowed in 0-RTT "
        f"({_resume_note(f)}).  The QUIC echo target is issue 5's 2 ms for a QUIC connection; "
        "the TLS ratio divides the TCP+TLS+yamux run by the TCP+Noise+yamux run of this report "
        "(same size).\n"
    )

    # ---------------------------------------------------------------- all figures
    w("## Every figure\n")
    w("| scenario | unit | " + " | ".join(CONFIG_LABELS[c] for c in COLUMNS) + " |")
    w("|---|---|" + "---:|" * len(COLUMNS))

    def row(label: str, unit: str, get: Callable[[str], float | None], digits: int = 1) -> None:
        w(f"| {label} | {unit} | " + " | ".join(fmt(get(c), digits) for c in COLUMNS) + " |")

    for muxer in ("yamux", "mplex"):
        for d in ("upload", "download"):
            row(
                f"1 stream, {muxer}, {d}",
                "MiB/s",
                lambda c, m=muxer, d=d: f.tput(c, m, d),  # type: ignore[misc]
            )
    for d in ("upload", "download"):
        row(
            f"16 streams, yamux, {d} (aggregate)",
            "MiB/s",
            lambda c, d=d: f.tput(c, "yamux", d, 16),  # type: ignore[misc]
        )
    for d in ("upload", "download"):
        for side in ("client", "server"):
            row(
                f"CPU per GiB, 1 stream yamux {d}, {side}",
                "s",
                lambda c, d=d, s=side: f.cpu_per_gib(c, d, s),  # type: ignore[misc]
                2,
            )
    row("new conn + stream + echo, median", "ms", lambda c: f.latency(c, "echo_ms", "median"), 2)
    row("new conn + stream + echo, p95", "ms", lambda c: f.latency(c, "echo_ms", "p95"), 2)
    row("connect alone, median", "ms", lambda c: f.latency(c, "connect_ms", "median"), 2)
    row(
        "ping RTT, median (timed around host.ping)",
        "µs",
        lambda c: f.latency(c, "ping_us", "median"),
        0,
    )
    row("ping RTT, p95", "µs", lambda c: f.latency(c, "ping_us", "p95"), 0)
    row(
        "ping RTT, median, both processes on one vCPU",
        "µs",
        lambda c: f.latency(c, "ping_us", "median", same_cpu=True),
        0,
    )
    row(
        "ping RTT, median (library's figure)",
        "µs",
        lambda c: f.latency(c, "ping_library_us", "median"),
        0,
    )
    for n in f.rss_counts():
        row(f"RSS per idle connection, {int(n):,} conns", "KiB", lambda c, n=n: f.rss(c, n), 1)  # type: ignore[misc]
    row("connect + 1-byte request at 63 ms", "RTTs", f.rtt, 2)
    row("  of which connect", "RTTs", lambda c: f.rtt(c, "connect_rtt_count"), 2)
    for d in ("upload", "download"):
        row(
            f"1 stream, TCP+TLS, yamux, {d}",
            "MiB/s",
            lambda c, d=d: f.variant(c, "tls", d),  # type: ignore[misc]
        )
    for d in ("upload", "download"):
        row(
            f"1 stream, QUIC, {d}",
            "MiB/s",
            lambda c, d=d: f.variant(c, "quic", d),  # type: ignore[misc]
        )
    for variant, label in (("tls", "TCP+TLS"), ("quic", "QUIC")):
        for d in ("upload", "download"):
            for side in ("client", "server"):
                row(
                    f"CPU per GiB, 1 stream {label} {d}, {side}",
                    "s",
                    lambda c, d=d, s=side, v=variant: f.cpu_per_gib(c, d, s, v),  # type: ignore[misc]
                    2,
                )
    row(
        "QUIC new conn + stream + echo, median",
        "ms",
        lambda c: f.latency(c, "echo_ms", "median", quic=True),
        2,
    )
    row(
        "QUIC new conn + stream + echo, p95",
        "ms",
        lambda c: f.latency(c, "echo_ms", "p95", quic=True),
        2,
    )
    row(
        "QUIC connect alone, median",
        "ms",
        lambda c: f.latency(c, "connect_ms", "median", quic=True),
        2,
    )
    row(
        "QUIC ping RTT, median",
        "µs",
        lambda c: f.latency(c, "ping_us", "median", quic=True),
        0,
    )
    row("QUIC connect + 1-byte request at 63 ms", "RTTs", lambda c: f.rtt(c, kind="quic"), 2)
    row(
        "  of which connect",
        "RTTs",
        lambda c: f.rtt(c, "connect_rtt_count", kind="quic"),
        2,
    )
    row(
        "QUIC resumed (0-RTT), connect + 1-byte request at 63 ms",
        "RTTs",
        lambda c: f.rtt(c, kind="quic_resume"),
        2,
    )
    for d in ("upload", "download"):
        row(f"1 stream at 63 ms / 1 Gbit/s, {d}", "MiB/s", lambda c, d=d: f.wan(c, d))  # type: ignore[misc]
        row(
            f"1 stream at 63 ms / 1 Gbit/s, {d}",
            "% of link",
            lambda c, d=d: f.wan(c, d, "pct_of_link"),  # type: ignore[misc]
        )
    w(
        "\njs-libp2p / py-libp2p: throughput and ping from `bench/compare/foreign.py` in this run "
        "(each stack's own /perf client and server; ping = one 32-byte exchange on a new stream, "
        "timed inside the peer).  Not measurable through the interop peers' commands, so not in "
        "this table: their new-connection echo (research/peers.md: js "
        f"{PEERS_MD['echo_ms']['js']:.0f} ms, py {PEERS_MD['echo_ms']['py']:.0f} ms) and RSS per "
        f"idle connection (peers.md, 1,000 conns: js {PEERS_MD['rss_1k']['js']:.0f} KiB, py "
        f"{PEERS_MD['rss_1k']['py']:.0f} KiB).\n"
    )

    # ---------------------------------------------------------------- ceilings
    w("## Ceilings\n")
    w("| ceiling | MiB/s |")
    w("|---|---:|")
    w(f"| raw TCP, two uvloop processes, 1 stream | {fmt(f.raw('uvloop'))} |")
    w(f"| raw TCP, two asyncio processes, 1 stream | {fmt(f.raw('asyncio'))} |")
    for op in ("seal", "open"):
        value = fmt(f.aead("compiled", f"aead_{op}"))
        w(f"| ChaCha20-Poly1305 {op}, 65519-byte frames, 1 core | {value} |")
    for impl in ("compiled", "pure"):
        w(
            f"| our Noise framing ({impl}) seal / open | {fmt(f.aead(impl, 'noise_seal'))} / "
            f"{fmt(f.aead(impl, 'noise_open'))} |"
        )
    w("")

    # ---------------------------------------------------------------- ratios
    w("## Ratios\n")
    w("| ratio | value |")
    w("|---|---:|")
    for muxer in ("yamux", "mplex"):
        for d in ("upload", "download"):
            c = f.tput("compiled", muxer, d)
            w(f"| 1 stream {muxer} {d}: compiled / raw uvloop TCP | {fmt_pct(ratio(c, raw))} |")
            w(
                f"| 1 stream {muxer} {d}: compiled / pure | "
                f"{fmt(ratio(c, f.tput('pure', muxer, d)), 2, 'x')} |"
            )
            w(
                f"| 1 stream {muxer} {d}: uvloop / asyncio | "
                f"{fmt(ratio(c, f.tput('asyncio', muxer, d)), 2, 'x')} |"
            )
            for stack in ("js", "py"):
                w(
                    f"| 1 stream {muxer} {d}: compiled / {CONFIG_LABELS[stack]} | "
                    f"{fmt(ratio(c, f.tput(stack, muxer, d)), 2, 'x')} |"
                )
    for d in ("upload", "download"):
        w(
            f"| 16 streams yamux {d}: compiled / raw uvloop TCP | "
            f"{fmt_pct(ratio(f.tput('compiled', 'yamux', d, 16), raw))} |"
        )
    for d in ("upload", "download"):
        noise = f.tput("compiled", "yamux", d)
        tls = f.variant("compiled", "tls", d)
        quic = f.variant("compiled", "quic", d)
        w(f"| 1 stream {d}: TCP+TLS / TCP+Noise (yamux, compiled) | {fmt_pct(ratio(tls, noise))} |")
        w(f"| 1 stream {d}: QUIC / TCP+Noise (compiled) | {fmt_pct(ratio(quic, noise))} |")
        for side in ("client", "server"):
            base = f.cpu_per_gib("compiled", d, side)
            for variant, label in (("tls", "TCP+TLS"), ("quic", "QUIC")):
                cpu = f.cpu_per_gib("compiled", d, side, variant)
                w(
                    f"| CPU per GiB, 1 stream {d}, {side}: {label} / TCP+Noise | "
                    f"{fmt(ratio(cpu, base), 2, 'x')} |"
                )
    for label, get in (
        ("new conn + echo median", lambda c: f.latency(c, "echo_ms", "median")),
        ("ping median", lambda c: f.latency(c, "ping_us", "median")),
    ):
        comp = get("compiled")
        w(f"| {label}: pure / compiled (time) | {fmt(ratio(get('pure'), comp), 2, 'x')} |")
        w(f"| {label}: asyncio / uvloop (time) | {fmt(ratio(get('asyncio'), comp), 2, 'x')} |")
        for stack in ("js", "py"):
            w(
                f"| {label}: {CONFIG_LABELS[stack]} / ours (time) | "
                f"{fmt(ratio(get(stack), comp), 2, 'x')} |"
            )
    loops = fmt(ratio(f.raw("uvloop"), f.raw("asyncio")), 2, "x")
    w(f"| raw uvloop TCP / raw asyncio TCP | {loops} |")
    for impl in ("compiled", "pure"):
        w(f"| Noise framing ({impl}) / raw AEAD, seal | {fmt_pct(f.aead(impl, 'seal_ratio'))} |")
        w(f"| Noise framing ({impl}) / raw AEAD, open | {fmt_pct(f.aead(impl, 'open_ratio'))} |")
    w("")

    # ---------------------------------------------------------------- runs
    w("## Runs\n")
    w(
        "Other load = CPU used by processes other than this report's while the scenario ran, as a "
        "share of all CPUs (the machine is shared; above a few percent, treat the row's figures "
        "as lower bounds).\n"
    )
    w("| scenario | wall s | other load | waited for quiet | status |")
    w("|---|---:|---:|---:|---|")
    for res in results:
        load = res.get("_load", {})
        if "error" in res:
            status = "failed: " + str(res["error"]).splitlines()[0][:120]
        elif "skipped" in res:
            status = "skipped: " + str(res["skipped"]).splitlines()[0][:120]
        else:
            status = "ok"
        w(
            f"| {res['_key']} | {res.get('_wall_s', '—')} | "
            f"{fmt_pct(load.get('other_cpu_share'))} | {load.get('waited_s', '—')} s | {status} |"
        )
    w("")
    return "\n".join(out) + "\n"


def _resume_note(f: Figures) -> str:
    """What the resumed QUIC RTT run reports about its session and early data."""
    res = f.r("rtt_quic_resume:compiled")
    if res is None:
        return "not measured"
    n = res.get("iterations", 0)
    return (
        f"{res.get('resumed', 0)} of {n} timed connections resumed, "
        f"{res.get('early_data_accepted', 0)} with early data accepted"
    )


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


# ---------------------------------------------------------------------------------------- chart


def chart_python(install: bool) -> tuple[str | None, str]:
    """An interpreter with matplotlib (this one, or bench/.venv-chart, created if allowed)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        return sys.executable, "matplotlib in this interpreter"
    python = CHART_VENV / "bin" / "python"
    probe = [str(python), "-c", "import matplotlib"]
    if python.exists() and subprocess.run(probe, check=False, capture_output=True).returncode == 0:
        return str(python), f"matplotlib from {CHART_VENV}"
    if not install:
        return None, "matplotlib is not installed (pip install matplotlib, or drop --no-install)"
    print(f"report: creating {CHART_VENV} with matplotlib for the chart", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(CHART_VENV)],
        [str(python), "-m", "pip", "install", "-q", "matplotlib"],
    ]
    for step in steps:
        proc = subprocess.run(step, check=False, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            return None, f"could not install matplotlib ({' '.join(step)}: {proc.stderr[-300:]})"
    return str(python), f"matplotlib installed into {CHART_VENV}"


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}, Linux {platform.release()}"


def git(*args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=str(ROOT), capture_output=True, text=True, check=False
    )
    return proc.stdout.strip()


def versions() -> dict[str, str]:
    out = {}
    for mod in ("uvloop", "cryptography"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/report", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the pipeline")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma list of scenarios")
    parser.add_argument("--skip-foreign", action="store_true")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never create .venv-chart")
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="max s to wait for idle")
    parser.add_argument("--from-json", type=Path, help="re-render a saved results.json")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="run only what --only names and replace those entries in the saved results.json",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)} (known: {', '.join(SCENARIOS)})")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "results.json"

    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        meta, results = saved["meta"], saved["results"]
    else:
        meta = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(),
            "python": platform.python_version(),
            **versions(),
            "commit": git("rev-parse", "--short", "HEAD") or "?",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "quick": args.quick,
        }
        results = []
        if args.merge and json_path.exists():
            saved = json.loads(json_path.read_text())
            meta = {**saved["meta"], "merged": meta["started"]}
            results = saved["results"]
        for run in plan(args):
            result = run_one(run, args.quiet_wait)
            results = [r for r in results if r.get("_key") != run.key] + [result]
            json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))

    chart_name: str | None = None
    if args.no_chart:
        meta["chart_note"] = "--no-chart"
    else:
        python, note = chart_python(install=not args.no_install)
        if python is None:
            meta["chart_note"] = note
            print(f"report: no PNG chart: {note}; the Markdown report is complete", file=sys.stderr)
        else:
            png = args.out / "report.png"
            proc = subprocess.run(
                [python, str(BENCH / "_chart.py"), str(json_path), str(png)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if proc.returncode == 0:
                chart_name = png.name
            else:
                meta["chart_note"] = f"chart failed: {proc.stderr[-300:]}"
                print(f"report: chart failed:\n{proc.stderr}", file=sys.stderr)
    md = render(results, meta, chart_name)
    (args.out / "report.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"report: wrote {args.out / 'report.md'}", file=sys.stderr)
    failed = [r["_key"] for r in results if "error" in r]
    if failed:
        print(f"report: these scenarios failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
