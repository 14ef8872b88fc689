"""``import aiolibp2p`` is cheap and has no side effects (packaging contract, see README "Wheels").

Each case imports the package in a fresh interpreter, with HOME and the data directories pointing
at empty temporary directories, and compares the interpreter's state before and after.
scripts/build-wheel checks the same against the installed wheels and measures the import time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = r"""
import json, logging, signal, sys, threading, warnings
threads = threading.enumerate()
root_handlers = list(logging.getLogger().handlers)
sigs = {int(s): signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
hook, filters = sys.excepthook, list(warnings.filters)
before = set(sys.modules)
import aiolibp2p
print(json.dumps({
    "threads": [t.name for t in threading.enumerate() if t not in threads],
    "root_handlers_changed": logging.getLogger().handlers != root_handlers,
    "loggers_with_handlers": sorted(
        name for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
        and any(not isinstance(h, logging.NullHandler) for h in lg.handlers)
    ),
    "signals_changed": {int(s): signal.getsignal(s) for s in sigs} != sigs,
    "excepthook_changed": sys.excepthook is not hook,
    "warning_filters_changed": list(warnings.filters) != filters,
    "new_modules": sorted(set(sys.modules) - before),
}))
"""


def probe(tmp_path: Path) -> tuple[dict[str, Any], str]:
    home = tmp_path / "home"
    cwd = tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "AIOLIBP2P_HOME": str(home / "aiolibp2p"),
    }
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert not list(home.iterdir()), "import aiolibp2p created files under HOME"
    assert not list(cwd.iterdir()), "import aiolibp2p created files in the working directory"
    return json.loads(proc.stdout), proc.stderr


def test_import_starts_nothing_and_configures_nothing(tmp_path: Path) -> None:
    state, stderr = probe(tmp_path)
    assert stderr == "", "import aiolibp2p wrote to stderr"
    assert state["threads"] == [], "import aiolibp2p started threads"
    assert state["root_handlers_changed"] is False, "import aiolibp2p configured the root logger"
    assert state["loggers_with_handlers"] == [], "library loggers must not get handlers at import"
    assert state["signals_changed"] is False, "import aiolibp2p installed signal handlers"
    assert state["excepthook_changed"] is False
    assert state["warning_filters_changed"] is False


def test_import_pulls_in_no_event_loop_and_no_heavy_dependency(tmp_path: Path) -> None:
    """The import-time budget (150 ms, scripts/build-wheel) relies on these staying lazy."""
    state, _ = probe(tmp_path)
    new = set(state["new_modules"])
    for heavy in ("asyncio", "uvloop", "cryptography", "google.protobuf", "multiaddr", "trio"):
        assert heavy not in new, f"import aiolibp2p imports {heavy}: load it where it is used"
