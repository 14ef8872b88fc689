"""Micro benchmarks of the varint twins (pytest-benchmark): ``pytest bench/micro``.

Each case runs against the pure twin (``py``) and the compiled twin (``c``), imported directly;
compare them within a group.  ``bench/micro/ratios.py`` prints the same comparison as a table.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from workloads import lp_buffer

KINDS = ["py", "c"]
LP, LP_COUNT = lp_buffer()
BODY = bytes(range(32))


def twin(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"aiolibp2p._accel.varint_{kind}")
    except ImportError as exc:  # the compiled twin is not built: say so rather than fail
        pytest.skip(f"varint_{kind} not importable: {exc}")


@pytest.mark.parametrize("kind", KINDS)
def test_split_lp_64k(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    benchmark.group = f"varint.split_lp: {len(LP)} B, {LP_COUNT} messages of 8-40 B (bytes)"
    messages, end = benchmark(varint.split_lp, LP, max_size=1024)
    assert (len(messages), end) == (LP_COUNT, len(LP))


@pytest.mark.parametrize("kind", KINDS)
def test_split_lp_64k_bytearray(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    buf = bytearray(LP)
    benchmark.group = f"varint.split_lp: {len(LP)} B, {LP_COUNT} messages of 8-40 B (bytearray)"
    messages, end = benchmark(varint.split_lp, buf, max_size=1024)
    assert (len(messages), end) == (LP_COUNT, len(LP))


@pytest.mark.parametrize("kind", KINDS)
def test_encode_uvarint(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    benchmark.group = "varint.encode_uvarint(300)"
    assert benchmark(varint.encode_uvarint, 300) == b"\xac\x02"


@pytest.mark.parametrize("kind", KINDS)
def test_encode_uvarint_max(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    benchmark.group = "varint.encode_uvarint(2**63 - 1)"
    assert len(benchmark(varint.encode_uvarint, 2**63 - 1)) == 9


@pytest.mark.parametrize("kind", KINDS)
def test_encode_uvarint_into(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    buf = bytearray(16)
    benchmark.group = "varint.encode_uvarint_into(300, bytearray(16), 4)"
    assert benchmark(varint.encode_uvarint_into, 300, buf, 4) == 6


@pytest.mark.parametrize("kind", KINDS)
def test_decode_uvarint(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    benchmark.group = "varint.decode_uvarint(b'\\xac\\x02')"
    assert benchmark(varint.decode_uvarint, b"\xac\x02") == (300, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_lp(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    benchmark.group = "varint.encode_lp(32 B)"
    assert len(benchmark(varint.encode_lp, BODY)) == 33


@pytest.mark.parametrize("kind", KINDS)
def test_decode_lp(benchmark: Any, kind: str) -> None:
    varint = twin(kind)
    framed = b"\x20" + BODY
    benchmark.group = "varint.decode_lp(32 B)"
    assert benchmark(varint.decode_lp, framed, max_size=1024) == (BODY, 33)
