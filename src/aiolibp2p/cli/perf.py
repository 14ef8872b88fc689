"""``aiolibp2p perf``: the ``/perf/1.0.0`` client on the command line.

stdout gets one JSON object per iteration in the test-plans perf shape,
``{"type": "final", "timeSeconds": ..., "uploadBytes": ..., "downloadBytes": ...}``, and nothing
else; progress and errors go to stderr.  Without ``--new-connection`` the client connects once
before the first iteration and times each stream (upload, end of stream, download); with it,
every iteration dials a fresh connection and its time includes the dial (TCP, Noise, muxer), so
1 byte up and 1 byte down measures connection establishment plus one round trip, as the perf
test plan's latency benchmark does.
"""

from __future__ import annotations

import asyncio
import json
import sys

__all__ = ["run_perf"]


async def run_perf(
    target: str,
    *,
    upload_bytes: int,
    download_bytes: int,
    iterations: int,
    new_connection: bool,
    timeout: float,
) -> int:
    """Run ``iterations`` perf exchanges against ``target`` (a multiaddr with /p2p/)."""
    import aiolibp2p
    from aiolibp2p import options as o
    from aiolibp2p.core.errors import ProtocolNotSupported
    from aiolibp2p.net.host import PeerInfo
    from aiolibp2p.net.services.perf import perf

    info = PeerInfo.from_multiaddr(target)  # DialError unless it names a peer
    host = await aiolibp2p.new_host(o.timeouts(connect=timeout, dial=timeout))
    try:
        if not new_connection:
            conn = await host.connect(info, timeout=timeout)
            print(f"connected to {conn.remote_peer} ({conn.muxer})", file=sys.stderr, flush=True)
        for i in range(iterations):
            try:
                result = await perf(
                    host,
                    info,
                    upload_bytes=upload_bytes,
                    download_bytes=download_bytes,
                    timeout=timeout,
                )
            except asyncio.TimeoutError:
                print(
                    f"aiolibp2p: error: perf iteration {i + 1} did not finish in {timeout} s",
                    file=sys.stderr,
                )
                return 1
            except ProtocolNotSupported:
                print(
                    f"aiolibp2p: error: {info.peer_id} does not serve /perf/1.0.0 "
                    "(an aiolibp2p node serves it with `aiolibp2p node --perf`)",
                    file=sys.stderr,
                )
                return 1
            print(json.dumps(result.to_json()), flush=True)
            if new_connection:
                await host.disconnect(info.peer_id)
    finally:
        await host.close()
    return 0
