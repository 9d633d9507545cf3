"""DPM-Solver-2 steps in Karras's sigma form (midpoint in log sigma), deterministic and ancestral."""

from __future__ import annotations

import torch

from .stepping import (
    add_churn_noise,
    ancestral_step,
    churn,
    flow_ancestral_split,
    gaussian_noise,
    is_flow,
    report,
    to_d,
)


@torch.no_grad()
def sample_dpm_2(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_churn=0.0, s_tmin=0.0,
                 s_tmax=float("inf"), s_noise=1.0, noise_sampler=None):
    """DPM-Solver-2 (Lu et al. 2022, Algorithm 1 with r = 1/2) inside Algorithm 2 of Karras et al. 2022."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    flow = s_churn > 0 and is_flow(model)
    for i in range(len(levels) - 1):
        gamma, sigma_hat = churn(levels, i, s_churn, s_tmin, s_tmax, flow)
        if gamma > 0:
            x = add_churn_noise(x, sigmas[i], sigma_hat, s_noise, noise_sampler, flow)
        denoised = model(x, sigma_hat * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigma_hat, denoised)
        level = sigmas[i] if gamma == 0 else sigmas.new_tensor(sigma_hat)
        x = _dpm2_step(model, x, to_d(x, level, denoised), level, sigmas[i + 1], s_in, extra_args)
    return x


@torch.no_grad()
def sample_dpm_2_ancestral(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                           noise_sampler=None):
    """DPM-Solver-2 steps to sigma_down, then fresh noise (Lu et al. 2022 with k-diffusion's ancestral split; the
    rectified-flow split of :func:`flow_ancestral_split` for a flow model, as ComfyUI's)."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    flow = is_flow(model)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if flow:
            sigma_down, alpha_ratio, sigma_up = flow_ancestral_split(sigmas[i], sigmas[i + 1], eta)
        else:
            sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = _dpm2_step(model, x, to_d(x, sigmas[i], denoised), sigmas[i], sigma_down, s_in, extra_args)
        if flow:
            # A flow latent at sigma_down, renoised to the next sigma (signal scaled down, noise topped up).
            if sigmas[i + 1] > 0:
                x = alpha_ratio * x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
        elif sigma_down != 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def _dpm2_step(model, x, d, sigma: torch.Tensor, sigma_next: torch.Tensor, s_in, extra_args):
    """One DPM-Solver-2 step from ``sigma`` to ``sigma_next`` (0-d tensors: float32 arithmetic in ComfyUI's order
    of operations, so the latents are ComfyUI's to the bit)."""
    if sigma_next == 0:
        return x + d * (sigma_next - sigma)
    # The midpoint in log sigma, where the ODE in lambda = -log sigma is evaluated a second time.
    sigma_mid = sigma.log().lerp(sigma_next.log(), 0.5).exp()
    x_2 = x + d * (sigma_mid - sigma)
    d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in, **extra_args))
    return x + d_2 * (sigma_next - sigma)
