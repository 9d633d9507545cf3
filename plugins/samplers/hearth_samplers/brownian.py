"""Brownian-motion noise for SDE samplers: one path per seed, so noise over an interval is the same however the
schedule cuts it (the role torchsde's BrownianTree plays in k-diffusion, without the dependency).

The path is built by Lévy's midpoint construction on the sigma interval: the value at the middle of an interval,
given its ends, is normal around their mean with variance a quarter of the width, and each midpoint's draw comes
from a generator seeded by the seed and the node's position in the binary tree. Reading ``W(t)`` walks that
tree down to a width of 2^-16 of the interval and interpolates linearly inside (an error far below any step).
"""

from __future__ import annotations

import math

import torch

DEPTH = 16
_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: spreads node numbers over the seed space


class BrownianNoise:
    """A noise sampler ``(sigma, sigma_next) -> standard normal noise`` from increments of one Brownian path."""

    def __init__(self, x: torch.Tensor, sigma_min: float, sigma_max: float, seed: int) -> None:
        if not 0 <= sigma_min < sigma_max:
            raise ValueError(f"Brownian noise needs 0 <= sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.shape, self.dtype, self.device = tuple(x.shape), x.dtype, x.device
        self.t0, self.t1, self.seed = float(sigma_min), float(sigma_max), int(seed)
        self.zero = torch.zeros(self.shape)
        self.w1 = self._normal(0) * math.sqrt(self.t1 - self.t0)  # W(t0) = 0; midpoints are nodes 1, 2...

    def _normal(self, node: int) -> torch.Tensor:
        generator = torch.Generator("cpu").manual_seed((self.seed ^ (node * _MIX)) % 2**64)
        return torch.randn(self.shape, generator=generator, dtype=torch.float32)

    def value(self, t: float) -> torch.Tensor:
        """W(t) on the CPU, ``t`` clamped to the interval."""
        t = min(max(t, self.t0), self.t1)
        a, b, w_a, w_b, node = self.t0, self.t1, self.zero, self.w1, 1
        for _ in range(DEPTH):
            m = (a + b) / 2
            w_m = (w_a + w_b) / 2 + self._normal(node) * math.sqrt((b - a) / 4)
            if t < m:
                b, w_b, node = m, w_m, 2 * node
            else:
                a, w_a, node = m, w_m, 2 * node + 1
        return torch.lerp(w_a, w_b, (t - a) / (b - a))

    def __call__(self, sigma, sigma_next) -> torch.Tensor:
        s, s_next = float(sigma), float(sigma_next)
        increment = (self.value(s_next) - self.value(s)) / math.sqrt(abs(s_next - s))
        return increment.to(self.device, self.dtype)


def uses_brownian_noise(fn):
    """Mark a sampler whose noise should come from one Brownian path (the SDE solvers)."""
    fn.noise = "brownian"
    return fn
