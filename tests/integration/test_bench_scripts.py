"""Smoke runs of the end-to-end benchmark scripts over TLS and QUIC (``bench/e2e/``).

Each script is run as ``bench/report`` runs it (an orchestrator process with its own server,
client and proxy children) with tiny sizes, and its JSON result line is checked: the transport
and security asked for were the ones negotiated, and the figures are sane.  Timing-free apart
from the RTT counts, which cannot come out below what the proxy's delays impose.
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

# As in test_bench_proxy.py: the checkout's bench/ ($AIOLIBP2P_CHECKOUT for wheel runs).
ROOT = Path(os.environ.get("AIOLIBP2P_CHECKOUT") or Path(__file__).resolve().parents[2])
E2E = ROOT / "bench" / "e2e"
if not (E2E / "throughput.py").exists():
    if os.environ.get("AIOLIBP2P_WHEEL_RUN", "") not in ("", "0"):
        pytest.skip(f"wheel run without the checkout ({E2E})", allow_module_level=True)
    pytest.fail(f"{E2E} is missing: run the suite from the checkout", pytrace=False)

pytest.importorskip("aioquic")  # the quic extra (a test dependency)

pytestmark = pytest.mark.slow

# The build these tests run against: the scripts refuse to run if the twins differ.
IMPL = "compiled" if set(aiolibp2p.accelerated().values()) == {"c"} else "pure"


def run_script(name: str, *args: str, timeout: float = 120.0) -> dict[str, Any]:
    argv = [sys.executable, str(E2E / name), "--impl", IMPL, "--loop", "asyncio", *args]
    proc = subprocess.run(
        argv,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"{name} failed ({proc.returncode}):\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in result, result
    return result


@pytest.mark.parametrize(
    ("transport", "security", "key", "muxer"),
    [
        ("tcp", "tls", "yamux", "/yamux/1.0.0"),
        ("quic", "tls", "quic", "quic-v1"),
    ],
)
def test_throughput_over_tls_and_quic(transport: str, security: str, key: str, muxer: str) -> None:
    result = run_script(
        "throughput.py",
        "--transport",
        transport,
        "--security",
        security,
        "--muxer",
        "yamux",
        "--size",
        "2MiB",
        "--warmup",
        "256KiB",
        "--repeat",
        "1",
        "--timeout",
        "60",
    )
    assert result["transport"] == transport and result["security"] == security
    res = result["results"][key]
    assert res["negotiated"] == muxer
    assert res["negotiated_security"] == "/tls/1.0.0"
    for d in ("upload", "download"):
        assert res[d]["mib_s"] > 0 and len(res[d]["runs_mib_s"]) == 1


def test_quic_upload_wrapper() -> None:
    argv = [sys.executable, str(E2E / "quic_upload.py"), "--mib", "2", "--impl", IMPL]
    argv += ["--loop", "asyncio"]
    proc = subprocess.run(
        argv, cwd=str(ROOT), capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["transport"] == "quic" and line["mib"] == 2
    assert line["mib_per_s"] > 0 and line["sender_cpu_s_per_gib"] > 0


def test_quic_rtt_count_new_and_resumed() -> None:
    rtt_ms = 40.0
    new = run_script("rtt_count.py", "--transport", "quic", "--rtt-ms", str(rtt_ms))
    assert new["negotiated"] == "quic-v1" and new["added_rtts"] == 0
    # a new connection: the handshake, then the request; the proxy imposes both round trips
    assert new["rtt_count"] >= 1.9, new
    assert new["resumed"] == 0
    resumed = run_script("rtt_count.py", "--transport", "quic", "--rtt-ms", str(rtt_ms), "--resume")
    # every timed connection resumed the session of the untimed one before it
    assert resumed["resumed"] == resumed["iterations"], resumed
    assert resumed["rtt_count"] >= 0.9, resumed
    if resumed["early_data_accepted"] == resumed["iterations"]:
        assert resumed["rtt_count"] < new["rtt_count"], (new, resumed)
