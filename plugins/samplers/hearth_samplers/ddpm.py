"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) driven by a k-diffusion denoiser and any sigma schedule."""

from __future__ import annotations

import torch

from .stepping import gaussian_noise, report


@torch.no_grad()
def sample_ddpm(model, x, sigmas, *, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """Ho et al. 2020, Algorithm 2, line 4, between consecutive sigmas of the schedule.

    The posterior mean is computed in the variance-preserving space (``x / sqrt(1 + sigma**2)``) where the
    algorithm is stated, with ``alpha_bar = 1 / (1 + sigma**2)``, then scaled back to k-diffusion's space. A flow
    model gets the same variance-exploding step, as in ComfyUI, so a workflow gives ComfyUI's image.
    """
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
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
