"""The 16-channel KL autoencoder Flux.1 and Z-Image share (``ae.safetensors``): network, file layouts, loading.

The network is the SD-style encoder/decoder (GroupNorm-32 resnets, one single-head attention in the middle,
asymmetric-padded stride-2 downsampling, nearest upsampling) with ``z_channels`` 16 and no ``quant_conv`` /
``post_quant_conv``. Its parameter names are those of black-forest-labs' published ``ae.safetensors``
(``encoder.down.N.block.M.conv1.weight``...); diffusers' layout (``encoder.down_blocks.N.resnets.M...``, the Flux
``AutoencoderKL`` config) is converted on load.

``encode`` gives raw latents (the distribution's mean) and ``decode`` takes raw latents: LATENT values between
nodes are raw, as in ComfyUI. The Flux family's scale and shift (:data:`SCALE_FACTOR`, :data:`SHIFT_FACTOR`) are
applied by the diffusion model when latents go in and out (:func:`latent_in` / :func:`latent_out`), as ComfyUI's
``latent_format`` and diffusers' pipelines do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FORMAT_NAME = "flux_ae"
SCALE_FACTOR = 0.3611
SHIFT_FACTOR = 0.1159


def latent_in(raw: torch.Tensor) -> torch.Tensor:
    """Raw autoencoder latents -> the normalised latents Flux / Z-Image denoise: ``(raw - shift) * scale``."""
    return (raw - SHIFT_FACTOR) * SCALE_FACTOR


def latent_out(latent: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`latent_in`: ``latent / scale + shift``."""
    return latent / SCALE_FACTOR + SHIFT_FACTOR


@dataclass(frozen=True)
class AEConfig:
    """Full size is the published ae: ``ch`` 128, ``ch_mult`` (1, 2, 4, 4), 2 resnets per level, 16 latent channels."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 16
    in_channels: int = 3
    out_channels: int = 3

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """One-head self-attention over every pixel; q, k, v and the output are 1x1 convolutions in the file."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm(x)
        b, c, h, w = x.shape
        q, k, v = (layer(n).flatten(2).transpose(1, 2)[:, None] for layer in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # right and bottom only, as the autoencoder was trained


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """``block.N`` resnets, then ``downsample`` or ``upsample`` where the level has one."""

    def __init__(self, blocks: list[nn.Module], resample: nn.Module | None, name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.resample = name if resample is not None else None
        if resample is not None:
            self.add_module(name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return getattr(self, self.resample)(x) if self.resample else x


class Encoder(nn.Module):
    def __init__(self, c: AEConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        levels, cur = [], c.ch
        for i, mult in enumerate(c.ch_mult):
            out = c.ch * mult
            blocks = [ResnetBlock(cur if j == 0 else out, out) for j in range(c.num_res_blocks)]
            cur = out
            last = i == len(c.ch_mult) - 1
            levels.append(Level(blocks, None if last else Downsample(cur), "downsample"))
        self.down = nn.ModuleList(levels)
        self.mid = Mid(cur)
        self.norm_out = _norm(cur)
        self.conv_out = nn.Conv2d(cur, 2 * c.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(self.mid(x))))


class Decoder(nn.Module):
    def __init__(self, c: AEConfig) -> None:
        super().__init__()
        cur = c.ch * c.ch_mult[-1]
        self.conv_in = nn.Conv2d(c.z_channels, cur, 3, padding=1)
        self.mid = Mid(cur)
        levels: list[nn.Module] = [nn.Identity()] * len(c.ch_mult)
        # ``up.N`` is numbered by resolution (up.0 is full size) and runs from the deepest level up.
        for i in reversed(range(len(c.ch_mult))):
            out = c.ch * c.ch_mult[i]
            blocks = [ResnetBlock(cur if j == 0 else out, out) for j in range(c.num_res_blocks + 1)]
            cur = out
            levels[i] = Level(blocks, Upsample(cur) if i != 0 else None, "upsample")
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(cur)
        self.conv_out = nn.Conv2d(cur, c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class FluxAutoencoder(nn.Module):
    """``encode``: images ``[B, 3, H, W]`` in -1..1 -> raw latents ``[B, 16, H/8, W/8]`` (the mean);
    ``decode``: raw latents -> images in about -1..1 (not clamped). Computes in the weights' dtype."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_in.weight.dtype

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.to(self.dtype)).chunk(2, dim=1)[0].to(x.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.to(self.dtype)).to(z.dtype)


# -- file layouts --------------------------------------------------------------------------------------------------


def is_diffusers_layout(keys) -> bool:
    return any(k.startswith(("encoder.down_blocks.", "decoder.up_blocks.")) for k in keys)


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "state dict") -> AEConfig:
    """The config a published-layout state dict was made with (its widths, levels and latent channels)."""
    try:
        ch = shapes["encoder.conv_in.weight"][0]
        z2 = shapes["encoder.conv_out.weight"][0]
    except KeyError as exc:
        raise ValueError(f"{source}: not a Flux autoencoder ({exc.args[0]} is missing); VAELoader loads the "
                         f"16-channel ae.safetensors of Flux.1 / Z-Image here") from None
    levels = 1 + max(int(k.split(".")[2]) for k in shapes if k.startswith("encoder.down."))
    mult = tuple(shapes[f"encoder.down.{i}.block.0.conv1.weight"][0] // ch for i in range(levels))
    blocks = 1 + max(int(k.split(".")[4]) for k in shapes if k.startswith("encoder.down.0.block."))
    if "quant_conv.weight" in shapes or z2 != 32:
        raise ValueError(f"{source}: an autoencoder with {z2 // 2} latent channels"
                         f"{' and quant_conv' if 'quant_conv.weight' in shapes else ''}, not Flux's 16-channel ae "
                         f"(SD's VAE files load through the SD plugin's VAELoader formats)")
    return AEConfig(ch=ch, ch_mult=mult, num_res_blocks=blocks, z_channels=z2 // 2)


_RESNET = {"conv_shortcut": "nin_shortcut"}
_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _diffusers_name(key: str, levels: int) -> str:
    """One diffusers ``AutoencoderKL`` key in the published ae layout."""
    key = key.replace("conv_norm_out", "norm_out")
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d)\.(.+)", key)
    if m:
        part, kind, n, rest = m.groups()
        module, _, leaf = rest.rpartition(".")
        if kind == "resnets":
            return f"{part}.mid.block_{int(n) + 1}.{_RESNET.get(module, module)}.{leaf}"
        return f"{part}.mid.attn_1.{_ATTN.get(module, module)}.{leaf}"
    m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0)\.(.+)", key)
    if m:
        level, what, j, rest = m.groups()
        if what.startswith("downsamplers"):
            return f"encoder.down.{level}.downsample.{rest}"
        module, _, leaf = rest.rpartition(".")
        return f"encoder.down.{level}.block.{j}.{_RESNET.get(module, module)}.{leaf}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.+)", key)
    if m:
        level, what, j, rest = m.groups()
        level = levels - 1 - int(level)  # diffusers counts up blocks from the deepest
        if what.startswith("upsamplers"):
            return f"decoder.up.{level}.upsample.{rest}"
        module, _, leaf = rest.rpartition(".")
        return f"decoder.up.{level}.block.{j}.{_RESNET.get(module, module)}.{leaf}"
    return key


def from_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' ``AutoencoderKL`` (Flux config) state dict in the published ae layout: names mapped, the
    attention's linear weights made 1x1 convolutions; ``quant_conv`` / ``post_quant_conv`` must be absent."""
    levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down_blocks."))
    out = {}
    for key, value in state.items():
        name = _diffusers_name(key, levels)
        if ".attn_1." in name and name.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]
        out[name] = value
    return out
