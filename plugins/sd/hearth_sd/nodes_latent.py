"""LATENT nodes of the SD plugin with ComfyUI's names, inputs and outputs (empty, upscale, composite, batch, mask).

LATENT values are dicts (``docs/data-types.md``): ``samples`` raw latents ``[B, C, h, w]`` at 1/8 of the image
size, optionally ``noise_mask`` and ``batch_index``. Nodes return new dicts and new tensors and never write into
their inputs: the executor caches outputs, and one cached latent may feed several nodes. Positions and sizes are
given in image pixels, as in ComfyUI, and divided by 8 here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION

from . import nodes_latent_batch, nodes_latent_upscale

if TYPE_CHECKING:
    import torch

LATENT_CHANNELS = 4  # SD1.x, SD2.x and SDXL; SD3 and Flux latents have 16 and their own empty-latent nodes


class EmptyLatentImage:
    DISPLAY_NAME = "Empty Latent Image"
    CATEGORY = "latent"
    DESCRIPTION = "A batch of all-zero SD latents for the sampler to start from."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                              "tooltip": "Image width in pixels; the latent is 1/8 of it."}),
            "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                               "tooltip": "Image height in pixels; the latent is 1/8 of it."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
        }}

    def generate(self, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        import torch

        return ({"samples": torch.zeros(batch_size, LATENT_CHANNELS, height // 8, width // 8)},)


def feather_ramp(length: int, feather: int, rise: bool, fall: bool) -> torch.Tensor:
    """Weights along one side of a pasted patch: 1/feather, 2/feather, ... up to 1 from each feathered edge.

    Only edges that lie inside the destination are feathered; an edge on the destination's border stays hard,
    so a patch pasted in a corner is not faded against nothing.
    """
    import torch

    ramp = torch.ones(length)
    steps = ((torch.arange(length) + 1) / feather).clamp(max=1.0)
    if rise:
        ramp = ramp * steps
    if fall:
        ramp = ramp * steps.flip(0)
    return ramp


class LatentComposite:
    DISPLAY_NAME = "Latent Composite"
    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        pixels = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {
            "samples_to": ("LATENT",),
            "samples_from": ("LATENT",),
            "x": ("INT", dict(pixels)),
            "y": ("INT", dict(pixels)),
            "feather": ("INT", dict(pixels)),
        }}

    def composite(self, samples_to: dict[str, Any], samples_from: dict[str, Any], x: int, y: int,
                  feather: int = 0) -> tuple[dict[str, Any]]:
        x, y, feather = x // 8, y // 8, feather // 8
        dest, source = samples_to["samples"], samples_from["samples"]
        if source.shape[1] != dest.shape[1]:
            raise ValueError(f"samples_from has {source.shape[1]} latent channels but samples_to has "
                             f"{dest.shape[1]}: both must come from the same model family")
        # One source latent is pasted into every destination item (ComfyUI broadcasts it); other sizes must match.
        if source.shape[0] not in (1, dest.shape[0]):
            raise ValueError(f"samples_from has a batch of {source.shape[0]} but samples_to has {dest.shape[0]}: "
                             "use a single source latent or equal batches (RepeatLatentBatch makes copies)")
        # The part of the source that falls inside the destination; whatever hangs over the edge is dropped.
        source = source[:, :, :max(0, dest.shape[2] - y), :max(0, dest.shape[3] - x)]
        height, width = source.shape[2], source.shape[3]
        out = dest.clone()
        region = out[:, :, y:y + height, x:x + width]
        if feather == 0:
            region[...] = source
        else:
            rows = feather_ramp(height, feather, rise=y > 0, fall=y + height < dest.shape[2])
            cols = feather_ramp(width, feather, rise=x > 0, fall=x + width < dest.shape[3])
            weight = (rows[:, None] * cols[None, :]).to(device=out.device, dtype=out.dtype)
            region[...] = source * weight + region * (1.0 - weight)
        result = dict(samples_to)
        result["samples"] = out
        return (result,)


class SetLatentNoiseMask:
    DISPLAY_NAME = "Set Latent Noise Mask"
    CATEGORY = "latent/inpaint"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "set_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "mask": ("MASK",)}}

    def set_mask(self, samples: dict[str, Any], mask: torch.Tensor) -> tuple[dict[str, Any]]:
        if mask.ndim not in (2, 3, 4):
            raise ValueError(f"mask must be [H, W] or [B, H, W], got shape {list(mask.shape)}")
        out = dict(samples)
        # The sampler's layout; the mask keeps its own resolution and is resized when sampling.
        out["noise_mask"] = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1])
        return (out,)


NODES: dict[str, type] = {
    cls.__name__: cls for cls in (EmptyLatentImage, LatentComposite, SetLatentNoiseMask)
} | nodes_latent_upscale.NODES | nodes_latent_batch.NODES
