"""CFG++ samplers (Chung et al. 2024, arXiv:2406.08070): the guided clean estimate, but the noise direction of the
negative (unconditional) prediction, which keeps guided sampling on the data manifold at low guidance scales.

ComfyUI's ``euler_cfg_pp``, ``euler_ancestral_cfg_pp``, ``dpmpp_2s_ancestral_cfg_pp``, ``dpmpp_2m_cfg_pp``, ``res_multistep_cfg_pp``,
``res_multistep_ancestral_cfg_pp`` and ``gradient_estimation_cfg_pp``. Each asks the guidance for the negative
prediction of every step through a post-CFG function (:func:`watch_negative`), which also makes the negative be
evaluated at cfg 1, as ComfyUI's do.
"""

from __future__ import annotations

from typing import Any

import torch

from .res_multistep import _phi1, _phi2
from .stepping import ancestral_step, gaussian_noise, is_flow, report, to_d


def uses_negative(fn):
    fn.cfg_pp = True
    return fn


def watch_negative(model: Any) -> dict[str, torch.Tensor]:
    """A dict whose ``"uncond"`` is the negative prediction of the latest model call (the guided one where the
    denoiser has no guidance to ask, which is CFG++ at cfg 1)."""
    seen: dict[str, torch.Tensor] = {}

    def record(args: dict[str, Any]) -> torch.Tensor:
        seen["uncond"] = args["uncond_denoised"]
        return args["denoised"]

    obj = model
    for _ in range(8):
        if callable(getattr(obj, "add_post_cfg_function", None)):
            obj.add_post_cfg_function(record)
            return seen
        obj = getattr(obj, "denoiser", None)
        if obj is None:
            break
    seen["fallback"] = torch.ones(())
    return seen


def _negative(seen: dict[str, torch.Tensor], denoised: torch.Tensor) -> torch.Tensor:
    return denoised if "fallback" in seen else seen["uncond"]


@uses_negative
@torch.no_grad()
def sample_euler_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None):
    """Euler with CFG++: ``x = alpha_t * denoised + sigma_next * d_uncond`` (ComfyUI's: the ancestral form at eta 0)."""
    return sample_euler_ancestral_cfg_pp(model, x, sigmas, extra_args=extra_args, callback=callback, eta=0.0,
                                         s_noise=0.0)


@uses_negative
@torch.no_grad()
def sample_euler_ancestral_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0,
                                  s_noise=1.0, noise_sampler=None):
    """Ancestral Euler with CFG++, in the latent's signal scale alpha (1, or 1 - sigma for flow models).

    Float32 0-d tensors in ComfyUI's order of operations, so the latents are ComfyUI's to the bit; a flow model at
    sigma 1 (pure noise, alpha 0) takes, by the same arithmetic, the whole step to the estimate and renoises fully.
    """
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    seen = watch_negative(model)
    flow = is_flow(model)
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if float(sigmas[i + 1]) == 0:
            x = denoised
            continue
        # alpha = sigma * e^(half-log-SNR), computed as ComfyUI computes it.
        alpha_s, alpha_t = (sigma * (sigma.logit().neg() if flow else sigma.log().neg()).exp()
                            for sigma in (sigmas[i], sigmas[i + 1]))
        d = to_d(x, sigmas[i], alpha_s * _negative(seen, denoised))
        down, up = ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta)
        x = alpha_t * denoised + (alpha_t * down) * d
        if eta > 0 and s_noise > 0:
            x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * up
    return x


@uses_negative
@torch.no_grad()
def sample_dpmpp_2m_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None):
    """DPM-Solver++(2M) with CFG++: the exponential-integrator step taken from the negative's estimate."""
    extra_args = {} if extra_args is None else extra_args
    seen = watch_negative(model)
    s_in = x.new_ones([x.shape[0]])
    old_uncond = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        uncond = _negative(seen, denoised)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
        h = t_next - t
        mix = -torch.exp(-h) * uncond
        if old_uncond is not None and float(sigmas[i + 1]) != 0:
            r = (t + sigmas[i - 1].log()) / h
            mix = mix - torch.expm1(-h) * (1 / (2 * r)) * (denoised - old_uncond)
        x = denoised + mix + torch.exp(-h) * x
        old_uncond = uncond
    return x


@uses_negative
@torch.no_grad()
def sample_dpmpp_2s_ancestral_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0,
                                     s_noise=1.0, noise_sampler=None):
    """DPM-Solver++(2S) ancestral with CFG++: both stages start from the latent shifted by the guidance
    (``x + denoised - uncond``). Variance-exploding steps and noise for every model, a flow model included, as
    ComfyUI's."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    seen = watch_negative(model)
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        uncond = _negative(seen, denoised)
        x = _dpmpp_2s_cfg_pp_step(model, x, sigmas, i, denoised, uncond, seen, eta, s_in, extra_args, callback)
        if float(sigmas[i + 1]) > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * ancestral_step(sigmas[i], sigmas[i + 1], eta)[1]
    return x


def _dpmpp_2s_cfg_pp_step(model, x, sigmas, i, denoised, uncond, seen, eta, s_in, extra_args, callback):
    """The deterministic part of a variance-exploding DPM-Solver++(2S) CFG++ step, in float32 0-d tensors in
    ComfyUI's order. As in ComfyUI, the second stage shifts x by the first estimate minus the negative of the
    latest model call (the midpoint's)."""
    sigma_down, _ = ancestral_step(sigmas[i], sigmas[i + 1], eta)
    report(callback, x, i, sigmas[i], sigmas[i], denoised)
    if sigma_down == 0:
        return denoised + to_d(x, sigmas[i], uncond) * sigma_down
    t, t_next = sigmas[i].log().neg(), sigma_down.log().neg()
    h = t_next - t
    t_mid = t + 0.5 * h
    x_2 = (t_mid.neg().exp() / t.neg().exp()) * (x + (denoised - uncond)) - (-h * 0.5).expm1() * denoised
    denoised_2 = model(x_2, t_mid.neg().exp() * s_in, **extra_args)
    uncond = _negative(seen, denoised_2)
    return (t_next.neg().exp() / t.neg().exp()) * (x + (denoised - uncond)) - (-h).expm1() * denoised_2


def _res_multistep_cfg_pp(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler):
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    seen = watch_negative(model)
    s_in = x.new_ones([x.shape[0]])
    old_denoised = old_sigma_down = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        uncond = _negative(seen, denoised)
        sigma_down, up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0 or old_denoised is None:
            x = denoised + to_d(x, sigmas[i], uncond) * sigma_down
        else:
            t, t_old, t_next = -sigmas[i].log(), -old_sigma_down.log(), -sigma_down.log()
            h = t_next - t
            c2 = (-sigmas[i - 1].log() - t_old) / h
            phi1, phi2 = _phi1(-h), _phi2(-h)
            b1 = torch.nan_to_num(phi1 - phi2 / c2, nan=0.0)
            b2 = torch.nan_to_num(phi2 / c2, nan=0.0)
            x = x + (denoised - uncond)
            x = torch.exp(-h) * x + h * (b1 * uncond + b2 * old_denoised)
        if float(sigmas[i + 1]) > 0 and up:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * up
        old_denoised, old_sigma_down = uncond, sigma_down
    return x


@uses_negative
@torch.no_grad()
def sample_res_multistep_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_noise=1.0,
                                noise_sampler=None):
    """RES multistep with CFG++."""
    return _res_multistep_cfg_pp(model, x, sigmas, extra_args, callback, 0.0, s_noise, noise_sampler)


@uses_negative
@torch.no_grad()
def sample_res_multistep_ancestral_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None,
                                          eta=1.0, s_noise=1.0, noise_sampler=None):
    """Ancestral RES multistep with CFG++."""
    return _res_multistep_cfg_pp(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler)


@uses_negative
@torch.no_grad()
def sample_gradient_estimation_cfg_pp(model, x, sigmas, *, extra_args=None, callback=None, disable=None,
                                      ge_gamma=2.0):
    """Gradient estimation with CFG++: the direction from the negative's estimate, the step from the guided one."""
    extra_args = {} if extra_args is None else extra_args
    seen = watch_negative(model)
    s_in = x.new_ones([x.shape[0]])
    old_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        d = to_d(x, sigmas[i], _negative(seen, denoised))
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if float(sigmas[i + 1]) == 0:
            x = denoised
        else:
            x = denoised + d * sigmas[i + 1]
            if i >= 1:
                x = x + (ge_gamma - 1) * (d - old_d) * dt
        old_d = d
    return x

