"""Linear multistep (Adams-Bashforth in sigma) over the probability-flow ODE, as in k-diffusion's ``lms``."""

from __future__ import annotations

import math

import torch

from .stepping import report, to_d


def adams_coefficients(ts: list[float], i: int, order: int) -> list[float]:
    """Weights of the last ``order`` derivatives for the step ``ts[i] -> ts[i + 1]``.

    Each weight is the integral over the step of a Lagrange basis polynomial through ``ts[i], ts[i-1], ...``;
    the polynomial (degree < 4) is expanded and integrated exactly in plain floats, which is both free of
    quadrature error and cheap enough to do at every step.
    """
    if order - 1 > i:
        raise ValueError(f"order {order} needs {order - 1} earlier steps; step {i} has only {i}")
    nodes = [ts[i - k] for k in range(order)]
    a, b = ts[i], ts[i + 1]
    weights = []
    for j in range(order):
        others = nodes[:j] + nodes[j + 1:]
        coefficients = [1.0]  # prod(t - t_k), lowest power first
        for root in others:
            shifted = [0.0, *coefficients]
            for k, c in enumerate(coefficients):
                shifted[k] -= c * root
            coefficients = shifted
        integral = sum(c * (b ** (k + 1) - a ** (k + 1)) / (k + 1) for k, c in enumerate(coefficients))
        weights.append(integral / math.prod(nodes[j] - t_k for t_k in others))
    return weights


@torch.no_grad()
def sample_lms(model, x, sigmas, *, extra_args=None, callback=None, disable=None, order=4):
    """Linear multistep method of order ``order`` (Adams-Bashforth; Karras et al. 2022 and Crowson's k-diffusion)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    levels = sigmas.tolist()
    ds: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        ds.append(to_d(x, levels[i], denoised))
        if len(ds) > order:
            ds.pop(0)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if levels[i + 1] == 0:
            # The last step lands on the clean estimate, as ComfyUI's lms does, rather than extrapolating to 0.
            x = denoised
            continue
        weights = adams_coefficients(levels, i, min(i + 1, order))
        x = x + sum(w * d for w, d in zip(weights, reversed(ds), strict=False))
    return x
