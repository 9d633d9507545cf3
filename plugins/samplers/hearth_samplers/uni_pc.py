"""UniPC (Zhao et al. 2023, arXiv:2302.04867): multistep predictor UniP with corrector UniC, data prediction.

Computed the way ComfyUI's ``uni_pc`` computes it, so one workflow gives ComfyUI's latents to the bit: in the
variance-preserving latent ``x / sqrt(1 + sigma**2)`` with the marginals of ``sigma`` (``alpha = 1 / sqrt(1 +
sigma**2)``, ``lambda = log(alpha / std)``), the model's noise estimate turned into a clean one, and float32
tensors throughout. ``bh1`` and ``bh2`` are the paper's two choices of ``B(h)`` (``h`` and ``e^h - 1``; sec. 3.3).
A schedule ending at sigma 0 stops at sigma 0.001 (lambda is infinite at 0) and the corrector is skipped on the
last step, so ``N`` steps cost ``N`` model calls. The order is at most 3 and at most ``steps - 1``, and falls again
over the last steps; at one step it is 0, as in ComfyUI: the latent does not move.
"""

from __future__ import annotations

import torch

from .stepping import report

FINAL_SIGMA = 0.001


def _log_mean(sigma: torch.Tensor) -> torch.Tensor:
    """``log(alpha)`` of the VP latent at ``sigma``."""
    return 0.5 * torch.log(1 / ((sigma * sigma) + 1))


def _std(sigma: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(1.0 - torch.exp(2.0 * _log_mean(sigma)))


def _lambda(sigma: torch.Tensor) -> torch.Tensor:
    log_mean = _log_mean(sigma)
    return log_mean - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_mean))


def _per_item(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v[(...,) + (None,) * (ndim - 1)]


class _Solver:
    """The data-prediction model on VP latents and UniPC's update between two of its times."""

    def __init__(self, model, extra_args, variant: str) -> None:
        self.model, self.extra_args, self.variant = model, extra_args, variant

    def clean(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean estimate at VP latent ``x``, time (sigma) ``t`` per item: from the denoiser's noise estimate."""
        scale = _per_item(t, x.ndim)
        noisy = x * ((scale**2 + 1.0) ** 0.5)
        eps = (noisy - self.model(noisy, t, **self.extra_args)) / scale
        return (x - _per_item(_std(t), x.ndim) * eps) / _per_item(torch.exp(_log_mean(t)), x.ndim)

    def update(self, x, clean_list, t_list, t, order: int, use_corrector: bool):
        """One UniP step to ``t`` of order ``order`` from the last estimates, then UniC (one more model call) if
        ``use_corrector``; returns ``(x_t, clean estimate at t or None)``."""
        ndim = x.ndim
        t_0, clean_0 = t_list[-1], clean_list[-1]
        lambda_0, lambda_t = _lambda(t_0), _lambda(t)
        sigma_0, sigma_t = _std(t_0), _std(t)
        alpha_t = torch.exp(_log_mean(t))
        h = lambda_t - lambda_0
        rks, differences = [], []
        for k in range(1, order):
            rk = ((_lambda(t_list[-(k + 1)]) - lambda_0) / h)[0]
            rks.append(rk)
            differences.append((clean_list[-(k + 1)] - clean_0) / rk)
        rks.append(1.0)
        rks = torch.tensor(rks, dtype=h.dtype, device=x.device)
        hh = -h[0]
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        b_h = hh if self.variant == "bh1" else torch.expm1(hh)
        rows, b, factorial = [], [], 1
        for i in range(1, order + 1):
            rows.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        rows, b = torch.stack(rows), torch.tensor(b, dtype=h.dtype, device=x.device)
        stacked = torch.stack(differences, dim=1) if differences else None
        x_t_ = _per_item(sigma_t / sigma_0, ndim) * x - _per_item(alpha_t * h_phi_1, ndim) * clean_0
        # UniP: the predictor, of order `order` with the earlier estimates as extra points.
        if stacked is not None:
            rhos_p = b.new_tensor([0.5]) if order == 2 else torch.linalg.solve(rows[:-1, :-1], b[:-1])
            x_t = x_t_ - _per_item(alpha_t * b_h, ndim) * torch.tensordot(stacked, rhos_p, dims=([1], [0]))
        else:
            x_t = x_t_ - _per_item(alpha_t * b_h, ndim) * 0
        if not use_corrector:
            return x_t, None
        # UniC: one more model call at the prediction raises the order by one at no extra cost per step, since
        # the same estimate serves the next step.
        rhos_c = b.new_tensor([0.5]) if order == 1 else torch.linalg.solve(rows, b)
        clean_t = self.clean(x_t, t)
        correction = 0 if stacked is None else torch.tensordot(stacked, rhos_c[:-1], dims=([1], [0]))
        x_t = x_t_ - _per_item(alpha_t * b_h, ndim) * (correction + rhos_c[-1] * (clean_t - clean_0))
        return x_t, clean_t


def _sample(model, x, sigmas, extra_args, callback, variant, max_order=3):
    extra_args = {} if extra_args is None else extra_args
    if len(sigmas) <= 1:
        return x
    times = sigmas.clone()
    if times[-1] == 0:
        times[-1] = FINAL_SIGMA
    steps = len(times) - 1
    order = min(max_order, steps - 1)
    solver = _Solver(model, extra_args, variant)
    x = x / torch.sqrt(1.0 + times[0] ** 2.0)
    batch = x.shape[0]
    t = times[0].expand(batch)
    clean_list, t_list = [solver.clean(x, t)], [t]
    report(callback, x, 0, sigmas[0], sigmas[0], clean_list[-1])
    if order == 0:
        # One step: ComfyUI's order 0, which evaluates the model once and never moves x. Kept, so the workflow
        # gives ComfyUI's image (the start latent, rescaled); any other sampler makes a picture in one step.
        return x / torch.exp(_log_mean(times[-1]))
    for index in range(1, steps + 1):
        t = times[index].expand(batch)
        if index < order:
            # Warm up with the orders the history allows.
            x, clean_t = solver.update(x, clean_list, t_list, t, index, True)
            clean_list.append(clean_t)
            t_list.append(t)
        else:
            last = index == steps
            x, clean_t = solver.update(x, clean_list, t_list, t, min(order, steps + 1 - index), not last)
            # The oldest estimate leaves; the last step (no corrector) leaves the newest one in place.
            clean_list, t_list = clean_list[1:] + [clean_list[-1]], t_list[1:] + [t]
            if clean_t is not None:
                clean_list[-1] = clean_t
        if index < steps:
            report(callback, x, index, sigmas[index], sigmas[index], clean_list[-1])
    return x / torch.exp(_log_mean(times[-1]))


@torch.no_grad()
def sample_uni_pc(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """UniPC-p with B(h) = h ("bh1"), third order by default (Zhao et al. 2023)."""
    return _sample(model, x, sigmas, extra_args, callback, "bh1", max_order)


@torch.no_grad()
def sample_uni_pc_bh2(model, x, sigmas, *, extra_args=None, callback=None, disable=None, max_order=3):
    """UniPC-p with B(h) = e^h - 1 ("bh2"), better at few steps with guidance (Zhao et al. 2023, sec. 3.3)."""
    return _sample(model, x, sigmas, extra_args, callback, "bh2", max_order)
