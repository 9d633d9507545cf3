"""DEIS, the time-based Adams-Bashforth variant "tAB" (Zhang & Chen 2023, arXiv:2204.13902, sec. 4 and eq. 15).

The probability-flow ODE ``dx/dsigma = d`` is integrated with ``d`` interpolated by a polynomial in the time
``t`` of a variance-preserving SDE rather than in sigma: over one step ``x_next = x + sum_j c_j * d_j`` with
``c_j = integral of L_j(t) * dsigma/dt dt``, ``L_j`` the Lagrange basis through the last steps' times.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .stepping import multistep

# The linear VP schedule (Song et al. 2021) fitted through EDM's sigma range, as DEIS's reference code maps
# sigmas to times: sigma(eps_s) = 0.002 and sigma(1) = 80.
_EPS_S, _SIGMA_MIN, _SIGMA_MAX = 1e-3, 0.002, 80.0
_BETA_D = 2 * (math.log(_SIGMA_MIN**2 + 1) / _EPS_S - math.log(_SIGMA_MAX**2 + 1)) / (_EPS_S - 1)
_BETA_MIN = math.log(_SIGMA_MAX**2 + 1) - 0.5 * _BETA_D
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(32)


def vp_time(sigma: np.ndarray) -> np.ndarray:
    """The VP time whose noise level is ``sigma`` (inverse of ``sigma(t) = sqrt(exp(beta_d t^2/2 + beta_min t) - 1)``)."""
    return (np.sqrt(_BETA_MIN**2 + 2 * _BETA_D * np.log(sigma**2 + 1)) - _BETA_MIN) / _BETA_D


def _dsigma_dt(t: np.ndarray) -> np.ndarray:
    growth = np.exp(0.5 * _BETA_D * t**2 + _BETA_MIN * t)
    return (_BETA_D * t + _BETA_MIN) * growth / (2 * np.sqrt(growth - 1))


def tab_coefficients(ts: np.ndarray, i: int, order: int) -> list[float]:
    """``c_j`` of the step ``ts[i] -> ts[i + 1]`` for the derivatives at ``ts[i], ts[i - 1], ...`` (VP times).

    The integrand is smooth inside a step that does not reach t = 0, so Gauss-Legendre quadrature is exact to
    rounding here.
    """
    a, b = ts[i], ts[i + 1]
    taus = 0.5 * (b - a) * _GAUSS_NODES + 0.5 * (a + b)
    weight = 0.5 * (b - a) * _GAUSS_WEIGHTS * _dsigma_dt(taus)
    nodes = [ts[i - k] for k in range(order)]
    coefficients = []
    for j in range(order):
        basis = np.ones_like(taus)
        for k in range(order):
            if k != j:
                basis *= (taus - nodes[k]) / (nodes[j] - nodes[k])
        coefficients.append(float(np.sum(weight * basis)))
    return coefficients


@torch.no_grad()
def sample_deis(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """DEIS-tAB of order up to ``max_order`` (Zhang & Chen 2023); the first and the final steps are Euler steps."""
    ts = vp_time(sigmas.detach().cpu().double().numpy())

    def advance(x, denoised, history, i, levels):
        sigma, sigma_next = levels[i], levels[i + 1]
        order = len(history) if sigma_next > 0 else 1
        if order == 1:
            return x + (sigma_next - sigma) * history[0]
        coefficients = tab_coefficients(ts, i, order)
        return x + sum(c * d for c, d in zip(coefficients, history, strict=True))

    return multistep(model, x, sigmas, advance, name="deis", max_order=max_order, extra_args=extra_args,
                     callback=callback)
