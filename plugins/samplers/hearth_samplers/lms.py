"""Linear multistep (Adams-Bashforth in sigma) over the probability-flow ODE, as in k-diffusion's ``lms``."""

from __future__ import annotations

import numpy as np
import torch

from .stepping import report, to_d

# QUADPACK's 21-point Gauss-Kronrod rule (dqk21): its nodes on [-1, 1] from the outside in, then the centre, and
# their Kronrod weights. The even-indexed nodes (0, 2, ...) are Kronrod's own, the odd ones Gauss's.
_KRONROD_NODES = (
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452, 0.930157491355708226001207180059508,
    0.865063366688984510732096688423493, 0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784, 0.294392862701460198131126603103866,
    0.148874338981631210884826001129720, 0.0,
)
_KRONROD_WEIGHTS = (
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390, 0.054755896574351996031381300244580,
    0.075039674810919952767043140916190, 0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077208814867341, 0.134709217311473325928054001771707, 0.142775938577060080797094273138717,
    0.147739104901338491374841515972068, 0.149445554002916905664936468389821,
)


def _kronrod21(f, a: float, b: float) -> float:
    """QUADPACK's dqk21 estimate of the integral of ``f`` over ``[a, b]``, summed in its order (Gauss nodes first,
    then Kronrod's). For the polynomials below its error estimate is far inside ``quad``'s tolerance, so this is
    the value ``scipy.integrate.quad`` returns."""
    centre, half = 0.5 * (a + b), 0.5 * (b - a)
    total = _KRONROD_WEIGHTS[10] * f(centre)
    for j in (1, 3, 5, 7, 9, 0, 2, 4, 6, 8):
        offset = half * _KRONROD_NODES[j]
        total = total + _KRONROD_WEIGHTS[j] * (f(centre - offset) + f(centre + offset))
    return total * half


def adams_coefficients(ts: list[float], i: int, order: int) -> list[float]:
    """Weights of the last ``order`` derivatives for the step ``ts[i] -> ts[i + 1]``, as ComfyUI computes them.

    Each weight is the integral over the step of a Lagrange basis polynomial through ``ts[i], ts[i-1], ...``.
    ComfyUI (k-diffusion's ``linear_multistep_coeff``) evaluates that polynomial on the float32 sigmas, so in
    float32 arithmetic, and integrates it with ``scipy.integrate.quad``: here the same float32 evaluation and
    QUADPACK's 21-point rule, which give its weights to the bit (an exact integral in float64 differs in the last
    bits, and the latent by 1e-4 after a few steps).
    """
    if order - 1 > i:
        raise ValueError(f"order {order} needs {order - 1} earlier steps; step {i} has only {i}")
    nodes = [np.float32(ts[i - k]) for k in range(order)]

    def basis(j: int):
        def f(tau: float) -> float:
            t, value = np.float32(tau), np.float32(1.0)
            for k in range(order):
                if k != j:
                    value = value * ((t - nodes[k]) / (nodes[j] - nodes[k]))
            return float(value)
        return f

    return [_kronrod21(basis(j), float(np.float32(ts[i])), float(np.float32(ts[i + 1]))) for j in range(order)]


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
