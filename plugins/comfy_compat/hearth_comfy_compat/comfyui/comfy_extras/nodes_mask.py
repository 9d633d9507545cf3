"""ComfyUI's ``comfy_extras.nodes_mask`` module: ``composite`` (pasting a source into a destination through a mask,
as the compositing nodes and packs do), ``GrowMask``, and the mask node classes by ComfyUI's names (Hearth's class
where the registry has the node, a recorded stand-in otherwise)."""

from __future__ import annotations

from typing import Any

import torch

from hearth.core.images import MAX_RESOLUTION
from hearth_comfy_compat.comfy_nodes import node_exports
from hearth_comfy_compat.comfy_utils import repeat_to_batch_size

__all__ = ["GrowMask", "ImageCompositeMasked", "LatentCompositeMasked", "composite"]


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None = None,
              multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """``destination`` (``[B, C, H, W]``) with ``source`` pasted at pixel ``(x, y)`` through ``mask`` (1 = source).

    ``multiplier`` is how many pixels one element spans (8 for latents, 1 for images): ``x`` and ``y`` are
    divided by it. The source is repeated to the destination's batch, or first resized to the destination's size
    with ``resize_source``; what falls outside the destination is dropped. Returns a new tensor.
    """
    destination = destination.clone()
    source = source.to(destination.device)
    if resize_source:
        source = torch.nn.functional.interpolate(source, size=destination.shape[2:], mode="bilinear")
    source = repeat_to_batch_size(source, destination.shape[0])
    height, width = source.shape[2:]
    x = max(-width * multiplier, min(x, destination.shape[3] * multiplier))
    y = max(-height * multiplier, min(y, destination.shape[2] * multiplier))
    left, top = x // multiplier, y // multiplier
    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = mask.to(destination.device, source.dtype).reshape(-1, 1, mask.shape[-2], mask.shape[-1])
        mask = torch.nn.functional.interpolate(mask, size=(height, width), mode="bilinear")
        mask = repeat_to_batch_size(mask, source.shape[0])
    # The part of the source that lands inside the destination.
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    rows = min(height - src_top, destination.shape[2] - dst_top)
    cols = min(width - src_left, destination.shape[3] - dst_left)
    if rows <= 0 or cols <= 0:
        return destination
    piece = (slice(None), slice(None), slice(src_top, src_top + rows), slice(src_left, src_left + cols))
    place = (slice(None), slice(None), slice(dst_top, dst_top + rows), slice(dst_left, dst_left + cols))
    weight = mask[piece]
    destination[place] = source[piece] * weight + destination[place] * (1 - weight)
    return destination


def _grow(mask: torch.Tensor, tapered: bool) -> torch.Tensor:
    # One step of grey dilation with a 3x3 square, or a 3x3 cross for tapered corners.
    padded = torch.nn.functional.pad(mask[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    height, width = mask.shape[-2:]
    shifts = [(1, 0), (0, 1), (1, 2), (2, 1), (1, 1)]
    if not tapered:
        shifts += [(0, 0), (0, 2), (2, 0), (2, 2)]
    return torch.stack([padded[:, dy:dy + height, dx:dx + width] for dy, dx in shifts]).amax(0)


class GrowMask:
    """Grow a MASK by ``expand`` pixels (shrink when negative), with rounded (tapered) or square corners."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "expand_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"mask": ("MASK",),
                             "expand": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION}),
                             "tapered_corners": ("BOOLEAN", {"default": True})}}

    def expand_mask(self, mask: torch.Tensor, expand: int, tapered_corners: bool) -> tuple[torch.Tensor]:
        out = mask.reshape(-1, mask.shape[-2], mask.shape[-1]).float()
        for _ in range(abs(expand)):
            out = _grow(out, tapered_corners) if expand > 0 else -_grow(-out, tapered_corners)
        return (out,)


def _position(step: int) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": step})


class LatentCompositeMasked:
    """A LATENT with another pasted in at pixel ``(x, y)`` through an optional MASK."""

    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"destination": ("LATENT",), "source": ("LATENT",), "x": _position(8), "y": _position(8),
                             "resize_source": ("BOOLEAN", {"default": False})},
                "optional": {"mask": ("MASK",)}}

    def composite(self, destination: dict[str, Any], source: dict[str, Any], x: int, y: int, resize_source: bool,
                  mask: torch.Tensor | None = None) -> tuple[dict[str, Any]]:
        out = dict(destination)
        out["samples"] = composite(destination["samples"], source["samples"], x, y, mask, 8, resize_source)
        return (out,)


class ImageCompositeMasked:
    """An IMAGE with another pasted in at ``(x, y)`` through an optional MASK."""

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"destination": ("IMAGE",), "source": ("IMAGE",), "x": _position(1), "y": _position(1),
                             "resize_source": ("BOOLEAN", {"default": False})},
                "optional": {"mask": ("MASK",)}}

    def composite(self, destination: torch.Tensor, source: torch.Tensor, x: int, y: int, resize_source: bool,
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        pasted = composite(destination.movedim(-1, 1), source.movedim(-1, 1), x, y, mask, 1, resize_source)
        return (pasted.movedim(1, -1),)


__getattr__ = node_exports([
    "MaskToImage", "ImageToMask", "ImageColorToMask", "SolidMask",
    "InvertMask", "CropMask", "MaskComposite", "FeatherMask", "ThresholdMask", "MaskPreview",
])
