"""Micro benchmarks of the Noise transport twins (pytest-benchmark): ``pytest bench/micro``.

Each case runs against the pure twin (``py``) and the compiled twin (``c``), imported directly,
each sealer/opener built from the 32-byte key as the library builds it (the pure twin then uses
one ``ChaCha20Poly1305`` object, the compiled twin one libcrypto EVP context).  Two workloads:

* bulk: 4 full frames (4 x 65519 plaintext bytes, 256 KiB); the AEAD dominates, the twins differ
  only by the per-frame Python work;
* many small writes: 256 messages of 100 bytes, each its own frame (``seal_many`` in one call,
  or 256 ``seal`` calls), and the opening of those 256 frames from one buffer in one call.

``aead-floor`` cases time ``cryptography``'s ``ChaCha20Poly1305.encrypt``/``decrypt`` alone on
the same frames: the least the pure twin can cost (the compiled twin, calling libcrypto
directly, is below it).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

KINDS = ["py", "c"]
KEY = bytes(range(32))
CIPHER = ChaCha20Poly1305(KEY)
BULK = bytes(range(256)) * (4 * 65519 // 256) + bytes(4 * 65519 % 256)
SMALL = [bytes([i]) * 100 for i in range(256)]


def twin(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"aiolibp2p._accel.noise_cipher_{kind}")
    except ImportError as exc:
        pytest.skip(f"noise_cipher_{kind} not importable: {exc}")


REFERENCE = importlib.import_module("aiolibp2p._accel.noise_cipher_py")
BULK_SEALED = REFERENCE.FrameSealer(KEY).seal(BULK)
SMALL_SEALED = REFERENCE.FrameSealer(KEY).seal_many(SMALL)
NONCES = [b"\x00" * 4 + n.to_bytes(8, "little") for n in range(256)]


@pytest.mark.parametrize("kind", KINDS)
def test_seal_bulk(benchmark: Any, kind: str) -> None:
    nc = twin(kind)
    benchmark.group = "noise seal: 4 x 65519 B frames (256 KiB)"
    assert benchmark(lambda: nc.FrameSealer(KEY).seal(BULK)) == BULK_SEALED


@pytest.mark.parametrize("kind", KINDS)
def test_open_bulk(benchmark: Any, kind: str) -> None:
    nc = twin(kind)
    benchmark.group = "noise open: 4 x 65519 B frames (256 KiB)"
    assert benchmark(lambda: nc.FrameOpener(KEY).open(BULK_SEALED)) == BULK


@pytest.mark.parametrize("kind", KINDS)
def test_seal_many_small(benchmark: Any, kind: str) -> None:
    nc = twin(kind)
    benchmark.group = "noise seal_many: 256 x 100 B, one frame each, one call"
    assert benchmark(lambda: nc.FrameSealer(KEY).seal_many(SMALL)) == SMALL_SEALED


@pytest.mark.parametrize("kind", KINDS)
def test_seal_small_calls(benchmark: Any, kind: str) -> None:
    nc = twin(kind)
    benchmark.group = "noise seal: 256 x 100 B, one call each"

    def run() -> list[bytes]:
        seal = nc.FrameSealer(KEY).seal
        return [seal(chunk) for chunk in SMALL]

    assert b"".join(benchmark(run)) == SMALL_SEALED


@pytest.mark.parametrize("kind", KINDS)
def test_open_small(benchmark: Any, kind: str) -> None:
    nc = twin(kind)
    benchmark.group = "noise open: 256 x 100 B frames in one buffer"
    assert benchmark(lambda: nc.FrameOpener(KEY).open(SMALL_SEALED)) == b"".join(SMALL)


def test_seal_small_aead_floor(benchmark: Any) -> None:
    benchmark.group = "noise seal_many: 256 x 100 B, one frame each, one call"
    encrypt = CIPHER.encrypt
    benchmark(lambda: [encrypt(n, chunk, None) for n, chunk in zip(NONCES, SMALL, strict=True)])


def test_open_small_aead_floor(benchmark: Any) -> None:
    benchmark.group = "noise open: 256 x 100 B frames in one buffer"
    sealed = [CIPHER.encrypt(n, chunk, None) for n, chunk in zip(NONCES, SMALL, strict=True)]
    decrypt = CIPHER.decrypt
    benchmark(lambda: [decrypt(n, body, None) for n, body in zip(NONCES, sealed, strict=True)])
