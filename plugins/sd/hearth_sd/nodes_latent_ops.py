"""Latent arithmetic and batch nodes with ComfyUI's names and inputs (comfy_extras/nodes_latent.py): LatentAdd,
LatentSubtract, LatentMultiply, LatentInterpolate, LatentBatch, LatentBatchSeedBehavior, LatentConcat, LatentCut,
and LatentCutToBatch. The file's LATENT_OPERATION nodes are the samplers plugin's (they act on the guidance);
the video-latent frame nodes are in :mod:`hearth_sd.nodes_latent_video`.

Where two latents of different sizes meet, the second is resized to the first (bilinear, centre crop) and its batch
fitted to the first's, as ComfyUI's ``reshape_latent_to`` does. Results keep the first input's other keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION

from .nodes_latent_transform import repeat_to_batch, with_samples
from .nodes_latent_upscale import resize_latent

if TYPE_CHECKING:
    import torch

CONCAT_DIMS = ["x", "-x", "y", "-y", "t", "-t"]


def reshape_like(target: torch.Tensor, latent: torch.Tensor, node: str, repeat_batch: bool = True) -> torch.Tensor:
    """``latent`` brought to ``target``'s size (bilinear, centre crop) and, with ``repeat_batch``, its batch."""
    if latent.ndim != target.ndim or latent.shape[1] != target.shape[1]:
        raise ValueError(f"{node}: samples2 is {list(latent.shape)} and samples1 {list(target.shape)}; the latents "
                         "must have the same channels (the same model family)")
    if latent.shape[1:] != target.shape[1:]:
        if latent.ndim != 4:
            raise ValueError(f"{node}: video latents of different sizes ({list(latent.shape)} and "
                             f"{list(target.shape)}) cannot be resized here; make them the same size first")
        latent = resize_latent(latent, target.shape[-1], target.shape[-2], "bilinear", "center")
    latent = latent.to(target)
    return repeat_to_batch(latent, target.shape[0]) if repeat_batch else latent


def _two() -> dict[str, Any]:
    return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",)}}


class _TwoLatents:
    """A node combining two LATENTs element-wise by ``combine``; the second is resized and batched to the first."""

    CATEGORY = "latent/advanced"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _two()

    @staticmethod
    def combine(first: Any, second: Any) -> Any:
        raise NotImplementedError

    def op(self, samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
        first = samples1["samples"]
        second = reshape_like(first, samples2["samples"], type(self).__name__)
        return (with_samples(samples1, self.combine(first, second)),)


class LatentAdd(_TwoLatents):
    DESCRIPTION = "Add two latent representations element-wise."

    @staticmethod
    def combine(first: Any, second: Any) -> Any:
        return first + second


class LatentSubtract(_TwoLatents):
    DESCRIPTION = "Subtract one latent representation from another element-wise."

    @staticmethod
    def combine(first: Any, second: Any) -> Any:
        return first - second


class LatentMultiply:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "Multiply latent values by a scalar multiplier to scale feature intensity."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "multiplier": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
        }}

    def op(self, samples: dict[str, Any], multiplier: float) -> tuple[dict[str, Any]]:
        return (with_samples(samples, samples["samples"] * multiplier),)


class LatentInterpolate:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "Blend two latents: directions and lengths of the channel vectors are interpolated apart."
    # ComfyUI divides by norms taken without keepdim, which is per pixel only for a batch of one (a batch of
    # several mixes items up or fails); here every batch item is normalised on its own, the same as ComfyUI's
    # result for one item.
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples1": ("LATENT",),
            "samples2": ("LATENT",),
            "ratio": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        }}

    def op(self, samples1: dict[str, Any], samples2: dict[str, Any], ratio: float) -> tuple[dict[str, Any]]:
        import torch

        first = samples1["samples"]
        second = reshape_like(first, samples2["samples"], "LatentInterpolate")
        # Each latent pixel's channel vector: directions mixed and renormalised, lengths mixed linearly.
        norm1 = torch.linalg.vector_norm(first, dim=1, keepdim=True)
        norm2 = torch.linalg.vector_norm(second, dim=1, keepdim=True)
        unit1 = torch.nan_to_num(first / norm1)
        unit2 = torch.nan_to_num(second / norm2)
        mixed = unit1 * ratio + unit2 * (1.0 - ratio)
        direction = torch.nan_to_num(mixed / torch.linalg.vector_norm(mixed, dim=1, keepdim=True))
        return (with_samples(samples1, direction * (norm1 * ratio + norm2 * (1.0 - ratio))),)


class LatentBatch:
    CATEGORY = "latent/batch"
    DESCRIPTION = "Combine two latents into one batch (samples2 resized to samples1 when their sizes differ)."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _two()

    def batch(self, samples1: dict[str, Any], samples2: dict[str, Any]) -> tuple[dict[str, Any]]:
        import torch

        first = samples1["samples"]
        second = reshape_like(first, samples2["samples"], "LatentBatch", repeat_batch=False)
        out = with_samples(samples1, torch.cat([first, second], dim=0))
        # Each item keeps its seed offset: samples2's items draw the noise they would have drawn alone.
        out["batch_index"] = (list(samples1.get("batch_index", range(first.shape[0])))
                              + list(samples2.get("batch_index", range(second.shape[0]))))
        return (out,)


class LatentBatchSeedBehavior:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "fixed: every item gets the first item's noise; random: each item its own."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",),
                             "seed_behavior": (["random", "fixed"], {"default": "fixed"})}}

    def op(self, samples: dict[str, Any], seed_behavior: str) -> tuple[dict[str, Any]]:
        out = dict(samples)
        if seed_behavior == "random":
            out.pop("batch_index", None)
        elif seed_behavior == "fixed":
            first = samples.get("batch_index", [0])[0]
            out["batch_index"] = [first] * samples["samples"].shape[0]
        else:
            raise ValueError(f"LatentBatchSeedBehavior: seed_behavior must be 'random' or 'fixed', "
                             f"got {seed_behavior!r}")
        return (out,)


def _axis(latent: torch.Tensor, dim: str, node: str) -> int:
    """The tensor axis of ``dim`` (x: width, y: height, t: frames, counted from the end as ComfyUI does)."""
    axis = {"x": 1, "y": 2, "t": 3}[dim.lstrip("-")]
    if axis == 3 and latent.ndim < 5:
        raise ValueError(f"{node}: dim 't' needs a video latent [B, C, t, h, w]; this one is {list(latent.shape)}")
    return latent.ndim - axis


class LatentConcat:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "Concatenate two latents along width (x), height (y) or time (t); a leading minus puts samples2 first."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",), "dim": (CONCAT_DIMS,)}}

    def op(self, samples1: dict[str, Any], samples2: dict[str, Any], dim: str) -> tuple[dict[str, Any]]:
        import torch

        if dim not in CONCAT_DIMS:
            raise ValueError(f"LatentConcat: dim must be one of {CONCAT_DIMS}, got {dim!r}")
        first = samples1["samples"]
        second = repeat_to_batch(samples2["samples"].to(first), first.shape[0])
        axis = _axis(first, dim, "LatentConcat")
        for i in range(1, first.ndim):
            if i != axis and first.shape[i] != second.shape[i]:
                raise ValueError(f"LatentConcat: samples1 is {list(first.shape)} and samples2 {list(second.shape)}; "
                                 f"all sizes but the one along {dim.lstrip('-')} must match")
        parts = (second, first) if dim.startswith("-") else (first, second)
        return (with_samples(samples1, torch.cat(parts, dim=axis)),)


class LatentCut:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "Keep `amount` latent pixels (or frames) from `index` on; a negative index counts from the end."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "dim": (["x", "y", "t"],),
            "index": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION, "step": 1}),
            "amount": ("INT", {"default": 1, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
        }}

    def op(self, samples: dict[str, Any], dim: str, index: int, amount: int) -> tuple[dict[str, Any]]:
        import torch

        latent = samples["samples"]
        axis = _axis(latent, dim, "LatentCut")
        size = latent.shape[axis]
        # As ComfyUI: an index past the end keeps the last slice, one before the start begins at the start.
        if index >= 0:
            index = min(index, size - 1)
            amount = min(size - index, amount)
        else:
            index = max(index, -size)
            amount = min(-index, amount)
        return (with_samples(samples, torch.narrow(latent, axis, index % size, amount)),)


class LatentCutToBatch:
    CATEGORY = "latent/advanced"
    DESCRIPTION = "Cut a latent into slices of slice_size along a dimension and stack them as a batch."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "dim": (["t", "x", "y"],),
            "slice_size": ("INT", {"default": 1, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
        }}

    def op(self, samples: dict[str, Any], dim: str, slice_size: int) -> tuple[dict[str, Any]]:
        latent = samples["samples"]
        if dim == "t" and latent.ndim < 5:
            return (samples,)  # an image latent has no frames to cut (ComfyUI returns it unchanged too)
        axis = _axis(latent, dim, "LatentCutToBatch")
        moved = latent.movedim(axis, 1)
        size = moved.shape[1]
        # A remainder that does not fill a slice is dropped; a slice longer than the axis takes it whole.
        slice_size = min(slice_size, size)
        moved = moved[:, :size // slice_size * slice_size]
        # Each item's slices follow one another in the batch (item 0's slices, then item 1's), as ComfyUI's reshape.
        sliced = moved.reshape(-1, slice_size, *moved.shape[2:]).movedim(1, axis)
        return (with_samples(samples, sliced),)


NODES = {cls.__name__: cls for cls in (
    LatentAdd, LatentSubtract, LatentMultiply, LatentInterpolate, LatentBatch, LatentBatchSeedBehavior,
    LatentConcat, LatentCut, LatentCutToBatch,
)}
