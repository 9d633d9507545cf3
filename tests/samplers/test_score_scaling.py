"""Epsilon Scaling and Temporal Score Rescaling: the guided prediction each gives, by their formulas."""

from __future__ import annotations

import pytest
import torch
from hearth_samplers.guidance import Guidance
from hearth_samplers.model_sampling import FlowSampling
from hearth_samplers.nodes_score_scaling import EpsilonScaling, TemporalScoreRescaling, tsr_factor
from hearth_samplers.regions import resolve

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, text


def _guided(model, x, sigma, cfg=2.0):
    positive = resolve([[text(1.0), {}]], x.shape, model.sampling)
    negative = resolve([[text(-1.0), {}]], x.shape, model.sampling)
    plain = Guidance(ToyModel(), positive, negative, cfg)(x, sigma)
    return Guidance(model, positive, negative, cfg)(x, sigma), plain


def test_epsilon_scaling_divides_the_guided_noise() -> None:
    x, sigma = torch.randn(1, 4, 4, 4), torch.tensor([2.0])
    (patched,) = EpsilonScaling().execute(ToyModel(), 1.25)
    got, plain = _guided(patched, x, sigma)
    assert torch.allclose(got, x - (x - plain) / 1.25, atol=1e-6)


def test_tsr_scales_the_score_by_its_snr_ratio() -> None:
    x, sigma = torch.randn(1, 4, 4, 4), torch.tensor([2.0])
    (patched,) = TemporalScoreRescaling().execute(ToyModel(), 0.5, 1.0)
    got, plain = _guided(patched, x, sigma)
    r = (0.25 + 1) / (0.25 / 0.5 + 1)  # snr = 1 / sigma^2 = 0.25
    assert torch.allclose(got, x + r * (plain - x), atol=1e-6)
    (off,) = TemporalScoreRescaling().execute(ToyModel(), 1.0, 1.0)
    assert torch.allclose(_guided(off, x, sigma)[0], plain)


def test_tsr_on_a_flow_model_uses_its_signal_scale() -> None:
    (patched,) = TemporalScoreRescaling().execute(ToyModel(), 0.8, 2.0)
    view = type("View", (), {"model_sampling": FlowSampling(shift=1.0, multiplier=1.0)})()  # ComfyUI's BaseModel
    x, sigma = torch.randn(1, 4, 4, 4), torch.tensor([0.25])
    denoised = x * 0.3
    fn = patched.model_options["sampler_post_cfg_function"][0]
    got = fn({"denoised": denoised, "input": x, "sigma": sigma, "model": view})
    snr = (0.75 / 0.25) ** 2
    r = (snr * 4 + 1) / (snr * 4 / 0.8 + 1)
    assert torch.allclose(got, x / 0.75 + r * (denoised - x / 0.75), atol=1e-5)
    assert float(tsr_factor(torch.tensor([float("inf")]), 0.8, 4.0)) == pytest.approx(0.8)


def test_epsilon_scaling_by_its_spaced_name_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {"10": {"class_type": "Epsilon Scaling", "inputs": {"model": ["1", 0], "scaling_factor": 1.005}},
             "11": {"class_type": "TemporalScoreRescaling", "inputs": {"model": ["10", 0], "tsr_k": 0.95,
                                                                      "tsr_sigma": 1.0}},
             "12": {"class_type": "Keep", "inputs": {"name": "model", "model": ["11", 0]}}}
    result = run_prompt(sd1_prompt(model=["11", 0], steps=1, **extra))
    assert result.ok, result.error
    assert len(KEPT["model"].model_options["sampler_post_cfg_function"]) == 2
    assert torch.isfinite(KEPT["latent"]["samples"]).all()
