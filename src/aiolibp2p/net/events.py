"""A small bounded event bus: every subscriber has its own queue; a slow one loses oldest events."""

from __future__ import annotations

import asyncio
from collections import deque

from aiolibp2p.core.events import Event

__all__ = ["EventBus", "Subscription"]


class Subscription:
    """An async iterator of events; ``dropped`` counts events lost because the queue was full."""

    def __init__(self, bus: EventBus, maxlen: int) -> None:
        self._bus = bus
        self._queue: deque[Event] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def _push(self, event: Event) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        self._closed = True
        self._bus._subs.discard(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens (an event nobody receives need not be built)."""
        return bool(self._subs)

    def subscribe(self, maxlen: int = 1024) -> Subscription:
        sub = Subscription(self, maxlen)
        self._subs.add(sub)
        return sub

    def emit(self, event: Event) -> None:
        for sub in tuple(self._subs):
            sub._push(event)

    def close(self) -> None:
        for sub in tuple(self._subs):
            sub.close()
