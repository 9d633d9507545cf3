"""MODEL, CLIP and VAE values behave as ComfyUI's for packs (objects_pack): weight patches that change the UNet's
output and stay on their clone, set_model_* patches, unet wrappers, object patches, tokenize/encode, tiled decode,
comfy.sd loaders and LoRA, and a PreviewImage subclass, directly and through the executor on a tiny SD1 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from tests.comfy_compat.tiny_sd import (
    CHECKPOINT,
    LORA,
    executor_for,
    make_models,
    node,
    preview_pixels,
    sampling_inputs,
    txt2img_parts,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pm(packs_runtime: Runtime) -> PluginManager:
    return packs_runtime.plugins


@pytest.fixture
def executor(pm: PluginManager, tmp_path: Path) -> Executor:
    return executor_for(pm, tmp_path)


@pytest.fixture(scope="module")
def parts(pm: PluginManager, models: ModelFolders) -> tuple[Any, Any, Any]:
    from hearth_sd import loaders

    return loaders.checkpoint(models.find("checkpoints", CHECKPOINT))


@pytest.fixture(scope="module")
def probe(parts: tuple[Any, Any, Any]) -> dict[str, torch.Tensor]:
    """A noisy latent, a sigma and two prompts' conditioning to evaluate the UNet on."""
    _, clip, _ = parts
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    return {"x": x, "sigma": torch.tensor([3.0]), "cat": clip.encode("a red cat")[0], "dog": clip.encode("a dog")[0]}


def evaluate(model: Any, probe: dict[str, torch.Tensor], prompt: str = "cat") -> torch.Tensor:
    return model.denoise(probe["x"], probe["sigma"], probe[prompt])


def run_node(pm: PluginManager, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    cls = pm.nodes()[name].cls
    return getattr(cls(), cls.FUNCTION)(*args, **kwargs)


def test_add_patches_changes_the_unet_output_and_stays_on_the_clone(pm: PluginManager, parts, probe) -> None:
    model = parts[0]
    before = evaluate(model, probe)
    patched, count = run_node(pm, "NudgeOutputWeights", model, 0.05)
    assert count == 2  # the last conv's weight and bias
    assert sorted(patched.patches) == ["out.2.bias", "out.2.weight"] and not model.patches
    after = evaluate(patched, probe)
    assert (after - before).abs().max() > 1e-2
    # The base weights are shared: evaluating the original after the clone took its patches off again.
    assert torch.equal(evaluate(model, probe), before)
    # Patches of a clone of the clone add up; the first clone keeps only its own.
    twice, _ = run_node(pm, "NudgeOutputWeights", patched, 0.05)
    doubled, _ = run_node(pm, "NudgeOutputWeights", model, 0.1)
    assert torch.allclose(evaluate(twice, probe), evaluate(doubled, probe), atol=1e-4)
    assert torch.equal(evaluate(patched, probe), after)


def test_add_patches_value_forms_and_unknown_keys(parts, probe) -> None:
    model = parts[0]
    key = "diffusion_model.out.2.bias"
    bias = model.model_state_dict()[key]
    base = evaluate(model, probe)
    forms = {"tensor": torch.full_like(bias, 0.1), "tuple": (torch.full_like(bias, 0.1),),
             "diff": ("diff", (torch.full_like(bias, 0.1),)), "set": ("set", (bias.float() + 0.1,)),
             "bare key": torch.full_like(bias, 0.1)}
    outputs = []
    for form, value in forms.items():
        clone = model.clone()
        name = "out.2.bias" if form == "bare key" else key
        assert clone.add_patches({name: value, "diffusion_model.not.a.weight": value}) == [name], form
        outputs.append(evaluate(clone, probe))
    assert [float((out - outputs[0]).abs().max()) for out in outputs] == pytest.approx([0.0] * 5, abs=1e-3)
    assert (outputs[0] - base).abs().max() > 1e-2
    # strength_patch and strength_model: weight * 0 + 1 * delta leaves only the delta.
    zeroed = model.clone()
    zeroed.add_patches({key: torch.full_like(bias, 0.1)}, 1.0, 0.0)
    assert torch.allclose(zeroed.get_key_patches("diffusion_model.out.2.bias")[key][0].float(),
                          torch.full_like(bias, 0.1).float(), atol=1e-3)
    with pytest.raises(ValueError, match="'loha'"):
        model.clone().add_patches({key: ("loha", (bias,))})


def test_lora_tuple_patch_matches_its_delta(parts, probe) -> None:
    model = parts[0]
    key = "diffusion_model.out.2.weight"
    weight = model.model_state_dict()[key]
    up = torch.randn(weight.shape[0], 2, 1, 1, generator=torch.Generator().manual_seed(1))
    down = torch.randn(2, weight.shape[1], *weight.shape[2:], generator=torch.Generator().manual_seed(2))
    as_lora, as_diff = model.clone(), model.clone()
    as_lora.add_patches({key: ("lora", (up, down, 1.0, None))}, 0.5)
    as_diff.add_patches({key: (up.flatten(1) @ down.flatten(1)).reshape(weight.shape) * 0.5}, 0.5)
    assert torch.allclose(evaluate(as_lora, probe), evaluate(as_diff, probe), atol=1e-3)


def test_model_merge_through_get_key_patches(pm: PluginManager, parts, probe) -> None:
    model = parts[0]
    nudged, _ = run_node(pm, "NudgeOutputWeights", model, 0.1)
    (same,) = run_node(pm, "MergeModels", model, nudged, 1.0)
    (half,) = run_node(pm, "MergeModels", model, nudged, 0.5)
    halfway, _ = run_node(pm, "NudgeOutputWeights", model, 0.05)
    # Every weight is recomputed in the merge, so float16 rounding shows; the nudge itself moves outputs by ~0.15.
    base = evaluate(model, probe)
    assert torch.allclose(evaluate(same, probe), base, atol=5e-3)
    assert torch.allclose(evaluate(half, probe), evaluate(halfway, probe), atol=5e-3)
    assert (evaluate(half, probe) - base).abs().max() > 0.05


def test_attention_patch_mutes_the_prompt(pm: PluginManager, parts, probe) -> None:
    model = parts[0]
    assert (evaluate(model, probe, "cat") - evaluate(model, probe, "dog")).abs().max() > 1e-3
    (muted,) = run_node(pm, "MuteCrossAttention", model)
    assert torch.equal(evaluate(muted, probe, "cat"), evaluate(muted, probe, "dog"))
    assert "patches" not in model.model_options.get("transformer_options", {})
    # An identity patch leaves the output exactly as it was: the patched path computes the same attention.
    identity = model.clone()
    identity.set_model_attn1_patch(lambda n, context, value, extra: (n, context, value))
    identity.set_model_attn2_output_patch(lambda n, extra: n)
    assert torch.allclose(evaluate(identity, probe), evaluate(model, probe), atol=1e-5)


def test_attention_replace_receives_projected_qkv(parts, probe) -> None:
    model = parts[0]
    seen = []

    def replace(q, k, v, extra):
        seen.append((extra["block"], extra["transformer_index"], q.shape[-1] == k.shape[-1] == v.shape[-1]))
        return torch.zeros_like(q)

    clone = model.clone()
    clone.set_model_attn2_replace(replace, "middle", 0)
    out = evaluate(clone, probe)
    assert seen == [(("middle", 0), 0, True)]
    assert (out - evaluate(model, probe)).abs().max() > 1e-4


def test_unet_function_wrapper(pm: PluginManager, parts, probe) -> None:
    model = parts[0]
    (scaled,) = run_node(pm, "ScaleUnetOutput", model, 0.5)
    assert torch.allclose(evaluate(scaled, probe), evaluate(model, probe) * 0.5, atol=1e-5)
    calls = []

    def wrapper(apply_model, args):
        calls.append(sorted(args) + sorted(args["c"]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone = model.clone()
    clone.set_model_unet_function_wrapper(wrapper)
    assert torch.equal(evaluate(clone, probe), evaluate(model, probe))
    assert calls == [["c", "cond_or_uncond", "input", "timestep", "c_crossattn", "transformer_options"]]
    assert "model_function_wrapper" not in model.model_options


def test_model_sampling_object_patch_and_model_view(parts, probe) -> None:
    from hearth_sd.sampling import ModelSampling

    model = parts[0]
    assert model.model.model_sampling is model.sampling is model.get_model_object("model_sampling")
    assert model.model.diffusion_model is model.diffusion.unet
    assert model.model.latent_format.scale_factor == pytest.approx(0.18215)
    v_sampling = ModelSampling(prediction="v")
    clone = model.clone()
    clone.add_object_patch("model_sampling", v_sampling)
    assert clone.get_model_object("model_sampling") is v_sampling and model.sampling is not v_sampling
    assert (evaluate(clone, probe) - evaluate(model, probe)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="object patch 'something_else'"):
        clone.add_object_patch("something_else", 1)
    assert clone.is_clone(model) and not clone.is_clone(object())
    assert clone.current_loaded_device() in (clone.load_device, clone.offload_device)
    assert clone.model_dtype() == clone.model.get_dtype()


def test_set_model_patches_are_stored_as_comfyui_stores_them(parts) -> None:
    model = parts[0]
    clone = model.clone()

    def patch(*args):
        return args

    clone.set_model_input_block_patch(patch)
    clone.set_model_attn1_replace(patch, "input", 1)
    clone.set_model_attn2_replace(patch, "output", 3, 0)
    clone.set_model_sampler_cfg_function(patch, disable_cfg1_optimization=True)
    clone.set_model_sampler_post_cfg_function(patch)
    options = clone.model_options
    assert options["transformer_options"]["patches"]["input_block_patch"] == [patch]
    assert options["transformer_options"]["patches_replace"]["attn1"] == {("input", 1): patch}
    assert options["transformer_options"]["patches_replace"]["attn2"] == {("output", 3, 0): patch}
    assert options["sampler_cfg_function"] is patch and options["disable_cfg1_optimization"] is True
    assert options["sampler_post_cfg_function"] == [patch]
    # A clone of the clone copies the lists: adding to it leaves the first clone's alone.
    again = clone.clone()
    again.set_model_input_block_patch(patch)
    assert len(clone.model_options["transformer_options"]["patches"]["input_block_patch"]) == 1
    assert model.model_options == {"transformer_options": {}}  # ComfyUI's default, which packs index directly


def test_block_patches_reach_the_unet(pm: PluginManager, parts, probe) -> None:
    model = parts[0]
    base = evaluate(model, probe)
    (same,) = run_node(pm, "ScaleBackbone", model, 1.0)
    assert torch.equal(evaluate(same, probe), base)  # the patched run is the UNet's own steps
    assert same.seen_blocks[0] == ("output", 0) and len(same.seen_blocks) == len(model.diffusion.unet.output_blocks)
    (scaled,) = run_node(pm, "ScaleBackbone", model, 1.5)
    assert (evaluate(scaled, probe) - base).abs().max() > 1e-3
    skips = []
    clone = model.clone()
    clone.set_model_input_block_patch(lambda h, options: (skips.append(options["block"]), h * 1.0)[1])
    clone.set_model_input_block_patch_after_skip(lambda h, options: h)
    assert torch.equal(evaluate(clone, probe), base)
    assert skips == [("input", i) for i in range(len(model.diffusion.unet.input_blocks))]


def test_clip_tokenize_encode_and_clone(pm: PluginManager, parts) -> None:
    clip = parts[1]
    ((cond, options),) = run_node(pm, "EncodeTokens", clip, "a red cat")[0]
    expected, pooled = clip.encode("a red cat")
    assert torch.equal(cond, expected) and torch.equal(options["pooled_output"], pooled)
    assert cond.shape[:2] == (1, 77)
    [[scheduled, extra]] = clip.encode_from_tokens_scheduled(clip.tokenize("a red cat"), add_dict={"strength": 0.5})
    assert torch.equal(scheduled, expected) and extra["strength"] == 0.5
    twin = clip.clone()
    assert twin.patcher is not clip.patcher and twin.patcher.shares_weights(clip.patcher)


def test_clip_weight_patches_and_merge(parts) -> None:
    clip = parts[1]
    base = clip.encode("a red cat")[0]
    patches = clip.get_key_patches()
    key = "clip_l.transformer.text_model.final_layer_norm.bias"
    assert key in patches
    nudged = clip.clone()
    assert nudged.add_patches({key: torch.full_like(patches[key][0], 0.5), "clip_g.not.a.key": 1}) == [key]
    moved = nudged.encode("a red cat")[0]
    assert (moved - base).abs().max() > 0.1 and torch.equal(clip.encode("a red cat")[0], base)
    # CLIPMergeSimple's way: every weight of the other CLIP at 1 - ratio.
    merged = clip.clone()
    for name, patch in nudged.get_key_patches().items():
        merged.add_patches({name: patch}, 0.5, 0.5)
    halfway = clip.clone()
    halfway.add_patches({key: torch.full_like(patches[key][0], 0.25)})
    assert torch.allclose(merged.encode("a red cat")[0], halfway.encode("a red cat")[0], atol=1e-2)
    assert clip.load_model() is clip.patcher


def test_vae_encode_decode_and_decode_tiled(pm: PluginManager, parts) -> None:
    vae = parts[2]
    assert vae.downscale_ratio == 8  # as real SD VAEs have
    assert vae.spacial_compression_decode() == vae.spacial_compression_encode() == vae.upscale_ratio == 8
    assert vae.first_stage_model is vae.vae.model and vae.device == vae.patcher.load_device
    image = torch.rand(1, 64, 48, 3, generator=torch.Generator().manual_seed(3))
    decoded, latent = run_node(pm, "RoundTrip", vae, image)
    assert latent["samples"].shape == (1, 4, 8, 6) and decoded.shape == (1, 64, 48, 3)
    whole = vae.decode(latent["samples"])
    # One tile covering the latent is the plain decode; smaller tiles are close to it.
    assert torch.allclose(vae.decode_tiled(latent["samples"], tile_x=8, tile_y=8, overlap=2), whole, atol=1e-5)
    assert vae.decode_tiled(latent["samples"], tile_x=4, tile_y=6, overlap=2).shape == whole.shape


def test_preview_image_subclass_decodes_through_the_executor(executor: Executor) -> None:
    prompt = {**txt2img_parts(), "5": node("DecodeTiledPreview", vae=["1", 2], samples=["4", 0], tile=32)}
    result = executor.run(prompt)
    assert result.ok, result.error
    [image] = result.outputs["5"]["images"]
    assert image["type"] == "temp" and image["filename"].startswith("tiled")
    assert preview_pixels(result, "5", executor.folders).shape == (64, 64, 3)  # 8x8 latent, tiny VAE (x8)


def test_comfy_sd_loader_shares_the_loader_nodes_weights(pm: PluginManager, parts, models: ModelFolders) -> None:
    import comfy.sd

    model, clip, vae = run_node(pm, "LoadCheckpointByPath", CHECKPOINT)
    node_model, node_clip, node_vae = run_node(pm, "CheckpointLoaderSimple", CHECKPOINT)
    assert model.patcher.shares_weights(node_model.patcher) and vae.patcher.shares_weights(node_vae.patcher)
    assert clip.patcher.shares_weights(node_clip.patcher)
    assert isinstance(vae, comfy.sd.VAE) and isinstance(clip, comfy.sd.CLIP) and not isinstance(model, comfy.sd.VAE)
    path = models.find("checkpoints", CHECKPOINT)
    only = comfy.sd.load_checkpoint_guess_config(path, output_vae=False, output_clip=False)
    assert only[1] is None and only[2] is None and only[3] is None and only[0] is not None
    with pytest.raises(ValueError, match="Hearth builds CLIP values from files only"):
        comfy.sd.CLIP()


def test_vae_from_a_state_dict_decodes_as_the_checkpoints(parts, models: ModelFolders) -> None:
    import comfy.sd
    import comfy.utils

    state = comfy.utils.load_torch_file(str(models.find("checkpoints", CHECKPOINT)))
    vae = comfy.sd.VAE(sd={k: v for k, v in state.items() if k.startswith("first_stage_model.")})
    latent = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(vae.decode(latent), parts[2].decode(latent), atol=1e-3)


def test_load_lora_for_models_matches_lora_loader(pm: PluginManager, parts, probe, models: ModelFolders) -> None:
    model, clip, _ = parts
    ours = run_node(pm, "LoraFromStateDict", model, clip, LORA, 0.8)
    loader = run_node(pm, "LoraLoader", model, clip, LORA, 0.8, 0.8)
    assert sorted(ours[0].patches) == sorted(loader[0].patches) and ours[0].patches
    assert torch.equal(evaluate(ours[0], probe), evaluate(loader[0], probe))
    assert not torch.equal(evaluate(ours[0], probe), evaluate(model, probe))
    assert torch.equal(ours[1].encode("a red cat")[0], loader[1].encode("a red cat")[0])
    import comfy.sd

    with pytest.raises(ValueError, match="no tensor of a LoRA format"):
        comfy.sd.load_lora_for_models(model, clip, {"junk": torch.zeros(1)}, 1.0, 1.0)


def test_hook_lora_for_models(pm: PluginManager, parts, probe, models: ModelFolders) -> None:
    from hearth_comfy_compat.comfy_utils import load_torch_file

    model, clip, _ = parts
    lora = load_torch_file(str(models.find("loras", LORA)))
    new_model, new_clip = pm.hook.lora_for_models(model=model, clip=clip, lora=lora, strength_model=0.8,
                                                  strength_clip=0.0)
    loader = run_node(pm, "LoraLoader", model, clip, LORA, 0.8, 0.0)
    assert torch.equal(evaluate(new_model, probe), evaluate(loader[0], probe))
    assert new_clip is clip and not model.patches  # strength 0 leaves the CLIP as it came; the original is untouched
    with pytest.raises(ValueError, match="no tensor of a LoRA format"):
        pm.hook.lora_for_models(model=model, clip=clip, lora={"junk": torch.zeros(1)}, strength_model=1.0,
                                strength_clip=1.0)


def test_patched_model_samples_differently_through_the_executor(executor: Executor) -> None:
    def sampled(model_link: list) -> np.ndarray:
        prompt = {**txt2img_parts(), "8": node("NudgeOutputWeights", model=["1", 0], amount=0.2),
                  "9": node("ScaleUnetOutput", model=["1", 0], scale=1.0),
                  "5": node("KSampler", **sampling_inputs(model=model_link), denoise=1.0),
                  "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]), "7": node("PreviewImage", images=["6", 0])}
        result = executor.run(prompt)
        assert result.ok, result.error
        return preview_pixels(result, "7", executor.folders)

    plain, nudged, wrapped = sampled(["1", 0]), sampled(["8", 0]), sampled(["9", 0])
    assert not np.array_equal(plain, nudged)
    assert np.array_equal(plain, wrapped)  # a wrapper that changes nothing changes nothing
