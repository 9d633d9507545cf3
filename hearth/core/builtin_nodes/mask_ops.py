"""Mask nodes with ComfyUI's names and arithmetic: ImageToMask, MaskToImage, ImageColorToMask, SolidMask, InvertMask,
CropMask, MaskComposite, FeatherMask, GrowMask, ThresholdMask.

A MASK is ``[B, H, W]`` in 0..1 (a lone ``[H, W]`` mask counts as one); nodes that reshape take either, as
ComfyUI's ``mask.reshape((-1, H, W))`` does.
"""

from __future__ import annotations

import math
from typing import Any

from hearth.core.images import MAX_RESOLUTION, check_image, mask_batch, torch_module

CHANNELS = ["red", "green", "blue", "alpha"]
_POSITION = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}
_SIDE = {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}


class ImageToMask:
    """ComfyUI's Convert Image to Mask: one channel of the image as the mask."""

    DISPLAY_NAME = "Convert Image to Mask"
    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "channel": (CHANNELS,)}}

    def image_to_mask(self, image: Any, channel: str) -> tuple[Any]:
        if channel not in CHANNELS:
            raise ValueError(f"channel: {channel!r} is not one of {CHANNELS}")
        index = CHANNELS.index(channel)
        if index >= check_image(image).shape[-1]:
            raise ValueError(f"channel: the image has {image.shape[-1]} channels and no {channel} one; "
                             "load it with its alpha or pick another channel")
        return (image[:, :, :, index],)


class MaskToImage:
    """ComfyUI's Convert Mask to Image: the mask as a grey RGB image."""

    DISPLAY_NAME = "Convert Mask to Image"
    CATEGORY = "mask"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",)}}

    def mask_to_image(self, mask: Any) -> tuple[Any]:
        return (mask_batch(mask)[..., None].expand(-1, -1, -1, 3),)


class ImageColorToMask:
    """ComfyUI's ImageColorToMask: 1 where the pixel, rounded to 8 bits per channel, is exactly ``color``
    (0xRRGGBB), else 0."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",),
                             "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1,
                                               "display": "number"})}}

    def image_to_mask(self, image: Any, color: int) -> tuple[Any]:
        torch = torch_module()
        if check_image(image).shape[-1] < 3:
            raise ValueError("image: needs RGB channels to compare with a colour")
        rgb = (torch.clamp(image[..., :3], 0, 1.0) * 255.0).round().to(torch.int64)
        packed = (rgb[..., 0] << 16) + (rgb[..., 1] << 8) + rgb[..., 2]
        return ((packed == color).float(),)


class SolidMask:
    """ComfyUI's SolidMask: one ``height`` x ``width`` mask of ``value``."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "solid"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                             "width": ("INT", _SIDE), "height": ("INT", _SIDE)}}

    def solid(self, value: float, width: int, height: int) -> tuple[Any]:
        torch = torch_module()
        return (torch.full((1, height, width), value, dtype=torch.float32),)


class InvertMask:
    """ComfyUI's InvertMask: ``1 - mask``."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",)}}

    def invert(self, mask: Any) -> tuple[Any]:
        return (1.0 - mask,)


class CropMask:
    """ComfyUI's CropMask: the region from (``x``, ``y``), cut at the mask's edges."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",), "x": ("INT", _POSITION), "y": ("INT", _POSITION),
                             "width": ("INT", _SIDE), "height": ("INT", _SIDE)}}

    def crop(self, mask: Any, x: int, y: int, width: int, height: int) -> tuple[Any]:
        masks = mask_batch(mask)
        if x >= masks.shape[2] or y >= masks.shape[1]:
            raise ValueError(f"x, y: ({x}, {y}) lies outside the {masks.shape[2]}x{masks.shape[1]} mask, so the "
                             "crop would be empty; pick an origin inside it")
        return (masks[:, y:y + height, x:x + width],)


COMPOSITE_OPERATIONS = ["multiply", "add", "subtract", "and", "or", "xor"]


class MaskComposite:
    """ComfyUI's MaskComposite: ``source`` combined into ``destination`` at (``x``, ``y``), clamped to 0..1. The
    logical operations treat a value as set when it rounds to 1 (0.5 rounds to 0, as torch rounds halves to even)."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "combine"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"destination": ("MASK",), "source": ("MASK",), "x": ("INT", _POSITION),
                             "y": ("INT", _POSITION), "operation": (COMPOSITE_OPERATIONS,)}}

    def combine(self, destination: Any, source: Any, x: int, y: int, operation: str) -> tuple[Any]:
        torch = torch_module()
        if operation not in COMPOSITE_OPERATIONS:
            raise ValueError(f"operation: {operation!r} is not one of {COMPOSITE_OPERATIONS}")
        output = mask_batch(destination, "destination").clone()
        source = mask_batch(source, "source")
        if source.shape[0] not in (1, output.shape[0]) and output.shape[0] != 1:
            raise ValueError(f"source: a batch of {source.shape[0]} masks cannot combine with destination's "
                             f"{output.shape[0]}; give one mask or the same number")
        if output.shape[0] == 1 and source.shape[0] > 1:
            output = output.expand(source.shape[0], -1, -1).clone()
        right, bottom = min(x + source.shape[2], output.shape[2]), min(y + source.shape[1], output.shape[1])
        if right <= x or bottom <= y:
            return (torch.clamp(output, 0.0, 1.0),)
        there = output[:, y:bottom, x:right]
        given = source[:, :bottom - y, :right - x]
        if operation == "multiply":
            result = there * given
        elif operation == "add":
            result = there + given
        elif operation == "subtract":
            result = there - given
        else:
            logic = {"and": torch.logical_and, "or": torch.logical_or, "xor": torch.logical_xor}[operation]
            result = logic(there.round().bool(), given.round().bool()).float()
        output[:, y:bottom, x:right] = result
        return (torch.clamp(output, 0.0, 1.0),)


class FeatherMask:
    """ComfyUI's FeatherMask: linear ramps multiplied in from each side, ``(i + 1) / n`` at the i-th pixel from
    that side.

    ComfyUI indexes the right and bottom ramps with ``-i``, so their first factor (``1 / n``) lands on column
    (row) 0 -- the left (top) edge -- and the last column (row) gets ``2 / n``; Hearth reproduces that, multiplying
    in the same order, so the values are ComfyUI's to the bit.
    """

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "feather"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",), "left": ("INT", _POSITION), "top": ("INT", _POSITION),
                             "right": ("INT", _POSITION), "bottom": ("INT", _POSITION)}}

    def feather(self, mask: Any, left: int, top: int, right: int, bottom: int) -> tuple[Any]:
        output = mask_batch(mask).clone()
        height, width = output.shape[1:]
        left, right = min(left, width), min(right, width)
        top, bottom = min(top, height), min(bottom, height)
        for i in range(left):
            output[:, :, i] *= (i + 1.0) / left
        for i in range(right):
            output[:, :, -i] *= (i + 1) / right
        for i in range(top):
            output[:, i, :] *= (i + 1) / top
        for i in range(bottom):
            output[:, -i, :] *= (i + 1) / bottom
        return (output,)


class GrowMask:
    """ComfyUI's Grow Mask: ``expand`` grey dilations (negative: erosions) by a 3x3 kernel, the plus-shaped one
    with ``tapered_corners``; pixels beyond the edge never count (scipy's mirrored border, which ComfyUI uses,
    only repeats pixels already under the kernel)."""

    DISPLAY_NAME = "Grow Mask"
    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "expand_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",),
                             "expand": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION,
                                                "step": 1}),
                             "tapered_corners": ("BOOLEAN", {"default": True})}}

    def expand_mask(self, mask: Any, expand: int, tapered_corners: bool) -> tuple[Any]:
        torch = torch_module()
        out = mask_batch(mask).float()[:, None]
        steps = min(abs(expand), out.shape[-1] + out.shape[-2])  # after that many steps nothing changes
        sign = 1.0 if expand > 0 else -1.0
        if steps and not tapered_corners:
            # k steps of a 3x3 square are one (2k + 1)-wide square.
            size = 2 * steps + 1
            padded = torch.nn.functional.pad(sign * out, (steps, steps, steps, steps), value=-math.inf)
            return ((sign * torch.nn.functional.max_pool2d(padded, size, stride=1))[:, 0],)
        for _ in range(steps):
            padded = torch.nn.functional.pad(sign * out, (1, 1, 1, 1), value=-math.inf)
            height, width = out.shape[-2:]
            grown = torch.stack([padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
                                 for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]).amax(dim=0)
            grown = sign * grown
            if torch.equal(grown, out):
                break
            out = grown
        return (out[:, 0],)


class ThresholdMask:
    """ComfyUI's ThresholdMask: 1 where the mask is strictly above ``value``, else 0."""

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "image_to_mask"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK",),
                             "value": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def image_to_mask(self, mask: Any, value: float) -> tuple[Any]:
        return ((mask > value).float(),)


NODES = {cls.__name__: cls for cls in (ImageToMask, MaskToImage, ImageColorToMask, SolidMask, InvertMask, CropMask,
                                       MaskComposite, FeatherMask, GrowMask, ThresholdMask)}
