"""Build script: compiles every ``ext/<name>.pyx`` into ``aiolibp2p._accel.<name>``.

The build never fails for want of a compiler.  It makes a *pure-Python* build instead when
``AIOLIBP2P_NO_EXTENSIONS`` is set, on a non-CPython interpreter, when Cython is missing, or when
compiling fails; it prints which kind of build it made (``pip install -v`` shows the line) and
records it in ``aiolibp2p/_build_info.py`` (see ``aiolibp2p.build_info()``).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
EXT_DIR = HERE / "ext"
PACKAGE = "aiolibp2p"


def _extensions_decision() -> tuple[bool, str]:
    if os.environ.get("AIOLIBP2P_NO_EXTENSIONS", "") not in ("", "0"):
        return False, "AIOLIBP2P_NO_EXTENSIONS is set"
    if platform.python_implementation() != "CPython":
        return False, f"{platform.python_implementation()} is not CPython"
    try:
        import Cython  # noqa: F401
    except ImportError:
        return False, "Cython is not installed"
    return True, "all extensions compiled"


WANT_EXTENSIONS, REASON = _extensions_decision()


def _pyx_sources() -> list[Path]:
    return sorted(EXT_DIR.glob("*.pyx"))


def _extensions() -> list[Extension]:
    if not WANT_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    exts = [
        Extension(
            f"{PACKAGE}._accel.{src.stem}",
            [str(src.relative_to(HERE))],
            extra_compile_args=["-O3"] if sys.platform != "win32" else [],
        )
        for src in _pyx_sources()
    ]
    return cythonize(
        exts,
        include_path=[str(EXT_DIR)],
        build_dir="build/cython",  # generated C stays out of the tree and out of the wheel
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
            "binding": True,
        },
        quiet=True,
    )


def _write_build_info(package_dir: Path, kind: str, reason: str) -> None:
    package_dir.mkdir(parents=True, exist_ok=True)
    (package_dir / "_build_info.py").write_text(
        '"""Written by setup.py: how this installation was built."""\n'
        f"BUILD_KIND = {kind!r}\nBUILD_REASON = {reason!r}\n"
    )


def _announce(kind: str, reason: str) -> None:
    print(f"aiolibp2p: {kind} build ({reason})", file=sys.stderr, flush=True)


class BuildPy(build_py):
    """Records the intended build kind; ``BuildExt`` overwrites it if compiling fails."""

    def run(self) -> None:
        super().run()
        kind = "compiled" if WANT_EXTENSIONS else "pure"
        _write_build_info(Path(self.build_lib) / PACKAGE, kind, REASON)
        if not WANT_EXTENSIONS:
            _announce(kind, REASON)


class BuildExt(build_ext):
    """Compiles the twins; on any compiler failure, falls back to a working pure build."""

    def run(self) -> None:
        if not self.extensions:  # cythonize failed or nothing to compile: a pure build
            self._record("pure", REASON if not WANT_EXTENSIONS else "no extension sources")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, broken toolchain, missing headers, ...
            self._fallback(f"compiling failed: {type(exc).__name__}: {exc}")
            return
        names = ", ".join(ext.name.rsplit(".", 1)[1] for ext in self.extensions)
        self._record("compiled", f"{len(self.extensions)} extensions: {names}")

    def _fallback(self, reason: str) -> None:
        # Remove any partial output so the pure twins are selected at import.
        for ext in self.extensions:
            Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
        self.distribution.ext_modules = []
        # bdist_wheel chose a platform wheel before the build; make it a pure one (py3-none-any,
        # files at the root rather than under .data/purelib) now that nothing was compiled.
        bdist_wheel = self.distribution.command_obj.get("bdist_wheel")
        if bdist_wheel is not None:
            bdist_wheel.root_is_pure = True
        self._record("pure", reason)

    def _record(self, kind: str, reason: str) -> None:
        target = (HERE / "src" if self.inplace else Path(self.build_lib)) / PACKAGE
        _write_build_info(target, kind, reason)
        _announce(kind, reason)


def _safe_extensions() -> list[Extension]:
    global WANT_EXTENSIONS, REASON
    try:
        return _extensions()
    except Exception as exc:  # Cython itself failed: still install a working pure build
        WANT_EXTENSIONS, REASON = False, f"cythonize failed: {type(exc).__name__}: {exc}"
        return []


setup(
    ext_modules=_safe_extensions(),
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
)
