"""Latent resizing nodes with ComfyUI's names and inputs (LatentUpscale, LatentUpscaleBy), and bislerp resizing.

Latents are resized as they are, unscaled and unclamped: they are not images, so nothing limits them to 0..1.
A ``noise_mask`` is left as it is, because the sampler resizes it to whatever latent it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hearth.core.images import MAX_RESOLUTION, center_crop_box

if TYPE_CHECKING:
    import torch

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
CROP_METHODS = ["disabled", "center"]
# ComfyUI's smallest LatentUpscale target, in pixels; a smaller non-zero width or height is raised to it.
MIN_UPSCALE_PIXELS = 64


def resize_latent(samples: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """Resize ``[B, C, h, w]`` latents to ``width`` x ``height`` latent pixels with one of :data:`UPSCALE_METHODS`."""
    import torch

    if method not in UPSCALE_METHODS:
        raise ValueError(f"upscale_method: unknown method {method!r}; expected one of {', '.join(UPSCALE_METHODS)}")
    if crop == "center":
        x, y, w, h = center_crop_box(samples.shape[3], samples.shape[2], width, height)
        samples = samples[:, :, y:y + h, x:x + w]
    if method == "bislerp":
        return bislerp(samples, width, height)
    return torch.nn.functional.interpolate(samples, size=(height, width), mode=method)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear resizing that slerps between neighbouring latent vectors instead of averaging them.

    Each pixel's channel vector is treated as a direction and a length: directions are interpolated along the
    great circle, lengths linearly. Averaging two latent vectors shrinks them (blurring towards grey), which is
    why ComfyUI offers this for latent upscales. Width is resized first, then height, as ComfyUI does.
    """
    out = _slerp_axis(samples.float(), width, dim=3)
    return _slerp_axis(out, height, dim=2).to(samples.dtype)


def _slerp_axis(samples: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    import torch

    old = samples.shape[dim]
    # The sampling positions of torch's bilinear resize (half-pixel centres, align_corners=False), held
    # inside the image, so bislerp lines up pixel for pixel with the "bilinear" method.
    pos = ((torch.arange(size, dtype=torch.float64) + 0.5) * (old / size) - 0.5).clamp(0, old - 1)
    low = pos.floor().long()
    high = (low + 1).clamp(max=old - 1)
    shape = [1] * samples.ndim
    shape[dim] = size
    ratio = (pos - low).to(samples.dtype).reshape(shape).movedim(1, -1)
    a = samples.index_select(dim, low.to(samples.device)).movedim(1, -1)
    b = samples.index_select(dim, high.to(samples.device)).movedim(1, -1)
    return _slerp(a, b, ratio.to(samples.device)).movedim(-1, 1)


def _slerp(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Slerp channel-last vectors ``a`` -> ``b`` by ``ratio``, with their lengths interpolated linearly."""
    import torch

    norm_a = a.norm(dim=-1, keepdim=True)
    norm_b = b.norm(dim=-1, keepdim=True)
    # A zero vector has no direction; it contributes nothing but its (zero) length.
    unit_a = torch.where(norm_a > 0, a / norm_a, torch.zeros_like(a))
    unit_b = torch.where(norm_b > 0, b / norm_b, torch.zeros_like(b))
    dot = (unit_a * unit_b).sum(dim=-1, keepdim=True)
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    direction = (torch.sin((1.0 - ratio) * omega) * unit_a + torch.sin(ratio * omega) * unit_b) / sin_omega
    slerped = direction * (norm_a * (1.0 - ratio) + norm_b * ratio)
    # Parallel or opposite vectors leave the great circle undefined (sin omega ~ 0); their limit is the linear
    # blend. ComfyUI returns ``a`` unchanged for parallel ones, which ignores the length change; the blend is
    # continuous with the neighbouring slerped values.
    degenerate = (dot > 1.0 - 1e-5) | (dot < 1e-5 - 1.0)
    return torch.where(degenerate, a * (1.0 - ratio) + b * ratio, slerped)


class LatentUpscale:
    DISPLAY_NAME = "Upscale Latent"
    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        size = {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 8,
                "tooltip": "In image pixels; 0 keeps the aspect ratio (both 0 keep the size)."}
        return {"required": {
            "samples": ("LATENT",),
            "upscale_method": (UPSCALE_METHODS,),
            "width": ("INT", dict(size)),
            "height": ("INT", dict(size)),
            "crop": (CROP_METHODS,),
        }}

    def upscale(self, samples: dict[str, Any], upscale_method: str, width: int, height: int,
                crop: str) -> tuple[dict[str, Any]]:
        if width == 0 and height == 0:
            return (samples,)
        latent = samples["samples"]
        old_h, old_w = latent.shape[2], latent.shape[3]
        if width == 0:
            width = round(old_w * max(MIN_UPSCALE_PIXELS, height) / old_h)
        elif height == 0:
            height = round(old_h * max(MIN_UPSCALE_PIXELS, width) / old_w)
        width, height = max(MIN_UPSCALE_PIXELS, width), max(MIN_UPSCALE_PIXELS, height)
        out = dict(samples)
        out["samples"] = resize_latent(latent, width // 8, height // 8, upscale_method, crop)
        return (out,)


class LatentUpscaleBy:
    DISPLAY_NAME = "Upscale Latent By"
    CATEGORY = "latent"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "samples": ("LATENT",),
            "upscale_method": (UPSCALE_METHODS,),
            "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}),
        }}

    def upscale(self, samples: dict[str, Any], upscale_method: str, scale_by: float) -> tuple[dict[str, Any]]:
        latent = samples["samples"]
        # At least one latent pixel: a tiny scale on a small latent would otherwise ask torch for size 0.
        width = max(1, round(latent.shape[3] * scale_by))
        height = max(1, round(latent.shape[2] * scale_by))
        out = dict(samples)
        out["samples"] = resize_latent(latent, width, height, upscale_method)
        return (out,)


NODES = {cls.__name__: cls for cls in (LatentUpscale, LatentUpscaleBy)}
