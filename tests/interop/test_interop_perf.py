"""``/perf/1.0.0`` between aiolibp2p and js-libp2p / py-libp2p over TCP + Noise + yamux/mplex.

For each foreign peer (js, py) x muxer (yamux, mplex):

* our client -> their server: 8 MiB up and 8 MiB down (plus 0/0 and 1/1), exact byte counts on
  our side (the client machine rejects a short or long reply) and, for js, on theirs;
* their client -> our server (``services(perf=True)``): the same, counted by both sides;
* the timer variant against their server: ask for 2**64 - 1 bytes, reset after a moment; their
  server must survive it (a second run works).

The js peer implements perf itself (``js/peer.mjs``: npm has no ``@libp2p/perf``);
the py peer uses py-libp2p 0.8.1's own ``libp2p.perf.PerfService`` for both roles.
``test_foreign_perf_each_other`` runs js <-> py only: it checks the two foreign implementations
agree with each other, without our host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _peers import MIB, MUXER_IDS, ForeignPeer, run

pytestmark = pytest.mark.interop

FOREIGN = ["js", "py"]
MUXERS = ["yamux", "mplex"]
SIZE = 8 * MIB
#: (upload, download) runs; the 8 MiB one is the point, the tiny ones catch edge cases.
RUNS = [(SIZE, SIZE), (0, 0), (1, 1), (SIZE, 0), (0, SIZE)]
PERF = "/perf/1.0.0"
RUN_TIMEOUT = 45  # per run; py-libp2p over mplex is the slowest pair

combos = pytest.mark.parametrize(("foreign", "muxer"), [(f, m) for f in FOREIGN for m in MUXERS])


@contextlib.asynccontextmanager
async def our_host(muxer: str) -> AsyncIterator[tuple[Any, Any]]:
    """Our host, serving perf through the config switch; yields (host, its perf handler)."""
    import aiolibp2p
    from aiolibp2p import options as o
    from aiolibp2p.net.services.perf import PerfHandler

    host = await aiolibp2p.new_host(
        o.listen("/ip4/127.0.0.1/tcp/0"),
        o.muxers(MUXER_IDS[muxer]),
        o.security("/noise"),
        o.services(perf=True),
    )
    try:
        assert PERF in host.protocols()
        # the same handler the config installs, swapped for one whose counters we can read
        handler = PerfHandler()
        host.set_stream_handler(PERF, handler)
        yield host, handler
    finally:
        await asyncio.wait_for(host.close(), 15)


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@combos
def test_we_are_the_client(
    foreign: str, muxer: str, foreign_executables: Callable[[str], Path]
) -> None:
    exe = foreign_executables(foreign)

    async def main() -> None:
        from aiolibp2p.net.services.perf import perf

        async with (
            our_host(muxer) as (host, _handler),
            await ForeignPeer.start(foreign, executable=exe, muxer=muxer) as peer,
        ):
            for up, down in RUNS:
                result = await perf(
                    host, peer.addr, upload_bytes=up, download_bytes=down, timeout=RUN_TIMEOUT
                )
                assert (result.upload_bytes, result.download_bytes) == (up, down)
                assert 0 < result.time_seconds < RUN_TIMEOUT
            conns = host.connections()
            assert len(conns) == 1 and conns[0].muxer == MUXER_IDS[muxer]
            if foreign == "js":  # js counts what its server saw
                stats = await peer.command("perf_stats", timeout=10)
                seen = [(e["requested"], e["uploaded"], e["sent"]) for e in stats["completed"]]
                assert seen == [(down, up, down) for up, down in RUNS], stats
                assert all(e["peer"] == str(host.peer_id) for e in stats["completed"])
                assert stats["aborted"] == 0

    run(main(), 150)


@combos
def test_they_are_the_client(
    foreign: str, muxer: str, foreign_executables: Callable[[str], Path]
) -> None:
    exe = foreign_executables(foreign)

    async def main() -> None:
        async with (
            our_host(muxer) as (host, handler),
            await ForeignPeer.start(foreign, executable=exe, muxer=muxer) as peer,
        ):
            target = str(host.full_addrs()[0])
            for up, down in RUNS:
                result = await peer.command(
                    "perf",
                    addr=target,
                    upload_bytes=up,
                    download_bytes=down,
                    timeout=RUN_TIMEOUT,
                )
                assert (result["upload_bytes"], result["download_bytes"]) == (up, down), result
                assert result["time_seconds"] > 0
                if foreign == "js":
                    assert result["early_bytes"] == 0, "our server replied before the upload ended"
            await wait_for(lambda: len(handler.completed) == len(RUNS), "our handler to finish")
            seen = [(e.requested, e.uploaded, e.sent) for e in handler.completed]
            assert seen == [(down, up, down) for up, down in RUNS]
            assert all(str(e.peer) == peer.peer_id for e in handler.completed)
            assert (handler.aborted, handler.failed, handler.refused) == (0, 0, 0)
            conns = host.connections()
            assert len(conns) == 1 and conns[0].muxer == MUXER_IDS[muxer]

    run(main(), 150)


@pytest.mark.parametrize("foreign", FOREIGN)
def test_timer_variant_against_their_server(
    foreign: str, foreign_executables: Callable[[str], Path]
) -> None:
    """Ask for 2**64 - 1 bytes and reset after 0.5 s; their server must take it in its stride."""
    exe = foreign_executables(foreign)

    async def main() -> None:
        from aiolibp2p.net.services.perf import perf
        from aiolibp2p.proto.perf import MAX_U64

        async with (
            our_host("yamux") as (host, _handler),
            await ForeignPeer.start(foreign, executable=exe, muxer="yamux") as peer,
        ):
            with pytest.raises(asyncio.TimeoutError):
                await perf(host, peer.addr, upload_bytes=0, download_bytes=MAX_U64, timeout=0.5)
            result = await perf(
                host, peer.addr, upload_bytes=MIB, download_bytes=MIB, timeout=RUN_TIMEOUT
            )
            assert (result.upload_bytes, result.download_bytes) == (MIB, MIB)
            if foreign == "js":
                stats = await peer.command("perf_stats", timeout=10)
                assert stats["aborted"] == 1, stats
                assert [(e["uploaded"], e["sent"]) for e in stats["completed"]] == [(MIB, MIB)]

    run(main(), 90)


@pytest.mark.parametrize("muxer", MUXERS)
@pytest.mark.parametrize("client", ["js", "py"])
def test_foreign_perf_each_other(
    client: str, muxer: str, foreign_executables: Callable[[str], Path]
) -> None:
    server = "py" if client == "js" else "js"
    exes = {kind: foreign_executables(kind) for kind in ("js", "py")}

    async def main() -> None:
        async with (
            await ForeignPeer.start(server, executable=exes[server], muxer=muxer) as sp,
            await ForeignPeer.start(client, executable=exes[client], muxer=muxer) as cp,
        ):
            result = await cp.command(
                "perf", addr=sp.addr, upload_bytes=SIZE, download_bytes=SIZE, timeout=RUN_TIMEOUT
            )
            assert (result["upload_bytes"], result["download_bytes"]) == (SIZE, SIZE), result
            if server == "js":
                stats = await sp.command("perf_stats", timeout=10)
                assert [(e["uploaded"], e["sent"]) for e in stats["completed"]] == [(SIZE, SIZE)]

    run(main(), 120)
