"""setup.py makes a compiled build normally and a working pure build otherwise: never a broken one.

Each case builds a real wheel from this checkout, unpacks it into a temporary directory and runs
the package from there in a fresh interpreter.

The checkout is ``$AIOLIBP2P_CHECKOUT`` when set, else the one these tests live in.  Only in a wheel
run (``AIOLIBP2P_WHEEL_RUN=1``: a copy of the tests against an installed wheel) may a missing
checkout skip these tests; in the normal suite it fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("AIOLIBP2P_CHECKOUT") or Path(__file__).resolve().parents[2])
WHEEL_RUN = os.environ.get("AIOLIBP2P_WHEEL_RUN", "") not in ("", "0")
HAVE_CHECKOUT = (ROOT / "setup.py").exists()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        WHEEL_RUN and not HAVE_CHECKOUT,
        reason=f"wheel run without the checkout: no setup.py under {ROOT} "
        "(set AIOLIBP2P_CHECKOUT to run it)",
    ),
]
PYX = sorted(p.stem for p in (ROOT / "ext").glob("*.pyx"))


def build_wheel(tmp_path: Path, **env: str) -> tuple[Path, str]:
    """Build a wheel from a copy of the checkout (so no build output lands in the tree)."""
    assert HAVE_CHECKOUT, f"no setup.py under {ROOT}: run from the checkout (AIOLIBP2P_CHECKOUT)"
    assert PYX, f"no ext/*.pyx under {ROOT}"
    src = tmp_path / "src-copy"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv*",
            ".ci-venv",
            "build",
            "*.so",
            "node_modules",
            "__pycache__",
            "*.egg-info",
            "_build_info.py",
        ),
    )
    out = tmp_path / "wheels"
    # The build's own environment decides the build kind: never inherit the pure-run switch.
    build_env = {k: v for k, v in os.environ.items() if k != "AIOLIBP2P_NO_EXTENSIONS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**build_env, **env},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    wheels = list(out.glob("aiolibp2p-*.whl"))
    assert len(wheels) == 1
    return wheels[0], proc.stdout + proc.stderr


def run_from_wheel(tmp_path: Path, wheel: Path, code: str) -> str:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if k != "AIOLIBP2P_NO_EXTENSIONS"}
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


CHECK = (
    "import json, aiolibp2p, aiolibp2p._accel as a;"
    "assert a.__file__.startswith(%r), a.__file__;"
    "from aiolibp2p._accel import varint;"
    "assert varint.decode_uvarint(varint.encode_uvarint(300)) == (300, 2);"
    "print(json.dumps([aiolibp2p.build_info(), aiolibp2p.accelerated()]))"
)


def test_compiled_wheel(tmp_path: Path) -> None:
    wheel, log = build_wheel(tmp_path)
    assert "aiolibp2p: compiled build" in log
    names = zipfile.ZipFile(wheel).namelist()
    for stem in PYX:
        assert any(
            n.startswith(f"aiolibp2p/_accel/{stem}.") and n.endswith((".so", ".pyd")) for n in names
        ), stem
    assert not [n for n in names if n.endswith((".c", ".pyx", ".pxd"))]
    assert not [n for n in names if n.startswith("tests/")]
    assert "aiolibp2p/py.typed" in names
    info, hot = json.loads(run_from_wheel(tmp_path, wheel, CHECK % str(tmp_path / "site")))
    assert info["kind"] == "compiled"
    assert set(hot.values()) == {"c"}


def test_no_extensions_env_makes_a_pure_wheel(tmp_path: Path) -> None:
    wheel, log = build_wheel(tmp_path, AIOLIBP2P_NO_EXTENSIONS="1")
    assert "aiolibp2p: pure build (AIOLIBP2P_NO_EXTENSIONS is set)" in log
    assert wheel.name.endswith("-py3-none-any.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith((".so", ".pyd"))]
    info, hot = json.loads(run_from_wheel(tmp_path, wheel, CHECK % str(tmp_path / "site")))
    assert info["kind"] == "pure"
    assert set(hot.values()) == {"py"}


def test_broken_compiler_falls_back_to_a_working_pure_build(tmp_path: Path) -> None:
    wheel, log = build_wheel(tmp_path, CC="/bin/false", LDSHARED="/bin/false")
    assert "aiolibp2p: pure build (compiling failed" in log
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith((".so", ".pyd"))]
    info, hot = json.loads(run_from_wheel(tmp_path, wheel, CHECK % str(tmp_path / "site")))
    assert info["kind"] == "pure"
    assert info["reason"].startswith("compiling failed")
    assert set(hot.values()) == {"py"}
