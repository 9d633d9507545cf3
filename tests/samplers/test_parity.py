"""Every sampler and schedule that k-diffusion also has gives k-diffusion's result (max abs difference <= 1e-5)."""

from __future__ import annotations

import pytest
import torch
from hearth_samplers import schedules
from hearth_samplers.catalog import SAMPLERS

from .oracle import load_k_diffusion_sampling, seeded_noise, toy_denoiser

TOLERANCE = 1e-5

# name -> options given to both implementations; "noise" marks samplers that take a noise sampler.
CASES = [
    ("euler", {}), ("euler", {"s_churn": 2.0}),
    ("euler_ancestral", {"noise": True}), ("euler_ancestral", {"noise": True, "eta": 0.5, "s_noise": 0.9}),
    ("heun", {}), ("heun", {"s_churn": 2.0, "s_tmin": 0.5, "s_tmax": 5.0}),
    ("dpm_2", {}), ("dpm_2", {"s_churn": 1.0}),
    ("dpm_2_ancestral", {"noise": True}),
    ("lms", {}), ("lms", {"order": 2}),
    ("dpm_fast", {}), ("dpm_fast", {"noise": True, "eta": 1.0}),
    ("dpm_adaptive", {}), ("dpm_adaptive", {"order": 2, "rtol": 0.01}),
    ("dpmpp_2s_ancestral", {"noise": True}),
    ("dpmpp_sde", {"noise": True}), ("dpmpp_sde", {"noise": True, "eta": 0.5, "r": 0.3}),
    ("dpmpp_2m", {}),
    ("dpmpp_2m_sde", {"noise": True}), ("dpmpp_2m_sde", {"noise": True, "solver_type": "heun", "eta": 0.7}),
    ("dpmpp_3m_sde", {"noise": True}), ("dpmpp_3m_sde", {"noise": True, "eta": 0.0}),
]


@pytest.fixture(scope="module")
def kd():
    return load_k_diffusion_sampling()


def _schedule(kind: str) -> torch.Tensor:
    if kind == "karras":
        return schedules.get_sigmas_karras(12, 0.0292, 14.6146)
    return schedules.get_sigmas_exponential(9, 0.05, 10.0)


@pytest.mark.parametrize("schedule", ["karras", "exponential"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_sampler_matches_k_diffusion(kd, name: str, options: dict, schedule: str) -> None:
    options = dict(options)
    takes_noise = options.pop("noise", False)
    sigmas = _schedule(schedule)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(7)) * sigmas[0]
    extra = {"shift": 0.3}

    def run(fn, *args, **kwargs):
        torch.manual_seed(99)  # churn noise comes from the global generator in k-diffusion
        if takes_noise:
            kwargs["noise_sampler"] = seeded_noise(x)
        return fn(toy_denoiser, x.clone(), *args, extra_args=extra, disable=True, **kwargs)

    ours_kwargs = dict(options)
    if "s_churn" in options:
        # k-diffusion draws one normal tensor per step from the global generator (used only where it churns);
        # ours asks for noise when it churns, so hand it the draw of that step.
        torch.manual_seed(99)
        draws = {float(sigma): torch.randn_like(x) for sigma in sigmas[:-1]}
        ours_kwargs["noise_sampler"] = lambda sigma, sigma_hat: draws[float(sigma)]
    ours = run(SAMPLERS[name], sigmas, **ours_kwargs)
    reference_fn = getattr(kd, f"sample_{name}")
    if name == "lms":
        # ComfyUI's lms (Hearth's reference) lands its last step on the clean estimate instead of extrapolating
        # to sigma 0 as k-diffusion does: k-diffusion's run to the last positive sigma, then its denoiser there.
        before = run(reference_fn, sigmas[:-1], **options)
        expected = toy_denoiser(before, sigmas[-2] * before.new_ones([before.shape[0]]), **extra)
        assert (ours - expected).abs().max().item() <= TOLERANCE
        return
    if name in ("dpm_fast", "dpm_adaptive"):
        # k-diffusion takes the sigma range (and fast its step count), not the schedule itself.
        args = (float(sigmas[-2]), float(sigmas[0])) + ((len(sigmas) - 1,) if name == "dpm_fast" else ())
        reference = run(reference_fn, *args, **options)
    else:
        reference = run(reference_fn, sigmas, **options)
    assert torch.isfinite(ours).all()
    difference = (ours - reference).abs().max().item()
    assert difference <= TOLERANCE, f"{name} {options} on {schedule}: max abs difference {difference:.2e}"
    # The oracle is not trivially satisfied: sampling moved x a long way from where it started.
    assert (ours - x).abs().max() > 1.0


def test_samplers_report_every_step_like_k_diffusion(kd) -> None:
    sigmas = _schedule("karras")
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3)) * sigmas[0]

    def steps(fn, **kwargs) -> list[tuple[int, float]]:
        seen: list[tuple[int, float]] = []
        fn(toy_denoiser, x.clone(), sigmas, callback=lambda d: seen.append((d["i"], float(d["sigma"]))), **kwargs)
        return seen

    for name in ("euler", "heun", "dpmpp_2m", "lms"):
        ours = steps(SAMPLERS[name])
        assert ours == steps(getattr(kd, f"sample_{name}"), disable=True)
        assert len(ours) == len(sigmas) - 1


@pytest.mark.parametrize("n", [1, 2, 10, 33])
def test_schedules_match_k_diffusion(kd, n: int) -> None:
    for name in ("karras", "exponential"):
        ours = getattr(schedules, f"get_sigmas_{name}")(n, 0.0292, 14.6146, "cpu")
        theirs = getattr(kd, f"get_sigmas_{name}")(n, 0.0292, 14.6146, device="cpu")
        assert ours.shape == theirs.shape == (n + 1,)
        assert (ours - theirs).abs().max().item() <= TOLERANCE, name
