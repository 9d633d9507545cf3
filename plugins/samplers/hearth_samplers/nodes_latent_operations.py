"""LATENT_OPERATION nodes with ComfyUI's names: LatentOperationTonemapReinhard and LatentOperationSharpen make an
operation (a function ``op(latent=tensor) -> tensor``), LatentApplyOperation applies it to a LATENT and
LatentApplyOperationCFG to the guidance (the positive's difference from the negative, before CFG).

They follow ComfyUI's ``comfy_extras/nodes_latent.py``; the sharpen kernel is ComfyUI's Gaussian over
``linspace(-1, 1, 2 * radius + 1)`` in both axes (``nodes_post_processing.gaussian_kernel``).
"""

from __future__ import annotations

from typing import Any

CATEGORY = "latent/advanced/operations"


def reinhard_tonemap(latent, multiplier: float):
    """Each pixel's channel vector keeps its direction; its length m becomes ``top * m / (m + top)`` with ``top =
    (5 * std + mean) * multiplier`` of the lengths over the item (Reinhard et al. 2002's operator)."""
    import torch

    magnitude = (torch.linalg.vector_norm(latent, dim=1) + 1e-10)[:, None]
    direction = latent / magnitude
    dims = list(range(1, magnitude.ndim))
    top = (torch.std(magnitude, dim=dims, keepdim=True) * 5 + torch.mean(magnitude, dim=dims, keepdim=True))
    top = top * multiplier
    scaled = magnitude / top
    return direction * (scaled / (scaled + 1.0) * top)


def gaussian_kernel(size: int, sigma: float, device=None):
    """A normalised ``size x size`` Gaussian over coordinates -1..1 (ComfyUI's post-processing kernel)."""
    import torch

    axis = torch.linspace(-1, 1, size, device=device)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    g = torch.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return g / g.sum()


def sharpen_latent(latent, radius: int, sigma: float, alpha: float):
    """Unsharp masking of the pixels' channel directions, their lengths kept: the kernel is ``-10 * alpha`` times
    the Gaussian with the centre raised so it sums to 1; reflect padding at the edges."""
    import torch
    import torch.nn.functional as F

    length = (torch.linalg.vector_norm(latent, dim=1) + 1e-6)[:, None]
    direction = latent / length
    channels = latent.shape[1]
    size = radius * 2 + 1
    kernel = gaussian_kernel(size, sigma, device=latent.device) * (alpha * -10)
    kernel[radius, radius] = kernel[radius, radius] - kernel.sum() + 1.0
    padded = F.pad(direction, (radius, radius, radius, radius), "reflect")
    weights = kernel.to(latent.dtype).repeat(channels, 1, 1).unsqueeze(1)
    sharpened = F.conv2d(padded, weights, padding=radius, groups=channels)[:, :, radius:-radius, radius:-radius]
    return length * sharpened


class LatentOperationTonemapReinhard:
    CATEGORY = CATEGORY
    EXPERIMENTAL = True
    DESCRIPTION = "An operation compressing the latent's high values (Reinhard tonemapping of the pixel vectors)."
    RETURN_TYPES = ("LATENT_OPERATION",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})}}

    def op(self, multiplier):
        def tonemap(latent, **_):
            return reinhard_tonemap(latent, multiplier)

        return (tonemap,)


class LatentOperationSharpen:
    CATEGORY = CATEGORY
    EXPERIMENTAL = True
    DESCRIPTION = "An operation sharpening the latent (unsharp mask on the pixels' channel directions)."
    RETURN_TYPES = ("LATENT_OPERATION",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "sharpen_radius": ("INT", {"default": 9, "min": 1, "max": 31, "step": 1, "advanced": True}),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1, "advanced": True}),
            "alpha": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 5.0, "step": 0.01, "advanced": True}),
        }}

    def op(self, sharpen_radius, sigma, alpha):
        def sharpen(latent, **_):
            if min(latent.shape[-2:]) <= sharpen_radius:
                raise ValueError(f"LatentOperationSharpen: sharpen_radius {sharpen_radius} needs a latent larger "
                                 f"than {sharpen_radius} in both sides, got {list(latent.shape[-2:])}; lower it")
            return sharpen_latent(latent, sharpen_radius, sigma, alpha)

        return (sharpen,)


class LatentApplyOperation:
    CATEGORY = CATEGORY
    EXPERIMENTAL = True
    DESCRIPTION = "Applies a LATENT_OPERATION to a latent."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "op"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "operation": ("LATENT_OPERATION",)}}

    def op(self, samples, operation):
        return ({**samples, "samples": operation(latent=samples["samples"])},)


class LatentApplyOperationCFG:
    CATEGORY = CATEGORY
    EXPERIMENTAL = True
    DESCRIPTION = ("A MODEL whose guidance is changed by a LATENT_OPERATION: applied to the positive prediction's "
                   "difference from the negative before CFG (to the positive alone without a negative).")
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "operation": ("LATENT_OPERATION",)}}

    def patch(self, model, operation):
        from .nodes_guidance_patches import with_sampler_function

        def pre_cfg(args):
            out = list(args["conds_out"])
            if len(out) == 2:
                out[0] = operation(latent=out[0] - out[1]) + out[1]
            else:
                out[0] = operation(latent=out[0])
            return out

        return with_sampler_function("LatentApplyOperationCFG", model, "sampler_pre_cfg_function", pre_cfg)


NODES = {cls.__name__: cls for cls in (LatentApplyOperation, LatentApplyOperationCFG, LatentOperationTonemapReinhard,
                                       LatentOperationSharpen)}
