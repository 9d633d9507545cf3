"""Image helpers shared by nodes and plugins: PIL <-> IMAGE tensors, ComfyUI's resizing rules, MAX_RESOLUTION.

IMAGE values are float32 tensors ``[batch, height, width, channels]`` in 0..1 and MASK values ``[batch, height,
width]``, the layout ComfyUI's custom nodes expect. torch is imported when a node runs, not when the registry
is built, so listing nodes stays fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
MAX_RESOLUTION = 16384


def torch_module() -> Any:
    import torch

    return torch


def pil_to_tensor(image: Image.Image) -> Any:
    """One RGB PIL image -> ``[1, H, W, 3]`` float tensor."""
    torch = torch_module()
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy())[None]


def tensor_to_pil(image: Any) -> Image.Image:
    """One ``[H, W, C]`` tensor -> PIL image (values clipped to 0..1, rounded to 8 bits)."""
    array = np.clip(np.asarray(image.detach().cpu().float().numpy()) * 255.0, 0, 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array)


def center_crop_box(width: int, height: int, target_w: int, target_h: int) -> tuple[int, int, int, int]:
    """The (x, y, w, h) region of a width x height image with the target's aspect ratio, centred.

    As ComfyUI: the margin on each side is rounded and the same on both, so the region can be one pixel off
    the exact aspect ratio; matching it keeps results pixel-identical to ComfyUI's.
    """
    old, new = width / height, target_w / target_h
    x = y = 0
    if old > new:
        x = round((width - width * new / old) / 2)
    elif old < new:
        y = round((height - height * old / new) / 2)
    return x, y, width - 2 * x, height - 2 * y


def upscale(images: Any, width: int, height: int, method: str, crop: str = "disabled") -> Any:
    """Resize ``[B, H, W, C]`` images to ``width`` x ``height`` with one of :data:`UPSCALE_METHODS`."""
    torch = torch_module()
    if method not in UPSCALE_METHODS:
        raise ValueError(f"unknown upscale method {method!r}; expected one of {', '.join(UPSCALE_METHODS)}")
    samples = images
    if crop == "center":
        x, y, w, h = center_crop_box(images.shape[2], images.shape[1], width, height)
        samples = images[:, y:y + h, x:x + w, :]
    if method == "lanczos":
        # Through PIL in the image's own mode (L, RGB or RGBA), so no channel is lost, as in ComfyUI.
        resized = [np.asarray(tensor_to_pil(img).resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
                   for img in samples]
        out = torch.from_numpy(np.stack(resized) / 255.0)
        return out if out.ndim == 4 else out[..., None]
    chw = samples.movedim(-1, 1)
    kwargs = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    out = torch.nn.functional.interpolate(chw, size=(height, width), mode=method, **kwargs)
    if method == "bicubic":
        out = out.clamp(0.0, 1.0)
    return out.movedim(1, -1).contiguous()


def target_size(images: Any, width: int, height: int) -> tuple[int, int]:
    """ComfyUI's rule: a zero width or height keeps the aspect ratio; both zero keeps the size."""
    old_h, old_w = images.shape[1], images.shape[2]
    if width == 0 and height == 0:
        return old_w, old_h
    if width == 0:
        width = max(1, round(old_w * height / old_h))
    elif height == 0:
        height = max(1, round(old_h * width / old_w))
    return width, height
