"""The KL autoencoder (VAE) of SD1.x/SD2.x/SDXL, with parameter names in the ``first_stage_model.*`` layout.

``encode`` maps images in ``[-1, 1]`` to raw latents (the distribution's mean, so encoding is deterministic);
``decode`` maps raw latents back. Scaling latents by the family's scale factor is the model's business, not the
VAE's: LATENT values that flow between nodes are raw, as in ComfyUI.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hearth.core.models.attention import vae_attention

from .ops import compute_dtype_of


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels; q/k/v are 1x1 convolutions as in the checkpoints."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm(x)
        return x + self.proj_out(vae_attention(self.q(n), self.k(n), self.v(n)))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Asymmetric padding (right and bottom only) as the original trained with.
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Mid(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution level: ``block.N`` resnets, then ``downsample`` / ``upsample`` where the level has one."""

    def __init__(self, blocks: list[nn.Module], resample: tuple[str, nn.Module] | None):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList()  # always empty in SD VAEs; kept so the layout matches the original
        if resample is not None:
            self.add_module(*resample)
        self.resample = resample[0] if resample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.resample:
            x = getattr(self, self.resample)(x)
        return x


class Encoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        levels = []
        cur = c.ch
        for i, mult in enumerate(c.ch_mult):
            out = c.ch * mult
            blocks = [ResnetBlock(cur if j == 0 else out, out) for j in range(c.num_res_blocks)]
            cur = out
            down = ("downsample", Downsample(cur)) if i != len(c.ch_mult) - 1 else None
            levels.append(_Level(blocks, down))
        self.down = nn.ModuleList(levels)
        self.mid = _Mid(cur)
        self.norm_out = _norm(cur)
        self.conv_out = nn.Conv2d(cur, 2 * c.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        cur = c.ch * c.ch_mult[-1]
        self.conv_in = nn.Conv2d(c.z_channels, cur, 3, padding=1)
        self.mid = _Mid(cur)
        levels: list[nn.Module] = [nn.Module()] * len(c.ch_mult)
        # ``up.N`` is numbered by resolution level (up.0 is full size) but runs from the deepest level down.
        for i in reversed(range(len(c.ch_mult))):
            out = c.ch * c.ch_mult[i]
            blocks = [ResnetBlock(cur if j == 0 else out, out) for j in range(c.num_res_blocks + 1)]
            cur = out
            levels[i] = _Level(blocks, ("upsample", Upsample(cur)) if i != 0 else None)
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(cur)
        self.conv_out = nn.Conv2d(cur, c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class AutoencoderKL(nn.Module):
    """``encoder``/``decoder`` plus the ``quant_conv``/``post_quant_conv`` 1x1 convs around the latent."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.z_channels, 1)
        self.post_quant_conv = nn.Conv2d(config.z_channels, config.z_channels, 1)

    @property
    def dtype(self) -> torch.dtype:
        return compute_dtype_of(self)

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the latent distribution for images ``x`` in ``[-1, 1]``, ``[B, 3, H, W]``."""
        moments = self.quant_conv(self.encoder(x.to(self.dtype)))
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw latents (the mean of the distribution) for images ``x`` in ``[-1, 1]``, ``[B, 3, H, W]``."""
        return self.encode_moments(x)[0].to(x.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in about ``[-1, 1]`` (not clamped), ``[B, 3, H, W]``, from raw latents ``[B, C, h, w]``."""
        return self.decoder(self.post_quant_conv(z.to(self.dtype))).to(z.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
