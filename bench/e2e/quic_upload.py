#!/usr/bin/env python3
"""One-stream upload between two processes over QUIC-v1 (or TCP for comparison).

    python bench/e2e/quic_upload.py [--mib 256] [--loop uvloop|asyncio] [--transport quic|tcp]
                                    [--security noise|tls] [--impl compiled|pure]

A thin wrapper over ``throughput.py --direction upload --repeat 1`` (the same server, client and
perf protocol): the client process writes ``--mib`` MiB in 64 KiB writes to the server process.
Prints wall-clock MiB/s and the CPU seconds per GiB (user + sys) each process spent during the
transfer: on a shared machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput
from _common import GIB, IMPLS, LOOPS, MIB, SECURITY_IDS, TRANSPORTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    parser.add_argument("--impl", choices=IMPLS, default="compiled")
    parser.add_argument("--transport", choices=TRANSPORTS, default="quic")
    parser.add_argument("--security", choices=tuple(SECURITY_IDS))
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    targs = ["--transport", args.transport, "--muxer", "yamux", "--direction", "upload"]
    targs += ["--size", f"{args.mib}MiB", "--repeat", "1", "--warmup", "4MiB"]
    targs += ["--impl", args.impl, "--loop", args.loop, "--timeout", str(args.timeout)]
    if args.security:
        targs += ["--security", args.security]
    tp_args = throughput.parse_args(targs)
    res = throughput.measure_muxer(tp_args, tp_args.muxers[0])["upload"]
    size = args.mib * MIB
    print(
        json.dumps(
            {
                "transport": args.transport,
                "security": tp_args.security,
                "mib": args.mib,
                "seconds": round(size / MIB / res["mib_s"], 3),
                "mib_per_s": round(res["mib_s"], 1),
                "sender_cpu_s_per_gib": round(res["client_cpu_s"] * GIB / size, 2),
                "receiver_cpu_s_per_gib": round(res["server_cpu_s"] * GIB / size, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
