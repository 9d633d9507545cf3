"""Splitting an image into overlapping tiles and merging them back, with ComfyUI's names and grid:
SplitImageToTileList and ImageMergeTileList.

The tiles travel as a list (one node run per tile downstream, e.g. an upscaler); the merge weighs overlapping
tiles with a sine window so the seams blend.
"""

from __future__ import annotations

import math
from typing import Any

from hearth.core.images import MAX_RESOLUTION, check_image, torch_module


def grid(width: int, height: int, tile_width: int, tile_height: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """ComfyUI's tile grid: (x0, y0, x1, y1) per tile, row by row. Steps are the tile size minus the overlap (at
    least a quarter tile); the last tile of a row or column is pulled back to end at the image's edge."""
    step_x = round(max(tile_width * 0.25, tile_width - overlap))
    step_y = round(max(tile_height * 0.25, tile_height - overlap))
    coords = []
    y = 0
    while y < height:
        y1 = min(y + tile_height, height)
        y0 = max(0, y1 - tile_height)
        x = 0
        while x < width:
            x1 = min(x + tile_width, width)
            coords.append((max(0, x1 - tile_width), y0, x1, y1))
            if x1 >= width:
                break
            x += step_x
        if y1 >= height:
            break
        y += step_y
    return coords


class SplitImageToTileList:
    """ComfyUI's Split Image into List of Tiles: the image cut along :func:`grid`, as a list of tiles."""

    DISPLAY_NAME = "Split Image into List of Tiles"
    DESCRIPTION = "Splits an image into a batched list of tiles with a specified overlap."
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "split"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        side = {"default": 1024, "min": 64, "max": MAX_RESOLUTION}
        return {"required": {"image": ("IMAGE",), "tile_width": ("INT", side), "tile_height": ("INT", side),
                             "overlap": ("INT", {"default": 128, "min": 0, "max": 4096})}}

    def split(self, image: Any, tile_width: int, tile_height: int, overlap: int) -> tuple[list[Any]]:
        height, width = check_image(image).shape[1:3]
        return ([image[:, y0:y1, x0:x1, :] for x0, y0, x1, y1 in grid(width, height, tile_width, tile_height,
                                                                       overlap)],)


class ImageMergeTileList:
    """ComfyUI's Merge List of Tiles to Image: tiles laid on a ``final_width`` x ``final_height`` canvas along the
    grid their size and ``overlap`` give, overlaps averaged with sine-window weights (flat without overlap)."""

    DISPLAY_NAME = "Merge List of Tiles to Image"
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    INPUT_IS_LIST = True
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        side = {"default": 1024, "min": 64, "max": 32768}
        return {"required": {"image_list": ("IMAGE",), "final_width": ("INT", side), "final_height": ("INT", side),
                             "overlap": ("INT", {"default": 128, "min": 0, "max": 4096})}}

    def merge(self, image_list: list[Any], final_width: list[int], final_height: list[int],
              overlap: list[int]) -> tuple[Any]:
        torch = torch_module()
        width, height, spacing = final_width[0], final_height[0], overlap[0]
        if not image_list:
            raise ValueError("image_list: no tiles to merge")
        first = check_image(image_list[0], "image_list")
        batch, tile_h, tile_w, channels = first.shape
        canvas = torch.zeros((batch, height, width, channels), dtype=first.dtype)
        weights = torch.zeros((batch, height, width, 1), dtype=first.dtype)
        if spacing > 0:
            rows = torch.sin(math.pi * torch.linspace(0, 1, tile_h, dtype=first.dtype)).clamp(min=1e-5)
            cols = torch.sin(math.pi * torch.linspace(0, 1, tile_w, dtype=first.dtype)).clamp(min=1e-5)
            window = (rows[:, None] * cols[None, :])[None, ..., None]
        else:
            window = torch.ones((1, tile_h, tile_w, 1), dtype=first.dtype)
        for tile, (x0, y0, x1, y1) in zip(image_list, grid(width, height, tile_w, tile_h, spacing), strict=False):
            check_image(tile, "image_list")
            if tile.shape[0] != batch or tile.shape[-1] != channels:
                raise ValueError(f"image_list: tiles of {tile.shape[0]} images x {tile.shape[-1]} channels do not "
                                 f"match the first tile's {batch} x {channels}")
            h, w = min(y1 - y0, tile.shape[1]), min(x1 - x0, tile.shape[2])
            canvas[:, y0:y0 + h, x0:x0 + w] += tile[:, :h, :w] * window[:, :h, :w]
            weights[:, y0:y0 + h, x0:x0 + w] += window[:, :h, :w]
        weights[weights == 0] = 1.0
        return (canvas / weights,)


NODES = {cls.__name__: cls for cls in (SplitImageToTileList, ImageMergeTileList)}
