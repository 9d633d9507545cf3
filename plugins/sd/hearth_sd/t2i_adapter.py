"""T2I-Adapter networks (Mou et al. 2023) for SD1.x and SDXL: the full adapter, its SDXL variant and the light one.

The layouts TencentARC published and ComfyUI reads (``comfy/t2i_adapter/adapter.py``): the full adapter
(``conv_in``, ``body.N.block1`` ...; SD1: hint unshuffled by 8, features at four scales; SDXL: unshuffled by 16,
recognised by 256 or 768 input channels), the light adapter (``body.N.in_conv`` / ``body.N.body.M`` /
``body.N.out_conv``), and diffusers' ``T2IAdapter`` (``adapter.body.N.resnets.M``) of the full ones, renamed as
ComfyUI renames it. A forward returns ComfyUI's control dict: ``{"input": [...]}`` (SDXL also ``"middle"``), the
features placed so that the UNet, taking its ``"input"`` list from the end, adds each after the last block of
its level. The light adapter's widths and depth are read from the file (ComfyUI fixes them at 320..1280 and 4,
which every published light adapter has), so tiny test files can be small.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

XL_INPUT_CHANNELS = (256, 768)  # 1 or 3 hint channels unshuffled by 16: ComfyUI's test for an SDXL adapter


class _AvgDown(nn.Module):
    """2x average pooling that pads odd sizes first (ComfyUI's Downsample without a convolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2, 2, padding=(x.shape[2] % 2, x.shape[3] % 2))


class _ConvDown(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class AdapterResBlock(nn.Module):
    """A full adapter's block: optional 2x down, a width change (``in_conv``) and a residual pair of convs."""

    def __init__(self, in_c: int, out_c: int, down: bool, ksize: int, use_conv: bool):
        super().__init__()
        if down:
            self.down_opt = _ConvDown(in_c) if use_conv else _AvgDown()
        self.in_conv = nn.Conv2d(in_c, out_c, ksize, 1, ksize // 2) if in_c != out_c else None
        self.block1 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.block2 = nn.Conv2d(out_c, out_c, ksize, 1, ksize // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "down_opt"):
            x = self.down_opt(x)
        if self.in_conv is not None:
            x = self.in_conv(x)
        return self.block2(F.relu(self.block1(x))) + x


class FullAdapter(nn.Module):
    """The full T2I-Adapter; ``xl``: the SDXL variant (unshuffle 16, the second level without a downsample)."""

    def __init__(self, cin: int, channel: int, nums_rb: int = 2, ksize: int = 1, use_conv: bool = False,
                 xl: bool = False):
        super().__init__()
        self.xl = xl
        self.unshuffle_amount = 16 if xl else 8
        self.input_channels = cin // self.unshuffle_amount ** 2
        self.channels = [channel, channel * 2, channel * 4, channel * 4]
        self.nums_rb = nums_rb
        self.conv_in = nn.Conv2d(cin, channel, 3, 1, 1)
        body = []
        for i, width in enumerate(self.channels):
            for j in range(nums_rb):
                first = j == 0 and i > 0
                down = first and (i == 2 if xl else True)
                in_c = self.channels[i - 1] if first else width
                body.append(AdapterResBlock(in_c, width, down, ksize, use_conv))
        self.body = nn.ModuleList(body)

    def forward(self, hint: torch.Tensor) -> dict[str, list[torch.Tensor | None]]:
        x = self.conv_in(F.pixel_unshuffle(hint, self.unshuffle_amount))
        features: list[torch.Tensor | None] = []
        for i in range(len(self.channels)):
            for j in range(self.nums_rb):
                x = self.body[i * self.nums_rb + j](x)
            if self.xl:
                # SDXL's input blocks: 3 at the latent's size, then 3 per level; the last feature is the middle's.
                features += [None] * {0: 3, 2: 2}.get(i, 1)
            else:
                features += [None, None]
            features.append(x)
        features.reverse()
        if self.xl:
            return {"input": features[1:], "middle": features[:1]}
        return {"input": features}


class _LightResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.block2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(F.relu(self.block1(x))) + x


class _Extractor(nn.Module):
    def __init__(self, in_c: int, inter_c: int, out_c: int, nums_rb: int, down: bool):
        super().__init__()
        self.down = down
        self.in_conv = nn.Conv2d(in_c, inter_c, 1)
        self.body = nn.Sequential(*(_LightResBlock(inter_c) for _ in range(nums_rb)))
        self.out_conv = nn.Conv2d(inter_c, out_c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = _AvgDown()(x)
        return self.out_conv(self.body(self.in_conv(x)))


class LightAdapter(nn.Module):
    """The light T2I-Adapter (SD1): per level an extractor of 1x1 convs around light residual blocks."""

    def __init__(self, cin: int, channels: list[int], inter: list[int], nums_rb: int):
        super().__init__()
        self.unshuffle_amount = 8
        self.input_channels = cin // 64
        self.channels = channels
        ins = [cin, *channels[:-1]]
        self.body = nn.ModuleList(_Extractor(ins[i], inter[i], channels[i], nums_rb, down=i > 0)
                                  for i in range(len(channels)))

    def forward(self, hint: torch.Tensor) -> dict[str, list[torch.Tensor | None]]:
        x = F.pixel_unshuffle(hint, self.unshuffle_amount)
        features: list[torch.Tensor | None] = []
        for block in self.body:
            x = block(x)
            features += [None, None, x]
        features.reverse()
        return {"input": features}


def is_t2i_adapter(keys: Any) -> bool:
    keys = set(keys)
    return any(k in keys for k in ("conv_in.weight", "body.0.in_conv.weight", "adapter.body.0.resnets.0.block1.weight"))


def convert_diffusers_adapter(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' full / full-XL ``T2IAdapter`` keys renamed to the original layout, as ComfyUI renames them."""
    out = {}
    for key, value in sd.items():
        m = re.match(r"adapter\.body\.(\d+)\.resnets\.(\d+)\.(.*)", key)
        if m:
            out[f"body.{int(m.group(1)) * 2 + int(m.group(2))}.{m.group(3)}"] = value
            continue
        m = re.match(r"adapter\.body\.(\d+)\.(.*)", key)
        if m:
            out[f"body.{int(m.group(1)) * 2}.{m.group(2)}"] = value
            continue
        out[key[len("adapter."):] if key.startswith("adapter.") else key] = value
    return out


def build_adapter(sd: Mapping[str, torch.Tensor]) -> nn.Module:
    """The adapter module the shapes of an original-layout state dict describe (weights not loaded)."""
    if "body.0.in_conv.weight" in sd:
        levels = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.", k)))
        nums_rb = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"body\.0\.body\.(\d+)\.", k)))
        channels = [sd[f"body.{i}.out_conv.weight"].shape[0] for i in range(levels)]
        inter = [sd[f"body.{i}.in_conv.weight"].shape[0] for i in range(levels)]
        return LightAdapter(sd["body.0.in_conv.weight"].shape[1], channels, inter, nums_rb)
    cin, channel = sd["conv_in.weight"].shape[1], sd["conv_in.weight"].shape[0]
    return FullAdapter(cin, channel, nums_rb=2, ksize=sd["body.0.block2.weight"].shape[-1],
                       use_conv=any(k.endswith("down_opt.op.weight") for k in sd), xl=cin in XL_INPUT_CHANNELS)
