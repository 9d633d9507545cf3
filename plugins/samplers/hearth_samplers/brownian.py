"""Brownian-tree noise for the SDE samplers, number for number ComfyUI's ``BrownianTreeNoiseSampler``: one Brownian
path per seed, so the noise over an interval is the same however the schedule cuts it.

ComfyUI builds the path with torchsde's ``BrownianTree`` (``tol=1e-6``, ``pool_size=24``, a halfway tree); this
module builds the same tree without the dependency, so one seed gives ComfyUI's noise:

* times are rounded to 6 decimals; the root spans ``[t0, t1]`` and its increment is ``N(0, 1) * sqrt(t1 - t0)``;
* an interval is split at its (rounded) middle, as often as needed to reach a queried time; the left child's
  increment is the Brownian bridge ``mean + sqrt(var) * N(0, 1)`` given the parent's, the right child's the rest;
* each normal draw comes from a fresh ``torch.Generator`` seeded by numpy's ``SeedSequence`` of the seed and the
  node's place in the tree (``spawn_key = (index, depth)``), the way torchsde splits its entropy;
* a query ``[ta, tb]`` sums the increments of the tree's intervals that tile it, left to right.

Increments are recomputed from the root when they fall out of a small LRU cache, so memory stays bounded on long
schedules; the values never depend on the order of queries.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

DIGITS = 6  # torchsde's BrownianTree tolerance, 1e-6, as the decimals it rounds times to
POOL_SIZE = 24  # torchsde's BrownianTree entropy pool
CACHE_SIZE = 45  # increments kept; torchsde keeps as many (a speed setting, never a value one)


class _Interval:
    """One node of the tree: ``[start, end]``, split at ``midway`` into two children once a query needs it."""

    __slots__ = ("start", "end", "parent", "is_left", "index", "depth", "midway", "seed", "left", "right")

    def __init__(self, start: float, end: float, parent: _Interval | None, is_left: bool) -> None:
        self.start, self.end = round(start, DIGITS), round(end, DIGITS)
        self.parent, self.is_left = parent, is_left
        if parent is None:
            self.index, self.depth = 0, 0
        else:
            self.index, self.depth = 2 * parent.index + (0 if is_left else 1), parent.depth + 1
        self.midway: float | None = None
        self.seed = 0
        self.left: _Interval | None = None
        self.right: _Interval | None = None


class BrownianTree:
    """A Brownian motion on ``[t0, t1]`` from ``seed``: ``tree(ta, tb)`` is its increment over ``[ta, tb]``.

    torchsde's ``BrownianTree(t0, zeros(shape), t1, entropy=seed)``: the same draws, on ``device`` in ``dtype``.
    """

    def __init__(self, t0: float, t1: float, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str,
                 seed: int) -> None:
        if not t0 < t1:
            raise ValueError(f"a Brownian tree needs t0 < t1, got {t0} and {t1}")
        if seed < 0:
            raise ValueError(f"a Brownian tree's seed must not be negative, got {seed}")
        self.shape, self.dtype, self.device, self.entropy = tuple(shape), dtype, torch.device(device), int(seed)
        self.root = _Interval(float(t0), float(t1), None, True)
        w_seed = np.random.SeedSequence(entropy=self.entropy, pool_size=POOL_SIZE).generate_state(3)[0]
        # torchsde scales by the width before rounding the ends.
        self.root_increment = self._normal(w_seed) * math.sqrt(float(t1) - float(t0))
        self._cache: OrderedDict[_Interval, torch.Tensor] = OrderedDict()

    def _normal(self, seed) -> torch.Tensor:
        generator = torch.Generator(self.device).manual_seed(int(seed))
        return torch.randn(self.shape, dtype=self.dtype, device=self.device, generator=generator)

    def _split(self, node: _Interval) -> None:
        middle = 0.5 * (node.end + node.start)
        node.midway = round(middle, DIGITS)
        spawn = np.random.SeedSequence(entropy=self.entropy, spawn_key=(node.index, node.depth), pool_size=POOL_SIZE)
        node.seed = int(spawn.generate_state(4)[0])  # the first of torchsde's four: the increment's
        node.left = _Interval(node.start, middle, node, True)
        node.right = _Interval(middle, node.end, node, False)

    def _tiles(self, ta: float, tb: float) -> list[_Interval]:
        """The tree's intervals that tile ``[ta, tb]`` (rounded times), left to right, splitting where needed."""
        tiles: list[_Interval] = []
        stack = [(self.root, ta, tb)]
        while stack:
            node, a, b = stack.pop()
            if a == node.start and b == node.end:
                tiles.append(node)
                continue
            if node.midway is None:
                self._split(node)
            m = node.midway
            if b <= m:
                stack.append((node.left, a, b))
            elif a >= m:
                stack.append((node.right, a, b))
            else:
                stack.append((node.right, m, b))
                stack.append((node.left, a, m))
        return tiles

    def _increment(self, node: _Interval) -> torch.Tensor:
        """The increment over ``node``: from its parent's by the Brownian bridge, ancestors computed first."""
        chain = []
        while node.parent is not None and node not in self._cache:
            chain.append(node)
            node = node.parent
        w = self.root_increment if node.parent is None else self._cache[node]
        for child in reversed(chain):
            parent = child.parent
            h_reciprocal = 1 / (parent.end - parent.start)
            left_diff = parent.midway - parent.start
            right_diff = parent.end - parent.midway
            # torchsde's expressions in its order, so the floats round alike.
            mean = left_diff * w * h_reciprocal
            var = left_diff * right_diff * h_reciprocal
            left_w = mean + math.sqrt(var) * self._normal(parent.seed)
            w = left_w if child.is_left else w - left_w
            self._cache[child] = w
            self._cache.move_to_end(child)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return w

    def __call__(self, ta: float, tb: float) -> torch.Tensor:
        # Outside the tree a time is clamped to its (rounded) ends, as torchsde does after warning.
        ta = min(max(float(ta), self.root.start), self.root.end)
        tb = min(max(float(tb), self.root.start), self.root.end)
        if ta > tb:
            raise ValueError(f"a Brownian increment needs ta <= tb, got {ta} and {tb}")
        ta, tb = round(ta, DIGITS), round(tb, DIGITS)
        if ta == tb:
            return torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        tiles = self._tiles(ta, tb)
        w = self._increment(tiles[0])
        for tile in tiles[1:]:
            w = w + self._increment(tile)
        return w


class BrownianTreeNoise:
    """A noise sampler ``(sigma, sigma_next) -> N(0, 1)`` from increments of one Brownian path over the sigmas.

    ComfyUI's ``BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed, cpu)``: with ``cpu`` the tree draws on the
    CPU (dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde), without it on ``x``'s device (their ``_gpu`` variants). The
    increment over ``[sigma_next, sigma]`` is divided by ``sqrt(|sigma_next - sigma|)`` in float32, as ComfyUI's.
    """

    def __init__(self, x: torch.Tensor, sigma_min, sigma_max, seed: int, cpu: bool = True) -> None:
        t0 = torch.as_tensor(sigma_min, dtype=torch.float32)
        t1 = torch.as_tensor(sigma_max, dtype=torch.float32)
        self.sign = 1 if t0 < t1 else -1
        low, high = (t0, t1) if t0 < t1 else (t1, t0)
        self.device = x.device
        self.tree = BrownianTree(float(low), float(high), tuple(x.shape), x.dtype,
                                 "cpu" if cpu else x.device, int(seed) % 2**64)

    def __call__(self, sigma, sigma_next) -> torch.Tensor:
        t0 = torch.as_tensor(sigma, dtype=torch.float32).to(self.device)
        t1 = torch.as_tensor(sigma_next, dtype=torch.float32).to(self.device)
        low, high, sign = (t0, t1, 1) if t0 < t1 else (t1, t0, -1)
        w = self.tree(float(low), float(high)).to(device=self.device, dtype=torch.float32) * (self.sign * sign)
        return w / (t1 - t0).abs().sqrt()


class BrownianTreeNoiseSampler:
    """ComfyUI's ``BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed, transform, cpu)`` for code that calls it
    by that name (custom-node packs): ``transform`` maps sigmas to the tree's time (ends and queries alike), a list
    of seeds gives one tree per batch item, and no seed a random one, as in ComfyUI."""

    def __init__(self, x: torch.Tensor, sigma_min, sigma_max, seed=None, transform=lambda t: t,
                 cpu: bool = False) -> None:
        self.transform = transform
        t0, t1 = transform(torch.as_tensor(sigma_min)), transform(torch.as_tensor(sigma_max))
        self.batched = isinstance(seed, (tuple, list))
        if seed is None:
            seeds = [int(torch.randint(0, 2**63 - 1, ()).item())]
        elif self.batched:
            if len(seed) != x.shape[0]:
                raise ValueError(f"BrownianTreeNoiseSampler: {len(seed)} seeds for a batch of {x.shape[0]}; pass one "
                                 "seed per batch item, or a single seed")
            seeds = [int(s) for s in seed]
        else:
            seeds = [int(seed)]
        like = x[0] if self.batched else x
        self.trees = [BrownianTreeNoise(like, t0, t1, s, cpu=cpu) for s in seeds]

    def __call__(self, sigma, sigma_next) -> torch.Tensor:
        t0, t1 = self.transform(torch.as_tensor(sigma)), self.transform(torch.as_tensor(sigma_next))
        noise = [tree(t0, t1) for tree in self.trees]
        return torch.stack(noise) if self.batched else noise[0]


def uses_brownian_noise(fn=None, *, cpu: bool = True):
    """Mark a sampler whose noise comes from one Brownian path (the SDE solvers); ``cpu=False`` for ComfyUI's
    ``_gpu`` variants, whose tree draws on the latent's device."""

    def mark(function):
        function.noise = "brownian" if cpu else "brownian_device"
        return function

    return mark if fn is None else mark(fn)
