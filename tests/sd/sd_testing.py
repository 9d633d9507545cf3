"""Helpers for the Stable Diffusion plugin tests: deterministic, non-trivial random weights."""

from __future__ import annotations

import torch
from torch import nn


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter a random value, so no layer is an identity or a zero by construction.

    PyTorch's default init leaves norms at weight 1 / bias 0 and some biases at 0; a parity test on such
    weights would not notice a swapped norm or a dropped bias.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if isinstance(p, nn.Parameter) and p.ndim == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 0:
                p.fill_(4.6052)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                std = 1.0 if "embedding" in name else fan_in**-0.5
                p.copy_(std * torch.randn(p.shape, generator=gen))
    return module
