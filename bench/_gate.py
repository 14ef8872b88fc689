"""``bench/gate``: the performance regression gate (a few minutes; ``.ci/run`` calls it).

    bench/gate [--thresholds bench/thresholds.toml] [--no-micro] [--json out.json]

Every figure it checks is a ratio against a baseline measured in the same run, so a slower or
busier machine moves both sides of it:

* ``micro``: each hot-path twin's speedup, compiled over pure (``bench/micro/ratios.py``'s
  operations, best of ``--micro-repeats``);
* ``e2e``: 1-stream TCP+Noise+yamux throughput (256 MiB, compiled, uvloop) over raw uvloop TCP
  (same size and write size), and over the pure build (same size); runs interleaved;
* ``noise``: our Noise framing (compiled) over raw ChaCha20-Poly1305 on 65519-byte frames;
* ``transports``: 1-stream TCP+TLS+yamux and QUIC-v1 throughput (compiled, uvloop) over
  TCP+Noise+yamux, runs interleaved (``--transport-size`` for TCP, ``--quic-size`` for QUIC).

A ratio under its floor in ``bench/thresholds.toml`` is measured once more (a shared machine
has bad seconds); if it is still under, the gate prints a loud FAIL line per ratio and exits 1.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
E2E = BENCH / "e2e"
MICRO = BENCH / "micro"
sys.path.insert(0, str(E2E))

from _common import wait_for_quiet  # noqa: E402

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:
        tomllib = None  # type: ignore[assignment]


def slug(name: str) -> str:
    """A TOML-friendly key for a micro operation name."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def run_json(argv: list[str], timeout: float = 600.0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(
            f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"{' '.join(argv)}: {result['error']}")
    return result


# ----------------------------------------------------------------------------------- measures


def measure_micro(repeats: int) -> dict[str, float]:
    sys.path.insert(0, str(MICRO))
    import ratios

    py_mods, c_mods = ratios.load("py"), ratios.load("c")
    out = {}
    ops = ratios.operations() + ratios._noise_operations() + ratios._yamux_operations()
    for op in ops:
        py_call, c_call = op.call(*py_mods), op.call(*c_mods)
        if py_call() != c_call():
            raise RuntimeError(f"{op.name}: the twins return different results")
        py_time, c_time = ratios.best_per_call(py_call, c_call, repeats)
        out[slug(op.name)] = py_time / c_time
    return out


def measure_e2e(size: str, rounds: int) -> dict[str, float]:
    """Interleaved rounds of raw TCP, ours compiled and ours pure; ratios of the medians."""
    raw: list[float] = []
    comp: dict[str, list[float]] = {"upload": [], "download": []}
    pure: dict[str, list[float]] = {"upload": [], "download": []}
    tput = [str(E2E / "throughput.py"), "--muxer", "yamux", "--repeat", "2"]
    for _ in range(rounds):
        r = run_json([str(E2E / "raw_tcp.py"), "--size", size, "--repeat", "2"])
        raw.extend(r["runs_mib_s"])
        r = run_json([*tput, "--size", size, "--impl", "compiled"])
        for d, runs in comp.items():
            runs.extend(r["results"]["yamux"][d]["runs_mib_s"])
        r = run_json([*tput, "--size", size, "--impl", "pure"])
        for d, runs in pure.items():
            runs.extend(r["results"]["yamux"][d]["runs_mib_s"])
    raw_m = statistics.median(raw)
    out = {"raw_tcp_mib_s": raw_m}
    for d in ("upload", "download"):
        c = statistics.median(comp[d])
        out[f"yamux_{d}_mib_s"] = c
        out[f"yamux_{d}_vs_raw_tcp"] = c / raw_m
        out[f"yamux_{d}_compiled_vs_pure"] = c / statistics.median(pure[d])
    return out


def measure_transports(tcp_size: str, quic_size: str, rounds: int) -> dict[str, float]:
    """Interleaved rounds of TCP+Noise, TCP+TLS (both yamux) and QUIC: ratios of the median
    MiB/s (``*_vs_noise``) and of the median CPU seconds per GiB of both processes together,
    TCP+Noise's over the variant's (``*_cpu_vs_noise``: higher is better; steadier than
    wall-clock on a shared machine)."""
    tput = [str(E2E / "throughput.py"), "--muxer", "yamux", "--repeat", "2", "--warmup", "8MiB"]
    variants = {
        "noise": [*tput, "--size", tcp_size, "--security", "noise"],
        "tls": [*tput, "--size", tcp_size, "--security", "tls"],
        "quic": [*tput, "--size", quic_size, "--transport", "quic"],
    }
    mib_s: dict[str, dict[str, list[float]]] = {v: {"upload": [], "download": []} for v in variants}
    cpu: dict[str, dict[str, list[float]]] = {v: {"upload": [], "download": []} for v in variants}
    for _ in range(rounds):
        for variant, argv in variants.items():
            r = run_json(argv)
            (res,) = r["results"].values()
            for d in ("upload", "download"):
                mib_s[variant][d].extend(res[d]["runs_mib_s"])
                cpu[variant][d].append(
                    (res[d]["client_cpu_s"] + res[d]["server_cpu_s"]) / r["size"] * 2**30
                )
    out: dict[str, float] = {}
    for d in ("upload", "download"):
        noise = statistics.median(mib_s["noise"][d])
        noise_cpu = statistics.median(cpu["noise"][d])
        out[f"noise_{d}_mib_s"] = noise
        for variant in ("tls", "quic"):
            out[f"{variant}_{d}_mib_s"] = statistics.median(mib_s[variant][d])
            out[f"{variant}_{d}_vs_noise"] = out[f"{variant}_{d}_mib_s"] / noise
            out[f"{variant}_{d}_cpu_vs_noise"] = noise_cpu / statistics.median(cpu[variant][d])
    return out


def measure_noise() -> dict[str, float]:
    r = run_json([str(E2E / "aead.py"), "--impl", "compiled", "--seconds", "0.2", "--repeat", "5"])
    return {"seal_vs_aead": r["seal_ratio"], "open_vs_aead": r["open_ratio"]}


# --------------------------------------------------------------------------------------- check


def check(
    group: str,
    floors: dict[str, Any],
    measure: Callable[[], dict[str, float]],
    log: list[str],
) -> tuple[list[str], dict[str, float]]:
    """Measure, compare with the floors, re-measure once if any ratio is under; failures."""
    figures = measure()
    under = [k for k, floor in floors.items() if figures.get(k, float("inf")) < float(floor)]
    missing = [k for k in floors if k not in figures]
    if under:
        first = ", ".join(f"{k} {figures[k]:.3f}" for k in under)
        print(
            f"gate: {group}: {first} under the floor; measuring again", file=sys.stderr, flush=True
        )
        again = measure()
        for k in under:
            figures[k] = max(figures[k], again.get(k, 0.0))
    failures = [f"{group}.{k}: no such figure measured" for k in missing]
    for key, floor in floors.items():
        value = figures.get(key)
        if value is None:
            continue
        ok = value >= float(floor)
        line = f"{group}.{key}: {value:.3f} (floor {float(floor):.3f}) {'ok' if ok else 'FAIL'}"
        log.append(line)
        print(("gate: " if ok else "gate: *** ") + line, file=sys.stderr, flush=True)
        if not ok:
            failures.append(line)
    return failures, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/gate", description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=Path, default=BENCH / "thresholds.toml")
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--no-noise", action="store_true")
    parser.add_argument("--no-transports", action="store_true")
    parser.add_argument("--transport-size", default="256MiB", help="TCP size, transports group")
    parser.add_argument("--quic-size", default="32MiB", help="QUIC size, transports group")
    parser.add_argument("--micro-repeats", type=int, default=5)
    parser.add_argument("--size", default="256MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="write every figure measured here")
    args = parser.parse_args(argv)
    if tomllib is None:
        print("bench/gate: needs Python 3.11+ (tomllib) or the tomli package", file=sys.stderr)
        return 2
    thresholds = tomllib.loads(args.thresholds.read_text(encoding="utf-8"))
    t0 = time.monotonic()
    load = wait_for_quiet(max_wait=args.quiet_wait)
    print(f"gate: machine busy {load['busy_before']:.0%} before the run", file=sys.stderr)
    log: list[str] = []
    failures: list[str] = []
    figures: dict[str, Any] = {"load": load}
    groups: list[tuple[str, Callable[[], dict[str, float]]]] = []
    if not args.no_micro:
        groups.append(("micro", lambda: measure_micro(args.micro_repeats)))
    if not args.no_e2e:
        groups.append(("e2e", lambda: measure_e2e(args.size, args.rounds)))
    if not args.no_noise:
        groups.append(("noise", measure_noise))
    if not args.no_transports:
        groups.append(
            (
                "transports",
                lambda: measure_transports(args.transport_size, args.quic_size, args.rounds),
            )
        )
    for group, measure in groups:
        try:
            fails, figs = check(group, thresholds.get(group, {}), measure, log)
        except Exception as exc:
            fails, figs = [f"{group}: could not measure: {exc}"], {}
        failures += fails
        figures[group] = figs
    elapsed = time.monotonic() - t0
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    if failures:
        bar = "!" * 78
        print(
            f"\n{bar}\nbench/gate: PERFORMANCE REGRESSION: {len(failures)} ratio(s) under "
            f"the floor\n{bar}",
            file=sys.stderr,
        )
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        print(f"(floors: {args.thresholds}; {elapsed:.0f} s)", file=sys.stderr)
        return 1
    print(
        f"bench/gate: all {len(log)} ratios at or above their floors ({elapsed:.0f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
