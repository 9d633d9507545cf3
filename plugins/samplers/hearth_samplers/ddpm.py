"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) driven by a k-diffusion denoiser and any sigma schedule."""

from __future__ import annotations

import math

import torch

from .stepping import gaussian_noise, is_flow, report


@torch.no_grad()
def sample_ddpm(model, x, sigmas, *, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """Ho et al. 2020, Algorithm 2, line 4, between consecutive sigmas of the schedule.

    The posterior mean is computed in the variance-preserving space (``x / sqrt(1 + sigma**2)``) where the
    algorithm is stated, with ``alpha_bar = 1 / (1 + sigma**2)``, then scaled back to k-diffusion's space.
    """
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    if is_flow(model):
        return _ddpm_flow(model, x, sigmas, extra_args, callback, noise_sampler)
    for i in range(len(levels) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        report(callback, x, i, sigma, sigma, denoised)
        # Float32 0-d tensors in ComfyUI's order of operations, so the latents are ComfyUI's to the bit.
        eps = (x - denoised) / sigma
        alpha_bar = 1 / ((sigma * sigma) + 1)
        alpha_bar_next = 1 / ((sigma_next * sigma_next) + 1)
        alpha = alpha_bar / alpha_bar_next
        x_vp = x / torch.sqrt(1.0 + sigma**2.0)
        x = (1.0 / alpha).sqrt() * (x_vp - (1 - alpha) * eps / (1 - alpha_bar).sqrt())
        if levels[i + 1] > 0:
            # The posterior's variance, beta tilde of eq. 7, then back to k-diffusion's scale.
            std = ((1 - alpha) * (1.0 - alpha_bar_next) / (1.0 - alpha_bar)).sqrt()
            x = (x + std * noise_sampler(sigmas[i], sigmas[i + 1])) * torch.sqrt(1.0 + sigma_next**2.0)
    return x


def _ddpm_flow(model, x, sigmas, extra_args, callback, noise_sampler):
    """The same posterior step for a flow model, whose latents are ``alpha * x0 + sigma * noise``, alpha = 1 - sigma.

    From ``t`` (this sigma) to ``s`` (the next): with ``a = alpha_t / alpha_s`` and ``v = sigma_t**2 -
    a**2 * sigma_s**2`` the variance of ``x_t`` given ``x_s``, the posterior of ``x_s`` given ``x_t`` and ``x0`` has
    mean ``(a * sigma_s**2 * x_t + alpha_s * v * x0) / sigma_t**2`` and variance ``v * sigma_s**2 / sigma_t**2``
    (Kingma et al. 2021, eq. 28-29).
    """
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
            continue
        alpha, alpha_next = 1.0 - sigma, 1.0 - sigma_next
        a = alpha / alpha_next
        v = max(0.0, sigma**2 - (a * sigma_next) ** 2)
        x = x * (a * sigma_next**2 / sigma**2) + denoised * (alpha_next * v / sigma**2)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * math.sqrt(v * sigma_next**2 / sigma**2)
    return x
