"""Euler samplers: the first-order step of the probability-flow ODE, and its ancestral (stochastic) variant."""

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
def sample_euler(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_churn=0.0, s_tmin=0.0,
                 s_tmax=float("inf"), s_noise=1.0, noise_sampler=None):
    """Euler steps with optional churn: Algorithm 2 of Karras et al. 2022 without the second-order correction."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    flow = s_churn > 0 and is_flow(model)
    for i in range(len(levels) - 1):
        gamma, sigma_hat = churn(levels, i, s_churn, s_tmin, s_tmax, flow)
        if gamma > 0:
            x = add_churn_noise(x, sigmas[i], sigma_hat, s_noise, noise_sampler, flow)
            denoised = model(x, sigma_hat * s_in, **extra_args)
        else:
            denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigma_hat, denoised)
        # x + d * dt in float32 tensor arithmetic, operation for operation ComfyUI's, so the latents agree to the
        # bit (a fused lerp with a Python-float ratio rounds differently, which flips the odd 8-bit pixel).
        step_from = sigmas[i] if gamma == 0 else sigmas.new_tensor(sigma_hat)
        x = x + to_d(x, step_from, denoised) * (sigmas[i + 1] - step_from)
    return x


@torch.no_grad()
def sample_euler_ancestral(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                           noise_sampler=None):
    """Euler steps down to sigma_down plus fresh noise up to the next sigma: ancestral sampling of Ho et al. 2020
    in the form of k-diffusion (Crowson 2022). A flow model gets the rectified-flow split instead
    (:func:`ancestral_step_flow`, ComfyUI's ``euler_ancestral`` on ``CONST`` model sampling)."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    if is_flow(model):
        return _euler_ancestral_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler)
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        # The split and the step in float32 0-d tensors, in ComfyUI's order of operations: bit-equal latents.
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            # The last step lands on the clean estimate; an Euler step would only add rounding.
            x = denoised
            continue
        d = to_d(x, sigmas[i], denoised)
        x = x + d * (sigma_down - sigmas[i]) + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def _euler_ancestral_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler):
    """Euler to ``sigma_down``, then the flow renoising ``x = alpha_ratio * x + sigma_up * noise``
    (:func:`ancestral_step_flow`'s split), in float32 0-d tensors in ComfyUI's order of operations."""
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            x = denoised
            continue
        sigma_down, alpha_ratio, renoise = flow_ancestral_split(sigmas[i], sigmas[i + 1], eta)
        ratio = sigma_down / sigmas[i]
        x = ratio * x + (1 - ratio) * denoised
        if eta > 0:
            x = alpha_ratio * x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x
