"""Flow-matching model sampling (rectified flow with shifted sigmas), the schedule Wan 2.1 and SD3 were trained on.

A noisy latent at noise level ``sigma`` in 0..1 is ``x = (1 - sigma) * x0 + sigma * noise``; the network gets the
timestep ``sigma * 1000`` and predicts the velocity ``noise - x0``, so ``x0 = x - sigma * v``. The training
timesteps ``t = 1/1000 .. 1`` are shifted towards the noisy end by ``sigma = shift * t / (1 + (shift - 1) * t)``
(Esser et al. 2024, eq. 23; ComfyUI's ``ModelSamplingSD3`` node sets ``shift``, 8 for Wan by default).

This object has the model-sampling interface of ``docs/data-types.md`` (``sigmas``, ``sigma_min``/``sigma_max``,
``timestep``/``sigma``, ``percent_to_sigma``, ``calculate_input``/``calculate_denoised``, ``noise_scaling``), so
the samplers plugin's schedules and samplers run on it unchanged.
"""

from __future__ import annotations

import torch

DEFAULT_SHIFT = 8.0  # Wan 2.1 T2V


def time_shift(shift: float, t: torch.Tensor | float) -> torch.Tensor | float:
    """``shift * t / (1 + (shift - 1) * t)``: the identity at shift 1."""
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


def _view(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *([1] * (like.ndim - 1))).to(device=like.device, dtype=like.dtype)


class FlowSampling:
    """Discrete flow-matching schedule with ``timesteps`` steps and a ``shift``; velocity prediction."""

    prediction = "flow"

    def __init__(self, shift: float = DEFAULT_SHIFT, multiplier: float = 1000.0, timesteps: int = 1000) -> None:
        if not shift > 0:
            raise ValueError(f"flow sampling: shift must be positive, got {shift}")
        self.shift, self.multiplier, self.timesteps = float(shift), float(multiplier), int(timesteps)
        # In float32 and in ComfyUI's order (step / timesteps * multiplier, then sigma of that timestep), so the
        # table, and the schedules read from it, are ComfyUI's to the bit.
        self.sigmas = self.sigma(torch.arange(1, timesteps + 1, 1) / timesteps * self.multiplier)  # ascending
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The model's timestep input for ``sigma``: ``sigma * 1000`` (what Wan was trained with)."""
        return sigma * self.multiplier

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return time_shift(self.shift, torch.as_tensor(timestep, dtype=torch.float32) / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        """The sigma after ``percent`` of the schedule (0: 1.0, the start; 1: 0.0, the end)."""
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(time_shift(self.shift, 1.0 - percent))

    def calculate_input(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x0 = x - sigma * v`` for the network's velocity ``output``."""
        return x - output * _view(sigma, x)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """The latent noised to ``sigma``: ``sigma * noise + (1 - sigma) * latent`` (pure noise at sigma 1)."""
        s = _view(torch.as_tensor(sigma, dtype=torch.float32), noise)
        return s * noise + (1.0 - s) * latent

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent

    def __repr__(self) -> str:
        return f"<FlowSampling shift {self.shift:g}>"
