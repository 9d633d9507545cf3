"""The loaded SD model as the samplers see it (a k-diffusion denoiser) and the VAE as the image nodes see it.

:class:`DiffusionModel` wraps the UNet with its :class:`~hearth_sd.sampling.ModelSampling` and latent scale:
``model(x, sigma, context=..., y=...) -> denoised``, with ``x`` in the sampler's latent space (scaled). :class:`VAE`
converts between ComfyUI's IMAGE tensors (``[B, H, W, 3]`` in ``[0, 1]``) and raw LATENT tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .families import Family
from .sampling import ModelSampling
from .unet import UNetModel
from .vae import AutoencoderKL


@dataclass
class DiffusionModel:
    """UNet + schedule + latent format of one checkpoint.

    ``family.adm`` says which ADM vector ``y`` the UNet needs (None, ``"sdxl"``, ``"sdxl_refiner"``); build it
    with :mod:`hearth_sd.sdxl_conditioning` from the pooled text.
    """

    unet: UNetModel
    family: Family
    sampling: ModelSampling

    @property
    def latent_scale(self) -> float:
        return self.family.latent_scale

    @property
    def latent_channels(self) -> int:
        return self.unet.config.in_channels

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw VAE latent -> the scaled latent the UNet works in."""
        return latent * self.latent_scale

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        """Scaled latent -> raw VAE latent."""
        return latent / self.latent_scale

    def __call__(
        self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The denoised latent for noisy ``x`` at ``sigma`` (``[B]`` or scalar), k-diffusion's model interface."""
        sigma = sigma.reshape(-1).expand(x.shape[0]).to(x.device, torch.float32)
        param = next(self.unet.parameters())
        x_in = self.sampling.calculate_input(sigma, x).to(param.device)
        t = self.sampling.timestep(sigma).to(param.device)
        out = self.unet(x_in, t, context.to(param.device), None if y is None else y.to(param.device))
        return self.sampling.calculate_denoised(sigma, out.float().to(x.device), x)


class VAE:
    """Image <-> latent, in ComfyUI's tensor conventions."""

    def __init__(self, model: AutoencoderKL):
        self.model = model

    @property
    def downscale(self) -> int:
        return self.model.config.downscale

    @property
    def device(self) -> torch.device:
        return self.model.post_quant_conv.weight.device

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """IMAGE ``[B, H, W, C]`` in ``[0, 1]`` -> raw latent ``[B, z, H/8, W/8]`` (float32, CPU).

        Sizes that are not a multiple of the downscale factor are cropped to one, as ComfyUI does; an alpha
        channel is dropped.
        """
        f = self.downscale
        h, w = pixels.shape[1] // f * f, pixels.shape[2] // f * f
        if h == 0 or w == 0:
            raise ValueError(f"image {pixels.shape[2]}x{pixels.shape[1]} is smaller than the VAE's {f}-pixel cell")
        x = pixels[:, :h, :w, :3].movedim(-1, 1).to(self.device, torch.float32) * 2 - 1
        with torch.no_grad():
            return self.model.encode(x).float().cpu()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent ``[B, z, h, w]`` -> IMAGE ``[B, 8h, 8w, 3]`` in ``[0, 1]`` (float32, CPU)."""
        with torch.no_grad():
            x = self.model.decode(latent.to(self.device, torch.float32)).float()
        return ((x + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()
