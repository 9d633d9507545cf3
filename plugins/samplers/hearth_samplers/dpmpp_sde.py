"""Stochastic DPM-Solver++: the SDE solvers of Lu et al. 2022b (arXiv:2211.01095), singlestep and multistep.

Each step solves the data-prediction SDE exactly in its linear part; ``eta`` scales the injected noise
(0 gives the ODE solver). Noise comes from ``noise_sampler(sigma, sigma_next)``, ideally a Brownian bridge so that
results barely change with the step count (the samplers are marked for :class:`brownian.BrownianTreeNoise`, ComfyUI's
Brownian tree). Scalar coefficients are computed in Python floats.

Each solver is written once in the half-log-SNR ``lambda = log(alpha / sigma)`` and the signal factor ``alpha`` of
the model's latents ``x = alpha * x0 + sigma * noise``. Per step from sigma_s to sigma_t, with
``h = lambda_t - lambda_s``, the data-prediction SDE solution is
``x_t = sigma_t / sigma_s * e^(-eta h) x_s + alpha_t (1 - e^(-(1 + eta) h)) x0 + sigma_t sqrt(1 - e^(-2 eta h)) noise``.
A variance-exploding (eps, v) model has ``alpha = 1`` and ``lambda = -log sigma``; a flow model has
``alpha = 1 - sigma`` (as ComfyUI runs them on ``CONST`` model sampling), and a flow schedule starting at sigma 1
starts 0.01% in instead.
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


class _Parametrization:
    """lambda(sigma) and alpha(sigma) of a model's latents: variance-exploding, or flow."""

    def __init__(self, flow: bool):
        self.flow = flow

    def lam(self, sigma: float) -> float:
        return flow_half_log_snr(sigma) if self.flow else -math.log(sigma)

    def sigma_of(self, lam: float) -> float:
        return flow_sigma_of(lam) if self.flow else math.exp(-lam)

    def alpha(self, sigma: float) -> float:
        return 1.0 - sigma if self.flow else 1.0


def _setup(model, x, sigmas, extra_args, noise_sampler):
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    kind = _Parametrization(is_flow(model))
    if kind.flow:
        sigmas = flow_offset_first_sigma(model, sigmas)
    return extra_args, noise_sampler, kind, sigmas, x.new_ones([x.shape[0]])


@uses_brownian_noise
@torch.no_grad()
def sample_dpmpp_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                     noise_sampler=None, r=1 / 2):
    """DPM-Solver++ SDE, singlestep second order with ancestral noise at both stages (k-diffusion's dpmpp_sde)."""
    extra_args, noise_sampler, kind, sigmas, s_in = _setup(model, x, sigmas, extra_args, noise_sampler)
    levels = sigmas.tolist()
    fac = 1 / (2 * r)
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
            continue
        # Each stage is the variance-exploding ancestral step on x / alpha, whose noise level is e^-lambda.
        lambda_s, lambda_t = kind.lam(sigma), kind.lam(sigma_next)
        sigma_mid = kind.sigma_of(lambda_s + r * (lambda_t - lambda_s))
        alpha_s, alpha_mid, alpha_t = kind.alpha(sigma), kind.alpha(sigma_mid), kind.alpha(sigma_next)
        # Stage 1: to the intermediate lambda (a fraction r of the step), with its share of noise.
        x_2 = _ancestral(x, denoised, kind, sigma, sigma_mid, eta, alpha_mid / alpha_s, alpha_mid)
        noise_up = _noise_up(kind, sigma, sigma_mid, eta)
        x_2 = x_2 + noise_sampler(sigmas[i], sigma_mid) * (alpha_mid * s_noise * noise_up)
        denoised_2 = model(x_2, sigma_mid * s_in, **extra_args)
        # Stage 2: the full step with the two denoised estimates combined.
        denoised_d = torch.lerp(denoised, denoised_2, fac)
        x = _ancestral(x, denoised_d, kind, sigma, sigma_next, eta, alpha_t / alpha_s, alpha_t)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (alpha_t * s_noise * _noise_up(kind, sigma, sigma_next, eta))
    return x


def _levels(kind: _Parametrization, sigma: float, sigma_next: float, eta: float) -> tuple[float, float, float]:
    """(noise level at sigma, sigma_down, sigma_up) of the ancestral step in the variance-exploding frame."""
    level, level_next = (math.exp(-kind.lam(sigma)), math.exp(-kind.lam(sigma_next))) if kind.flow \
        else (sigma, sigma_next)
    return (level, *ancestral_step(level, level_next, eta))


def _noise_up(kind: _Parametrization, sigma: float, sigma_next: float, eta: float) -> float:
    return _levels(kind, sigma, sigma_next, eta)[2]


def _ancestral(x, denoised, kind, sigma, sigma_next, eta, alpha_ratio, alpha_next):
    """The deterministic part of an ancestral step to ``sigma_next``: x moved toward ``denoised``."""
    level, sigma_down, _ = _levels(kind, sigma, sigma_next, eta)
    ratio = sigma_down / level
    return x * (alpha_ratio * ratio) + denoised * (alpha_next * (1 - ratio))


@uses_brownian_noise
@torch.no_grad()
def sample_dpmpp_2m_sde(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                        noise_sampler=None, solver_type="midpoint"):
    """DPM-Solver++(2M) SDE: the multistep SDE solver of Lu et al. 2022b (eq. 12 with a first-order correction)."""
    if solver_type not in ("heun", "midpoint"):
        raise ValueError(f"solver_type must be 'heun' or 'midpoint', got {solver_type!r}")
    extra_args, noise_sampler, kind, sigmas, s_in = _setup(model, x, sigmas, extra_args, noise_sampler)
    levels = sigmas.tolist()
    old_denoised = h_last = h = None
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = kind.lam(sigma_next) - kind.lam(sigma)
            eta_h = eta * h
            alpha_t = kind.alpha(sigma_next)
            phi_1 = -math.expm1(-h - eta_h)
            x = x * (sigma_next / sigma * math.exp(-eta_h)) + denoised * (alpha_t * phi_1)
            if old_denoised is not None:
                scale = phi_1 / (-h - eta_h) + 1 if solver_type == "heun" else 0.5 * phi_1
                x = x + (denoised - old_denoised) * (alpha_t * scale * h / h_last)
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
    extra_args, noise_sampler, kind, sigmas, s_in = _setup(model, x, sigmas, extra_args, noise_sampler)
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
            h = kind.lam(sigma_next) - kind.lam(sigma)
            h_eta = h * (eta + 1)
            alpha_t = kind.alpha(sigma_next)
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
            if eta:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * (
                    sigma_next * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise)
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x
