"""Schedules that pick sigmas from the model's discrete training schedule (``model_sampling.sigmas``, ascending).

Each is called ``get_sigmas_<name>(model_sampling, n, device)`` (see :func:`schedules.uses_model_sampling`) and
follows the schedule of the same name in ComfyUI, so the same workflow takes the same steps.
"""

from __future__ import annotations

import math

import torch

from .beta_distribution import beta_ppf
from .schedules import uses_model_sampling


def _tensor(values, device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


@uses_model_sampling
def get_sigmas_simple(model_sampling, n, device="cpu"):
    """Every (len / n)-th training sigma from the top: the uniform timestep spacing of the original samplers."""
    train = model_sampling.sigmas
    stride = len(train) / n
    return _tensor([float(train[-(1 + int(i * stride))]) for i in range(n)] + [0.0], device)


def _timestep_spaced(model_sampling, n, device, sgm: bool):
    start = model_sampling.timestep(torch.tensor(float(model_sampling.sigma_max)))
    end = model_sampling.timestep(torch.tensor(float(model_sampling.sigma_min)))
    append_zero = True
    if sgm:
        # SGM's "trailing" spacing: n + 1 points, the last (sigma_min) replaced by 0.
        timesteps = torch.linspace(float(start), float(end), n + 1)[:-1]
    else:
        if math.isclose(float(model_sampling.sigma(end)), 0, abs_tol=1e-5):
            n, append_zero = n + 1, False
        timesteps = torch.linspace(float(start), float(end), n)
    sigmas = [float(model_sampling.sigma(t)) for t in timesteps]
    return _tensor(sigmas + ([0.0] if append_zero else []), device)


@uses_model_sampling
def get_sigmas_normal(model_sampling, n, device="cpu"):
    """Timesteps evenly spaced from the first to the last training step ("linspace" spacing), then 0."""
    return _timestep_spaced(model_sampling, n, device, sgm=False)


@uses_model_sampling
def get_sigmas_sgm_uniform(model_sampling, n, device="cpu"):
    """Evenly spaced timesteps with the trailing end point dropped (Stability's sgm samplers; Lin et al. 2024)."""
    return _timestep_spaced(model_sampling, n, device, sgm=True)


@uses_model_sampling
def get_sigmas_ddim_uniform(model_sampling, n, device="cpu"):
    """DDIM's uniform timestep subsequence (Song et al. 2021, sec. C.2): every (T // n)-th step from step 1."""
    train = model_sampling.sigmas
    stride = max(len(train) // n, 1)
    # A model whose step 1 already has sigma ~0 would end on a useless step; sample one more and keep it.
    sigmas = [] if math.isclose(float(train[1]), 0, abs_tol=1e-5) else [0.0]
    sigmas += [float(train[i]) for i in range(1, len(train), stride)]
    return _tensor(sigmas[::-1], device)


@uses_model_sampling
def get_sigmas_beta(model_sampling, n, device="cpu", alpha=0.6, beta=0.6):
    """Timesteps at quantiles of Beta(0.6, 0.6): dense at both ends (Lee et al. 2024, arXiv:2407.12173)."""
    last = len(model_sampling.sigmas) - 1
    sigmas, previous = [], None
    for i in range(n):
        t = round(beta_ppf(1 - i / n, alpha, beta) * last)
        if t != previous:  # rounding can land two quantiles on one timestep; it is taken once
            sigmas.append(float(model_sampling.sigmas[t]))
            previous = t
    return _tensor(sigmas + [0.0], device)


@uses_model_sampling
def get_sigmas_beta57(model_sampling, n, device="cpu"):
    """The beta schedule with alpha 0.5 and beta 0.7 (ComfyUI's "beta57"): denser at the noisy end."""
    return get_sigmas_beta(model_sampling, n, device, alpha=0.5, beta=0.7)


@uses_model_sampling
def get_sigmas_linear_quadratic(model_sampling, n, device="cpu", threshold_noise=0.025, linear_steps=None):
    """Linear in the first half, then quadratic, in fractions of sigma_max (Mochi's schedule, Genmo 2024)."""
    if n == 1:
        fractions = [1.0, 0.0]
    else:
        linear_steps = n // 2 if linear_steps is None else linear_steps
        linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        step_diff = linear_steps - threshold_noise * n
        quadratic_steps = n - linear_steps
        quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
        linear_coef = threshold_noise / linear_steps - 2 * step_diff / quadratic_steps**2
        const = quadratic_coef * linear_steps**2
        quadratic = [quadratic_coef * i**2 + linear_coef * i + const for i in range(linear_steps, n)]
        fractions = [1.0 - f for f in linear + quadratic + [1.0]]
    return _tensor(fractions, device) * float(model_sampling.sigma_max)


def sd_turbo_sigmas(model_sampling, steps: int, denoise: float = 1.0, device="cpu") -> torch.Tensor:
    """SD-Turbo's schedule: timesteps 999, 899, ... 99 (Sauer et al. 2023), the last ``denoise`` of them."""
    start = 10 - int(10 * denoise)
    timesteps = (torch.arange(10, 0, -1) * 100 - 1)[start:start + steps]
    sigmas = model_sampling.sigma(timesteps.float())
    return torch.cat([sigmas.float(), sigmas.new_zeros([1])]).to(device)
