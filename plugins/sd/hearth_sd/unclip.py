"""unCLIP's ADM vector: CLIP image embeddings, noise-augmented, as SD2.1-unclip and SDXL ("revision") take them.

unCLIPConditioning records ``{"clip_vision_output", "strength", "noise_augmentation"}`` in the conditioning's
``unclip_conditioning`` list; :func:`unclip_adm` is ComfyUI's ``model_base.unclip_adm``: each image embedding is
noised to level ``round(999 * noise_augmentation)`` of a 1000-step squared-cosine schedule (seeded with the
sampling seed - 10, as ComfyUI seeds it), joined with the sinusoidal embedding of that level and scaled by the
strength. Several embeddings are summed and the sum noised again at ``merge_level`` (SD2.1-unclip: 0.05). SD2.1's
UNet takes the whole vector as its ADM input (zeros without image conditioning); SDXL takes its first part in place
of the pooled text output. The augmentor's data statistics are ComfyUI's defaults (mean 0, std 1): ComfyUI does not
load the ``noise_augmentor.`` tensors checkpoints carry either.

Difference: ComfyUI draws the re-noising of a merged sum from the global RNG (unseeded); Hearth seeds it with the
same seed, so a run repeats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import torch

from .unet import timestep_embedding

MAX_NOISE_LEVEL = 1000
MERGE_NOISE_AUGMENTATION = 0.05  # ComfyUI's unclip_noise_augment_merge default for SD2.1-unclip
SEED_OFFSET = -10  # ComfyUI seeds the augmentation with the sampling seed minus ten


@lru_cache(maxsize=1)
def _schedule() -> tuple[torch.Tensor, torch.Tensor]:
    """sqrt(alpha_bar) and sqrt(1 - alpha_bar) of the 1000-step "squaredcos_cap_v2" schedule, computed in float64
    and stored in float32 as ComfyUI's register_schedule does."""
    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    steps = MAX_NOISE_LEVEL
    betas = torch.tensor([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)],
                         dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return alphas_cumprod.sqrt().float(), (1.0 - alphas_cumprod).sqrt().float()


def noise_level_of(augmentation: float) -> int:
    return round((MAX_NOISE_LEVEL - 1) * float(augmentation))


def augment(embeds: torch.Tensor, level: int, seed: int | None) -> torch.Tensor:
    """``[noised embedding, embedding of the level]`` ``[1, 2 * D]`` for one embedding ``[D]`` or ``[1, D]``."""
    x = embeds.float().reshape(1, -1)
    keep, noise_scale = _schedule()
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    z = keep[level] * x + noise_scale[level] * noise
    level_emb = timestep_embedding(torch.tensor([level], device=x.device), x.shape[1])
    return torch.cat([z, level_emb.to(z.dtype)], dim=1)


def _embeds_of(output: Any) -> torch.Tensor:
    embeds = output["image_embeds"] if not hasattr(output, "image_embeds") else output.image_embeds
    if not isinstance(embeds, torch.Tensor) or embeds.ndim != 2:
        raise ValueError("unCLIPConditioning: clip_vision_output has no image_embeds [B, D]; connect a "
                         "CLIPVisionEncode output")
    return embeds


def unclip_adm(entries: Sequence[Mapping[str, Any]], seed: int, merge_augmentation: float = 0.0,
               width: int | None = None) -> torch.Tensor:
    """ComfyUI's ``unclip_adm``: the ``[1, 2 * D]`` vector of a conditioning's ``unclip_conditioning`` entries.

    :param width: the image-embedding width the model expects (D); a mismatch names both.
    """
    parts: list[torch.Tensor] = []
    for entry in entries:
        for embeds in _embeds_of(entry["clip_vision_output"]):
            if width is not None and embeds.shape[-1] != width:
                raise ValueError(f"unCLIP: the image embedding is {embeds.shape[-1]} wide, this model takes {width}; "
                                 f"use the CLIP vision model that belongs to it (SD2.1-unclip-h: ViT-H, -l: ViT-L, "
                                 f"SDXL: ViT-bigG)")
            level = noise_level_of(entry["noise_augmentation"])
            parts.append(augment(embeds, level, seed) * float(entry["strength"]))
    if not parts:
        raise ValueError("unCLIP: unclip_conditioning is empty")
    if len(parts) == 1:
        return parts[0]
    total = torch.stack(parts).sum(0)
    dim = total.shape[1] // 2
    return augment(total[:, :dim], noise_level_of(merge_augmentation), seed)


def sd2_unclip_adm(options: Mapping[str, Any], adm_channels: int, seed: int) -> torch.Tensor:
    """SD2.1-unclip's ADM input ``[1, adm_channels]``: zeros without image conditioning, as ComfyUI."""
    entries = options.get("unclip_conditioning")
    if not entries:
        return torch.zeros(1, adm_channels)
    merge = options.get("unclip_noise_augment_merge", MERGE_NOISE_AUGMENTATION)
    return unclip_adm(entries, seed + SEED_OFFSET, merge, width=adm_channels // 2)


def sdxl_unclip_pooled(options: Mapping[str, Any], pooled_width: int, seed: int) -> torch.Tensor:
    """SDXL "revision": the pooled vector taken from the image embeddings (ComfyUI's ``sdxl_pooled``)."""
    return unclip_adm(options["unclip_conditioning"], seed + SEED_OFFSET, width=pooled_width)[:, :pooled_width]
