#!/usr/bin/env python3
"""Single-stream throughput over a far, capped link: 63 ms RTT and 1 Gbit/s (bench/proxy.py).

    python bench/e2e/wan_throughput.py [--size 1GiB] [--rtt-ms 63] [--rate-mbit 1000]
                                       [--direction upload,download] [--impl ...] [--loop ...]

Three processes: the server (``_node.py``), the proxy (half the RTT each way, the rate as a
serialization delay on a shared link per direction, bounded queue) and the client
(``throughput.py --role client``, one ``/perf/1.0.0`` stream per measurement, no warm-up: each
stream starts from yamux's 256 KiB window, so window auto-tuning is part of what is measured).
The connection is set up before timing.  Reported per direction: MiB/s and the share of the
link rate.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
    HERE,
    MIB,
    Child,
    add_common_args,
    base_result,
    child_env,
    children,
    emit,
    fail,
    parse_size,
    script_argv,
)

SCENARIO = "wan_throughput"


def orchestrate(args: argparse.Namespace) -> int:
    result = base_result(SCENARIO, args)
    link_mib_s = args.rate_mbit * 1e6 / 8 / MIB
    result.update(
        {
            "size": args.size,
            "rtt_ms": args.rtt_ms,
            "rate_mbit": args.rate_mbit,
            "link_mib_s": round(link_mib_s, 2),
            "muxer": args.muxer,
            "repeat": args.repeat,
        }
    )
    env = child_env(args.impl)
    common = ["--impl", args.impl, "--loop", args.loop]
    try:
        with children() as kids:
            server = Child(
                script_argv(HERE / "_node.py", *common, "--muxer", args.muxer),
                env=env,
                name="server",
            )
            kids.append(server)
            addr = server.read_json(60, "listening")["addr"]
            parts = addr.split("/")
            target, peer = f"{parts[2]}:{parts[4]}", parts[6]
            proxy_args = ["--target", target, "--rtt-ms", str(args.rtt_ms)]
            proxy_args += ["--rate-mbit", str(args.rate_mbit), "--no-udp", "--stdin-eof-exit"]
            if args.queue_kib:
                proxy_args += ["--queue-kib", str(args.queue_kib)]
            proxy = Child(script_argv(BENCH / "proxy.py", *proxy_args), env=env, name="proxy")
            kids.append(proxy)
            host, _, port = proxy.read_json(30, "listening")["tcp"].rpartition(":")
            client_args = [*common, "--role", "client", "--muxer", args.muxer]
            client_args += ["--target", f"/ip4/{host}/tcp/{port}/p2p/{peer}"]
            client_args += ["--size", str(args.size), "--direction", ",".join(args.directions)]
            client_args += ["--repeat", str(args.repeat), "--warmup", "0"]
            client_args += ["--timeout", str(args.timeout)]
            cli = Child(script_argv(HERE / "throughput.py", *client_args), env=env, name="client")
            kids.append(cli)
            msg = cli.read_json(args.timeout, "result")
    except Exception as exc:
        return fail(SCENARIO, args, exc)
    results = {}
    for direction in args.directions:
        runs = msg["results"][direction]["runs_mib_s"]
        median = statistics.median(runs)
        results[direction] = {
            "mib_s": median,
            "pct_of_link": 100.0 * median / link_mib_s,
            "runs_mib_s": [round(r, 1) for r in runs],
        }
    result["results"] = results
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, default_timeout=600.0)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--rtt-ms", type=float, default=63.0)
    parser.add_argument("--rate-mbit", type=float, default=1000.0)
    parser.add_argument("--queue-kib", type=int, default=0, help="proxy queue (default 10 ms)")
    parser.add_argument("--direction", default="upload,download")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
    args = parser.parse_args(argv)
    args.directions = [d for d in args.direction.split(",") if d]
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
