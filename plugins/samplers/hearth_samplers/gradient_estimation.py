"""Gradient estimation sampler (Permenter & Yuan 2024, "Interpreting and improving diffusion models from an
optimization perspective"): Euler steps whose direction is corrected by ``(gamma - 1)`` times its change since the
previous step; the last step to sigma 0 is the clean estimate itself. ComfyUI's ``gradient_estimation``."""

from __future__ import annotations

import torch

from .stepping import report, to_d


@torch.no_grad()
def sample_gradient_estimation(model, x, sigmas, *, extra_args=None, callback=None, disable=None, ge_gamma=2.0):
    """Euler with the gradient-estimation correction ``d + (gamma - 1) * (d - d_previous)``."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    old_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        d = to_d(x, sigmas[i], denoised)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if float(sigmas[i + 1]) == 0:
            x = denoised
        else:
            x = x + d * dt
            if i >= 1:
                x = x + (ge_gamma - 1) * (d - old_d) * dt
        old_d = d
    return x
