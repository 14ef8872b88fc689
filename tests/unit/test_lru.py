"""core.lru.Lru against a model (a list in recency order), and its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolibp2p.core.errors import LocalProtocolError
from aiolibp2p.core.lru import Lru

_OPS = st.lists(
    st.tuples(st.sampled_from(["put", "get", "pop"]), st.integers(0, 9), st.integers(0, 40)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(_OPS, st.integers(0, 5), st.one_of(st.none(), st.integers(0, 100)))
def test_matches_model(
    ops: list[tuple[str, int, int]], max_entries: int, max_weight: int | None
) -> None:
    weight = (lambda _k, v: v) if max_weight is not None else None
    lru: Lru[int, int] = Lru(max_entries, max_weight=max_weight, weight=weight)
    model: list[tuple[int, int]] = []  # least recently used first
    for op, key, value in ops:
        found = next((i for i, (k, _v) in enumerate(model) if k == key), None)
        if op == "get":
            expect = None if found is None else model[found][1]
            if found is not None:
                model.append(model.pop(found))
            assert lru.get(key) == expect
        elif op == "pop":
            expect = None if found is None else model.pop(found)[1]
            assert lru.pop(key) == expect
        else:
            if found is not None:
                model.pop(found)
            lru.put(key, value)
            if max_weight is None or value <= max_weight:
                model.append((key, value))
            while len(model) > max_entries or (
                max_weight is not None and sum(v for _k, v in model) > max_weight
            ):
                model.pop(0)
        assert len(lru) == len(model)
        assert all(k in lru for k, _v in model)
        if max_weight is not None:
            assert lru._total == sum(v for _k, v in model) <= max_weight


def test_clear_and_bad_bounds() -> None:
    lru: Lru[str, bytes] = Lru(2, max_weight=10, weight=lambda _k, v: len(v))
    lru.put("a", b"12345")
    lru.clear()
    assert len(lru) == 0 and "a" not in lru
    lru.put("b", b"0123456789")  # exactly the bound: kept
    assert lru.get("b") == b"0123456789"
    for bad in (-1, True, 1.5, None):
        with pytest.raises(LocalProtocolError):
            Lru(bad)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Lru(1, max_weight=5)  # a weight bound needs a weight function
