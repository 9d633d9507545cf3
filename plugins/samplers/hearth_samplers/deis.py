"""DEIS, the time-based Adams-Bashforth variant "tAB" (Zhang & Chen 2023, arXiv:2204.13902, sec. 4 and eq. 15).

The probability-flow ODE ``dx/dsigma = d`` is integrated with ``d`` interpolated by a polynomial in the time
``t`` of a variance-preserving SDE rather than in sigma: over one step ``x_next = x + sum_j c_j * d_j`` with
``c_j = integral of L_j(t) * dsigma/dt dt``, ``L_j`` the Lagrange basis through the last steps' times.

The coefficients are computed as ComfyUI computes them (after the diff-solvers reference code), so a workflow
samples ComfyUI's latents to the bit: in float32, the integral as a sum over 10,000 evenly spaced points of the
step (an approximation a few parts in 10^5 off the exact integral), and ``d log(alpha)/dt`` by autograd.
"""

from __future__ import annotations

import numpy as np
import torch

from .stepping import report

# The linear VP schedule (Song et al. 2021) fitted through EDM's sigma range, as DEIS's reference code maps
# sigmas to times: sigma(eps_s) = 0.002 and sigma(1) = 80.
# sigma_max is the integer 80, as there: its log is then taken in float64, which makes the betas float64.
_EPS_S, _SIGMA_MIN, _SIGMA_MAX = 1e-3, 0.002, 80
_POINTS = 10000


def vp_times(sigmas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(t, beta_0, beta_1)``: the VP times of ``sigmas`` (float32, on the CPU) and the schedule's betas."""
    log_min = torch.tensor(np.log((torch.tensor(_SIGMA_MIN) ** 2 + 1).numpy()))  # numpy's float32 log
    log_max = torch.tensor(np.log((torch.tensor(_SIGMA_MAX) ** 2 + 1).numpy()))  # of an integer: float64
    beta_d = 2 * (log_min / _EPS_S - log_max) / (_EPS_S - 1)
    beta_min = log_max - 0.5 * beta_d
    sigmas = sigmas.detach().cpu()
    times = ((beta_min**2 + 2 * beta_d * (sigmas**2 + 1).log()).sqrt() - beta_min) / beta_d
    return times, beta_min, beta_d + beta_min


def _integrand(beta_0: torch.Tensor, beta_1: torch.Tensor, taus: torch.Tensor) -> torch.Tensor:
    """``dsigma/dt`` at ``taus`` written through alpha(t) (``-0.5 dlog(alpha)/dt / sqrt(alpha (1 - alpha))``)."""
    with torch.inference_mode(mode=False), torch.enable_grad():
        taus = taus.clone().requires_grad_(True)
        alpha = torch.exp(-0.5 * taus**2 * (beta_1 - beta_0) - taus * beta_0)
        alpha.log().sum().backward()
        slope = taus.grad
    return -0.5 * slope / torch.sqrt(alpha.detach() * (1 - alpha.detach()))


def tab_coefficients(sigmas: torch.Tensor, max_order: int) -> list[list[torch.Tensor]]:
    """For each step, the ``c_j`` of the derivatives at its time and the earlier ones (none for first-order
    steps), as 0-d float32 tensors."""
    times, beta_0, beta_1 = vp_times(sigmas)
    coefficients: list[list[torch.Tensor]] = []
    for i in range(len(times) - 1):
        order = min(i + 1, max_order)
        if order == 1:
            coefficients.append([])
            continue
        t_cur, t_next = times[i], times[i + 1]
        taus = torch.linspace(t_cur, t_next, _POINTS)
        dtau = (t_next - t_cur) / _POINTS
        nodes = times[[i - k for k in range(order)]]
        integrand = _integrand(beta_0, beta_1, taus)
        step = []
        for j in range(order):
            basis = 1
            for k in range(order):
                if k != j:
                    basis *= (taus - nodes[k]) / (nodes[j] - nodes[k])
            step.append(torch.sum(integrand * basis) * dtau)
        coefficients.append(step)
    return coefficients


@torch.no_grad()
def sample_deis(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """DEIS-tAB of order up to ``max_order`` (Zhang & Chen 2023); the first and the final steps are Euler steps."""
    if not 1 <= max_order <= 4:
        raise ValueError(f"deis max_order must be 1 to 4, got {max_order}")
    extra_args = {} if extra_args is None else extra_args
    coefficients = tab_coefficients(sigmas, max_order)
    s_in = x.new_ones([x.shape[0]])
    history: list[torch.Tensor] = []  # derivatives, newest first
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = (x - denoised) / sigmas[i]
        order = min(max_order, i + 1) if sigmas[i + 1] > 0 else 1
        if order == 1:
            x_next = x + (sigmas[i + 1] - sigmas[i]) * d
        else:
            x_next = x + coefficients[i][0] * d
            for c, earlier in zip(coefficients[i][1:], history, strict=False):
                x_next = x_next + c * earlier
        history.insert(0, d)
        del history[max_order - 1:]
        x = x_next
    return x
