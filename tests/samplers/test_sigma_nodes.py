"""The SIGMAS nodes (editing, schedules, AddNoise) against ComfyUI's definitions, by hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hearth_samplers.discrete_schedules import get_sigmas_beta
from hearth_samplers.nodes_custom_sampling import AddNoise
from hearth_samplers.nodes_schedulers import (
    AYS_NOISE_LEVELS,
    OPTIMAL_NOISE_LEVELS,
    AlignYourStepsScheduler,
    BetaSamplingScheduler,
    Flux2Scheduler,
    LaplaceScheduler,
    OptimalStepsScheduler,
    PolyexponentialScheduler,
    VPScheduler,
)
from hearth_samplers.nodes_sigma_tools import (
    ExtendIntermediateSigmas,
    ManualSigmas,
    SamplingPercentToSigma,
    SetFirstSigma,
    SplitSigmasDenoise,
)
from hearth_samplers.noise import RandomNoise, prepare_noise

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel


def test_manual_sigmas_reads_every_number_as_comfyui_does() -> None:
    (sigmas,) = ManualSigmas().execute("14.6, 7; 3 .5 0")
    assert sigmas.dtype == torch.float32 and sigmas.tolist() == pytest.approx([14.6, 7.0, 3.0, 0.5, 0.0])
    assert ManualSigmas().execute("1e-3")[0].tolist() == [1.0, -3.0]  # ComfyUI's pattern has no exponents


def test_set_first_sigma_copies_and_refuses_an_empty_schedule() -> None:
    original = torch.tensor([10.0, 5.0, 0.0])
    (sigmas,) = SetFirstSigma().set_first_sigma(original, 136.0)
    assert sigmas.tolist() == [136.0, 5.0, 0.0] and original[0] == 10.0
    with pytest.raises(ValueError, match="SetFirstSigma: the sigmas input is empty"):
        SetFirstSigma().set_first_sigma(torch.zeros(0), 1.0)


def test_split_sigmas_denoise() -> None:
    sigmas = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.0])
    high, low = SplitSigmasDenoise().get_sigmas(sigmas, 0.5)
    assert high.tolist() == [10.0, 5.0, 2.0] and low.tolist() == [2.0, 1.0, 0.0]
    high, low = SplitSigmasDenoise().get_sigmas(sigmas, 0.3)  # round(1.2) = 1 low step
    assert high.tolist() == [10.0, 5.0, 2.0, 1.0] and low.tolist() == [1.0, 0.0]
    high, low = SplitSigmasDenoise().get_sigmas(sigmas, 0.0)
    assert high.tolist() == [] and low.tolist() == [0.0]


def test_extend_intermediate_sigmas() -> None:
    sigmas = torch.tensor([10.0, 4.0, 0.0])
    (linear,) = ExtendIntermediateSigmas().extend(sigmas, 2, -1.0, 5.0, "linear")
    assert linear.tolist() == pytest.approx([10.0, 7.0, 4.0, 0.0])  # 4 is below end_at_sigma: not extended
    (cosine,) = ExtendIntermediateSigmas().extend(sigmas, 3, 20.0, 0.0, "cosine")
    f1, f2 = math.sin(math.pi / 6), math.sin(math.pi / 3)
    assert cosine.tolist() == pytest.approx([10.0, 10 - 6 * f1, 10 - 6 * f2, 4.0, 4 - 4 * f1, 4 - 4 * f2, 0.0],
                                            abs=1e-6)
    (sine,) = ExtendIntermediateSigmas().extend(sigmas, 2, 8.0, 0.0, "sine")  # 10 is above start_at_sigma
    assert sine.tolist() == pytest.approx([10.0, 4.0, 4 - 4 * (1 - math.cos(math.pi / 4)), 0.0], abs=1e-6)


def test_sampling_percent_to_sigma() -> None:
    model, node = ToyModel(), SamplingPercentToSigma()
    assert node.get_sigma(model, 0.0, False) == (999999999.9,)
    assert node.get_sigma(model, 0.0, True)[0] == pytest.approx(model.sampling.sigma_max)
    assert node.get_sigma(model, 1.0, False) == (0.0,)
    assert node.get_sigma(model, 1.0, True)[0] == pytest.approx(model.sampling.sigma_min)
    expected = float(model.sampling.sigma(torch.tensor(0.5 * 999.0)))
    assert node.get_sigma(model, 0.5, False)[0] == pytest.approx(expected)


def test_polyexponential_laplace_and_vp() -> None:
    (poly,) = PolyexponentialScheduler().get_sigmas(3, 10.0, 0.1, 2.0)
    assert poly.tolist() == pytest.approx([10.0, 0.1 * 100**0.25, 0.1, 0.0], rel=1e-5)
    (laplace,) = LaplaceScheduler().get_sigmas(3, 14.6, 0.03, 0.0, 0.5)
    assert laplace.tolist() == pytest.approx([14.6, 1.0, 0.03], rel=1e-6)  # no final 0, as in ComfyUI
    (vp,) = VPScheduler().get_sigmas(2, 19.9, 0.1, 0.001)
    assert vp.tolist() == pytest.approx([math.sqrt(math.expm1(10.05)), math.sqrt(math.expm1(19.9e-6 / 2 + 1e-4)),
                                         0.0], rel=1e-4)
    with pytest.raises(ValueError, match="PolyexponentialScheduler: sigma_min"):
        PolyexponentialScheduler().get_sigmas(3, 10.0, 0.0, 1.0)


def test_beta_sampling_scheduler_uses_its_alpha_and_beta() -> None:
    model = ToyModel()
    (default,) = BetaSamplingScheduler().get_sigmas(model, 8, 0.6, 0.6)
    assert torch.equal(default, get_sigmas_beta(model.sampling, 8))
    (skewed,) = BetaSamplingScheduler().get_sigmas(model, 8, 2.0, 0.5)
    assert not torch.equal(skewed, default) and float(skewed[-1]) == 0.0


def test_align_your_steps_interpolates_the_published_levels_in_log_sigma() -> None:
    levels = AYS_NOISE_LEVELS["SD1"]
    (ten,) = AlignYourStepsScheduler().get_sigmas("SD1", 10, 1.0)
    assert ten.tolist() == pytest.approx(levels[:-1] + [0.0], rel=1e-6)
    (five,) = AlignYourStepsScheduler().get_sigmas("SD1", 5, 1.0)  # every second level falls on a table point
    assert five.tolist() == pytest.approx([levels[0], levels[2], levels[4], levels[6], levels[8], 0.0], rel=1e-6)
    (three,) = AlignYourStepsScheduler().get_sigmas("SDXL", 3, 1.0)
    sdxl = AYS_NOISE_LEVELS["SDXL"]
    # 1/3 of the way lies at 10/3 table steps: between levels 3 and 4, a third of the way, in log sigma.
    between = math.exp(math.log(sdxl[3]) + (math.log(sdxl[4]) - math.log(sdxl[3])) / 3)
    assert float(three[1]) == pytest.approx(between, rel=1e-5)
    (half,) = AlignYourStepsScheduler().get_sigmas("SD1", 10, 0.5)
    assert half.tolist() == pytest.approx(levels[5:-1] + [0.0], rel=1e-6)
    assert AlignYourStepsScheduler().get_sigmas("SD1", 10, 0.0)[0].numel() == 0


def test_optimal_steps() -> None:
    (flux,) = OptimalStepsScheduler().get_sigmas("FLUX", 10, 1.0)
    assert flux.tolist() == pytest.approx(OPTIMAL_NOISE_LEVELS["FLUX"][:-1] + [0.0], rel=1e-6)
    (wan,) = OptimalStepsScheduler().get_sigmas("Wan", 4, 1.0)
    table = np.asarray(OPTIMAL_NOISE_LEVELS["Wan"])
    assert wan.tolist() == pytest.approx(list(table[[0, 5, 10, 15]]) + [0.0], rel=1e-6)


def test_flux2_scheduler() -> None:
    (sigmas,) = Flux2Scheduler().execute(4, 1024, 1024)  # 4096 tokens: the step count matters
    at_200, at_10 = 0.00016927 * 4096 + 0.45666666, 8.73809524e-05 * 4096 + 1.89833333
    mu = at_10 + (at_200 - at_10) * (4 - 10) / 190
    e = math.exp(mu)
    assert sigmas.tolist() == pytest.approx([1.0] + [e / (e + 1 / t - 1) for t in (0.75, 0.5, 0.25)] + [0.0],
                                            rel=1e-5)
    (big,) = Flux2Scheduler().execute(2, 2048, 2048)  # 16384 tokens: mu from the token count alone
    e = math.exp(0.00016927 * 16384 + 0.45666666)
    assert float(big[1]) == pytest.approx(e / (e + 1), rel=1e-5)


def test_add_noise_noises_to_the_schedule_span_in_the_models_space() -> None:
    model = ToyModel()  # process_latent_in halves, out doubles; k-diffusion noising
    latent = {"samples": torch.full((1, 4, 2, 2), 0.5), "batch_index": [0]}
    (out,) = AddNoise().add_noise(model, RandomNoise(5), torch.tensor([3.0, 1.0, 0.5]), latent)
    noise = prepare_noise(latent["samples"], 5, [0])
    assert torch.allclose(out["samples"], (0.25 + 2.5 * noise) / 0.5, atol=1e-6)
    assert out["batch_index"] == [0]
    assert AddNoise().add_noise(model, RandomNoise(5), torch.zeros(0), latent)[0] is latent


def test_manual_sigmas_and_set_first_sigma_drive_sampler_custom(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "ManualSigmas", "inputs": {"sigmas": "14.6, 3.0, 0.5, 0"}},
        "11": {"class_type": "SetFirstSigma", "inputs": {"sigmas": ["10", 0], "sigma": 10.0}},
        "12": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "13": {"class_type": "SamplerCustom", "inputs": {
            "model": ["1", 0], "add_noise": True, "noise_seed": 3, "cfg": 4.0, "positive": ["2", 0],
            "negative": ["3", 0], "sampler": ["12", 0], "sigmas": ["11", 0], "latent_image": ["4", 0]}},
        "14": {"class_type": "Keep", "inputs": {"name": "custom", "latent": ["13", 0]}},
        "15": {"class_type": "Keep", "inputs": {"name": "sigmas", "sigmas": ["11", 0]}},
        "16": {"class_type": "Flux2Scheduler", "inputs": {"steps": 3, "width": 64, "height": 64}},
        "17": {"class_type": "Keep", "inputs": {"name": "flux2", "sigmas": ["16", 0]}},
    }
    result = run_prompt(sd1_prompt(**extra))
    assert result.ok, result.error
    assert KEPT["sigmas"].tolist() == pytest.approx([10.0, 3.0, 0.5, 0.0])
    assert KEPT["custom"]["samples"].shape == (1, 4, 8, 8) and bool(torch.isfinite(KEPT["custom"]["samples"]).all())
    assert len(KEPT["flux2"]) == 4 and float(KEPT["flux2"][0]) == 1.0
