"""aiolibp2p: a fast libp2p implementation for asyncio.

Importing the package has no side effects: no logging configuration, no event loop, no I/O.
"""

from __future__ import annotations

from aiolibp2p._version import __version__

__all__ = ["__version__", "accelerated", "build_info"]


def accelerated() -> dict[str, str]:
    """Report, per hot path, which twin is active: ``"c"`` (compiled) or ``"py"`` (pure Python).

    >>> sorted(accelerated())
    ['multistream', 'varint']
    """
    from aiolibp2p._accel import implementations

    return implementations()


def build_info() -> dict[str, str]:
    """Describe how this installation was built.

    Returns ``{"kind": "compiled" | "pure" | "source", "reason": ...}``.
    """
    try:
        from aiolibp2p._build_info import BUILD_KIND, BUILD_REASON
    except ImportError:  # running from a source tree that was never built
        return {"kind": "source", "reason": "not built by setup.py"}
    return {"kind": BUILD_KIND, "reason": BUILD_REASON}
