"""DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095): data-prediction solvers, singlestep 2S and multistep 2M.

In lambda = -log sigma the data-prediction ODE has the exact linear part ``sigma_next / sigma * x``; the solvers
differ in how they approximate the denoised term over the step. Since ``1 - e^-h = 1 - sigma_next / sigma``,
each update is a linear interpolation between that term and ``x`` (one ``torch.lerp``).
"""

from __future__ import annotations

import torch

from .stepping import (
    ancestral_step,
    flow_ancestral_split,
    gaussian_noise,
    is_flow,
    report,
    to_d,
)


@torch.no_grad()
def sample_dpmpp_2s_ancestral(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0,
                              s_noise=1.0, noise_sampler=None):
    """DPM-Solver++(2S) (Algorithm 1 of Lu et al. 2022b, r = 1/2) down to sigma_down, then ancestral noise.

    A flow model takes the midpoint in its own half-log-SNR and the rectified-flow ancestral split."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    if is_flow(model):
        return _dpmpp_2s_ancestral_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        # Float32 0-d tensors in ComfyUI's order of operations, so the latents are ComfyUI's to the bit.
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            # The midpoint in t = -log(sigma) between sigma and sigma_down.
            t, t_next = sigmas[i].log().neg(), sigma_down.log().neg()
            h = t_next - t
            t_mid = t + 0.5 * h
            x_2 = (t_mid.neg().exp() / t.neg().exp()) * x - (-h * 0.5).expm1() * denoised
            denoised_2 = model(x_2, t_mid.neg().exp() * s_in, **extra_args)
            x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * denoised_2
        if levels[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def _dpmpp_2s_ancestral_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler):
    """ComfyUI's rectified-flow form, in float32 0-d tensors in its order of operations: the midpoint in the flow's
    half-log-SNR ``log((1 - sigma) / sigma)`` (from pure noise, where that is minus infinity, sigma 0.9999)."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        sigma_down, alpha_ratio, renoise = flow_ancestral_split(sigma, sigma_next, eta)
        report(callback, x, i, sigma, sigma, denoised)
        if sigma_next == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        elif sigma_down == 0:
            x = denoised  # eta past 1 (NaN in ComfyUI): the clean estimate, then the renoising
        else:
            if sigma == 1.0:
                sigma_mid = 0.9999
            else:
                lam, lam_down = ((1 - sigma) / sigma).log(), ((1 - sigma_down) / sigma_down).log()
                sigma_mid = ((lam + 0.5 * (lam_down - lam)).exp() + 1) ** -1
            ratio = sigma_mid / sigma
            denoised_2 = model(ratio * x + (1 - ratio) * denoised, sigma_mid * s_in, **extra_args)
            ratio = sigma_down / sigma
            x = ratio * x + (1 - ratio) * denoised_2
        if sigma_next > 0 and eta > 0:
            x = alpha_ratio * x + noise_sampler(sigma, sigma_next) * s_noise * renoise
    return x


@torch.no_grad()
def sample_dpmpp_2m(model, x, sigmas, *, extra_args=None, callback=None, disable=None):
    """DPM-Solver++(2M): Algorithm 2 of Lu et al. 2022b, the previous denoised output as the second point."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    old_denoised = None
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            x = denoised
        else:
            # In t = -log(sigma), with float32 0-d tensors in ComfyUI's order of operations: bit-equal latents.
            t, t_next = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
            h = t_next - t
            denoised_d = denoised
            if old_denoised is not None:
                r = (t - sigmas[i - 1].log().neg()) / h  # h_last / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x
