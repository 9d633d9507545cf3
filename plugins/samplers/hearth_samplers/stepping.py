"""What every sampler shares: the probability-flow ODE derivative, the ancestral split of a step, churn, noise.

Samplers work in k-diffusion's variance-exploding form: a noisy latent is ``x = x0 + sigma * noise`` and the
model is a denoiser ``model(x, sigma, **extra_args) -> x0 estimate`` (Karras et al. 2022, section 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def append_dims(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """``value`` with trailing singleton dimensions, so a per-batch sigma broadcasts over ``[B, C, H, W]``."""
    missing = ndim - value.ndim
    if missing < 0:
        raise ValueError(f"cannot broadcast a {value.ndim}-d tensor over {ndim} dimensions")
    return value[(...,) + (None,) * missing]


def to_d(x: torch.Tensor, sigma: torch.Tensor | float, denoised: torch.Tensor) -> torch.Tensor:
    """dx/dsigma of the probability-flow ODE, from the denoiser output (Karras et al. 2022, eq. 3)."""
    if isinstance(sigma, float):
        return (x - denoised) / sigma
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step into a deterministic part down to ``sigma_down`` and fresh noise of std ``sigma_up``.

    ``sigma_down**2 + sigma_up**2 == sigma_to**2``; ``eta = 1`` is DDPM's posterior variance, 0 no noise.
    Plain floats: the samplers do their per-step scalar arithmetic in Python, not in one-element tensors,
    which would cost a kernel launch per operation.
    """
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - sigma_up**2) ** 0.5, sigma_up


def gaussian_noise(x: torch.Tensor, generator: torch.Generator | None = None) -> NoiseSampler:
    """A noise sampler drawing independent standard normal noise shaped like ``x`` at every call.

    With a CPU ``generator`` the noise is drawn on the CPU and moved, so a seed gives one result on any device.
    """
    if generator is None:
        return lambda sigma, sigma_next: torch.randn_like(x)
    shape, dtype, device = x.shape, x.dtype, x.device

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)

    return sample


def churn(sigmas: list[float], i: int, s_churn: float, s_tmin: float, s_tmax: float) -> tuple[float, float]:
    """Karras et al. 2022, Algorithm 2, lines 4-5: how far to raise sigma before step ``i`` (gamma, sigma_hat)."""
    gamma = 0.0
    if s_churn > 0 and s_tmin <= sigmas[i] <= s_tmax:
        gamma = min(s_churn / (len(sigmas) - 1), math.sqrt(2.0) - 1)
    return gamma, sigmas[i] * (gamma + 1)


def add_churn_noise(x: torch.Tensor, sigma: float, sigma_hat: float, s_noise: float,
                    noise_sampler: NoiseSampler | None) -> torch.Tensor:
    """Raise ``x`` from ``sigma`` to ``sigma_hat`` with fresh noise (Algorithm 2, line 6)."""
    noise = torch.randn_like(x) if noise_sampler is None else noise_sampler(sigma, sigma_hat)
    return x + noise * s_noise * (sigma_hat**2 - sigma**2) ** 0.5


def report(callback, x, i, sigma, sigma_hat, denoised) -> None:
    """Call the sampler's callback with k-diffusion's step dictionary."""
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})
