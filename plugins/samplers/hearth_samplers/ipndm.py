"""iPNDM: pseudo-numerical multistep with fixed Adams-Bashforth weights (Zhang & Chen 2023, arXiv:2204.13902, sec. 5)."""

from __future__ import annotations

import torch

from .stepping import report

# Adams-Bashforth weights for equal steps, newest derivative first (order 1 to 4). iPNDM uses them even on
# uneven schedules and warms up with the lower orders instead of PNDM's Runge-Kutta start.
_WEIGHTS = ((1.0,), (3 / 2, -1 / 2), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


@torch.no_grad()
def sample_ipndm(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=4):
    """Improved PNDM (Zhang & Chen 2023): Adams-Bashforth in sigma over the last ``max_order`` ODE derivatives."""
    if not 1 <= max_order <= 4:
        raise ValueError(f"ipndm max_order must be 1 to 4, got {max_order}")
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    history: list[torch.Tensor] = []  # derivatives, newest first
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        history.insert(0, (x - denoised) / sigma)
        del history[max_order:]
        if sigma_next == 0:
            x = denoised
            continue
        weights = _WEIGHTS[len(history) - 1]
        x = x + (sigma_next - sigma) * sum(w * d for w, d in zip(weights, history, strict=True))
    return x
