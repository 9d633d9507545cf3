"""Guidance patches of ComfyUI packs (cfg_pack) on the SD MODEL: sampler_cfg_function, sampler_pre/post_cfg_function,
denoise_mask_function, middle_patch and cond_or_uncond, checked against values computed without them on a tiny
SD1 model, directly and through the executor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hearth_samplers.guidance import Guidance, cfg, predict
from hearth_samplers.regions import resolve
from hearth_samplers.sampling import common_ksampler

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import (
    CHECKPOINT,
    executor_for,
    make_models,
    node,
    preview_pixels,
    sampling_inputs,
    txt2img_parts,
)

SHAPE = torch.Size([1, 4, 8, 8])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture(scope="module")
def parts(pm: PluginManager, models: ModelFolders) -> tuple[Any, Any, Any]:
    from hearth_sd import loaders

    return loaders.checkpoint(models.find("checkpoints", CHECKPOINT))


@pytest.fixture(scope="module")
def prompts(parts) -> dict[str, list]:
    clip = parts[1]
    found = {}
    for name, text in (("cat", "a red cat"), ("blurry", "blurry")):
        cond, pooled = clip.encode(text)
        found[name] = [[cond, {"pooled_output": pooled}]]
    return found


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)) * 3.0


SIGMA = torch.tensor([3.0])


def run_node(pm: PluginManager, name: str, *args: Any, **kwargs: Any) -> Any:
    cls = pm.nodes()[name].cls
    return getattr(cls(), cls.FUNCTION)(*args, **kwargs)[0]


def regions(model: Any, conditioning: list) -> list:
    return resolve(conditioning, SHAPE, model.sampling)


def guided(model: Any, prompts: dict[str, list], x: torch.Tensor, scale: float = 4.0) -> torch.Tensor:
    return Guidance(model, regions(model, prompts["cat"]), regions(model, prompts["blurry"]), scale)(x, SIGMA)


def sample(model: Any, prompts: dict[str, list], cfg_scale: float, positive: str = "cat", negative: str = "blurry",
           mask: torch.Tensor | None = None) -> torch.Tensor:
    latent: dict[str, Any] = {"samples": torch.zeros(SHAPE)}
    if mask is not None:
        latent = {"samples": torch.randn(SHAPE, generator=torch.Generator().manual_seed(5)), "noise_mask": mask}
    out = common_ksampler(model, 7, 3, cfg_scale, "euler", "normal", prompts[positive], prompts[negative], latent)
    return out["samples"]


def test_fixed_scale_cfg_function_samples_as_that_cfg(pm: PluginManager, parts, prompts) -> None:
    model = parts[0]
    patched = run_node(pm, "CfgPackFixedScale", model, 2.5)
    assert "sampler_cfg_function" not in model.model_options  # on the clone only
    expected = sample(model, prompts, 2.5)
    assert torch.allclose(sample(patched, prompts, 4.0), expected, atol=1e-4)
    assert (sample(model, prompts, 4.0) - expected).abs().max() > 1e-2  # the cfg of 4 would differ


def test_rescale_post_cfg_changes_the_guided_prediction_by_the_hand_computed_amount(pm: PluginManager, parts,
                                                                                    prompts, x) -> None:
    model = parts[0]
    patched = run_node(pm, "CfgPackRescale", model, 0.7)
    cond, uncond = predict(model, [regions(model, prompts["cat"]), regions(model, prompts["blurry"])], x, SIGMA)
    # The tiny model's prompts differ little: a strong scale makes the guided spread grow enough to rescale.
    noise = x - cfg(cond, uncond, 60.0)
    ratio = (x - cond).std() / noise.std()
    expected = x - noise * (0.7 * ratio + 0.3)
    out = guided(patched, prompts, x, 60.0)
    assert torch.allclose(out, expected, atol=1e-4)
    assert (out - guided(model, prompts, x, 60.0)).abs().max() > 1e-2
    assert abs(float(ratio) - 1.0) > 0.01  # the rescale really rescaled


def test_swap_pre_cfg_samples_as_swapped_prompts(pm: PluginManager, parts, prompts) -> None:
    model = parts[0]
    patched = run_node(pm, "CfgPackSwapPrompts", model)
    swapped = sample(model, prompts, 4.0, positive="blurry", negative="cat")
    assert torch.allclose(sample(patched, prompts, 4.0), swapped, atol=1e-5)
    assert (sample(model, prompts, 4.0) - swapped).abs().max() > 1e-2


def test_middle_patch_runs_between_self_and_cross_attention(pm: PluginManager, parts, prompts, x) -> None:
    model = parts[0]
    cond = prompts["cat"][0][0]
    base = model.denoise(x, SIGMA, cond)
    assert torch.equal(run_node(pm, "CfgPackScaleMiddle", model, 1.0).denoise(x, SIGMA, cond), base)
    assert (run_node(pm, "CfgPackScaleMiddle", model, 0.5).denoise(x, SIGMA, cond) - base).abs().max() > 1e-3
    seen = []
    clone = model.clone()
    clone.set_model_patch(lambda h, extra: (seen.append((extra["block"], tuple(h.shape))), h)[1], "middle_patch")
    clone.denoise(x, SIGMA, cond)
    from hearth_sd.model_options import transformer_blocks

    blocks = [(name, number) for name, number, _, _ in transformer_blocks(model.diffusion.unet)]
    assert [block for block, _ in seen] == blocks and all(len(shape) == 3 for _, shape in seen)


def test_cond_or_uncond_tells_an_attention_patch_the_negative_chunks(pm: PluginManager, parts, prompts, x) -> None:
    model = parts[0]
    patched = run_node(pm, "CfgPackMuteNegativeText", model)
    conds = [regions(model, prompts["cat"]), regions(model, prompts["blurry"])]
    plain_cond, plain_uncond = predict(model, conds, x, SIGMA)
    cond, uncond = predict(patched, conds, x, SIGMA)
    assert torch.allclose(cond, plain_cond, atol=1e-6)  # the positive chunk is left alone
    # The negative chunk is as if its cross attention were muted on its own.
    muted = model.clone()
    muted.set_model_attn2_output_patch(lambda n, extra: n * 0.0)
    assert torch.allclose(uncond, muted.denoise(x, SIGMA, prompts["blurry"][0][0]), atol=1e-5)
    assert (uncond - plain_uncond).abs().max() > 1e-3
    # A model_function_wrapper sees the same chunks.
    seen = []
    wrapped = model.clone()

    def wrapper(apply_model, args):
        seen.append((args["cond_or_uncond"], args["c"]["transformer_options"]["cond_or_uncond"]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    wrapped.set_model_unet_function_wrapper(wrapper)
    predict(wrapped, conds, x, SIGMA)
    assert seen == [([0, 1], [0, 1])]


def test_cond_or_uncond_from_the_per_item_index() -> None:
    from hearth_sd.model_options import cond_or_uncond

    assert cond_or_uncond(torch.tensor([0, 0, 1, 1]), 4) == [0, 1]
    assert cond_or_uncond(torch.tensor([0, 0]), 2) == [0]
    assert cond_or_uncond(torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]), 8) == [0, 1, 0, 1]  # context windows
    assert cond_or_uncond(torch.tensor([0, 0, 0, 0, 1, 1]), 6) == [0, 0, 1]  # two positive regions, batch 2
    assert cond_or_uncond(None, 3) == [0] and cond_or_uncond(torch.tensor([1]), 3) == [0]


def test_denoise_mask_function_thresholds_the_mask(pm: PluginManager, parts, prompts) -> None:
    model = parts[0]
    patched = run_node(pm, "CfgPackHardMask", model)
    everywhere = torch.ones(1, 8, 8)
    # A full mask stays full at every step: the same as without the function.
    assert torch.allclose(sample(patched, prompts, 4.0, mask=everywhere), sample(model, prompts, 4.0, mask=everywhere),
                          atol=1e-5)
    # A half-strength mask keeps the latent until half the schedule is done, then regenerates: not the soft blend.
    half = torch.full((1, 8, 8), 0.5)
    hard, soft = sample(patched, prompts, 4.0, mask=half), sample(model, prompts, 4.0, mask=half)
    assert (hard - soft).abs().max() > 1e-2


def test_sampler_options_log_no_warning(parts, prompts, x, caplog: pytest.LogCaptureFixture) -> None:
    clone = parts[0].clone()
    clone.set_model_sampler_post_cfg_function(lambda args: args["denoised"])
    with caplog.at_level("WARNING", logger="hearth"):
        guided(clone, prompts, x)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cfg_pack_through_the_executor(pm: PluginManager, tmp_path: Path) -> None:
    executor: Executor = executor_for(pm, tmp_path)

    def pixels(model_link: list, cfg_scale: float) -> np.ndarray:
        prompt = {**txt2img_parts(), "8": node("CfgPackFixedScale", model=["1", 0], scale=2.5),
                  "5": node("KSampler", **sampling_inputs(model=model_link, cfg=cfg_scale), denoise=1.0),
                  "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]), "7": node("PreviewImage", images=["6", 0])}
        result = executor.run(prompt)
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders).astype(int)

    fixed = pixels(["8", 0], 7.0)
    assert np.abs(fixed - pixels(["1", 0], 2.5)).max() <= 1
    assert np.abs(fixed - pixels(["1", 0], 7.0)).max() > 1
