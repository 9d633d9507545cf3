"""The discrete noise schedule and prediction type of the SD families, for the samplers to build on.

All four families were trained with 1000 steps of the "scaled linear" beta schedule (betas spaced linearly in
square root from 0.00085 to 0.012). In k-diffusion terms a noisy latent is ``x = x0 + sigma * noise`` with
``sigma = sqrt((1 - alpha_bar) / alpha_bar)``; the network sees ``x / sqrt(sigma^2 + 1)`` and timestep ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

PREDICTIONS = ("eps", "v")


def scaled_linear_betas(steps: int = 1000, start: float = 0.00085, end: float = 0.012) -> torch.Tensor:
    return torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2


@dataclass(frozen=True)
class ModelSampling:
    """Schedule and parameterisation of a model.

    :ivar prediction: ``"eps"`` (the network predicts the noise) or ``"v"`` (it predicts
        ``alpha * noise - sigma_t * x0``, SD2 768-v).
    :ivar sigmas: the 1000 training sigmas, ascending (index = timestep), float32.
    """

    prediction: str = "eps"
    linear_start: float = 0.00085
    linear_end: float = 0.012
    timesteps: int = 1000
    sigma_data: float = 1.0
    sigmas: torch.Tensor = field(init=False, repr=False, compare=False)
    log_sigmas: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        betas = scaled_linear_betas(self.timesteps, self.linear_start, self.linear_end)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
        object.__setattr__(self, "sigmas", sigmas.float())
        # log of the float64 table, then rounded (ComfyUI's set_sigmas): the log of the rounded sigmas is one bit
        # off for some steps, which moves the sigmas interpolated between them.
        object.__setattr__(self, "log_sigmas", sigmas.log().float())

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return 1.0 / (1.0 + self.sigmas.double() ** 2)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The training step whose sigma is nearest to ``sigma`` in log sigma, as a float32 whole number.

        ComfyUI's ``ModelSamplingDiscrete.timestep`` rule: the UNet is given that integer timestep, never one
        interpolated between two training steps (a karras sigma between steps 512 and 513 is fed as one of them).
        """
        log_sigma = sigma.float().log()
        dists = log_sigma.to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device, torch.float32)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """The sigma at a (fractional) timestep, interpolating in log sigma."""
        t = timestep.float().clamp(0, self.timesteps - 1)
        low = t.floor().long()
        high = t.ceil().long()
        frac = t - low
        log_sigmas = self.log_sigmas.to(timestep.device)
        return ((1 - frac) * log_sigmas[low] + frac * log_sigmas[high]).exp()

    def percent_to_sigma(self, percent: float) -> float:
        """The sigma at a fraction of the schedule (0 = start, 1 = end): where ``start_percent`` /
        ``end_percent`` of a conditioning fall. Past either end: a sigma above every real one, or 0."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * (self.timesteps - 1))))

    def calculate_input(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """What the network is fed for a noisy latent ``x`` at ``sigma``."""
        return x / (sigma**2 + self.sigma_data**2).sqrt().view(-1, *([1] * (x.ndim - 1)))

    def calculate_denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The denoised latent from the network's ``output`` for noisy ``x`` at ``sigma``."""
        s = sigma.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        if self.prediction == "eps":
            return x - output * s
        sd2 = self.sigma_data**2
        return x * sd2 / (s**2 + sd2) - output * s * self.sigma_data / (s**2 + sd2).sqrt()

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """A latent noised to ``sigma`` (the start of img2img at partial denoise)."""
        return latent + noise * sigma.view(-1, *([1] * (noise.ndim - 1)))
