"""Flow-matching model sampling: shifted sigmas, velocity to denoised, and the samplers plugin running it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hearth_samplers.sampling import Guider, ksampler_sigmas, sampler_object
from hearth_video.wan_nodes import ModelSamplingSD3
from hearth_video.wan_sampling import FlowSampling, time_shift


def test_training_sigmas_are_diffusers_flow_match_sigmas() -> None:
    diffusers = pytest.importorskip("diffusers")
    reference = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=8.0)
    ours = FlowSampling(shift=8.0)
    assert torch.allclose(ours.sigmas.flip(0), reference.sigmas.float(), atol=1e-6)
    assert ours.sigma_max == 1.0
    assert ours.sigma_min == pytest.approx(8 * 0.001 / (1 + 7 * 0.001))


def test_shift_formula_timestep_and_percent() -> None:
    sampling = FlowSampling(shift=3.0)
    assert time_shift(3.0, 0.5) == pytest.approx(0.75)
    assert float(sampling.timestep(torch.tensor(0.25))) == pytest.approx(250.0)  # the network sees sigma * 1000
    assert float(sampling.sigma(torch.tensor(500.0))) == pytest.approx(0.75)
    assert sampling.percent_to_sigma(0.0) == 1.0 and sampling.percent_to_sigma(1.0) == 0.0
    assert sampling.percent_to_sigma(0.5) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="shift"):
        FlowSampling(shift=0)


def test_velocity_to_denoised_and_noise_scaling() -> None:
    sampling = FlowSampling()
    x0, noise = torch.randn(2, 16, 3, 4, 4), torch.randn(2, 16, 3, 4, 4)
    sigma = torch.tensor([0.3, 0.9])
    noisy = sampling.noise_scaling(sigma, noise, x0)
    s = sigma.view(-1, 1, 1, 1, 1)
    assert torch.allclose(noisy, (1 - s) * x0 + s * noise)
    assert torch.allclose(sampling.calculate_denoised(sigma, noise - x0, noisy), x0, atol=1e-6)
    assert torch.equal(sampling.noise_scaling(torch.tensor([1.0]), noise, x0), noise)


class FlowModel:
    """A MODEL whose network knows the clean latent: it predicts the exact velocity towards ``target``."""

    latent_channels = 16
    family = "test-flow"

    def __init__(self, target: torch.Tensor, sampling: Any) -> None:
        self.target, self.sampling, self.seen = target, sampling, []
        self.model_options: dict = {}

    def prepare(self, batch_shape):
        return torch.device("cpu")

    def process_latent_in(self, raw):
        return raw

    def process_latent_out(self, scaled):
        return scaled

    def denoise(self, x, sigma, cond, options=None):
        self.seen.append((x.clone(), sigma.clone()))
        s = sigma.view(-1, 1, 1, 1, 1)
        velocity = (x - self.target) / s  # noise - x0 for x = (1 - s) x0 + s noise
        return self.sampling.calculate_denoised(sigma, velocity, x)


def test_ksampler_starts_from_pure_noise_and_lands_on_the_target() -> None:
    torch.manual_seed(0)
    target = torch.randn(1, 16, 3, 4, 4)
    model = FlowModel(target, FlowSampling(shift=8.0))
    sigmas = ksampler_sigmas(model.sampling, "simple", "euler", 5)
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0
    noise = torch.randn_like(target)
    cond = [[torch.zeros(1, 4, 8), {}]]
    out = Guider(model, cond).sample(noise, torch.zeros_like(target), sampler_object("euler"), sigmas)
    first_x, first_sigma = model.seen[0]
    assert float(first_sigma[0]) == 1.0
    assert torch.equal(first_x, noise)  # flow: sigma * noise + (1 - sigma) * latent, not sqrt(1 + sigma^2) * noise
    assert torch.allclose(out, target, atol=1e-5)


def test_partial_denoise_noises_the_latent_the_flow_way() -> None:
    torch.manual_seed(1)
    target, latent = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 16, 2, 4, 4)
    model = FlowModel(target, FlowSampling(shift=8.0))
    sigmas = ksampler_sigmas(model.sampling, "simple", "euler", 4, denoise=0.5)
    noise = torch.randn_like(target)
    Guider(model, [[torch.zeros(1, 4, 8), {}]]).sample(noise, latent, sampler_object("euler"), sigmas)
    s = float(sigmas[0])
    assert 0 < s < 1
    assert torch.allclose(model.seen[0][0], s * noise + (1 - s) * latent, atol=1e-6)


def test_model_sampling_sd3_patches_a_clone() -> None:
    class Patchable:
        def __init__(self):
            self.object_patches = {}

        def clone(self):
            return Patchable()

        def add_object_patch(self, name, obj):
            self.object_patches[name] = obj

    original = Patchable()
    (patched,) = ModelSamplingSD3().patch(original, 5.0)
    assert original.object_patches == {}
    assert patched.object_patches["model_sampling"].shift == 5.0
    with pytest.raises(ValueError, match="shift"):
        ModelSamplingSD3().patch(original, 0.0)
    with pytest.raises(ValueError, match="cannot take"):
        ModelSamplingSD3().patch(object(), 5.0)


SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal"]
# Every sampler ends on the clean latent, but dpm_fast and dpm_adaptive: as ComfyUI's, they stop at the schedule's
# last positive sigma, far from 0 on a flow schedule (tests/samplers/test_flow_samplers.py pins where).
SAMPLERS = ["euler", "euler_ancestral", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddpm", "lcm",
            "ipndm", "deis", "ddim", "uni_pc", "uni_pc_bh2"]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_schedule_runs_from_one_to_zero_on_flow_sampling(scheduler: str) -> None:
    sigmas = ksampler_sigmas(FlowSampling(shift=8.0), scheduler, "euler", 6)
    assert float(sigmas[0]) == pytest.approx(1.0, abs=1e-3) and float(sigmas[-1]) == 0.0  # ddim_uniform: step 998
    assert bool((sigmas[:-1] > sigmas[1:]).all())


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_lands_on_the_clean_latent(sampler: str) -> None:
    torch.manual_seed(2)
    target = torch.randn(1, 16, 2, 4, 4)
    model = FlowModel(target, FlowSampling(shift=8.0))
    sigmas = ksampler_sigmas(model.sampling, "simple", sampler, 6)
    out = Guider(model, [[torch.zeros(1, 4, 8), {}]]).sample(torch.randn_like(target), torch.zeros_like(target),
                                                              sampler_object(sampler), sigmas, seed=3)
    assert (out - target).abs().max() < 0.02


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m_sde", "lcm"])
def test_stochastic_samplers_renoise_the_flow_way_through_the_guider(sampler: str) -> None:
    """Stopped before the end, a stochastic sampler leaves (1 - s) * x0 + s * noise: the guider's model sampling is
    recognised as flow, so the injected noise follows the flow's marginals (not x0 + s * noise)."""
    torch.manual_seed(4)
    target = torch.full((1, 16, 4, 32, 32), 0.9)
    model = FlowModel(target, FlowSampling(shift=8.0))
    sigmas = ksampler_sigmas(model.sampling, "simple", sampler, 8, last_step=6)
    s = float(sigmas[-1])
    assert 0 < s < 0.9
    out = Guider(model, [[torch.zeros(1, 4, 8), {}]]).sample(torch.randn_like(target), torch.zeros_like(target),
                                                              sampler_object(sampler), sigmas, seed=5)
    noise = (out - (1 - s) * target) / s
    assert abs(float(noise.mean())) < 0.02 and float(noise.std()) == pytest.approx(1.0, abs=0.02)
