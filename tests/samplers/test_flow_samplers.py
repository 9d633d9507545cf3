"""Every registered sampler on a flow-matching model (``x = (1 - sigma) * x0 + sigma * noise``).

Deterministic steps are the same as for variance-exploding models; what the tests pin down is the noise the
stochastic samplers inject (it must keep the flow's marginals), except for the samplers whose ComfyUI forms apply the
variance-exploding formula unchanged to a flow model (``VE_ON_FLOW``): Hearth does the same, so a workflow gives
ComfyUI's image, and the tests pin that instead.
"""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers.catalog import SAMPLERS
from hearth_samplers.sampling import Inpainting, Sampler
from hearth_samplers.stepping import ancestral_step_flow, gaussian_noise, is_flow, model_sampling_of


class FlowSchedule:
    """A flow model sampling: ``prediction == "flow"``, sigmas in 0..1 shifted towards 1 (shift 3)."""

    prediction = "flow"
    shift = 3.0

    def _shift(self, t: float) -> float:
        return self.shift * t / (1 + (self.shift - 1) * t)

    @property
    def sigma_min(self) -> float:
        return self._shift(1 / 1000)

    @property
    def sigma_max(self) -> float:
        return 1.0

    def percent_to_sigma(self, percent: float) -> float:
        return 0.0 if percent >= 1 else 1.0 if percent <= 0 else self._shift(1.0 - percent)


class TargetModel:
    """Predicts the exact velocity towards a fixed ``x0``: ``v = (x - x0) / sigma``, so ``x - sigma * v == x0``."""

    def __init__(self, x0: torch.Tensor, sampling=None) -> None:
        self.x0, self.sampling, self.calls = x0, FlowSchedule() if sampling is None else sampling, 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_) -> torch.Tensor:
        self.calls += 1
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        velocity = (x - self.x0) / s
        return x - s * velocity


class GaussianDataModel:
    """The exact denoiser of data ``x0 ~ N(mean, std**2)`` (elementwise) under flow noising: ``E[x0 | x]``."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std, self.sampling = mean, std, FlowSchedule()

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_) -> torch.Tensor:
        s = sigma.reshape(-1, *([1] * (x.ndim - 1))).double()
        a = 1 - s
        gain = a * self.std**2 / (a**2 * self.std**2 + s**2)
        return (self.mean + gain * (x.double() - a * self.mean)).to(x.dtype)


def flow_sigmas(steps: int, shift: float = 3.0) -> torch.Tensor:
    t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    return (shift * t / (1 + (shift - 1) * t)).float()


def run(name: str, model, x: torch.Tensor, sigmas: torch.Tensor, noise_sampler=None, **options) -> torch.Tensor:
    return Sampler(SAMPLERS[name], name, options).sample(model, x, sigmas, extra_args={}, noise_sampler=noise_sampler)


# The stochastic samplers and the options that make them inject noise.
STOCHASTIC = {
    "euler_ancestral": {}, "dpm_2_ancestral": {}, "dpmpp_2s_ancestral": {}, "dpmpp_sde": {}, "dpmpp_2m_sde": {},
    "dpmpp_3m_sde": {}, "ddpm": {}, "lcm": {}, "ddim": {"eta": 1.0}, "dpm_fast": {"eta": 1.0},
    "dpm_adaptive": {"eta": 1.0}, "euler": {"s_churn": 2.0}, "heun": {"s_churn": 2.0}, "dpm_2": {"s_churn": 2.0},
}


# ComfyUI runs these on a flow model exactly as on an eps one: DDPM's variance-preserving posterior, DPM-Solver's
# steps in -log(sigma) stopping at the schedule's last positive sigma (about 0.3 to 0.5 on a flow schedule, so noise
# is left), and the variance-exploding ancestral noise of RES multistep and DPM++ 2S CFG++. Hearth matches them.
VE_ON_FLOW = {"ddpm", "dpm_fast", "dpm_adaptive", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
              "dpmpp_2s_ancestral_cfg_pp"}


def test_flow_is_found_through_the_wrappers_a_sampler_gets() -> None:
    flow = TargetModel(torch.zeros(1))
    assert is_flow(flow)

    class Guided:  # how Guidance keeps its MODEL
        def __init__(self, model):
            self.model = model

        def __call__(self, x, sigma, **_):
            return self.model(x, sigma)

    wrapped = Inpainting(Guided(flow), torch.zeros(1), torch.zeros(1), torch.ones(1))
    assert model_sampling_of(wrapped) is flow.sampling and is_flow(wrapped)
    assert not is_flow(lambda x, sigma: x)

    class SD:
        sampling = type("S", (), {"prediction": "eps", "sigma_max": 14.6})()

    assert not is_flow(Guided(SD()))


@pytest.mark.parametrize(("name", "options"), [(name, {}) for name in sorted(set(SAMPLERS) - {"dpm_fast", "dpm_adaptive"})]
                         + sorted((name, options) for name, options in STOCHASTIC.items()
                                  if name not in {"dpm_fast", "dpm_adaptive"}))
def test_every_sampler_lands_on_the_target(name: str, options: dict) -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 6, 6, generator=gen)
    model = TargetModel(x0)
    noise = torch.randn(x0.shape, generator=gen)
    out = run(name, model, noise, flow_sigmas(8), gaussian_noise(noise, torch.Generator().manual_seed(1)), **options)
    tolerance = 1e-4
    if name.startswith("uni_pc"):
        # UniPC (as in ComfyUI) stops at sigma 0.001 instead of 0: that much noise is left. It computes in
        # ComfyUI's variance-preserving latents, which hold a flow latent to a little worse than 1e-4.
        x0, tolerance = 0.999 * x0 + 0.001 * noise, 3e-4
    assert (out - x0).abs().max() < tolerance, name


class EpsSchedule(FlowSchedule):
    prediction = "eps"


@pytest.mark.parametrize("name", sorted(VE_ON_FLOW))
def test_comfyuis_variance_exploding_samplers_ignore_the_flow(name: str) -> None:
    """These give on a flow model the very latents they give when told the model is an eps one, as ComfyUI's do."""
    gen = torch.Generator().manual_seed(4)
    x0 = torch.randn(1, 4, 6, 6, generator=gen)
    x = torch.randn(x0.shape, generator=gen)
    outs = []
    for sampling in (FlowSchedule(), EpsSchedule()):
        model = TargetModel(x0, sampling)
        assert is_flow(model) == (sampling.prediction == "flow")
        options = {"eta": 1.0} if name in {"dpm_fast", "dpm_adaptive"} else {}
        outs.append(run(name, model, x.clone(), flow_sigmas(6), gaussian_noise(x, torch.Generator().manual_seed(1)),
                        **options))
    assert torch.equal(outs[0], outs[1]), name


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_dpm_solvers_stop_at_the_last_positive_sigma_on_flow_as_comfyui(name: str) -> None:
    """DPM-Solver stops at the schedule's last positive sigma; on a flow schedule that is far from 0. Along the
    exact target's trajectory (``x - x0`` proportional to sigma) it lands on ``x0 + s / s0 * (x - x0)``."""
    x0 = torch.full((1, 2, 4, 4), 0.75)
    sigmas = flow_sigmas(6)
    s = float(sigmas[-2])
    assert s > 0.3
    model = TargetModel(x0)
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    out = SAMPLERS[name](model, x, sigmas)
    assert torch.allclose(out, x0 + (s / float(sigmas[0])) * (x - x0), atol=2e-3)
    if name == "dpm_fast":
        assert model.calls == 6


def _marginal_after(name: str, sigmas: list[float], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``name`` from a flow latent at ``sigmas[0]`` (fixed x0) down to ``sigmas[-1] > 0``."""
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.full((4, 4, 64, 64), 0.8)
    s = sigmas[0]
    x = (1 - s) * x0 + s * torch.randn(x0.shape, generator=gen)
    out = run(name, TargetModel(x0), x, torch.tensor(sigmas),
              gaussian_noise(x, torch.Generator().manual_seed(seed + 1)), **STOCHASTIC[name])
    return out, x0


@pytest.mark.parametrize("name", sorted(set(STOCHASTIC) - VE_ON_FLOW))
@pytest.mark.parametrize("sigmas", [[1.0, 0.75, 0.45], [0.9, 0.6, 0.3, 0.15]])
def test_stochastic_samplers_keep_the_flow_marginal(name: str, sigmas: list[float]) -> None:
    """From x = (1 - s) x0 + s n, the samplers' renoised latent at the last sigma t is (1 - t) x0 + t n'."""
    out, x0 = _marginal_after(name, sigmas)
    t = sigmas[-1]
    assert float(out.mean()) == pytest.approx((1 - t) * float(x0[0, 0, 0, 0]), abs=0.01), name
    assert float(out.std()) == pytest.approx(t, rel=0.02), name


@pytest.mark.parametrize("name", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "ddim"])
def test_a_large_eta_still_keeps_the_flow_marginal(name: str) -> None:
    """eta 2 would put sigma_down below 0: it stops at the clean estimate and all the noise is fresh."""
    assert ancestral_step_flow(0.6, 0.3, 2.0)[0] == 0.0
    x0 = torch.full((4, 4, 64, 64), -0.5)
    x = 0.4 * x0 + 0.6 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(7))
    out = run(name, TargetModel(x0), x, torch.tensor([0.6, 0.3]),
              gaussian_noise(x, torch.Generator().manual_seed(8)), eta=2.0)
    assert float(out.mean()) == pytest.approx(0.7 * -0.5, abs=0.01)
    assert float(out.std()) == pytest.approx(0.3, rel=0.02)


def test_variance_exploding_noise_would_break_the_marginal(monkeypatch) -> None:
    """The marginal test can fail: the variance-exploding renoising keeps too much signal on a flow latent."""
    from hearth_samplers import euler

    monkeypatch.setattr(euler, "is_flow", lambda model: False)
    out, _ = _marginal_after("euler_ancestral", [0.9, 0.6, 0.3, 0.15])
    assert abs(float(out.mean()) - 0.85 * 0.8) > 0.05


def test_one_euler_ancestral_flow_step_by_hand() -> None:
    x = torch.tensor([[0.3, -1.2, 2.0]])
    x0 = torch.tensor([[0.5, 0.1, -0.4]])
    noise = torch.tensor([[1.0, -0.5, 0.25]])
    out = SAMPLERS["euler_ancestral"](TargetModel(x0), x, torch.tensor([0.8, 0.5]), extra_args={},
                                      noise_sampler=lambda s, t: noise, eta=1.0, s_noise=1.0)
    # sigma_down = 0.5 * (1 + (0.5 / 0.8 - 1)) = 0.3125; Euler: x0 + (x - x0) * 0.3125 / 0.8;
    # renoise: alpha ratio 0.5 / 0.6875, noise std sqrt(0.25 - (0.5 / 0.6875 * 0.3125)**2).
    x_down = x0 + (x - x0) * (0.3125 / 0.8)
    ratio = 0.5 / 0.6875
    expected = ratio * x_down + math.sqrt(0.25 - (ratio * 0.3125) ** 2) * noise
    assert torch.allclose(out, expected, atol=1e-6)
    assert ancestral_step_flow(0.8, 0.5, 1.0) == pytest.approx((0.3125, ratio, math.sqrt(0.25 - (ratio * 0.3125) ** 2)))
    assert ancestral_step_flow(0.8, 0.5, 0.0) == (0.5, 1.0, 0.0)
    assert ancestral_step_flow(0.8, 0.0, 1.0) == (0.0, 1.0, 0.0)


# First-order samplers, and ancestral ones at eta 1, converge slowly with the step count (as much on an SD-style
# model: about 7% low in std after 48 steps); their noise is pinned down by the marginal tests above. LCM jumps to
# the denoiser's estimate every step, which only a consistency model turns into a sample. Gradient estimation at
# its default gamma 2 over-extrapolates the direction (about 6% high in std after 48 steps), as ComfyUI's does.
# Without a guidance to ask, a CFG++ sampler is its base sampler: the slow ones' CFG++ forms are slow too.
SLOW = {"euler", "ddim", "euler_ancestral", "ddpm", "dpmpp_sde", "lcm", "gradient_estimation", "euler_cfg_pp",
        "euler_ancestral_cfg_pp", "gradient_estimation_cfg_pp"}


# ComfyUI's "_gpu" names are the same samplers here (Hearth draws noise on the CPU): tested once, by their plain name.
ALIASES = {name for name in SAMPLERS if name.endswith("_gpu")}


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - SLOW - ALIASES - VE_ON_FLOW))
def test_every_sampler_samples_the_data_distribution(name: str) -> None:
    """From pure noise, the exact denoiser of Gaussian data gives samples with the data's mean and std."""
    x = torch.randn(4, 4, 48, 48, generator=torch.Generator().manual_seed(5))
    model = GaussianDataModel(mean=0.5, std=0.6)
    sigmas = torch.cat([torch.logspace(0, -2.7, 48), torch.zeros(1)])  # 1 .. 0.002, then 0
    out = run(name, model, x, sigmas, gaussian_noise(x, torch.Generator().manual_seed(6)))
    assert float(out.mean()) == pytest.approx(0.5, abs=0.01), name
    assert float(out.std()) == pytest.approx(0.6, rel=0.03), name
