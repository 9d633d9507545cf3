"""Latent transform nodes with ComfyUI's names and inputs: LatentCrop, LatentFlip, LatentRotate, LatentBlend and
LatentCompositeMasked.

Positions and sizes are image pixels, divided by 8 into latent pixels, as ComfyUI does. Every node returns a new
LATENT dict carrying the input's other keys (``noise_mask``, ``batch_index``) along unchanged, as ComfyUI's
``samples.copy()`` does, and never writes into a tensor it was given: the executor caches outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION

from .nodes_latent_upscale import resize_latent

if TYPE_CHECKING:
    import torch

ROTATIONS = ["none", "90 degrees", "180 degrees", "270 degrees"]
FLIP_METHODS = ["x-axis: vertically", "y-axis: horizontally"]
# LatentCrop keeps at least this many latent pixels after the crop's corner (ComfyUI: "minimum size of 64").
MIN_CROP_LATENT = 8


def _pixels(default: int, minimum: int = 0) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": minimum, "max": MAX_RESOLUTION, "step": 8})


def with_samples(latent: dict[str, Any], samples: torch.Tensor) -> dict[str, Any]:
    """A copy of ``latent`` with new ``samples``; its other keys ride along."""
    out = dict(latent)
    out["samples"] = samples
    return out


def repeat_to_batch(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """ComfyUI's ``repeat_to_batch_size``: a longer batch is cut to ``batch`` items, a shorter one repeated in
    turn (1, 2, 1, 2...) until it has ``batch``."""
    if tensor.shape[0] > batch:
        return tensor[:batch]
    if tensor.shape[0] < batch:
        times = -(-batch // tensor.shape[0])
        return tensor.repeat(times, *[1] * (tensor.ndim - 1))[:batch]
    return tensor


class LatentCrop:
    DISPLAY_NAME = "Crop Latent"
    CATEGORY = "latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "width": _pixels(512, 64),
            "height": _pixels(512, 64),
            "x": _pixels(0),
            "y": _pixels(0),
        }}

    def crop(self, samples: dict[str, Any], width: int, height: int, x: int, y: int) -> tuple[dict[str, Any]]:
        latent = samples["samples"]
        # ComfyUI pulls a corner that lies too close to the far edge back so 8 latent pixels remain; the crop then
        # stops at the latent's edge (it is not padded).
        x = min(x // 8, latent.shape[-1] - MIN_CROP_LATENT)
        y = min(y // 8, latent.shape[-2] - MIN_CROP_LATENT)
        x, y = max(x, 0), max(y, 0)
        cropped = latent[..., y:y + height // 8, x:x + width // 8]
        return (with_samples(samples, cropped),)


class LatentFlip:
    DISPLAY_NAME = "Flip Latent"
    CATEGORY = "latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "flip"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "flip_method": (FLIP_METHODS,)}}

    def flip(self, samples: dict[str, Any], flip_method: str) -> tuple[dict[str, Any]]:
        import torch

        if flip_method not in FLIP_METHODS:
            raise ValueError(f"LatentFlip: flip_method must be one of {FLIP_METHODS}, got {flip_method!r}")
        latent = samples["samples"]
        # "x-axis: vertically" mirrors across the horizontal axis (rows reversed); "y-axis" reverses the columns.
        dim = latent.ndim - 2 if flip_method.startswith("x") else latent.ndim - 1
        return (with_samples(samples, torch.flip(latent, dims=[dim])),)


class LatentRotate:
    DISPLAY_NAME = "Rotate Latent"
    CATEGORY = "latent/transform"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "rotate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "rotation": (ROTATIONS,)}}

    def rotate(self, samples: dict[str, Any], rotation: str) -> tuple[dict[str, Any]]:
        import torch

        if rotation not in ROTATIONS:
            raise ValueError(f"LatentRotate: rotation must be one of {ROTATIONS}, got {rotation!r}")
        latent = samples["samples"]
        # Clockwise, as ComfyUI turns it (rot90 from the width axis towards the height axis).
        turns = ROTATIONS.index(rotation)
        return (with_samples(samples, torch.rot90(latent, k=turns, dims=[latent.ndim - 1, latent.ndim - 2])),)


class LatentBlend:
    DISPLAY_NAME = "Latent Blend"
    CATEGORY = "_for_testing"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples1": ("LATENT",),
            "samples2": ("LATENT",),
            "blend_factor": ("FLOAT", {"default": 0.5, "min": 0, "max": 1, "step": 0.01}),
        }}

    def blend(self, samples1: dict[str, Any], samples2: dict[str, Any], blend_factor: float,
              blend_mode: str = "normal") -> tuple[dict[str, Any]]:
        if blend_mode != "normal":
            raise ValueError(f"LatentBlend: unsupported blend mode {blend_mode!r}; only 'normal' exists")
        first, second = samples1["samples"], samples2["samples"]
        if first.shape[1] != second.shape[1]:
            raise ValueError(f"LatentBlend: samples1 has {first.shape[1]} channels and samples2 {second.shape[1]}; "
                             "blend latents of the same model family")
        if first.shape != second.shape:
            # ComfyUI resizes samples2 to samples1's size (bicubic, centre crop); its batch must then fit.
            second = resize_latent(second, first.shape[-1], first.shape[-2], "bicubic", "center")
        if second.shape[0] not in (1, first.shape[0]):
            raise ValueError(f"LatentBlend: samples1 has a batch of {first.shape[0]} and samples2 {second.shape[0]}; "
                             "use equal batches or a single samples2 latent")
        blended = first * blend_factor + second.to(first) * (1 - blend_factor)
        return (with_samples(samples1, blended),)


def composite_latent(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None,
                     multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """``source`` pasted into a copy of ``destination`` at ``(x, y)`` (units of ``multiplier`` pixels), weighted by
    ``mask`` (resized bilinearly to the source), as ComfyUI's ``composite`` of nodes_mask does. The source's batch is
    fitted to the destination's with :func:`repeat_to_batch`; what hangs over the edge is dropped."""
    import torch
    import torch.nn.functional as F

    out = destination.clone()
    source = source.to(device=out.device, dtype=out.dtype)
    if resize_source:
        source = F.interpolate(source, size=(out.shape[-2], out.shape[-1]), mode="bilinear")
    source = repeat_to_batch(source, out.shape[0])
    x = max(-source.shape[-1] * multiplier, min(x, out.shape[-1] * multiplier))
    y = max(-source.shape[-2] * multiplier, min(y, out.shape[-2] * multiplier))
    left, top = x // multiplier, y // multiplier
    if mask is None:
        weight = torch.ones_like(source)
    else:
        weight = mask.to(device=out.device, dtype=out.dtype).reshape(-1, 1, mask.shape[-2], mask.shape[-1])
        weight = repeat_to_batch(F.interpolate(weight, size=(source.shape[-2], source.shape[-1]), mode="bilinear"),
                                 source.shape[0])
    # Negative offsets move the source's visible part, not the destination window (ComfyUI's arithmetic).
    visible_w = out.shape[-1] - left + min(0, x)
    visible_h = out.shape[-2] - top + min(0, y)
    top, left = max(top, 0), max(left, 0)
    weight = weight[..., :visible_h, :visible_w]
    part = source[..., :visible_h, :visible_w]
    region = out[..., top:top + part.shape[-2], left:left + part.shape[-1]]
    weight = weight[..., :region.shape[-2], :region.shape[-1]]
    part = part[..., :region.shape[-2], :region.shape[-1]]
    region[...] = weight * part + (1.0 - weight) * region
    return out


class LatentCompositeMasked:
    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "destination": ("LATENT",),
            "source": ("LATENT",),
            "x": _pixels(0),
            "y": _pixels(0),
            "resize_source": ("BOOLEAN", {"default": False}),
        }, "optional": {"mask": ("MASK",)}}

    def composite(self, destination: dict[str, Any], source: dict[str, Any], x: int, y: int, resize_source: bool,
                  mask: torch.Tensor | None = None) -> tuple[dict[str, Any]]:
        dest, src = destination["samples"], source["samples"]
        if dest.ndim != 4 or src.ndim != 4:
            raise ValueError(f"LatentCompositeMasked: destination {list(dest.shape)} and source {list(src.shape)} "
                             "must be image latents [B, C, h, w]")
        if dest.shape[1] != src.shape[1]:
            raise ValueError(f"LatentCompositeMasked: source has {src.shape[1]} channels and destination "
                             f"{dest.shape[1]}; both must come from the same model family")
        if mask is not None and mask.ndim not in (2, 3, 4):
            raise ValueError(f"LatentCompositeMasked: mask must be [H, W] or [B, H, W], got {list(mask.shape)}")
        out = composite_latent(dest, src, x, y, mask, 8, resize_source)
        return (with_samples(destination, out),)


NODES = {cls.__name__: cls for cls in (LatentCrop, LatentFlip, LatentRotate, LatentBlend, LatentCompositeMasked)}
