"""Putting a parsed LoRA on a model's weights as ``PatchedModel`` patches, and saying what did not fit.

The model side is reached only through the MODEL and CLIP protocols (docs/data-types.md): ``model.clone()`` and
``model.patcher``, ``clip.clone()`` and ``clip.patchers`` (one ``PatchedModel`` per text encoder, in the family's
order: SD1/SD2 have one, SDXL CLIP-L then OpenCLIP bigG). Nothing here copies a weight or reads a file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.core import context

from .formats import Adapter, Chain, ParsedLora, Rows, Transposed
from .names import TE, TE1, TE2, UNET, Target, is_text_encoder_name, key_map, resolve

log = logging.getLogger("hearth.lora")

MAX_NAMES_SHOWN = 20  # a warning lists this many names, then a count


@dataclass
class LoraReport:
    """What applying one LoRA did. ``applied``: part -> weight keys patched; ``unmatched``: module names that name
    no weight of this model; ``mismatched``: modules whose weight has another shape; ``skipped``: text encoder
    modules when no CLIP was given; ``duplicates``: modules naming a weight (and rows) another module of the file
    already patches, as converted files that keep two spellings of one module do; ``problems``: tensors the file
    reader could not use, with the reason."""

    source: str
    applied: dict[str, list[str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    fitted: list[str] = field(default_factory=list)  # modules that fit a weight (applied unless strength is 0)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def patched(self) -> int:
        return sum(len(keys) for keys in self.applied.values())

    def warnings(self) -> list[str]:
        """One line per kind of trouble, naming the keys (the first :data:`MAX_NAMES_SHOWN` of them)."""
        lines = []
        misfits = len(self.unmatched) + len(self.mismatched)
        if misfits > len(self.fitted):
            lines.append(f"LoRA {self.source}: only {len(self.fitted)} of its {misfits + len(self.fitted)} modules "
                         "fit this model; is it made for another model family?")
        for what, names in (("match no weight of this model", self.unmatched),
                            ("have shapes this model's weights do not",
                             [f"{k} ({why})" for k, why in self.mismatched.items()]),
                            ("patch a weight another key of this file patches",
                             [f"{k} (same as {other})" for k, other in self.duplicates.items()]),
                            ("could not be read", [f"{k} ({why})" for k, why in self.problems.items()])):
            if names:
                shown = ", ".join(names[:MAX_NAMES_SHOWN])
                more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
                lines.append(f"LoRA {self.source}: {len(names)} key(s) {what}, not applied: {shown}{more}")
        return lines


def text_encoder_parts(clip: Any) -> dict[str, Any]:
    """``te`` (one encoder) or ``te1`` / ``te2`` (SDXL) -> the encoder's ``PatchedModel``."""
    patchers = getattr(clip, "patchers", None)
    if patchers is None:
        patchers = [clip.patcher]
    elif isinstance(patchers, Mapping):
        patchers = list(patchers.values())
    patchers = list(patchers)
    if len(patchers) == 1:
        return {TE: patchers[0]}
    if len(patchers) == 2:
        return {TE1: patchers[0], TE2: patchers[1]}
    raise ValueError(f"a CLIP with {len(patchers)} text encoders: LoRA knows one (SD1/SD2) or two (SDXL)")


def _shapes(patcher: Any) -> dict[str, tuple[int, ...]]:
    return {key: tuple(t.shape) for key, t in patcher.module.state_dict(keep_vars=True).items()}


def _placed(adapter: Adapter, target: Target) -> Adapter:
    if target.transposed:
        adapter = Transposed(adapter)
    if target.rows is not None:
        adapter = Rows(adapter, *target.rows)
    return adapter


def _bias(target: Target, shapes: Mapping[str, Mapping[str, Any]]) -> Target | None:
    """The bias beside a target weight (``q.weight`` -> ``q.bias``, ``in_proj_weight`` -> ``in_proj_bias``)."""
    if target.transposed or not target.key.endswith("weight"):
        return None
    key = target.key[: -len("weight")] + "bias"
    return Target(target.part, key, target.rows) if key in shapes[target.part] else None


def lora_key_aliases(model: Any) -> dict[str, str]:
    """The model's other module names -> its own, from its optional ``lora_key_aliases()`` (docs/data-types.md):
    how a model family whose LoRAs are also trained on another code base's port (Wan's diffusers port) says so."""
    method = getattr(model, "lora_key_aliases", None)
    return dict(method()) if callable(method) else {}


def _entries(lora: ParsedLora) -> list[tuple[str, str, Adapter, bool]]:
    """``(name to report, module name, adapter, is a bias)`` of every update in the file."""
    return ([(name, name, adapter, False) for name, adapter in lora.adapters.items()]
            + [(f"{name}.diff_b", name, adapter, True) for name, adapter in lora.biases.items()])


def patch_parts(lora: ParsedLora, parts: Mapping[str, Any], strengths: Mapping[str, float],
                source: str = "", aliases: Mapping[str, str] | None = None) -> LoraReport:
    """Add ``lora``'s adapters as patches on the ``PatchedModel`` of each part, at that part's strength.

    Names are matched against every part given, so a module of a part at strength 0 is neither applied nor
    reported; ``parts`` lacking text encoders (``LoraLoaderModelOnly``) skips text encoder modules on purpose.
    ``aliases`` are the diffusion model's other module names (:func:`lora_key_aliases`).
    """
    report = LoraReport(source, problems=dict(lora.problems))
    shapes = {part: _shapes(patcher) for part, patcher in parts.items()}
    names = key_map(shapes, aliases)
    has_text = any(part != UNET for part in parts)
    by_weight: dict[tuple[str, str], list[Adapter]] = {}
    claimed: dict[Target, str] = {}
    for name, module, adapter, is_bias in _entries(lora):
        target = resolve(module, names)
        if target is not None and is_bias:
            target = _bias(target, shapes)
        if target is None:
            (report.skipped if not has_text and is_text_encoder_name(name) else report.unmatched).append(name)
            continue
        if target in claimed:  # applying both would double the update
            report.duplicates[name] = claimed[target]
            continue
        claimed[target] = name
        placed = _placed(adapter, target)
        weight_shape = shapes[target.part][target.key]
        if not placed.fits(weight_shape):
            report.mismatched[name] = f"LoRA {list(adapter.shape)}, weight {target.key} {list(weight_shape)}"
            continue
        by_weight.setdefault((target.part, target.key), []).append(placed)
        report.fitted.append(name)
    for part, patcher in parts.items():
        strength = strengths.get(part, 0.0)
        patches = {key: adapters[0] if len(adapters) == 1 else Chain(tuple(adapters))
                   for (p, key), adapters in by_weight.items() if p == part}
        if strength != 0.0 and patches:
            report.applied[part] = patcher.add_patches(patches, strength, source=source)
    return report


def load_lora_for_models(model: Any, clip: Any, lora: ParsedLora, strength_model: float, strength_clip: float,
                         source: str = "") -> tuple[Any, Any, LoraReport]:
    """Clones of ``model`` and ``clip`` (either may be None) with ``lora`` patched on; the originals are untouched.

    A side at strength 0 is returned as it came (no clone), as ComfyUI does.
    """
    new_model = model.clone() if model is not None and strength_model != 0.0 else model
    new_clip = clip.clone() if clip is not None and strength_clip != 0.0 else clip
    parts: dict[str, Any] = {}
    if new_model is not None:
        parts[UNET] = new_model.patcher
    if new_clip is not None:
        parts.update(text_encoder_parts(new_clip))
    strengths = {part: (strength_model if part == UNET else strength_clip) for part in parts}
    aliases = lora_key_aliases(new_model) if new_model is not None else None
    report = patch_parts(lora, parts, strengths, source, aliases)
    return new_model, new_clip, report


def warn(report: LoraReport) -> None:
    """Log each warning line and, inside a running prompt, send it to the client as a ``progress_text`` event.

    ``hearth.core.context`` has no warning event yet; ComfyUI's frontend shows ``progress_text`` (node id and text) on
    the node, which is where a user looks for why a LoRA did less than expected.
    """
    ctx = context.current()
    for line in report.warnings():
        log.warning(line)
        if ctx is not None:
            ctx.emit("progress_text", {"node": ctx.node_id, "prompt_id": ctx.prompt_id, "text": line})
    if report.skipped:
        log.info("LoRA %s: %d text encoder key(s) skipped (no CLIP given)", report.source, len(report.skipped))
