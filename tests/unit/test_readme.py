"""Every ```python block of the README runs, so the examples stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = (
    re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if README.exists() else []
)


def test_readme_has_examples() -> None:
    assert README.exists(), "run the suite from a checkout: the README examples are tested"
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(BLOCKS[index], f"README.md[python block {index}]", "exec")
    exec(code, {"__name__": "__readme__"})


def test_readme_commands_are_the_ones_ci_uses() -> None:
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test" in text and "scripts/test" in ci
    assert "aiolibp2p id" in text
