"""Samplers k-diffusion lacks (heunpp2, ddpm, lcm, ipndm, deis, ddim, uni_pc, uni_pc_bh2), checked against exact
solutions: for Gaussian data the ideal denoiser and the probability-flow ODE's solution are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers import schedules
from hearth_samplers.catalog import SAMPLERS

MU, S = 0.3, 0.5  # data ~ N(MU, S^2) per element


def ideal_denoiser(x: torch.Tensor, sigma: torch.Tensor, **_) -> torch.Tensor:
    s2 = sigma.reshape(-1, 1, 1, 1).double() ** 2
    return ((S**2 * x.double() + s2 * MU) / (S**2 + s2)).to(x.dtype)


def exact(x: torch.Tensor, sigma_from: float, sigma_to: float) -> torch.Tensor:
    """The probability-flow ODE carries x - MU along sqrt(S^2 + sigma^2)."""
    return MU + (x - MU) * math.sqrt(S**2 + sigma_to**2) / math.sqrt(S**2 + sigma_from**2)


def _error(name: str, n: int) -> float:
    # Stop at sigma 0.05 (no final jump to 0) so the error is the solver's, not the endpoint's.
    sigmas = schedules.get_sigmas_exponential(n + 1, 0.05, 10.0)[:-1].double()
    x = torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 10.0
    out = SAMPLERS[name](ideal_denoiser, x, sigmas)
    return (out - exact(x, 10.0, 0.05)).abs().max().item()


@pytest.mark.parametrize(("name", "ratio"), [("ipndm", 3.0), ("deis", 3.0), ("uni_pc", 3.0), ("uni_pc_bh2", 3.0),
                                             ("heunpp2", 1.7), ("ddim", 1.7)])
def test_error_falls_with_the_methods_order(name: str, ratio: float) -> None:
    # Halving the step divides the error by about 2**order: about 4 for the multistep methods (second order
    # or better on this schedule), 2 for the first-order ones.
    coarse, fine = _error(name, 32), _error(name, 64)
    assert coarse / fine > ratio, (coarse, fine)


def test_higher_order_methods_beat_euler() -> None:
    euler = _error("euler", 12)
    for name in ("ipndm", "deis", "uni_pc", "uni_pc_bh2"):
        assert _error(name, 12) < euler / 5, name


def test_ddim_without_eta_is_the_euler_step() -> None:
    sigmas = schedules.get_sigmas_karras(10, 0.03, 14.6)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 14.6
    assert torch.allclose(SAMPLERS["ddim"](ideal_denoiser, x, sigmas), SAMPLERS["euler"](ideal_denoiser, x, sigmas),
                          atol=1e-5)


@pytest.mark.parametrize("name", ["ddpm", "euler_ancestral", "dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_sde"])
def test_stochastic_samplers_draw_from_the_data_distribution(name: str) -> None:
    # With the ideal denoiser, ancestral/SDE sampling ends distributed as the data: N(MU, S^2) (the first-order
    # ones up to a bias that shrinks with the step; 200 steps keep it under 3%).
    sigmas = schedules.get_sigmas_karras(200, 0.02, 20.0)
    x = torch.randn(1, 1, 128, 128, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 20.0
    generator = torch.Generator().manual_seed(3)
    noise = lambda sigma, sigma_next: torch.randn(x.shape, generator=generator, dtype=x.dtype)  # noqa: E731
    out = SAMPLERS[name](ideal_denoiser, x, sigmas, noise_sampler=noise)
    assert out.mean().item() == pytest.approx(MU, abs=0.03)
    assert out.std().item() == pytest.approx(S, rel=0.05)
    # The deterministic ODE from the same start ends elsewhere: the noise was used.
    assert not torch.allclose(out, SAMPLERS["euler"](ideal_denoiser, x, sigmas), atol=1e-2)


def test_ddpm_posterior_step_equals_the_ancestral_euler_step() -> None:
    # Ho et al.'s posterior sampling and k-diffusion's ancestral Euler (eta 1) are one method in two forms.
    sigmas = schedules.get_sigmas_karras(15, 0.03, 14.6)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)) * 14.6

    def run(name: str) -> torch.Tensor:
        generator = torch.Generator().manual_seed(6)
        return SAMPLERS[name](ideal_denoiser, x, sigmas,
                              noise_sampler=lambda s, sn: torch.randn(x.shape, generator=generator))

    assert torch.allclose(run("ddpm"), run("euler_ancestral"), atol=1e-5)


def test_lcm_jumps_to_the_estimate_then_renoises_to_the_next_sigma() -> None:
    sigmas = torch.tensor([8.0, 2.0, 0.5, 0.0])
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4)) * 8.0
    draws = [torch.full_like(x, float(k + 1)) for k in range(2)]
    seen: list[tuple[float, torch.Tensor]] = []
    calls = iter(draws)
    out = SAMPLERS["lcm"](lambda x, s, **_: torch.full_like(x, 0.25), x, sigmas,
                          noise_sampler=lambda s, sn: next(calls),
                          callback=lambda d: seen.append((float(d["sigma"]), d["x"])))
    assert [s for s, _ in seen] == [8.0, 2.0, 0.5]
    assert torch.allclose(seen[1][1], 0.25 + 2.0 * draws[0]) and torch.allclose(seen[2][1], 0.25 + 0.5 * draws[1])
    assert torch.allclose(out, torch.full_like(x, 0.25))


def test_uni_pc_spends_one_model_call_per_step() -> None:
    calls = []

    def counting(x, sigma, **_):
        calls.append(float(sigma[0]))
        return ideal_denoiser(x, sigma)

    sigmas = schedules.get_sigmas_karras(10, 0.03, 14.6)
    SAMPLERS["uni_pc"](counting, torch.randn(1, 4, 8, 8) * 14.6, sigmas)
    assert len(calls) == 10 and calls[0] == pytest.approx(14.6)
