"""Image operations with ComfyUI's names, inputs and outputs: empty, invert, scale, batch, crop, outpaint padding."""

from __future__ import annotations

from typing import Any

from hearth.core.images import (
    MAX_RESOLUTION,
    UPSCALE_METHODS,
    batch_images,
    target_size,
    torch_module,
    upscale,
)

CROP_METHODS = ["disabled", "center"]


class EmptyImage:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
            "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}),
        }}

    def generate(self, width: int, height: int, batch_size: int = 1, color: int = 0) -> tuple[Any]:
        torch = torch_module()
        rgb = torch.tensor([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=torch.float32) / 255.0
        return (rgb.expand(batch_size, height, width, 3).contiguous(),)


class ImageInvert:
    DISPLAY_NAME = "Invert Image"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def invert(self, image: Any) -> tuple[Any]:
        return (1.0 - image,)


class ImageScale:
    DISPLAY_NAME = "Upscale Image"
    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "upscale_method": (UPSCALE_METHODS,),
            "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "crop": (CROP_METHODS,),
        }}

    def upscale(self, image: Any, upscale_method: str, width: int, height: int, crop: str) -> tuple[Any]:
        width, height = target_size(image, width, height)
        return (upscale(image, width, height, upscale_method, crop),)


class ImageScaleBy:
    DISPLAY_NAME = "Upscale Image By"
    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "upscale_method": (UPSCALE_METHODS,),
            "scale_by": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01}),
        }}

    def upscale(self, image: Any, upscale_method: str, scale_by: float) -> tuple[Any]:
        width = max(1, round(image.shape[2] * scale_by))
        height = max(1, round(image.shape[1] * scale_by))
        return (upscale(image, width, height, upscale_method),)


class ImageBatch:
    """ComfyUI's (deprecated) two-image Batch Images: ``image2`` resized to ``image1``'s size (bilinear, centre
    crop) and appended; an RGB image batched with an RGBA one gains an opaque alpha channel."""

    DISPLAY_NAME = "Batch Images"
    CATEGORY = "image"
    DEPRECATED = True
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    def batch(self, image1: Any, image2: Any) -> tuple[Any]:
        return (batch_images([image1, image2], "image2"),)


class ImageCrop:
    """ComfyUI's Crop Image with four number widgets, deprecated there in favour of ImageCropV2's bounding box."""

    DISPLAY_NAME = "Crop Image (DEPRECATED)"
    CATEGORY = "image/transform"
    DEPRECATED = True
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
            "x": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "y": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
        }}

    def crop(self, image: Any, width: int, height: int, x: int, y: int) -> tuple[Any]:
        # As ComfyUI does: an origin past the edge is pulled back so at least one pixel remains.
        x = min(x, image.shape[2] - 1)
        y = min(y, image.shape[1] - 1)
        return (image[:, y:y + height, x:x + width, :],)


class ImagePadForOutpaint:
    DISPLAY_NAME = "Pad Image for Outpainting"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "expand_image"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        side = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {
            "image": ("IMAGE",),
            "left": ("INT", side), "top": ("INT", side), "right": ("INT", side), "bottom": ("INT", side),
            "feathering": ("INT", {"default": 40, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
        }}

    def expand_image(self, image: Any, left: int, top: int, right: int, bottom: int,
                     feathering: int) -> tuple[Any, Any]:
        torch = torch_module()
        batch, height, width, channels = image.shape
        out = torch.full((batch, height + top + bottom, width + left + right, channels), 0.5, dtype=image.dtype)
        out[:, top:top + height, left:left + width, :] = image
        mask = torch.ones((height + top + bottom, width + left + right), dtype=torch.float32)
        inner = torch.zeros((height, width), dtype=torch.float32)
        if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
            # Distance of each pixel to the nearest padded side; sides without padding do not feather. In float64,
            # as ComfyUI computes the ramp in Python floats before storing it: float32 would differ by an ulp.
            rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
            cols = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
            far_h, far_w = torch.full_like(rows, height), torch.full_like(cols, width)
            distance = torch.stack([
                rows if top else far_h, height - rows if bottom else far_h,
                cols if left else far_w, width - cols if right else far_w,
            ]).amin(dim=0)
            ramp = ((feathering - distance) / feathering).clamp(min=0)
            inner = torch.where(distance < feathering, ramp * ramp, 0.0).to(torch.float32)
        mask[top:top + height, left:left + width] = inner
        return out, mask[None]


NODES = {cls.__name__: cls for cls in (EmptyImage, ImageInvert, ImageScale, ImageScaleBy, ImageBatch, ImageCrop,
                                        ImagePadForOutpaint)}
