"""Real-ESRGAN's compact network (SRVGGNetCompact: realesr-general-x4v3, realesr-animevideov3...) in Hearth.

Layout: ``body.0`` the first conv, ``body.1`` its PReLU, then conv / PReLU pairs, and the last conv ``body.L``
that makes ``out_channels * scale**2`` channels for a pixel shuffle; the nearest-upsampled input is added to the
result. Channels, width, conv count and scale are read from the shapes (:func:`compact_config`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .esrgan import ArchitectureError

_BODY = re.compile(r"body\.(\d+)\.weight")


def is_compact(keys: Mapping[str, object]) -> bool:
    return "body.0.weight" in keys and "body.1.weight" in keys and "conv_first.weight" not in keys


@dataclass(frozen=True)
class CompactConfig:
    in_channels: int
    out_channels: int
    features: int
    convs: int  # the body convs between the first and the last one
    scale: int


def compact_config(state: Mapping[str, torch.Tensor]) -> CompactConfig:
    """The network's shape from its tensors; PReLU activations only (the published models' choice)."""
    indices = sorted(int(m.group(1)) for key in state if (m := _BODY.fullmatch(key)))
    first, last = state["body.0.weight"], state[f"body.{indices[-1]}.weight"]
    if first.ndim != 4 or last.ndim != 4 or state["body.1.weight"].ndim != 1:
        raise ArchitectureError("SRVGGNetCompact: body.0 and the last body entry must be convs and body.1 a PReLU; "
                                "only the PReLU variant is supported")
    in_channels, features = int(first.shape[1]), int(first.shape[0])
    convs = (indices[-1] - 2) // 2
    expected = list(range(indices[-1] + 1))
    if indices != expected or indices[-1] % 2:
        raise ArchitectureError(f"SRVGGNetCompact: body entries {indices} are not conv/PReLU pairs ending in a conv")
    scale = math.isqrt(int(last.shape[0]) // in_channels)
    if scale * scale * in_channels != int(last.shape[0]):
        raise ArchitectureError(f"SRVGGNetCompact: the last conv makes {int(last.shape[0])} channels, not "
                                f"{in_channels} times a square (the pixel shuffle's scale squared)")
    return CompactConfig(in_channels, in_channels, features, convs, scale)


class SRVGGNetCompact(nn.Module):
    """``[B, C, H, W]`` in 0..1 to ``[B, C, H*scale, W*scale]``."""

    def __init__(self, config: CompactConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        layers: list[nn.Module] = [nn.Conv2d(c.in_channels, c.features, 3, 1, 1), nn.PReLU(c.features)]
        for _ in range(c.convs):
            layers += [nn.Conv2d(c.features, c.features, 3, 1, 1), nn.PReLU(c.features)]
        layers.append(nn.Conv2d(c.features, c.out_channels * c.scale * c.scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.config.scale)
        return out + F.interpolate(x, scale_factor=self.config.scale, mode="nearest")
