"""core/ <- proto/ <- net/ <- cli/: the lower layers never import asyncio, uvloop or net/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiolibp2p

PACKAGE_DIR = Path(aiolibp2p.__file__).resolve().parent
FORBIDDEN = {
    "core": ("asyncio", "uvloop", "aiolibp2p.net", "aiolibp2p.proto", "aiolibp2p.cli", "trio"),
    "proto": ("asyncio", "uvloop", "aiolibp2p.net", "aiolibp2p.cli", "trio"),
    "_accel": ("asyncio", "uvloop", "aiolibp2p.net", "aiolibp2p.proto", "aiolibp2p.cli"),
    "net": ("aiolibp2p.cli",),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((PACKAGE_DIR / layer).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[layer]:
                if name == banned or name.startswith(banned + "."):
                    bad.append(f"{path.relative_to(PACKAGE_DIR)} imports {name}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_stay_one_way(layer: str) -> None:
    assert (PACKAGE_DIR / layer).is_dir()
    assert _violations(layer) == []


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import asyncio\nfrom aiolibp2p.net import host\n")
    assert {"asyncio", "aiolibp2p.net", "aiolibp2p.net.host"} <= _imports(bad)
