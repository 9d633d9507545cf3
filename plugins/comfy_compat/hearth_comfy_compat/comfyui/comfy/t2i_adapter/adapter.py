"""ComfyUI's ``comfy.t2i_adapter.adapter``: the T2I-adapter networks (TencentARC's T2I-Adapter, Mou et al. 2023),
with their constructors and weight names, so adapter files load into them. Pure torch.

An adapter maps a hint image to one feature map per UNet input level (``{"input": [...]}``, SDXL adapters also a
``"middle"`` one), which :class:`comfy.controlnet.T2IAdapter` scales and hands to the UNet. Adapter files a user
loads (ControlNetLoader, ``comfy.controlnet.load_controlnet``) are the SD plugin's own networks; these classes serve
packs that build an adapter themselves.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from hearth_comfy_compat.comfyui.comfy.ldm.modules.diffusionmodules.util import avg_pool_nd, conv_nd

__all__ = ["Adapter", "Adapter_light", "Downsample", "LayerNorm", "QuickGELU", "ResidualAttentionBlock", "ResnetBlock",
           "ResnetBlock_light", "StyleAdapter", "avg_pool_nd", "conv_nd", "extractor"]


class Downsample(nn.Module):
    """Halving: a stride-2 3x3 conv (``op``) when ``use_conv``, else average pooling (padding odd sizes)."""

    def __init__(self, channels: int, use_conv: bool, dims: int = 2, out_channels: int | None = None,
                 padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        stride = 2 if dims != 3 else (1, 2, 2)
        if use_conv:
            self.op = conv_nd(dims, channels, self.out_channels, 3, stride=stride, padding=padding)
        else:
            if self.channels != self.out_channels:
                raise ValueError("Downsample without a conv keeps the channel count")
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_conv:
            self.op.padding = [x.shape[2] % 2, x.shape[3] % 2]
        return self.op(x)


class ResnetBlock(nn.Module):
    """Optionally halved, projected to ``out_c`` (``in_conv``), two convs, plus the skip (``skep``)."""

    def __init__(self, in_c: int, out_c: int, down: bool, ksize: int = 3, sk: bool = False,
                 use_conv: bool = True) -> None:
        super().__init__()
        pad = ksize // 2
        self.in_conv = nn.Conv2d(in_c, out_c, ksize, 1, pad) if in_c != out_c or not sk else None
        self.block1 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.act = nn.ReLU()
        self.block2 = nn.Conv2d(out_c, out_c, ksize, 1, pad)
        self.skep = nn.Conv2d(in_c, out_c, ksize, 1, pad) if not sk else None
        self.down = down
        if down:
            self.down_opt = Downsample(in_c, use_conv=use_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = self.down_opt(x)
        if self.in_conv is not None:
            x = self.in_conv(x)
        h = self.block2(self.act(self.block1(x)))
        return h + self.skep(x) if self.skep is not None else h + x


class Adapter(nn.Module):
    """The full adapter: pixel-unshuffle (8x, 16x for SDXL), ``conv_in``, ``nums_rb`` blocks per level."""

    def __init__(self, channels: list[int] | None = None, nums_rb: int = 3, cin: int = 64, ksize: int = 3,
                 sk: bool = False, use_conv: bool = True, xl: bool = True) -> None:
        super().__init__()
        channels = list(channels) if channels is not None else [320, 640, 1280, 1280]
        self.xl = xl
        self.unshuffle_amount = 16 if xl else 8
        no_downsample, downsample = ([1], [2]) if xl else ([], [3, 2, 1])
        self.input_channels = cin // (self.unshuffle_amount * self.unshuffle_amount)
        self.unshuffle = nn.PixelUnshuffle(self.unshuffle_amount)
        self.channels = channels
        self.nums_rb = nums_rb
        body = []
        for i, width in enumerate(channels):
            for j in range(nums_rb):
                first = j == 0 and (i in downsample or i in no_downsample)
                body.append(ResnetBlock(channels[i - 1] if first else width, width, down=j == 0 and i in downsample,
                                        ksize=ksize, sk=sk, use_conv=use_conv))
        self.body = nn.ModuleList(body)
        self.conv_in = nn.Conv2d(cin, channels[0], 3, 1, 1)

    def forward(self, x: torch.Tensor) -> dict[str, list[Any]]:
        x = self.conv_in(self.unshuffle(x))
        features: list[Any] = []
        for i in range(len(self.channels)):
            for j in range(self.nums_rb):
                x = self.body[i * self.nums_rb + j](x)
            # Placeholders where the UNet's input blocks take no feature at this level.
            if self.xl:
                features += [None] * (3 if i == 0 else 2 if i == 2 else 1)
            else:
                features += [None, None]
            features.append(x)
        features = features[::-1]
        return {"input": features[1:], "middle": features[:1]} if self.xl else {"input": features}


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """A CLIP transformer layer (sequence first): attention and an MLP, each after a LayerNorm and added back."""

    def __init__(self, d_model: int, n_head: int, attn_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        mask = None if self.attn_mask is None else self.attn_mask.to(dtype=x.dtype, device=x.device)
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class StyleAdapter(nn.Module):
    """CLIP vision tokens -> ``num_token`` extra text-context tokens (the style T2I-adapter)."""

    def __init__(self, width: int = 1024, context_dim: int = 768, num_head: int = 8, n_layes: int = 3,
                 num_token: int = 4) -> None:
        super().__init__()
        scale = width ** -0.5
        self.transformer_layes = nn.Sequential(*[ResidualAttentionBlock(width, num_head) for _ in range(n_layes)])
        self.num_token = num_token
        self.style_embedding = nn.Parameter(torch.randn(1, num_token, width) * scale)
        self.ln_post = LayerNorm(width)
        self.ln_pre = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, context_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        style = self.style_embedding.expand(x.shape[0], -1, -1).to(x)
        x = self.ln_pre(torch.cat([x, style], dim=1)).permute(1, 0, 2)
        x = self.transformer_layes(x).permute(1, 0, 2)
        return self.ln_post(x[:, -self.num_token:, :]) @ self.proj


class ResnetBlock_light(nn.Module):  # noqa: N801 - ComfyUI's name
    def __init__(self, in_c: int) -> None:
        super().__init__()
        self.block1 = nn.Conv2d(in_c, in_c, 3, 1, 1)
        self.act = nn.ReLU()
        self.block2 = nn.Conv2d(in_c, in_c, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.act(self.block1(x))) + x


class extractor(nn.Module):  # noqa: N801 - ComfyUI's name
    """The light adapter's level: optional halving, 1x1 in, light blocks, 1x1 out."""

    def __init__(self, in_c: int, inter_c: int, out_c: int, nums_rb: int, down: bool = False) -> None:
        super().__init__()
        self.in_conv = nn.Conv2d(in_c, inter_c, 1, 1, 0)
        self.body = nn.Sequential(*[ResnetBlock_light(inter_c) for _ in range(nums_rb)])
        self.out_conv = nn.Conv2d(inter_c, out_c, 1, 1, 0)
        self.down = down
        if down:
            self.down_opt = Downsample(in_c, use_conv=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = self.down_opt(x)
        return self.out_conv(self.body(self.in_conv(x)))


class Adapter_light(nn.Module):  # noqa: N801 - ComfyUI's name
    """The light adapter: pixel-unshuffle 8x, one extractor per level."""

    def __init__(self, channels: list[int] | None = None, nums_rb: int = 3, cin: int = 64) -> None:
        super().__init__()
        channels = list(channels) if channels is not None else [320, 640, 1280, 1280]
        self.unshuffle_amount = 8
        self.unshuffle = nn.PixelUnshuffle(self.unshuffle_amount)
        self.input_channels = cin // (self.unshuffle_amount * self.unshuffle_amount)
        self.channels = channels
        self.nums_rb = nums_rb
        self.xl = False
        self.body = nn.ModuleList([
            extractor(in_c=cin if i == 0 else channels[i - 1], inter_c=width // 4, out_c=width, nums_rb=nums_rb,
                      down=i != 0)
            for i, width in enumerate(channels)])

    def forward(self, x: torch.Tensor) -> dict[str, list[Any]]:
        x = self.unshuffle(x)
        features: list[Any] = []
        for block in self.body:
            x = block(x)
            features += [None, None, x]
        return {"input": features[::-1]}
