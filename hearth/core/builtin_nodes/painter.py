"""ComfyUI's Painter node: the strokes a user paints in the browser over an image (or a plain canvas) as IMAGE + MASK.

The browser's painter widget uploads the strokes as an RGBA PNG into the input folder and sends its name as
``mask``. The node composites the strokes over the base image by their alpha (``rgb * a + base * (1 - a)``), and
the alpha itself is the MASK; without strokes the base passes through with an empty mask.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from PIL import Image

from hearth.core.builtin_nodes.image_io import PreviewImage
from hearth.core.context import annotated_path
from hearth.core.images import torch_module


def _colour(value: str) -> tuple[float, float, float]:
    """``#RRGGBB`` as 0..1 floats; anything else is black, as ComfyUI's painter reads it."""
    digits = value.lstrip("#") if isinstance(value, str) else ""
    try:
        return tuple(int(digits[i:i + 2], 16) / 255.0 for i in (0, 2, 4)) if len(digits) == 6 else (0.0, 0.0, 0.0)
    except ValueError:
        return (0.0, 0.0, 0.0)


class Painter:
    """ComfyUI's Painter: paint over ``image`` (its first frame) or over a ``width`` x ``height`` canvas of
    ``bg_color``; the strokes' alpha is the mask. Shows the result as a preview."""

    DISPLAY_NAME = "Painter"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("IMAGE", "MASK")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        size = {"min": 64, "max": 4096, "step": 64, "socketless": True, "hidden": True}
        return {"required": {"mask": ("STRING", {"default": "", "socketless": True, "widgetType": "PAINTER",
                                                 "image_upload": True}),
                             "width": ("INT", {"default": 512, **size}),
                             "height": ("INT", {"default": 512, **size}),
                             "bg_color": ("COLOR", {"default": "#000000"})},
                "optional": {"image": ("IMAGE", {"tooltip": "Optional base image to paint over"})}}

    def execute(self, mask: str, width: int, height: int, bg_color: str = "#000000",
                image: Any = None) -> dict[str, Any]:
        torch = torch_module()
        if image is not None:
            if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] != 3:
                shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
                raise ValueError(f"input 'image': expected an IMAGE [batch, height, width, 3], got {shape}")
            base = image[:1].float()
        else:
            base = torch.tensor(_colour(bg_color), dtype=torch.float32).expand(1, height, width, 3).clone()
        h, w = int(base.shape[1]), int(base.shape[2])
        if not (mask and mask.strip()):
            return {"ui": PreviewImage().save_images(base, "ComfyUI")["ui"],
                    "result": (base, torch.zeros((1, h, w), dtype=torch.float32))}
        path = annotated_path(mask)
        if not path.is_file():
            raise ValueError(f"input 'mask': no painted strokes file {mask!r} (looked at {path}); paint again")
        with Image.open(path) as opened:
            strokes = opened.convert("RGBA")
        if strokes.size != (w, h):
            strokes = strokes.resize((w, h), Image.LANCZOS)
        rgba = torch.from_numpy(np.asarray(strokes, dtype=np.float32) / 255.0)
        alpha = rgba[..., 3:4]
        out = (rgba[..., :3] * alpha + base[0] * (1.0 - alpha)).unsqueeze(0)
        return {"ui": PreviewImage().save_images(out, "ComfyUI")["ui"], "result": (out, alpha[..., 0].unsqueeze(0))}

    @classmethod
    def IS_CHANGED(cls, mask: str, **_: Any) -> str:
        if mask and mask.strip():
            try:
                path = annotated_path(mask)
            except ValueError:
                return ""
            if path.is_file():
                return hashlib.sha256(path.read_bytes()).hexdigest()
        return ""


NODES = {"Painter": Painter}
