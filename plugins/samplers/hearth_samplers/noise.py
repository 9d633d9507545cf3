"""Initial noise from a seed, the NOISE objects of SamplerCustomAdvanced, and the inpainting mask at latent size.

Noise is always drawn by a CPU generator and then moved, so one seed gives one image on any device. With a
LATENT's ``batch_index`` each item gets the noise it had at that position of a batch made from the same seed,
so regenerating item 3 alone reproduces item 3 of the batch (ComfyUI's rule).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def prepare_noise(latent: torch.Tensor, seed: int, batch_index: list[int] | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``latent`` (on the CPU, in its dtype), from ``seed``: ComfyUI's
    ``prepare_noise``, so the first values are those of ``torch.randn`` from a generator seeded with ``seed``."""
    generator = torch.Generator("cpu").manual_seed(seed)
    if batch_index is None:
        return torch.randn(latent.shape, generator=generator, dtype=latent.dtype)
    # Draw every position up to the largest index one item at a time, as a batch made from this seed would
    # have been drawn, and keep the ones asked for (an index may repeat).
    item_shape = [1, *latent.shape[1:]]
    wanted = set(batch_index)
    drawn: dict[int, torch.Tensor] = {}
    for position in range(max(batch_index) + 1):
        noise = torch.randn(item_shape, generator=generator, dtype=latent.dtype)
        if position in wanted:
            drawn[position] = noise
    return torch.cat([drawn[i] for i in batch_index])


class RandomNoise:
    """NOISE of ``RandomNoise``: seeded Gaussian noise for a LATENT, honouring its ``batch_index``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generate_noise(self, latent: dict[str, Any]) -> torch.Tensor:
        return prepare_noise(latent["samples"], self.seed, latent.get("batch_index"))


class DisabledNoise:
    """NOISE of ``DisableNoise``: zeros, for a latent that already carries its noise (a second pass)."""

    seed = 0

    def generate_noise(self, latent: dict[str, Any]) -> torch.Tensor:
        samples = latent["samples"]
        return torch.zeros(samples.shape, dtype=samples.dtype, device="cpu")


def latent_mask(noise_mask: torch.Tensor, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """A LATENT's ``noise_mask`` (``[B, 1, H, W]`` or ``[B, H, W]``, any size) resized to ``[B, C, h, w]``."""
    mask = noise_mask.reshape(-1, 1, noise_mask.shape[-2], noise_mask.shape[-1]).float()
    mask = F.interpolate(mask, size=(shape[2], shape[3]), mode="bilinear")
    mask = mask.expand(-1, shape[1], -1, -1)
    if mask.shape[0] != shape[0]:
        repeats = -(-shape[0] // mask.shape[0])
        mask = mask.repeat(repeats, 1, 1, 1)[: shape[0]]
    return mask.to(device)
