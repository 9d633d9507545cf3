"""Output caching: input signatures independent of node ids, and the strategies classic, lru:N, ram:GB and none.

A node's signature digests its class, its literal inputs, the signatures of the nodes feeding it (and which slot),
its ``IS_CHANGED`` answer, and its id only when the node is not idempotent. Two prompts that compute the same thing
share cache entries whatever their node ids; each digest is a fixed 16 bytes, so cost grows linearly with the graph.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

Signature = bytes


def canonical(value: Any) -> Any:
    """A deterministic, hashable form of a JSON-like literal."""
    if isinstance(value, dict):
        return ("d", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("l", tuple(canonical(v) for v in value))
    if isinstance(value, float) and value != value:
        return ("nan",)
    if isinstance(value, (str, int, float, bool, bytes)) or value is None:
        return value
    return ("obj", type(value).__qualname__, repr(value))


def signature(class_type: str, inputs: list[tuple[str, Any]], extra: Any = None) -> Signature:
    """Digest a node from ``(name, literal or (parent_signature, slot))`` pairs, already sorted by name."""
    text = repr((class_type, inputs, extra)).encode()
    return hashlib.blake2b(text, digest_size=16).digest()


@dataclass
class CacheEntry:
    """What a node produced: per output slot, the list of values; and its UI data (for output nodes)."""

    outputs: tuple[list[Any], ...]
    ui: dict[str, Any] | None = None
    given: int | None = None  # how many output slots the node returned values for (None: all of them)
    size: int = 0
    last_used: int = 0


def estimate_size(entry: CacheEntry) -> int:
    """Approximate bytes held by the outputs: tensors and arrays by their buffers, other objects shallowly."""
    total = 0
    stack: list[Any] = list(entry.outputs)
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        nbytes = getattr(item, "nbytes", None)
        if isinstance(nbytes, int):
            total += nbytes
        elif hasattr(item, "element_size") and hasattr(item, "nelement"):
            total += item.element_size() * item.nelement()
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        else:
            memory = getattr(item, "memory_bytes", None)
            total += memory() if callable(memory) else sys.getsizeof(item)
    return total


class Cache:
    """Strategy interface. The executor calls ``begin`` before a prompt and ``end`` after it."""

    name = "base"

    def __init__(self) -> None:
        self.generation = 0

    def get(self, key: Signature) -> CacheEntry | None:
        raise NotImplementedError

    def put(self, key: Signature, entry: CacheEntry) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        self.generation += 1

    def end(self, used: set[Signature]) -> None:
        """After a prompt: ``used`` are the signatures of every node of that prompt."""

    def clear(self) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return 0


class NoCache(Cache):
    """Nothing survives a prompt; within one prompt each node still runs once."""

    name = "none"

    def get(self, key: Signature) -> CacheEntry | None:
        return None

    def put(self, key: Signature, entry: CacheEntry) -> None:
        pass

    def clear(self) -> None:
        pass


class _DictCache(Cache):
    def __init__(self) -> None:
        super().__init__()
        self.entries: OrderedDict[Signature, CacheEntry] = OrderedDict()

    def get(self, key: Signature) -> CacheEntry | None:
        entry = self.entries.get(key)
        if entry is not None:
            entry.last_used = self.generation
            self.entries.move_to_end(key)
        return entry

    def put(self, key: Signature, entry: CacheEntry) -> None:
        entry.last_used = self.generation
        self.entries[key] = entry
        self.entries.move_to_end(key)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


class ClassicCache(_DictCache):
    """ComfyUI's default: keep only what the latest prompt used."""

    name = "classic"

    def end(self, used: set[Signature]) -> None:
        for key in [k for k in self.entries if k not in used]:
            del self.entries[key]


class LRUCache(_DictCache):
    """Keep the ``size`` most recently used entries, across prompts."""

    name = "lru"

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError("lru cache size must be at least 1")
        self.size = size

    def end(self, used: set[Signature]) -> None:
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class RAMCache(_DictCache):
    """Keep everything while the machine has more than ``min_free_gb`` free; under it, evict old and large first.

    Eviction order: entries unused for the most prompts first; among equally old ones, the largest first.
    """

    name = "ram"
    CHECK_INTERVAL_S = 0.05

    def __init__(self, min_free_gb: float, available: Callable[[], int] | None = None) -> None:
        super().__init__()
        self.min_free = int(min_free_gb * 1024**3)
        self._available = available or (lambda: psutil.virtual_memory().available)
        self._last_check = 0.0
        self.evicted = 0

    def put(self, key: Signature, entry: CacheEntry) -> None:
        entry.size = estimate_size(entry)
        super().put(key, entry)
        now = time.monotonic()
        if now - self._last_check >= self.CHECK_INTERVAL_S or entry.size > 64 * 1024**2:
            self._last_check = now
            self.make_room(keep=key)

    def end(self, used: set[Signature]) -> None:
        self.make_room()

    def make_room(self, keep: Signature | None = None) -> None:
        if self._available() >= self.min_free:
            return
        victims = sorted((k for k in self.entries if k != keep),
                         key=lambda k: (self.entries[k].last_used, -self.entries[k].size))
        for key in victims:
            del self.entries[key]
            self.evicted += 1
            if self._available() >= self.min_free:
                break


def make_cache(spec: str) -> Cache:
    """Build a strategy from its command-line form: ``classic``, ``lru:N``, ``ram:GB`` or ``none``."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "classic" and not arg:
            return ClassicCache()
        if kind == "none" and not arg:
            return NoCache()
        if kind == "lru":
            return LRUCache(int(arg))
        if kind == "ram":
            return RAMCache(float(arg))
    except ValueError as exc:
        raise ValueError(f"bad cache strategy {spec!r}: {exc}") from None
    raise ValueError(f"unknown cache strategy {spec!r}; use classic, lru:N (entries), ram:GB (free RAM to keep) or none")
