"""SEEDS-2 (Gonzalez et al. 2023, arXiv:2305.14267): a stochastic explicit exponential derivative-free solver in
the data-prediction form, stage 2. Each step evaluates the model again at the fraction ``r`` of the step (in
half-log-SNR), then combines the two clean estimates with the exponential integrator's phi_1 (``solver_type``
"phi_1") or phi_1 and phi_2 ("phi_2") weights; ``eta`` scales the SDE part, whose noise is carried consistently
from the intermediate point to the end of the step. ComfyUI's ``seeds_2``, for k-diffusion and flow latents.
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
        lambda_mid = torch.lerp(lambda_s, lambda_t, r)
        sigma_mid = _sigma_of(lambda_mid, flow)
        alpha_mid = sigma_mid * lambda_mid.exp()
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
            segment = (r - 1) * h * eta
            sde_noise = sde_noise * segment.exp()
            sde_noise = sde_noise + segment.mul(2).expm1().neg().sqrt() * noise_sampler(sigma_mid, sigmas[i + 1])
            x = x + sde_noise * sigmas[i + 1] * s_noise
    return x
