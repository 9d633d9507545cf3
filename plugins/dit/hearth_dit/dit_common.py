"""Pieces Flux.1 and Z-Image share: weight-casting layers, ComfyUI's scaled-fp8 files, the timestep embedding,
the 16-channel latent format and the rectified-flow model samplings.

Owned by the Flux part; the Z-Image part may use any of it. Torch is imported at module level: import this only
from code that runs when a model loads, never while plugins load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

# ComfyUI's latent_formats.Flux (also Lumina2 / Z-Image's): the MODEL maps the VAE's raw latents in and out.
LATENT_CHANNELS = 16
LATENT_SHIFT = 0.1159
LATENT_SCALE = 0.3611


def process_latent_in(raw: torch.Tensor) -> torch.Tensor:
    """The VAE's raw 16-channel latents -> the ones the transformer denoises: ``(raw - shift) * scale``."""
    return (raw - LATENT_SHIFT) * LATENT_SCALE


def process_latent_out(scaled: torch.Tensor) -> torch.Tensor:
    return scaled / LATENT_SCALE + LATENT_SHIFT


# -- layers that cast their weights to the input's dtype and device ------------------------------------------------


def cast_like(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """``t`` in ``x``'s device and dtype (an fp8 or bf16 weight used by a float32 computation)."""
    return None if t is None else t.to(device=x.device, dtype=x.dtype)


class Linear(nn.Linear):
    """A Linear whose weight stays in its stored dtype (memory-mapped, fp8, bf16) and is cast as it runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, cast_like(self.weight, x), cast_like(self.bias, x))


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMS norm computed in float32 and returned in ``x``'s dtype."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (normed * weight.float()).to(x.dtype)


# -- files --------------------------------------------------------------------------------------------------------


def is_scaled_fp8(keys) -> bool:
    """Whether a state dict (its keys) is one of ComfyUI's "scaled fp8" files."""
    return any(key == "scaled_fp8" or key.endswith(".scale_weight") for key in keys)


def dequantize_scaled_fp8(state: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.bfloat16
                          ) -> dict[str, torch.Tensor]:
    """A ComfyUI "scaled fp8" state dict (``X.weight`` in float8 with a per-tensor ``X.scale_weight``) as plain
    weights: each scaled weight becomes ``weight * scale_weight`` in ``dtype``. The ``scaled_fp8`` marker and the
    ``X.scale_input`` activation scales (which only an fp8 matmul uses) are dropped; other tensors pass as they
    are. A float8 weight without a scale (a plain fp8 file) is widened to ``dtype`` as it is."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "scaled_fp8" or key.endswith((".scale_weight", ".scale_input")):
            continue
        scale = state.get(key[: -len("weight")] + "scale_weight") if key.endswith(".weight") else None
        if scale is not None:
            value = (value.float() * scale.float()).to(dtype)
        elif value.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            value = value.to(dtype)
        out[key] = value
    return out


# -- time ---------------------------------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, time_factor: float = 1000.0
                       ) -> torch.Tensor:
    """Sinusoidal features ``[cos | sin]`` of ``time_factor * t`` at frequencies ``max_period^(-i / (dim/2))``,
    float32 ``[N, dim]`` (Flux's, from black-forest-labs' reference; ``t`` in 0..1)."""
    t = time_factor * t.reshape(-1).float()
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None] * freqs[None]
    out = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=-1)
    return out


# -- rectified-flow model samplings ---------------------------------------------------------------------------------


def _view(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(sigma).reshape(-1, *([1] * (like.ndim - 1))).to(device=like.device, dtype=like.dtype)


class _RectifiedFlow:
    """``x = (1 - sigma) * x0 + sigma * noise``; the network predicts the velocity ``noise - x0``.

    The model-sampling interface of docs/data-types.md (``sigmas``, ``timestep``/``sigma``, ``percent_to_sigma``,
    ``calculate_input``/``calculate_denoised``, ``noise_scaling``), so the samplers plugin runs it unchanged.
    """

    prediction = "flow"
    multiplier = 1.0

    def _set_sigmas(self, sigmas: torch.Tensor) -> None:
        self.sigmas = sigmas.float()
        self.log_sigmas = self.sigmas.log()

    def _shift(self, t):
        raise NotImplementedError

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(sigma) * self.multiplier

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return self._shift(torch.as_tensor(timestep, dtype=torch.float32) / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(self._shift(torch.tensor(1.0 - percent)))

    def calculate_input(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x0 = x - sigma * v`` for the network's velocity ``output``."""
        return x - output * _view(sigma, output)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        s = _view(sigma, noise)
        return s * noise + (1.0 - s) * latent

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent / (1.0 - _view(sigma, latent))


class FluxShiftSampling(_RectifiedFlow):
    """ComfyUI's ``ModelSamplingFlux``: 10000 steps, ``sigma = e^mu / (e^mu + 1/t - 1)``, timestep = sigma.
    Flux.1 dev's default (``mu`` 1.15; the ModelSamplingFlux node sets it from the image size)."""

    def __init__(self, shift: float = 1.15, timesteps: int = 10000) -> None:
        self.shift = float(shift)
        self._set_sigmas(self.sigma(torch.arange(1, timesteps + 1, dtype=torch.float32) / timesteps))

    def _shift(self, t):
        return math.exp(self.shift) / (math.exp(self.shift) + (1 / t - 1))

    def __repr__(self) -> str:
        return f"<FluxShiftSampling mu {self.shift:g}>"


class DiscreteFlowSampling(_RectifiedFlow):
    """ComfyUI's ``ModelSamplingDiscreteFlow``: 1000 steps shifted by ``shift * t / (1 + (shift - 1) * t)``; the
    network's timestep is ``sigma * multiplier`` (Flux.1 schnell: shift 1, multiplier 1)."""

    def __init__(self, shift: float = 1.0, multiplier: float = 1000.0, timesteps: int = 1000) -> None:
        if not shift > 0:
            raise ValueError(f"flow sampling: shift must be positive, got {shift}")
        self.shift, self.multiplier = float(shift), float(multiplier)
        self._set_sigmas(self.sigma(torch.arange(1, timesteps + 1, dtype=torch.float32) / timesteps * multiplier))

    def _shift(self, t):
        if self.shift == 1.0:
            return t
        return self.shift * t / (1 + (self.shift - 1) * t)

    def __repr__(self) -> str:
        return f"<DiscreteFlowSampling shift {self.shift:g} multiplier {self.multiplier:g}>"
