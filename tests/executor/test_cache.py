"""Caching: keys independent of node ids, minimal re-runs, and the four strategies."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
import toy_nodes
from toy_nodes import CALLS

from hearth.core.executor import Executor
from hearth.core.executor.cache import CacheEntry, LRUCache, RAMCache, make_cache


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    CALLS.clear()


def chain(values: tuple[int, int], prefix: str = "") -> dict[str, Any]:
    """Two Int leaves -> Add -> Add -> Show."""
    p = prefix
    return {f"{p}a": {"class_type": "Int", "inputs": {"value": values[0]}},
            f"{p}b": {"class_type": "Int", "inputs": {"value": values[1]}},
            f"{p}sum": {"class_type": "Add", "inputs": {"a": [f"{p}a", 0], "b": [f"{p}b", 0]}},
            f"{p}inc": {"class_type": "Add", "inputs": {"a": [f"{p}sum", 0], "b": 1}},
            f"{p}out": {"class_type": "Show", "inputs": {"value": [f"{p}inc", 0]}}}


def test_changing_one_input_reruns_exactly_that_node_and_its_descendants() -> None:
    executor = Executor(toy_nodes.registry())
    executor.run(chain((1, 2)))
    result = executor.run(chain((1, 5)))
    assert sorted(result.executed) == ["b", "inc", "out", "sum"]
    assert result.outputs == {"out": {"value": [7]}}


def test_keys_do_not_depend_on_node_ids() -> None:
    executor = Executor(toy_nodes.registry(), cache="lru:100")
    executor.run(chain((1, 2)))
    renamed = executor.run(chain((1, 2), prefix="other-"))
    assert renamed.executed == []
    assert renamed.outputs == {"other-out": {"value": [4]}}


def test_key_depends_on_which_output_slot_is_linked() -> None:
    from hearth.core.executor.cache import signature

    parent = signature("Int", [("value", 1)])
    assert signature("Add", [("a", ("link", parent, 0))]) != signature("Add", [("a", ("link", parent, 1))])


@pytest.mark.parametrize("strategy", ["lru:50", "ram:0"])
def test_switching_workflows_and_back_keeps_the_first_cache(strategy: str) -> None:
    executor = Executor(toy_nodes.registry(), cache=strategy)
    a, b = chain((1, 2)), chain((10, 20))
    executor.run(a)
    executor.run(b)
    back = executor.run(a)
    assert back.executed == [] and back.outputs == {"out": {"value": [4]}}


def test_classic_keeps_only_the_latest_prompt() -> None:
    executor = Executor(toy_nodes.registry(), cache="classic")
    a, b = chain((1, 2)), chain((10, 20))
    executor.run(a)
    assert executor.run(a).executed == []
    executor.run(b)
    assert sorted(executor.run(a).executed) == ["a", "b", "inc", "out", "sum"]


def test_none_reruns_everything_but_each_node_once_per_prompt() -> None:
    executor = Executor(toy_nodes.registry(), cache="none")
    prompt = chain((1, 2))
    assert len(executor.run(prompt).executed) == 5
    assert len(executor.run(prompt).executed) == 5
    assert CALLS.count("Add") == 4


def test_lru_evicts_least_recently_used() -> None:
    cache = LRUCache(2)
    for key in (b"a", b"b"):
        cache.put(key, CacheEntry(([1],)))
    cache.get(b"a")
    cache.put(b"c", CacheEntry(([3],)))
    cache.end(set())
    assert cache.get(b"b") is None and cache.get(b"a") is not None and cache.get(b"c") is not None


def test_ram_cache_evicts_oldest_then_largest_until_enough_is_free() -> None:
    evicted: list[bytes] = []

    class Tracking(OrderedDict):
        def __delitem__(self, key: bytes) -> None:
            evicted.append(key)
            super().__delitem__(key)

    low = {"on": False}
    cache = RAMCache(1.0, available=lambda: 0 if low["on"] and len(evicted) < 2 else 2 * 1024**3)
    cache.CHECK_INTERVAL_S = float("inf")
    cache.entries = Tracking()
    cache.begin()
    cache.put(b"old-small", CacheEntry(([bytearray(10)],)))
    cache.put(b"old-big", CacheEntry(([bytearray(10_000)],)))
    cache.begin()
    cache.put(b"new", CacheEntry(([bytearray(10_000_000)],)))
    cache.end(set())
    assert evicted == []  # plenty of free memory: everything stays
    low["on"] = True
    cache.end(set())
    assert evicted == [b"old-big", b"old-small"]
    assert list(cache.entries) == [b"new"] and cache.evicted == 2


@pytest.mark.parametrize("spec", ["lru", "lru:0", "ram:lots", "sometimes", "classic:3"])
def test_bad_strategy_names_the_problem(spec: str) -> None:
    with pytest.raises(ValueError, match="cache strategy"):
        make_cache(spec)
