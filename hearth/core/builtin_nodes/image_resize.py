"""Resizing and batching images and masks with ComfyUI's names and rules: ResizeImageMaskNode, ImageScaleToTotalPixels,
ImageScaleToMaxDimension, ResizeAndPadImage, BatchImagesNode, BatchMasksNode.

Sizes are computed as ComfyUI computes them (Python ``round`` -- halves to even -- or ``int`` truncation where
ComfyUI truncates), and every resize goes through :func:`hearth.core.images.resize_bchw`, ComfyUI's
``common_upscale``.
"""

from __future__ import annotations

import math
from typing import Any

from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, autogrow_prefix, dynamic_combo
from hearth.core.builtin_nodes.image_dynamic import MATCH_TYPE, grown_inputs, match_type, selected_option
from hearth.core.images import (
    MAX_RESOLUTION,
    UPSCALE_METHODS,
    batch_images,
    check_image,
    mask_batch,
    resize_bchw,
    torch_module,
    upscale,
)

CROP_METHODS = ["disabled", "center"]
_CROP = (CROP_METHODS, {"default": "center", "tooltip": "How to handle aspect ratio mismatch: 'disabled' stretches "
                                                        "to fit, 'center' crops to maintain aspect ratio."})


def _size(default: int = 512) -> tuple[str, dict[str, Any]]:
    return "INT", {"default": default, "min": 0, "max": MAX_RESOLUTION, "step": 1}


RESIZE_TYPE, RESIZE_MEMBERS = dynamic_combo("resize_type", {
    "scale dimensions": {"width": _size(), "height": _size(), "crop": _CROP},
    "scale by multiplier": {"multiplier": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01})},
    "scale longer dimension": {"longer_size": _size()},
    "scale shorter dimension": {"shorter_size": _size()},
    "scale width": {"width": _size()},
    "scale height": {"height": _size()},
    "scale total pixels": {"megapixels": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01})},
    "match size": {"match": ("IMAGE,MASK", {}), "crop": _CROP},
    "scale to multiple": {"multiple": ("INT", {"default": 8, "min": 1, "max": MAX_RESOLUTION, "step": 1})},
}, tooltip="Select how to resize: by exact dimensions, scale factor, matching another image, etc.")


def _resize_any(values: Any, width: int, height: int, method: str, crop: str = "disabled") -> Any:
    """Resize an IMAGE ``[B, H, W, C]`` or a MASK ``[B, H, W]`` and give back the same kind."""
    if values.ndim == 4:
        return upscale(values, width, height, method, crop)
    return resize_bchw(mask_batch(values, "input")[:, None], width, height, method, crop)[:, 0]


def _fit_edge(width: int, height: int, length: int, *, longer: bool) -> tuple[int, int]:
    """``(width, height)`` with the longer (or shorter) side ``length`` and the other rounded to keep the aspect."""
    if (height > width) if longer else (height < width):
        return round(width / height * length), length
    return length, round(height / width * length)


def _cover_multiple(values: Any, multiple: int, method: str) -> Any:
    """Scale so the image covers the largest size divisible by ``multiple``, then centre-crop to it."""
    height, width = values.shape[1], values.shape[2]
    target_w, target_h = width // multiple * multiple, height // multiple * multiple
    if multiple <= 1 or target_w == 0 or target_h == 0 or (target_w, target_h) == (width, height):
        return values
    if target_w / width >= target_h / height:
        scaled_w, scaled_h = target_w, max(target_h, math.ceil(height * target_w / width))
    else:
        scaled_w, scaled_h = max(target_w, math.ceil(width * target_h / height)), target_h
    out = _resize_any(values, scaled_w, scaled_h, method)
    x0, y0 = (scaled_w - target_w) // 2, (scaled_h - target_h) // 2
    return out[:, y0:y0 + target_h, x0:x0 + target_w]


class ResizeImageMaskNode:
    """ComfyUI's Resize Image/Mask: one node for every way of choosing the new size, for an IMAGE or a MASK."""

    DISPLAY_NAME = "Resize Image/Mask"
    DESCRIPTION = "Resize an image or mask using various scaling methods."
    CATEGORY = "transform"
    RETURN_TYPES = (MATCH_TYPE,)
    RETURN_NAMES = ("resized",)
    FUNCTION = "resize"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        required = {
            "input": match_type("input_type", ["IMAGE", "MASK"]),
            "resize_type": RESIZE_TYPE,
            "scale_method": (UPSCALE_METHODS, {"default": "area", "tooltip": "Interpolation algorithm. 'area' is best "
                                               "for downscaling, 'lanczos' for upscaling, 'nearest-exact' for pixel "
                                               "art."}),
        }
        return {"required": required, "optional": DynamicSection({}, RESIZE_MEMBERS)}

    def resize(self, input: Any, resize_type: str, scale_method: str, **members: Any) -> tuple[Any]:
        if getattr(input, "ndim", 0) not in (2, 3, 4):
            raise ValueError(f"input: expected an IMAGE or a MASK, got {type(input).__name__}")
        if scale_method not in UPSCALE_METHODS:
            raise ValueError(f"scale_method: {scale_method!r} is not one of {UPSCALE_METHODS}")
        chosen = selected_option("resize_type", RESIZE_TYPE, resize_type, members)
        values = input if input.ndim == 4 else mask_batch(input, "input")
        height, width = values.shape[1], values.shape[2]
        if resize_type == "scale by multiplier":
            factor = chosen["multiplier"]
            return (_resize_any(values, round(width * factor), round(height * factor), scale_method),)
        if resize_type in ("scale dimensions", "scale width", "scale height"):
            new_w, new_h = chosen.get("width", 0), chosen.get("height", 0)
            if new_w == 0 and new_h == 0:
                return (values,)
            if new_w == 0:
                new_w = max(1, round(width * new_h / height))
            elif new_h == 0:
                new_h = max(1, round(height * new_w / width))
            return (_resize_any(values, new_w, new_h, scale_method, chosen.get("crop", "disabled")),)
        if resize_type == "scale longer dimension":
            return (_resize_any(values, *_fit_edge(width, height, chosen["longer_size"], longer=True), scale_method),)
        if resize_type == "scale shorter dimension":
            return (_resize_any(values, *_fit_edge(width, height, chosen["shorter_size"], longer=False), scale_method),)
        if resize_type == "scale total pixels":
            factor = math.sqrt(int(chosen["megapixels"] * 1024 * 1024) / (width * height))
            return (_resize_any(values, round(width * factor), round(height * factor), scale_method),)
        if resize_type == "match size":
            match = chosen["match"]
            if getattr(match, "ndim", 0) not in (2, 3, 4):
                raise ValueError("resize_type.match: link an IMAGE or a MASK whose size to take")
            return (_resize_any(values, match.shape[-2] if match.ndim == 4 else match.shape[-1],
                                match.shape[-3] if match.ndim == 4 else match.shape[-2], scale_method,
                                chosen["crop"]),)
        return (_cover_multiple(values, chosen["multiple"], scale_method),)


class ImageScaleToTotalPixels:
    """ComfyUI's ImageScaleToTotalPixels: about ``megapixels`` x 1024 x 1024 pixels, keeping the aspect ratio,
    each side rounded to a multiple of ``resolution_steps``."""

    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "upscale_method": (UPSCALE_METHODS,),
            "megapixels": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01}),
            "resolution_steps": ("INT", {"default": 1, "min": 1, "max": 256}),
        }}

    def upscale(self, image: Any, upscale_method: str, megapixels: float, resolution_steps: int = 1) -> tuple[Any]:
        check_image(image)
        height, width = image.shape[1], image.shape[2]
        factor = math.sqrt(megapixels * 1024 * 1024 / (width * height))
        new_w = round(width * factor / resolution_steps) * resolution_steps
        new_h = round(height * factor / resolution_steps) * resolution_steps
        if new_w < 1 or new_h < 1:
            raise ValueError(f"resolution_steps: {resolution_steps} rounds this {width}x{height} image to "
                             f"{new_w}x{new_h} at {megapixels} megapixels; use smaller steps or more megapixels")
        return (upscale(image, int(new_w), int(new_h), upscale_method),)


class ImageScaleToMaxDimension:
    """ComfyUI's ImageScaleToMaxDimension: the longer side becomes ``largest_size``, the aspect ratio kept."""

    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        # ComfyUI's list, "bilinear" twice included, so /object_info matches it.
        methods = ["area", "lanczos", "bilinear", "nearest-exact", "bilinear", "bicubic"]
        return {"required": {
            "image": ("IMAGE",),
            "upscale_method": (methods,),
            "largest_size": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
        }}

    def upscale(self, image: Any, upscale_method: str, largest_size: int) -> tuple[Any]:
        check_image(image)
        width, height = _fit_edge(image.shape[2], image.shape[1], largest_size, longer=True)
        return (upscale(image, width, height, upscale_method),)


class ResizeAndPadImage:
    """ComfyUI's ResizeAndPadImage: fit inside the target keeping the aspect ratio (sizes truncated), centred on a
    white or black canvas."""

    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "resize_and_pad"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "target_width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "target_height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "padding_color": (["white", "black"],),
            "interpolation": (["area", "bicubic", "nearest-exact", "bilinear", "lanczos"],),
        }}

    def resize_and_pad(self, image: Any, target_width: int, target_height: int, padding_color: str,
                       interpolation: str) -> tuple[Any]:
        torch = torch_module()
        batch, height, width, channels = check_image(image).shape
        scale = min(target_width / width, target_height / height)
        new_w, new_h = int(width * scale), int(height * scale)
        resized = upscale(image, new_w, new_h, interpolation)
        out = torch.full((batch, target_height, target_width, channels), 0.0 if padding_color == "black" else 1.0,
                         dtype=image.dtype, device=image.device)
        top, left = (target_height - new_h) // 2, (target_width - new_w) // 2
        out[:, top:top + new_h, left:left + new_w] = resized
        return (out,)


IMAGES, IMAGE_MEMBERS = autogrow_prefix("images", ("image", ("IMAGE",)), "image", 2, 50, optional=False)
MASKS, MASK_MEMBERS = autogrow_prefix("masks", ("mask", ("MASK",)), "mask", 2, 50, optional=False)


class BatchImagesNode:
    """ComfyUI's Batch Images (any number of inputs): every image is resized to the first one's size (bilinear,
    centre crop) and an RGB image batched with RGBA ones gains an opaque alpha channel."""

    DISPLAY_NAME = "Batch Images"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": IMAGES}, "optional": DynamicSection({}, IMAGE_MEMBERS)}

    def batch(self, images: Any = None, **members: Any) -> tuple[Any]:
        found = grown_inputs("images", IMAGES, members)
        for index, image in enumerate(found):
            check_image(image, f"images.image{index}")
        return (batch_images(found, "images"),)


class BatchMasksNode:
    """ComfyUI's Batch Masks (any number of inputs): every mask is resized to the first one's size (bilinear,
    centre crop)."""

    DISPLAY_NAME = "Batch Masks"
    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"masks": MASKS}, "optional": DynamicSection({}, MASK_MEMBERS)}

    def batch(self, masks: Any = None, **members: Any) -> tuple[Any]:
        torch = torch_module()
        found = [mask_batch(mask, f"masks.mask{i}") for i, mask in enumerate(grown_inputs("masks", MASKS, members))]
        first = found[0]
        same = [mask if mask.shape[1:] == first.shape[1:] else
                resize_bchw(mask[:, None], first.shape[2], first.shape[1], "bilinear", "center")[:, 0]
                for mask in found]
        return (torch.cat(same, dim=0),)


NODES = {cls.__name__: cls for cls in (ResizeImageMaskNode, ImageScaleToTotalPixels, ImageScaleToMaxDimension,
                                       ResizeAndPadImage, BatchImagesNode, BatchMasksNode)}
