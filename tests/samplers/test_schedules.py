"""Schedules: the discrete ones read the model's training sigmas as ComfyUI's do; the beta quantile matches SciPy."""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers import discrete_schedules, schedules
from hearth_samplers.beta_distribution import beta_cdf, beta_ppf
from hearth_samplers.catalog import SCHEDULERS
from hearth_samplers.sampling import calculate_sigmas

from .toy_model import ToySampling

SAMPLING = ToySampling()


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("steps", [1, 4, 20])
def test_every_schedule_descends_from_sigma_max_to_zero(name: str, steps: int) -> None:
    sigmas = calculate_sigmas(SAMPLING, name, steps)
    assert sigmas.dtype == torch.float32 and sigmas[-1] == 0
    assert torch.all(sigmas[:-1] > sigmas[1:]), sigmas
    if name != "ddim_uniform":  # DDIM's subsequence starts at step 1 and strides up, short of the top
        assert float(sigmas[0]) == pytest.approx(SAMPLING.sigma_max, rel=1e-4)
    if name != "beta":  # beta merges quantiles that round to one timestep
        assert len(sigmas) == steps + 1


def test_simple_takes_every_nth_training_sigma_from_the_top() -> None:
    sigmas = discrete_schedules.get_sigmas_simple(SAMPLING, 4)
    assert sigmas.tolist() == pytest.approx([float(SAMPLING.sigmas[i]) for i in (999, 749, 499, 249)] + [0.0])


def test_ddim_uniform_steps_through_the_training_sigmas_from_step_one() -> None:
    sigmas = discrete_schedules.get_sigmas_ddim_uniform(SAMPLING, 4)
    assert sigmas.tolist() == pytest.approx([float(SAMPLING.sigmas[i]) for i in (751, 501, 251, 1)] + [0.0])


def test_normal_and_sgm_uniform_space_timesteps_evenly() -> None:
    normal = discrete_schedules.get_sigmas_normal(SAMPLING, 3)
    expected = [float(SAMPLING.sigma(torch.tensor(t))) for t in (999.0, 499.5, 0.0)]
    assert normal[:-1].tolist() == pytest.approx(expected, rel=1e-5)
    sgm = discrete_schedules.get_sigmas_sgm_uniform(SAMPLING, 3)
    expected = [float(SAMPLING.sigma(torch.tensor(t))) for t in (999.0, 666.0, 333.0)]
    assert sgm[:-1].tolist() == pytest.approx(expected, rel=1e-5)


def test_beta_schedule_takes_timesteps_at_beta_quantiles() -> None:
    stats = pytest.importorskip("scipy.stats")
    steps = 10
    quantiles = [1 - i / steps for i in range(steps)]
    timesteps = [round(float(stats.beta.ppf(q, 0.6, 0.6)) * 999) for q in quantiles]
    expected = [float(SAMPLING.sigmas[t]) for t in dict.fromkeys(timesteps)] + [0.0]
    assert discrete_schedules.get_sigmas_beta(SAMPLING, steps).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(("a", "b"), [(0.6, 0.6), (2.0, 5.0), (0.5, 3.0)])
def test_beta_quantiles_match_scipy(a: float, b: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    for q in (1e-6, 0.01, 0.2, 0.5, 0.77, 0.999):
        assert beta_ppf(q, a, b) == pytest.approx(float(stats.beta.ppf(q, a, b)), rel=1e-9, abs=1e-15)
        assert beta_cdf(beta_ppf(q, a, b), a, b) == pytest.approx(q, abs=1e-12)


def test_linear_quadratic_and_kl_optimal() -> None:
    lq = discrete_schedules.get_sigmas_linear_quadratic(SAMPLING, 10)
    # The first half falls linearly by threshold_noise / half per step, as fractions of sigma_max.
    fractions = (lq / SAMPLING.sigma_max).tolist()
    assert fractions[:5] == pytest.approx([1 - i * 0.025 / 5 for i in range(5)], abs=1e-6)
    kl = schedules.get_sigmas_kl_optimal(5, 0.03, 14.6)
    angles = torch.atan(kl[:-1].double())
    assert torch.allclose(angles.diff(), angles.diff()[0].expand(4), atol=1e-6)
    assert kl[0] == pytest.approx(14.6) and kl[-2] == pytest.approx(0.03)


def test_sd_turbo_schedule_and_percent_to_sigma() -> None:
    sigmas = discrete_schedules.sd_turbo_sigmas(SAMPLING, 2, denoise=0.5)
    assert sigmas.tolist() == pytest.approx([float(SAMPLING.sigmas[499]), float(SAMPLING.sigmas[399]), 0.0])
    assert schedules.percent_to_sigma(SAMPLING, 0.0) > SAMPLING.sigma_max
    assert schedules.percent_to_sigma(SAMPLING, 1.0) == 0.0
    middle = schedules.percent_to_sigma(SAMPLING, 0.5)
    assert math.isclose(middle, float(SAMPLING.sigma(torch.tensor(499.5))), rel_tol=1e-6)
