"""Compare the two servers' outputs per workflow and print the parity table and the targets with PASS/FAIL.

Pixel differences are over every image of a workflow (8-bit values, max and mean of ``|a - b|``); the latent
difference is the max of ``|a - b|`` over the float32 latent the harness's node saved. A workflow that failed on
either side, or saved a different number of images, is a row with the reason instead of numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Row:
    """One workflow's comparison. ``note`` says why numbers are missing (an error on one side)."""

    name: str
    max_diff: int | None = None
    mean_diff: float | None = None
    latent_diff: float | None = None
    images: int = 0
    note: str = ""

    @property
    def identical(self) -> bool:
        return self.max_diff == 0 and not self.note


@dataclass
class Measure:
    """A figure measured on both sides (seconds or bytes); ``lower_is_better`` for every figure here."""

    name: str
    comfyui: float | None
    hearth: float | None
    unit: str


def _images(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in sorted(folder.glob("*.png"))]


def _latent(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    import safetensors.numpy

    return safetensors.numpy.load_file(str(path))["latent_tensor"]


def compare(name: str, comfy_images: Path, hearth_images: Path, comfy_latent: Path, hearth_latent: Path,
            errors: tuple[str | None, str | None] = (None, None)) -> Row:
    """The row for workflow ``name`` from both sides' image folders and latent files."""
    notes = [f"{side}: {error}" for side, error in zip(("ComfyUI", "Hearth"), errors, strict=True) if error]
    if notes:
        return Row(name, note="; ".join(notes))
    a, b = _images(comfy_images), _images(hearth_images)
    if not a or len(a) != len(b):
        return Row(name, note=f"images saved: ComfyUI {len(a)}, Hearth {len(b)}")
    if any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return Row(name, note=f"image sizes differ: {a[0].shape} vs {b[0].shape}")
    diffs = np.concatenate([np.abs(x - y).ravel() for x, y in zip(a, b, strict=True)])
    la, lb = _latent(comfy_latent), _latent(hearth_latent)
    latent = None
    note = ""
    if la is None or lb is None:
        note = "latent missing"
    elif la.shape != lb.shape:
        note = f"latent shapes differ: {la.shape} vs {lb.shape}"
    else:
        latent = float(np.abs(la.astype(np.float64) - lb.astype(np.float64)).max())
    return Row(name, int(diffs.max()), float(diffs.mean()), latent, len(a), note)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: Iterable[Row]) -> str:
    """The per-workflow table, Markdown-style so it pastes into an issue."""
    lines = ["| workflow | images | PNG max diff | PNG mean diff | latent max diff | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.name} | {r.images} | {_fmt(r.max_diff, 'd')} | {_fmt(r.mean_diff, '.3f')} | "
                     f"{_fmt(r.latent_diff, '.3g')} | {r.note} |")
    return "\n".join(lines)


def measures_table(measures: Iterable[Measure]) -> str:
    """Timings and memory side by side, with the ratio Hearth / ComfyUI."""
    lines = ["| figure | ComfyUI | Hearth | Hearth / ComfyUI |", "| --- | --- | --- | --- |"]
    for m in measures:
        ratio = m.hearth / m.comfyui if m.hearth is not None and m.comfyui else None
        lines.append(f"| {m.name} | {_unit(m.comfyui, m.unit)} | {_unit(m.hearth, m.unit)} | {_fmt(ratio, '.2f')} |")
    return "\n".join(lines)


def _unit(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{value / 2**30:.2f} GiB"
    return f"{value:.2f} s"


def targets(rows: list[Row], warm: Measure, rss: Measure) -> list[tuple[str, bool, str]]:
    """The issue's three targets as (name, passed, detail)."""
    different = [r.name for r in rows if not r.identical]
    found = [("every PNG identical (max diff 0)", bool(rows) and not different,
              f"{len(rows) - len(different)}/{len(rows)} identical"
              + (f"; differ or failed: {', '.join(different[:12])}" + (" ..." if len(different) > 12 else "")
                 if different else ""))]
    for measure, label in ((warm, "Hearth's warm run <= ComfyUI's"), (rss, "Hearth's peak RSS <= ComfyUI's")):
        ok = measure.hearth is not None and measure.comfyui is not None and measure.hearth <= measure.comfyui
        found.append((label, ok, f"{_unit(measure.hearth, measure.unit)} vs {_unit(measure.comfyui, measure.unit)}"))
    return found


def targets_text(found: list[tuple[str, bool, str]]) -> str:
    return "\n".join(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}" for name, ok, detail in found)
