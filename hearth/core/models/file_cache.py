"""One load cache for every model family: a file is read once while any node output still uses what it gave.

Two loader nodes naming one file (or one node run again after a downstream input changed) must share one set of
weights. A load is remembered by the file's identity (resolved path, size, modification time in ns), its kind and
the loader's options; the cache holds the :class:`Loaded` record only weakly. Node values keep their record
alive (``value.source``), so when the executor's cache drops the last of them, the weights are freed and the next
load reads the file again. A file replaced on disk (new size or mtime) is a new key: it is read again.

One thread loads a given key while others asking for the same key wait for it, instead of reading it twice;
loads of different files run side by side.

A kind whose values do not hold their record (a LoRA file: the patched MODEL keeps only the tensors it needs) can
ask the cache to keep its most recent records strongly too (:meth:`LoadCache.keep_recent`), so a node run again
with another strength does not read the file again.

How a family's loader uses it::

    def make() -> Loaded:
        module = build_and_load(path)
        return Loaded(path, module=module, patcher=PatchedModel(module, name=path.name))

    record = load_once("diffusion_model", path, make, weight_dtype, str(device))
    return MyModel(record.module, record.patcher.clone(), source=record)
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any


class Loaded:
    """What one file gave (modules, their ``PatchedModel``s, tokenizers...), as attributes.

    Node values hold it strongly, the cache only weakly; nothing in it should point back at a value, so reference
    counting alone frees the weights when the last value goes (no cycle for the garbage collector to wait for).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, **parts: Any) -> None:
        self.path = Path(path) if path is not None else None
        self.__dict__.update(parts)

    def __repr__(self) -> str:
        parts = ", ".join(k for k in self.__dict__ if k != "path")
        return f"<Loaded {self.path.name if self.path else '?'}: {parts}>"


def file_identity(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """``(resolved path, size, mtime_ns)``: what tells a file apart from another, or from itself rewritten.

    :raises FileNotFoundError: naming the file when it does not exist.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns


class LoadCache:
    """Loaded records by ``(kind, file identity, options)``, held weakly; see the module docstring."""

    def __init__(self) -> None:
        self._records: weakref.WeakValueDictionary[tuple, Loaded] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()  # guards the dicts below, never held while a file loads
        self._loading: dict[tuple, threading.Lock] = {}
        self._keep: dict[str, int] = {}  # kind -> how many recent records are held strongly
        self._recent: OrderedDict[tuple, Loaded] = OrderedDict()
        self.reads: Counter[str] = Counter()  # files read, by kind: what tests and status look at

    def keep_recent(self, kind: str, count: int) -> None:
        """Hold the ``count`` most recently used records of ``kind`` strongly (0: only while values hold them)."""
        with self._lock:
            self._keep[kind] = count
            self._trim(kind)

    def _touch(self, key: tuple, record: Loaded) -> None:
        # Under self._lock. An older version of the same file (another size or mtime) leaves at once.
        kind = key[0]
        if not self._keep.get(kind):
            return
        for stale in [k for k in self._recent if k[:2] == key[:2] and k != key]:
            del self._recent[stale]
        self._recent[key] = record
        self._recent.move_to_end(key)
        self._trim(kind)

    def _trim(self, kind: str) -> None:
        mine = [k for k in self._recent if k[0] == kind]
        for key in mine[:max(0, len(mine) - self._keep.get(kind, 0))]:
            del self._recent[key]

    def load(self, kind: str, path: str | os.PathLike[str], make: Callable[[], Loaded],
             *options: Hashable) -> Loaded:
        """The record for ``path`` loaded as ``kind`` with ``options``: the live one if any, else ``make()``'s.

        ``options`` are whatever changes what ``make`` builds (a weight dtype, the load device, embeddings
        folders); they must be hashable.
        """
        key = (kind, *file_identity(path), *options)
        while True:
            with self._lock:
                found = self._records.get(key)
                if found is not None:
                    self._touch(key, found)
                    return found
                gate = self._loading.get(key)
                if gate is None:
                    gate = self._loading[key] = threading.Lock()
                    gate.acquire()
                    break
            with gate:  # another thread is reading this file: wait for it, then look again
                pass
        try:
            record = make()
            with self._lock:
                self._records[key] = record
                self._touch(key, record)
                self.reads[kind] += 1
            return record
        finally:
            with self._lock:
                del self._loading[key]
            gate.release()

    def records(self, kind: str | None = None) -> list[tuple[tuple, Loaded]]:
        """Live ``(key, record)`` pairs, of one kind or all; a key is ``(kind, path, size, mtime_ns, *options)``."""
        with self._lock:
            items = list(self._records.items())
        return [(key, record) for key, record in items if kind is None or key[0] == kind]

    def clear(self, kind: str | None = None) -> None:
        """Forget every record, or those of ``kind`` (values that hold one keep it; the next load reads the file
        again)."""
        with self._lock:
            for key in [k for k in self._records.keys() if kind is None or k[0] == kind]:
                self._records.pop(key, None)
            for key in [k for k in self._recent if kind is None or k[0] == kind]:
                del self._recent[key]


_cache = LoadCache()


def load_cache() -> LoadCache:
    """The process's load cache, shared by every family's loaders (records are weak: sharing costs nothing)."""
    return _cache


def load_once(kind: str, path: str | os.PathLike[str], make: Callable[[], Loaded], *options: Hashable) -> Loaded:
    """:meth:`LoadCache.load` on the process's cache."""
    return _cache.load(kind, path, make, *options)
