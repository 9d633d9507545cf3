"""Linear multistep (Adams-Bashforth in sigma) over the probability-flow ODE, as in k-diffusion's ``lms``."""

from __future__ import annotations

import numpy as np
import torch

from .stepping import report, to_d


def adams_coefficients(ts: np.ndarray, i: int, order: int) -> list[float]:
    """Weights of the last ``order`` derivatives for the step ``ts[i] -> ts[i + 1]``.

    Each weight is the integral over the step of a Lagrange basis polynomial through ``ts[i], ts[i-1], ...``;
    the polynomial is integrated exactly (not by quadrature), so the weights carry no integration error.
    """
    if order - 1 > i:
        raise ValueError(f"order {order} needs {order - 1} earlier steps; step {i} has only {i}")
    nodes = [float(ts[i - k]) for k in range(order)]
    weights = []
    for j in range(order):
        basis = np.polynomial.Polynomial([1.0])
        for k in range(order):
            if k != j:
                basis = basis * np.polynomial.Polynomial([-nodes[k], 1.0]) / (nodes[j] - nodes[k])
        integral = basis.integ()
        weights.append(float(integral(ts[i + 1]) - integral(ts[i])))
    return weights


@torch.no_grad()
def sample_lms(model, x, sigmas, *, extra_args=None, callback=None, disable=None, order=4):
    """Linear multistep method of order ``order`` (Adams-Bashforth; Karras et al. 2022 and Crowson's k-diffusion)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    ts = sigmas.detach().cpu().double().numpy()
    ds: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        ds.append(to_d(x, sigmas[i], denoised))
        if len(ds) > order:
            ds.pop(0)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        weights = adams_coefficients(ts, i, min(i + 1, order))
        x = x + sum(w * d for w, d in zip(weights, reversed(ds), strict=False))
    return x
