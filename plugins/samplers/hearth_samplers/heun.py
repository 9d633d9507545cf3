"""Heun samplers: the second-order trapezoidal step of Karras et al. 2022, and Heun++ (a three-point variant)."""

from __future__ import annotations

import torch

from .stepping import add_churn_noise, churn, is_flow, report, to_d


@torch.no_grad()
def sample_heun(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_churn=0.0, s_tmin=0.0,
                s_tmax=float("inf"), s_noise=1.0, noise_sampler=None):
    """Heun steps with optional churn: Algorithm 2 of Karras et al. 2022 (arXiv:2206.00364)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    flow = s_churn > 0 and is_flow(model)
    for i in range(len(levels) - 1):
        gamma, sigma_hat = churn(levels, i, s_churn, s_tmin, s_tmax, flow)
        if gamma > 0:
            x = add_churn_noise(x, sigmas[i], sigma_hat, s_noise, noise_sampler, flow)
        denoised = model(x, sigma_hat * s_in, **extra_args)
        d = to_d(x, sigma_hat, denoised)
        report(callback, x, i, sigmas[i], sigma_hat, denoised)
        dt = levels[i + 1] - sigma_hat
        if levels[i + 1] == 0:
            # The ODE is singular at sigma 0: the last step stays first order (Algorithm 2, line 9).
            x = x + d * dt
            continue
        x_2 = x + d * dt
        d_2 = to_d(x_2, levels[i + 1], model(x_2, sigmas[i + 1] * s_in, **extra_args))
        x = x + (d + d_2) * (dt / 2)
    return x


@torch.no_grad()
def sample_heunpp2(model, x, sigmas, *, extra_args=None, callback=None, disable=None, s_churn=0.0, s_tmin=0.0,
                   s_tmax=float("inf"), s_noise=1.0, noise_sampler=None):
    """Heun++: slopes at up to three points weighted by sigma / (k * sigma_max) (Carzit, sd-webui-samplers-scheduler).

    Far from the data (large sigma) the later slopes weigh more; near it the step tends to plain Euler.
    """
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    flow = s_churn > 0 and is_flow(model)
    s_end = levels[-1]
    for i in range(len(levels) - 1):
        gamma, sigma_hat = churn(levels, i, s_churn, s_tmin, s_tmax, flow)
        if gamma > 0:
            x = add_churn_noise(x, sigmas[i], sigma_hat, s_noise, noise_sampler, flow)
        # Float32 0-d tensors in ComfyUI's order of operations, so the latents are ComfyUI's to the bit.
        sigma_hat = sigmas[i] if gamma == 0 else sigmas.new_tensor(sigma_hat)
        denoised = model(x, sigma_hat * s_in, **extra_args)
        d = to_d(x, sigma_hat, denoised)
        report(callback, x, i, sigmas[i], sigma_hat, denoised)
        dt = sigmas[i + 1] - sigma_hat
        if levels[i + 1] == s_end:
            x = x + d * dt
            continue
        x_2 = x + d * dt
        d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in, **extra_args))
        if levels[i + 2] == s_end:
            w2 = sigmas[i + 1] / (2 * sigmas[0])
            x = x + (d * (1 - w2) + d_2 * w2) * dt
            continue
        x_3 = x_2 + d_2 * (sigmas[i + 2] - sigmas[i + 1])
        d_3 = to_d(x_3, sigmas[i + 2], model(x_3, sigmas[i + 2] * s_in, **extra_args))
        w = 3 * sigmas[0]
        w2, w3 = sigmas[i + 1] / w, sigmas[i + 2] / w
        x = x + ((1 - w2 - w3) * d + w2 * d_2 + w3 * d_3) * dt
    return x
