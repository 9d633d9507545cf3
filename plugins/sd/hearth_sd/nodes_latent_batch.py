"""Latent batch nodes with ComfyUI's names and inputs: RepeatLatentBatch and LatentFromBatch.

Both keep ``noise_mask`` and ``batch_index`` in step with the samples. ``batch_index`` is the seed offset each
item's noise is drawn with, so a slice or a repeat of a batch gets the same noise as the original items would.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def masks_for_batch(masks: torch.Tensor, batch: int) -> torch.Tensor:
    """One noise mask per latent: a shorter mask batch is repeated in turn to cover ``batch`` (ComfyUI's rule)."""
    if masks.shape[0] >= batch:
        return masks
    times = math.ceil(batch / masks.shape[0])
    return masks.repeat(times, *[1] * (masks.ndim - 1))[:batch]


class RepeatLatentBatch:
    DISPLAY_NAME = "Repeat Latent Batch"
    CATEGORY = "latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "repeat"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "amount": ("INT", {"default": 1, "min": 1, "max": 64}),
        }}

    def repeat(self, samples: dict[str, Any], amount: int) -> tuple[dict[str, Any]]:
        latent = samples["samples"]
        out = dict(samples)
        out["samples"] = latent.repeat(amount, *[1] * (latent.ndim - 1))
        masks = samples.get("noise_mask")
        # A single mask already applies to every item, so it is kept as it is.
        if masks is not None and masks.shape[0] > 1:
            # ComfyUI pads the masks to the batch and then repeats the unpadded ones; repeating the padded ones
            # is what it means: every copy of an item keeps that item's mask.
            masks = masks_for_batch(masks, latent.shape[0])
            out["noise_mask"] = masks.repeat(amount, *[1] * (masks.ndim - 1))
        indices = samples.get("batch_index")
        if indices:
            # Each copy continues past the highest seed offset, so no two items share noise.
            offset = max(indices) - min(indices) + 1
            out["batch_index"] = [i + copy * offset for copy in range(amount) for i in indices]
        return (out,)


class LatentFromBatch:
    DISPLAY_NAME = "Latent From Batch"
    CATEGORY = "latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "frombatch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "batch_index": ("INT", {"default": 0, "min": 0, "max": 63}),
            "length": ("INT", {"default": 1, "min": 1, "max": 64}),
        }}

    def frombatch(self, samples: dict[str, Any], batch_index: int, length: int) -> tuple[dict[str, Any]]:
        latent = samples["samples"]
        size = latent.shape[0]
        # As ComfyUI: a start past the end takes the last item, and the slice stops at the end of the batch.
        start = min(size - 1, batch_index)
        stop = start + min(size - start, length)
        out = dict(samples)
        # Copies, so the cached batch is not held alive by a small slice of it.
        out["samples"] = latent[start:stop].clone()
        masks = samples.get("noise_mask")
        if masks is not None:
            # A single mask applies to every item, so it goes along whole.
            kept = masks if masks.shape[0] == 1 else masks_for_batch(masks, size)[start:stop]
            out["noise_mask"] = kept.clone()
        indices = samples.get("batch_index")
        out["batch_index"] = list(range(start, stop)) if indices is None else list(indices[start:stop])
        return (out,)


NODES = {cls.__name__: cls for cls in (RepeatLatentBatch, LatentFromBatch)}
