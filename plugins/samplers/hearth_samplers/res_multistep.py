"""RES multistep: the second-order multistep exponential integrator of Zhang et al. 2023 (arXiv:2308.02157).

Each step after the first combines this step's and the previous step's clean estimates with the exponential
integrator's phi-function weights in ``t = -log(sigma)``; the first step and a step down to 0 are Euler steps.
The ancestral variant steps down to ``sigma_down`` and adds fresh noise up to the next sigma (``eta``). Both the
update and the noise are ComfyUI's, in variance-exploding form for every model (a flow model included, as
ComfyUI applies them), so a workflow gives ComfyUI's image.
"""

from __future__ import annotations

import torch

from .stepping import ancestral_step, gaussian_noise, report


def _phi1(t: torch.Tensor) -> torch.Tensor:
    return torch.expm1(t) / t


def _phi2(t: torch.Tensor) -> torch.Tensor:
    return (_phi1(t) - 1.0) / t


def _res_multistep(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler):
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    old_denoised = old_sigma_down = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        # 0-d tensors, as ComfyUI computes the split, so the floats are its floats.
        sigma_down, up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0 or old_denoised is None:
            x = x + (x - denoised) / sigmas[i] * (sigma_down - sigmas[i])
        else:
            t, t_old, t_next = -sigmas[i].log(), -old_sigma_down.log(), -sigma_down.log()
            t_prev = -sigmas[i - 1].log()
            h = t_next - t
            c2 = (t_prev - t_old) / h
            phi1, phi2 = _phi1(-h), _phi2(-h)
            b1 = torch.nan_to_num(phi1 - phi2 / c2, nan=0.0)
            b2 = torch.nan_to_num(phi2 / c2, nan=0.0)
            x = torch.exp(-h) * x + h * (b1 * denoised + b2 * old_denoised)
        if float(sigmas[i + 1]) > 0 and up:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * up
        old_denoised, old_sigma_down = denoised, sigma_down
    return x


@torch.no_grad()
def sample_res_multistep(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_noise=1.0,
                         noise_sampler=None):
    """RES multistep without noise (Zhang et al. 2023, arXiv:2308.02157)."""
    return _res_multistep(model, x, sigmas, extra_args, callback, 0.0, s_noise, noise_sampler)


@torch.no_grad()
def sample_res_multistep_ancestral(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0,
                                   s_noise=1.0, noise_sampler=None):
    """RES multistep to sigma_down, then ancestral noise (``eta``)."""
    return _res_multistep(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler)
