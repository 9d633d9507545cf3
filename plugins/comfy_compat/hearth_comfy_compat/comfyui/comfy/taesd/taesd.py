"""ComfyUI's ``comfy.taesd.taesd``: TAESD, the tiny distilled autoencoder (github.com/madebyollin/taesd) that
sampler previews decode with, and its building blocks (``conv``, ``Clamp``, ``Block``) packs reuse.

The layer layout (``taesd_encoder.N.conv.M.weight``...) is TAESD's, so its released ``taesd_encoder.pth`` /
``taesd_decoder.pth`` (or the safetensors ComfyUI's ``vae_approx`` folder holds) load as they are. Pure torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hearth_comfy_compat.comfyui.comfy import ops

__all__ = ["TAESD", "Block", "Clamp", "Decoder", "Encoder", "conv"]


def conv(n_in: int, n_out: int, **kwargs: Any) -> nn.Module:
    """A 3x3 convolution keeping the size (stride and bias as given)."""
    return ops.disable_weight_init.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """A soft clamp to about [-3, 3]: ``3 tanh(x / 3)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Three 3x3 convolutions with ReLUs, added to a (1x1-projected where the width changes) skip, then ReLU."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = ops.disable_weight_init.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


def Encoder(latent_channels: int = 4) -> nn.Sequential:  # noqa: N802 - ComfyUI's name
    """Image in [0, 1] -> latent at 1/8 size: three stride-2 stages of three blocks."""
    layers: list[nn.Module] = [conv(3, 64), Block(64, 64)]
    for _ in range(3):
        layers += [conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64)]
    return nn.Sequential(*layers, conv(64, latent_channels))


def Decoder(latent_channels: int = 4) -> nn.Sequential:  # noqa: N802 - ComfyUI's name
    """Latent -> image in about [0, 1] at 8x size: three stages of three blocks, each upsampled by 2."""
    layers: list[nn.Module] = [Clamp(), conv(latent_channels, 64), nn.ReLU()]
    for _ in range(3):
        layers += [Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2),
                   conv(64, 64, bias=False)]
    return nn.Sequential(*layers, Block(64, 64), conv(64, 3))


class TAESD(nn.Module):
    """Encoder and decoder, optionally loaded from their files; ``vae_scale``/``vae_shift`` map its latents to
    the full VAE's (1 and 0 for SD1/SDXL's TAESD)."""

    latent_magnitude = 3
    latent_shift = 0.5

    def __init__(self, encoder_path: str | None = None, decoder_path: str | None = None,
                 latent_channels: int = 4) -> None:
        super().__init__()
        self.taesd_encoder = Encoder(latent_channels=latent_channels)
        self.taesd_decoder = Decoder(latent_channels=latent_channels)
        self.vae_scale = nn.Parameter(torch.tensor(1.0))
        self.vae_shift = nn.Parameter(torch.tensor(0.0))
        from hearth.core.models import load_state_dict

        if encoder_path is not None:
            self.taesd_encoder.load_state_dict(load_state_dict(encoder_path))
        if decoder_path is not None:
            self.taesd_decoder.load_state_dict(load_state_dict(decoder_path))

    @staticmethod
    def scale_latents(x: torch.Tensor) -> torch.Tensor:
        """Raw latents -> [0, 1] (for storing them as an image)."""
        return x.div(2 * TAESD.latent_magnitude).add(TAESD.latent_shift).clamp(0, 1)

    @staticmethod
    def unscale_latents(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> raw latents."""
        return x.sub(TAESD.latent_shift).mul(2 * TAESD.latent_magnitude)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent -> image in about [-1, 1]."""
        return self.taesd_decoder((x - self.vae_shift) * self.vae_scale).sub(0.5).mul(2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] -> latent."""
        return (self.taesd_encoder(x * 0.5 + 0.5) / self.vae_scale) + self.vae_shift
