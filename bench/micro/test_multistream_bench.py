"""Micro benchmarks of the multistream twins (pytest-benchmark): ``pytest bench/micro``.

Each case runs against the pure twin (``py``) and the compiled twin (``c``), imported directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from workloads import ms_buffer

KINDS = ["py", "c"]
MS, MS_COUNT = ms_buffer()
HEADER = "/multistream/1.0.0"
NEGOTIATION = b"\x13/multistream/1.0.0\n\x0f/ipfs/id/1.0.0\n"


def twin(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"aiolibp2p._accel.multistream_{kind}")
    except ImportError as exc:
        pytest.skip(f"multistream_{kind} not importable: {exc}")


@pytest.mark.parametrize("kind", KINDS)
def test_split_messages_64k(benchmark: Any, kind: str) -> None:
    ms = twin(kind)
    benchmark.group = f"multistream.split_messages: {len(MS)} B, {MS_COUNT} protocol ids (bytes)"
    messages, end = benchmark(ms.split_messages, MS)
    assert (len(messages), end) == (MS_COUNT, len(MS))


@pytest.mark.parametrize("kind", KINDS)
def test_split_messages_64k_bytearray(benchmark: Any, kind: str) -> None:
    ms = twin(kind)
    buf = bytearray(MS)
    benchmark.group = (
        f"multistream.split_messages: {len(MS)} B, {MS_COUNT} protocol ids (bytearray)"
    )
    messages, end = benchmark(ms.split_messages, buf)
    assert (len(messages), end) == (MS_COUNT, len(MS))


@pytest.mark.parametrize("kind", KINDS)
def test_split_negotiation(benchmark: Any, kind: str) -> None:
    ms = twin(kind)
    benchmark.group = "multistream.split_messages(header + proposal)"
    assert benchmark(ms.split_messages, NEGOTIATION) == (
        [b"/multistream/1.0.0", b"/ipfs/id/1.0.0"],
        len(NEGOTIATION),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_encode_message(benchmark: Any, kind: str) -> None:
    ms = twin(kind)
    benchmark.group = "multistream.encode_message('/ipfs/id/1.0.0')"
    assert benchmark(ms.encode_message, "/ipfs/id/1.0.0") == b"\x0f/ipfs/id/1.0.0\n"


@pytest.mark.parametrize("kind", KINDS)
def test_encode_messages(benchmark: Any, kind: str) -> None:
    ms = twin(kind)
    benchmark.group = "multistream.encode_messages([header, proposal])"
    assert benchmark(ms.encode_messages, [HEADER, "/ipfs/id/1.0.0"]) == NEGOTIATION
