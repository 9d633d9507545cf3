"""ComfyUI's model-merging nodes (comfy_extras/nodes_model_merging.py): ModelMergeSimple, ModelMergeBlocks,
ModelMergeSubtract, ModelMergeAdd, CLIPMergeSimple, CLIPMergeSubtract, CLIPMergeAdd; and the per-block merges of
the SD families (nodes_model_merging_model_specific.py): ModelMergeSD1 (also ModelMergeSD2: the same blocks) and
ModelMergeSDXL.

As in ComfyUI, a merge copies no weights: the result is a clone of the first model carrying weight patches that
point at the second model's weights (``get_key_patches``, with that model's own patches such as LoRAs applied) and
``add_patches(patches, strength_patch, strength_model)``, so each weight becomes
``w1 * strength_model + strength_patch * w2`` when the model loads. Simple: ``ratio * w1 + (1 - ratio) * w2``;
subtract: ``w1 - m * w2``; add: ``w1 + w2``. Keys only one model has are left alone, as ComfyUI leaves them, and so is a weight whose shape differs between
the two (an inpainting UNet's 9-channel input against a plain one's 4): ComfyUI warns and keeps model1's, which is
what makes the "add difference" recipe for custom inpainting models work. Merging models of different families (an
SD1 UNet into an SDXL one) is refused by name instead of leaving almost every weight unmerged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

UNET_PREFIX = "diffusion_model."
# Not weights: CLIP merges skip them as ComfyUI does (position ids are indices; logit_scale is unused for text).
_CLIP_SKIPPED = (".position_ids", ".logit_scale")


def _ratio(default: float = 1.0) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.01})


def _multiplier() -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})


def check_same_family(node: str, first: Any, second: Any, names: tuple[str, str] = ("model1", "model2")) -> None:
    """Refuse a merge of two values whose families differ (when both say theirs)."""
    ours, theirs = getattr(first, "family", None), getattr(second, "family", None)
    if ours is not None and theirs is not None and ours != theirs:
        raise ValueError(f"{node}: {names[0]} is {ours} and {names[1]} is {theirs}; only models of one family "
                         "can be merged (their weights have different shapes)")


def merge_unet(node: str, model1: Any, model2: Any, strengths: Any) -> Any:
    """A clone of ``model1`` with each UNet weight of ``model2`` patched in at ``strengths(key)``, a
    ``(strength_patch, strength_model)`` pair per ComfyUI key (``diffusion_model.<unet key>``)."""
    check_same_family(node, model1, model2)
    merged = model1.clone()
    patches = _fitting(node, merged, _offloaded(model2, model2.get_key_patches(UNET_PREFIX)))
    for key, patch in patches.items():
        strength_patch, strength_model = strengths(key)
        merged.add_patches({key: patch}, strength_patch, strength_model)
    return merged


def _fitting(node: str, target: Any, patches: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The patches whose weight has the shape of ``target``'s weight of the same key; the others are left out
    with a warning, as ComfyUI's patcher leaves them ("WEIGHT NOT MERGED")."""
    # The base weights' shapes: patches never change a shape, and reading them computes nothing.
    state = target.model_state_dict() if hasattr(target, "model_state_dict") else {}
    shapes = {key: tuple(weight.shape) for key, weight in state.items()}
    fitting = {}
    for key, weights in patches.items():
        mine = shapes.get(key)
        if mine is not None and mine != tuple(weights[0].shape):
            log.warning("%s: %s has shape %s in the second model and %s in the first; not merged", node, key,
                        tuple(weights[0].shape), mine)
            continue
        fitting[key] = weights
    return fitting


def _offloaded(value: Any, patches: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """The patches on the second model's offload device: a weight read while that model is resident on the GPU
    would otherwise keep its GPU copy alive, outside the model manager's account, as long as the merge lives."""
    device = getattr(value, "offload_device", None)
    if device is None:
        return dict(patches)
    return {key: [weight.to(device) for weight in weights] for key, weights in patches.items()}


def merge_clip(node: str, clip1: Any, clip2: Any, strength_patch: float, strength_model: float) -> Any:
    check_same_family(node, clip1, clip2, ("clip1", "clip2"))
    merged = clip1.clone()
    for key, patch in _fitting(node, merged, _offloaded(clip2, clip2.get_key_patches())).items():
        if key.endswith(_CLIP_SKIPPED):
            continue
        merged.add_patches({key: patch}, strength_patch, strength_model)
    return merged


class ModelMergeSimple:
    CATEGORY = "advanced/model_merging"
    DESCRIPTION = "ratio * model1 + (1 - ratio) * model2, weight by weight (1.0 keeps model1)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",), "ratio": _ratio()}}

    def merge(self, model1: Any, model2: Any, ratio: float) -> tuple[Any]:
        return (merge_unet("ModelMergeSimple", model1, model2, lambda _: (1.0 - ratio, ratio)),)


class ModelMergeSubtract:
    CATEGORY = "advanced/model_merging"
    DESCRIPTION = "model1 - multiplier * model2 (with model1 scaled by multiplier too, as in ComfyUI: (w1 - w2) * m)."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",), "multiplier": _multiplier()}}

    def merge(self, model1: Any, model2: Any, multiplier: float) -> tuple[Any]:
        return (merge_unet("ModelMergeSubtract", model1, model2, lambda _: (-multiplier, multiplier)),)


class ModelMergeAdd:
    CATEGORY = "advanced/model_merging"
    DESCRIPTION = "model1 + model2, weight by weight."
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",)}}

    def merge(self, model1: Any, model2: Any) -> tuple[Any]:
        return (merge_unet("ModelMergeAdd", model1, model2, lambda _: (1.0, 1.0)),)


def block_ratio(key: str, ratios: Mapping[str, float], default: float) -> float:
    """The ratio of the longest name in ``ratios`` that the UNet key (without ``diffusion_model.``) starts with;
    ``default`` (the first ratio input, as in ComfyUI) when none does."""
    inner = key[len(UNET_PREFIX):] if key.startswith(UNET_PREFIX) else key
    best, ratio = -1, default
    for prefix, value in ratios.items():
        if inner.startswith(prefix) and len(prefix) > best:
            best, ratio = len(prefix), value
    return ratio


class ModelMergeBlocks:
    """Merges with one ratio per group of UNet keys, the inputs' names being the key prefixes; subclasses
    (ModelMergeSD1, ModelMergeSDXL...) only list other prefixes."""

    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "merge"

    @classmethod
    def block_names(cls) -> list[str]:
        return ["input", "middle", "out"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",),
                             **{name: _ratio() for name in cls.block_names()}}}

    def merge(self, model1: Any, model2: Any, **ratios: float) -> tuple[Any]:
        names = self.block_names()
        unknown = sorted(set(ratios) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown inputs {unknown}; the block ratios are {names}")
        ratios = {name: ratios.get(name, 1.0) for name in names}
        # The first input's ratio applies to keys no name matches (ComfyUI takes its first keyword argument).
        default = ratios[names[0]]

        def strengths(key: str) -> tuple[float, float]:
            ratio = block_ratio(key, ratios, default)
            return 1.0 - ratio, ratio

        return (merge_unet(type(self).__name__, model1, model2, strengths),)


class CLIPMergeSimple:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",), "ratio": _ratio()}}

    def merge(self, clip1: Any, clip2: Any, ratio: float) -> tuple[Any]:
        return (merge_clip("CLIPMergeSimple", clip1, clip2, 1.0 - ratio, ratio),)


class CLIPMergeSubtract:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",), "multiplier": _multiplier()}}

    def merge(self, clip1: Any, clip2: Any, multiplier: float) -> tuple[Any]:
        return (merge_clip("CLIPMergeSubtract", clip1, clip2, -multiplier, multiplier),)


class CLIPMergeAdd:
    CATEGORY = "advanced/model_merging"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",)}}

    def merge(self, clip1: Any, clip2: Any) -> tuple[Any]:
        return (merge_clip("CLIPMergeAdd", clip1, clip2, 1.0, 1.0),)


# The per-block merges: each input is a UNet key prefix with its own ratio; a key takes the ratio of the longest
# prefix it starts with, and ``time_embed.`` (the first input) where none matches. The names are ComfyUI's exactly,
# dots included -- SD1's blocks end with a dot (``input_blocks.1.`` must not match ``input_blocks.10``), SDXL's do
# not (it has nine) -- since saved workflows store them.


class ModelMergeSD1(ModelMergeBlocks):
    CATEGORY = "advanced/model_merging/model_specific"

    @classmethod
    def block_names(cls) -> list[str]:
        return ["time_embed.", "label_emb.", *(f"input_blocks.{i}." for i in range(12)),
                *(f"middle_block.{i}." for i in range(3)), *(f"output_blocks.{i}." for i in range(12)), "out."]


class ModelMergeSDXL(ModelMergeBlocks):
    CATEGORY = "advanced/model_merging/model_specific"

    @classmethod
    def block_names(cls) -> list[str]:
        return ["time_embed.", "label_emb.", *(f"input_blocks.{i}" for i in range(9)),
                *(f"middle_block.{i}" for i in range(3)), *(f"output_blocks.{i}" for i in range(9)), "out."]


NODES = {cls.__name__: cls for cls in (ModelMergeSimple, ModelMergeBlocks, ModelMergeSubtract, ModelMergeAdd,
                                       CLIPMergeSimple, CLIPMergeSubtract, CLIPMergeAdd, ModelMergeSD1,
                                       ModelMergeSDXL)} | {"ModelMergeSD2": ModelMergeSD1}
