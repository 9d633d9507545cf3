"""Compositing images with masks and alpha, with ComfyUI's names and arithmetic: ImageCompositeMasked,
JoinImageWithAlpha, SplitImageWithAlpha, PorterDuffImageComposite.

ComfyUI's MASK means "1 = masked", so an alpha channel travels as ``1 - alpha``: SplitImageWithAlpha gives
``1 - alpha``, JoinImageWithAlpha takes a mask and stores ``1 - mask`` as alpha, and the Porter-Duff node takes
and gives its alphas that way too.
"""

from __future__ import annotations

from typing import Any

from hearth.core.images import (
    MAX_RESOLUTION,
    alpha_fix,
    check_image,
    mask_batch,
    repeat_to_batch,
    resize_bchw,
    torch_module,
)


def composite(destination: Any, source: Any, x: int, y: int, mask: Any = None, resize_source: bool = False) -> Any:
    """ComfyUI's masked paste on ``[B, C, H, W]``: ``source`` (batch repeated to the destination's) placed with its
    top-left corner at (``x``, ``y``), blended by ``mask`` (bilinear-resized to the source), cut at the edges."""
    torch = torch_module()
    if resize_source:
        source = torch.nn.functional.interpolate(source, size=destination.shape[-2:], mode="bilinear")
    source = repeat_to_batch(source, destination.shape[0])
    x = max(-source.shape[-1], min(x, destination.shape[-1]))
    y = max(-source.shape[-2], min(y, destination.shape[-2]))
    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = mask_batch(mask).to(source.dtype)[:, None]
        mask = torch.nn.functional.interpolate(mask, size=source.shape[-2:], mode="bilinear")
        mask = repeat_to_batch(mask, source.shape[0])
    # Where the source starts left of or above the destination, its first -x columns / -y rows fall outside.
    src_x, src_y = max(0, -x), max(0, -y)
    left, top = max(0, x), max(0, y)
    width = min(destination.shape[-1] - left, source.shape[-1] - src_x)
    height = min(destination.shape[-2] - top, source.shape[-2] - src_y)
    if width <= 0 or height <= 0:
        return destination
    window = (..., slice(src_y, src_y + height), slice(src_x, src_x + width))
    region = (..., slice(top, top + height), slice(left, left + width))
    blend = mask[window]
    destination[region] = blend * source[window] + (1 - blend) * destination[region]
    return destination


class ImageCompositeMasked:
    """ComfyUI's ImageCompositeMasked: ``source`` pasted onto ``destination`` at (``x``, ``y``) through an optional
    mask; the source takes the destination's channel count (an opaque alpha added, or its alpha dropped)."""

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        position = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}
        return {"required": {
            "destination": ("IMAGE",),
            "source": ("IMAGE",),
            "x": ("INT", position),
            "y": ("INT", position),
            "resize_source": ("BOOLEAN", {"default": False}),
        }, "optional": {"mask": ("MASK",)}}

    def composite(self, destination: Any, source: Any, x: int, y: int, resize_source: bool,
                  mask: Any = None) -> tuple[Any]:
        destination, source = alpha_fix(check_image(destination, "destination"), check_image(source, "source"))
        out = composite(destination.clone().movedim(-1, 1), source.movedim(-1, 1), x, y, mask, resize_source)
        return (out.movedim(1, -1),)


class JoinImageWithAlpha:
    """ComfyUI's Join Image with Alpha: RGB plus ``1 - alpha`` (the mask bilinear-resized to the image) as a
    fourth channel; the batch is the shorter of the two."""

    DISPLAY_NAME = "Join Image with Alpha"
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "join_image_with_alpha"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "alpha": ("MASK",)}}

    def join_image_with_alpha(self, image: Any, alpha: Any) -> tuple[Any]:
        torch = torch_module()
        check_image(image)
        if image.shape[-1] < 3:
            raise ValueError("image: needs RGB channels to join an alpha channel to")
        masks = mask_batch(alpha, "alpha").to(image.dtype)[:, None]
        masks = 1.0 - torch.nn.functional.interpolate(masks, size=image.shape[1:3], mode="bilinear")[:, 0]
        count = min(image.shape[0], masks.shape[0])
        return (torch.cat((image[:count, ..., :3], masks[:count, ..., None]), dim=-1),)


class SplitImageWithAlpha:
    """ComfyUI's Split Image with Alpha: the RGB channels, and ``1 - alpha`` as a mask (zeros -- fully opaque --
    for an image without alpha)."""

    DISPLAY_NAME = "Split Image with Alpha"
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "split_image_with_alpha"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def split_image_with_alpha(self, image: Any) -> tuple[Any, Any]:
        torch = torch_module()
        check_image(image)
        alpha = image[..., 3] if image.shape[-1] > 3 else torch.ones_like(image[..., 0])
        return image[..., :3], 1.0 - alpha


PORTER_DUFF_MODES = ["ADD", "CLEAR", "DARKEN", "DST", "DST_ATOP", "DST_IN", "DST_OUT", "DST_OVER", "LIGHTEN",
                     "MULTIPLY", "OVERLAY", "SCREEN", "SRC", "SRC_ATOP", "SRC_IN", "SRC_OUT", "SRC_OVER", "XOR"]


def porter_duff(src: Any, src_a: Any, dst: Any, dst_a: Any, mode: str) -> tuple[Any, Any]:
    """Porter and Duff's compositing operators (1984) with premultiplied colour, as ComfyUI writes them (its
    DARKEN/LIGHTEN/OVERLAY included). ``src``/``dst`` are straight colour, ``src_a``/``dst_a`` alpha (not masks);
    returns straight colour, clamped, and alpha."""
    torch = torch_module()
    s, d = src * src_a, dst * dst_a
    union = src_a + dst_a - src_a * dst_a
    table = {
        "ADD": lambda: (torch.clamp(src_a + dst_a, 0, 1), torch.clamp(s + d, 0, 1)),
        "CLEAR": lambda: (torch.zeros_like(dst_a), torch.zeros_like(d)),
        "DARKEN": lambda: (union, (1 - dst_a) * s + (1 - src_a) * d + torch.minimum(s, d)),
        "DST": lambda: (dst_a, d),
        "DST_ATOP": lambda: (src_a, src_a * d + (1 - dst_a) * s),
        "DST_IN": lambda: (src_a * dst_a, d * src_a),
        "DST_OUT": lambda: ((1 - src_a) * dst_a, (1 - src_a) * d),
        "DST_OVER": lambda: (dst_a + (1 - dst_a) * src_a, d + (1 - dst_a) * s),
        "LIGHTEN": lambda: (union, (1 - dst_a) * s + (1 - src_a) * d + torch.maximum(s, d)),
        "MULTIPLY": lambda: (src_a * dst_a, s * d),
        "OVERLAY": lambda: (union, torch.where(2 * d < dst_a, 2 * s * d,
                                               src_a * dst_a - 2 * (dst_a - s) * (src_a - d))),
        "SCREEN": lambda: (union, s + d - s * d),
        "SRC": lambda: (src_a, s),
        "SRC_ATOP": lambda: (dst_a, dst_a * s + (1 - src_a) * d),
        "SRC_IN": lambda: (src_a * dst_a, s * dst_a),
        "SRC_OUT": lambda: ((1 - dst_a) * src_a, (1 - dst_a) * s),
        "SRC_OVER": lambda: (src_a + (1 - src_a) * dst_a, s + (1 - src_a) * d),
        "XOR": lambda: ((1 - dst_a) * src_a + (1 - src_a) * dst_a, (1 - dst_a) * s + (1 - src_a) * d),
    }
    if mode not in table:
        raise ValueError(f"mode: {mode!r} is not one of {PORTER_DUFF_MODES}")
    out_a, out = table[mode]()
    out = torch.where(out_a > 1e-5, out / out_a, torch.zeros_like(out))
    return torch.clamp(out, 0, 1), out_a


class PorterDuffImageComposite:
    """ComfyUI's Porter-Duff Image Composite, image by image over the shortest of the four batches: the
    destination alpha and the source image and alpha are resized (bicubic, centre crop) to the destination
    image's size where they differ. Alphas in and out are masks (``1 - alpha``)."""

    DISPLAY_NAME = "Porter-Duff Image Composite"
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"source": ("IMAGE",), "source_alpha": ("MASK",), "destination": ("IMAGE",),
                             "destination_alpha": ("MASK",), "mode": (PORTER_DUFF_MODES, {"default": "DST"})}}

    def composite(self, source: Any, source_alpha: Any, destination: Any, destination_alpha: Any,
                  mode: str) -> tuple[Any, Any]:
        torch = torch_module()
        check_image(source, "source")
        check_image(destination, "destination")
        if source.shape[-1] != destination.shape[-1]:
            raise ValueError(f"source: has {source.shape[-1]} channels and destination {destination.shape[-1]}; "
                             "they must match (Split Image with Alpha gives RGB)")
        src_masks, dst_masks = mask_batch(source_alpha, "source_alpha"), mask_batch(destination_alpha,
                                                                                    "destination_alpha")
        count = min(len(source), len(src_masks), len(destination), len(dst_masks))
        images, alphas = [], []
        for i in range(count):
            src, dst = source[i].movedim(-1, 0)[None], destination[i].movedim(-1, 0)[None]
            src_a, dst_a = src_masks[i][None, None], dst_masks[i][None, None]
            height, width = dst.shape[-2:]
            if dst_a.shape[-2:] != (height, width):
                dst_a = resize_bchw(dst_a, width, height, "bicubic", "center")
            if src.shape != dst.shape:
                src = resize_bchw(src, width, height, "bicubic", "center")
            if src_a.shape != dst_a.shape:
                src_a = resize_bchw(src_a, width, height, "bicubic", "center")
            out, out_a = porter_duff(src, 1 - src_a, dst, 1 - dst_a, mode)
            images.append(out[0].movedim(0, -1))
            alphas.append(1 - out_a[0, 0])
        return torch.stack(images), torch.stack(alphas)


NODES = {cls.__name__: cls for cls in (ImageCompositeMasked, JoinImageWithAlpha, SplitImageWithAlpha,
                                       PorterDuffImageComposite)}
