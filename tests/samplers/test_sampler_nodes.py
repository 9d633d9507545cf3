"""SAMPLER nodes with options: each widget reaches the sampler (equal to another sampler where the maths says so)."""

from __future__ import annotations

import pytest
import torch
from hearth_samplers.nodes_custom_sampling import KSamplerSelect
from hearth_samplers.nodes_samplers import (
    SamplerDPMAdaptative,
    SamplerDPMPP_2M_SDE,
    SamplerDPMPP_2S_Ancestral,
    SamplerDPMPP_3M_SDE,
    SamplerDPMPP_SDE,
    SamplerEulerAncestral,
    SamplerLMS,
)
from hearth_samplers.noise import prepare_noise
from hearth_samplers.sampling import Guider

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, text

SIGMAS = torch.tensor([14.6, 6.0, 2.5, 1.0, 0.3, 0.0])


def _run(sampler) -> torch.Tensor:
    model = ToyModel()
    latent = torch.zeros(1, 4, 8, 8)
    guider = Guider(model, [[text(1.0), {}]], [[text(-1.0), {}]], 3.0)
    return guider.sample(prepare_noise(latent, 9), latent, sampler, SIGMAS, seed=9)


def _select(name: str) -> torch.Tensor:
    return _run(KSamplerSelect().get_sampler(name)[0])


def test_euler_ancestral_eta_and_s_noise() -> None:
    (default,) = SamplerEulerAncestral().get_sampler(1.0, 1.0)
    assert torch.equal(_run(default), _select("euler_ancestral"))
    assert torch.allclose(_run(SamplerEulerAncestral().get_sampler(0.0, 1.0)[0]), _select("euler"), atol=1e-6)
    quiet = _run(SamplerEulerAncestral().get_sampler(1.0, 0.0)[0])
    assert not torch.allclose(quiet, _select("euler_ancestral")) and not torch.allclose(quiet, _select("euler"))


def test_dpmpp_2s_ancestral_eta_zero_is_deterministic() -> None:
    assert torch.equal(_run(SamplerDPMPP_2S_Ancestral().get_sampler(1.0, 1.0)[0]), _select("dpmpp_2s_ancestral"))
    a = _run(SamplerDPMPP_2S_Ancestral().get_sampler(0.0, 1.0)[0])
    b = _run(SamplerDPMPP_2S_Ancestral().get_sampler(0.0, 5.0)[0])
    assert torch.allclose(a, b)  # without ancestral noise s_noise has nothing to scale


def test_lms_order_one_is_euler() -> None:
    assert torch.allclose(_run(SamplerLMS().get_sampler(1)[0]), _select("euler"), atol=1e-5)
    assert torch.equal(_run(SamplerLMS().get_sampler(4)[0]), _select("lms"))


def test_dpmpp_2m_sde_options() -> None:
    assert torch.equal(_run(SamplerDPMPP_2M_SDE().get_sampler("midpoint", 1.0, 1.0, "cpu")[0]),
                       _select("dpmpp_2m_sde"))
    # Without noise the midpoint form is DPM-Solver++(2M) itself.
    assert torch.allclose(_run(SamplerDPMPP_2M_SDE().get_sampler("midpoint", 0.0, 1.0, "gpu")[0]),
                          _select("dpmpp_2m"), atol=1e-5)
    heun = _run(SamplerDPMPP_2M_SDE().get_sampler("heun", 0.0, 1.0, "gpu")[0])
    assert not torch.allclose(heun, _select("dpmpp_2m"), atol=1e-4)


def test_dpmpp_sde_and_3m_sde_options() -> None:
    assert torch.equal(_run(SamplerDPMPP_SDE().get_sampler(1.0, 1.0, 0.5, "gpu")[0]), _select("dpmpp_sde"))
    assert not torch.allclose(_run(SamplerDPMPP_SDE().get_sampler(1.0, 1.0, 0.3, "gpu")[0]), _select("dpmpp_sde"))
    with pytest.raises(ValueError, match="SamplerDPMPP_SDE: r must be above 0"):
        SamplerDPMPP_SDE().get_sampler(1.0, 1.0, 0.0, "cpu")
    assert torch.equal(_run(SamplerDPMPP_3M_SDE().get_sampler(1.0, 1.0, "cpu")[0]), _select("dpmpp_3m_sde"))
    a = _run(SamplerDPMPP_3M_SDE().get_sampler(0.0, 1.0, "cpu")[0])
    assert torch.allclose(a, _run(SamplerDPMPP_3M_SDE().get_sampler(0.0, 3.0, "gpu")[0]))
    assert not torch.allclose(a, _select("dpmpp_3m_sde"))


def test_dpm_adaptive_options() -> None:
    defaults = (3, 0.05, 0.0078, 0.05, 0.0, 1.0, 0.0, 0.81, 0.0, 1.0)
    assert torch.equal(_run(SamplerDPMAdaptative().get_sampler(*defaults)[0]), _select("dpm_adaptive"))
    order2 = _run(SamplerDPMAdaptative().get_sampler(2, *defaults[1:])[0])
    assert not torch.allclose(order2, _select("dpm_adaptive"), atol=1e-6)
    with pytest.raises(ValueError, match="SamplerDPMAdaptative: order must be 2 or 3"):
        SamplerDPMAdaptative().get_sampler(4, *defaults[1:])


def test_sampler_node_drives_sampler_custom_advanced_on_sd1(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "SamplerDPMPP_2M_SDE", "inputs": {"solver_type": "heun", "eta": 0.5, "s_noise": 1.0,
                                                               "noise_device": "gpu"}},
        "11": {"class_type": "RandomNoise", "inputs": {"noise_seed": 4}},
        "12": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0],
                                                     "negative": ["3", 0], "cfg": 4.0}},
        "13": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 2,
                                                          "denoise": 1.0}},
        "14": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["11", 0], "guider": ["12", 0],
                                                                 "sampler": ["10", 0], "sigmas": ["13", 0],
                                                                 "latent_image": ["4", 0]}},
        "15": {"class_type": "Keep", "inputs": {"name": "custom", "latent": ["14", 0]}},
        "16": {"class_type": "Keep", "inputs": {"name": "sampler", "sampler": ["10", 0]}},
    }
    prompt = sd1_prompt(**extra)
    del prompt["5"], prompt["6"]
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert KEPT["sampler"].options == {"eta": 0.5, "s_noise": 1.0, "solver_type": "heun"}
    assert KEPT["custom"]["samples"].shape == (1, 4, 8, 8) and torch.isfinite(KEPT["custom"]["samples"]).all()
