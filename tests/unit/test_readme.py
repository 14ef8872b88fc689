"""Every ```python block of the README runs, so the examples stay true.

The README is read from the checkout: ``$AIOLIBP2P_CHECKOUT`` when set (scripts/build-wheel sets it
when it runs a copy of the tests against an installed wheel), else the checkout these tests live
in.  Only in a wheel run (``AIOLIBP2P_WHEEL_RUN=1``: scripts/build-wheel, cibuildwheel) may a
missing checkout skip these tests; in the normal suite it fails them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHECKOUT = Path(os.environ.get("AIOLIBP2P_CHECKOUT") or Path(__file__).resolve().parents[2])
WHEEL_RUN = os.environ.get("AIOLIBP2P_WHEEL_RUN", "") not in ("", "0")
README = CHECKOUT / "README.md"
BLOCKS = (
    re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if README.exists() else []
)


def needs_checkout(*names: str) -> None:
    """Skip (wheel run) or fail (normal suite) unless the checkout has these files."""
    missing = [name for name in names if not (CHECKOUT / name).exists()]
    if not missing:
        return
    if WHEEL_RUN:
        pytest.skip(
            f"wheel run without the checkout: {', '.join(missing)} not under {CHECKOUT} "
            "(set AIOLIBP2P_CHECKOUT to run it)"
        )
    pytest.fail(
        f"{', '.join(missing)} not under {CHECKOUT}: run the suite from the checkout "
        "(or set AIOLIBP2P_CHECKOUT); the README examples are tested"
    )


def test_readme_has_examples() -> None:
    needs_checkout("README.md")
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(BLOCKS[index], f"README.md[python block {index}]", "exec")
    exec(code, {"__name__": "__readme__"})


def test_readme_commands_are_the_ones_ci_uses() -> None:
    needs_checkout("README.md", ".ci/run")
    text = README.read_text()
    ci = (CHECKOUT / ".ci" / "run").read_text()
    assert "scripts/test" in text and "scripts/test" in ci
    assert "scripts/build-wheel" in text and "scripts/build-wheel" in ci
    assert "aiolibp2p id" in text
