"""TCP: multiaddr <-> socket address, listening and dialing (asyncio or uvloop)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from aiolibp2p.core.errors import MultiaddrError
from aiolibp2p.core.multiaddr import Multiaddr, components

__all__ = ["tcp_endpoint", "is_tcp", "listen_tcp", "dial_tcp", "bound_multiaddrs"]


def tcp_endpoint(addr: Multiaddr) -> tuple[str, int, int]:
    """``(host, port, family)`` of a plain ``/ip4|ip6|dns*/…/tcp/<port>`` address."""
    comps = components(addr)
    if len(comps) != 2 or comps[1].name != "tcp":
        raise MultiaddrError(f"not a plain TCP address: {addr}")
    first = comps[0]
    port = int.from_bytes(comps[1].value, "big")
    if first.name == "ip4":
        return socket.inet_ntop(socket.AF_INET, first.value), port, socket.AF_INET
    if first.name == "ip6":
        return socket.inet_ntop(socket.AF_INET6, first.value), port, socket.AF_INET6
    if first.name in _DNS_FAMILY:
        return first.value.decode(), port, _DNS_FAMILY[first.name]
    raise MultiaddrError(f"not a TCP address: {addr}")


_DNS_FAMILY = {"dns": socket.AF_UNSPEC, "dns4": socket.AF_INET, "dns6": socket.AF_INET6}


def is_tcp(addr: Multiaddr) -> bool:
    try:
        tcp_endpoint(addr)
    except MultiaddrError:
        return False
    return True


async def listen_tcp(
    addr: Multiaddr, factory: Callable[[], asyncio.BufferedProtocol], *, backlog: int = 1024
) -> asyncio.Server:
    host, port, family = tcp_endpoint(addr)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        factory, host, port, family=family, reuse_address=True, backlog=backlog
    )


async def dial_tcp(
    addr: Multiaddr, factory: Callable[[], asyncio.BufferedProtocol]
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    host, port, family = tcp_endpoint(addr)
    loop = asyncio.get_running_loop()
    return await loop.create_connection(factory, host, port, family=family)


def bound_multiaddrs(server: asyncio.Server) -> list[Multiaddr]:
    """The addresses a listening server really bound (port 0 resolved)."""
    out = []
    for sock in server.sockets:
        sockname = sock.getsockname()
        host, port = sockname[0], sockname[1]
        family = "ip6" if sock.family == socket.AF_INET6 else "ip4"
        out.append(Multiaddr(f"/{family}/{host}/tcp/{port}"))
    return out
