"""Guidance patch nodes: the guided prediction each gives, against its formula computed here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hearth_samplers.guidance import Guidance
from hearth_samplers.nodes_guidance_patches import (
    APG,
    TCFG,
    CFGNorm,
    CFGZeroStar,
    DifferentialDiffusion,
    Mahiro,
    RescaleCFG,
    differential_mask,
)
from hearth_samplers.nodes_ksampler import KSampler
from hearth_samplers.regions import resolve

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, ToySampling, text

SCALE = 3.0


def _setup():
    torch.manual_seed(0)
    x, sigma = torch.randn(2, 4, 4, 4) * 2, torch.tensor([1.5])
    model = ToyModel()
    cond = model.denoise(x, sigma.expand(2), text(1.0, batch=2))
    uncond = model.denoise(x, sigma.expand(2), text(-1.0, batch=2))
    return model, x, sigma, cond, uncond


def _guided(model, x, sigma, scale=SCALE):
    positive = resolve([[text(1.0), {}]], x.shape, model.sampling)
    negative = resolve([[text(-1.0), {}]], x.shape, model.sampling)
    return Guidance(model, positive, negative, scale)(x, sigma)


def test_cfg_norm_caps_the_channel_norm_at_the_positive_predictions() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = CFGNorm().execute(model, 0.9)
    g = u + (c - u) * SCALE
    ratio = (c.norm(dim=1, keepdim=True) / (g.norm(dim=1, keepdim=True) + 1e-8)).clamp(0, 1)
    assert torch.allclose(_guided(patched, x, sigma), g * ratio * 0.9, atol=1e-5)
    assert model.model_options == {}  # the input MODEL is not patched


def test_cfg_norm_pre_cfg_rescales_the_guided_noise_to_the_positive_noise_norm() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = CFGNorm().execute(model, 0.5, True)
    eps_c, eps_u = x - c, x - u
    g = eps_u + SCALE * (eps_c - eps_u)
    rescaled = g * eps_c.norm(dim=1, keepdim=True) / g.norm(dim=1, keepdim=True)
    assert torch.allclose(_guided(patched, x, sigma), x - (0.5 * rescaled + 0.5 * g), atol=1e-5)
    assert "sampler_post_cfg_function" not in patched.model_options


def test_cfg_zero_star_guides_from_the_projected_negative() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = CFGZeroStar().execute(model)
    eps_c, eps_u = (x - c).reshape(2, -1), (x - u).reshape(2, -1)
    alpha = ((eps_c * eps_u).sum(1) / (eps_u**2).sum(1)).reshape(2, 1, 1, 1)
    assert torch.allclose(_guided(patched, x, sigma), alpha * u + SCALE * (c - alpha * u), atol=1e-4)


def test_rescale_cfg_matches_the_std_of_the_positive_v_prediction() -> None:
    model, x, sigma, c, u = _setup()
    (plain,) = RescaleCFG().patch(model, 0.0)
    assert torch.allclose(_guided(plain, x, sigma), u + (c - u) * SCALE, atol=1e-5)  # multiplier 0: plain CFG
    (patched,) = RescaleCFG().patch(model, 1.0)
    s = 1.5
    root, scaled = math.sqrt(s * s + 1), x / (s * s + 1)
    v_c, v_u = (scaled - c) * root / s, (scaled - u) * root / s
    v = v_u + SCALE * (v_c - v_u)
    v = v * (v_c.std(dim=(1, 2, 3), keepdim=True) / v.std(dim=(1, 2, 3), keepdim=True))
    assert torch.allclose(_guided(patched, x, sigma), scaled - v * s / root, atol=1e-4)


def test_mahiro() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = Mahiro().patch(model)
    g = (u + (c - u) * SCALE).numpy()
    leap, u_leap = c.numpy() * SCALE, u.numpy() * SCALE
    merge = (leap + g) / 2
    a, b = np.sqrt(np.abs(u_leap)) * np.sign(u_leap), np.sqrt(np.abs(merge)) * np.sign(merge)
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)
    w = 2 * (cosine.mean() + 1)
    assert np.allclose(_guided(patched, x, sigma).numpy(), (w * g + (4 - w) * leap) / 4, atol=1e-4)


def test_apg_projects_and_caps_the_guidance() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = APG().patch(model, 0.5, 1.0, 0.0)
    d = (c - u).numpy().reshape(2, -1)
    d = d * np.minimum(1.0, 1.0 / np.linalg.norm(d, axis=1, keepdims=True))
    unit = c.numpy().reshape(2, -1)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    parallel = (d * unit).sum(1, keepdims=True) * unit
    modified = (d - parallel + 0.5 * parallel).reshape(c.shape)
    # ComfyUI's APG leaves CFG's result as the positive plus scale times the modified guidance.
    assert np.allclose(_guided(patched, x, sigma).numpy(), c.numpy() + SCALE * modified, atol=1e-4)


def test_apg_momentum_averages_over_steps_and_restarts_with_a_new_run() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = APG().patch(model, 1.0, 0.0, 0.5)
    first = _guided(patched, x, sigma)
    assert torch.allclose(first, c + SCALE * (c - u), atol=1e-4)
    second = _guided(patched, x, torch.tensor([1.0]))
    c2 = model.denoise(x, torch.tensor([1.0, 1.0]), text(1.0, batch=2))
    u2 = model.denoise(x, torch.tensor([1.0, 1.0]), text(-1.0, batch=2))
    assert torch.allclose(second, c2 + SCALE * (0.5 * (c - u) + (c2 - u2)), atol=1e-4)
    assert torch.allclose(_guided(patched, x, sigma), first, atol=1e-5)  # a higher sigma: a new run


def test_tcfg_projects_the_negative_score_on_the_first_singular_vector() -> None:
    model, x, sigma, c, u = _setup()
    (patched,) = TCFG().patch(model)
    expected_u = []
    for i in range(2):
        sc, su = (x - c)[i].reshape(-1).numpy(), (x - u)[i].reshape(-1).numpy()
        _, _, vh = np.linalg.svd(np.stack([su, sc]), full_matrices=False)
        expected_u.append(x[i].numpy() - ((su @ vh[0]) * vh[0]).reshape(x.shape[1:]))
    u_td = torch.tensor(np.stack(expected_u))
    assert torch.allclose(_guided(patched, x, sigma), u_td + (c - u_td) * SCALE, atol=1e-4)


class _Denoiser:
    def __init__(self) -> None:
        self.inner_model = type("View", (), {"model_sampling": ToySampling()})()


def test_differential_diffusion_thresholds_the_mask_by_schedule_progress() -> None:
    s = ToySampling()
    sigmas = torch.tensor([s.sigma_max, float(s.sigma(torch.tensor(499.5))), 0.0])
    mask = torch.tensor([0.2, 0.5, 0.7]).reshape(1, 1, 1, 3)
    options = {"model": _Denoiser(), "sigmas": sigmas}
    # Halfway in timesteps (from 999 to 0, sigma_min's): pixels with mask >= 0.5 are regenerated.
    half = differential_mask(sigmas[1:2], mask, options)
    assert half.flatten().tolist() == [0.0, 1.0, 1.0]
    assert differential_mask(sigmas[:1], mask, options).flatten().tolist() == [0.0, 0.0, 0.0]
    blended = differential_mask(sigmas[1:2], mask, options, strength=0.25)
    assert blended.flatten().tolist() == pytest.approx([0.15, 0.625, 0.775])


def test_differential_diffusion_node_sets_the_mask_function_the_sampler_calls() -> None:
    model = ToyModel()
    (patched,) = DifferentialDiffusion().execute(model, 1.0)
    mask = torch.linspace(0, 1, 8).reshape(1, 1, 1, 8).expand(1, 1, 8, 8)
    latent = {"samples": torch.ones(1, 4, 8, 8), "noise_mask": mask}
    (out,) = KSampler().sample(patched, 2, 4, 2.0, "euler", "normal", [[text(1.0), {}]], [[text(-1.0), {}]], latent)
    (plain,) = KSampler().sample(ToyModel(), 2, 4, 2.0, "euler", "normal", [[text(1.0), {}]], [[text(-1.0), {}]],
                                 latent)
    assert not torch.allclose(out["samples"], plain["samples"])
    # A pixel of mask 1 is regenerated at every step, as without the patch; one of mask 0 only at the last step,
    # where the schedule's progress reaches 0 (ComfyUI's ">="), so it moves a little from the original.
    assert torch.allclose(out["samples"][..., -1], plain["samples"][..., -1], atol=1e-5)
    assert torch.allclose(plain["samples"][..., 0], torch.ones(1, 4, 8))
    change = (out["samples"][..., 0] - 1).abs().max()
    assert 0 < change < (plain["samples"][..., -1] - 1).abs().max()


def test_a_model_without_model_options_is_refused() -> None:
    class Bare:
        def clone(self):
            return self

    with pytest.raises(ValueError, match="CFGNorm: this MODEL \\(Bare\\) has no model_options"):
        CFGNorm().execute(Bare(), 1.0)


def test_patches_chain_on_sd1_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "CFGNorm", "inputs": {"model": ["1", 0], "strength": 0.95}},
        "11": {"class_type": "RescaleCFG", "inputs": {"model": ["10", 0], "multiplier": 0.7}},
        "12": {"class_type": "TCFG", "inputs": {"model": ["11", 0]}},
        "13": {"class_type": "Keep", "inputs": {"name": "model", "model": ["12", 0]}},
    }
    result = run_prompt(sd1_prompt(model=["12", 0], steps=1, **extra))
    assert result.ok, result.error
    options = KEPT["model"].model_options
    assert len(options["sampler_post_cfg_function"]) == 1 and len(options["sampler_pre_cfg_function"]) == 1
    assert callable(options["sampler_cfg_function"])
    patched = KEPT["latent"]["samples"]
    assert run_prompt(sd1_prompt(steps=1)).ok
    assert torch.isfinite(patched).all() and not torch.allclose(KEPT["latent"]["samples"], patched)


def test_dual_cfg_at_both_scales_1_skips_the_middle_and_negative_as_comfyui() -> None:
    from hearth_samplers.nodes_guiders import DualCFGGuider

    model = ToyModel(constant=True)
    x, sigma = torch.zeros(1, 4, 4, 4), torch.tensor([1.0])
    (guider,) = DualCFGGuider().get_guider(model, [[text(3.0), {}]], [[text(2.0), {}]], [[text(0.5), {}]], 1.0, 1.0,
                                           "regular")

    def regions(c):
        return None if c is None else resolve(c, x.shape, model.sampling)

    out = Guidance(model, regions(guider.positive), regions(guider.negative), guider.cfg, regions(guider.middle),
                   guider.cfg_2, guider.style)(x, sigma)
    assert float(out[0, 0, 0, 0]) == pytest.approx(3.0)
    assert [call["shape"][0] for call in model.calls] == [1]  # the positive alone
