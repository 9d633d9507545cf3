"""ComfyUI's model internals as packs from the wild use them (packs_model/wild_model_pack), loaded by the real loader
and run through the executor on a tiny SD1 model: comfy.model_patcher (isinstance of Hearth's MODEL, a pack's
subclass, clone, ComfyUI weight patches), comfy.patcher_extension (wrappers and callbacks that really run),
comfy.model_base (a pack-built BaseModel sampled by Hearth's KSampler; the SD view answers isinstance),
comfy.model_sampling (ComfyUI's schedule equals Hearth's; an object patch of ComfyUI's classes changes sampling),
comfy.latent_formats, comfy.supported_models(_base) and comfy.ops (bfloat16 weights cast per call)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import node, sampling_inputs, txt2img_parts

PACKS = Path(__file__).parent / "packs_model"
# The ComfyUI names the tests that exercise Hearth's limits make the pack use (recorded for comfy plugins).
RECORDED_BY_FAILURE_TESTS = ("comfy.hooks.set_hooks_for_conditioning",
                             "comfy.model_patcher.ModelPatcher.clone on a MODEL Hearth loaded")


def recorded(name: str) -> bool:
    from hearth_comfy_compat import hook

    return name in hook.missing_names().get("wild_model_pack", [])


@pytest.fixture
def pack(pm: PluginManager) -> Iterator[ModuleType]:
    """The loaded pack module, its records cleared before the test."""
    module = sys.modules[pm.nodes()["PackTinyModel"].cls.__module__]
    for name, value in module.RECORDS.items():
        module.RECORDS[name] = type(value)()
    yield module


def kept(executor: Executor, prompt: dict[str, Any], pack: ModuleType, name: str) -> torch.Tensor:
    result = executor.run(prompt)
    assert result.ok, result
    return pack.RECORDS["latents"][name]


def test_the_pack_loads_with_no_missing_internals(pm: PluginManager) -> None:
    from hearth_comfy_compat import hook

    nodes = pm.nodes()
    for name in ("PackTinyModel", "PackNudgeBias", "PackVPrediction", "PackModelFacts", "PackKeepLatent",
                 "PackModelAfter", "PackCheckpointFacts", "PackRegionalConditioning", "PackConditioningFacts",
                 "PackRewrapModel", "PackPatcherSurface", "PackSwapClone", "PackFp8Rounding",
                 "PackTinyInpaintModel"):
        assert name in nodes
    # Nothing is missing at import; what the failure tests below record is all that may ever be listed.
    assert set(hook.missing_names().get("wild_model_pack", [])) <= set(RECORDED_BY_FAILURE_TESTS)


def test_hearths_sd_model_answers_as_comfyuis_model_patcher_and_base_model(executor: Executor) -> None:
    result = executor.run({"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                           "2": node("PackModelFacts", model=["1", 0])})
    assert result.ok, result.error
    [facts] = result.outputs["2"]["facts"]
    assert facts["is_patcher"] and facts["is_base_model"]
    assert not facts["is_pack_patcher"] and not facts["is_sdxl"]  # a pack's subclass and another family: no
    # The brushnet/inpaint test of Easy-Use: the model's config is SD15's, not SDXL's.
    assert facts["config_is_sd15"] and not facts["config_is_sdxl"]
    assert facts["other_families"] == [False] * 4
    assert facts["scale_factor"] == facts["sd15_scale_factor"] == 0.18215
    # ComfyUI's discrete schedule, computed by comfy.model_sampling, is the SD model's own.
    assert facts["sigma_difference"] < 1e-4
    assert facts["half_way"][0] == pytest.approx(facts["half_way"][1], rel=1e-4)
    # LCM's distilled schedule: 50 of the 1000 steps, reported on the 1000-step scale, ending where SD's does.
    steps, first_timestep, lcm_max, sd_max = facts["lcm_schedule"]
    assert (steps, first_timestep) == (50, 19) and lcm_max == pytest.approx(sd_max, rel=1e-5)
    # Stable Cascade's cosine schedule: timestep() inverts sigma(); sigma is capped near 100 (alpha >= 1e-4).
    assert facts["cascade"][0] == pytest.approx(0.5, abs=1e-4) and facts["cascade"][1] == pytest.approx(99.995, rel=1e-4)
    # comfy.conds: a 77-token and a 154-token prompt batch together, the short one repeated.
    assert facts["crossattn_batch"] == ["CONDCrossAttn", [2, 154, 8]]
    assert facts["sdxl_context_dim"] == 2048 and facts["sdxl_is_sdxl"]
    assert facts["sdxl_adm_shape"] == [1, 2816]  # pooled 1280 + six 256-wide size embeddings


def test_a_pack_built_model_is_sampled_by_hearths_ksampler_with_its_wrappers(executor: Executor,
                                                                            pack: ModuleType) -> None:
    import comfy.samplers

    steps = 3
    prompt = {**txt2img_parts(), "5": node("PackTinyModel"),
              "6": node("KSampler", **sampling_inputs(("5", 0), steps=steps, cfg=1.0, denoise=1.0)),
              "7": node("PackKeepLatent", samples=["6", 0], name="three")}
    three = kept(executor, prompt, pack, "three")
    records = pack.RECORDS
    [patcher] = records["pre_run"]  # ON_PRE_RUN once, when sampling prepared the model
    assert type(patcher) is pack.PackPatcher
    # The APPLY_MODEL wrapper saw every evaluation (cfg 1: the positive only), at ComfyUI's discrete timesteps.
    timesteps = [r["timestep"] for r in records["apply_model"]]
    assert len(timesteps) == steps and timesteps[0] == 999 and timesteps == sorted(timesteps, reverse=True)
    assert all(r["cond_or_uncond"] == [0] for r in records["apply_model"])
    # comfy.ops.manual_cast: the network keeps bfloat16 weights and computes on the float32 input.
    assert records["diffusion_model"][0] == {"input_dtype": "torch.float32", "weight_dtype": "torch.bfloat16"}
    # The pack's injection was on for every evaluation, and off again after.
    assert records["injected"] == [True] * steps
    assert not patcher.is_injected and not hasattr(patcher.model.diffusion_model, "motion")

    # eps = 0.5 * x / sqrt(sigma^2 + 1), so each Euler step multiplies the latent by a number known from the
    # sigmas: the result is the start noise times a factor, and two step counts differ by their factors' ratio.
    prompt["6"]["inputs"]["steps"] = 1
    prompt["7"]["inputs"]["name"] = "one"
    one = kept(executor, prompt, pack, "one")

    def factor(n: int) -> float:
        from comfy.model_sampling import ModelSamplingDiscrete

        sigmas = comfy.samplers.calculate_sigmas(ModelSamplingDiscrete(), "normal", n).tolist()
        scale = math.sqrt(1 + sigmas[0] ** 2)
        for now, following in zip(sigmas, sigmas[1:], strict=False):
            scale *= 1 + 0.5 * (following - now) / math.sqrt(now ** 2 + 1)
        return scale

    assert torch.allclose(three, one * (factor(3) / factor(1)), rtol=1e-3, atol=1e-4)


def test_a_clone_with_a_weight_patch_changes_only_itself(executor: Executor, pack: ModuleType) -> None:
    # Sampled in this order (each step waits for the previous latent): plain, the patched clone, plain again.
    prompt = {**txt2img_parts(), "5": node("PackTinyModel"),
              "6": node("KSampler", **sampling_inputs(("5", 0), steps=2, cfg=1.0, denoise=1.0)),
              "7": node("PackKeepLatent", samples=["6", 0], name="plain"),
              "8": node("PackNudgeBias", model=["13", 0], amount=0.2),
              "9": node("KSampler", **sampling_inputs(("8", 0), steps=2, cfg=1.0, denoise=1.0)),
              "10": node("PackKeepLatent", samples=["9", 0], name="nudged"),
              "11": node("KSampler", **sampling_inputs(("14", 0), steps=2, cfg=1.0, denoise=1.0)),
              "12": node("PackKeepLatent", samples=["11", 0], name="plain_again"),
              "13": node("PackModelAfter", model=["5", 0], after=["6", 0]),
              "14": node("PackModelAfter", model=["5", 0], after=["9", 0])}
    result = executor.run(prompt)
    assert result.ok, result.error
    latents = pack.RECORDS["latents"]
    assert pack.RECORDS["clones"] == 1  # the patcher's ON_CLONE callback, on the pack's clone()
    assert (latents["nudged"] - latents["plain"]).abs().max() > 1e-2
    # The patch stayed on its clone: the same model sampled again gives the first result.
    assert torch.equal(latents["plain"], latents["plain_again"])


def test_an_object_patch_of_comfyuis_sampling_classes_changes_hearths_sd_sampling(executor: Executor,
                                                                                pack: ModuleType) -> None:
    from hearth_comfy_compat.comfyui.comfy.model_sampling import V_PREDICTION  # what the pack's class reads

    prompt = {**txt2img_parts(), "5": node("PackVPrediction", model=["1", 0]),
              "6": node("KSampler", **sampling_inputs(("5", 0), denoise=1.0)),
              "7": node("PackKeepLatent", samples=["6", 0], name="v"),
              "8": node("KSampler", **sampling_inputs(denoise=1.0)),
              "9": node("PackKeepLatent", samples=["8", 0], name="eps")}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert V_PREDICTION.prediction == "v"
    # Two steps with cfg 4: positive and negative each step, every evaluation through the pack's class.
    assert pack.RECORDS["denoised"] >= 2
    latents = pack.RECORDS["latents"]
    assert (latents["v"] - latents["eps"]).abs().max() > 1e-2


def test_model_detection_reads_the_checkpoint_as_comfyui_does(executor: Executor, packs_runtime: Runtime) -> None:
    from safetensors import safe_open

    result = executor.run({"1": node("PackCheckpointFacts", ckpt_name="tiny-sd1.safetensors")})
    assert result.ok, result.error
    [facts] = result.outputs["1"]["facts"]
    assert facts["prefix"] == "model.diffusion_model."
    with safe_open(str(packs_runtime.model_folders.find("checkpoints", "tiny-sd1.safetensors")), "pt") as f:
        blocks = {int(k.split(".")[3]) for k in f.keys() if k.startswith("model.diffusion_model.input_blocks.")}
    assert facts["input_blocks"] == len(blocks) > 0


def test_hooks_conditioning_helpers_set_what_hearths_samplers_read(executor: Executor, pack: ModuleType) -> None:
    prompt = {**txt2img_parts(),
              "5": node("PackRegionalConditioning", positive=["2", 0], extra=["3", 0], with_hook=False),
              "6": node("PackConditioningFacts", conditioning=["5", 0]),
              "7": node("KSampler", **sampling_inputs(positive=["5", 0], steps=6, denoise=1.0)),
              "8": node("PackKeepLatent", samples=["7", 0], name="regional"),
              "9": node("KSampler", **sampling_inputs(steps=6, denoise=1.0)),
              "10": node("PackKeepLatent", samples=["9", 0], name="plain")}
    result = executor.run(prompt)
    assert result.ok and "6" in result.outputs and "8" in result.outputs, result
    first, added = result.outputs["6"]["entries"]
    assert "mask" not in first  # the original entry is left as it was
    assert added == {"mask": [1, 8, 8], "set_area_to_bounds": True, "mask_strength": 0.5,
                     "start_percent": 0.25, "end_percent": 0.75}
    latents = pack.RECORDS["latents"]
    assert (latents["regional"] - latents["plain"]).abs().max() > 1e-3  # the sampler used the added entry


def test_a_hook_group_on_conditioning_fails_naming_what_hearth_does_not_apply(executor: Executor) -> None:
    prompt = {**txt2img_parts(),
              "5": node("PackRegionalConditioning", positive=["2", 0], extra=["3", 0], with_hook=True),
              "6": node("PackConditioningFacts", conditioning=["5", 0])}
    result = executor.run(prompt)
    assert not result.ok
    assert "Hearth does not provide comfy.hooks.set_hooks_for_conditioning" in str(result.error)
    assert recorded("comfy.hooks.set_hooks_for_conditioning")  # comfy plugins lists it for the pack


def test_a_new_patcher_around_hearths_model_view_is_a_clone_of_the_model(executor: Executor,
                                                                         pack: ModuleType) -> None:
    # efficiency's tiled sampler re-wraps the network: ModelPatcher(model.model, ...). Hearth's model.model is a view
    # naming its MODEL (current_patcher), so the new patcher is a clone of it: same facts, same sampling.
    prompt = {**txt2img_parts(), "5": node("PackRewrapModel", model=["1", 0]),
              "6": node("PackModelFacts", model=["5", 0]),
              "7": node("KSampler", **sampling_inputs(("5", 0), steps=2, denoise=1.0)),
              "8": node("PackKeepLatent", samples=["7", 0], name="rewrapped"),
              "9": node("KSampler", **sampling_inputs(steps=2, denoise=1.0)),
              "10": node("PackKeepLatent", samples=["9", 0], name="original")}
    result = executor.run(prompt)
    assert result.ok and "6" in result.outputs, result
    [facts] = result.outputs["6"]["facts"]
    assert facts["is_patcher"] and facts["config_is_sd15"]
    latents = pack.RECORDS["latents"]
    assert torch.equal(latents["rewrapped"], latents["original"])


def test_a_new_patcher_around_a_view_that_names_no_model_fails_saying_what_to_do(packs_runtime: Runtime) -> None:
    import comfy.model_patcher
    from hearth_comfy_compat.hook import HearthDoesNotProvide

    class View:  # a family's model.model that does not say which MODEL it views
        model_sampling = latent_format = diffusion_model = None

        def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
            return latent

    with pytest.raises(HearthDoesNotProvide, match=r"ModelPatcher\(model.model\).*use the MODEL itself"):
        comfy.model_patcher.ModelPatcher(View(), torch.device("cpu"), torch.device("cpu"))


def test_a_pack_built_patcher_has_comfyuis_surface(executor: Executor) -> None:
    import comfy.model_management

    result = executor.run({"1": node("PackTinyModel"), "2": node("PackPatcherSurface", model=["1", 0])})
    assert result.ok, result.error
    [facts] = result.outputs["2"]["facts"]
    # get_key_patches: ComfyUI's [(weight, convert), *patches] per key.
    assert facts["key_patches"] == {"diffusion_model.proj.weight": 1, "diffusion_model.proj.bias": 2}
    # patch_model puts the clone's patches on the shared network (0 + 0.5 * 1), unpatch_model takes them off.
    assert facts["patched"] == [0.5] * 4 and facts["loaded"] and facts["restored"] == [0.0] * 4
    assert facts["model_dtype"] == "torch.bfloat16"
    assert facts["compute_dtype"] == "torch.float16" and facts["original_compute_dtype"] == "torch.float32"
    assert facts["memory_required"]
    assert facts["devices"] == [str(comfy.model_management.get_torch_device()),
                                str(comfy.model_management.unet_offload_device())]


def test_a_clone_by_class_swap_on_hearths_model_fails_naming_it(executor: Executor) -> None:
    result = executor.run({"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                           "2": node("PackSwapClone", model=["1", 0]),
                           "3": node("PackModelFacts", model=["2", 0])})
    assert not result.ok
    message = str(result.error)
    assert "comfy.model_patcher.ModelPatcher.clone on a MODEL Hearth loaded" in message
    assert "made it a SwappingPatcher by assigning __class__" in message
    assert recorded("comfy.model_patcher.ModelPatcher.clone on a MODEL Hearth loaded")
    # The MODEL itself is untouched (the pack put its class back): it still works for the next node.
    again = executor.run({"1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
                          "3": node("PackModelFacts", model=["1", 0])})
    assert again.ok, again.error


def test_comfy_float_rounds_to_fp8_without_bias_and_repeatably(executor: Executor) -> None:
    result = executor.run({"1": node("PackFp8Rounding", value=0.3)})
    assert result.ok, result.error
    [rounding] = result.outputs["1"]["rounding"]
    # 0.3 lies between the e4m3 values 0.28125 and 0.3125: each is drawn, and the mean stays 0.3.
    assert rounding["values"] == [0.28125, 0.3125]
    assert rounding["mean"] == pytest.approx(0.3, abs=1e-3)
    assert rounding["repeatable"]  # the same seed draws the same way


def test_a_pack_built_inpainting_model_gets_its_extra_channels(executor: Executor, pack: ModuleType) -> None:
    prompt = {**txt2img_parts(), "5": node("PackTinyInpaintModel"),
              "6": node("KSampler", **sampling_inputs(("5", 0), steps=2, cfg=1.0, denoise=1.0)),
              "7": node("PackKeepLatent", samples=["6", 0], name="inpaint")}
    result = executor.run(prompt)
    assert result.ok, result.error
    assert pack.RECORDS["inpaint_channels"] == [5, 5]  # the latent's 4 and the model's own mask channel
