"""Hearth's own SD MODEL and CLIP as ComfyUI packs from the wild use them (packs_sd_surface/sd_surface_pack), loaded
by the real loader and run through the executor on tiny SD1 and SDXL checkpoints: efficiency's tiled sampler re-wraps
``model.model`` in a new ModelPatcher; packs read ``model.model.model_type`` / ``model_config`` / ``state_dict``;
efficiency's and Easy-Use's advanced encoders tokenize with word ids and encode ComfyUI's windows through
``clip.encode_from_tokens`` and ``clip.cond_stage_model``; APPLY_MODEL and DIFFUSION_MODEL wrappers run when Hearth's
KSampler samples the MODEL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from tests.comfy_compat.tiny_sd import make_models, node, sampling_inputs, txt2img_parts

PACKS = Path(__file__).parent / "packs_sd_surface"
SDXL = "tiny-sdxl.safetensors"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    from hearth_sd.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    folders = make_models(root)
    make_tiny_checkpoint("sdxl", root / "checkpoints" / SDXL)
    return folders


@pytest.fixture
def pack(pm: PluginManager) -> Iterator[ModuleType]:
    """The loaded pack module, its records cleared before the test."""
    module = sys.modules[pm.nodes()["SurfaceModelFacts"].cls.__module__]
    for name, value in module.RECORDS.items():
        module.RECORDS[name] = type(value)()
    yield module


def run(executor: Executor, prompt: dict[str, Any]) -> None:
    result = executor.run(prompt)
    assert result.ok, (result.error or {}).get("exception_message", result.error)


def test_the_pack_loads_with_no_missing_internals(pm: PluginManager) -> None:
    from hearth_comfy_compat import hook

    assert {"SurfaceModelFacts", "SurfaceTiledRewrap", "SurfaceAdvancedEncode", "SurfaceWrapModel"} <= set(pm.nodes())
    assert not hook.missing_names().get("sd_surface_pack")


def test_model_view_answers_model_type_config_and_state_dict(executor: Executor, pack: ModuleType) -> None:
    run(executor, {"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                   "2": node("SurfaceModelFacts", model=["1", 0])})
    facts = pack.RECORDS["facts"]
    # ComfyUI's ModelType compares and hashes as the view's model_type (AnimateDiff keys a table by it).
    assert facts["is_eps"] and facts["kind"] == "eps" and facts["type_name"] == "EPS"
    assert facts["latent_scale"] == 0.18215
    assert facts["loader_options"] == [None, None, False, None, None, {}]
    assert facts["model_channels"] > 0
    assert facts["state_keys"] == ["diffusion_model"] and facts["state_count"] > 10
    assert facts["current_patcher_is_model"]


def test_a_tiled_samplers_rewrap_samples_like_the_original(executor: Executor, pack: ModuleType) -> None:
    prompt = {**txt2img_parts(),
              "5": node("KSampler", **sampling_inputs(denoise=1.0)),
              "6": node("SurfaceKeepLatent", samples=["5", 0], name="original"),
              "7": node("SurfaceTiledRewrap", model=["1", 0]),
              "8": node("KSampler", **sampling_inputs(("7", 0), denoise=1.0)),
              "9": node("SurfaceKeepLatent", samples=["8", 0], name="rewrapped")}
    run(executor, prompt)
    assert pack.RECORDS["facts"]["rewrap"] == [True, True]  # a new patcher (a clone), ComfyUI's class
    latents = pack.RECORDS["latents"]
    assert torch.equal(latents["original"], latents["rewrapped"])


@pytest.mark.parametrize("ckpt", ["tiny-sd1.safetensors", SDXL])
def test_an_advanced_encoder_on_comfyuis_windows_equals_clip_text_encode(executor: Executor, pack: ModuleType,
                                                                        ckpt: str) -> None:
    text = "a (red cat:1.3) on a mat"
    run(executor, {"1": node("CheckpointLoaderSimple", ckpt_name=ckpt),
                   "2": node("SurfaceAdvancedEncode", clip=["1", 1], text=text, mask_word=0),
                   "3": node("SurfaceKeepCond", conditioning=["2", 0], name="pack"),
                   "4": node("CLIPTextEncode", clip=["1", 1], text=text),
                   "5": node("SurfaceKeepCond", conditioning=["4", 0], name="hearth")})
    tokens = pack.RECORDS["tokens"]
    assert tokens["names"] == (["g", "l"] if ckpt == SDXL else ["l"]) and tokens["lengths"] == [77]
    assert tokens["via_tokenizer"] and tokens["ends"] == [0]
    assert tokens["sdxl_branch"] == (ckpt == SDXL)  # isinstance(clip.cond_stage_model, SDXLClipModel...)
    # One id per word of the prompt, 1-based, each with its own weight ("red" and "cat" weigh 1.3).
    weights = dict(tokens["word_weights"])
    assert sorted(weights) == [1, 2, 3, 4, 5, 6]
    assert [round(weights[i], 3) for i in range(1, 7)] == [1.0, 1.3, 1.3, 1.0, 1.0, 1.0]
    (cond, pooled), (reference, reference_pooled) = pack.RECORDS["conds"]["pack"], pack.RECORDS["conds"]["hearth"]
    assert cond.shape == reference.shape and torch.allclose(cond, reference, atol=1e-6)
    assert torch.allclose(pooled, reference_pooled, atol=1e-6)
    if ckpt != SDXL:  # cond_stage_model.clip_l alone encodes SD1's windows as the CLIP does
        assert torch.allclose(pack.RECORDS["conds"]["stage"], reference, atol=1e-6)


def test_a_word_masked_by_its_id_changes_that_word_only(executor: Executor, pack: ModuleType) -> None:
    text = "a red cat sitting"
    run(executor, {"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                   "2": node("SurfaceAdvancedEncode", clip=["1", 1], text=text, mask_word=3),
                   "3": node("SurfaceKeepCond", conditioning=["2", 0], name="masked"),
                   "4": node("SurfaceAdvancedEncode", clip=["1", 1], text=text, mask_word=0),
                   "5": node("SurfaceKeepCond", conditioning=["4", 0], name="plain")})
    masked, plain = pack.RECORDS["conds"]["masked"][0], pack.RECORDS["conds"]["plain"][0]
    # "cat" (word 3, position 3) became the mask token; CLIP's causal attention leaves the positions before alone.
    assert torch.allclose(masked[:, :3], plain[:, :3], atol=1e-6)
    assert not torch.allclose(masked[:, 3], plain[:, 3], atol=1e-4)


def test_clip_options_layer_encodes_as_clip_set_last_layer(executor: Executor, pack: ModuleType) -> None:
    text = "a red cat"
    run(executor, {"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                   "2": node("CLIPSetLastLayer", clip=["1", 1], stop_at_clip_layer=-2),
                   "3": node("SurfaceAdvancedEncode", clip=["2", 0], text=text, mask_word=0),
                   "4": node("SurfaceKeepCond", conditioning=["3", 0], name="pack"),
                   "5": node("CLIPTextEncode", clip=["2", 0], text=text),
                   "6": node("SurfaceKeepCond", conditioning=["5", 0], name="hearth"),
                   "7": node("CLIPTextEncode", clip=["1", 1], text=text),
                   "8": node("SurfaceKeepCond", conditioning=["7", 0], name="last")})
    conds = pack.RECORDS["conds"]
    # clip.layer_idx (-2) went into set_clip_options: the stage's own encode reads the penultimate layer too.
    assert torch.allclose(conds["stage"], conds["hearth"][0], atol=1e-6)
    assert torch.allclose(conds["pack"][0], conds["hearth"][0], atol=1e-6)
    assert not torch.allclose(conds["hearth"][0], conds["last"][0])


def test_apply_model_and_diffusion_model_wrappers_run_on_hearths_sd_model(executor: Executor,
                                                                          pack: ModuleType) -> None:
    steps = 2
    prompt = {**txt2img_parts(),
              "5": node("KSampler", **sampling_inputs(steps=steps, denoise=1.0)),
              "6": node("SurfaceKeepLatent", samples=["5", 0], name="plain"),
              "7": node("SurfaceWrapModel", model=["1", 0], scale=1.0),
              "8": node("KSampler", **sampling_inputs(("7", 0), steps=steps, denoise=1.0)),
              "9": node("SurfaceKeepLatent", samples=["8", 0], name="wrapped"),
              "10": node("SurfaceWrapModel", model=["1", 0], scale=0.0),
              "11": node("KSampler", **sampling_inputs(("10", 0), steps=steps, denoise=1.0)),
              "12": node("SurfaceKeepLatent", samples=["11", 0], name="zeroed")}
    run(executor, prompt)
    records = pack.RECORDS
    # Two wrapped MODELs, each evaluated once per step (positive and negative batched together).
    assert len(records["apply_model"]) == 2 * steps and len(records["diffusion_model"]) == 2 * steps
    first = records["apply_model"][0]
    assert first["base_model"] and first["cond_or_uncond"] == [0, 1] and first["context"][0] == 2
    assert first["sigma"] > records["apply_model"][1]["sigma"]  # the noisy latent's sigma, descending
    assert all(r["module"] and r["sigmas"] for r in records["diffusion_model"])
    assert records["diffusion_model"][0]["timestep"] > 900  # the UNet's timestep, not sigma
    latents = records["latents"]
    # A wrapper that hands on the network's output changes nothing; one that scales it changes the result.
    assert torch.allclose(latents["wrapped"], latents["plain"], atol=1e-6)
    # (The wrappers were hung on clones: the loaded MODEL itself sampled unwrapped, or there would be more calls.)
    assert not torch.allclose(latents["zeroed"], latents["plain"], atol=1e-3)


def test_a_batched_encode_crops_with_the_vae_as_vae_encode_does(executor: Executor, pack: ModuleType) -> None:
    run(executor, {"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                   "2": node("EmptyImage", width=75, height=69, batch_size=2, color=0x336699),
                   "3": node("SurfaceBatchedEncode", vae=["1", 2], pixels=["2", 0], per_batch=1),
                   "4": node("SurfaceKeepLatent", samples=["3", 0], name="batched"),
                   "5": node("VAEEncode", vae=["1", 2], pixels=["2", 0]),
                   "6": node("SurfaceKeepLatent", samples=["5", 0], name="whole")})
    # ComfyUI's centre crop to multiples of the VAE's factor, per slice of one image.
    (f, (_, h, w, _)) = pack.RECORDS["facts"]["vae"]
    assert h % f or w % f  # the image needs cropping
    assert pack.RECORDS["facts"]["cropped"] == [[1, h // f * f, w // f * f, 3]] * 2
    latents = pack.RECORDS["latents"]
    assert latents["batched"].shape == (2, 4, h // f, w // f)
    # The same crop of the same pixels (one image per encode vs both at once: the VAE's reduced precision differs
    # in the last bits between batch sizes).
    assert torch.allclose(latents["batched"], latents["whole"], atol=2e-2)
