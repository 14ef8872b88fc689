"""Hot-path selector: one name per hot path, bound to its compiled twin or its pure reference.

Each hot path ``<name>`` has a pure-Python reference ``_accel/<name>_py.py`` and a Cython twin
``ext/<name>_c.pyx`` compiled to ``aiolibp2p._accel.<name>_c``.  Both export exactly the same
public names.  Library code imports the selected module from here, never a twin directly::

    from aiolibp2p._accel import varint

``AIOLIBP2P_NO_EXTENSIONS`` set to a non-empty value other than ``0`` selects the pure twins.
A compiled twin that is present but fails to import (``noise_cipher_c`` raises ``ImportError``
when it finds no usable libcrypto) falls back to its pure twin; :func:`fallbacks` says why.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "HOT_PATHS",
    "NO_EXTENSIONS",
    "fallbacks",
    "implementations",
    "varint",
    "multistream",
    "noise_cipher",
    "yamux",
]

#: Every hot path that has a twin pair, in a stable order.
HOT_PATHS: tuple[str, ...] = ("varint", "multistream", "noise_cipher", "yamux")

NO_EXTENSIONS: bool = os.environ.get("AIOLIBP2P_NO_EXTENSIONS", "") not in ("", "0")

_selected: dict[str, str] = {}
_fallbacks: dict[str, str] = {}


def _select(name: str) -> ModuleType:
    if not NO_EXTENSIONS:
        try:
            module = importlib.import_module(f"{__name__}.{name}_c")
        except ImportError as exc:
            if not (isinstance(exc, ModuleNotFoundError) and exc.name == f"{__name__}.{name}_c"):
                _fallbacks[name] = str(exc)  # present but unusable (not: a pure build)
        else:
            _selected[name] = "c"
            return module
    _selected[name] = "py"
    return importlib.import_module(f"{__name__}.{name}_py")


def implementations() -> dict[str, str]:
    """Map each hot path to the twin in use: ``"c"`` (compiled) or ``"py"`` (pure Python)."""
    return {name: _selected[name] for name in HOT_PATHS}


def fallbacks() -> dict[str, str]:
    """Map each hot path whose compiled twin is present but failed to import to the reason."""
    return dict(_fallbacks)


if TYPE_CHECKING:  # both twins share one interface: type-check callers against the reference
    from aiolibp2p._accel import multistream_py as multistream
    from aiolibp2p._accel import noise_cipher_py as noise_cipher
    from aiolibp2p._accel import varint_py as varint
    from aiolibp2p._accel import yamux_py as yamux
else:
    varint = _select("varint")
    multistream = _select("multistream")
    noise_cipher = _select("noise_cipher")
    yamux = _select("yamux")
