"""The ``aiolibp2p`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiolibp2p", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_id_creates_then_loads_the_same_identity(tmp_path: Path) -> None:
    key = tmp_path / "nested" / "identity.key"
    first = run_cli("id", "--identity", str(key))
    assert first.returncode == 0, first.stderr
    peer_id = first.stdout.strip()
    assert peer_id.startswith("12D3KooW")
    assert "created" in first.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    second = run_cli("id", "--identity", str(key))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == peer_id
    assert "loaded" in second.stderr


def test_id_uses_the_data_directory_by_default(tmp_path: Path) -> None:
    env = dict(os.environ, AIOLIBP2P_HOME=str(tmp_path / "home"))
    out = run_cli("id", "--json", env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert Path(info["identity"]) == tmp_path / "home" / "identity.key"
    assert info["created"] is True and info["key_type"] == "Ed25519"
    assert info["cid"].startswith("b")


@pytest.mark.parametrize(("key_type", "prefix"), [("secp256k1", "16Uiu2"), ("ecdsa", "Qm")])
def test_id_other_key_types(tmp_path: Path, key_type: str, prefix: str) -> None:
    out = run_cli("id", "--identity", str(tmp_path / "k"), "--key-type", key_type)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(prefix)


def test_id_rejects_a_corrupt_identity_file(tmp_path: Path) -> None:
    key = tmp_path / "identity.key"
    key.write_bytes(b"not a key")
    key.chmod(0o600)
    out = run_cli("id", "--identity", str(key))
    assert out.returncode == 1
    assert "error" in out.stderr
    assert "Traceback" not in out.stderr
    assert key.read_bytes() == b"not a key"  # never overwritten


def test_build_info_reports_every_hot_path() -> None:
    out = run_cli("build-info")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info["hot_paths"]) == {"varint", "multistream", "noise_cipher", "yamux"}
    assert info["build"]["kind"] in {"compiled", "pure", "source"}
