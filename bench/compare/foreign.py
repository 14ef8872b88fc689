#!/usr/bin/env python3
"""The same scenarios against the foreign libp2p stacks: js-libp2p and py-libp2p.

    python bench/compare/foreign.py --stack js|py [--size 1GiB] [--muxer yamux,mplex]
                                    [--repeat 3] [--pings 200]

Drives the interop peers (``tests/interop/js/peer.mjs`` on Node 22, ``tests/interop/py/peer.py``
in its own venv, both installed on first use by ``tests/interop/_peers.py``) over their JSON
command protocol, both ends of the same stack, in separate processes on loopback:

* 1-stream throughput: the dialer's ``perf`` command (``/perf/1.0.0``, each stack's own client
  and server, 64 KiB writes) uploading ``--size`` bytes, then downloading them; MiB/s from the
  peer's own ``time_seconds`` (stream open to the server's end of stream), median of
  ``--repeat``, on a connection dialed beforehand;
* ping RTT: the dialer's ``ping`` command ``--pings`` times; its ``rtt_ms`` is one 32-byte
  exchange timed inside the peer (on a new ping stream each time: the peers have no command
  that keeps one open).

Not measured here (no peer command for them): new connection + stream + echo, and RSS per idle
connection; the report shows the figures of ``/work/shared/research/peers.md`` for those,
labelled as such.  Prints one JSON line (``"skipped"`` with the reason when a peer cannot be
installed or started).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "interop"))

from _common import MIB, emit, parse_size, summary

SCENARIO = "foreign"
STACKS = {"js": "js-libp2p", "py": "py-libp2p"}


async def pings(dialer: Any, peer: str, count: int) -> dict[str, Any]:
    """``count`` pings; a failed one is retried twice after a pause (js-libp2p allows one
    outbound ping stream per connection, and the peer's command opens two: back to back, the
    previous one may not be closed yet)."""
    import _peers

    rtts: list[float] = []
    failures = 0
    for _ in range(count):
        for attempt in range(3):
            try:
                r = await dialer.command("ping", peer=peer, timeout=30)
            except _peers.ForeignPeerError:
                failures += 1
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05)
            else:
                rtts.append(float(r["rtt_ms"]) * 1000)
                break
    return {"ping_us": summary(rtts), "ping_retries": failures}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import _peers

    executable = _peers.install_js() if args.stack == "js" else _peers.install_py()
    out: dict[str, Any] = {}
    for muxer in args.muxers:
        listener = await _peers.ForeignPeer.start(args.stack, executable=executable, muxer=muxer)
        try:
            dialer = await _peers.ForeignPeer.start(args.stack, executable=executable, muxer=muxer)
            try:
                await dialer.command("dial", addr=listener.addr, timeout=30)
                res: dict[str, Any] = {}
                for direction in args.directions:
                    up = args.size if direction == "upload" else 0
                    down = args.size if direction == "download" else 0
                    await dialer.command(  # warm-up
                        "perf",
                        addr=listener.addr,
                        upload_bytes=min(up, 16 * MIB),
                        download_bytes=min(down, 16 * MIB),
                        timeout=120,
                    )
                    runs = []
                    for _ in range(args.repeat):
                        r = await dialer.command(
                            "perf",
                            addr=listener.addr,
                            upload_bytes=up,
                            download_bytes=down,
                            timeout=args.timeout,
                        )
                        if r["download_bytes"] != down:
                            raise RuntimeError(f"perf: got {r['download_bytes']} of {down}")
                        runs.append(args.size / float(r["time_seconds"]) / MIB)
                    res[direction] = {
                        "mib_s": statistics.median(runs),
                        "runs_mib_s": [round(x, 1) for x in runs],
                    }
                if muxer == args.muxers[0] and args.pings:
                    out.update(await pings(dialer, listener.peer_id, args.pings))
                out[muxer] = res
            finally:
                await dialer.close()
        finally:
            await listener.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=sorted(STACKS), required=True)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--muxer", default="yamux,mplex")
    parser.add_argument("--direction", default="upload,download")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900.0, help="per perf run (s)")
    args = parser.parse_args(argv)
    args.muxers = [m for m in args.muxer.split(",") if m]
    args.directions = [d for d in args.direction.split(",") if d]
    result: dict[str, Any] = {
        "scenario": SCENARIO,
        "impl": STACKS[args.stack],
        "size": args.size,
        "repeat": args.repeat,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import _peers
    except ImportError as exc:
        result["skipped"] = f"tests/interop/_peers.py not importable: {exc}"
        emit(result)
        return 0
    try:
        result["results"] = _peers.run(measure(args), timeout=args.timeout * 8)
    except _peers.InstallError as exc:
        result["skipped"] = f"{STACKS[args.stack]} peer not installable: {exc}"
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        emit(result)
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
