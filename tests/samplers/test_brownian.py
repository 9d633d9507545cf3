"""Brownian noise: standard normal increments of one path per seed, whatever the schedule's cuts."""

from __future__ import annotations

import math

import torch
from hearth_samplers.brownian import BrownianNoise
from hearth_samplers.catalog import SAMPLERS
from hearth_samplers.sampling import Sampler, _noise_sampler

X = torch.zeros(1, 4, 64, 64)


def test_increments_are_standard_normal_and_fixed_by_the_seed() -> None:
    noise = BrownianNoise(X, 0.03, 14.6, seed=5)
    sample = noise(14.6, 3.0)
    assert abs(sample.mean().item()) < 0.05 and abs(sample.std().item() - 1) < 0.05
    assert torch.equal(sample, BrownianNoise(X, 0.03, 14.6, seed=5)(14.6, 3.0))
    assert not torch.allclose(sample, BrownianNoise(X, 0.03, 14.6, seed=6)(14.6, 3.0))


def test_noise_over_an_interval_is_the_sum_of_its_parts() -> None:
    # The property SDE samplers rely on: cutting [14.6, 0.5] at 2.0 changes how the noise is split, not the path.
    noise = BrownianNoise(X, 0.03, 14.6, seed=1)
    whole = noise(14.6, 0.5) * math.sqrt(14.1)
    parts = noise(14.6, 2.0) * math.sqrt(12.6) + noise(2.0, 0.5) * math.sqrt(1.5)
    assert torch.allclose(whole, parts, atol=1e-4)
    # Disjoint intervals are independent.
    a, b = noise(14.6, 7.0), noise(7.0, 0.5)
    assert abs((a * b).mean().item()) < 0.05


def test_sde_samplers_get_brownian_noise_and_the_others_gaussian() -> None:
    sigmas = torch.tensor([14.6, 3.0, 0.5, 0.0])
    for name in ("dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde"):
        assert isinstance(_noise_sampler(Sampler(SAMPLERS[name], name), X, sigmas, 0), BrownianNoise)
    assert not isinstance(_noise_sampler(Sampler(SAMPLERS["euler_ancestral"]), X, sigmas, 0), BrownianNoise)
