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
    inject = eta > 0 and s_noise > 0
    for i in range(len(levels) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            x = denoised
            continue
        # Float32 0-d tensors in ComfyUI's order of operations, so the latents are ComfyUI's to the bit. Each
        # stage is the variance-exploding ancestral step on x / alpha, whose noise level is e^-lambda.
        lambda_s, lambda_t = _lambda(kind, sigmas[i]), _lambda(kind, sigmas[i + 1])
        h = lambda_t - lambda_s
        lambda_mid = lambda_s + r * h
        sigma_mid = lambda_mid.neg().sigmoid() if kind.flow else lambda_mid.neg().exp()
        alpha_s, alpha_mid = sigmas[i] * lambda_s.exp(), sigma_mid * lambda_mid.exp()
        alpha_t = sigmas[i + 1] * lambda_t.exp()
        # Stage 1: to the intermediate lambda (a fraction r of the step), with its share of noise.
        down, up = ancestral_step(lambda_s.neg().exp(), lambda_mid.neg().exp(), eta)
        h_ = down.log().neg() - lambda_s
        x_2 = (alpha_mid / alpha_s) * (-h_).exp() * x - alpha_mid * (-h_).expm1() * denoised
        if inject:
            x_2 = x_2 + alpha_mid * noise_sampler(sigmas[i], sigma_mid) * s_noise * up
        denoised_2 = model(x_2, sigma_mid * s_in, **extra_args)
        # Stage 2: the full step with the two denoised estimates combined.
        down, up = ancestral_step(lambda_s.neg().exp(), lambda_t.neg().exp(), eta)
        h_ = down.log().neg() - lambda_s
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_d
        if inject:
            x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * up
    return x


def _lambda(kind, sigma: torch.Tensor) -> torch.Tensor:
    """The half-log-SNR of a 0-d sigma tensor, computed as ComfyUI computes it (logit for flow, log otherwise)."""
    return sigma.logit().neg() if kind.flow else sigma.log().neg()


def _first_order(x, denoised, sigmas, i, lambda_t, h, eta):
    """The multistep SDE solvers' first-order part of the step ``i``: ``(x, alpha_t, h_eta)``; float32 0-d tensors
    in ComfyUI's order of operations, so the latents are ComfyUI's to the bit."""
    h_eta = h * (eta + 1)
    alpha_t = sigmas[i + 1] * lambda_t.exp()
    x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
    return x, alpha_t, h_eta


def _sde_noise(x, noise_sampler, sigmas, i, h, eta, s_noise):
    if eta > 0 and s_noise > 0:
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt() * s_noise
    return x


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
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = _lambda(kind, sigmas[i]), _lambda(kind, sigmas[i + 1])
            h = lambda_t - lambda_s
            x, alpha_t, h_eta = _first_order(x, denoised, sigmas, i, lambda_t, h, eta)
            if old_denoised is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / r) * (denoised - old_denoised)
            x = _sde_noise(x, noise_sampler, sigmas, i, h, eta, s_noise)
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
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = _lambda(kind, sigmas[i]), _lambda(kind, sigmas[i + 1])
            h = lambda_t - lambda_s
            x, alpha_t, h_eta = _first_order(x, denoised, sigmas, i, lambda_t, h, eta)
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + (alpha_t * phi_2) * d1 - (alpha_t * phi_3) * d2
            elif h_1 is not None:
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                x = x + (alpha_t * phi_2) * ((denoised - denoised_1) / (h_1 / h))
            x = _sde_noise(x, noise_sampler, sigmas, i, h, eta, s_noise)
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x
