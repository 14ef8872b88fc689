"""A bounded map that forgets its least recently used entries (the caches and ticket stores)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from aiolibp2p.core.errors import LocalProtocolError

__all__ = ["Lru"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most ``max_entries`` entries and, with a ``weight`` function, at most ``max_weight``
    of total weight; :meth:`put` evicts the least recently used (read or written) entries
    beyond either bound.  An entry heavier than ``max_weight`` on its own is not kept."""

    __slots__ = ("_entries", "_total", "_weight", "max_entries", "max_weight")

    def __init__(
        self,
        max_entries: int,
        *,
        max_weight: int | None = None,
        weight: Callable[[K, V], int] | None = None,
    ) -> None:
        for name, value in (("max_entries", max_entries), ("max_weight", max_weight)):
            if (value is not None or name == "max_entries") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise LocalProtocolError(f"{name} must be an int >= 0, got {value!r}")
        if (weight is None) != (max_weight is None):
            raise LocalProtocolError("max_weight and weight go together")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weight = weight
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or ``None``."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Set ``key`` (the most recently used now), then evict beyond the bounds."""
        self.pop(key)
        weight, max_weight = self._weight, self.max_weight
        if weight is not None and max_weight is not None:
            size = weight(key, value)
            if size > max_weight:
                return
            self._total += size
        entries = self._entries
        entries[key] = value
        while len(entries) > self.max_entries or (
            max_weight is not None and self._total > max_weight
        ):
            old_key, old_value = entries.popitem(last=False)
            if weight is not None:
                self._total -= weight(old_key, old_value)

    def pop(self, key: K) -> V | None:
        """Remove and return the value for ``key``, or ``None``."""
        value = self._entries.pop(key, None)
        if value is not None and self._weight is not None:
            self._total -= self._weight(key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._total = 0
