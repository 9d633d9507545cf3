"""ComfyUI's ``comfy.ldm.modules.diffusionmodules.model``: the KL-VAE's encoder and decoder and their blocks, with
ComfyUI's constructors and weight names (``down.0.block.1.conv1``, ``mid.attn_1.q``...), so SD VAE weights load
into them. Pure torch; 2-D only (ComfyUI's video VAE options, ``conv3d`` / ``time_compress``, are not here)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from hearth_comfy_compat.comfyui.comfy import ops as comfy_ops

ops = comfy_ops.disable_weight_init

__all__ = ["AttnBlock", "Decoder", "Downsample", "Encoder", "Normalize", "ResnetBlock", "Upsample", "make_attn",
           "nonlinearity", "vae_attention"]


def nonlinearity(x: torch.Tensor) -> torch.Tensor:
    """SiLU."""
    return x * torch.sigmoid(x)


def Normalize(in_channels: int, num_groups: int = 32) -> nn.GroupNorm:  # noqa: N802 - ComfyUI's name
    return ops.GroupNorm(num_groups=num_groups, num_channels=in_channels, eps=1e-6, affine=True)


class Upsample(nn.Module):
    """Nearest-neighbour 2x, then a 3x3 conv when ``with_conv``."""

    def __init__(self, in_channels: int, with_conv: bool, conv_op: Any = ops.Conv2d) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = conv_op(in_channels, in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x


class Downsample(nn.Module):
    """Halving: a stride-2 3x3 conv after padding right and bottom by one, or average pooling."""

    def __init__(self, in_channels: int, with_conv: bool, stride: int = 2, conv_op: Any = ops.Conv2d) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = conv_op(in_channels, in_channels, kernel_size=3, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_conv:
            return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class ResnetBlock(nn.Module):
    """Norm, SiLU, conv, (the timestep projection added), norm, SiLU, dropout, conv, plus the shortcut
    (``nin_shortcut`` 1x1, or ``conv_shortcut`` 3x3, where the width changes)."""

    def __init__(self, *, in_channels: int, out_channels: int | None = None, conv_shortcut: bool = False,
                 dropout: float = 0.0, temb_channels: int = 512, conv_op: Any = ops.Conv2d,
                 norm_op: Any = Normalize) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels = in_channels if out_channels is None else out_channels
        self.use_conv_shortcut = conv_shortcut
        self.swish = nn.SiLU(inplace=True)
        self.norm1 = norm_op(in_channels)
        self.conv1 = conv_op(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if temb_channels > 0:
            self.temb_proj = ops.Linear(temb_channels, out_channels)
        self.norm2 = norm_op(out_channels)
        self.dropout = nn.Dropout(dropout, inplace=True)
        self.conv2 = conv_op(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = conv_op(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
            else:
                self.nin_shortcut = conv_op(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(nonlinearity(self.norm1(x)))
        if temb is not None:
            h = h + self.temb_proj(nonlinearity(temb))[:, :, None, None]
        h = self.conv2(self.dropout(nonlinearity(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.conv_shortcut(x) if self.use_conv_shortcut else self.nin_shortcut(x)
        return x + h


def vae_attention() -> Any:
    """The VAE's single-head attention over pixels: ``(q, k, v) [B, C, H, W] -> [B, C, H, W]``."""

    def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, c, h, w = q.shape
        q, k, v = (t.reshape(b, 1, c, h * w).transpose(2, 3) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(2, 3).reshape(b, c, h, w)

    return attention


class AttnBlock(nn.Module):
    """Self-attention over all pixels; ``q``, ``k``, ``v`` and ``proj_out`` are 1x1 convolutions."""

    def __init__(self, in_channels: int, conv_op: Any = ops.Conv2d, norm_op: Any = Normalize) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.norm = norm_op(in_channels)
        self.q = conv_op(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.k = conv_op(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.v = conv_op(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.proj_out = conv_op(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.optimized_attention = vae_attention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return x + self.proj_out(self.optimized_attention(self.q(h), self.k(h), self.v(h)))


def make_attn(in_channels: int, attn_type: str = "vanilla", attn_kwargs: Any = None,
              conv_op: Any = ops.Conv2d) -> nn.Module:
    return AttnBlock(in_channels, conv_op=conv_op)


class Encoder(nn.Module):
    """Image -> the latent distribution's parameters (``2 * z_channels`` with ``double_z``)."""

    def __init__(self, *, ch: int, out_ch: int, ch_mult: Any = (1, 2, 4, 8), num_res_blocks: int,
                 attn_resolutions: Any, dropout: float = 0.0, resamp_with_conv: bool = True, in_channels: int,
                 resolution: int, z_channels: int, double_z: bool = True, use_linear_attn: bool = False,
                 attn_type: str = "vanilla", conv3d: bool = False, time_compress: Any = None,
                 **ignore_kwargs: Any) -> None:
        super().__init__()
        self.ch, self.num_resolutions, self.num_res_blocks = ch, len(ch_mult), num_res_blocks
        self.resolution, self.in_channels = resolution, in_channels
        self.conv_in = ops.Conv2d(in_channels, ch, kernel_size=3, stride=1, padding=1)
        current = resolution
        in_mult = (1, *tuple(ch_mult))
        self.down = nn.ModuleList()
        for level in range(self.num_resolutions):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            width_in, width = ch * in_mult[level], ch * ch_mult[level]
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(in_channels=width_in, out_channels=width, temb_channels=0, dropout=dropout))
                width_in = width
                if current in attn_resolutions:
                    attns.append(make_attn(width_in, attn_type=attn_type))
            down = nn.Module()
            down.block, down.attn = blocks, attns
            if level != self.num_resolutions - 1:
                down.downsample = Downsample(width_in, resamp_with_conv)
                current //= 2
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(in_channels=width_in, out_channels=width_in, temb_channels=0, dropout=dropout)
        self.mid.attn_1 = make_attn(width_in, attn_type=attn_type)
        self.mid.block_2 = ResnetBlock(in_channels=width_in, out_channels=width_in, temb_channels=0, dropout=dropout)
        self.norm_out = Normalize(width_in)
        self.conv_out = ops.Conv2d(width_in, 2 * z_channels if double_z else z_channels, kernel_size=3, stride=1,
                                   padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level, down in enumerate(self.down):
            for i, block in enumerate(down.block):
                h = block(h, None)
                if len(down.attn) > 0:
                    h = down.attn[i](h)
            if level != self.num_resolutions - 1:
                h = down.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, None)), None)
        return self.conv_out(nonlinearity(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent -> image in about [-1, 1] (``tanh_out`` bounds it; ``give_pre_end`` stops before the last norm)."""

    def __init__(self, *, ch: int, out_ch: int, ch_mult: Any = (1, 2, 4, 8), num_res_blocks: int,
                 attn_resolutions: Any, dropout: float = 0.0, resamp_with_conv: bool = True, in_channels: int,
                 resolution: int, z_channels: int, give_pre_end: bool = False, tanh_out: bool = False,
                 use_linear_attn: bool = False, conv_out_op: Any = ops.Conv2d, resnet_op: Any = ResnetBlock,
                 attn_op: Any = AttnBlock, conv3d: bool = False, time_compress: Any = None,
                 **ignorekwargs: Any) -> None:
        super().__init__()
        self.ch, self.num_resolutions, self.num_res_blocks = ch, len(ch_mult), num_res_blocks
        self.resolution, self.in_channels = resolution, in_channels
        self.give_pre_end, self.tanh_out = give_pre_end, tanh_out
        width = ch * ch_mult[self.num_resolutions - 1]
        current = resolution // 2 ** (self.num_resolutions - 1)
        self.z_shape = (1, z_channels, current, current)
        self.conv_in = ops.Conv2d(z_channels, width, kernel_size=3, stride=1, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = resnet_op(in_channels=width, out_channels=width, temb_channels=0, dropout=dropout)
        self.mid.attn_1 = attn_op(width)
        self.mid.block_2 = resnet_op(in_channels=width, out_channels=width, temb_channels=0, dropout=dropout)
        self.up = nn.ModuleList()
        for level in reversed(range(self.num_resolutions)):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            out = ch * ch_mult[level]
            for _ in range(num_res_blocks + 1):
                blocks.append(resnet_op(in_channels=width, out_channels=out, temb_channels=0, dropout=dropout))
                width = out
                if current in attn_resolutions:
                    attns.append(attn_op(width))
            up = nn.Module()
            up.block, up.attn = blocks, attns
            if level != 0:
                up.upsample = Upsample(width, resamp_with_conv)
                current *= 2
            self.up.insert(0, up)  # numbered by resolution level: up.0 is full size
        self.norm_out = Normalize(width)
        self.conv_out = conv_out_op(width, out_ch, kernel_size=3, stride=1, padding=1)

    def forward(self, z: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        # kwargs: ComfyUI's video decoders take more (timesteps...); the image decoder needs none of them.
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, None)), None)
        for level in reversed(range(self.num_resolutions)):
            up = self.up[level]
            for i, block in enumerate(up.block):
                h = block(h, None)
                if len(up.attn) > 0:
                    h = up.attn[i](h)
            if level != 0:
                h = up.upsample(h)
        if self.give_pre_end:
            return h
        h = self.conv_out(nonlinearity(self.norm_out(h)))
        return torch.tanh(h) if self.tanh_out else h
