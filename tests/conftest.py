"""Shared fixtures.

``impl`` runs a hot-path test against both twins (ids ``py`` and ``c``; the ``c`` case carries the
``c_extension`` mark).  With ``AIOLIBP2P_NO_EXTENSIONS`` set, the ``c`` case is skipped and says so.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from aiolibp2p import _accel


class Twins:
    """One implementation (``py`` or ``c``) of every hot path, e.g. ``impl.varint``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._modules: dict[str, ModuleType] = {}

    def __getattr__(self, name: str) -> ModuleType:
        if name not in _accel.HOT_PATHS:
            raise AttributeError(name)
        if name not in self._modules:
            self._modules[name] = importlib.import_module(f"aiolibp2p._accel.{name}_{self.kind}")
        return self._modules[name]

    def __repr__(self) -> str:
        return f"<Twins {self.kind}>"


def _load(kind: str) -> Twins:
    if kind == "c" and _accel.NO_EXTENSIONS:
        pytest.skip("compiled twins deselected by AIOLIBP2P_NO_EXTENSIONS")
    twins = Twins(kind)
    for name in _accel.HOT_PATHS:  # fail loudly (not skip) if a compiled twin is missing
        getattr(twins, name)
    return twins


@pytest.fixture(
    scope="session",
    params=[pytest.param("py"), pytest.param("c", marks=pytest.mark.c_extension)],
)
def impl(request: pytest.FixtureRequest) -> Twins:
    """Each hot-path module of one twin kind."""
    return _load(request.param)


@pytest.fixture(scope="session")
def py_impl() -> Twins:
    """The pure-Python reference twins (for differential tests)."""
    return _load("py")


@pytest.fixture(scope="session")
def c_impl() -> Twins:
    """The compiled twins (for differential tests); skipped when extensions are deselected."""
    return _load("c")


# Hypothesis: no per-example deadline (two shared cores make timings noisy); the "ci" profile
# (selected with HYPOTHESIS_PROFILE=ci) looks harder.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "default"))
