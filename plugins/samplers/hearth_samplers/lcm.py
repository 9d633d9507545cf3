"""Latent Consistency Model sampling (Luo et al. 2023, arXiv:2310.04378, Algorithm 3): predict x0, re-noise, repeat."""

from __future__ import annotations

import torch

from .stepping import gaussian_noise, is_flow, report


@torch.no_grad()
def sample_lcm(model, x, sigmas, *, extra_args=None, callback=None, disable=None, noise_sampler=None, s_noise=1.0):
    """Multistep consistency sampling: each step jumps to the model's clean estimate and adds fresh noise at the
    next sigma (``x = x0 + sigma_next * noise``, the noising of both eps and v models; a flow model's
    ``(1 - sigma_next) * x0 + sigma_next * noise``)."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    flow = is_flow(model)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = denoised
        if sigmas[i + 1] > 0 and flow:
            # ComfyUI's CONST noise scaling, in its order of operations.
            x = sigmas[i + 1] * (noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise) + (1.0 - sigmas[i + 1]) * x
        elif sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigmas[i + 1]
    return x
