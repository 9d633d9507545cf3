"""SEEDS-2 and SEEDS-3 (Gonzalez et al. 2023, arXiv:2305.14267): stochastic explicit exponential derivative-free
solvers in the data-prediction form, stages 2 and 3.

SEEDS-2 evaluates the model again at the fraction ``r`` of each step (in half-log-SNR), then combines the two
clean estimates with the exponential integrator's phi_1 (``solver_type`` "phi_1") or phi_1 and phi_2 ("phi_2")
weights; ``eta`` scales the SDE part, whose noise is carried consistently from the intermediate point to the end
of the step. SEEDS-3 evaluates at two fractions (1/3 and 2/3) and uses third-order weights. ComfyUI's
``seeds_2`` and ``seeds_3``, for k-diffusion and flow latents.
"""

from __future__ import annotations

import torch

from .stepping import flow_offset_first_sigma, gaussian_noise, is_flow, report


def _half_log_snr(sigma: torch.Tensor, flow: bool) -> torch.Tensor:
    return sigma.logit().neg() if flow else sigma.log().neg()


def _sigma_of(half_log_snr: torch.Tensor, flow: bool) -> torch.Tensor:
    return half_log_snr.neg().sigmoid() if flow else half_log_snr.neg().exp()


def _h_phi_1(h: torch.Tensor) -> torch.Tensor:
    return torch.expm1(h)


def _h_phi_2(h: torch.Tensor) -> torch.Tensor:
    return (torch.expm1(h) - h) / h


def _stage_point(lambda_s: torch.Tensor, lambda_t: torch.Tensor, r: float,
                 flow: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma, alpha)`` at the fraction ``r`` of a step from ``lambda_s`` to ``lambda_t`` in half-log-SNR."""
    lam = torch.lerp(lambda_s, lambda_t, r)
    sigma = _sigma_of(lam, flow)
    return sigma, sigma * lam.exp()


def _carry(sde_noise: torch.Tensor, segment: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """The SDE noise of the stages so far carried over ``segment`` (``(r_from - r_to) * h * eta``, negative) plus
    fresh noise for it, so the noise of one step stays one consistent path."""
    return sde_noise * segment.exp() + segment.mul(2).expm1().neg().sqrt() * fresh


@torch.no_grad()
def sample_seeds_2(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                   noise_sampler=None, r=0.5, solver_type="phi_1"):
    """SEEDS-2 with the intermediate evaluation at fraction ``r`` of each step."""
    if solver_type not in ("phi_1", "phi_2"):
        raise ValueError(f"solver_type must be 'phi_1' or 'phi_2', got {solver_type!r}")
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    inject = eta > 0 and s_noise > 0
    flow = is_flow(model)
    if flow:
        sigmas = flow_offset_first_sigma(model, sigmas)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if float(sigmas[i + 1]) == 0:
            x = denoised
            continue
        lambda_s, lambda_t = _half_log_snr(sigmas[i], flow), _half_log_snr(sigmas[i + 1], flow)
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        sigma_mid, alpha_mid = _stage_point(lambda_s, lambda_t, r, flow)
        alpha_t = sigmas[i + 1] * lambda_t.exp()
        x_2 = sigma_mid / sigmas[i] * (-r * h * eta).exp() * x - alpha_mid * _h_phi_1(-r * h_eta) * denoised
        if inject:
            sde_noise = (-2 * r * h * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_mid)
            x_2 = x_2 + sde_noise * sigma_mid * s_noise
        denoised_2 = model(x_2, sigma_mid * s_in, **extra_args)
        if solver_type == "phi_1":
            mixed = torch.lerp(denoised, denoised_2, fac)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * _h_phi_1(-h_eta) * mixed
        else:
            b2 = _h_phi_2(-h_eta) / r
            b1 = _h_phi_1(-h_eta) - b2
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b2 * denoised_2)
        if inject:
            # The noise of the first part, carried to the end, plus fresh noise for the rest of the step.
            sde_noise = _carry(sde_noise, (r - 1) * h * eta, noise_sampler(sigma_mid, sigmas[i + 1]))
            x = x + sde_noise * sigmas[i + 1] * s_noise
    return x


@torch.no_grad()
def sample_seeds_3(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=1.0, s_noise=1.0,
                   noise_sampler=None, r_1=1.0 / 3, r_2=2.0 / 3):
    """SEEDS-3: evaluations at fractions ``r_1`` and ``r_2`` of each step, third-order weights."""
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    inject = eta > 0 and s_noise > 0
    flow = is_flow(model)
    if flow:
        sigmas = flow_offset_first_sigma(model, sigmas)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if float(sigmas[i + 1]) == 0:
            x = denoised
            continue
        lambda_s, lambda_t = _half_log_snr(sigmas[i], flow), _half_log_snr(sigmas[i + 1], flow)
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        (sigma_1, alpha_1), (sigma_2, alpha_2) = (_stage_point(lambda_s, lambda_t, r_1, flow),
                                                  _stage_point(lambda_s, lambda_t, r_2, flow))
        alpha_t = sigmas[i + 1] * lambda_t.exp()
        x_2 = sigma_1 / sigmas[i] * (-r_1 * h * eta).exp() * x - alpha_1 * _h_phi_1(-r_1 * h_eta) * denoised
        if inject:
            sde_noise = (-2 * r_1 * h * eta).expm1().neg().sqrt() * noise_sampler(sigmas[i], sigma_1)
            x_2 = x_2 + sde_noise * sigma_1 * s_noise
        denoised_2 = model(x_2, sigma_1 * s_in, **extra_args)
        a3_2 = r_2 / r_1 * _h_phi_2(-r_2 * h_eta)
        a3_1 = _h_phi_1(-r_2 * h_eta) - a3_2
        x_3 = sigma_2 / sigmas[i] * (-r_2 * h * eta).exp() * x - alpha_2 * (a3_1 * denoised + a3_2 * denoised_2)
        if inject:
            sde_noise = _carry(sde_noise, (r_1 - r_2) * h * eta, noise_sampler(sigma_1, sigma_2))
            x_3 = x_3 + sde_noise * sigma_2 * s_noise
        denoised_3 = model(x_3, sigma_2 * s_in, **extra_args)
        b3 = _h_phi_2(-h_eta) / r_2
        b1 = _h_phi_1(-h_eta) - b3
        x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b3 * denoised_3)
        if inject:
            sde_noise = _carry(sde_noise, (r_2 - 1) * h * eta, noise_sampler(sigma_2, sigmas[i + 1]))
            x = x + sde_noise * sigmas[i + 1] * s_noise
    return x
