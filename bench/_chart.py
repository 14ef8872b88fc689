"""Draws bench/results/report.png from results.json (run by ``bench/report``; needs matplotlib).

python bench/_chart.py bench/results/results.json bench/results/report.png
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import COLUMNS, CONFIG_LABELS, Figures

COLORS = {
    "compiled": "#1f77b4",
    "pure": "#aec7e8",
    "asyncio": "#2ca02c",
    "js": "#ff7f0e",
    "py": "#9467bd",
}


def bars(  # noqa: PLR0917
    ax: object,
    groups: list[str],
    get: Callable[[str, int], float | None],
    columns: list[str],
    title: str,
    unit: str,
) -> None:
    width = 0.8 / len(columns)
    for i, col in enumerate(columns):
        xs, ys = [], []
        for g in range(len(groups)):
            v = get(col, g)
            if v is not None:
                xs.append(g + (i - (len(columns) - 1) / 2) * width)
                ys.append(v)
        ax.bar(xs, ys, width, label=CONFIG_LABELS[col], color=COLORS[col])  # type: ignore[attr-defined]
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(  # type: ignore[attr-defined]
                f"{y:,.0f}" if y >= 10 else f"{y:.2f}",
                (x, y),
                ha="center",
                va="bottom",
                fontsize=6,
                rotation=90,
            )
    ax.set_xticks(range(len(groups)))  # type: ignore[attr-defined]
    ax.set_xticklabels(groups, fontsize=8)  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=10)  # type: ignore[attr-defined]
    ax.set_ylabel(unit)  # type: ignore[attr-defined]


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads(src.read_text())
    f = Figures(data["results"])
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    (a, b, c), (d, e, g) = axes

    tput_groups = [
        ("yamux", "upload"),
        ("yamux", "download"),
        ("mplex", "upload"),
        ("mplex", "download"),
    ]
    bars(
        a,
        [f"{m}\n{dr}" for m, dr in tput_groups],
        lambda col, i: f.tput(col, *tput_groups[i]),
        COLUMNS,
        "1-stream throughput, loopback",
        "MiB/s",
    )
    raw = f.raw("uvloop")
    if raw:
        a.axhline(raw, color="black", linestyle="--", linewidth=1, label="raw uvloop TCP")
        a.axhline(raw / 2, color="red", linestyle=":", linewidth=1, label="target: 50% of raw")
    a.legend(fontsize=7)

    bars(
        b,
        ["upload", "download"],
        lambda col, i: f.tput(col, "yamux", ["upload", "download"][i], 16),
        ["compiled", "pure", "asyncio"],
        "16 streams on one connection (yamux), aggregate",
        "MiB/s",
    )
    b.legend(fontsize=7)

    bars(
        c,
        ["median", "p95"],
        lambda col, i: f.latency(col, "echo_ms", ["median", "p95"][i]),
        ["compiled", "pure", "asyncio"],
        "new connection + stream + 1-byte echo",
        "ms",
    )
    c.axhline(1.5, color="red", linestyle=":", linewidth=1, label="target ≤ 1.5 ms (median)")
    c.legend(fontsize=7)

    ping_groups = [("median", False), ("p95", False), ("median,\nboth on one vCPU", True)]
    bars(
        d,
        [g for g, _ in ping_groups],
        lambda col, i: f.latency(
            col, "ping_us", ping_groups[i][0].split(",")[0], same_cpu=ping_groups[i][1]
        ),
        COLUMNS,
        "ping RTT (js/py: new stream per ping)",
        "µs",
    )
    d.axhline(100, color="red", linestyle=":", linewidth=1, label="target ≤ 100 µs (median)")
    d.legend(fontsize=7)

    counts = f.rss_counts()
    bars(
        e,
        [f"{int(n):,} conns" for n in counts],
        lambda col, i: f.rss(col, counts[i]),
        ["compiled", "pure", "asyncio"],
        "listener RSS per idle connection",
        "KiB",
    )
    e.axhline(16, color="red", linestyle=":", linewidth=1, label="target ≤ 16 KiB at 10,000")
    e.legend(fontsize=7)

    # achieved / target, >= 1 means met (our compiled build)
    up, down = f.tput("compiled", "yamux", "upload"), f.tput("compiled", "yamux", "download")
    items: list[tuple[str, float | None, float]] = []

    def add(label: str, value: float | None, pass_at: float = 1.0) -> None:
        items.append((label, value, pass_at))

    def div(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None or y == 0 else x / y

    add("tput/raw\n≥50%", div(div(min(up or 0, down or 0) or None, raw), 0.5))
    add("vs js\n≥4.5x", div(div(up, f.tput("js", "yamux", "upload")), 4.5))
    add("vs py\n≥13x", div(div(up, f.tput("py", "yamux", "upload")), 13))
    add("echo\n≤1.5 ms", div(1.5, f.latency("compiled", "echo_ms", "median")))
    add("ping\n≤100 µs", div(100, f.latency("compiled", "ping_us", "median")))
    add("RSS 10k\n≤16 KiB", div(16, f.rss("compiled", "10000")))
    add("RTTs\n= 3", div(3, f.rtt("compiled")), 3 / 3.25)  # 0.25 RTT of CPU time allowed
    add("WAN\n≥80%", div(f.wan("compiled", "upload", "pct_of_link"), 80))
    shown = [(lbl, v, p) for lbl, v, p in items if v is not None]
    labels = [lbl for lbl, _, _ in shown]
    values = [v for _, v, _ in shown]
    g.bar(
        range(len(values)),
        values,
        color=["#2ca02c" if v >= p else "#d62728" for _, v, p in shown],
    )
    for i, v in enumerate(values):
        g.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom", fontsize=7)
    g.axhline(1, color="black", linewidth=1)
    g.set_xticks(range(len(values)))
    g.set_xticklabels(labels, fontsize=7)
    g.set_title("targets: achieved / required (≥ 1 is met; compiled, uvloop)", fontsize=10)

    meta = data["meta"]
    fig.suptitle(
        f"aiolibp2p benchmarks — {meta.get('started', '')} — {meta.get('machine', '')}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
