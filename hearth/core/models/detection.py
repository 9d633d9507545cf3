"""Architecture detection: which model family a checkpoint is, from its header alone (keys and shapes).

Plugins declare families as sentinel tables (``register_model_formats``); a plugin that needs more than a table
(reading metadata, telling v-prediction from eps) answers ``resolve_model_format`` first. Reading the header costs
no tensor data, so detecting a 7 GB checkpoint takes milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hearth.core.models.formats import ModelFormat
from hearth.core.models.loading import CheckpointHeader, read_header

Shapes = Mapping[str, tuple[int, ...]]


class UnknownModelError(ValueError):
    """No declared format matches a checkpoint; the message names the file and the closest families."""

    def __init__(self, source: str, closest: list[tuple[ModelFormat, float]], detail: str = "") -> None:
        self.source = source
        self.closest = closest
        if closest:
            near = ", ".join(f"{fmt.name} ({score:.0%} of its sentinel keys)" for fmt, score in closest)
            hint = f"closest known families: {near}"
            if detail:
                hint += f" ({closest[0][0].name}: {detail})"
        else:
            hint = "no installed plugin declares a family with any of its keys"
        super().__init__(f"{source}: unknown model architecture; {hint}. Install the plugin for this "
                         "model family, or check that the file is a complete checkpoint.")


class AmbiguousModelError(ValueError):
    """Two formats match a checkpoint equally well: a plugin bug, reported rather than guessed."""


def _shapes_of(source: str | os.PathLike[str] | CheckpointHeader | Shapes) -> tuple[str, Shapes, Mapping[str, str]]:
    if isinstance(source, CheckpointHeader):
        return str(source.path), source.shapes, source.metadata
    if isinstance(source, str | os.PathLike):
        header = read_header(Path(source))
        return str(header.path), header.shapes, header.metadata
    return "state dict", {key: tuple(shape) for key, shape in source.items()}, {}


def rank(shapes: Shapes, formats: Iterable[ModelFormat]) -> list[tuple[ModelFormat, float]]:
    """Every format with its score, best first; among equal scores the one with more sentinels first."""
    scored = [(fmt, fmt.score(shapes)) for fmt in formats]
    return sorted(scored, key=lambda fs: (-fs[1], -len(fs[0].sentinels), fs[0].name))


def detect(
    source: str | os.PathLike[str] | CheckpointHeader | Shapes,
    formats: Iterable[ModelFormat],
) -> ModelFormat:
    """The format of a checkpoint: the one whose sentinels all match, preferring the most specific table.

    :param source: a checkpoint path (only its header is read), a :class:`CheckpointHeader`, or a mapping of key to
        shape (or to a tensor: anything with ``.shape``).
    :param formats: candidate formats, usually everything plugins returned from ``register_model_formats``.

    Raises :class:`UnknownModelError` (naming the file and the three closest families with their scores) when no
    format matches fully, and :class:`AmbiguousModelError` when two equally specific formats both match.
    """
    if isinstance(source, Mapping) and source and hasattr(next(iter(source.values())), "shape"):
        source = {key: tuple(t.shape) for key, t in source.items()}
    name, shapes, _ = _shapes_of(source)
    ranked = rank(shapes, formats)
    matches = [fmt for fmt, score in ranked if score >= 1.0]
    if not matches:
        closest = [(fmt, score) for fmt, score in ranked[:3] if score > 0]
        detail = "; ".join(closest[0][0].mismatches(shapes)[:2]) if closest else ""
        raise UnknownModelError(name, closest, detail)
    if len(matches) > 1 and len(matches[0].sentinels) == len(matches[1].sentinels):
        raise AmbiguousModelError(
            f"{name}: formats {matches[0].name!r} and {matches[1].name!r} both match with "
            f"{len(matches[0].sentinels)} sentinel keys; the plugins declaring them must add a sentinel that tells "
            "them apart, or answer resolve_model_format")
    return matches[0]


def detect_with_plugins(source: str | os.PathLike[str] | CheckpointHeader | Shapes, plugins: Any) -> ModelFormat:
    """Detect through the plugin manager: ``resolve_model_format`` first, then the ``register_model_formats`` tables.

    :param plugins: a :class:`hearth.core.plugins.PluginManager`.
    """
    if isinstance(source, str | os.PathLike):
        source = read_header(Path(source))  # read once: the hook and the tables both use it
    name, shapes, metadata = _shapes_of(source)
    formats = plugins.model_formats()
    answer = plugins.hook.resolve_model_format(path=name, shapes=shapes, metadata=metadata, formats=formats)
    if answer is not None:
        return answer
    return detect(source, formats)
