"""``aiolibp2p node`` and ``aiolibp2p ping``: the asyncio side of the command line."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiolibp2p.core.multiaddr import Multiaddr

DEFAULT_PORT = 4001
DEFAULT_LISTEN_TCP = (f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}", f"/ip6/::/tcp/{DEFAULT_PORT}")
DEFAULT_LISTEN_QUIC = (
    f"/ip4/0.0.0.0/udp/{DEFAULT_PORT}/quic-v1",
    f"/ip6/::/udp/{DEFAULT_PORT}/quic-v1",
)


def default_listen() -> tuple[str, ...]:
    """TCP and, when the ``quic`` extra (aioquic) is installed, QUIC-v1: port 4001, IPv4 + IPv6."""
    import importlib.util

    if importlib.util.find_spec("aioquic") is None:
        return DEFAULT_LISTEN_TCP
    return DEFAULT_LISTEN_TCP + DEFAULT_LISTEN_QUIC


def run(coro: object) -> int:
    """Run ``coro`` on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def _local_ips(family: int) -> list[str]:
    """The addresses of the local interfaces, asked of the kernel (Linux; ``[]`` elsewhere).

    IPv4: ``SIOCGIFADDR`` on each interface (its primary address).  IPv6: ``/proc/net/if_inet6``,
    without link-local addresses, which a peer could only dial with a zone we cannot print.
    """
    import socket

    if not sys.platform.startswith("linux"):
        return []
    ips: list[str] = []
    if family == socket.AF_INET:
        import fcntl
        import struct

        siocgifaddr = 0x8915  # <linux/sockios.h>
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _index, name in socket.if_nameindex():
                request = struct.pack("256s", name.encode()[:15])  # struct ifreq, ifr_name
                try:
                    reply = fcntl.ioctl(sock.fileno(), siocgifaddr, request)
                except OSError:  # no IPv4 address on this interface
                    continue
                ips.append(socket.inet_ntoa(reply[20:24]))  # ifr_addr.sin_addr
        return ips
    # "<32 hex digits> <ifindex> <prefix length> <scope> <flags> <name>" per address
    with open("/proc/net/if_inet6", encoding="ascii") as table:
        for line in table:
            fields = line.split()
            if len(fields) < 6 or len(fields[0]) != 32:
                continue
            packed = bytes.fromhex(fields[0])
            if packed[0] == 0xFE and packed[1] & 0xC0 == 0x80:  # fe80::/10
                continue
            ips.append(socket.inet_ntop(socket.AF_INET6, packed))
    return ips


def interface_addrs(addr: Multiaddr) -> list[Multiaddr]:
    """Expand a wildcard listen address (0.0.0.0 / ::) into one address per local interface
    (loopback only where the interfaces cannot be listed)."""
    import socket

    text = str(addr)
    parts = text.split("/")
    if len(parts) < 3 or parts[2] not in ("0.0.0.0", "::"):
        return [addr]
    family = parts[1]
    try:
        ips = _local_ips(socket.AF_INET if family == "ip4" else socket.AF_INET6)
    except (OSError, ValueError):
        ips = []
    if not ips:
        ips = ["127.0.0.1"] if family == "ip4" else ["::1"]
    out = []
    for ip in dict.fromkeys(ips):
        try:
            out.append(Multiaddr("/".join(["", family, ip, *parts[3:]])))
        except ValueError:  # MultiaddrError
            continue
    return out or [addr]


async def _start_host(
    listen: Sequence[str], identity_path: Path, explicit: bool, perf: bool = False
) -> object:
    import aiolibp2p
    from aiolibp2p import options as o
    from aiolibp2p.core.crypto import load_or_create_private_key_file

    key, _created = load_or_create_private_key_file(identity_path)
    addrs = list(listen)
    services = o.services(perf=perf)
    try:
        return await aiolibp2p.new_host(o.identity(key), services, o.listen(*addrs))
    except OSError as exc:
        if explicit or exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise
    # The default port is taken (or IPv6 is off): fall back to free ports, then IPv4 only.
    fallback = [
        a.replace(f"/tcp/{DEFAULT_PORT}", "/tcp/0").replace(f"/udp/{DEFAULT_PORT}/", "/udp/0/")
        for a in addrs
    ]
    try:
        return await aiolibp2p.new_host(o.identity(key), services, o.listen(*fallback))
    except OSError:
        ipv4 = [a for a in fallback if a.startswith("/ip4/")] or fallback[:1]
        return await aiolibp2p.new_host(o.identity(key), services, o.listen(*ipv4))


async def serve(listen: Sequence[str] | None, identity_path: Path, *, perf: bool = False) -> int:
    """Start a node, print its addresses, serve until SIGINT/SIGTERM, then shut down cleanly.

    ``perf`` also serves ``/perf/1.0.0`` (off by default: an amplification vector)."""
    from aiolibp2p.core.multiaddr import join_p2p

    host = await _start_host(
        listen or default_listen(), identity_path, explicit=bool(listen), perf=perf
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for addr in host.listen_addrs:  # type: ignore[attr-defined]
            for concrete in interface_addrs(addr):
                print(join_p2p(concrete, host.peer_id), flush=True)  # type: ignore[attr-defined]
        peer = host.peer_id  # type: ignore[attr-defined]
        if perf:
            print("serving /perf/1.0.0 (--perf)", file=sys.stderr, flush=True)
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
