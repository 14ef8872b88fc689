"""Conformance fixtures: the ``aio`` runner of ``tests/integration/conftest.py``, reused as is.

Conftest files are per directory, so the integration one is loaded by path (under a private
module name) and its ``aio`` fixture re-exported: one definition of the asyncio/uvloop runner
and its leak checks (no task left, no socket left open, nothing sent to the loop's exception
handler).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "integration" / "conftest.py"
_NAME = "_aiolibp2p_tests_integration_conftest"


def _load() -> object:
    module = sys.modules.get(_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_NAME, _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return module


_integration = _load()
aio = _integration.aio  # type: ignore[attr-defined]
LoopRunner = _integration.LoopRunner  # type: ignore[attr-defined]

__all__ = ["LoopRunner", "aio"]
