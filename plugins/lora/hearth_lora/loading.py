"""LoRA files read once: parsed adapters in the core's load cache, keyed by path, size and modification time.

A LoRA node runs again whenever its strength changes; the file's tensors must not be read again for that. The patched
MODEL keeps only the factors it needs, not the parsed file, so the cache holds the :data:`CACHE_SIZE` most recent
files strongly (:meth:`hearth.core.models.LoadCache.keep_recent`); their factors stay memory-mapped from the file,
so a cached LoRA costs page cache, not process memory. A file replaced on disk (new mtime or size) is read again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from hearth.core.models import Loaded, load_cache, load_once, load_state_dict, read_header

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


KIND = "lora"
load_cache().keep_recent(KIND, CACHE_SIZE)


def read_lora(path: str | os.PathLike[str]) -> LoraFile:
    """Read and parse a LoRA file, uncached (``.safetensors`` memory-mapped; pickles through safe loading)."""
    path = Path(path)
    header = read_header(path)
    parsed = parse_lora(load_state_dict(path))
    log.debug("read LoRA %s: %d modules, %d unusable tensors", path, len(parsed.adapters), len(parsed.problems))
    return LoraFile(path, parsed, dict(header.metadata))


def load_lora(path: str | os.PathLike[str]) -> LoraFile:
    """The parsed LoRA at ``path``, from the core's load cache while the file is unchanged.

    :raises hearth.core.models.CheckpointError: naming the file when it is missing or not a readable checkpoint.
    """
    path = Path(path).resolve()
    if not path.is_file():
        return read_lora(path)  # let the reader raise its message naming the file
    return load_once(KIND, path, lambda: Loaded(path, lora=read_lora(path))).lora


def clear_cache() -> None:
    """Forget the parsed LoRA files (the next load of each reads it again)."""
    load_cache().clear(KIND)
