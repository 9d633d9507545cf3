"""The MODEL's model_options functions in the guidance, with ComfyUI's semantics: sampler_cfg_function (in noise
space), sampler_pre_cfg_function, sampler_post_cfg_function, disable_cfg1_optimization, denoise_mask_function,
and the cond_index the batched model calls carry."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hearth_samplers.guidance import Guidance, cfg, predict
from hearth_samplers.regions import resolve
from hearth_samplers.sampling import Guider, ksampler_sigmas, sampler_object

from .toy_model import ToyModel, text

SHAPE = torch.Size([2, 4, 8, 8])


class ScaledToy(ToyModel):
    """The toy MODEL with predictions that differ between prompts by more than a constant (so CFG changes their
    spread, and a rescale has something to undo)."""

    def denoise(self, x, sigma, cond, options=None):
        base = super().denoise(x, sigma, cond, options)
        value = cond[:, 0, 0].reshape(-1, 1, 1, 1).to(x.dtype)
        return base + torch.tanh(x / (1 + sigma.reshape(-1, 1, 1, 1))) * value * 0.2
SCALE = 6.5


def _regions(model: ToyModel, value: float):
    return resolve([[text(value), {}]], SHAPE, model.sampling)


def _guidance(model: ToyModel, scale: float = SCALE, negative: bool = True) -> Guidance:
    return Guidance(model, _regions(model, 2.0), _regions(model, -1.0) if negative else None, scale)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(3)) * 2.0


SIGMA = torch.tensor([2.5])


def _predictions(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model = ScaledToy()
    cond, uncond = predict(model, [_regions(model, 2.0), _regions(model, -1.0)], x, SIGMA)
    return cond, uncond


def test_a_cfg_function_with_the_default_formula_reproduces_the_default(x: torch.Tensor) -> None:
    plain = _guidance(ScaledToy())(x, SIGMA)
    model = ScaledToy()
    model.model_options["sampler_cfg_function"] = lambda a: a["uncond"] + (a["cond"] - a["uncond"]) * a["cond_scale"]
    patched = _guidance(model)(x, SIGMA)
    assert torch.allclose(patched, plain, atol=1e-5, rtol=0)
    cond, uncond = _predictions(x)
    assert torch.allclose(plain, uncond + (cond - uncond) * SCALE, atol=1e-6)
    assert (plain - cond).abs().max() > 0.1  # the scale really mattered


def test_cfg_function_args_are_comfyuis_noise_space_values(x: torch.Tensor) -> None:
    seen: list[dict[str, Any]] = []
    model = ScaledToy()
    model.model_options["sampler_cfg_function"] = lambda a: (seen.append(a), a["cond"])[1]
    out = _guidance(model)(x, SIGMA)
    cond, uncond = _predictions(x)
    (args,) = seen
    assert set(args) == {"cond", "uncond", "cond_scale", "timestep", "input", "sigma", "cond_denoised",
                         "uncond_denoised", "model", "model_options"}
    assert torch.allclose(args["cond"], x - cond) and torch.allclose(args["uncond"], x - uncond)
    assert torch.equal(args["cond_denoised"], cond) and torch.equal(args["uncond_denoised"], uncond)
    assert args["cond_scale"] == SCALE and torch.equal(args["input"], x)
    assert args["sigma"].shape == (2,) and torch.allclose(args["sigma"], torch.full((2,), 2.5))
    assert args["timestep"] is args["sigma"] and args["model"] is model  # no model.model: the model itself
    assert args["model_options"] is model.model_options
    # Returning cond's noise means no guidance: the output is the positive prediction, as at cfg 1.
    at_one = _guidance(ScaledToy(), scale=1.0)(x, SIGMA)
    assert torch.allclose(out, at_one, atol=1e-6) and torch.allclose(out, cond, atol=1e-6)


def _rescale(multiplier: float):
    # A post-CFG rescale (Lin et al. 2023, eq. 15-16 in noise space): match the guided noise's std to the
    # positive prediction's, blended by `multiplier`.
    def post(args: dict[str, Any]) -> torch.Tensor:
        x = args["input"]
        guided = x - args["denoised"]
        positive = x - args["cond_denoised"]
        ratio = positive.std(dim=(1, 2, 3), keepdim=True) / guided.std(dim=(1, 2, 3), keepdim=True)
        return x - (guided * ratio * multiplier + guided * (1.0 - multiplier))

    return post


def test_post_cfg_functions_run_in_order_on_the_guided_prediction(x: torch.Tensor) -> None:
    seen: list[dict[str, Any]] = []
    model = ScaledToy()
    guidance = _guidance(model)
    model.model_options["sampler_post_cfg_function"] = [
        lambda a: (seen.append(a), a["denoised"] * 2.0)[1], lambda a: (seen.append(a), a["denoised"] + 1.0)[1]]
    out = guidance(x, SIGMA)
    cond, uncond = _predictions(x)
    guided = cfg(cond, uncond, SCALE)
    assert torch.allclose(out, guided * 2.0 + 1.0, atol=1e-5)
    first, second = seen
    assert set(first) == {"denoised", "cond", "uncond", "cond_scale", "model", "uncond_denoised", "cond_denoised",
                          "sigma", "model_options", "input"}
    assert torch.allclose(first["denoised"], guided) and torch.allclose(second["denoised"], guided * 2.0)
    # cond / uncond are the conditionings, as in ComfyUI (not predictions).
    assert first["cond"] is guidance.positive and first["uncond"] is guidance.negative
    assert torch.equal(first["cond_denoised"], cond) and torch.equal(first["uncond_denoised"], uncond)


def test_a_rescale_post_cfg_function_changes_the_output_by_the_hand_computed_amount(x: torch.Tensor) -> None:
    model = ScaledToy()
    model.model_options["sampler_post_cfg_function"] = [_rescale(0.7)]
    out = _guidance(model)(x, SIGMA)
    cond, uncond = _predictions(x)
    guided_noise = x - (uncond + (cond - uncond) * SCALE)
    positive_noise = x - cond
    expected = guided_noise.clone()
    for i in range(2):
        ratio = positive_noise[i].std() / guided_noise[i].std()
        expected[i] = guided_noise[i] * (0.7 * ratio + 0.3)
    assert torch.allclose(out, x - expected, atol=1e-5)
    assert (out - cfg(cond, uncond, SCALE)).abs().max() > 0.05


def test_pre_cfg_functions_replace_the_predictions(x: torch.Tensor) -> None:
    seen: list[dict[str, Any]] = []
    model = ScaledToy()
    guidance = _guidance(model)
    model.model_options["sampler_pre_cfg_function"] = [lambda a: (seen.append(a), a["conds_out"][::-1])[1]]
    out = guidance(x, SIGMA)
    cond, uncond = _predictions(x)
    assert torch.allclose(out, cfg(uncond, cond, SCALE), atol=1e-5)  # swapped
    (args,) = seen
    assert set(args) == {"conds", "conds_out", "cond_scale", "timestep", "input", "sigma", "model", "model_options"}
    assert args["conds"] == [guidance.positive, guidance.negative]
    assert torch.equal(args["conds_out"][0], cond) and torch.equal(args["conds_out"][1], uncond)


def test_cfg1_skips_the_negative_unless_the_model_disables_that(x: torch.Tensor) -> None:
    seen: list[dict[str, Any]] = []
    model = ScaledToy()
    model.model_options["sampler_post_cfg_function"] = [lambda a: (seen.append(a), a["denoised"])[1]]
    out = _guidance(model, scale=1.0)(x, SIGMA)
    cond, uncond = _predictions(x)
    assert [call["shape"][0] for call in model.calls] == [2]
    assert seen[0]["uncond"] is None and torch.equal(seen[0]["uncond_denoised"], torch.zeros(SHAPE))
    assert torch.allclose(out, cond, atol=1e-6)
    seen.clear()
    model = ScaledToy()
    model.model_options.update(disable_cfg1_optimization=True,
                               sampler_post_cfg_function=[lambda a: (seen.append(a), a["denoised"])[1]])
    _guidance(model, scale=1.0)(x, SIGMA)
    assert [call["shape"][0] for call in model.calls] == [4]
    assert torch.allclose(seen[0]["uncond_denoised"], uncond)


def test_batched_calls_say_which_items_are_positive_and_negative(x: torch.Tensor) -> None:
    model = ScaledToy()
    _guidance(model)(x, SIGMA)
    (call,) = model.calls
    assert call["options"]["cond_index"].tolist() == [0, 0, 1, 1]


def test_dual_guidance_goes_through_the_cfg_function(x: torch.Tensor) -> None:
    def dual(model: ToyModel, style: str) -> torch.Tensor:
        return Guidance(model, _regions(model, 2.0), _regions(model, -1.0), 3.0, _regions(model, 0.5), 5.0,
                        style)(x, SIGMA)

    model = ScaledToy()
    negative, middle, positive = predict(model, [_regions(model, -1.0), _regions(model, 0.5), _regions(model, 2.0)],
                                         x, SIGMA)
    for style in ("regular", "nested"):
        model = ScaledToy()
        model.model_options["sampler_cfg_function"] = lambda a: a["cond"]  # no guidance where it applies
        out = dual(model, style)
        # regular: the second conditioning guided from the negative, through the function; nested: the first
        # guided from the second, through it.
        expected = middle + (positive - middle) * 3.0 if style == "regular" else cfg(positive, negative, 5.0)
        assert torch.allclose(out, expected, atol=1e-5), style
        assert not torch.allclose(dual(ScaledToy(), style), expected, atol=1e-3), style


def test_a_cfg_function_returning_a_wrong_shape_is_named(x: torch.Tensor) -> None:
    model = ScaledToy()
    model.model_options["sampler_cfg_function"] = lambda a: a["cond"][:1]
    with pytest.raises(ValueError, match=r"sampler_cfg_function returned \[1, 4, 8, 8\]"):
        _guidance(model)(x, SIGMA)


def _sample(model: ToyModel, latent: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    sigmas = ksampler_sigmas(model.sampling, "normal", "euler", 4)
    guider = Guider(model, [[text(2.0), {}]], [[text(-1.0), {}]], 3.0)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))
    return guider.sample(noise, latent, sampler_object("euler"), sigmas, denoise_mask=mask, seed=1)


def test_denoise_mask_function_decides_the_mask_of_each_step() -> None:
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    keep_all = torch.zeros(1, 8, 8)
    model = ScaledToy()
    assert torch.allclose(_sample(model, latent, keep_all), latent, atol=1e-4)  # nothing to regenerate
    unmasked = _sample(ScaledToy(), latent, None)
    assert (unmasked - latent).abs().max() > 0.1
    seen: list[tuple[float, dict[str, Any]]] = []

    def regenerate_everything(sigma, denoise_mask, extra_options):
        seen.append((float(sigma.reshape(-1)[0]), extra_options))
        assert torch.equal(denoise_mask, torch.zeros(1, 4, 8, 8))  # the LATENT's mask at the latent's shape
        return torch.ones_like(denoise_mask)

    model = ScaledToy()
    model.model_options["denoise_mask_function"] = regenerate_everything
    assert torch.allclose(_sample(model, latent, keep_all), unmasked, atol=1e-5)
    sigmas = ksampler_sigmas(model.sampling, "normal", "euler", 4)
    assert [s for s, _ in seen] == pytest.approx(sigmas[:-1].tolist())
    extra = seen[0][1]
    assert torch.equal(extra["sigmas"], sigmas) and extra["model"].inner_model is model


def test_a_denoise_mask_function_returning_a_wrong_shape_is_named() -> None:
    model = ScaledToy()
    model.model_options["denoise_mask_function"] = lambda sigma, mask, extra_options: mask[0]
    with pytest.raises(ValueError, match="denoise_mask_function returned"):
        _sample(model, torch.zeros(1, 4, 8, 8), torch.ones(1, 8, 8))
