"""Noise schedules: how sigma falls over the steps. Each returns ``n`` descending sigmas followed by a final 0.

Two kinds, both registered through ``register_schedulers``: continuous schedules
``get_sigmas_<name>(n, sigma_min, sigma_max, device)``, and schedules that read the model's discrete training
schedule, marked with :func:`uses_model_sampling` and called as ``get_sigmas_<name>(model_sampling, n, device)``.
:func:`compute_sigmas` calls either kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch


def uses_model_sampling(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Mark a schedule that needs the model's discrete schedule: it is called ``fn(model_sampling, n, device)``."""
    fn.uses_model_sampling = True  # type: ignore[attr-defined]
    return fn


def compute_sigmas(schedule: Callable[..., torch.Tensor], model_sampling: Any, steps: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The float32 sigmas of ``schedule`` for ``steps`` steps of a model with ``model_sampling``."""
    if getattr(schedule, "uses_model_sampling", False):
        sigmas = schedule(model_sampling, steps, device)
    else:
        sigmas = schedule(steps, float(model_sampling.sigma_min), float(model_sampling.sigma_max), device)
    return torch.as_tensor(sigmas, dtype=torch.float32, device=device)


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def get_sigmas_karras(n, sigma_min, sigma_max, device="cpu", rho=7.0):
    """Karras et al. 2022, eq. 5: equal steps in sigma^(1/rho), rho = 7."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho).to(device)


def get_sigmas_exponential(n, sigma_min, sigma_max, device="cpu"):
    """Equal steps in log sigma (the uniform-lambda schedule of Lu et al. 2022, sec. 3.4)."""
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, device=device).exp())


def get_sigmas_kl_optimal(n, sigma_min, sigma_max, device="cpu"):
    """Equal steps in arctan(sigma), the schedule minimising the KL bound of Sabour et al. 2024 (arXiv:2404.14507)."""
    ramp = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
    sigmas = (ramp * math.atan(sigma_min) + (1 - ramp) * math.atan(sigma_max)).tan()
    return append_zero(sigmas).to(device)


def percent_to_sigma(model_sampling: Any, percent: float) -> float:
    """The sigma reached after ``percent`` of the schedule (0 = start, very large; 1 = end, 0)."""
    if hasattr(model_sampling, "percent_to_sigma"):
        return float(model_sampling.percent_to_sigma(percent))
    if percent <= 0.0:
        return 999999999.9
    if percent >= 1.0:
        return 0.0
    last = len(model_sampling.sigmas) - 1
    return float(model_sampling.sigma(torch.tensor((1.0 - percent) * last)))
