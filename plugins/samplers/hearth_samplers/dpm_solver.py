"""DPM-Solver (Lu et al. 2022, arXiv:2206.00927): fixed-step "fast" and adaptive-step samplers in lambda = -log sigma.

Both solve from the schedule's first sigma down to its last positive one, and both work in the variance-exploding
form whatever the model: on a flow model too, as ComfyUI's do, so a workflow gives ComfyUI's image. (A flow
schedule's last positive sigma is far from 0, about 0.47 at 10 steps and shift 8, so there the result keeps that
much noise, in ComfyUI as here.)
"""

from __future__ import annotations

import math

import torch

from .stepping import ancestral_step, gaussian_noise


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

    def __init__(self, model, extra_args=None, on_eval=None):
        self.model = model
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
        """Where the deterministic part of a step ends, and the std of the noise to add after it."""
        if not eta:
            return t_next, 0.0
        sigma_down, _ = ancestral_step(self.sigma(t), self.sigma(t_next), eta)
        t_down = torch.minimum(t_end, self.t(sigma_down))
        return t_down, (self.sigma(t_next) ** 2 - self.sigma(t_down) ** 2) ** 0.5


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
    solver = DPMSolver(model, extra_args)
    t_start, t_end = solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min))
    m = nfe // 3 + 1
    ts = torch.linspace(float(t_start), float(t_end), m + 1, device=x.device)
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    for i, order in enumerate(orders):
        cache: dict = {}
        t, t_next = ts[i], ts[i + 1]
        t_down, sigma_up = solver.ancestral(t, t_next, t_end.to(ts), eta)
        eps = solver.eps(cache, "eps", x, t)
        if callback is not None:
            sigma = solver.sigma(t)
            callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": x - sigma * eps})
        x = solver.step(order, x, t, t_down, cache)
        x = x + sigma_up * s_noise * noise_sampler(solver.sigma(t), solver.sigma(t_next))
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
    solver = DPMSolver(model, extra_args)
    t_start, t_end = solver.t(torch.as_tensor(sigma_max)), solver.t(torch.as_tensor(sigma_min))
    atol_t, rtol_t = torch.tensor(atol), torch.tensor(rtol)
    pid = PIDStepSizeController(abs(h_init), pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
    s, x_prev, steps = t_start, x, 0
    while s < t_end - 1e-5:
        cache: dict = {}
        t = torch.minimum(t_end, s + pid.h)
        t_down, sigma_up = solver.ancestral(s, t, t_end, eta)
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
            x = x_high
            x = x + sigma_up * s_noise * noise_sampler(solver.sigma(s), solver.sigma(t))
            s = t
        steps += 1
        if callback is not None:
            sigma = solver.sigma(s)
            callback({"x": x, "i": steps - 1, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
    return x
