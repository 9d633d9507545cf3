"""Post-processing filters with ComfyUI's names and arithmetic: ImageBlend, ImageBlur, ImageSharpen, ImageQuantize."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from hearth.core.images import alpha_fix, check_image, torch_module, upscale

BLEND_MODES = ["normal", "multiply", "screen", "overlay", "soft_light", "difference"]


def _blended(a: Any, b: Any, mode: str) -> Any:
    torch = torch_module()
    if mode == "normal":
        return b
    if mode == "multiply":
        return a * b
    if mode == "screen":
        return 1 - (1 - a) * (1 - b)
    if mode == "overlay":
        return torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))
    if mode == "soft_light":
        # The W3C soft-light formula ComfyUI uses: D(a) is a cubic below 0.25 and sqrt(a) above.
        d = torch.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, torch.sqrt(a))
        return torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (d - a))
    if mode == "difference":
        return a - b  # signed, as ComfyUI's; the final clamp turns negatives to black
    raise ValueError(f"blend_mode: {mode!r} is not one of {BLEND_MODES}")


class ImageBlend:
    """ComfyUI's Image Blend: ``image1`` mixed with ``blend_mode(image1, image2)`` by ``blend_factor``, clamped.
    An ``image2`` of another size is resized to ``image1``'s (bicubic, centre crop) first."""

    DISPLAY_NAME = "Image Blend"
    CATEGORY = "image/postprocessing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blend_images"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image1": ("IMAGE",),
            "image2": ("IMAGE",),
            "blend_factor": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
            "blend_mode": (BLEND_MODES,),
        }}

    def blend_images(self, image1: Any, image2: Any, blend_factor: float, blend_mode: str) -> tuple[Any]:
        torch = torch_module()
        image1, image2 = alpha_fix(check_image(image1, "image1"), check_image(image2, "image2"))
        if image1.shape[1:] != image2.shape[1:]:
            image2 = upscale(image2, image1.shape[2], image1.shape[1], "bicubic", "center")
        if image2.shape[0] not in (1, image1.shape[0]):
            raise ValueError(f"image2: a batch of {image2.shape[0]} cannot blend with image1's batch of "
                             f"{image1.shape[0]}; give one image or the same number")
        mixed = image1 * (1 - blend_factor) + _blended(image1, image2, blend_mode) * blend_factor
        return (torch.clamp(mixed, 0, 1),)


def gaussian_kernel(size: int, sigma: float) -> Any:
    """ComfyUI's blur kernel: a ``size`` x ``size`` Gaussian over coordinates spread on -1..1 (so ``sigma`` is a
    fraction of the radius, not pixels), normalized to sum 1."""
    torch = torch_module()
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    # The radius is taken and squared again, as ComfyUI does, so the float32 weights are bit-identical to its.
    radius = torch.sqrt(x * x + y * y)
    weights = torch.exp(-(radius * radius) / (2.0 * sigma * sigma))
    return weights / weights.sum()


def _filter(image: Any, kernel: Any, radius: int, input_name: str) -> Any:
    """Convolve every channel with ``kernel`` over the image reflected at its edges."""
    torch = torch_module()
    height, width, channels = image.shape[1:]
    if radius >= height or radius >= width:
        raise ValueError(f"{input_name}: {radius} must be smaller than the image's sides ({width}x{height}); "
                         "the edge is mirrored over that many pixels")
    chw = image.movedim(-1, 1)
    padded = torch.nn.functional.pad(chw, (radius, radius, radius, radius), mode="reflect")
    weights = kernel.to(image.dtype).expand(channels, 1, *kernel.shape)
    return torch.nn.functional.conv2d(padded, weights, groups=channels).movedim(1, -1)


class ImageBlur:
    """ComfyUI's Image Blur: a Gaussian of ``2 * blur_radius + 1`` pixels (ComfyUI's kernel, see
    :func:`gaussian_kernel`), edges mirrored."""

    DISPLAY_NAME = "Image Blur"
    CATEGORY = "image/postprocessing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blur"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "blur_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}),
        }}

    def blur(self, image: Any, blur_radius: int, sigma: float) -> tuple[Any]:
        if blur_radius == 0:
            return (image,)
        kernel = gaussian_kernel(blur_radius * 2 + 1, sigma)
        return (_filter(check_image(image), kernel, blur_radius, "blur_radius"),)


class ImageSharpen:
    """ComfyUI's ImageSharpen: an unsharp kernel (minus ``10 * alpha`` Gaussians, the centre raised so the kernel
    sums to 1), edges mirrored, clamped to 0..1."""

    CATEGORY = "image/postprocessing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "sharpen"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "sharpen_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.01}),
            "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}),
        }}

    def sharpen(self, image: Any, sharpen_radius: int, sigma: float, alpha: float) -> tuple[Any]:
        torch = torch_module()
        if sharpen_radius == 0:
            return (image,)
        size = sharpen_radius * 2 + 1
        kernel = gaussian_kernel(size, sigma) * -(alpha * 10)
        kernel[size // 2, size // 2] = kernel[size // 2, size // 2] - kernel.sum() + 1.0
        out = _filter(check_image(image), kernel, sharpen_radius, "sharpen_radius")
        return (torch.clamp(out, 0, 1),)


DITHERS = ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"]


def bayer_matrix(order: int) -> np.ndarray:
    """The ``order`` x ``order`` ordered-dither threshold map, centred on 0 and spanning -0.5..0.5."""
    if order == 1:
        return np.zeros((1, 1), dtype=np.float64)
    scale = order * order
    inner = scale * bayer_matrix(order // 2)
    return np.block([[inner - 1.5, inner + 0.5], [inner + 1.5, inner - 0.5]]) / scale


def _bayer_dither(rgb: Image.Image, palette: Image.Image, order: int) -> Image.Image:
    spread = 2 * 256 / (len(palette.getpalette()) // 3)
    thresholds = spread * bayer_matrix(order) + 0.5
    pixels = np.asarray(rgb, dtype=np.float64)
    rows = np.arange(pixels.shape[0])[:, None] % order
    cols = np.arange(pixels.shape[1])[None, :] % order
    # Added in float64 and stored as float32 before truncating to bytes, as ComfyUI's in-place tensor add does.
    summed = (pixels + thresholds[rows, cols][..., None]).astype(np.float32)
    shifted = np.clip(summed, 0, 255).astype(np.uint8)
    return Image.fromarray(shifted).quantize(palette=palette, dither=Image.Dither.NONE)


class ImageQuantize:
    """ComfyUI's ImageQuantize: each image reduced to a palette of ``colors`` (PIL's median cut on the 8-bit image,
    truncated from float as ComfyUI does), with no, Floyd-Steinberg or ordered (Bayer) dithering. The result is
    RGB: an alpha channel is dropped (ComfyUI fails on RGBA input)."""

    CATEGORY = "image/postprocessing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "quantize"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "image": ("IMAGE",),
            "colors": ("INT", {"default": 256, "min": 1, "max": 256, "step": 1}),
            "dither": (DITHERS,),
        }}

    def quantize(self, image: Any, colors: int, dither: str) -> tuple[Any]:
        torch = torch_module()
        if dither not in DITHERS:
            raise ValueError(f"dither: {dither!r} is not one of {DITHERS}")
        if check_image(image).shape[-1] < 3:
            raise ValueError("image: quantizing needs an RGB image; convert a one-channel image first")
        frames = []
        for frame in image[..., :3]:
            rgb = Image.fromarray((frame * 255).to(torch.uint8).cpu().numpy())
            palette = rgb.quantize(colors=colors)
            if dither.startswith("bayer"):
                quantized = _bayer_dither(rgb, palette, int(dither.split("-")[1]))
            else:
                method = Image.Dither.NONE if dither == "none" else Image.Dither.FLOYDSTEINBERG
                quantized = rgb.quantize(palette=palette, dither=method)
            frames.append(np.asarray(quantized.convert("RGB"), dtype=np.float32) / 255)
        return (torch.from_numpy(np.stack(frames)),)


NODES = {cls.__name__: cls for cls in (ImageBlend, ImageBlur, ImageSharpen, ImageQuantize)}
