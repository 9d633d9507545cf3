"""DPM-Solver (Lu et al. 2022, arXiv:2206.00927): fixed-step "fast" and adaptive-step samplers in lambda = -log sigma.

Both solve from the schedule's first sigma down to its last positive one. On a flow model that sigma is far from 0
(the second-to-last sigma of a 10-step shift-8 schedule is about 0.47), so when the schedule ends at 0 a flow model
gets one last evaluation there that lands on its clean estimate, as every other sampler's last step does; dpm_fast
spends one of its evaluations on it. Ancestral noise (``eta > 0``) follows the flow's marginals.
"""

from __future__ import annotations

import math

import torch

from .stepping import ancestral_step, ancestral_step_flow, gaussian_noise, is_flow


class PIDStepSizeController:
    """Step size control by the errors of the last three steps (Söderlind 2003, as in Lu et al. 2022, sec. 4.2)."""

    def __init__(self, h, pcoeff, icoeff, dcoeff, order=1, accept_safety=0.81, eps=1e-8):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs: list[float] = []

    def propose_step(self, error) -> bool:
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = 1 + math.atan(factor - 1)  # a soft limiter: no step grows or shrinks abruptly
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2], self.errs[1] = self.errs[1], self.errs[0]
        self.h *= factor
        return accept


class DPMSolver:
    """Single-step DPM-Solver-1/2/3 in the noise-prediction form, over a denoiser ``model(x, sigma) -> x0``."""

    def __init__(self, model, extra_args=None, on_eval=None, flow=False):
        self.model, self.flow = model, flow
        self.extra_args = {} if extra_args is None else extra_args
        self.on_eval = on_eval

    @staticmethod
    def t(sigma):
        return -sigma.log()

    @staticmethod
    def sigma(t):
        return t.neg().exp()

    def eps(self, cache, key, x, t):
        if key not in cache:
            sigma = self.sigma(t)
            cache[key] = (x - self.model(x, sigma * x.new_ones([x.shape[0]]), **self.extra_args)) / sigma
            if self.on_eval is not None:
                self.on_eval()
        return cache[key]

    def step_1(self, x, t, t_next, cache):
        """DPM-Solver-1 (eq. 3.7): the exact solution when eps is constant over the step (DDIM)."""
        h = t_next - t
        return x - self.sigma(t_next) * h.expm1() * self.eps(cache, "eps", x, t)

    def step_2(self, x, t, t_next, cache, r1=1 / 2):
        """DPM-Solver-2 (Algorithm 1)."""
        h = t_next - t
        eps = self.eps(cache, "eps", x, t)
        s1 = t + r1 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps(cache, "eps_r1", u1, s1)
        return x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / (2 * r1) * h.expm1() * (eps_r1 - eps)

    def step_3(self, x, t, t_next, cache, r1=1 / 3, r2=2 / 3):
        """DPM-Solver-3 (Algorithm 2)."""
        h = t_next - t
        eps = self.eps(cache, "eps", x, t)
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps(cache, "eps_r1", u1, s1)
        u2 = (x - self.sigma(s2) * (r2 * h).expm1() * eps
              - self.sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps))
        eps_r2 = self.eps(cache, "eps_r2", u2, s2)
        return x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)

    def step(self, order, x, t, t_next, cache):
        return (self.step_1, self.step_2, self.step_3)[order - 1](x, t, t_next, cache)

    def ancestral(self, t, t_next, t_end, eta):
        """Where the deterministic part of a step ends, the noise to add after it, and the factor for the signal
        (1, except on a flow model, whose renoising also scales the latent: :func:`ancestral_step_flow`)."""
        if not eta:
            return t_next, 0.0, 1.0
        if self.flow:
            sigma_next = float(self.sigma(t_next))
            sigma_down, _, _ = ancestral_step_flow(float(self.sigma(t)), sigma_next, eta)
            t_down = torch.minimum(t_end, self.t(torch.as_tensor(max(sigma_down, 1e-12), dtype=t.dtype)))
            sigma_down = float(self.sigma(t_down))
            ratio = (1 - sigma_next) / (1 - sigma_down)
            return t_down, max(0.0, sigma_next**2 - (ratio * sigma_down) ** 2) ** 0.5, ratio
        sigma_down, _ = ancestral_step(self.sigma(t), self.sigma(t_next), eta)
        t_down = torch.minimum(t_end, self.t(sigma_down))
        return t_down, (self.sigma(t_next) ** 2 - self.sigma(t_down) ** 2) ** 0.5, 1.0


def _finish_flow(model, x, sigma_min, extra_args, callback, i):
    """A flow model's last step from the solver's last sigma to 0: its clean estimate there."""
    sigma = torch.as_tensor(sigma_min, dtype=x.dtype, device=x.device)
    denoised = model(x, sigma * x.new_ones([x.shape[0]]), **(extra_args or {}))
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
    return denoised


def _sigma_range(sigmas):
    """(sigma_min, sigma_max) of a schedule: these solvers pick their own steps and stop short of sigma 0."""
    sigma_min = sigmas[-1] if sigmas[-1] > 0 else sigmas[-2]
    if sigma_min <= 0:
        raise ValueError("DPM-Solver needs a schedule with a positive sigma before its final 0")
    return sigma_min, sigmas[0]


@torch.no_grad()
def sample_dpm_fast(model, x, sigmas, *, extra_args=None, callback=None, disable=None, eta=0.0, s_noise=1.0,
                    noise_sampler=None):
    """DPM-Solver-fast: orders 3,3,...,(2,1) over ``len(sigmas) - 1`` evaluations (Lu et al. 2022, sec. 3.4)."""
    if len(sigmas) <= 1:
        return x
    sigma_min, sigma_max = _sigma_range(sigmas)
    nfe = len(sigmas) - 1
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    flow = is_flow(model)
    finish = flow and float(sigmas[-1]) == 0
    if finish:
        nfe -= 1  # the last evaluation is the step to 0
        if nfe == 0:
            return _finish_flow(model, x, sigma_min, extra_args, callback, 0)
    solver = DPMSolver(model, extra_args, flow=flow)
    t_start, t_end = solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min))
    m = nfe // 3 + 1
    ts = torch.linspace(float(t_start), float(t_end), m + 1, device=x.device)
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    for i, order in enumerate(orders):
        cache: dict = {}
        t, t_next = ts[i], ts[i + 1]
        t_down, sigma_up, ratio = solver.ancestral(t, t_next, t_end.to(ts), eta)
        eps = solver.eps(cache, "eps", x, t)
        if callback is not None:
            sigma = solver.sigma(t)
            callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": x - sigma * eps})
        x = solver.step(order, x, t, t_down, cache)
        if ratio != 1.0:
            x = x * ratio
        x = x + sigma_up * s_noise * noise_sampler(solver.sigma(t), solver.sigma(t_next))
    if finish:
        x = _finish_flow(model, x, sigma_min, extra_args, callback, len(orders))
    return x


@torch.no_grad()
def sample_dpm_adaptive(model, x, sigmas, *, extra_args=None, callback=None, disable=None, order=3, rtol=0.05,
                        atol=0.0078, h_init=0.05, pcoeff=0.0, icoeff=1.0, dcoeff=0.0, accept_safety=0.81, eta=0.0,
                        s_noise=1.0, noise_sampler=None):
    """DPM-Solver-12 / -23 with adaptive steps: the lower order estimates the error (Lu et al. 2022, sec. 4.2)."""
    if order not in (2, 3):
        raise ValueError(f"dpm_adaptive order must be 2 or 3, got {order}")
    if len(sigmas) <= 1:
        return x
    sigma_min, sigma_max = _sigma_range(sigmas)
    noise_sampler = gaussian_noise(x) if noise_sampler is None else noise_sampler
    flow = is_flow(model)
    solver = DPMSolver(model, extra_args, flow=flow)
    t_start, t_end = solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min))
    atol_t, rtol_t = torch.tensor(atol), torch.tensor(rtol)
    pid = PIDStepSizeController(abs(h_init), pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
    s, x_prev, steps = t_start, x, 0
    while s < t_end - 1e-5:
        cache: dict = {}
        t = torch.minimum(t_end, s + pid.h)
        t_down, sigma_up, ratio = solver.ancestral(s, t, t_end, eta)
        eps = solver.eps(cache, "eps", x, s)
        denoised = x - solver.sigma(s) * eps
        if order == 2:
            x_low = solver.step_1(x, s, t_down, cache)
            x_high = solver.step_2(x, s, t_down, cache)
        else:
            x_low = solver.step_2(x, s, t_down, cache, r1=1 / 3)
            x_high = solver.step_3(x, s, t_down, cache)
        delta = torch.maximum(atol_t, rtol_t * torch.maximum(x_low.abs(), x_prev.abs()))
        error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
        if pid.propose_step(error):
            x_prev = x_low
            x = x_high if ratio == 1.0 else x_high * ratio
            x = x + sigma_up * s_noise * noise_sampler(solver.sigma(s), solver.sigma(t))
            s = t
        steps += 1
        if callback is not None:
            sigma = solver.sigma(s)
            callback({"x": x, "i": steps - 1, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
    if flow and float(sigmas[-1]) == 0:
        x = _finish_flow(model, x, sigma_min, extra_args, callback, steps)
    return x
