"""aiolibp2p: a fast libp2p implementation for asyncio.

Importing the package has no side effects: no logging configuration, no event loop, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiolibp2p._version import __version__

if TYPE_CHECKING:
    from aiolibp2p import options
    from aiolibp2p.config import HostConfig, build_config
    from aiolibp2p.net.host import Host, PeerInfo, new_host

__all__ = [
    "Host",
    "HostConfig",
    "PeerInfo",
    "__version__",
    "accelerated",
    "build_config",
    "build_info",
    "new_host",
    "options",
]

# Loaded on first use, so that ``import aiolibp2p`` stays cheap and free of side effects.
_LAZY = {
    "Host": "aiolibp2p.net.host",
    "PeerInfo": "aiolibp2p.net.host",
    "new_host": "aiolibp2p.net.host",
    "HostConfig": "aiolibp2p.config",
    "build_config": "aiolibp2p.config",
}


def __getattr__(name: str) -> Any:
    if name == "options":
        import importlib

        return importlib.import_module("aiolibp2p.options")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiolibp2p' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def accelerated() -> dict[str, str]:
    """Report, per hot path, which twin is active: ``"c"`` (compiled) or ``"py"`` (pure Python).

    >>> sorted(accelerated())
    ['multistream', 'varint']
    """
    from aiolibp2p._accel import implementations

    return implementations()


def build_info() -> dict[str, str]:
    """Describe how this installation was built.

    Returns ``{"kind": "compiled" | "pure" | "source", "reason": ...}``, plus ``"fallbacks"``
    when a compiled twin is present but could not be used (for example ``noise_cipher`` when no
    usable libcrypto was found): which hot paths fell back to pure Python, and why.
    """
    from aiolibp2p._accel import fallbacks

    try:
        from aiolibp2p._build_info import BUILD_KIND, BUILD_REASON
    except ImportError:  # running from a source tree that was never built
        info = {"kind": "source", "reason": "not built by setup.py"}
    else:
        info = {"kind": BUILD_KIND, "reason": BUILD_REASON}
    failed = fallbacks()
    if failed:
        info["fallbacks"] = "; ".join(f"{name}: {why}" for name, why in failed.items())
    return info
