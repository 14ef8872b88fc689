"""Small asyncio compatibility helpers (Python 3.10 lacks ``asyncio.timeout``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["timeout"]


@contextlib.asynccontextmanager
async def timeout(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout`` on every supported Python (raises :class:`asyncio.TimeoutError`)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            yield
        return
    task = asyncio.current_task()  # pragma: no cover - Python 3.10 only
    assert task is not None
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        yield
    except asyncio.CancelledError:
        if not fired:
            raise
        raise asyncio.TimeoutError() from None
    finally:
        handle.cancel()
