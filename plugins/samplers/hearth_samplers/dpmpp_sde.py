"""Stochastic DPM-Solver++: the SDE solvers of Lu et al. 2022b (arXiv:2211.01095), singlestep and multistep.

Each step solves the data-prediction SDE exactly in its linear part; ``eta`` scales the injected noise
(0 gives the ODE solver). Noise comes from ``noise_sampler(sigma, sigma_next)``, ideally a Brownian bridge so that
results barely change with the step count (the samplers are marked for :class:`brownian.BrownianNoise`). Scalar coefficients are computed in Python floats.

A flow model (``x = alpha * x0 + sigma * noise`` with ``alpha = 1 - sigma``) gets the same solvers written in its
half-log-SNR ``lambda = log(alpha / sigma)``, with the signal factor ``alpha`` where the variance-exploding form has 1
(as ComfyUI runs them on ``CONST`` model sampling); a schedule starting at sigma 1 starts 0.01% in instead.
"""

from __future__ import annotations

import math

import torch

from .brownian import uses_brownian_noise
from .stepping import (
    ancestral_step,
    flow_half_log_snr,
    flow_offset_first_sigma,
    flow_sigma_of,
    gaussian_noise,
    is_flow,
    report,
)


@uses_brownian_noise
@torch.no_grad()
def sample_dpmpp_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                     noise_sampler=None, r=1 / 2):
    """DPM-Solver++ SDE, singlestep second order with ancestral noise at both stages (k-diffusion's dpmpp_sde)."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    if is_flow(model):
        return _dpmpp_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler, r)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    fac = 1 / (2 * r)
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
            continue
        # Stage 1: to the intermediate lambda (a fraction r of the step), with its share of noise.
        sigma_s = sigma * (sigma_next / sigma) ** r
        sigma_down, sigma_up = ancestral_step(sigma, sigma_s, eta)
        x_2 = torch.lerp(denoised, x, sigma_down / sigma)
        x_2 = x_2 + noise_sampler(sigmas[i], sigma_s) * (s_noise * sigma_up)
        denoised_2 = model(x_2, sigma_s * s_in, **extra_args)
        # Stage 2: the full step with the two denoised estimates combined.
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        denoised_d = torch.lerp(denoised, denoised_2, fac)
        x = torch.lerp(denoised_d, x, sigma_down / sigma)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (s_noise * sigma_up)
    return x


@uses_brownian_noise
@torch.no_grad()
def sample_dpmpp_2m_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                        noise_sampler=None, solver_type="midpoint"):
    """DPM-Solver++(2M) SDE: the multistep SDE solver of Lu et al. 2022b (eq. 12 with a first-order correction)."""
    if solver_type not in ("heun", "midpoint"):
        raise ValueError(f"solver_type must be 'heun' or 'midpoint', got {solver_type!r}")
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    if is_flow(model):
        return _dpmpp_2m_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler, solver_type)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    old_denoised = h_last = h = None
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma / sigma_next)
            eta_h = eta * h
            phi_1 = -math.expm1(-h - eta_h)
            x = x * (sigma_next / sigma * math.exp(-eta_h)) + denoised * phi_1
            if old_denoised is not None:
                scale = phi_1 / (-h - eta_h) + 1 if solver_type == "heun" else 0.5 * phi_1
                x = x + (denoised - old_denoised) * (scale * h / h_last)
            if eta:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (
                    sigma_next * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise)
        old_denoised, h_last = denoised, h
    return x


@uses_brownian_noise
@torch.no_grad()
def sample_dpmpp_3m_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                        noise_sampler=None):
    """DPM-Solver++(3M) SDE: third-order multistep, finite differences of the last three denoised outputs."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    if is_flow(model):
        return _dpmpp_3m_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    denoised_1 = denoised_2 = None
    h = h_1 = h_2 = None
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma / sigma_next)
            h_eta = h * (eta + 1)
            x = torch.lerp(denoised, x, math.exp(-h_eta))
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + d1 * phi_2 - d2 * (phi_2 / h_eta - 0.5)
            elif h_1 is not None:
                x = x + (denoised - denoised_1) * (phi_2 * h / h_1)
            if eta:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (
                    sigma_next * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise)
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


# Flow versions. Per step from sigma_s to sigma_t, with h = lambda_t - lambda_s, the data-prediction SDE solution is
# x_t = sigma_t / sigma_s * e^(-eta h) x_s + alpha_t (1 - e^(-(1 + eta) h)) x0 + sigma_t sqrt(1 - e^(-2 eta h)) noise;
# the variance-exploding code above is the case alpha = 1, where sigma_t / sigma_s = e^(-h).


def _dpmpp_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler, r):
    sigmas = flow_offset_first_sigma(model, sigmas)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    fac = 1 / (2 * r)
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
            continue
        lambda_s, lambda_t = flow_half_log_snr(sigma), flow_half_log_snr(sigma_next)
        lambda_mid = lambda_s + r * (lambda_t - lambda_s)
        sigma_mid = flow_sigma_of(lambda_mid)
        alpha_s, alpha_mid, alpha_t = 1 - sigma, 1 - sigma_mid, 1 - sigma_next
        # Each stage is the variance-exploding step on x / alpha, whose noise level is e^-lambda, scaled back.
        sigma_down, sigma_up = ancestral_step(math.exp(-lambda_s), math.exp(-lambda_mid), eta)
        ratio = sigma_down * math.exp(lambda_s)  # e^-(h') for the step to sigma_down
        x_2 = x * (alpha_mid / alpha_s * ratio) + denoised * (alpha_mid * (1 - ratio))
        if eta and s_noise:
            x_2 = x_2 + noise_sampler(sigmas[i], sigma_mid) * (alpha_mid * s_noise * sigma_up)
        denoised_2 = model(x_2, sigma_mid * s_in, **extra_args)
        sigma_down, sigma_up = ancestral_step(math.exp(-lambda_s), math.exp(-lambda_t), eta)
        ratio = sigma_down * math.exp(lambda_s)
        denoised_d = torch.lerp(denoised, denoised_2, fac)
        x = x * (alpha_t / alpha_s * ratio) + denoised_d * (alpha_t * (1 - ratio))
        if eta and s_noise:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (alpha_t * s_noise * sigma_up)
    return x


def _dpmpp_2m_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler, solver_type):
    sigmas = flow_offset_first_sigma(model, sigmas)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    old_denoised = h_last = h = None
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = flow_half_log_snr(sigma_next) - flow_half_log_snr(sigma)
            h_eta = h * (eta + 1)
            alpha_t = 1 - sigma_next
            phi_1 = -math.expm1(-h_eta)
            x = x * (sigma_next / sigma * math.exp(-eta * h)) + denoised * (alpha_t * phi_1)
            if old_denoised is not None:
                scale = phi_1 / -h_eta + 1 if solver_type == "heun" else 0.5 * phi_1
                x = x + (denoised - old_denoised) * (alpha_t * scale * h / h_last)
            if eta and s_noise:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (
                    sigma_next * math.sqrt(-math.expm1(-2 * eta * h)) * s_noise)
        old_denoised, h_last = denoised, h
    return x


def _dpmpp_3m_sde_flow(model, x, sigmas, extra_args, callback, eta, s_noise, noise_sampler):
    sigmas = flow_offset_first_sigma(model, sigmas)
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    denoised_1 = denoised_2 = None
    h = h_1 = h_2 = None
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = flow_half_log_snr(sigma_next) - flow_half_log_snr(sigma)
            h_eta = h * (eta + 1)
            alpha_t = 1 - sigma_next
            x = x * (sigma_next / sigma * math.exp(-eta * h)) + denoised * (alpha_t * -math.expm1(-h_eta))
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + d1 * (alpha_t * phi_2) - d2 * (alpha_t * (phi_2 / h_eta - 0.5))
            elif h_1 is not None:
                x = x + (denoised - denoised_1) * (alpha_t * phi_2 * h / h_1)
            if eta and s_noise:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (
                    sigma_next * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise)
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x
