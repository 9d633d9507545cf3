"""Tiled upscaling as ComfyUI's ``comfy.utils.tiled_scale`` does it: same tile grid, same feathered blend.

A model that cannot take a whole image at once takes overlapping tiles. The tile origins step by
``tile - overlap`` from 0 while they stay below ``size - overlap``; a tile is cut short at the image's edge. Each
upscaled tile is weighted by a mask that ramps linearly over ``overlap * scale`` pixels at each of its four edges
(``(t + 1) / feather`` for the t-th pixel in from the edge, including the image's own edges), and the output is
the weighted sum divided by the summed weights. An image no larger than one tile is upscaled whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch


def tile_count(width: int, height: int, tile: int, overlap: int) -> int:
    """Tiles per image (ComfyUI's ``get_tiled_scale_steps``), for the progress bar."""
    rows = 1 if height <= tile else math.ceil((height - overlap) / (tile - overlap))
    cols = 1 if width <= tile else math.ceil((width - overlap) / (tile - overlap))
    return rows * cols


def _origins(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    return [max(0, min(size - overlap, start)) for start in range(0, size - overlap, tile - overlap)]


def _feather_mask(shape: torch.Size, feather: int, device: torch.device) -> torch.Tensor:
    mask = torch.ones(shape, device=device)
    for dim in (2, 3):
        length = shape[dim]
        if feather >= length:
            continue  # a tile no wider than the ramp keeps full weight along that axis
        ramp = torch.ones(length, device=device)
        steps = torch.arange(1, feather + 1, dtype=torch.float32, device=device) / feather
        ramp[:feather] *= steps
        ramp[length - feather:] *= steps.flip(0)
        mask = mask * (ramp.view(1, 1, length, 1) if dim == 2 else ramp.view(1, 1, 1, length))
    return mask


@torch.inference_mode()
def tiled_scale(images: torch.Tensor, upscale: Callable[[torch.Tensor], torch.Tensor], *, tile: int, overlap: int,
                scale: int, out_channels: int, output_device: str | torch.device = "cpu",
                on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """``upscale`` over ``images`` ``[B, C, H, W]`` in ``tile`` x ``tile`` pieces; ``[B, out_channels, H*s, W*s]``."""
    batch, _, height, width = images.shape
    output = torch.empty((batch, out_channels, height * scale, width * scale), device=output_device)
    feather = overlap * scale
    for b in range(batch):
        image = images[b:b + 1]
        if height <= tile and width <= tile:
            output[b:b + 1] = upscale(image).to(output_device)
            if on_tile is not None:
                on_tile()
            continue
        total = torch.zeros((1, out_channels, height * scale, width * scale), device=output_device)
        weight = torch.zeros_like(total)
        for y, x in itertools.product(_origins(height, tile, overlap), _origins(width, tile, overlap)):
            piece = image[:, :, y:y + min(tile, height - y), x:x + min(tile, width - x)]
            out = upscale(piece).to(output_device)
            mask = _feather_mask(out.shape, feather, out.device)
            h, w = out.shape[2], out.shape[3]
            total[:, :, y * scale:y * scale + h, x * scale:x * scale + w] += out * mask
            weight[:, :, y * scale:y * scale + h, x * scale:x * scale + w] += mask
            if on_tile is not None:
                on_tile()
        output[b:b + 1] = total / weight
    return output
