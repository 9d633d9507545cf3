"""Cropping an image to the subject its mask outlines, with ComfyUI's name and rules: ImageCropToMask.

3D-from-image pipelines (Trellis2, Hunyuan3D, TripoSR...) want the subject centred on a plain background at a fixed
size; this node finds the mask's bounding box, widens it to the output's aspect ratio (times ``pad_factor``),
cuts it out (zero outside the image), puts the subject on ``background`` and resizes the result with lanczos.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hearth.core.images import check_image, mask_batch, resize_bchw, torch_module

logger = logging.getLogger(__name__)

FOREGROUND_BYTE = 204  # a mask byte above this (80 %) counts as subject when finding the bounding box
MASK_FLOOR = 0.05  # mask values below this are treated as 0 before compositing


def parse_colour(text: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` as 0..1 RGB; anything else is black, as ComfyUI reads it."""
    digits = text.lstrip("#") if isinstance(text, str) else ""
    try:
        return tuple(int(digits[i:i + 2], 16) / 255.0 for i in (0, 2, 4)) if len(digits) == 6 else (0.0, 0.0, 0.0)
    except ValueError:
        return 0.0, 0.0, 0.0


def _bounding_box(subject: Any, aspect: float, pad_factor: float) -> tuple[int, int, int, int]:
    """The crop (left, top, right, bottom) around the True pixels of ``subject``, at ``aspect`` and margin."""
    found = subject.nonzero()
    (y_min, x_min), (y_max, x_max) = found.min(dim=0).values.tolist(), found.max(dim=0).values.tolist()
    centre_y, centre_x = (y_min + y_max) / 2.0, (x_min + x_max) / 2.0
    box_w, box_h = x_max - x_min + 1, y_max - y_min + 1
    # Widen the box to the output's aspect ratio around its longer side, then add the margin.
    if box_w / max(box_h, 1) >= aspect:
        crop_w, crop_h = int(box_w * pad_factor), int(box_w / aspect * pad_factor)
    else:
        crop_w, crop_h = int(box_h * aspect * pad_factor), int(box_h * pad_factor)
    half_w, half_h = math.ceil(crop_w / 2), math.ceil(crop_h / 2)
    left, top = int(centre_x - half_w), int(centre_y - half_h)
    return left, top, left + 2 * half_w, top + 2 * half_h


def crop_to_subject(image: Any, mask: Any, largest: int, pad_factor: float, grow: int,
                    background: tuple[float, float, float], aspect: float) -> Any:
    """One ``[3, H, W]`` image and ``[H, W]`` mask -> the subject on ``background``, ``[1, 3, h, w]``."""
    torch = torch_module()
    img = image.float().clamp(0, 1)[None]
    alpha = mask.float().clamp(0, 1)[None, None]
    plane = alpha[0, 0]
    height, width = plane.shape
    border = torch.cat([plane[0, :], plane[-1, :], plane[:, 0], plane[:, -1]])
    centre = plane[height // 4:height - height // 4, width // 4:width - width // 4]
    if float(border.mean()) > 0.5 and float(centre.mean()) < 0.5:
        alpha = 1.0 - alpha  # a mask drawn around the subject rather than on it
    if grow > 0:
        alpha = torch.nn.functional.max_pool2d(alpha, 2 * grow + 1, stride=1, padding=grow)
    elif grow < 0:
        alpha = 1.0 - torch.nn.functional.max_pool2d(1.0 - alpha, -2 * grow + 1, stride=1, padding=-grow)
    alpha = torch.where(alpha < MASK_FLOOR, torch.zeros_like(alpha), alpha)
    if max(height, width) > largest:
        scale = largest / max(height, width)
        width, height = int(width * scale), int(height * scale)
        img = resize_bchw(img, width, height, "lanczos")
        alpha = resize_bchw(alpha, width, height, "lanczos")
    as_bytes = (alpha[0, 0].clamp(0, 1) * 255.0).to(torch.uint8)
    subject = as_bytes > FOREGROUND_BYTE
    if not bool(subject.any()) and bool(((255 - as_bytes) > FOREGROUND_BYTE).any()):
        alpha, subject = 1.0 - alpha, (255 - as_bytes) > FOREGROUND_BYTE  # the inverted mask has the subject
    if bool(subject.any()):
        left, top, right, bottom = _bounding_box(subject, aspect, pad_factor)
    else:
        logger.warning("ImageCropToMask: the mask is empty; the whole image is used")
        left, top, right, bottom = 0, 0, width, height
    pads = (max(0, -left), max(0, right - width), max(0, -top), max(0, bottom - height))
    if any(pads):
        img = torch.nn.functional.pad(img, pads, value=0.0)
        alpha = torch.nn.functional.pad(alpha, pads, value=0.0)
        left, right, top, bottom = left + pads[0], right + pads[0], top + pads[2], bottom + pads[2]
    img, alpha = img[..., top:bottom, left:right], alpha[..., top:bottom, left:right]
    colour = torch.tensor(background, dtype=img.dtype).view(1, 3, 1, 1)
    return (img * alpha + colour * (1.0 - alpha)).clamp(0, 1)


class ImageCropToMask:
    """ComfyUI's Crop Image to Mask: each image cut to its mask's subject (the mask auto-inverted when it is
    drawn around the subject, grown or shrunk by ``grow_mask``), composited on ``background`` and resized to
    ``width`` x ``height``. One mask serves a whole batch; otherwise there is one mask per image."""

    DISPLAY_NAME = "Crop Image to Mask"
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        side = {"min": 64, "max": 4096, "step": 8}
        return {"required": {
            "images": ("IMAGE",),
            "masks": ("MASK",),
            "width": ("INT", {"default": 1024, **side, "tooltip": "Output width in pixels."}),
            "height": ("INT", {"default": 1024, **side, "tooltip": "Output height in pixels."}),
            "pad_factor": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 2.0, "step": 0.01,
                                     "tooltip": "Extra margin around the mask bounding box as a multiplier."}),
            "grow_mask": ("INT", {"default": 0, "min": -32, "max": 32, "step": 1,
                                  "tooltip": "Grow or shrink the mask by this many pixels before cropping."}),
            "background": ("COLOR", {"default": "#000000",
                                     "tooltip": "Background color behind the masked subject."}),
        }}

    def crop(self, images: Any, masks: Any, width: int, height: int, pad_factor: float, grow_mask: int,
             background: str = "#000000") -> tuple[Any]:
        torch = torch_module()
        rgb = check_image(images, "images")[..., :3]
        masks = mask_batch(masks, "masks")
        if masks.shape[0] == 1 and rgb.shape[0] > 1:
            masks = masks.expand(rgb.shape[0], -1, -1)
        elif masks.shape[0] != rgb.shape[0]:
            raise ValueError(f"masks: {masks.shape[0]} masks for {rgb.shape[0]} images; give one mask, or one per "
                             "image")
        if masks.shape[1:] != rgb.shape[1:3]:
            masks = resize_bchw(masks[:, None].float(), rgb.shape[2], rgb.shape[1], "bilinear")[:, 0]
        colour = parse_colour(background)
        out = []
        for image, mask in zip(rgb, masks, strict=True):
            subject = crop_to_subject(image.movedim(-1, 0), mask, max(width, height), pad_factor, grow_mask,
                                      colour, width / height)
            out.append(resize_bchw(subject, width, height, "lanczos").movedim(1, -1))
        return (torch.cat(out, dim=0),)


NODES = {"ImageCropToMask": ImageCropToMask}
