"""ESRGAN's RRDBNet (ESRGAN, Real-ESRGAN x4/x2/x1) in Hearth: the network, its two key layouts, detection from shapes.

Two layouts of one network are published:

- the original ESRGAN layout, a flat ``nn.Sequential``: ``model.0`` (first conv), ``model.1.sub.N.RDBk.convj.0``
  (the residual-in-residual dense blocks), ``model.1.sub.NB`` (the trunk conv), then one conv per 2x nearest
  upsampling, the HR conv and the last conv at the higher indices;
- the "new" layout of BasicSR / Real-ESRGAN: ``conv_first``, ``body.N.rdbk.convj``, ``conv_body``, ``conv_up1``,
  ``conv_up2``, ``conv_hr``, ``conv_last``.

:func:`convert_esrgan_old` maps the first onto the second, so one module serves both. Everything the module needs
(channels, features, growth, block count, upsamplings, pixel-unshuffle of Real-ESRGAN x2/x1) is read from the
tensors' names and shapes by :func:`esrgan_config`; nothing is guessed from the file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_OLD_CONV = re.compile(r"model\.(\d+)\.(weight|bias)")
_NEW_BLOCK = re.compile(r"body\.(\d+)\.rdb[123]\.conv[1-5]\.(weight|bias)")
_NEW_UP = re.compile(r"conv_up(\d+)\.weight")


class ArchitectureError(ValueError):
    """A state dict that does not fit the architecture it was detected as (odd shapes, missing or extra keys)."""


def is_esrgan_old(keys: Mapping[str, object]) -> bool:
    return "model.0.weight" in keys and "model.1.sub.0.RDB1.conv1.0.weight" in keys


def is_esrgan_new(keys: Mapping[str, object]) -> bool:
    return "conv_first.weight" in keys and "body.0.rdb1.conv1.weight" in keys and "conv_body.weight" in keys


def convert_esrgan_old(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original ESRGAN layout (``model.N...``) renamed to the new one (``conv_first``, ``body.N.rdbk...``).

    Keys that belong to neither are kept as they are, so loading reports them as unexpected.
    """
    trunk = {int(m.group(1)) for key in state if (m := _OLD_TRUNK.fullmatch(key))}
    if len(trunk) != 1:
        raise ArchitectureError(f"ESRGAN (original layout): expected one trunk conv model.1.sub.N, found {len(trunk)}")
    convs = sorted({int(m.group(1)) for key in state if (m := _OLD_CONV.fullmatch(key))} - {0, 1})
    if len(convs) < 2:
        raise ArchitectureError("ESRGAN (original layout): the HR conv and the last conv (model.N after model.1) "
                                "are missing")
    # After the trunk: one conv per 2x upsampling, then the HR conv and the last conv, in index order.
    tail = {index: f"conv_up{n + 1}" for n, index in enumerate(convs[:-2])}
    tail[convs[-2]], tail[convs[-1]] = "conv_hr", "conv_last"
    (trunk_index,) = trunk
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if m := _OLD_RDB.fullmatch(key):
            block, rdb, conv, kind = m.groups()
            out[f"body.{block}.rdb{rdb}.conv{conv}.{kind}"] = tensor
        elif (m := _OLD_TRUNK.fullmatch(key)) and int(m.group(1)) == trunk_index:
            out[f"conv_body.{m.group(2)}"] = tensor
        elif (m := _OLD_CONV.fullmatch(key)) and int(m.group(1)) in tail:
            out[f"{tail[int(m.group(1))]}.{m.group(2)}"] = tensor
        elif (m := _OLD_CONV.fullmatch(key)) and m.group(1) == "0":
            out[f"conv_first.{m.group(2)}"] = tensor
        else:
            out[key] = tensor
    return out


@dataclass(frozen=True)
class ESRGANConfig:
    in_channels: int  # image channels (3 for RGB)
    out_channels: int
    features: int  # nf: width of the trunk
    growth: int  # gc: channels each dense conv adds
    blocks: int  # nb: RRDB blocks
    upsamples: int  # 2x nearest-neighbour upsampling steps (2 in every published Real-ESRGAN net)
    unshuffle: int  # 1, or 2 / 4: Real-ESRGAN x2 / x1 fold the image into 4 / 16 times the channels first

    @property
    def scale(self) -> int:
        return 2 ** self.upsamples // self.unshuffle


def esrgan_config(state: Mapping[str, torch.Tensor]) -> ESRGANConfig:
    """The network's shape, from a state dict in the new layout (see :func:`convert_esrgan_old`)."""
    first = state["conv_first.weight"]
    last = state.get("conv_last.weight")
    if last is None or "conv_hr.weight" not in state:
        raise ArchitectureError("ESRGAN: conv_hr / conv_last are missing; the file is incomplete")
    features, folded = int(first.shape[0]), int(first.shape[1])
    out_channels = int(last.shape[0])
    growth = int(state["body.0.rdb1.conv1.weight"].shape[0])
    blocks = 1 + max(int(m.group(1)) for key in state if (m := _NEW_BLOCK.fullmatch(key)))
    upsamples = len([key for key in state if _NEW_UP.fullmatch(key)])
    # Real-ESRGAN x2 / x1 run the x4 network on a pixel-unshuffled image: its first conv takes 4 / 16 times the
    # image's channels. The image has as many channels as the output.
    for unshuffle in (1, 2, 4):
        if folded == out_channels * unshuffle * unshuffle:
            break
    else:
        raise ArchitectureError(f"ESRGAN: the first conv takes {folded} channels, which is neither the output's "
                                f"{out_channels} nor 4 or 16 times it (pixel-unshuffle)")
    if 2 ** upsamples < unshuffle:
        raise ArchitectureError(f"ESRGAN: {upsamples} upsampling conv(s) cannot undo a pixel-unshuffle by {unshuffle}")
    return ESRGANConfig(folded // (unshuffle * unshuffle), out_channels, features, growth, blocks, upsamples,
                        unshuffle)


class ResidualDenseBlock(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for j in range(1, 5):
            setattr(self, f"conv{j}", nn.Conv2d(features + (j - 1) * growth, growth, 3, 1, 1))
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        for j in range(1, 5):
            parts.append(F.leaky_relu(getattr(self, f"conv{j}")(torch.cat(parts, 1)), 0.2))
        return self.conv5(torch.cat(parts, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator: ``[B, C, H, W]`` in 0..1 to ``[B, C, H*scale, W*scale]``."""

    def __init__(self, config: ESRGANConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.conv_first = nn.Conv2d(c.in_channels * c.unshuffle * c.unshuffle, c.features, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(c.features, c.growth) for _ in range(c.blocks)))
        self.conv_body = nn.Conv2d(c.features, c.features, 3, 1, 1)
        for n in range(1, c.upsamples + 1):
            setattr(self, f"conv_up{n}", nn.Conv2d(c.features, c.features, 3, 1, 1))
        self.conv_hr = nn.Conv2d(c.features, c.features, 3, 1, 1)
        self.conv_last = nn.Conv2d(c.features, c.out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.config.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for n in range(1, self.config.upsamples + 1):
            up = F.interpolate(feat, scale_factor=2, mode="nearest")
            feat = F.leaky_relu(getattr(self, f"conv_up{n}")(up), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
