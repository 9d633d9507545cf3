"""More SIGMAS schedule nodes with ComfyUI's names: Polyexponential, Laplace, VP, BetaSampling, AlignYourSteps,
OptimalSteps and Flux2Scheduler.

The formulas follow ComfyUI's (``comfy_extras/nodes_custom_sampler.py``, ``nodes_align_your_steps.py``,
``nodes_optimalsteps.py``, ``nodes_flux.py``), so a workflow samples the same noise levels. As in ComfyUI,
LaplaceScheduler gives ``steps`` sigmas with no final 0 (the sampler stops at ``sigma_min``), and the tabulated
schedules (AlignYourSteps, OptimalSteps) interpolate their published levels in log sigma for other step counts.
"""

from __future__ import annotations

from typing import Any

from .nodes_sigmas import SD_SIGMA_MAX, SD_SIGMA_MIN

CATEGORY = "sampling/schedulers"

# Align Your Steps (Sabour et al. 2024), the published 10-step levels per model family.
AYS_NOISE_LEVELS = {
    "SD1": [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092, 0.9642583904,
            0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582],
    "SDXL": [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289,
             0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582],
    "SVD": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
}

# OptimalSteps (Pei et al. 2025, arXiv:2503.23307), the published flow-model levels.
OPTIMAL_NOISE_LEVELS = {
    "FLUX": [0.9968, 0.9886, 0.9819, 0.975, 0.966, 0.9471, 0.9158, 0.8287, 0.5512, 0.2808, 0.001],
    "Wan": [1.0, 0.997, 0.995, 0.993, 0.991, 0.989, 0.987, 0.985, 0.98, 0.975, 0.973, 0.968, 0.96, 0.946, 0.927,
            0.902, 0.864, 0.776, 0.539, 0.208, 0.001],
    "Chroma": [0.992, 0.99, 0.988, 0.985, 0.982, 0.978, 0.973, 0.968, 0.961, 0.953, 0.943, 0.931, 0.917, 0.9, 0.881,
               0.858, 0.832, 0.802, 0.769, 0.731, 0.69, 0.646, 0.599, 0.55, 0.501, 0.451, 0.402, 0.355, 0.311,
               0.27, 0.232, 0.199, 0.169, 0.143, 0.12, 0.101, 0.084, 0.07, 0.058, 0.048, 0.001],
}


def _float(default: float, low: float, high: float, step: float) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": low, "max": high, "step": step, "round": False, "advanced": True})


def _steps(default: int = 20, low: int = 1, high: int = 10000) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": low, "max": high})


def _sigma_range() -> dict[str, Any]:
    return {"sigma_max": _float(SD_SIGMA_MAX, 0.0, 5000.0, 0.01), "sigma_min": _float(SD_SIGMA_MIN, 0.0, 5000.0, 0.01)}


def loglinear_interp(levels: list[float], count: int):
    """``count`` levels spread evenly over a descending table, interpolated linearly in log sigma."""
    import numpy as np

    ascending = np.log(np.asarray(levels[::-1], dtype=np.float64))
    values = np.interp(np.linspace(0, 1, count), np.linspace(0, 1, len(levels)), ascending)
    return np.exp(values)[::-1].copy()


def tabulated_sigmas(levels: list[float], steps: int, denoise: float):
    """A published table as ``steps + 1`` sigmas (interpolated when the count differs), the last ``denoise`` of
    them, ending in 0 (AlignYourSteps and OptimalSteps)."""
    import numpy as np
    import torch

    if denoise <= 0.0:
        return torch.zeros(0)
    total = round(steps * denoise) if denoise < 1.0 else steps
    sigmas = np.asarray(levels, dtype=np.float64) if steps + 1 == len(levels) else loglinear_interp(levels, steps + 1)
    sigmas = sigmas[-(total + 1):].copy()
    sigmas[-1] = 0
    return torch.tensor(sigmas, dtype=torch.float32)


class PolyexponentialScheduler:
    CATEGORY = CATEGORY
    DESCRIPTION = "Sigmas spaced by a power rho of the step fraction in log sigma (rho 1: exponential)."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"steps": _steps(), **_sigma_range(), "rho": _float(1.0, 0.0, 100.0, 0.01)}}

    def get_sigmas(self, steps, sigma_max, sigma_min, rho):
        import math

        import torch

        _check_range("PolyexponentialScheduler", sigma_min, sigma_max)
        ramp = torch.linspace(1, 0, steps) ** rho
        sigmas = torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))
        return (torch.cat([sigmas, sigmas.new_zeros([1])]),)


class LaplaceScheduler:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Log sigma following the quantiles of a Laplace distribution (Tiankai et al. 2024): dense around "
                   "exp(mu); steps sigmas clamped to the range, with no final 0.")
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"steps": _steps(), **_sigma_range(), "mu": _float(0.0, -10.0, 10.0, 0.1),
                             "beta": _float(0.5, 0.0, 10.0, 0.1)}}

    def get_sigmas(self, steps, sigma_max, sigma_min, mu, beta):
        import torch

        x = torch.linspace(0, 1, steps)
        # 1e-5 keeps the log finite at both ends (ComfyUI's epsilon).
        log_sigma = mu - beta * torch.sign(0.5 - x) * torch.log(1 - 2 * torch.abs(0.5 - x) + 1e-5)
        return (torch.clamp(torch.exp(log_sigma), min=sigma_min, max=sigma_max),)


class VPScheduler:
    CATEGORY = CATEGORY
    DESCRIPTION = "The variance-preserving SDE's continuous schedule (Song et al. 2021), from t = 1 down to eps_s."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"steps": _steps(), "beta_d": _float(19.9, 0.0, 5000.0, 0.01),
                             "beta_min": _float(0.1, 0.0, 5000.0, 0.01), "eps_s": _float(0.001, 0.0, 1.0, 0.0001)}}

    def get_sigmas(self, steps, beta_d, beta_min, eps_s):
        import torch

        t = torch.linspace(1, eps_s, steps)
        sigmas = torch.sqrt(torch.special.expm1(beta_d * t**2 / 2 + beta_min * t))
        return (torch.cat([sigmas, sigmas.new_zeros([1])]),)


class BetaSamplingScheduler:
    CATEGORY = CATEGORY
    DESCRIPTION = "The model's timesteps at quantiles of a Beta(alpha, beta) distribution (Lee et al. 2024)."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "steps": _steps(), "alpha": _float(0.6, 0.0, 50.0, 0.01),
                             "beta": _float(0.6, 0.0, 50.0, 0.01)}}

    def get_sigmas(self, model, steps, alpha, beta):
        from .discrete_schedules import get_sigmas_beta

        if alpha <= 0 or beta <= 0:
            raise ValueError(f"BetaSamplingScheduler: alpha and beta must be above 0, got {alpha} and {beta}")
        return (get_sigmas_beta(model.sampling, steps, "cpu", alpha=alpha, beta=beta),)


class AlignYourStepsScheduler:
    CATEGORY = "sampling/custom_sampling/schedulers"
    DESCRIPTION = "NVIDIA's Align Your Steps levels for SD1, SDXL or SVD, interpolated to the number of steps."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model_type": (list(AYS_NOISE_LEVELS),), "steps": _steps(10),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, model_type, steps, denoise):
        if model_type not in AYS_NOISE_LEVELS:
            raise ValueError(f"AlignYourStepsScheduler: model_type must be one of {list(AYS_NOISE_LEVELS)}")
        return (tabulated_sigmas(AYS_NOISE_LEVELS[model_type], steps, denoise),)


class OptimalStepsScheduler:
    CATEGORY = "sampling/custom_sampling/schedulers"
    DESCRIPTION = "The OptimalSteps levels for FLUX, Wan or Chroma, interpolated to the number of steps."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model_type": (list(OPTIMAL_NOISE_LEVELS),), "steps": _steps(20, 3, 1000),
                             "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def get_sigmas(self, model_type, steps, denoise):
        if model_type not in OPTIMAL_NOISE_LEVELS:
            raise ValueError(f"OptimalStepsScheduler: model_type must be one of {list(OPTIMAL_NOISE_LEVELS)}")
        return (tabulated_sigmas(OPTIMAL_NOISE_LEVELS[model_type], steps, denoise),)


def flux2_mu(image_seq_len: int, steps: int) -> float:
    """Flux.2's empirical shift: linear in the token count, interpolated in the step count below 4300 tokens."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    at_200 = a2 * image_seq_len + b2
    if image_seq_len > 4300:
        return float(at_200)
    at_10 = a1 * image_seq_len + b1
    slope = (at_200 - at_10) / 190.0
    return float(slope * steps + at_200 - 200.0 * slope)


class Flux2Scheduler:
    CATEGORY = "sampling/custom_sampling/schedulers"
    DESCRIPTION = "Flux.2's schedule: evenly spaced times shifted by an amount set by the image size and steps."
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"steps": ("INT", {"default": 20, "min": 1, "max": 4096}),
                             "width": ("INT", {"default": 1024, "min": 16, "max": 16384, "step": 1}),
                             "height": ("INT", {"default": 1024, "min": 16, "max": 16384, "step": 1})}}

    def execute(self, steps, width, height):
        import math

        import torch

        mu = flux2_mu(round(width * height / (16 * 16)), steps)
        t = torch.linspace(1, 0, steps + 1)
        # e^mu / (e^mu + (1/t - 1)): 1 at t = 1 and 0 at t = 0 (1/0 is inf in float arithmetic, as in ComfyUI).
        return (math.exp(mu) / (math.exp(mu) + (1 / t - 1)),)


def _check_range(node: str, sigma_min: float, sigma_max: float) -> None:
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"{node}: sigma_min ({sigma_min}) must be above 0 and at most sigma_max ({sigma_max})")


NODES = {cls.__name__: cls for cls in (PolyexponentialScheduler, LaplaceScheduler, VPScheduler,
                                       BetaSamplingScheduler, AlignYourStepsScheduler, OptimalStepsScheduler,
                                       Flux2Scheduler)}
