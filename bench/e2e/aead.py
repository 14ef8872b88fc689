#!/usr/bin/env python3
"""Ceiling: single-core ChaCha20-Poly1305 on 65519-byte frames, and our Noise framing against it.

    python bench/e2e/aead.py [--impl compiled|pure] [--seconds 0.3] [--repeat 7]

In one child process (so ``--impl`` selects the twins through the environment), one thread:

* ``aead_seal`` / ``aead_open``: ``cryptography``'s ``ChaCha20Poly1305.encrypt``/``decrypt``
  of 65519-byte plaintexts (a full Noise transport message), one call per frame: the ceiling;
* ``noise_seal`` / ``noise_open``: our ``NoiseTransport.encrypt``/``decrypt`` (the
  ``noise_cipher`` twin) on 16-frame buffers (1 MiB), as the connection calls them.

MiB/s of plaintext, best of ``--repeat`` runs of about ``--seconds`` each; the framing ratios
``noise_*`` / ``aead_*`` say what our framing costs on top of the AEAD.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MIB,
    Child,
    add_common_args,
    base_result,
    check_impl,
    child_env,
    children,
    emit,
    fail,
)

SCENARIO = "aead"
FRAME = 65519
FRAMES_PER_CALL = 16


def rates(fns: dict[str, Callable[[], int]], seconds: float, repeat: int) -> dict[str, float]:
    """Best MiB/s of each ``fn`` (which returns the plaintext bytes it processed).

    The runs are interleaved (a, b, c, d, a, b, ...) so that drift on a shared machine hits
    every figure alike; the best of ``repeat`` runs of ``seconds`` each is kept.
    """
    best = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        fn()  # warm
    for _ in range(repeat):
        for name, fn in fns.items():
            done, t0 = 0, time.perf_counter()
            while True:
                done += fn()
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
            best[name] = max(best[name], done / elapsed / MIB)
    return best


def measure(args: argparse.Namespace) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from aiolibp2p.proto.noise.machine import NoiseTransport

    twins = check_impl(args.impl)
    key_a, key_b = bytes(range(32)), bytes(range(32, 64))
    cipher = ChaCha20Poly1305(key_a)
    frame = bytes(range(256)) * (FRAME // 256) + bytes(FRAME % 256)
    nonces = [b"\x00" * 4 + i.to_bytes(8, "little") for i in range(FRAMES_PER_CALL)]
    sealed = [cipher.encrypt(n, frame, None) for n in nonces]

    def aead_seal() -> int:
        enc = cipher.encrypt
        for n in nonces:
            enc(n, frame, None)
        return FRAME * len(nonces)

    def aead_open() -> int:
        dec = cipher.decrypt
        for n, c in zip(nonces, sealed, strict=True):
            dec(n, c, None)
        return FRAME * len(nonces)

    buffer = frame * FRAMES_PER_CALL
    sender = NoiseTransport(key_a, key_b)

    def noise_seal() -> int:
        sender.encrypt(buffer)
        return len(buffer)

    batches = 32
    source = NoiseTransport(key_a, key_b)
    wire = [source.encrypt(buffer) for _ in range(batches)]
    state = {"receiver": NoiseTransport(key_b, key_a), "i": 0}

    def noise_open() -> int:
        if state["i"] == batches:  # the sealed batches were made with nonces 0..: start over
            state["receiver"], state["i"] = NoiseTransport(key_b, key_a), 0
        receiver = state["receiver"]
        out = receiver.decrypt(wire[state["i"]])  # type: ignore[attr-defined]
        state["i"] += 1  # type: ignore[operator]
        return len(out)

    figures = rates(
        {
            "aead_seal": aead_seal,
            "aead_open": aead_open,
            "noise_seal": noise_seal,
            "noise_open": noise_open,
        },
        args.seconds,
        args.repeat,
    )
    emit({"event": "result", "figures": figures, "twins": twins})


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    result["frame"] = FRAME
    argv = [
        sys.executable,
        str(Path(__file__)),
        "--role",
        "measure",
        "--impl",
        args.impl,
        "--seconds",
        str(args.seconds),
        "--repeat",
        str(args.repeat),
    ]
    try:
        with children() as kids:
            kid = Child(argv, env=child_env(args.impl), name="aead")
            kids.append(kid)
            msg = kid.read_json(args.timeout, "result")
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    fig = msg["figures"]
    result.update({k: round(v, 1) for k, v in fig.items()})
    result["seal_ratio"] = round(fig["noise_seal"] / fig["aead_seal"], 3)
    result["open_ratio"] = round(fig["noise_open"] / fig["aead_open"], 3)
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=120.0)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    args.loop = None  # no event loop involved
    if args.role == "measure":
        measure(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
