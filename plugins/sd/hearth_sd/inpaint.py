"""The extra input channels of inpainting (9) and InstructPix2Pix (8) UNets, as ComfyUI builds them.

An inpainting checkpoint's UNet takes the noisy latent (4 channels) followed by ``c_concat``: the inpainting
mask (1 channel, 1 = repaint) and the latent of the image with the masked part greyed out (4 channels), in that
order (ComfyUI's ``concat_keys = ("mask", "masked_image")``, diffusers' order too). :func:`concat_cond` is
ComfyUI's ``BaseModel.concat_cond``: the conditioning's ``concat_latent_image`` / ``concat_mask``
(InpaintModelConditioning), else the sampler's latent and noise mask (VAEEncodeForInpaint's LATENT), else a
blank concat (a mask of ones and the latent of a black image) so such a model also runs as a plain text-to-image
model. :func:`ip2p_concat` is ComfyUI's ``IP2P.concat_cond``: the conditioning's ``concat_latent_image``
(InstructPixToPixConditioning) as it is for SD1.5 (ComfyUI does not scale it) or scaled for SDXL, zeros without one.
Differences: an area-limited conditioning entry gets the concat resized to its crop, not cut out of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

# ComfyUI's latent of a black image for the SD VAE, per channel ("zero" in pixel space in latent space).
BLANK_LATENT = (0.8223, -0.6876, 0.6364, 0.1380)
CONCAT_KEYS = ("mask", "masked_image")


def resize_to_batch_size(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """ComfyUI's ``comfy.utils.resize_to_batch_size``: items picked spread over the batch (not repeated whole)."""
    have = tensor.shape[0]
    if have == batch:
        return tensor
    if batch <= 1:
        return tensor[:batch]
    if batch < have:
        scale = (have - 1) / (batch - 1)
        picks = [min(round(i * scale), have - 1) for i in range(batch)]
    else:
        scale = have / batch
        picks = [min(math.floor((i + 0.1) * scale), have - 1) for i in range(batch)]
    return tensor[picks]


def _resize(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` brought to ``like``'s spatial size as ComfyUI's ``common_upscale(..., "bilinear", "center")``."""
    from hearth.core.images import resize_bchw

    if tuple(values.shape[-2:]) == tuple(like.shape[-2:]):
        return values
    return resize_bchw(values.float(), like.shape[-1], like.shape[-2], "bilinear", "center")


def blank_masked_image(noise: torch.Tensor) -> torch.Tensor:
    """The masked-image channels when nothing says what the image is: a black image's latent everywhere."""
    scale = torch.tensor(BLANK_LATENT, dtype=noise.dtype, device=noise.device).view(1, -1, 1, 1)
    return torch.ones_like(noise[:, :len(BLANK_LATENT)]) * scale


def concat_cond(options: Mapping[str, Any], noise: torch.Tensor, process_latent_in: Any) -> torch.Tensor:
    """``c_concat`` ``[B, 5, h, w]`` for a latent batch ``noise`` ``[B, 4, h, w]`` (scaled, as the UNet sees it).

    :param options: the conditioning entry's options as the sampler hands them to the model: ``concat_latent_image``
        (a raw VAE latent) and ``concat_mask`` from InpaintModelConditioning; ``latent_image`` (scaled) and
        ``denoise_mask`` from the sampler.
    :param process_latent_in: raw latent -> the scaled latent the UNet works in.
    """
    batch = noise.shape[0]
    mask = options.get("concat_mask", options.get("denoise_mask"))
    image = options.get("concat_latent_image")
    if image is not None:
        image = process_latent_in(image.float())
    else:
        image = options.get("latent_image")
    if mask is None or image is None:
        # ComfyUI's blank concat: without a mask the latent image is not used either.
        return torch.cat([torch.ones_like(noise[:, :1]), blank_masked_image(noise)], dim=1)
    image = resize_to_batch_size(_resize(image.to(noise.device), noise), batch)
    if image.shape[1] != noise.shape[1]:
        raise ValueError(f"inpainting: the masked image's latent has {image.shape[1]} channels, the model's latent "
                         f"{noise.shape[1]}: encode the image with this model's VAE (InpaintModelConditioning)")
    mask = mask.to(noise.device).float()
    if mask.ndim == noise.ndim:
        mask = mask[:, :1]
    mask = mask.reshape((-1, 1) + tuple(mask.shape[-2:]))
    mask = resize_to_batch_size(_resize(mask, noise).round(), batch)
    return torch.cat([mask.to(noise.dtype), image.to(noise.dtype)], dim=1)


def ip2p_concat(options: Mapping[str, Any], noise: torch.Tensor, process_in: Any) -> torch.Tensor:
    """``c_concat`` ``[B, 4, h, w]`` of an InstructPix2Pix UNet: the source image's latent, through ``process_in``
    (identity for SD1.5, the latent scale for SDXL, as ComfyUI's ``process_ip2p_image_in``)."""
    image = options.get("concat_latent_image")
    if image is None:
        return torch.zeros_like(noise)
    image = resize_to_batch_size(_resize(image.to(noise.device).float(), noise), noise.shape[0])
    if image.shape[1] != noise.shape[1]:
        raise ValueError(f"InstructPix2Pix: the image latent has {image.shape[1]} channels, the model's latent "
                         f"{noise.shape[1]}: encode the image with this model's VAE (InstructPixToPixConditioning)")
    return process_in(image).to(noise.dtype)
