#!/usr/bin/env python3
"""Times each hot-path twin pair in one run and checks the compiled twins' speedup.

    python bench/micro/ratios.py [--repeats 7] [--min-ratio 5.0] [--out ratios.md]

For every operation, the pure twin (``<name>_py``) and the compiled twin (``<name>_c``) run on
the same input, interleaved, ``--repeats`` times each (``timeit``, best repeat kept).  Prints a
Markdown table (and writes it to ``--out`` if given).  Exits 1 if a *split* operation on the
64 KiB buffers is less than ``--min-ratio`` times faster compiled than pure, if the two twins
disagree on a workload, or if a compiled twin cannot be imported.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import lp_buffer, ms_buffer


@dataclass
class Operation:
    name: str
    split: bool  # gated by --min-ratio
    call: Callable[[ModuleType, ModuleType], Callable[[], Any]]  # (varint, multistream) -> thunk


def operations() -> list[Operation]:
    lp, lp_count = lp_buffer()
    ms, ms_count = ms_buffer()
    lp_array, ms_array = bytearray(lp), bytearray(ms)
    body = bytes(range(32))
    framed = b"\x20" + body
    negotiation = b"\x13/multistream/1.0.0\n\x0f/ipfs/id/1.0.0\n"
    into = bytearray(16)
    lp_label = f"{len(lp)} B, {lp_count} msgs of 8-40 B"
    ms_label = f"{len(ms)} B, {ms_count} protocol ids"
    return [
        Operation(
            f"varint.split_lp ({lp_label}, bytes)",
            True,
            lambda v, m: lambda: v.split_lp(lp, max_size=1024),
        ),
        Operation(
            f"varint.split_lp ({lp_label}, bytearray)",
            True,
            lambda v, m: lambda: v.split_lp(lp_array, max_size=1024),
        ),
        Operation(
            f"multistream.split_messages ({ms_label}, bytes)",
            True,
            lambda v, m: lambda: m.split_messages(ms),
        ),
        Operation(
            f"multistream.split_messages ({ms_label}, bytearray)",
            True,
            lambda v, m: lambda: m.split_messages(ms_array),
        ),
        Operation("varint.encode_uvarint(300)", False, lambda v, m: lambda: v.encode_uvarint(300)),
        Operation(
            "varint.encode_uvarint(2**63 - 1)",
            False,
            lambda v, m: lambda: v.encode_uvarint(9223372036854775807),
        ),
        Operation(
            "varint.encode_uvarint_into(300, buf, 4)",
            False,
            lambda v, m: lambda: v.encode_uvarint_into(300, into, 4),
        ),
        Operation(
            "varint.decode_uvarint(2 B)", False, lambda v, m: lambda: v.decode_uvarint(b"\xac\x02")
        ),
        Operation("varint.encode_lp(32 B)", False, lambda v, m: lambda: v.encode_lp(body)),
        Operation(
            "varint.decode_lp(32 B)",
            False,
            lambda v, m: lambda: v.decode_lp(framed, max_size=1024),
        ),
        Operation(
            "multistream.split_messages(header + proposal)",
            False,
            lambda v, m: lambda: m.split_messages(negotiation),
        ),
        Operation(
            "multistream.encode_message('/ipfs/id/1.0.0')",
            False,
            lambda v, m: lambda: m.encode_message("/ipfs/id/1.0.0"),
        ),
        Operation(
            "multistream.encode_messages([header, proposal])",
            False,
            lambda v, m: lambda: m.encode_messages(["/multistream/1.0.0", "/ipfs/id/1.0.0"]),
        ),
    ]


def best_per_call(py: Callable[[], Any], c: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best seconds per call of each thunk; repeats are interleaved so drift hits both alike."""
    timers = [timeit.Timer(py), timeit.Timer(c)]
    numbers = []
    for timer in timers:
        number, _ = timer.autorange()  # enough calls for >= 0.2 s
        numbers.append(max(1, number // 4))  # ~50 ms per repeat
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(numbers[i]) / numbers[i])
    return best[0], best[1]


def load(kind: str) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module(f"aiolibp2p._accel.varint_{kind}"),
        importlib.import_module(f"aiolibp2p._accel.multistream_{kind}"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats (best is kept)")
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=5.0,
        help="least speedup (pure time / compiled time) required of each split operation",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)

    py_mods = load("py")
    try:
        c_mods = load("c")
    except ImportError as exc:
        print(
            f"ratios: the compiled twins are not importable ({exc}); build them first",
            file=sys.stderr,
        )
        return 1

    lines = [
        f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeats}; "
        f"speedup = pure time / compiled time; split rows must reach {args.min_ratio:g}x.",
        "",
        "| operation | py µs | c µs | speedup (py/c) |",
        "|---|---:|---:|---:|",
    ]
    failures = []
    for op in operations():
        py_call, c_call = op.call(*py_mods), op.call(*c_mods)
        if py_call() != c_call():
            failures.append(f"{op.name}: the twins return different results")
            continue
        py_time, c_time = best_per_call(py_call, c_call, args.repeats)
        ratio = py_time / c_time
        flag = ""
        if op.split and ratio < args.min_ratio:
            failures.append(f"{op.name}: speedup {ratio:.1f}x < {args.min_ratio:g}x")
            flag = " **below target**"
        lines.append(
            f"| {op.name} | {py_time * 1e6:.3f} | {c_time * 1e6:.3f} | {ratio:.1f}x{flag} |"
        )
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    for failure in failures:
        print(f"ratios: FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
