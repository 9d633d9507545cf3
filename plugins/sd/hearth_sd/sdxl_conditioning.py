"""SDXL's size and crop conditioning: the ADM vector ``y`` that the UNet's ``label_emb`` takes.

The base model takes ``[pooled, F(height), F(width), F(crop_top), F(crop_left), F(target_height),
F(target_width)]``; the refiner ``[pooled, F(height), F(width), F(crop_top), F(crop_left), F(aesthetic_score)]``,
where ``F`` is a 256-wide sinusoidal embedding (:func:`hearth_sd.unet.timestep_embedding`). Sizes are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .families import SDXL_FOURIER_DIM
from .unet import timestep_embedding

# What ComfyUI assumes when a conditioning does not carry a size (it came from plain CLIPTextEncode), and the
# refiner's aesthetic scores for positive and negative prompts. Workflows port with the same numbers.
DEFAULT_SIZE = 768
DEFAULT_AESTHETIC_SCORE = 6.0
DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5


def _fourier(values: Sequence[float], batch: int, device: torch.device) -> torch.Tensor:
    flat = torch.tensor([float(v) for v in values], device=device)
    emb = timestep_embedding(flat, SDXL_FOURIER_DIM)  # [len(values), 256]
    return emb.reshape(1, -1).expand(batch, -1)


def sdxl_adm(
    pooled: torch.Tensor,
    width: int,
    height: int,
    crop_w: int = 0,
    crop_h: int = 0,
    target_width: int | None = None,
    target_height: int | None = None,
) -> torch.Tensor:
    """The base model's ADM vector ``[B, pooled_dim + 1536]``; target size defaults to the size.

    Argument names follow ComfyUI's ``CLIPTextEncodeSDXL`` (``crop_w`` is the left crop, ``crop_h`` the top).
    """
    target_width = width if target_width is None else target_width
    target_height = height if target_height is None else target_height
    values = (height, width, crop_h, crop_w, target_height, target_width)
    emb = _fourier(values, pooled.shape[0], pooled.device)
    return torch.cat([pooled.float(), emb], dim=1).to(pooled.dtype)


def sdxl_refiner_adm(
    pooled: torch.Tensor,
    width: int,
    height: int,
    crop_w: int = 0,
    crop_h: int = 0,
    aesthetic_score: float = DEFAULT_AESTHETIC_SCORE,
) -> torch.Tensor:
    """The refiner's ADM vector ``[B, pooled_dim + 1280]`` (negative prompts conventionally score 2.5)."""
    values = (height, width, crop_h, crop_w, aesthetic_score)
    emb = _fourier(values, pooled.shape[0], pooled.device)
    return torch.cat([pooled.float(), emb], dim=1).to(pooled.dtype)
