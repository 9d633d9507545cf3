"""ModelSampling* nodes: the schedules ComfyUI's model_sampling classes define, and a MODEL that samples with them."""

from __future__ import annotations

import math

import pytest
import torch
from hearth_samplers.model_sampling import (
    ContinuousEDMSampling,
    ContinuousVSampling,
    DiscreteSampling,
    FlowSampling,
    FluxSampling,
)
from hearth_samplers.nodes_model_sampling import ModelSamplingAuraFlow, ModelSamplingDiscrete, flux_shift

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, ToySampling


def test_aura_flow_sigmas_are_shifted_times_with_timestep_equal_to_sigma() -> None:
    s = FlowSampling(shift=1.73, multiplier=1.0)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    assert torch.allclose(s.sigmas.double(), 1.73 * t / (1 + 0.73 * t), atol=1e-6)
    assert s.sigma_max == pytest.approx(1.0) and s.sigma_min == pytest.approx(1.73e-3 / (1 + 0.73e-3), rel=1e-5)
    assert float(s.timestep(torch.tensor(0.4))) == pytest.approx(0.4)
    assert s.percent_to_sigma(0.5) == pytest.approx(0.865 / 1.365, rel=1e-6)
    assert (s.percent_to_sigma(0.0), s.percent_to_sigma(1.0)) == (1.0, 0.0)
    x0, noise, sigma = torch.full((1, 1, 2, 2), 2.0), torch.ones(1, 1, 2, 2), torch.tensor([0.25])
    assert torch.allclose(s.noise_scaling(sigma, noise, x0), torch.full((1, 1, 2, 2), 0.25 + 0.75 * 2.0))
    # Velocity output v: x0 = x - sigma * v.
    assert torch.allclose(s.calculate_denoised(sigma, torch.full_like(x0, 4.0), x0), torch.full_like(x0, 1.0))
    assert s.prediction == "flow"


def test_flux_shift_grows_with_area_and_shifts_times_exponentially() -> None:
    assert flux_shift(1.15, 0.5, 1024, 1024) == pytest.approx(1.15)  # 4096 patches: max_shift
    assert flux_shift(1.15, 0.5, 256, 256) == pytest.approx(0.5)  # 256 patches: base_shift
    assert flux_shift(1.15, 0.5, 512, 512) == pytest.approx(0.5 + 0.65 * (1024 - 256) / 3840)
    s = FluxSampling(shift=1.15)
    assert len(s.sigmas) == 10000
    e = math.exp(1.15)
    assert float(s.sigmas[4999]) == pytest.approx(e / (e + 1 / 0.5 - 1), rel=1e-6)
    assert s.percent_to_sigma(0.75) == pytest.approx(e / (e + 1 / 0.25 - 1), rel=1e-6)


def test_discrete_eps_matches_the_sd_table_and_rounds_timesteps() -> None:
    s, toy = DiscreteSampling("eps"), ToySampling()
    assert torch.allclose(s.sigmas, toy.sigmas)
    between = (toy.sigmas[500] * 0.7 + toy.sigmas[501] * 0.3).reshape(1)
    assert s.timestep(between).tolist() == [500]  # ComfyUI picks the nearest step, it does not interpolate
    assert s.percent_to_sigma(0.25) == pytest.approx(float(toy.sigma(torch.tensor(0.75 * 999.0))), rel=1e-5)
    x, out, sigma = torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 0.5), torch.tensor([2.0])
    assert float(s.calculate_input(sigma, x)) == pytest.approx(1 / math.sqrt(5))
    assert float(s.calculate_denoised(sigma, out, x)) == pytest.approx(1 - 0.5 * 2)
    v = DiscreteSampling("v")
    assert float(v.calculate_denoised(sigma, out, x)) == pytest.approx(1 / 5 - 0.5 * 2 / math.sqrt(5))
    assert float(DiscreteSampling("x0").calculate_denoised(sigma, out, x)) == 0.5


def test_lcm_uses_the_fifty_distilled_steps_and_the_consistency_boundary() -> None:
    full, s = DiscreteSampling("eps").sigmas, DiscreteSampling("lcm")
    assert len(s.sigmas) == 50
    assert float(s.sigmas[0]) == float(full[19]) and float(s.sigmas[-1]) == float(full[999])
    assert s.timestep(full[999].reshape(1)).tolist() == [999]
    assert s.timestep(full[500].reshape(1)).tolist() == [499]  # nearest of 479, 499, 519...
    sigma = full[999].reshape(1)
    x, out = torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 0.5)
    scaled = 9990.0
    c_skip, c_out = 0.25 / (scaled**2 + 0.25), scaled / math.sqrt(scaled**2 + 0.25)
    expected = c_out * (1 - 0.5 * float(sigma)) + c_skip
    assert float(s.calculate_denoised(sigma, out, x)) == pytest.approx(expected, rel=1e-5)


def test_zero_terminal_snr_keeps_the_first_sigma_and_ends_near_zero_snr() -> None:
    plain, z = DiscreteSampling("v"), DiscreteSampling("v", zsnr=True)
    assert z.sigma_min == pytest.approx(plain.sigma_min, rel=1e-5)
    assert z.sigma_max == pytest.approx(math.sqrt((1 - 4.8973451890853435e-08) / 4.8973451890853435e-08), rel=1e-4)
    assert bool((z.sigmas[1:] > z.sigmas[:-1]).all())


def test_continuous_schedules() -> None:
    edm = ContinuousEDMSampling("edm", 0.002, 120.0, 0.5)
    assert (edm.sigma_min, edm.sigma_max) == (pytest.approx(0.002, rel=1e-5), pytest.approx(120.0, rel=1e-5))
    assert float(edm.timestep(torch.tensor(math.e))) == pytest.approx(0.25)
    assert edm.percent_to_sigma(0.5) == pytest.approx(math.sqrt(0.002 * 120.0), rel=1e-5)
    x, out, sigma = torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 0.5), torch.tensor([1.0])
    # EDM: x * sd^2 / (s^2 + sd^2) + out * s * sd / sqrt(s^2 + sd^2), sigma_data 0.5.
    assert float(edm.calculate_denoised(sigma, out, x)) == pytest.approx(0.2 + 0.5 * 0.5 / math.sqrt(1.25))
    cv = ContinuousVSampling("v", 0.03, 500.0)
    assert float(cv.timestep(torch.tensor(1.0))) == pytest.approx(0.5)
    assert float(cv.sigma(torch.tensor(0.5))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        ContinuousEDMSampling("eps", 0.0, 10.0)


def test_a_model_without_object_patches_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ModelSamplingAuraFlow: this MODEL .*ToyModel"):
        ModelSamplingAuraFlow().patch_aura(ToyModel(), 1.73)
    with pytest.raises(ValueError, match="ModelSamplingAuraFlow: sampling 'img_to_img_velocity'"):
        ModelSamplingAuraFlow().patch_aura(ToyModel(), 1.73, "img_to_img_velocity")
    with pytest.raises(ValueError, match="img_to_img"):
        ModelSamplingDiscrete().patch(ToyModel(), "img_to_img", False)


def test_aura_flow_on_sd1_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "ModelSamplingAuraFlow", "inputs": {"model": ["1", 0], "shift": 3.0}},
        "11": {"class_type": "BasicScheduler", "inputs": {"model": ["10", 0], "scheduler": "simple", "steps": 4,
                                                          "denoise": 1.0}},
        "12": {"class_type": "Keep", "inputs": {"name": "sigmas", "sigmas": ["11", 0]}},
        "13": {"class_type": "Keep", "inputs": {"name": "model", "model": ["10", 0]}},
        "14": {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["1", 0], "sampling": "lcm", "zsnr": False}},
        "15": {"class_type": "BasicScheduler", "inputs": {"model": ["14", 0], "scheduler": "simple", "steps": 4,
                                                          "denoise": 1.0}},
        "16": {"class_type": "Keep", "inputs": {"name": "lcm", "sigmas": ["15", 0]}},
    }
    result = run_prompt(sd1_prompt(model=["10", 0], **extra))
    assert result.ok, result.error
    t = torch.tensor([1000, 750, 500, 250]) / 1000
    assert torch.allclose(KEPT["sigmas"], torch.cat([3 * t / (1 + 2 * t), torch.zeros(1)]), atol=1e-6)
    lcm = DiscreteSampling("lcm").sigmas  # 50 steps: every 12.5th from the top
    assert torch.allclose(KEPT["lcm"], torch.stack([lcm[49], lcm[37], lcm[24], lcm[12], torch.tensor(0.0)]))
    flow_latent = KEPT["latent"]["samples"]
    assert KEPT["model"].sampling.prediction == "flow"
    assert run_prompt(sd1_prompt()).ok
    assert not torch.allclose(KEPT["latent"]["samples"], flow_latent)  # the patch changed what was sampled
