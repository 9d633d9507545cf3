"""Conditioning nodes that say where an entry applies: ConditioningSetArea(Percentage/Strength), ConditioningSetMask.

They record ``area``, ``strength``, ``mask``, ``mask_strength`` and ``set_area_to_bounds`` in each entry's options,
in the units of ``docs/data-types.md``; the samplers plugin turns them into per-region predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION

if TYPE_CHECKING:
    import torch

SET_COND_AREA = ["default", "mask bounds"]


def with_options(conditioning: Iterable[Sequence[Any]], **values: Any) -> list[list[Any]]:
    """New entries with a copy of each options dict updated by ``values``; the cond tensors are shared, unchanged."""
    return [[cond, {**options, **values}] for cond, options in conditioning]


def _strength() -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})


class ConditioningSetArea:
    DISPLAY_NAME = "Conditioning (Set Area)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "width": ("INT", {"default": 64, "min": 64, "max": MAX_RESOLUTION, "step": 8}),
            "height": ("INT", {"default": 64, "min": 64, "max": MAX_RESOLUTION, "step": 8}),
            "x": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}),
            "y": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}),
            "strength": _strength(),
        }}

    def append(self, conditioning: list[list[Any]], width: int, height: int, x: int, y: int,
               strength: float) -> tuple[list[list[Any]]]:
        # Inputs are image pixels; the area is stored in latent pixels, (h, w, y, x), rounded down.
        area = (height // 8, width // 8, y // 8, x // 8)
        return (with_options(conditioning, area=area, strength=strength, set_area_to_bounds=False),)


class ConditioningSetAreaPercentage:
    DISPLAY_NAME = "Conditioning (Set Area with Percentage)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        def fraction(default: float) -> tuple[str, dict[str, Any]]:
            return ("FLOAT", {"default": default, "min": 0, "max": 1.0, "step": 0.01})

        return {"required": {
            "conditioning": ("CONDITIONING",),
            "width": fraction(1.0),
            "height": fraction(1.0),
            "x": fraction(0),
            "y": fraction(0),
            "strength": _strength(),
        }}

    def append(self, conditioning: list[list[Any]], width: float, height: float, x: float, y: float,
               strength: float) -> tuple[list[list[Any]]]:
        # Fractions of the image, resolved by the sampler against the latent it is given.
        area = ("percentage", height, width, y, x)
        return (with_options(conditioning, area=area, strength=strength, set_area_to_bounds=False),)


class ConditioningSetAreaStrength:
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",), "strength": _strength()}}

    def append(self, conditioning: list[list[Any]], strength: float) -> tuple[list[list[Any]]]:
        return (with_options(conditioning, strength=strength),)


class ConditioningSetMask:
    DISPLAY_NAME = "Conditioning (Set Mask)"
    CATEGORY = "conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "mask": ("MASK",),
            "strength": _strength(),
            "set_cond_area": (SET_COND_AREA,),
        }}

    def append(self, conditioning: list[list[Any]], mask: torch.Tensor, set_cond_area: str,
               strength: float) -> tuple[list[list[Any]]]:
        if mask.ndim not in (2, 3):
            raise ValueError(f"ConditioningSetMask: mask must be [H, W] or [B, H, W], got shape {list(mask.shape)}")
        if set_cond_area not in SET_COND_AREA:
            raise ValueError(f"ConditioningSetMask: set_cond_area must be one of {SET_COND_AREA}, "
                             f"got {set_cond_area!r}")
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        # "mask bounds": the sampler evaluates this entry on the bounding box of the mask only, not the whole latent.
        return (with_options(conditioning, mask=mask, set_area_to_bounds=set_cond_area == "mask bounds",
                             mask_strength=strength),)


NODES: dict[str, type] = {cls.__name__: cls for cls in (ConditioningSetArea, ConditioningSetAreaPercentage,
                                                        ConditioningSetAreaStrength, ConditioningSetMask)}
