"""ComfyUI's ``comfy.ldm.modules.diffusionmodules.util``: the small helpers of the LDM code base (sinusoidal
timestep embeddings, beta schedules, layer factories), which packs reuse for their own modules. Pure torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["AlphaBlender", "avg_pool_nd", "checkpoint", "conv_nd", "extract_into_tensor", "linear",
           "make_beta_schedule", "mean_flat", "noise_like", "normalization", "scale_module", "timestep_embedding",
           "zero_module"]


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000,
                       repeat_only: bool = False) -> torch.Tensor:
    """Sinusoidal embeddings ``[N, dim]`` of ``timesteps`` ``[N]``: cosines then sines of the timestep at
    frequencies falling geometrically from 1 to ``1 / max_period`` (a zero column pads an odd ``dim``); with
    ``repeat_only`` the timestep itself repeated ``dim`` times."""
    if repeat_only:
        return timesteps[:, None].expand(-1, dim)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def make_beta_schedule(schedule: str, n_timestep: int, linear_start: float = 1e-4, linear_end: float = 2e-2,
                       cosine_s: float = 8e-3) -> np.ndarray:
    """The betas of a diffusion schedule: ``linear`` (SD's: linear in sqrt(beta)), ``cosine`` (Nichol & Dhariwal
    2021), ``squaredcos_cap_v2``, ``sqrt_linear`` or ``sqrt``."""
    if schedule == "linear":
        return (torch.linspace(linear_start ** 0.5, linear_end ** 0.5, n_timestep, dtype=torch.float64) ** 2).numpy()
    if schedule == "cosine":
        steps = torch.arange(n_timestep + 1, dtype=torch.float64) / n_timestep + cosine_s
        alphas = torch.cos(steps / (1 + cosine_s) * math.pi / 2).pow(2)
        alphas = alphas / alphas[0]
        return torch.clamp(1 - alphas[1:] / alphas[:-1], min=0, max=0.999).numpy()
    if schedule == "squaredcos_cap_v2":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - alpha_bar((i + 1) / n_timestep) / alpha_bar(i / n_timestep), 0.999)
                         for i in range(n_timestep)], dtype=np.float64)
    if schedule == "sqrt_linear":
        return torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64).numpy()
    if schedule == "sqrt":
        return (torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64) ** 0.5).numpy()
    raise ValueError(f"schedule '{schedule}' unknown.")


def extract_into_tensor(a: torch.Tensor, t: torch.Tensor, x_shape: tuple[int, ...]) -> torch.Tensor:
    """``a[t]`` shaped to broadcast against a batch of ``x_shape``."""
    out = a.gather(-1, t)
    return out.reshape(t.shape[0], *((1,) * (len(x_shape) - 1)))


def checkpoint(func: Callable[..., Any], inputs: Iterable[Any], params: Any, flag: bool) -> Any:
    """``func(*inputs)``: inference needs no gradient checkpointing."""
    return func(*inputs)


def zero_module(module: nn.Module) -> nn.Module:
    """``module`` with every parameter zeroed (returned)."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def scale_module(module: nn.Module, scale: float) -> nn.Module:
    for p in module.parameters():
        p.detach().mul_(scale)
    return module


def mean_flat(tensor: torch.Tensor) -> torch.Tensor:
    """The mean over every dimension but the batch."""
    return tensor.mean(dim=list(range(1, tensor.ndim)))


class GroupNorm32(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int, dtype: Any = None) -> nn.Module:
    """The LDM code base's normalisation: 32 groups, computed in float32."""
    return GroupNorm32(32, channels, dtype=dtype)


def conv_nd(dims: int, *args: Any, **kwargs: Any) -> nn.Module:
    """A 1-, 2- or 3-D convolution."""
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](*args, **kwargs)


def linear(*args: Any, **kwargs: Any) -> nn.Module:
    return nn.Linear(*args, **kwargs)


def avg_pool_nd(dims: int, *args: Any, **kwargs: Any) -> nn.Module:
    """A 1-, 2- or 3-D average pooling."""
    return {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims](*args, **kwargs)


def noise_like(shape: tuple[int, ...], device: Any, repeat: bool = False) -> torch.Tensor:
    if repeat:
        return torch.randn((1, *shape[1:]), device=device).repeat(shape[0], *((1,) * (len(shape) - 1)))
    return torch.randn(shape, device=device)


class AlphaBlender(nn.Module):
    """Mixes a spatial and a temporal branch by ``alpha``: ``fixed``, ``learned`` (a sigmoid of a parameter) or
    ``learned_with_images`` (1 for image frames, the learned alpha for video frames)."""

    strategies = ["learned", "fixed", "learned_with_images"]

    def __init__(self, alpha: float, merge_strategy: str = "learned_with_images", rearrange_pattern: str = ""):
        super().__init__()
        if merge_strategy not in self.strategies:
            raise ValueError(f"merge_strategy needs to be in {self.strategies}")
        self.merge_strategy = merge_strategy
        self.rearrange_pattern = rearrange_pattern
        if merge_strategy == "fixed":
            self.register_buffer("mix_factor", torch.Tensor([alpha]))
        else:
            self.register_parameter("mix_factor", nn.Parameter(torch.Tensor([alpha])))

    def get_alpha(self, image_only_indicator: torch.Tensor | None, device: Any) -> torch.Tensor:
        if self.merge_strategy == "fixed":
            return self.mix_factor.to(device)
        if self.merge_strategy == "learned":
            return torch.sigmoid(self.mix_factor.to(device))
        if image_only_indicator is None:
            raise ValueError("Please provide image_only_indicator to use learned_with_images merge strategy")
        alpha = torch.where(image_only_indicator.bool(), torch.ones(1, 1, device=device),
                            torch.sigmoid(self.mix_factor.to(device))[..., None])
        return alpha.reshape(-1)[:, None, None] if self.rearrange_pattern else alpha

    def forward(self, x_spatial: torch.Tensor, x_temporal: torch.Tensor,
                image_only_indicator: torch.Tensor | None = None) -> torch.Tensor:
        alpha = self.get_alpha(image_only_indicator, x_spatial.device)
        return alpha.to(x_spatial.dtype) * x_spatial + (1.0 - alpha).to(x_spatial.dtype) * x_temporal
