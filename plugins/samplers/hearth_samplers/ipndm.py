"""iPNDM: pseudo-numerical multistep with Adams-Bashforth weights (Zhang & Chen 2023, arXiv:2204.13902, sec. 5):
fixed equal-step weights (``ipndm``), or weights for the schedule's actual step sizes (``ipndm_v``, after Zhou et
al.'s diff-solvers)."""

from __future__ import annotations

import torch

from .stepping import multistep


def _sigma(levels: list[float], i: int) -> torch.Tensor:
    """Sigma ``i`` as the float32 0-d tensor ComfyUI computes with (steps and weights then round as its do)."""
    return torch.tensor(levels[i], dtype=torch.float32)


@torch.no_grad()
def sample_ipndm(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=4):
    """Improved PNDM (Zhang & Chen 2023): Adams-Bashforth in sigma over the last ``max_order`` ODE derivatives."""

    def advance(x, denoised, history, i, levels):
        if levels[i + 1] == 0:
            return denoised
        dt = _sigma(levels, i + 1) - _sigma(levels, i)
        # Adams-Bashforth weights for equal steps, newest derivative first (order 1 to 4), used even on uneven
        # schedules, warming up with the lower orders instead of PNDM's Runge-Kutta start; written as ComfyUI
        # writes them (integer numerators over one denominator), so the floats round as its do.
        order = len(history)
        if order == 1:
            return x + dt * history[0]
        if order == 2:
            return x + dt * (3 * history[0] - history[1]) / 2
        if order == 3:
            return x + dt * (23 * history[0] - 16 * history[1] + 5 * history[2]) / 12
        return x + dt * (55 * history[0] - 59 * history[1] + 37 * history[2] - 9 * history[3]) / 24

    return multistep(model, x, sigmas, advance, name="ipndm", max_order=max_order, extra_args=extra_args,
                     callback=callback)


def _variable_weights(order: int, h: list[float]) -> tuple[float, ...]:
    """Adams-Bashforth-type weights for uneven steps, newest derivative first; ``h`` = [this step, the previous
    steps...] in sigma (negative when sigma falls).

    Order 2 is the exact variable-step rule. Orders 3 and 4 are the expressions ComfyUI's ``ipndm_v`` evaluates
    (from diff-solvers), kept as they are so a workflow samples the same: order 3 reduces to Adams-Bashforth 3 on
    equal steps, order 4 does not reduce to Adams-Bashforth 4 (57/24, -65/24, 43/24, -11/24 there).
    """
    if order == 1:
        return (1.0,)
    h0, h1 = h[0], h[1]
    w1, w2 = (2 + h0 / h1) / 2, -(h0 / h1) / 2
    if order == 2:
        return (w1, w2)
    h2 = h[2]
    t1 = (1 - h0 / (3 * (h0 + h1)) * (h0 * (h0 + h1)) / (h1 * (h1 + h2))) / 2
    if order == 3:
        return (w1 + t1, w2 - (1 + h1 / h2) * t1, t1 * h1 / h2)
    h3 = h[3]
    t2 = ((1 - h0 / (3 * (h0 + h1))) / 2 + (1 - h0 / (2 * (h0 + h1))) * h0 / (6 * (h0 + h1 + h2))) \
        * (h0 * (h0 + h1) * (h0 + h1 + h2)) / (h1 * (h1 + h2) * (h1 + h2 + h3))
    ratio = h1 * (h1 + h2) / (h2 * (h2 + h3))
    return (w1 + t1 + t2,
            w2 - (1 + h1 / h2) * t1 - (1 + h1 / h2 + ratio) * t2,
            t1 * h1 / h2 + (h1 / h2 + ratio * (1 + h2 / h3)) * t2,
            -t2 * ratio * h1 / h2)


@torch.no_grad()
def sample_ipndm_v(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=4):
    """iPNDM with variable-step Adams-Bashforth weights (the schedule's own step sizes)."""

    def advance(x, denoised, history, i, levels):
        if levels[i + 1] == 0:
            return denoised
        steps = [_sigma(levels, i + 1) - _sigma(levels, i)] + [
            _sigma(levels, i - k) - _sigma(levels, i - k - 1) for k in range(len(history) - 1)]
        weights = _variable_weights(len(history), steps)
        return x + steps[0] * sum(w * d for w, d in zip(weights, history, strict=True))

    return multistep(model, x, sigmas, advance, name="ipndm_v", max_order=max_order, extra_args=extra_args,
                     callback=callback)
