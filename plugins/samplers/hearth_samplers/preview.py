"""A cheap preview of a latent as a small RGB image: a fixed linear map from latent channels to colour."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# Linear fits of RGB on latents as the UNet sees them (scaled), the approximation ComfyUI's "latent2rgb"
# previews use: SD1/SD2's VAE, and SDXL's, which has its own factors and a bias.
SD1_LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
                  (-0.2120, -0.2616, -0.7177))
SDXL_LATENT_RGB = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362),
                   (-0.3165, -0.2492, -0.2188))
SDXL_LATENT_RGB_BIAS = (0.1084, -0.0175, -0.0011)
PREVIEW_SIZE = 512


def latent_to_image(latent: torch.Tensor, factors=SD1_LATENT_RGB, bias=(0.0, 0.0, 0.0)) -> Image.Image | None:
    """The first item of a ``[B, C, h, w]`` latent as a PIL image (h x w pixels), or None for other channel counts."""
    if latent.ndim != 4 or latent.shape[1] != len(factors):
        return None
    weights = torch.tensor(factors, dtype=torch.float32, device=latent.device).transpose(0, 1)
    # No bias term at all where there is none (SD1), as ComfyUI's previewer: the same kernel, the same rounding.
    offset = torch.tensor(bias, dtype=torch.float32, device=latent.device) if any(bias) else None
    rgb = torch.nn.functional.linear(latent[0].float().movedim(0, -1), weights, offset)
    # ComfyUI's preview_to_image: -1..1 to 0..1, clamped, times 255, truncated to bytes.
    pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(0xFF).to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(pixels))


def progress_preview(latent: torch.Tensor, family: str = ""):
    """The ``preview`` value for ``hearth.core.context.progress``: ComfyUI's ``(format, image, max size)``.

    ``family`` is the model's (an SD MODEL names it); SDXL latents get SDXL's factors, others SD1's.
    """
    if family.startswith("sdxl"):
        image = latent_to_image(latent, SDXL_LATENT_RGB, SDXL_LATENT_RGB_BIAS)
    else:
        image = latent_to_image(latent)
    return None if image is None else ("JPEG", image, PREVIEW_SIZE)
