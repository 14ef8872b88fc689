"""Micro benchmarks of the yamux codec twins (pytest-benchmark): ``pytest bench/micro``.

Each case runs against the pure twin (``py``) and the compiled twin (``c``), imported directly.
The workload generators live here (``ratios.py`` imports them); they are deterministic.

* small frames: 64 KiB of Window Updates and 100-byte Data frames on 32 streams, the mix of a
  chatty session (nothing to merge);
* bulk: 1 MiB of data on one stream in 64 KiB frames, as a fast sender emits it, received in
  65519-byte chunks (the plaintext of full Noise transport messages).
"""

from __future__ import annotations

import importlib
import random
import struct
from types import ModuleType
from typing import Any

import pytest

KINDS = ["py", "c"]
HEADER = struct.Struct(">BBHII")
SMALL_BUFFER_SIZE = 64 * 1024
BULK_SIZE = 1024 * 1024
BULK_FRAME = 64 * 1024
NOISE_CHUNK = 65519  # 65535 - 16: the plaintext of a full Noise transport message


def small_frames_buffer(size: int = SMALL_BUFFER_SIZE, seed: int = 3) -> tuple[bytes, int]:
    """Window Updates and 100-byte Data frames, filling at most ``size`` bytes.

    Returns ``(buffer, frame_count)``.
    """
    rng = random.Random(seed)
    out = bytearray()
    count = 0
    while True:
        sid = rng.randrange(1, 64, 2)
        if rng.random() < 0.5:
            frame = HEADER.pack(0, 1, 0, sid, rng.randrange(1, 1 << 20))
        else:
            frame = HEADER.pack(0, 0, 0, sid, 100) + rng.randbytes(100)
        if len(out) + len(frame) > size:
            return bytes(out), count
        out += frame
        count += 1


def bulk_payload(size: int = BULK_SIZE) -> bytes:
    return bytes(range(256)) * (size // 256)


def bulk_stream(size: int = BULK_SIZE, frame: int = BULK_FRAME) -> bytes:
    """``size`` bytes of data on stream 1 in ``frame``-byte Data frames."""
    payload = bulk_payload(size)
    return b"".join(
        HEADER.pack(0, 0, 0, 1, len(payload[i : i + frame])) + payload[i : i + frame]
        for i in range(0, size, frame)
    )


def feed_chunks(yamux: ModuleType, chunks: list[bytes]) -> int:
    """Feed ``chunks`` to a new reader; return the payload bytes handed out."""
    reader = yamux.FrameReader(max_data=16 * 1024 * 1024)
    total = 0
    for chunk in chunks:
        for item in reader.feed(chunk):
            total += item[3]
    return total


SMALL, SMALL_COUNT = small_frames_buffer()
BULK = bulk_payload()
BULK_STREAM = bulk_stream()
BULK_CHUNKS = [BULK_STREAM[i : i + NOISE_CHUNK] for i in range(0, len(BULK_STREAM), NOISE_CHUNK)]


def twin(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"aiolibp2p._accel.yamux_{kind}")
    except ImportError as exc:
        pytest.skip(f"yamux_{kind} not importable: {exc}")


@pytest.mark.parametrize("kind", KINDS)
def test_split_frames_small(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    benchmark.group = f"yamux.split_frames: {len(SMALL)} B, {SMALL_COUNT} small frames (bytes)"
    frames, end = benchmark(yamux.split_frames, SMALL, max_data=1 << 24)
    assert (len(frames), end) == (SMALL_COUNT, len(SMALL))


@pytest.mark.parametrize("kind", KINDS)
def test_split_frames_small_bytearray(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    buf = bytearray(SMALL)
    benchmark.group = f"yamux.split_frames: {len(SMALL)} B, {SMALL_COUNT} small frames (bytearray)"
    frames, end = benchmark(yamux.split_frames, buf, max_data=1 << 24)
    assert (len(frames), end) == (SMALL_COUNT, len(SMALL))


@pytest.mark.parametrize("kind", KINDS)
def test_reader_small(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    benchmark.group = f"yamux.FrameReader.feed: {len(SMALL)} B, {SMALL_COUNT} small frames"
    items = benchmark(lambda: yamux.FrameReader(max_data=1 << 24).feed(SMALL))
    frames, _ = yamux.split_frames(SMALL, max_data=1 << 24)
    assert len(items) <= SMALL_COUNT  # consecutive frames of one stream merge
    assert sum(i[3] for i in items if i[0] == 0) == sum(f[3] for f in frames if f[0] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_bulk(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    benchmark.group = "yamux.encode_data_frames: 1 MiB into 64 KiB frames"
    out = benchmark(yamux.encode_data_frames, 1, 0, BULK, BULK_FRAME)
    assert out == BULK_STREAM


@pytest.mark.parametrize("kind", KINDS)
def test_receive_bulk(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    benchmark.group = "yamux.FrameReader.feed: 1 MiB of 64 KiB frames in 65519 B chunks"
    assert benchmark(feed_chunks, yamux, BULK_CHUNKS) == BULK_SIZE


@pytest.mark.parametrize("kind", KINDS)
def test_encode_header(benchmark: Any, kind: str) -> None:
    yamux = twin(kind)
    benchmark.group = "yamux.encode_header (window update)"
    assert len(benchmark(yamux.encode_header, 1, 0, 3, 262144)) == 12
