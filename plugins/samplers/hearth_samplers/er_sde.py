"""ER-SDE-Solver-3 (Cui et al. 2023, arXiv:2309.06169): the extended reverse-time SDE solved in
``lambda = sigma / alpha`` with up to three stages (finite differences of the past clean estimates), its noise
set by a noise scaler ``phi(lambda)`` (the paper's ``lambda * (e^(lambda^0.3) + 10)`` by default; SamplerER_SDE
passes the reverse-time SDE's or the ODE's). ComfyUI's ``er_sde``, for k-diffusion and flow latents alike.
"""

from __future__ import annotations

import torch

from .stepping import flow_offset_first_sigma, gaussian_noise, is_flow, model_sampling_of, report


def default_noise_scaler(lam: torch.Tensor) -> torch.Tensor:
    return lam * ((lam**0.3).exp() + 10.0)


@torch.no_grad()
def sample_er_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_noise=1.0, noise_sampler=None,
                  noise_scaler=None, max_stage=3):
    """ER-SDE-Solver with ``max_stage`` stages (1: Euler in lambda; 2 and 3 add the first and second differences,
    integrated over 200 points)."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    scaler = default_noise_scaler if noise_scaler is None else noise_scaler
    s_noise = s_noise * getattr(model_sampling_of(model), "noise_scale", 1.0)
    s_in = x.new_ones([x.shape[0]])
    points = 200.0
    index = torch.arange(0, points, dtype=torch.float32, device=x.device)
    flow = is_flow(model)
    if flow:
        sigmas = flow_offset_first_sigma(model, sigmas)
    # lambda = sigma / alpha: sigma itself for k-diffusion latents, sigma / (1 - sigma) for flow ones; computed as
    # e^-(half-log-SNR), as ComfyUI computes it, so the floats are its floats.
    lambdas = (sigmas.logit().neg() if flow else sigmas.log().neg()).neg().exp()
    old_denoised = old_denoised_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        stages = min(max_stage, i + 1)
        if float(sigmas[i + 1]) == 0:
            x = denoised
        else:
            lam_s, lam_t = lambdas[i], lambdas[i + 1]
            alpha_s, alpha_t = sigmas[i] / lam_s, sigmas[i + 1] / lam_t
            r = scaler(lam_t) / scaler(lam_s)
            x = (alpha_t / alpha_s) * r * x + alpha_t * (1 - r) * denoised
            if stages >= 2:
                dt = lam_t - lam_s
                step = -dt / points
                positions = lam_t + index * step
                scaled = scaler(positions)
                first = torch.sum(1 / scaled) * step
                denoised_d = (denoised - old_denoised) / (lam_s - lambdas[i - 1])
                x = x + alpha_t * (dt + first * scaler(lam_t)) * denoised_d
                if stages >= 3:
                    second = torch.sum((positions - lam_s) / scaled) * step
                    denoised_u = (denoised_d - old_denoised_d) / ((lam_s - lambdas[i - 2]) / 2)
                    x = x + alpha_t * ((dt**2) / 2 + second * scaler(lam_t)) * denoised_u
                old_denoised_d = denoised_d
            if s_noise > 0:
                spread = (lam_t**2 - lam_s**2 * r**2).sqrt().nan_to_num(nan=0.0)
                x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * spread
        old_denoised = denoised
    return x
