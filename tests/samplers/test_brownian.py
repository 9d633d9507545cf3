"""Brownian-tree noise: ComfyUI's BrownianTreeNoiseSampler number for number, checked against torchsde itself."""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers.brownian import BrownianTree, BrownianTreeNoise
from hearth_samplers.catalog import SAMPLERS
from hearth_samplers.sampling import Sampler, _noise_sampler

torchsde = pytest.importorskip("torchsde", reason="torchsde (requirements/dev.txt) is the reference")

X = torch.zeros(1, 4, 16, 16)
# A karras schedule's sigmas as float32, as ComfyUI's samplers hand them to the noise sampler.
SIGMAS = torch.tensor([14.614642, 6.2049, 2.3863, 0.8068, 0.2323, 0.0291675, 0.0])


def comfyui_noise(x: torch.Tensor, sigma_min: torch.Tensor, sigma_max: torch.Tensor, seed: int):
    """ComfyUI's BrownianTreeNoiseSampler with cpu=True, rebuilt on torchsde: the reference."""
    tree = torchsde.BrownianTree(sigma_min.cpu(), torch.zeros_like(x).cpu(), sigma_max.cpu(), entropy=seed)

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        low, high, sign = (sigma, sigma_next, 1) if sigma < sigma_next else (sigma_next, sigma, -1)
        w = tree(low.cpu().float(), high.cpu().float()).to(dtype=low.dtype) * sign
        return w / (sigma_next - sigma).abs().sqrt()

    return sample


@pytest.mark.filterwarnings("ignore:Should have")  # torchsde warns when a float32 end rounds past the tree's
@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3, 2**64 - 1])
def test_noise_is_torchsdes_brownian_tree_to_the_bit(seed: int) -> None:
    positive = SIGMAS[SIGMAS > 0]
    reference = comfyui_noise(X, positive.min(), SIGMAS.max(), seed)
    ours = BrownianTreeNoise(X, positive.min(), SIGMAS.max(), seed)
    # The steps of a 2M SDE run, then the midpoints a singlestep SDE solver asks for, then a step back up.
    queries = [(SIGMAS[i], SIGMAS[i + 1]) for i in range(len(SIGMAS) - 2)]
    queries += [(SIGMAS[i], (SIGMAS[i] * SIGMAS[i + 1]).sqrt()) for i in range(len(SIGMAS) - 2)]
    queries.append((SIGMAS[3], SIGMAS[1]))
    for sigma, sigma_next in queries:
        assert torch.equal(ours(sigma, sigma_next), reference(sigma, sigma_next)), (seed, sigma, sigma_next)


def test_the_tree_is_torchsdes_whatever_the_order_of_queries() -> None:
    ours = BrownianTree(0.03, 14.6, (2, 3), torch.float32, "cpu", seed=11)
    reference = torchsde.BrownianTree(0.03, torch.zeros(2, 3), 14.6, entropy=11)
    for ta, tb in [(5.0, 9.25), (0.03, 14.6), (0.1, 0.2), (0.5, 13.0), (2.0, 2.0)]:
        assert torch.equal(ours(ta, tb), reference(ta, tb)), (ta, tb)


def test_noise_over_an_interval_is_the_sum_of_its_parts_and_standard_normal() -> None:
    # The property SDE samplers rely on: cutting [14.6, 0.5] at 2.0 changes how the noise is split, not the path.
    noise = BrownianTreeNoise(torch.zeros(1, 4, 64, 64), 0.03, 14.6, seed=1)
    whole = noise(14.6, 0.5) * torch.tensor(14.1).sqrt()
    parts = noise(14.6, 2.0) * torch.tensor(12.6).sqrt() + noise(2.0, 0.5) * torch.tensor(1.5).sqrt()
    assert torch.allclose(whole, parts, atol=1e-4)
    sample = noise(14.6, 3.0)
    assert abs(sample.mean().item()) < 0.05 and abs(sample.std().item() - 1) < 0.05
    assert not torch.allclose(sample, BrownianTreeNoise(torch.zeros(1, 4, 64, 64), 0.03, 14.6, seed=2)(14.6, 3.0))


def test_sde_samplers_get_the_tree_on_the_cpu_their_gpu_variants_on_the_latents_device() -> None:
    sigmas = SIGMAS
    for name in ("dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde"):
        for variant, device in ((name, "cpu"), (f"{name}_gpu", X.device.type)):
            sampler = _noise_sampler(Sampler(SAMPLERS[variant], variant), X, sigmas, 0)
            assert isinstance(sampler, BrownianTreeNoise), variant
            assert sampler.tree.device.type == device
    for name in ("euler_ancestral", "er_sde", "sa_solver", "seeds_2"):  # ComfyUI seeds these with a plain generator
        assert not isinstance(_noise_sampler(Sampler(SAMPLERS[name], name), X, sigmas, 0), BrownianTreeNoise)


def test_bad_trees_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="t0 < t1"):
        BrownianTree(1.0, 1.0, (1,), torch.float32, "cpu", seed=0)
    with pytest.raises(ValueError, match="must not be negative"):
        BrownianTree(0.0, 1.0, (1,), torch.float32, "cpu", seed=-1)
    assert math.isclose(float(BrownianTree(0.0, 1.0, (1,), torch.float32, "cpu", 0)(0.5, 0.5)), 0.0)


@pytest.mark.filterwarnings("ignore:Should have")
def test_the_engines_comfyui_named_samplers_give_comfyuis_numbers() -> None:
    from hearth_samplers import engine

    # A transform to the tree's time (ends and queries alike) and one tree per batch item for a list of seeds.
    x = torch.zeros(2, 4, 8, 8)
    low, high = torch.tensor(0.0291675), torch.tensor(14.614642)
    sampler = engine.BrownianTreeNoiseSampler(x, low, high, seed=[3, 4], transform=lambda t: t.log())
    trees = [torchsde.BrownianTree(low.log(), torch.zeros(4, 8, 8), high.log(), entropy=s) for s in (3, 4)]
    a, b = torch.tensor(6.2049).log(), torch.tensor(2.3863).log()
    expected = torch.stack([tree(b, a) for tree in trees]) * -1 / (b - a).abs().sqrt()
    assert torch.equal(sampler(torch.tensor(6.2049), torch.tensor(2.3863)), expected)
    with pytest.raises(ValueError, match="3 seeds for a batch of 2"):
        engine.BrownianTreeNoiseSampler(x, low, high, seed=[1, 2, 3])
    first = engine.default_noise_sampler(x, seed=8)(1.0, 0.5)  # on the CPU: seed + 1, as ComfyUI since PR #11528
    assert torch.equal(first, torch.randn(x.shape, generator=torch.Generator().manual_seed(9)))
