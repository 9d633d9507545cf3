"""SA-Solver (Xue et al. 2023, arXiv:2309.05019): the stochastic Adams predictor-corrector in the data-prediction
form, over half-log-SNR ``lambda``.

Each step predicts the next latent from the last ``predictor_order`` clean estimates, with the weights of the
Lagrange interpolant of those estimates integrated against the SDE's exponential kernel (eqs. 15 and 18); the
corrector then redoes the step with the new estimate included (``corrector_order``), and with ``use_pece`` the
corrected latent is evaluated again. ``tau`` (the stochastic strength, from ``tau_func(sigma)``) is ``eta`` inside
a sigma interval and 0 outside it. ComfyUI's ``sa_solver`` and ``sa_solver_pece``, for k-diffusion and flow latents.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .stepping import flow_offset_first_sigma, gaussian_noise, is_flow, model_sampling_of, report


def exponential_coefficients(s: torch.Tensor, t: torch.Tensor, order: int, tau: float) -> torch.Tensor:
    """``(1 + tau^2) * integral_s^t exp((1 + tau^2) x) x^p dx`` for p < ``order``, with ``exp((1 + tau^2) t)``
    factored out: integration by parts unrolled into a lower-triangular recursion."""
    scale = 1 + tau**2
    p = torch.arange(order, dtype=s.dtype, device=s.device)
    ends = t**p - s**p * (-scale * (t - s)).exp()
    depth = p.unsqueeze(1) - p.unsqueeze(0)
    log_factorial = (p + 1).lgamma()
    log_coeff = log_factorial.unsqueeze(1) - log_factorial.unsqueeze(0)
    if tau > 0:
        log_coeff = log_coeff - depth * math.log(scale)
    signs = torch.where(depth % 2 == 0, 1.0, -1.0)
    return (log_coeff.exp() * signs).tril() @ ends


def adams_coefficients(sigma_next: torch.Tensor, lambdas: torch.Tensor, lambda_s: torch.Tensor,
                       lambda_t: torch.Tensor, tau: float, simple_order_2: bool = False,
                       corrector: bool = False) -> torch.Tensor:
    """The weights ``b_i`` of the clean estimates at ``lambdas`` for a step from ``lambda_s`` to ``lambda_t``."""
    scale = 1 + tau**2
    alpha_t = sigma_next * lambda_t.exp()
    if simple_order_2 and lambdas.shape[0] == 2:
        # The paper's simplified order-2 scheme (appendix D).
        h = lambda_t - lambda_s
        if corrector:
            b_1 = alpha_t * (0.5 * scale * h)
            b_2 = alpha_t * (-h * scale).expm1().neg() - b_1
        else:
            b_2 = alpha_t * (0.5 * scale * h**2) / (lambdas[-2] - lambda_s)
            b_1 = alpha_t * (-h * scale).expm1().neg() - b_2
        return torch.stack([b_2, b_1])
    integrals = exponential_coefficients(lambda_s, lambda_t, lambdas.shape[0], tau)
    vandermonde = torch.vander(lambdas, lambdas.shape[0], increasing=True).T
    return alpha_t * torch.linalg.solve(vandermonde, integrals)


def tau_interval(start_sigma: float, end_sigma: float, eta: float = 1.0) -> Callable[[torch.Tensor | float], float]:
    """``eta`` for sigmas in ``[end_sigma, start_sigma]``, else 0 (an ODE step); always 0 at eta 0."""

    def tau(sigma: torch.Tensor | float) -> float:
        if eta <= 0:
            return 0.0
        return eta if start_sigma >= float(sigma) >= end_sigma else 0.0

    return tau


def _weighted(estimates: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    return torch.tensordot(torch.stack(estimates, dim=1), weights.to(estimates[0].dtype), dims=([1], [0]))


@torch.no_grad()
def sample_sa_solver(model, x, sigmas, *, extra_args=None, callback=None, disable=None, tau_func=None, s_noise=1.0,
                     noise_sampler=None, predictor_order=3, corrector_order=4, use_pece=False, simple_order_2=False):
    """SA-Solver with a ``predictor_order``-step predictor and a ``corrector_order``-step corrector."""
    if len(sigmas) <= 1:
        return x
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    flow = is_flow(model)
    if flow:
        sigmas = flow_offset_first_sigma(model, sigmas)
    lambdas = sigmas.logit().neg() if flow else sigmas.log().neg()
    if tau_func is None:
        sampling = model_sampling_of(model)
        tau_func = tau_interval(float(sampling.percent_to_sigma(0.2)), float(sampling.percent_to_sigma(0.8)), 1.0)
    longest = max(predictor_order, corrector_order)
    x_pred, h, tau, noise = x, 0.0, 0.0, 0.0
    estimates: list[torch.Tensor] = []
    # Near the end of a schedule that reaches 0 the orders drop, for stability.
    shorten = float(sigmas[-1]) == 0
    for i in range(len(sigmas) - 1):
        denoised = model(x_pred, sigmas[i] * s_in, **extra_args)
        report(callback, x_pred, i, sigmas[i], sigmas[i], denoised)
        estimates = [*estimates, denoised][-longest:]
        predictor_used = min(predictor_order, len(estimates))
        last = float(sigmas[i + 1]) == 0
        corrector_used = 0 if i == 0 or (last and not use_pece) else min(corrector_order, len(estimates))
        if shorten:
            predictor_used = min(predictor_used, len(sigmas) - 2 - i)
            corrector_used = min(corrector_used, len(sigmas) - 1 - i)
        if corrector_used == 0:
            x = x_pred
        else:
            weights = adams_coefficients(sigmas[i], lambdas[i - corrector_used + 1:i + 1], lambdas[i - 1],
                                         lambdas[i], tau, simple_order_2, corrector=True)
            x = sigmas[i] / sigmas[i - 1] * (-(tau**2) * h).exp() * x + _weighted(estimates[-corrector_used:],
                                                                                  weights)
            if tau > 0 and s_noise > 0:
                x = x + noise  # the predictor's noise of this step
            if use_pece:
                estimates[-1] = denoised = model(x, sigmas[i] * s_in, **extra_args)
        if last:
            x_pred = denoised
            continue
        tau = tau_func(sigmas[i + 1])
        weights = adams_coefficients(sigmas[i + 1], lambdas[i - predictor_used + 1:i + 1], lambdas[i],
                                     lambdas[i + 1], tau, simple_order_2, corrector=False)
        h = lambdas[i + 1] - lambdas[i]
        x_pred = sigmas[i + 1] / sigmas[i] * (-(tau**2) * h).exp() * x + _weighted(estimates[-predictor_used:], weights)
        if tau > 0 and s_noise > 0:
            noise = (noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1]
                     * (-2 * tau**2 * h).expm1().neg().sqrt() * s_noise)
            x_pred = x_pred + noise
    return x_pred


@torch.no_grad()
def sample_sa_solver_pece(model, x, sigmas, *, extra_args=None, callback=None, disable=None, tau_func=None,
                          s_noise=1.0, noise_sampler=None, predictor_order=3, corrector_order=4,
                          simple_order_2=False):
    """SA-Solver evaluating each corrected latent again (predict, evaluate, correct, evaluate)."""
    return sample_sa_solver(model, x, sigmas, extra_args=extra_args, callback=callback, disable=disable,
                            tau_func=tau_func, s_noise=s_noise, noise_sampler=noise_sampler,
                            predictor_order=predictor_order, corrector_order=corrector_order, use_pece=True,
                            simple_order_2=simple_order_2)
