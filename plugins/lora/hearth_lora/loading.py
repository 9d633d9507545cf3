"""LoRA files read once: parsed adapters cached by path, modification time and size.

A LoRA node runs again whenever its strength changes; the file's tensors must not be read again for that. The cache
keeps the parsed adapters (whose factors stay memory-mapped from the file, so a cached LoRA costs page cache, not
process memory) and notices a file replaced on disk by its ``mtime`` and size.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from hearth.core.models import load_state_dict, read_header

from .formats import ParsedLora, parse_lora

log = logging.getLogger("hearth.lora")

CACHE_SIZE = 16  # LoRA files kept parsed; a workflow stacking more than this re-reads the oldest


@dataclass(frozen=True)
class LoraFile:
    """A parsed LoRA file: its adapters by module name, the tensors it could not use, its metadata."""

    path: Path
    parsed: ParsedLora
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


_cache: OrderedDict[tuple[str, int, int], LoraFile] = OrderedDict()
_lock = threading.Lock()


def read_lora(path: str | os.PathLike[str]) -> LoraFile:
    """Read and parse a LoRA file, uncached (``.safetensors`` memory-mapped; pickles through safe loading)."""
    path = Path(path)
    header = read_header(path)
    parsed = parse_lora(load_state_dict(path))
    log.debug("read LoRA %s: %d modules, %d unusable tensors", path, len(parsed.adapters), len(parsed.problems))
    return LoraFile(path, parsed, dict(header.metadata))


def load_lora(path: str | os.PathLike[str]) -> LoraFile:
    """The parsed LoRA at ``path``, from the cache while the file is unchanged.

    :raises hearth.core.models.CheckpointError: naming the file when it is missing or not a readable checkpoint.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        return read_lora(path)  # let the reader raise its message naming the file
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    lora = read_lora(path)
    with _lock:
        for stale in [k for k in _cache if k[0] == key[0]]:
            del _cache[stale]  # an older version of the same file
        _cache[key] = lora
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return lora


def clear_cache() -> None:
    with _lock:
        _cache.clear()
