"""Model-sampling objects the ModelSampling* nodes put on a MODEL: the noise schedule and prediction type it samples.

Each has the model-sampling interface of docs/data-types.md (``sigmas`` ascending, ``sigma_min``/``sigma_max``,
``timestep``/``sigma``, ``percent_to_sigma``, ``calculate_input``/``calculate_denoised``, ``noise_scaling``) and
follows ComfyUI's ``comfy.model_sampling`` classes of the same role, so one workflow picks the same timesteps:

* :class:`DiscreteSampling`: 1000 training steps of the scaled-linear betas (eps, v, LCM's 50-step distilled
  schedule, x0), optionally rescaled to zero terminal SNR (Lin et al. 2024, arXiv:2305.08891, Algorithm 1);
* :class:`ContinuousEDMSampling` / :class:`ContinuousVSampling`: continuous sigmas (timestep ``log(sigma) / 4``,
  or ``atan(sigma) * 2 / pi``), log-spaced 1000-entry tables for the schedules that read one;
* :class:`FlowSampling` (SD3, AuraFlow: ``shift * t / (1 + (shift - 1) * t)``) and :class:`FluxSampling`
  (``e^mu / (e^mu + 1/t - 1)``): rectified flow, ``prediction = "flow"``, so the samplers renoise that way.
"""

from __future__ import annotations

import math

import torch

# Where zero terminal SNR would make the last alpha_bar 0 (sigma infinite), ComfyUI keeps this tiny value instead.
_ZSNR_LAST_ALPHA_BAR = 4.8973451890853435e-08
PARAMETERIZATIONS = ("eps", "v", "edm", "lcm", "x0")


def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` (one value per batch item) shaped to broadcast over ``like``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def rescale_zero_terminal_snr(sigmas: torch.Tensor) -> torch.Tensor:
    """Sigmas whose last step has (almost) zero SNR: sqrt(alpha_bar) shifted to end at 0 and scaled to keep its
    first value (Lin et al. 2024, Algorithm 1); the last alpha_bar is kept just above 0 so sigma stays finite."""
    root = (1.0 / (sigmas.double() ** 2 + 1.0)).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    alphas_bar = root**2
    alphas_bar[-1] = _ZSNR_LAST_ALPHA_BAR
    return ((1 - alphas_bar) / alphas_bar).sqrt().float()


class _Parameterized:
    """What the network's output means: ``calculate_input`` / ``calculate_denoised`` / ``noise_scaling``."""

    parameterization = "eps"
    sigma_data = 1.0

    @property
    def prediction(self) -> str:
        # The samplers only tell flow models apart; every k-diffusion form noises as x0 + sigma * noise.
        return "v" if self.parameterization == "v" else "eps"

    def calculate_input(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x / (_view(sigma, x) ** 2 + self.sigma_data**2).sqrt()

    def calculate_denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s, sd2 = _view(sigma, output), self.sigma_data**2
        kind = self.parameterization
        if kind == "x0":
            return output
        if kind == "v":
            return x * sd2 / (s**2 + sd2) - output * s * self.sigma_data / (s**2 + sd2).sqrt()
        if kind == "edm":
            return x * sd2 / (s**2 + sd2) + output * s * self.sigma_data / (s**2 + sd2).sqrt()
        x0 = x - output * s
        if kind == "lcm":
            # LCM's consistency boundary condition (Luo et al. 2023, eq. 9) with sigma_data 0.5, timesteps x10.
            scaled = _view(self.timestep(torch.as_tensor(sigma).reshape(-1)), output) * 10.0
            c_skip = 0.25 / (scaled**2 + 0.25)
            c_out = scaled / (scaled**2 + 0.25).sqrt()
            return c_out * x0 + c_skip * x
        return x0

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """``latent + sigma * noise``; at full denoise the noise is scaled by ``sqrt(1 + sigma**2)``."""
        s = _view(sigma, noise)
        return latent + noise * ((1.0 + s**2).sqrt() if max_denoise else s)

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _Table:
    """A sigma table (ascending) and the interface values derived from it."""

    sigmas: torch.Tensor
    log_sigmas: torch.Tensor

    def set_sigmas(self, sigmas: torch.Tensor) -> None:
        # The log of the table as computed (float64 for the discrete schedules), then rounded, as ComfyUI's
        # set_sigmas does: the log of the rounded float32 sigmas is one bit off for some steps, which moves every
        # sigma interpolated between them (a "normal" schedule whose timesteps are not whole, i.e. denoise < 1).
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])


class DiscreteSampling(_Table, _Parameterized):
    """ComfyUI's ``ModelSamplingDiscrete`` with ``EPS``, ``V_PREDICTION``, ``X0`` or (``"lcm"``) the 50-step
    distilled table LCM was trained on; ``zsnr`` rescales to zero terminal SNR."""

    def __init__(self, parameterization: str = "eps", zsnr: bool = False, linear_start: float = 0.00085,
                 linear_end: float = 0.012, timesteps: int = 1000) -> None:
        if parameterization not in ("eps", "v", "lcm", "x0"):
            raise ValueError(f"discrete sampling: unknown prediction {parameterization!r}")
        self.parameterization = parameterization
        betas = torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()  # float64: set_sigmas takes its log before rounding
        self.num_timesteps = timesteps
        self.skip_steps = 1
        if parameterization == "lcm":
            # Every 20th training step from the last: the 50 steps LCM distilled (ComfyUI's order of picking).
            original = 50
            self.skip_steps = timesteps // original
            # ComfyUI fills a float32 table with them first, so its log is of the rounded values.
            sigmas = torch.stack([sigmas[timesteps - 1 - k * self.skip_steps] for k in range(original)]).flip(0).float()
        self.set_sigmas(sigmas)
        if zsnr:
            self.set_sigmas(rescale_zero_terminal_snr(self.sigmas))

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The training step whose sigma is nearest in log (ComfyUI rounds; it does not interpolate)."""
        sigma = torch.as_tensor(sigma)
        dists = sigma.float().log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        index = dists.abs().argmin(dim=0).view(sigma.shape)
        return (index * self.skip_steps + (self.skip_steps - 1)).to(sigma.device)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """The sigma at a (fractional) timestep, interpolated in log sigma."""
        timestep = torch.as_tensor(timestep)
        # Indexed on the table's device, returned on the timestep's (ComfyUI's order of moves).
        t = (timestep.float().to(self.log_sigmas.device) - (self.skip_steps - 1)) / self.skip_steps
        t = t.clamp(0, len(self.sigmas) - 1)
        low, high = t.floor().long(), t.ceil().long()
        w = t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * 999.0)))

    def __repr__(self) -> str:
        return f"<DiscreteSampling {self.parameterization}>"


class _Continuous(_Table, _Parameterized):
    """Continuous sigmas between ``sigma_min`` and ``sigma_max``; a log-spaced table for table-reading schedules."""

    def __init__(self, parameterization: str, sigma_min: float, sigma_max: float, sigma_data: float = 1.0) -> None:
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"continuous sampling: unknown prediction {parameterization!r}")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"sigma_min ({sigma_min}) must be above 0 and below sigma_max ({sigma_max})")
        self.parameterization, self.sigma_data = parameterization, float(sigma_data)
        self.set_sigmas(torch.linspace(math.log(sigma_min), math.log(sigma_max), 1000).exp())

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        low = math.log(self.sigma_min)
        return math.exp((math.log(self.sigma_max) - low) * (1.0 - percent) + low)


class ContinuousEDMSampling(_Continuous):
    """ComfyUI's ``ModelSamplingContinuousEDM``: timestep ``log(sigma) / 4`` (Karras et al. 2022's c_noise)."""

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return 0.25 * torch.as_tensor(sigma).log()

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(timestep) / 0.25).exp()


class ContinuousVSampling(_Continuous):
    """ComfyUI's ``ModelSamplingContinuousV``: timestep ``atan(sigma) * 2 / pi`` in 0..1."""

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(sigma).atan() / math.pi * 2

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(timestep) * math.pi / 2).tan()


def time_snr_shift(shift: float, t):
    """SD3's timestep shift ``shift * t / (1 + (shift - 1) * t)`` (Esser et al. 2024, eq. 23)."""
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


def flux_time_shift(mu: float, t):
    """Flux's resolution shift ``e^mu / (e^mu + (1 / t - 1))``."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1))


class _Flow(_Table):
    """Rectified flow (ComfyUI's ``CONST``): ``x = (1 - sigma) * x0 + sigma * noise``, velocity prediction."""

    prediction = "flow"
    multiplier = 1.0

    def calculate_input(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x - output * _view(sigma, output)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        s = _view(sigma, noise)
        return s * noise + (1.0 - s) * latent

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent / (1.0 - _view(sigma, latent))

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(sigma) * self.multiplier

    def _shift(self, t):
        raise NotImplementedError

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return self._shift(torch.as_tensor(timestep, dtype=torch.float32) / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(self._shift(1.0 - percent))


class FlowSampling(_Flow):
    """ComfyUI's ``ModelSamplingDiscreteFlow``: 1000 shifted steps; the network's timestep is ``sigma *
    multiplier`` (1000 for SD3 and Wan, 1 for AuraFlow)."""

    def __init__(self, shift: float = 1.0, multiplier: float = 1000.0, timesteps: int = 1000) -> None:
        self.shift, self.multiplier = float(shift), float(multiplier)
        self.set_sigmas(self.sigma(torch.arange(1, timesteps + 1, dtype=torch.float32) / timesteps * multiplier))

    def _shift(self, t):
        return time_snr_shift(self.shift, t)

    def __repr__(self) -> str:
        return f"<FlowSampling shift {self.shift:g} multiplier {self.multiplier:g}>"


class FluxSampling(_Flow):
    """ComfyUI's ``ModelSamplingFlux``: 10000 steps shifted by ``mu = shift``; timestep = sigma."""

    def __init__(self, shift: float = 1.15, timesteps: int = 10000) -> None:
        self.shift = float(shift)
        self.set_sigmas(self.sigma(torch.arange(1, timesteps + 1, dtype=torch.float32) / timesteps))

    def _shift(self, t):
        return flux_time_shift(self.shift, t)

    def __repr__(self) -> str:
        return f"<FluxSampling shift {self.shift:g}>"
