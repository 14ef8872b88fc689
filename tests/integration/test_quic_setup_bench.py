"""Smoke runs of ``bench/e2e/latency.py --transport quic`` (the QUIC connection-setup figures).

The orchestrator runs as ``bench/report`` would run it (server and client processes), with a
handful of connections; its JSON line must name the transport and carry CPU figures per side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import aiolibp2p

ROOT = Path(os.environ.get("AIOLIBP2P_CHECKOUT") or Path(__file__).resolve().parents[2])
LATENCY = ROOT / "bench" / "e2e" / "latency.py"
if not LATENCY.exists():
    if os.environ.get("AIOLIBP2P_WHEEL_RUN", "") not in ("", "0"):
        pytest.skip(f"wheel run without the checkout ({LATENCY})", allow_module_level=True)
    pytest.fail(f"{LATENCY} is missing: run the suite from the checkout", pytrace=False)

pytest.importorskip("aioquic")

pytestmark = pytest.mark.slow

IMPL = "compiled" if set(aiolibp2p.accelerated().values()) == {"c"} else "pure"


def run_latency(*args: str) -> dict[str, Any]:
    argv = [sys.executable, str(LATENCY), "--impl", IMPL, "--loop", "asyncio", *args]
    proc = subprocess.run(
        argv,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"latency.py failed ({proc.returncode}):\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in result, result
    return result


@pytest.mark.parametrize("resume", [True, False])
def test_latency_over_quic(resume: bool) -> None:
    args = ["--transport", "quic", "--connections", "8", "--warmup", "2"]
    args += ["--pings", "5", "--ping-warmup", "2", "--raw-pings", "0"]
    if not resume:
        args.append("--no-resume")
    result = run_latency(*args)
    assert result["transport"] == "quic"
    assert result["muxer"] == "quic-v1"
    assert result.get("resume", True) is resume
    assert result["echo_ms"]["n"] == 8 and result["echo_ms"]["median"] > 0
    assert result["ping_us"]["n"] == 5
    cpu = result["cpu_per_conn_us"]
    assert cpu["client"] > 0 and cpu["server"] > 0
    assert cpu["total"] == pytest.approx(cpu["client"] + cpu["server"], abs=0.2)


def test_latency_over_tcp_reports_its_transport() -> None:
    result = run_latency("--connections", "4", "--warmup", "1", "--phase", "conn")
    assert result["transport"] == "tcp"
    assert result["muxer"] == "yamux"  # as before: the option given
    assert "resume" not in result
    assert result["cpu_per_conn_us"]["server"] > 0
