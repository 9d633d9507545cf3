"""Running a sampler on a MODEL: SAMPLER and GUIDER objects, KSampler's sigmas, noise, inpainting and progress.

The flow follows ComfyUI's so that one workflow takes the same steps in both: sigmas from a schedule (the tail
of a longer one for ``denoise < 1``, cut at ``start``/``end`` steps), the start latent ``latent + noise *
sigma_0`` (``sqrt(1 + sigma_0**2)`` at full denoise), a guided denoiser, masked by the LATENT's ``noise_mask``
when inpainting, and one progress event with a preview per step.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from hearth.core import context

from .brownian import BrownianTreeNoise
from .guidance import Guidance, model_options_of
from .installed import lookup
from .noise import latent_mask, prepare_noise
from .preview import progress_preview
from .regions import resolve, share_areas, share_control_with_negative
from .schedules import compute_sigmas
from .stepping import append_dims, seeded_noise

# Samplers that evaluate the model between two sigmas: ComfyUI gives them one step more and drops the last
# sigma before 0, so their final step is not wasted on a tiny interval.
DISCARD_PENULTIMATE_SIGMA = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


class Sampler:
    """SAMPLER: a sampler function with its options, called with k-diffusion's signature."""

    def __init__(self, function: Callable[..., torch.Tensor], name: str = "", options: dict[str, Any] | None = None):
        self.function, self.name, self.options = function, name, dict(options or {})
        self.noise = getattr(function, "noise", "gaussian")  # "brownian" for the SDE solvers
        # ComfyUI's ddim re-noises the kept part of an inpainted latent with fresh noise (seed + 1), not the initial.
        self.inpaint_random = getattr(function, "inpaint_random", False)
        parameters = inspect.signature(function).parameters
        self.takes_noise = "noise_sampler" in parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    def sample(self, model_fn, x, sigmas, *, extra_args=None, callback=None, disable=None, noise_sampler=None):
        kwargs = dict(self.options)
        if noise_sampler is not None and self.takes_noise:
            kwargs["noise_sampler"] = noise_sampler
        return self.function(model_fn, x, sigmas, extra_args=extra_args, callback=callback, disable=disable, **kwargs)

    def __repr__(self) -> str:
        return f"<Sampler {self.name or self.function.__name__}>"


def sampler_object(name: str) -> Sampler:
    return Sampler(lookup("sampler", name), name)


def calculate_sigmas(model_sampling: Any, scheduler: str, steps: int, sampler: str | None = None) -> torch.Tensor:
    """``steps + 1`` sigmas of the named schedule for a model (``sampler`` decides the penultimate-sigma rule)."""
    discard = sampler in DISCARD_PENULTIMATE_SIGMA
    sigmas = compute_sigmas(lookup("scheduler", scheduler), model_sampling, steps + discard)
    return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas


def ksampler_sigmas(model_sampling: Any, scheduler: str, sampler: str, steps: int, denoise: float = 1.0,
                    start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> torch.Tensor:
    """KSampler's sigmas: with ``denoise < 1`` the last ``steps`` of a ``steps / denoise`` schedule."""
    if denoise > 0.9999:
        sigmas = calculate_sigmas(model_sampling, scheduler, steps, sampler)
    elif denoise <= 0.0:
        return torch.zeros(0)
    else:
        sigmas = calculate_sigmas(model_sampling, scheduler, int(steps / denoise), sampler)[-(steps + 1):]
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[:last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        # Starting at or past the end leaves nothing to do: the caller returns its latent unchanged.
        sigmas = sigmas[start_step:] if start_step < len(sigmas) - 1 else torch.zeros(0)
    return sigmas


def noised_latent(sampling: Any, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                  max_denoise: bool = False) -> torch.Tensor:
    """``latent`` noised to ``sigma``: the model sampling's ``noise_scaling(sigma, noise, latent, max_denoise)`` when
    it has one taking ``max_denoise`` (a flow model's ``sigma * noise + (1 - sigma) * latent``), else k-diffusion's
    ``latent + sigma * noise``, with ``sqrt(1 + sigma**2)`` for the noise at full denoise."""
    scaling = getattr(sampling, "noise_scaling", None)
    if scaling is not None and "max_denoise" in inspect.signature(scaling).parameters:
        return scaling(sigma, noise, latent, max_denoise=max_denoise)
    if max_denoise:
        # sqrt(1 + sigma**2) in float32, as ComfyUI's EPS.noise_scaling computes it (a float64 factor can be one
        # bit off).
        return latent + noise * torch.sqrt(1.0 + sigma.reshape(-1)[0].float() ** 2.0)
    return latent + noise * append_dims(sigma.reshape(-1).to(noise.dtype), noise.ndim)


class Inpainting:
    """The denoiser restricted to ``mask`` (1 = regenerate): outside it the original latent, noised to the current
    sigma going in and clean coming out, so the sampler sees a consistent image at every step.

    ``mask_function`` is a MODEL's ``denoise_mask_function`` (ComfyUI's): called each step as
    ``fn(sigma, mask, extra_options={"model": denoiser, "sigmas": sigmas})``, it returns the mask for that step
    (DifferentialDiffusion thresholds a soft mask by the progress through ``sigmas``).
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], latent: torch.Tensor, noise: torch.Tensor,
                 mask: torch.Tensor, sampling: Any = None, mask_function: Callable[..., torch.Tensor] | None = None,
                 sigmas: torch.Tensor | None = None) -> None:
        self.denoiser, self.latent, self.noise, self.mask, self.sampling = denoiser, latent, noise, mask, sampling
        self.mask_function, self.sigmas = mask_function, sigmas
        self.keep = 1.0 - mask

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra: Any) -> torch.Tensor:
        mask, keep = self.mask, self.keep
        if self.mask_function is not None:
            mask = self.mask_function(sigma, self.mask, extra_options={"model": self.denoiser, "sigmas": self.sigmas})
            if not isinstance(mask, torch.Tensor) or mask.shape != self.mask.shape:
                got = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise ValueError(f"the MODEL's denoise_mask_function returned {got}, not a mask of shape "
                                 f"{list(self.mask.shape)}: fix or remove the node that set it")
            keep = 1.0 - mask
        noised = noised_latent(self.sampling, sigma.reshape(-1).to(x.dtype), self.noise, self.latent)
        out = self.denoiser(x * mask + noised * keep, sigma, **extra)
        return out * mask + self.latent * keep


def fix_empty_latent_channels(model: Any, latent: torch.Tensor) -> torch.Tensor:
    """An empty latent made for another channel count becomes an empty latent of the model's."""
    channels = getattr(model, "latent_channels", latent.shape[1])
    if latent.shape[1] != channels and not torch.count_nonzero(latent):
        return torch.zeros((latent.shape[0], channels, *latent.shape[2:]), dtype=latent.dtype, device=latent.device)
    return latent


class Guider:
    """GUIDER: a model with its conditionings and guidance scales, which samples a latent with any sampler."""

    def __init__(self, model: Any, positive: list, negative: list | None = None, cfg: float = 1.0,
                 middle: list | None = None, cfg_2: float = 1.0, style: str = "regular") -> None:
        self.model, self.positive, self.negative, self.middle = model, positive, negative, middle
        self.cfg, self.cfg_2, self.style = cfg, cfg_2, style

    def _model_calls(self, sampler: Any = None) -> int:
        # A CFG++ sampler has the negative evaluated at every step, cfg 1 included.
        keep = model_options_of(self.model).get("disable_cfg1_optimization", False) or getattr(
            getattr(sampler, "function", None), "cfg_pp", False)
        negative = self.negative is not None and (keep or not math.isclose(self.cfg, 1.0))
        return 1 + negative + (self.middle is not None)

    def sample(self, noise: torch.Tensor, latent_image: torch.Tensor, sampler: Sampler, sigmas: torch.Tensor,
               denoise_mask: torch.Tensor | None = None, callback: Callable[..., None] | None = None,
               disable_pbar: bool = False, seed: int | None = None) -> torch.Tensor:
        """Sample from ``latent_image`` (raw) plus ``noise`` along ``sigmas``; returns a raw latent."""
        if len(sigmas) == 0:
            return latent_image
        model = self.model
        shape = tuple(noise.shape)
        device = model.prepare((shape[0] * self._model_calls(sampler), *shape[1:]))
        sampling = model.sampling
        sigmas = sigmas.to(device, torch.float32)
        latent = model.process_latent_in(latent_image.to(device, torch.float32))
        noise = noise.to(device, torch.float32)

        mask = None if denoise_mask is None else latent_mask(denoise_mask, noise.shape, device)
        # What ComfyUI hands a model's extra_conds besides the conditioning: the seed (unCLIP's noise
        # augmentation), the scaled input latent and the inpainting mask (an inpainting UNet's concat input).
        extra: dict[str, Any] = {"seed": 0 if seed is None else seed, "latent_image": latent}
        if mask is not None:
            extra["denoise_mask"] = mask

        def regions(conditioning, **override):
            if conditioning is None:
                return None
            found = resolve(conditioning, noise.shape, sampling, device)
            for region in found:
                region.model_options.update(extra)
                region.model_options.update(override)
            return found

        negative = self.negative
        if negative is not None:
            negative = share_control_with_negative(self.positive, negative)
        sides = {"positive": regions(self.positive), "middle": regions(self.middle, prompt_type="negative"),
                 "negative": regions(negative)}
        share_areas(*(found for found in sides.values() if found is not None))
        denoiser: Callable[..., torch.Tensor] = Guidance(
            model, sides["positive"], sides["negative"], self.cfg, sides["middle"], self.cfg_2, self.style)
        if mask is not None:
            kept_noise = noise
            if getattr(sampler, "inpaint_random", False):
                generator = torch.Generator("cpu").manual_seed(((41 if seed is None else seed) + 1) % 2**64)
                kept_noise = torch.randn(noise.shape, generator=generator).to(noise.dtype).to(noise.device)
            denoiser = Inpainting(denoiser, latent, kept_noise, mask, sampling,
                                  model_options_of(model).get("denoise_mask_function"), sigmas)
        sigma_0 = float(sigmas[0])
        full = sigma_0 > float(sampling.sigma_max) or math.isclose(sigma_0, float(sampling.sigma_max), rel_tol=1e-5)
        x = noised_latent(sampling, sigmas[:1], noise, latent, max_denoise=full)
        noise_sampler = _noise_sampler(sampler, x, sigmas, seed)
        total = len(sigmas) - 1

        def on_step(info: dict[str, Any]) -> None:
            if callback is not None:
                callback(info["i"], info["denoised"], info["x"], total)

        samples = sampler.sample(denoiser, x, sigmas, extra_args={}, callback=on_step, disable=disable_pbar,
                                 noise_sampler=noise_sampler)
        return model.process_latent_out(samples).to(latent_image.device)


def _noise_sampler(sampler: Any, x: torch.Tensor, sigmas: torch.Tensor, seed: int | None):
    """The step noise ComfyUI's samplers make for themselves from the ``seed`` in their ``extra_args``.

    The SDE solvers get a Brownian tree over the schedule's positive sigmas (drawn on the CPU, or on the latent's
    device for the ``_gpu`` variants); every other sampler :func:`seeded_noise`. ``seed`` is the sampling seed
    (KSampler's, the NOISE's); :func:`seeded_noise` says why the CPU's generator takes ``seed + 1``.
    """
    seed = (0 if seed is None else int(seed)) % 2**64
    kind = getattr(sampler, "noise", "gaussian")
    positive = sigmas[sigmas > 0]
    if kind in ("brownian", "brownian_device") and len(positive) and float(positive.min()) < float(sigmas.max()):
        return BrownianTreeNoise(x, positive.min(), sigmas.max(), seed, cpu=kind == "brownian")
    return seeded_noise(x, seed)


def progress_callback(model: Any = None, x0_output: dict[str, torch.Tensor] | None = None) -> Callable[..., None]:
    """A sampling callback that reports progress (with a latent preview) and keeps the last clean estimate.

    ``hearth.core.context.progress`` raises when the user interrupted, which stops sampling at that step.
    """
    family = str(getattr(model, "family", "") or "")

    def report(step: int, x0: torch.Tensor, x: torch.Tensor, total: int) -> None:
        if x0_output is not None:
            x0_output["x0"] = x0
        # Outside a running prompt nobody receives the preview: skip making it.
        preview = progress_preview(x0, family) if context.current() is not None else None
        # Adaptive samplers choose their own step count; the bar stops at full rather than running past it.
        context.progress(min(step + 1, total), total, preview)

    return report


def common_ksampler(model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                    positive: list, negative: list, latent: dict[str, Any], denoise: float = 1.0,
                    disable_noise: bool = False, start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> dict[str, Any]:
    """What KSampler and KSamplerAdvanced run: a LATENT in, the sampled LATENT (same keys) out."""
    latent_image = fix_empty_latent_channels(model, latent["samples"])
    if disable_noise:
        noise = torch.zeros(latent_image.shape, dtype=latent_image.dtype)
    else:
        noise = prepare_noise(latent_image, seed, latent.get("batch_index"))
    sigmas = ksampler_sigmas(model.sampling, scheduler, sampler_name, steps, denoise, start_step, last_step,
                             force_full_denoise)
    guider = Guider(model, positive, negative, cfg)
    samples = guider.sample(noise, latent_image, sampler_object(sampler_name), sigmas,
                            denoise_mask=latent.get("noise_mask"), callback=progress_callback(model), seed=seed)
    out = dict(latent)
    out["samples"] = samples
    return out
