"""DDIM (Song et al. 2021, arXiv:2010.02502, eq. 12) in k-diffusion's sigma form, with its eta for stochasticity."""

from __future__ import annotations

import torch

from .stepping import ancestral_step, ancestral_step_flow, gaussian_noise, is_flow, report, to_d


@torch.no_grad()
def sample_ddim(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=0.0, s_noise=1.0,
                noise_sampler=None):
    """Song et al. 2021, eq. 12: keep the predicted noise direction, rescaled to the next sigma.

    With ``eta = 0`` (the default, ComfyUI's ``ddim``) this is the deterministic DDIM and equals an Euler step of
    the probability-flow ODE in sigma; ``eta = 1`` gives DDPM's variance, split as in ancestral sampling
    (the rectified-flow split for a flow model).
    """
    extra_args = {} if extra_args is None else extra_args
    if eta:
        noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    flow = bool(eta) and is_flow(model)
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if flow:
            sigma_down, alpha_ratio, sigma_up = ancestral_step_flow(sigma, sigma_next, eta)
            x = torch.lerp(denoised, x, sigma_down / sigma)
            if sigma_up > 0:
                x = x * alpha_ratio + noise_sampler(sigmas[i], sigmas[i + 1]) * (s_noise * sigma_up)
            continue
        if not eta:
            # ComfyUI's ddim is its euler: the same step in its float32 tensor arithmetic, bit for bit.
            x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            continue
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        # x0 + sigma_down * eps, with eps = (x - x0) / sigma the model's noise estimate.
        x = torch.lerp(denoised, x, sigma_down / sigma)
        if eta and sigma_next > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (s_noise * sigma_up)
    return x


sample_ddim.inpaint_random = True  # type: ignore[attr-defined]  # ComfyUI's ddim: fresh noise for the kept area
