"""``comfy.model_sampling``: noise schedules and prediction types, with ComfyUI's math, as packs combine them.

ComfyUI builds a model's sampling object from two parts: a schedule (``ModelSamplingDiscrete``,
``ModelSamplingContinuousEDM``, ``ModelSamplingDiscreteFlow``...: ``sigmas``, ``sigma_min``/``sigma_max``,
``timestep(sigma)``, ``sigma(timestep)``, ``percent_to_sigma``) and a prediction type (``EPS``, ``V_PREDICTION``,
``CONST``...: ``calculate_input``, ``calculate_denoised``, ``noise_scaling``). Packs do the same
(``class ModelSamplingAdvanced(ModelSamplingDiscrete, V_PREDICTION)``) and hand the result to
``model.add_object_patch("model_sampling", ...)``.

The objects also answer Hearth's model-sampling protocol (docs/data-types.md): each prediction type says its
``prediction`` (``"eps"``, ``"v"``, ``"flow"``...), so Hearth's samplers and SD models sample with an object a pack
built. As in ComfyUI, a discrete schedule's ``timestep(sigma)`` is the nearest training step.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def _settings(model_config: Any) -> dict[str, Any]:
    # Hearth's model views carry a model_config without sampling_settings: they use the defaults.
    return dict(getattr(model_config, "sampling_settings", None) or {}) if model_config is not None else {}


def _per_item(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(sigma.shape[:1] + (1,) * (like.ndim - 1))


# -- prediction types --------------------------------------------------------------------------------------------

class EPS:
    """The network predicts the noise: ``denoised = x - output * sigma``; the input is scaled to unit variance."""

    prediction = "eps"
    sigma_data = 1.0

    def calculate_input(self, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        sigma = _per_item(sigma, noise)
        return noise / (sigma ** 2 + self.sigma_data ** 2) ** 0.5

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        return model_input - model_output * _per_item(sigma, model_output)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent_image: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """The latent noised to ``sigma``; at the start of a full denoise, ``sqrt(1 + sigma^2)`` times the noise."""
        sigma = _per_item(sigma, noise)
        scale = torch.sqrt(1.0 + sigma ** 2.0) if max_denoise else sigma
        return noise * scale + latent_image

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent


class V_PREDICTION(EPS):  # noqa: N801 - ComfyUI's name
    """The network predicts ``v`` (Salimans & Ho 2022), as SD2's 768-v models do."""

    prediction = "v"

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        sigma = _per_item(sigma, model_output)
        sd2 = self.sigma_data ** 2
        return model_input * sd2 / (sigma ** 2 + sd2) - model_output * sigma * self.sigma_data / (sigma ** 2 + sd2) ** 0.5


class EDM(V_PREDICTION):
    """Karras et al. 2022's preconditioning (the output's sign flipped from ``V_PREDICTION``)."""

    prediction = "edm"

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        sigma = _per_item(sigma, model_output)
        sd2 = self.sigma_data ** 2
        return model_input * sd2 / (sigma ** 2 + sd2) + model_output * sigma * self.sigma_data / (sigma ** 2 + sd2) ** 0.5


class CONST:
    """Rectified flow: ``x = sigma * noise + (1 - sigma) * x0``, the network predicts the velocity."""

    prediction = "flow"
    sigma_data = 1.0

    def calculate_input(self, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        return model_input - model_output * _per_item(sigma, model_output)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent_image: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        sigma = _per_item(sigma, noise)
        return sigma * noise + (1.0 - sigma) * latent_image

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent / (1.0 - _per_item(sigma, latent))


class X0(EPS):
    """The network predicts the clean latent itself."""

    prediction = "x0"

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        return model_output


class LCM(EPS):
    """Latent consistency models: the eps prediction's clean latent blended with the input by consistency
    boundary conditions at ``sigma_data = 0.5`` and 10x timestep scaling (Luo et al. 2023). ComfyUI keeps this
    class in ``comfy_extras.nodes_model_advanced``; it is here so that module can offer the same class."""

    def calculate_denoised(self, sigma: torch.Tensor, model_output: torch.Tensor,
                           model_input: torch.Tensor) -> torch.Tensor:
        timestep = _per_item(self.timestep(sigma), model_output).to(model_output.dtype)
        x0 = model_input - model_output * _per_item(sigma, model_output)
        sigma_data = 0.5
        scaled = timestep * 10.0
        c_skip = sigma_data ** 2 / (scaled ** 2 + sigma_data ** 2)
        c_out = scaled / (scaled ** 2 + sigma_data ** 2) ** 0.5
        return c_out * x0 + c_skip * model_input


class IMG_TO_IMG(X0):  # noqa: N801 - ComfyUI's name
    """An image-to-image model: sees the latent unscaled and predicts the result."""

    def calculate_input(self, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise


# -- schedules ---------------------------------------------------------------------------------------------------

def make_beta_schedule(schedule: str, n_timestep: int, linear_start: float = 1e-4, linear_end: float = 2e-2,
                       cosine_s: float = 8e-3) -> torch.Tensor:
    """The training betas of a DDPM schedule, float64 (the schedules ComfyUI's ``beta_schedule`` names)."""
    if schedule == "linear":  # "scaled linear": linear in sqrt(beta), SD's
        return torch.linspace(linear_start ** 0.5, linear_end ** 0.5, n_timestep, dtype=torch.float64) ** 2
    if schedule == "cosine":  # Nichol & Dhariwal 2021
        steps = torch.arange(n_timestep + 1, dtype=torch.float64) / n_timestep + cosine_s
        alphas = torch.cos(steps / (1 + cosine_s) * math.pi / 2).pow(2)
        alphas = alphas / alphas[0]
        return (1 - alphas[1:] / alphas[:-1]).clamp(0, 0.999)
    if schedule == "squaredcos_cap_v2":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - alpha_bar((i + 1) / n_timestep) / alpha_bar(i / n_timestep), 0.999)
                             for i in range(n_timestep)], dtype=torch.float64)
    if schedule == "sqrt_linear":
        return torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64)
    if schedule == "sqrt":
        return torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64) ** 0.5
    raise ValueError(f"beta schedule {schedule!r} is unknown: linear, cosine, squaredcos_cap_v2, sqrt_linear, sqrt")


def rescale_zero_terminal_snr_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """Sigmas whose last step has (almost) zero signal (Lin et al. 2023, "Common Diffusion Noise Schedules...")."""
    alphas_bar_sqrt = (1 / (sigmas * sigmas + 1)).sqrt()
    first, last = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * (first / (first - last))
    alphas_bar = alphas_bar_sqrt ** 2
    alphas_bar[-1] = 4.8973451890853435e-08  # ComfyUI's floor: sigma_max stays finite
    return ((1 - alphas_bar) / alphas_bar) ** 0.5


class _SigmaTable(torch.nn.Module):
    """A schedule kept as its ascending table of sigmas (the ``sigmas`` buffer): its ends are the sigma range."""

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]


class ModelSamplingDiscrete(_SigmaTable):
    """The discrete 1000-step DDPM schedule of SD1/SD2/SDXL (``sampling_settings``: ``beta_schedule``,
    ``linear_start``, ``linear_end``, ``timesteps``, ``zsnr``)."""

    def __init__(self, model_config: Any = None, zsnr: bool | None = None) -> None:
        super().__init__()
        settings = _settings(model_config)
        if zsnr is None:
            zsnr = settings.get("zsnr", False)
        self._register_schedule(given_betas=None, beta_schedule=settings.get("beta_schedule", "linear"),
                                timesteps=settings.get("timesteps", 1000),
                                linear_start=settings.get("linear_start", 0.00085),
                                linear_end=settings.get("linear_end", 0.012), cosine_s=8e-3, zsnr=zsnr)
        self.sigma_data = 1.0

    def _register_schedule(self, given_betas: Any = None, beta_schedule: str = "linear", timesteps: int = 1000,
                           linear_start: float = 1e-4, linear_end: float = 2e-2, cosine_s: float = 8e-3,
                           zsnr: bool = False) -> None:
        if given_betas is not None:
            betas = torch.as_tensor(given_betas, dtype=torch.float64)
        else:
            betas = make_beta_schedule(beta_schedule, timesteps, linear_start, linear_end, cosine_s)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.num_timesteps = int(betas.shape[0])
        self.linear_start, self.linear_end, self.zsnr = linear_start, linear_end, zsnr
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        if zsnr:
            sigmas = rescale_zero_terminal_snr_sigmas(sigmas)
        self.set_sigmas(sigmas)

    def set_sigmas(self, sigmas: torch.Tensor) -> None:
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The training step whose sigma is nearest ``sigma`` (in log space)."""
        distances = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return distances.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """The sigma at a (fractional) step, interpolated in log sigma."""
        t = timestep.float().to(self.log_sigmas.device).clamp(0, len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma(torch.tensor((1.0 - percent) * 999.0)).item()


class ModelSamplingContinuousEDM(_SigmaTable):
    """A continuous log-linear schedule between ``sigma_min`` and ``sigma_max`` (EDM; ``timestep = log(sigma)/4``)."""

    def __init__(self, model_config: Any = None) -> None:
        super().__init__()
        settings = _settings(model_config)
        self.set_parameters(settings.get("sigma_min", 0.002), settings.get("sigma_max", 120.0),
                            settings.get("sigma_data", 1.0))

    def set_parameters(self, sigma_min: float, sigma_max: float, sigma_data: float) -> None:
        self.sigma_data = sigma_data
        sigmas = torch.linspace(math.log(sigma_min), math.log(sigma_max), 1000).exp()
        self.register_buffer("sigmas", sigmas)
        self.register_buffer("log_sigmas", sigmas.log())

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return 0.25 * sigma.log()

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return (timestep / 0.25).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        low = math.log(float(self.sigma_min))
        return math.exp((math.log(float(self.sigma_max)) - low) * (1.0 - percent) + low)


class ModelSamplingContinuousV(ModelSamplingContinuousEDM):
    """A continuous schedule whose timestep is ``atan(sigma) * 2 / pi``."""

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma.atan() / math.pi * 2

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return (timestep * math.pi / 2).tan()


class StableCascadeSampling(ModelSamplingDiscrete):
    """Stable Cascade's continuous cosine schedule (Nichol & Dhariwal 2021) on t in (0, 1], with an optional
    shift of the log signal-to-noise ratio by ``2 log(1 / shift)`` (``sampling_settings["shift"]``)."""

    def __init__(self, model_config: Any = None) -> None:
        super().__init__()
        self.set_parameters(_settings(model_config).get("shift", 1.0))

    def set_parameters(self, shift: float = 1.0, cosine_s: float = 8e-3) -> None:
        self.shift = shift
        self.cosine_s = torch.tensor(cosine_s)
        self._init_alpha_cumprod = torch.cos(self.cosine_s / (1 + self.cosine_s) * torch.pi * 0.5) ** 2
        self.num_timesteps = 10000  # a table of sigmas, for the schedulers that pick from one
        self.set_sigmas(self.sigma(torch.arange(1, self.num_timesteps + 1, dtype=torch.float32) / self.num_timesteps))

    def sigma(self, timestep: Any) -> torch.Tensor:
        t = torch.as_tensor(timestep, dtype=torch.float32)
        alpha_cumprod = torch.cos((t + self.cosine_s) / (1 + self.cosine_s) * torch.pi * 0.5) ** 2
        alpha_cumprod = alpha_cumprod / self._init_alpha_cumprod
        if self.shift != 1.0:
            log_snr = (alpha_cumprod / (1 - alpha_cumprod)).log() + 2 * math.log(1.0 / self.shift)
            alpha_cumprod = log_snr.sigmoid()
        alpha_cumprod = alpha_cumprod.clamp(0.0001, 0.9999)
        return ((1 - alpha_cumprod) / alpha_cumprod) ** 0.5

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The t of ``sigma`` on the unshifted cosine schedule (what the network is conditioned on)."""
        var = (1 / (sigma * sigma + 1)).clamp(0, 1.0)
        s, first = self.cosine_s.to(var.device), self._init_alpha_cumprod.to(var.device)
        return ((var * first) ** 0.5).acos() / (torch.pi * 0.5) * (1 + s) - s

    def percent_to_sigma(self, percent: float) -> Any:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma(torch.tensor(1.0 - percent))


def time_snr_shift(alpha: float, t: Any) -> Any:
    """SD3's timestep shift: ``alpha * t / (1 + (alpha - 1) * t)`` (``t`` unchanged at ``alpha == 1``)."""
    if alpha == 1.0:
        return t
    return alpha * t / (1 + (alpha - 1) * t)


def flux_time_shift(mu: float, sigma: float, t: Any) -> Any:
    """Flux's resolution-dependent shift: ``e^mu / (e^mu + (1/t - 1)^sigma)``."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


class ModelSamplingDiscreteFlow(_SigmaTable):
    """SD3's flow schedule: ``sigma = shift(t / multiplier)`` over ``timesteps`` steps (``shift``, ``multiplier``)."""

    def __init__(self, model_config: Any = None) -> None:
        super().__init__()
        settings = _settings(model_config)
        self.set_parameters(shift=settings.get("shift", 1.0), multiplier=settings.get("multiplier", 1000))

    def set_parameters(self, shift: float = 1.0, timesteps: int = 1000, multiplier: float = 1000) -> None:
        self.shift = shift
        self.multiplier = multiplier
        self.register_buffer("sigmas", self.sigma((torch.arange(1, timesteps + 1, 1) / timesteps) * multiplier))

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma * self.multiplier

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return time_snr_shift(self.shift, timestep / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(time_snr_shift(self.shift, 1.0 - percent))


class ModelSamplingFlux(_SigmaTable):
    """Flux's flow schedule: ``sigma = flux_time_shift(shift, 1, t)`` with ``t`` in (0, 1] (``shift``)."""

    def __init__(self, model_config: Any = None) -> None:
        super().__init__()
        self.set_parameters(shift=_settings(model_config).get("shift", 1.15))

    def set_parameters(self, shift: float = 1.15, timesteps: int = 10000) -> None:
        self.shift = shift
        self.register_buffer("sigmas", self.sigma(torch.arange(1, timesteps + 1, 1) / timesteps))

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return flux_time_shift(self.shift, 1.0, timestep)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(flux_time_shift(self.shift, 1.0, 1.0 - percent))


class ModelSamplingDiscreteDistilled(ModelSamplingDiscrete):
    """A distilled model's discrete schedule: ``original_timesteps`` evenly skipped steps of the 1000 (LCM: 50),
    timesteps reported on the full 1000-step scale. From ``comfy_extras.nodes_model_advanced`` in ComfyUI."""

    original_timesteps = 50

    def __init__(self, model_config: Any = None, zsnr: bool | None = None) -> None:
        super().__init__(model_config, zsnr=zsnr)
        self.skip_steps = self.num_timesteps // self.original_timesteps
        kept = [self.sigmas[self.num_timesteps - 1 - i * self.skip_steps] for i in range(self.original_timesteps)]
        self.set_sigmas(torch.stack(kept[::-1]).float())

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        distances = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        nearest = distances.abs().argmin(dim=0).view(sigma.shape)
        return (nearest * self.skip_steps + (self.skip_steps - 1)).to(sigma.device)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        t = ((timestep.float().to(self.log_sigmas.device) - (self.skip_steps - 1)) / self.skip_steps)
        t = t.clamp(0, len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp().to(timestep.device)
