"""Checkpoint formats as data: each model family is a table of sentinel keys that identify it in a state dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelFormat:
    """One detectable model family, declared by a plugin through ``register_model_formats``.

    ``sentinels`` maps a state-dict key to its expected shape (or ``None`` when any shape will do). A checkpoint
    matches the format when every sentinel is present with the right shape; ``prefixes`` list the key prefixes the
    family's parts live under (``model.diffusion_model.``, ``first_stage_model.``...), for messages and splitting.
    """

    name: str
    sentinels: Mapping[str, tuple[int, ...] | None]
    description: str = ""
    prefixes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def score(self, shapes: Mapping[str, tuple[int, ...]]) -> float:
        """The fraction of sentinels the checkpoint satisfies (1.0 is a match)."""
        if not self.sentinels:
            return 0.0
        hits = 0
        for key, shape in self.sentinels.items():
            found = shapes.get(key)
            if found is not None and (shape is None or tuple(found) == tuple(shape)):
                hits += 1
        return hits / len(self.sentinels)

    def mismatches(self, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        """Why the checkpoint is not this format, one line per failed sentinel (for error messages)."""
        problems = []
        for key, shape in self.sentinels.items():
            found = shapes.get(key)
            if found is None:
                problems.append(f"{key} is missing")
            elif shape is not None and tuple(found) != tuple(shape):
                problems.append(f"{key} has shape {tuple(found)}, expected {tuple(shape)}")
        return problems
