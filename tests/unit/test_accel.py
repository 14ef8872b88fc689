"""The twin selector, and proof that a normal build really loaded the compiled twins."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import aiolibp2p
from aiolibp2p import _accel


def test_every_hot_path_reported() -> None:
    report = aiolibp2p.accelerated()
    assert set(report) == set(_accel.HOT_PATHS)
    assert set(report.values()) <= {"c", "py"}


@pytest.mark.skipif(_accel.NO_EXTENSIONS, reason="pure run: AIOLIBP2P_NO_EXTENSIONS is set")
def test_compiled_twins_loaded_in_normal_build() -> None:
    """A normal build must load every compiled twin; a silent fallback to pure Python fails here."""
    assert aiolibp2p.build_info()["kind"] == "compiled", aiolibp2p.build_info()
    assert aiolibp2p.accelerated() == dict.fromkeys(_accel.HOT_PATHS, "c")
    for name in _accel.HOT_PATHS:
        module = getattr(_accel, name)
        assert module.__name__ == f"aiolibp2p._accel.{name}_c"
        assert module.__file__ is not None
        assert not module.__file__.endswith(".py"), module.__file__


@pytest.mark.skipif(not _accel.NO_EXTENSIONS, reason="only in the pure run")
def test_pure_twins_selected_when_asked() -> None:
    assert aiolibp2p.accelerated() == dict.fromkeys(_accel.HOT_PATHS, "py")


def test_env_var_selects_pure_in_a_fresh_interpreter() -> None:
    env = dict(os.environ, AIOLIBP2P_NO_EXTENSIONS="1")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import aiolibp2p, json; print(json.dumps(aiolibp2p.accelerated()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert '"c"' not in out and '"py"' in out


@pytest.mark.parametrize("name", _accel.HOT_PATHS)
def test_twins_export_the_same_public_names(name: str) -> None:
    py = importlib.import_module(f"aiolibp2p._accel.{name}_py")
    if _accel.NO_EXTENSIONS:
        pytest.skip("compiled twins deselected by AIOLIBP2P_NO_EXTENSIONS")
    c = importlib.import_module(f"aiolibp2p._accel.{name}_c")
    assert sorted(py.__all__) == sorted(c.__all__)
    for attr in py.__all__:
        assert hasattr(c, attr), attr
        if isinstance(getattr(py, attr), type) and issubclass(getattr(py, attr), BaseException):
            assert getattr(py, attr) is getattr(c, attr), (
                f"{attr}: twins must share exception types"
            )


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, sys; before = list(logging.getLogger().handlers);"
        "import aiolibp2p;"
        "assert logging.getLogger().handlers == before;"
        "assert 'asyncio' not in sys.modules, 'import pulled in asyncio'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
