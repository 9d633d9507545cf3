"""UniPC (Zhao et al. 2023, arXiv:2302.04867): multistep predictor UniP with corrector UniC, data prediction.

Written in k-diffusion's space (``x = x0 + sigma * noise``) with ``lambda = -log sigma``: the variance-preserving
formulas of the paper lose their ``alpha_t`` factors there. ``bh1`` and ``bh2`` are the paper's two choices of
``B(h)`` (``h`` and ``e^h - 1``; sec. 3.3). As in ComfyUI, a schedule ending at sigma 0 stops at sigma 0.001
(lambda is infinite at 0) and the corrector is skipped on the last step, so ``N`` steps cost ``N`` model calls.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .stepping import report

FINAL_SIGMA = 0.001


def _coefficients(rks: list[float], hh: float, variant: str):
    """``B(h)`` and the order conditions ``R @ rho = b`` of UniP/UniC (Zhao et al. 2023, Algorithms 1-2)."""
    order = len(rks)
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = hh if variant == "bh1" else h_phi_1
    factorial = 1
    rows, b = [], []
    for i in range(1, order + 1):
        rows.append([rk ** (i - 1) for rk in rks])
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return b_h, h_phi_1, np.array(rows), np.array(b)


def _update(model, x, history, sigma_t, order, use_corrector, variant, s_in, extra_args):
    lam_0, sigma_0, m_0 = history[-1]
    lam_t = -math.log(float(sigma_t))
    h = lam_t - lam_0
    rks, d1s = [], []
    for k in range(1, order):
        lam_k, _, m_k = history[-(k + 1)]
        rk = (lam_k - lam_0) / h
        rks.append(rk)
        d1s.append((m_k - m_0) / rk)
    rks.append(1.0)
    b_h, h_phi_1, rows, b = _coefficients(rks, -h, variant)
    x_t_ = (float(sigma_t) / sigma_0) * x - h_phi_1 * m_0
    # UniP: the predictor, of order `order` with the earlier outputs as extra points.
    if d1s:
        rhos_p = [0.5] if order == 2 else np.linalg.solve(rows[:-1, :-1], b[:-1]).tolist()
        x_t = x_t_ - b_h * sum(rho * d for rho, d in zip(rhos_p, d1s, strict=True))
    else:
        x_t = x_t_
    if not use_corrector:
        return x_t, None
    # UniC: one more model call at the prediction raises the order by one at no extra cost per step, since
    # the same output serves the next step.
    m_t = model(x_t, sigma_t * s_in, **extra_args)
    rhos_c = [0.5] if order == 1 else np.linalg.solve(rows, b).tolist()
    correction = sum(rho * d for rho, d in zip(rhos_c[:-1], d1s, strict=True)) + rhos_c[-1] * (m_t - m_0)
    return x_t_ - b_h * correction, m_t


def _sample(model, x, sigmas, extra_args, callback, variant, max_order=3):
    extra_args = {} if extra_args is None else extra_args
    if len(sigmas) <= 1:
        return x
    sigmas = sigmas.clone()
    if sigmas[-1] == 0:
        sigmas[-1] = FINAL_SIGMA
    steps = len(sigmas) - 1
    order = max(1, min(max_order, steps - 1))
    s_in = x.new_ones([x.shape[0]])
    denoised = model(x, sigmas[0] * s_in, **extra_args)
    report(callback, x, 0, sigmas[0], sigmas[0], denoised)
    history = [(-math.log(float(sigmas[0])), float(sigmas[0]), denoised)]
    for step in range(1, steps + 1):
        # Warm up with the orders the history allows; lower the order again over the final steps.
        step_order = step if step < order else min(order, steps + 1 - step)
        use_corrector = step < steps
        x, m_t = _update(model, x, history, sigmas[step], step_order, use_corrector, variant, s_in, extra_args)
        if m_t is not None:
            report(callback, x, step, sigmas[step], sigmas[step], m_t)
            history.append((-math.log(float(sigmas[step])), float(sigmas[step]), m_t))
            del history[:-order]
    return x


@torch.no_grad()
def sample_uni_pc(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """UniPC-p with B(h) = h ("bh1"), third order by default (Zhao et al. 2023)."""
    return _sample(model, x, sigmas, extra_args, callback, "bh1", max_order)


@torch.no_grad()
def sample_uni_pc_bh2(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """UniPC-p with B(h) = e^h - 1 ("bh2"), better at few steps with guidance (Zhao et al. 2023, sec. 3.3)."""
    return _sample(model, x, sigmas, extra_args, callback, "bh2", max_order)
