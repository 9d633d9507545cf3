"""Edge detection and morphology with ComfyUI's names: Canny and Morphology (shown as ImageMorphology).

ComfyUI runs both through kornia (``kornia.filters.canny``, ``kornia.morphology``); kornia cannot be a dependency
here, so these are Hearth's own torch implementations of the same algorithms with the same parameters, borders and
tie rules, so the outputs are the same pixel for pixel.
"""

from __future__ import annotations

import math
from typing import Any

from hearth.core.images import check_image, torch_module

# The eight neighbours in the order of the gradient direction, 45 degrees apart: index k is the neighbour the
# direction k * 45 degrees points at (x to the right, y downwards), index k + 4 the opposite one.
_NEIGHBOURS = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]


def _shifted(values: Any, dy: int, dx: int, fill: float) -> Any:
    """``out[..., y, x] = values[..., y + dy, x + dx]``, ``fill`` where that falls outside."""
    torch = torch_module()
    height, width = values.shape[-2:]
    padded = torch.nn.functional.pad(values, (1, 1, 1, 1), value=fill)
    return padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]


def _gaussian_blur(gray: Any, size: int = 5, sigma: float = 1.0) -> Any:
    torch = torch_module()
    offsets = torch.arange(size, dtype=gray.dtype) - size // 2
    taps = torch.exp(-(offsets ** 2) / (2 * sigma * sigma))
    taps = taps / taps.sum()
    half = size // 2
    out = torch.nn.functional.pad(gray, (half, half, half, half), mode="reflect")
    out = torch.nn.functional.conv2d(out, taps.view(1, 1, 1, size))
    return torch.nn.functional.conv2d(out, taps.view(1, 1, size, 1))


def _sobel(gray: Any) -> tuple[Any, Any]:
    """Unnormalized 3x3 Sobel derivatives along x and y, the border replicated."""
    torch = torch_module()
    padded = torch.nn.functional.pad(gray, (1, 1, 1, 1), mode="replicate")
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=gray.dtype)
    gx = torch.nn.functional.conv2d(padded, kx.view(1, 1, 3, 3))
    gy = torch.nn.functional.conv2d(padded, kx.t().contiguous().view(1, 1, 3, 3))
    return gx, gy


def canny(images: Any, low: float, high: float) -> tuple[Any, Any]:
    """kornia's Canny on ``[B, C, H, W]`` (C = 3 is made grey with 0.299/0.587/0.114 first): 5x5 Gaussian
    (sigma 1, mirrored edges), Sobel, non-maximum suppression along the gradient direction rounded to 45 degrees
    (a pixel stays if it is strictly larger than both neighbours along it; outside counts 0), double threshold
    (strictly above ``low`` weak, above ``high`` strong) and hysteresis (weak pixels 8-connected to strong ones
    become edges). Returns (suppressed magnitude, edges as 0/1)."""
    torch = torch_module()
    if images.shape[1] == 3:
        # Term by term in this order, as kornia's rgb_to_grayscale, so the float rounding is the same.
        images = 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]
    blurred = _gaussian_blur(images)
    gx, gy = _sobel(blurred)
    magnitude = torch.sqrt(gx * gx + gy * gy + 1e-6)
    direction = torch.round(torch.rad2deg(torch.atan2(gy, gx)) / 45)
    forward = (direction % 8).long()
    backward = ((direction + 4) % 8).long()
    # For each of the 8 directions, how much this pixel exceeds that neighbour.
    excess = torch.stack([magnitude - _shifted(magnitude, dy, dx, 0.0) for dy, dx in _NEIGHBOURS], dim=0)
    ahead = torch.gather(excess, 0, forward[None])[0]
    behind = torch.gather(excess, 0, backward[None])[0]
    magnitude = magnitude * (torch.minimum(ahead, behind) > 0)
    weak = magnitude > low
    strong = magnitude > high
    edges = strong.clone()
    while True:
        grown = edges.clone()
        for dy, dx in _NEIGHBOURS:
            grown |= weak & _shifted(edges.to(images.dtype), dy, dx, 0.0).bool()
        if torch.equal(grown, edges):
            break
        edges = grown
    return magnitude, edges.to(images.dtype)


class Canny:
    """ComfyUI's Canny: edges of the image as white lines on black (3 channels), thresholds on the gradient
    magnitude of the 0..1 image. An alpha channel is ignored (ComfyUI's kornia call would treat 4 channels as 4
    separate grey images)."""

    CATEGORY = "image/preprocessors"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "detect_edge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "low_threshold": ("FLOAT", {"default": 0.4, "min": 0.01, "max": 0.99, "step": 0.01}),
            "high_threshold": ("FLOAT", {"default": 0.8, "min": 0.01, "max": 0.99, "step": 0.01}),
        }}

    def detect_edge(self, image: Any, low_threshold: float, high_threshold: float) -> tuple[Any]:
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold: {low_threshold} is above high_threshold {high_threshold}; the low "
                             "threshold must not exceed the high one")
        chw = check_image(image).movedim(-1, 1)
        if chw.shape[1] == 4:
            chw = chw[:, :3]
        _, edges = canny(chw.float(), low_threshold, high_threshold)
        return (edges.expand(-1, 3, -1, -1).movedim(1, -1).contiguous(),)


MORPHOLOGY_OPERATIONS = ["erode", "dilate", "open", "close", "gradient", "bottom_hat", "top_hat"]


def _window(values: Any, size: int, largest: bool) -> Any:
    """Max (or min) over a ``size`` x ``size`` window whose origin is ``size // 2`` (so an even window reaches
    one pixel further up/left), pixels outside the image ignored: kornia's flat kernel with its geodesic border."""
    torch = torch_module()
    before, after = size // 2, size - size // 2 - 1
    fill = -math.inf if largest else math.inf
    padded = torch.nn.functional.pad(values, (before, after, before, after), value=fill)
    if largest:
        return torch.nn.functional.max_pool2d(padded, size, stride=1)
    return -torch.nn.functional.max_pool2d(-padded, size, stride=1)


def morphology(images: Any, operation: str, size: int) -> Any:
    """kornia.morphology's operations on ``[B, C, H, W]`` with a ``size`` x ``size`` flat kernel."""
    def dilate(x: Any) -> Any:
        return _window(x, size, largest=True)

    def erode(x: Any) -> Any:
        return _window(x, size, largest=False)

    if operation == "erode":
        return erode(images)
    if operation == "dilate":
        return dilate(images)
    if operation == "open":
        return dilate(erode(images))
    if operation == "close":
        return erode(dilate(images))
    if operation == "gradient":
        return dilate(images) - erode(images)
    if operation == "top_hat":
        return images - dilate(erode(images))
    if operation == "bottom_hat":
        return erode(dilate(images)) - images
    raise ValueError(f"operation: {operation!r} is not one of {MORPHOLOGY_OPERATIONS}")


class Morphology:
    """ComfyUI's ImageMorphology (node type ``Morphology``): erosion, dilation and what is built from them, on
    every channel, with a square ``kernel_size`` kernel.

    Newer ComfyUI computes these with max pooling padded ``kernel_size // 2`` on every side, which is the same for
    odd kernels but makes the image one pixel wider and taller for even ones; Hearth keeps the input's size
    (kornia's definition, and the first H x W pixels of the newer one)."""

    DISPLAY_NAME = "ImageMorphology"
    CATEGORY = "image/postprocessing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "process"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "operation": (MORPHOLOGY_OPERATIONS,),
            "kernel_size": ("INT", {"default": 3, "min": 3, "max": 999, "step": 1}),
        }}

    def process(self, image: Any, operation: str, kernel_size: int) -> tuple[Any]:
        chw = check_image(image).movedim(-1, 1)
        return (morphology(chw, operation, kernel_size).movedim(1, -1).contiguous(),)


NODES = {cls.__name__: cls for cls in (Canny, Morphology)}
