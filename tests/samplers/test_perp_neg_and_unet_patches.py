"""Perp-Neg (guider and patch), FreeU / FreeU_V2 and Perturbed-Attention Guidance against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hearth_samplers.guidance import Guidance
from hearth_samplers.nodes_perp_neg import PerpNeg, PerpNegGuider
from hearth_samplers.nodes_unet_patches import FreeU, PerturbedAttentionGuidance, fourier_filter
from hearth_samplers.regions import resolve

from .sd_workflow import KEPT, sd1_prompt, sd_pack  # noqa: F401
from .toy_model import ToyModel, text


class PatternModel(ToyModel):
    """Predicts a different spatial pattern for each conditioning value, so guidance directions are not parallel."""

    def denoise(self, x, sigma, cond, options=None):
        self.calls.append({"shape": tuple(x.shape), "options": dict(options or {})})
        value = cond[:, 0, 0].reshape(-1, 1, 1, 1)
        grid = torch.arange(x[0].numel(), dtype=x.dtype).reshape(x.shape[1:])
        return torch.sin(grid * value * 0.37) + value * 0.1 + x * 0.01

    def clone(self):
        twin = PatternModel()
        twin.model_options = dict(self.model_options)
        return twin


def _predictions(model, x, sigma, *values):
    return [model.denoise(x, sigma.expand(x.shape[0]), text(v, batch=x.shape[0])).numpy() for v in values]


def _expected_perp_neg(p, n, e, neg_scale, cfg):
    pos, neg = p - e, n - e
    perp = neg - (neg * pos).sum() / (pos * pos).sum() * pos
    return e + cfg * (pos - neg_scale * perp)


def _regions(model, x, value):
    return resolve([[text(value), {}]], x.shape, model.sampling)


def _perp_neg_guidance(model, x, cfg, neg_scale):
    (guider,) = PerpNegGuider().execute(model, [[text(3.0), {}]], [[text(0.5), {}]], [[text(1.0), {}]], cfg,
                                        neg_scale)
    return Guidance(model, _regions(model, x, 3.0), _regions(model, x, 0.5), guider.cfg,
                    _regions(model, x, 1.0), guider.cfg_2, guider.style)


def test_perp_neg_guider_removes_only_the_perpendicular_negative() -> None:
    model, x, sigma = PatternModel(), torch.randn(2, 4, 4, 4), torch.tensor([2.0])
    got = _perp_neg_guidance(model, x, 5.0, 0.7)(x, sigma)
    model.calls.clear()
    p, n, e = _predictions(model, x, sigma, 3.0, 0.5, 1.0)
    assert np.allclose(got.numpy(), _expected_perp_neg(p, n, e, 0.7, 5.0), atol=1e-5)


def test_perp_neg_guider_skips_what_its_scales_cancel() -> None:
    model, x, sigma = PatternModel(), torch.randn(1, 4, 4, 4), torch.tensor([2.0])
    guidance = _perp_neg_guidance(model, x, 1.0, 0.0)
    got = guidance(x, sigma)
    assert [call["shape"][0] for call in model.calls] == [1]  # the positive alone
    (p,) = _predictions(model, x, sigma, 3.0)
    assert np.allclose(got.numpy(), p, atol=1e-6)


def test_perp_neg_patch_matches_the_guider() -> None:
    model, x, sigma = PatternModel(), torch.randn(1, 4, 4, 4), torch.tensor([2.0])
    (patched,) = PerpNeg().execute(model, [[text(1.0), {}]], 0.7)
    got = Guidance(patched, _regions(model, x, 3.0), _regions(model, x, 0.5), 5.0)(x, sigma)
    p, n, e = _predictions(model, x, sigma, 3.0, 0.5, 1.0)
    assert np.allclose(got.numpy(), _expected_perp_neg(p, n, e, 0.7, 5.0), atol=1e-5)
    assert patched.calls[-1]["options"]["prompt_type"] == "negative"  # the empty prompt is sampled as a negative


def test_fourier_filter_scales_the_lowest_frequencies() -> None:
    x = torch.randn(1, 2, 8, 8)
    got = fourier_filter(x, 1, 0.2).numpy()
    spectrum = np.fft.fftshift(np.fft.fft2(x.numpy().astype(np.float64)), axes=(-2, -1))
    spectrum[..., 3:5, 3:5] *= 0.2
    assert np.allclose(got, np.fft.ifft2(np.fft.ifftshift(spectrum, axes=(-2, -1))).real, atol=1e-5)


def test_freeu_refuses_a_model_without_a_unet() -> None:
    with pytest.raises(ValueError, match="FreeU: this MODEL \\(ToyModel\\) is not a UNet model"):
        FreeU().patch(ToyModel(), 1.1, 1.2, 0.9, 0.2)


def test_pag_evaluates_the_positive_with_identity_middle_attention() -> None:
    model, x, sigma = PatternModel(), torch.randn(1, 4, 4, 4), torch.tensor([2.0])
    (patched,) = PerturbedAttentionGuidance().execute(model, 2.0)
    Guidance(patched, _regions(model, x, 3.0), _regions(model, x, 0.5), 4.0)(x, sigma)
    extra = patched.calls[-1]["options"]
    assert extra["cond_index"].tolist() == [0]
    replace = patched.model_options.get("transformer_options", {}).get("patches_replace", {})
    assert ("middle", 0) not in replace.get("attn1", {})  # the replacement was only there for that call


def test_freeu_and_pag_on_sd1_through_the_executor(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "FreeU_V2", "inputs": {"model": ["1", 0], "b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}},
        "11": {"class_type": "PerturbedAttentionGuidance", "inputs": {"model": ["10", 0], "scale": 3.0}},
        "12": {"class_type": "Keep", "inputs": {"name": "freeu", "model": ["10", 0]}},
    }
    assert run_prompt(sd1_prompt(steps=1)).ok
    plain = KEPT["latent"]["samples"]
    result = run_prompt(sd1_prompt(model=["11", 0], steps=1, **extra))
    assert result.ok, result.error
    assert torch.isfinite(KEPT["latent"]["samples"]).all() and not torch.allclose(KEPT["latent"]["samples"], plain)
    model = KEPT["freeu"]
    (patch,) = model.model_options["transformer_options"]["patches"]["output_block_patch"]
    channels = model.model.model_config.unet_config["model_channels"]
    h, skip = torch.rand(1, channels * 4, 4, 4) + 0.5, torch.randn(1, channels * 4, 4, 4)
    new_h, new_skip = patch(h.clone(), skip, {})
    mean = h.mean(1, keepdim=True)
    factor = 0.3 * (mean - mean.min()) / (mean.max() - mean.min()) + 1
    half = channels * 2
    assert torch.allclose(new_h[:, :half], h[:, :half] * factor) and torch.equal(new_h[:, half:], h[:, half:])
    assert torch.allclose(new_skip, fourier_filter(skip, 1, 0.9))
    untouched = torch.randn(1, channels, 4, 4)
    assert patch(untouched, untouched, {})[0] is untouched  # other stages are left alone


def test_perp_neg_guider_drives_sampler_custom_advanced_on_sd1(sd_pack, run_prompt) -> None:  # noqa: F811
    extra = {
        "10": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "11": {"class_type": "PerpNegGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                         "empty_conditioning": ["10", 0], "cfg": 4.0,
                                                         "neg_scale": 1.0}},
        "12": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
        "13": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "14": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": 1,
                                                          "denoise": 1.0}},
        "15": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["12", 0], "guider": ["11", 0],
                                                                 "sampler": ["13", 0], "sigmas": ["14", 0],
                                                                 "latent_image": ["4", 0]}},
        "16": {"class_type": "Keep", "inputs": {"name": "perp", "latent": ["15", 0]}},
    }
    result = run_prompt(sd1_prompt(steps=1, **extra))
    assert result.ok, result.error
    perp, plain = KEPT["perp"]["samples"], KEPT["latent"]["samples"]
    assert perp.shape == plain.shape and torch.isfinite(perp).all()
    assert not torch.allclose(perp, plain)  # not plain CFG: the negative's parallel part is kept out
