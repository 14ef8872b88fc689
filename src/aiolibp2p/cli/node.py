"""``aiolibp2p node`` and ``aiolibp2p ping``: the asyncio side of the command line."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from multiaddr import Multiaddr

DEFAULT_PORT = 4001
DEFAULT_LISTEN = (f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}", f"/ip6/::/tcp/{DEFAULT_PORT}")


def run(coro: object) -> int:
    """Run ``coro`` on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def interface_addrs(addr: Multiaddr) -> list[Multiaddr]:
    """Expand a wildcard listen address (0.0.0.0 / ::) into one address per local interface."""
    text = str(addr)
    parts = text.split("/")
    if len(parts) < 3 or parts[2] not in ("0.0.0.0", "::"):
        return [addr]
    family = parts[1]
    ips: list[str] = []
    try:
        import socket

        import psutil  # type: ignore[import-untyped]  # installed with multiaddr; optional

        want = socket.AF_INET if family == "ip4" else socket.AF_INET6
        for snics in psutil.net_if_addrs().values():
            for snic in snics:
                if snic.family == want:
                    ips.append(snic.address.split("%", 1)[0])
    except Exception:
        ips = ["127.0.0.1"] if family == "ip4" else ["::1"]
    out = []
    for ip in dict.fromkeys(ips):
        try:
            out.append(Multiaddr("/".join(["", family, ip, *parts[3:]])))
        except Exception:
            continue
    return out or [addr]


async def _start_host(listen: Sequence[str], identity_path: Path, explicit: bool) -> object:
    import aiolibp2p
    from aiolibp2p import options as o
    from aiolibp2p.core.crypto import load_or_create_private_key_file

    key, _created = load_or_create_private_key_file(identity_path)
    addrs = list(listen)
    try:
        return await aiolibp2p.new_host(o.identity(key), o.listen(*addrs))
    except OSError as exc:
        if explicit or exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise
    # The default port is taken (or IPv6 is off): fall back to a free port, IPv4 first.
    fallback = [a.replace(f"/tcp/{DEFAULT_PORT}", "/tcp/0") for a in addrs]
    try:
        return await aiolibp2p.new_host(o.identity(key), o.listen(*fallback))
    except OSError:
        return await aiolibp2p.new_host(o.identity(key), o.listen(fallback[0]))


async def serve(listen: Sequence[str] | None, identity_path: Path) -> int:
    """Start a node, print its addresses, serve until SIGINT/SIGTERM, then shut down cleanly."""
    from aiolibp2p.core.multiaddr import join_p2p

    host = await _start_host(listen or DEFAULT_LISTEN, identity_path, explicit=bool(listen))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for addr in host.listen_addrs:  # type: ignore[attr-defined]
            for concrete in interface_addrs(addr):
                print(join_p2p(concrete, host.peer_id), flush=True)  # type: ignore[attr-defined]
        peer = host.peer_id  # type: ignore[attr-defined]
        print(f"aiolibp2p node {peer} running; Ctrl-C stops it", file=sys.stderr, flush=True)
        await stop.wait()
        print("shutting down", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await host.close()  # type: ignore[attr-defined]
    return 0


async def ping(target: str, count: int, interval: float, timeout: float) -> int:
    """Dial ``target`` (a multiaddr with /p2p/), ping it ``count`` times, print the RTTs."""
    import aiolibp2p
    from aiolibp2p import options as o

    host = await aiolibp2p.new_host(o.timeouts(connect=timeout, dial=timeout))
    try:
        start = asyncio.get_running_loop().time()
        conn = await host.connect(target)
        took = asyncio.get_running_loop().time() - start
        print(f"connected to {conn.remote_peer} in {took * 1000:.2f} ms ({conn.muxer})", flush=True)
        rtts = []
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
            rtt = await asyncio.wait_for(host.ping(conn.remote_peer), timeout)
            rtts.append(rtt)
            print(f"ping {i + 1}: {rtt * 1000:.3f} ms", flush=True)
        rtts.sort()
        print(
            f"{count} pings: min {rtts[0] * 1000:.3f} ms, "
            f"median {rtts[len(rtts) // 2] * 1000:.3f} ms, max {rtts[-1] * 1000:.3f} ms",
            flush=True,
        )
    finally:
        await host.close()
    return 0
