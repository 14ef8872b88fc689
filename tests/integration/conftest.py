"""Integration fixtures: run a coroutine on asyncio and on uvloop, and prove nothing leaked.

``aio(main, timeout=...)`` runs ``main()`` on a fresh loop of the parametrised kind and then
asserts that no task is left running, no socket opened during the run is still open, and nothing
reached the loop's exception handler.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency on CPython/Linux
    uvloop = None

LOOPS = ["asyncio", "uvloop"]


def open_sockets() -> set[str]:
    """Inodes of the sockets this process holds open (Linux /proc)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


class LoopRunner:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.handler_calls: list[dict[str, Any]] = []

    def new_loop(self) -> asyncio.AbstractEventLoop:
        if self.kind == "uvloop":
            if uvloop is None:
                pytest.fail("uvloop is not installed but the uvloop case was requested")
            return uvloop.new_event_loop()
        return asyncio.new_event_loop()

    def __call__(self, main: Callable[[], Awaitable[Any]], *, timeout: float = 60.0) -> Any:
        loop = self.new_loop()
        loop.set_exception_handler(lambda _loop, ctx: self.handler_calls.append(ctx))
        before = open_sockets() if sys.platform == "linux" else set()

        async def guarded() -> Any:
            result = await asyncio.wait_for(main(), timeout)
            for _ in range(5):  # let close callbacks (connection_lost, ...) run
                await asyncio.sleep(0)
            current = asyncio.current_task()
            leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            assert not leftover, f"tasks left running: {leftover}"
            scheduled = getattr(asyncio.get_running_loop(), "_scheduled", None)
            if scheduled is not None:  # asyncio's own loop exposes its timer heap
                armed = [h for h in scheduled if not h.cancelled()]
                assert not armed, f"timers left armed: {armed}"
            return result

        try:
            result = loop.run_until_complete(guarded())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        gc.collect()
        if sys.platform == "linux":
            leaked = open_sockets() - before
            assert not leaked, f"sockets left open: {leaked}"
        assert not self.handler_calls, (
            f"the loop's exception handler was called: {self.handler_calls}"
        )
        return result


@pytest.fixture(params=LOOPS)
def aio(request: pytest.FixtureRequest) -> LoopRunner:
    """Run a coroutine function on asyncio and on uvloop, with leak checks."""
    return LoopRunner(request.param)
