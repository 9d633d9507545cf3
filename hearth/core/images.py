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
    """One ``[H, W, C]`` tensor -> PIL image: scaled by 255, clipped and truncated to 8 bits, as ComfyUI's savers
    do (``np.clip(255. * x, 0, 255).astype(np.uint8)``: 0.999 is 254, not 255)."""
    array = np.clip(255.0 * np.asarray(image.detach().cpu().float().numpy()), 0, 255).astype(np.uint8)
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


def resize_bchw(samples: Any, width: int, height: int, method: str, crop: str = "disabled") -> Any:
    """ComfyUI's ``comfy.utils.common_upscale`` on ``[B, C, H, W]`` values (images moved channels-first, masks
    with C = 1): an optional centre crop to the target's aspect ratio, then one of :data:`UPSCALE_METHODS`.

    As ComfyUI: ``bilinear``/``bicubic`` without corner alignment or antialiasing and without clamping (bicubic
    may overshoot 0..1 slightly), ``area`` is average pooling, and ``lanczos`` goes through PIL at 8 bits, the
    float-to-byte step truncating (``astype(uint8)``), so its results match ComfyUI's to the byte.
    """
    torch = torch_module()
    if method not in UPSCALE_METHODS:
        raise ValueError(f"unknown upscale method {method!r}; expected one of {', '.join(UPSCALE_METHODS)}")
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}: both sides must be at least 1 pixel")
    if crop == "center":
        x, y, w, h = center_crop_box(samples.shape[-1], samples.shape[-2], width, height)
        samples = samples[..., y:y + h, x:x + w]
    if method == "lanczos":
        return _lanczos(samples, width, height)
    kwargs = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    return torch.nn.functional.interpolate(samples.float(), size=(height, width), mode=method, **kwargs)


def _lanczos(samples: Any, width: int, height: int) -> Any:
    # PIL filters each band alike, so resizing channel by channel in mode L gives ComfyUI's RGB/RGBA result and
    # also serves masks and other channel counts.
    torch = torch_module()
    array = samples.detach().cpu().float().numpy()
    as_bytes = np.clip(255.0 * array, 0, 255).astype(np.uint8)
    out = np.empty((*array.shape[:2], height, width), dtype=np.float32)
    for b in range(array.shape[0]):
        for c in range(array.shape[1]):
            band = Image.fromarray(as_bytes[b, c]).resize((width, height), Image.Resampling.LANCZOS)
            out[b, c] = np.asarray(band, dtype=np.float32) / 255.0
    return torch.from_numpy(out).to(samples.device)


def upscale(images: Any, width: int, height: int, method: str, crop: str = "disabled") -> Any:
    """Resize ``[B, H, W, C]`` images to ``width`` x ``height`` (:func:`resize_bchw`'s rules)."""
    return resize_bchw(images.movedim(-1, 1), width, height, method, crop).movedim(1, -1).contiguous()


def resize_masks(masks: Any, width: int, height: int, method: str, crop: str = "disabled") -> Any:
    """Resize ``[B, H, W]`` (or ``[H, W]``) masks to ``[B, height, width]`` (:func:`resize_bchw`'s rules)."""
    batch = mask_batch(masks)
    return resize_bchw(batch[:, None], width, height, method, crop)[:, 0]


def mask_batch(mask: Any, name: str = "mask") -> Any:
    """A MASK as ``[B, H, W]``: ComfyUI's ``mask.reshape((-1, H, W))``, so ``[H, W]`` becomes one mask."""
    if mask.ndim < 2:
        raise ValueError(f"{name}: expected a MASK [batch, height, width], got a tensor of shape {tuple(mask.shape)}")
    return mask.reshape((-1, mask.shape[-2], mask.shape[-1]))


def check_image(image: Any, name: str = "image") -> Any:
    """``image`` if it is an IMAGE ``[B, H, W, C]``; else a ValueError naming the input and what was given."""
    if getattr(image, "ndim", None) != 4:
        shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
        raise ValueError(f"{name}: expected an IMAGE [batch, height, width, channels], got {shape}; "
                         "link an IMAGE output (a MASK needs Convert Mask to Image first)")
    return image


def alpha_fix(destination: Any, source: Any) -> tuple[Any, Any]:
    """ComfyUI's ``image_alpha_fix``: ``source`` takes ``destination``'s channel count, dropping its alpha or
    gaining an opaque one."""
    torch = torch_module()
    if destination.shape[-1] < source.shape[-1]:
        source = source[..., :destination.shape[-1]]
    elif destination.shape[-1] > source.shape[-1]:
        source = torch.nn.functional.pad(source, (0, 1), value=1.0)
    return destination, source


def batch_images(images: list[Any], name: str) -> Any:
    """ComfyUI's image batching: an image one channel short of the others gains an opaque alpha, every image is
    resized to the first one's size (bilinear, centre crop) and all are concatenated.

    :raises ValueError: naming the input ``name`` when the channel counts differ by more than an alpha channel.
    """
    torch = torch_module()
    most = max(image.shape[-1] for image in images)
    padded = [torch.nn.functional.pad(image, (0, 1), value=1.0) if image.shape[-1] < most else image
              for image in images]
    for image in padded:
        if image.shape[-1] != most:
            raise ValueError(f"{name}: cannot batch a {image.shape[-1] - 1}-channel image with {most}-channel "
                             "ones; convert them to RGB first")
    first = padded[0]
    same = [image if image.shape[1:] == first.shape[1:] else
            upscale(image, first.shape[2], first.shape[1], "bilinear", "center") for image in padded]
    return torch.cat(same, dim=0)


def repeat_to_batch(values: Any, batch: int) -> Any:
    """ComfyUI's ``repeat_to_batch_size``: cut a longer batch, or repeat a shorter one whole (then cut)."""
    if values.shape[0] > batch:
        return values[:batch]
    if values.shape[0] < batch:
        times = -(-batch // values.shape[0])
        return values.repeat(times, *([1] * (values.ndim - 1)))[:batch]
    return values


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
