"""CheckpointSave / ModelSave / CLIPSave / VAESave: ComfyUI's file layouts, and a saved merge loads back identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hearth_sd.nodes_merge import CLIPMergeSimple, ModelMergeSD1, ModelMergeSimple
from hearth_sd.nodes_save import NODES, CheckpointSave, CLIPSave, ModelSave, VAESave
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.models import read_header
from hearth.core.models.loader_nodes import CheckpointLoaderSimple, UNETLoader, VAELoader
from hearth.core.runtime import Runtime


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for family in ("sd1", "sdxl"):
        make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}.safetensors")
        make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}-other.safetensors", seed=7)
    make_tiny_checkpoint("sd2", folder / "checkpoints" / "tiny-sd2.safetensors")  # SD2: v prediction
    make_tiny_checkpoint("sd2_unclip", folder / "checkpoints" / "tiny-sd2-unclip.safetensors")
    return folder


@pytest.fixture(scope="module")
def built(models, tmp_path_factory) -> Runtime:
    # One Runtime for the module: its node registry (every plugin's nodes) is built once.
    return Runtime.build(models_dir=models, output=tmp_path_factory.mktemp("output"), environ={})


@pytest.fixture
def runtime(built):
    with built.activate() as runtime:
        yield runtime


@pytest.fixture
def out(runtime) -> Path:
    return runtime.folders.output


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def run(model, seed: int = 0, context: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=gen)
    cond = torch.randn(1, 77, context, generator=gen)
    options = {} if model.family == "sd1" else {"pooled_output": torch.randn(1, 32, generator=gen)}
    return model.denoise(x, torch.tensor([2.0]), cond, options)


def test_inputs_match_comfyui() -> None:
    assert set(NODES) == {"CheckpointSave", "ModelSave", "CLIPSave", "VAESave"}
    defaults = {name: cls.INPUT_TYPES()["required"]["filename_prefix"][1]["default"] for name, cls in NODES.items()}
    assert defaults == {"CheckpointSave": "checkpoints/ComfyUI", "ModelSave": "diffusion_models/ComfyUI",
                        "CLIPSave": "clip/ComfyUI", "VAESave": "vae/ComfyUI_vae"}
    assert all(cls.OUTPUT_NODE and cls.RETURN_TYPES == () for cls in NODES.values())
    assert list(CheckpointSave.INPUT_TYPES()["required"]) == ["model", "clip", "vae", "filename_prefix"]
    assert CheckpointSave.DISPLAY_NAME == "Save Checkpoint" and ModelSave.CATEGORY == "advanced/model_merging"


def test_a_merged_checkpoint_saves_and_loads_back_identical(runtime, out) -> None:
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
        "2": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1-other.safetensors"),
        "3": node("ModelMergeSimple", model1=["1", 0], model2=["2", 0], ratio=0.4),
        "4": node("CLIPMergeSimple", clip1=["1", 1], clip2=["2", 1], ratio=0.4),
        "5": node("CheckpointSave", model=["3", 0], clip=["4", 0], vae=["2", 2], filename_prefix="checkpoints/merged"),
    }
    result = runtime.executor.run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    saved = out / "checkpoints" / "merged_00001_.safetensors"
    header = read_header(saved)
    prefixes = {key.split(".")[0] + "." + key.split(".")[1] for key in header.shapes}
    assert prefixes == {"model.diffusion_model", "cond_stage_model.transformer", "first_stage_model.decoder",
                        "first_stage_model.encoder", "first_stage_model.quant_conv",
                        "first_stage_model.post_quant_conv"}
    assert header.metadata["modelspec.predict_key"] == "epsilon" and "prompt" in header.metadata

    # The same merge in memory, and the file loaded back: the same predictions, encodings and decodes.
    model1, clip1, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    model2, clip2, vae2 = CheckpointLoaderSimple().load_checkpoint("tiny-sd1-other.safetensors")
    (merged,) = ModelMergeSimple().merge(model1, model2, 0.4)
    (merged_clip,) = CLIPMergeSimple().merge(clip1, clip2, 0.4)
    runtime.model_folders.add("checkpoints", saved.parent)
    loaded, loaded_clip, loaded_vae = CheckpointLoaderSimple().load_checkpoint(saved.name)
    torch.testing.assert_close(run(loaded), run(merged), rtol=0, atol=0)
    torch.testing.assert_close(loaded_clip.encode("a red fox")[0], merged_clip.encode("a red fox")[0], rtol=0, atol=0)
    latent = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded_vae.decode(latent), vae2.decode(latent), rtol=0, atol=0)
    # Saved again: the counter continues.
    CheckpointSave().save(merged, merged_clip, vae2, "checkpoints/merged")
    assert (saved.parent / "merged_00002_.safetensors").exists()


def test_an_sdxl_checkpoint_uses_the_conditioner_prefixes_and_modelspec(runtime, out) -> None:
    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    CheckpointSave().save(model, clip, vae, "xl/ComfyUI", prompt={"1": {}})
    header = read_header(out / "xl" / "ComfyUI_00001_.safetensors")
    keys = set(header.shapes)
    assert any(k.startswith("conditioner.embedders.0.transformer.text_model.") for k in keys)
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert header.metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base"
    assert header.metadata["modelspec.sai_model_spec"] == "1.0.0" and header.metadata["prompt"] == '{"1": {}}'
    runtime.model_folders.add("checkpoints", out / "xl")
    loaded, loaded_clip, _ = CheckpointLoaderSimple().load_checkpoint("ComfyUI_00001_.safetensors")
    torch.testing.assert_close(run(loaded, context=64), run(model, context=64), rtol=0, atol=0)
    torch.testing.assert_close(loaded_clip.encode("an owl")[1], clip.encode("an owl")[1], rtol=0, atol=0)


def test_a_v_prediction_model_says_so_as_comfyui_does(runtime, out) -> None:
    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    CheckpointSave().save(model, clip, vae, "v/sd2")
    header = read_header(out / "v" / "sd2_00001_.safetensors")
    assert header.metadata["modelspec.predict_key"] == "v" and header.shapes["v_pred"] == (0,)
    assert any(k.startswith("cond_stage_model.model.transformer.resblocks.") for k in header.shapes)
    runtime.model_folders.add("checkpoints", out / "v")
    loaded, _, _ = CheckpointLoaderSimple().load_checkpoint("sd2_00001_.safetensors")
    assert loaded.sampling.prediction == "v"
    torch.testing.assert_close(run(loaded, context=32), run(model, context=32), rtol=0, atol=0)


def test_model_clip_and_vae_saves_load_with_their_own_loaders(runtime, out) -> None:
    from hearth_sd.nodes_clip_loaders import DualCLIPLoader

    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    ModelSave().save(model, "diffusion_models/unet")
    CLIPSave().save(clip, "text_encoders/xl")
    VAESave().save(vae, "vae/ComfyUI_vae")
    assert sorted(p.name for p in (out / "text_encoders").iterdir()) == ["xl_clip_g_00001_.safetensors",
                                                                        "xl_clip_l_00001_.safetensors"]
    g_keys = set(read_header(out / "text_encoders" / "xl_clip_g_00001_.safetensors").shapes)
    assert "text_model.encoder.layers.0.self_attn.q_proj.weight" in g_keys  # Hugging Face's layout, as ComfyUI
    for kind in ("diffusion_models", "text_encoders", "vae"):
        runtime.model_folders.add(kind, out / kind)
    (unet,) = UNETLoader().load_unet("unet_00001_.safetensors")
    torch.testing.assert_close(run(unet, context=64), run(model, context=64), rtol=0, atol=0)
    (dual,) = DualCLIPLoader().load_clip("xl_clip_g_00001_.safetensors", "xl_clip_l_00001_.safetensors", "sdxl")
    torch.testing.assert_close(dual.encode("a boat")[0], clip.encode("a boat")[0], rtol=0, atol=0)
    (loaded_vae,) = VAELoader().load_vae("ComfyUI_vae_00001_.safetensors")
    latent = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loaded_vae.decode(latent), vae.decode(latent), rtol=0, atol=0)


def test_a_per_block_merge_runs_through_the_executor_with_comfyui_input_names(runtime, out) -> None:
    ratios = {name: 1.0 for name in ModelMergeSD1.block_names()} | {"input_blocks.1.": 0.0, "out.": 0.5}
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
        "2": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1-other.safetensors"),
        "3": node("ModelMergeSD1", model1=["1", 0], model2=["2", 0], **ratios),
        "4": node("ModelSave", model=["3", 0], filename_prefix="blocks/sd1"),
    }
    result = runtime.executor.run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    model1, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    model2, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1-other.safetensors")
    (merged,) = ModelMergeSD1().merge(model1, model2, **ratios)
    runtime.model_folders.add("diffusion_models", out / "blocks")
    (unet,) = UNETLoader().load_unet("sd1_00001_.safetensors")
    torch.testing.assert_close(run(unet), run(merged), rtol=0, atol=0)
    assert not torch.equal(run(merged), run(model1))


def test_wrong_inputs_are_named(runtime) -> None:
    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    _, xl_clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    with pytest.raises(ValueError, match="CheckpointSave: the model is sd1 and the clip sdxl"):
        CheckpointSave().save(model, xl_clip, vae, "checkpoints/bad")
    with pytest.raises(ValueError, match="CheckpointSave: vae is not an SD VAE"):
        CheckpointSave().save(model, clip, object(), "checkpoints/bad")
    with pytest.raises(ValueError, match="outside the output folder"):
        VAESave().save(vae, "../../escape")
    unclip, unclip_clip, unclip_vae = CheckpointLoaderSimple().load_checkpoint("tiny-sd2-unclip.safetensors")[:3]
    with pytest.raises(ValueError, match="CheckpointSave: sd2_unclip checkpoints are not saved"):
        CheckpointSave().save(unclip, unclip_clip, unclip_vae, "checkpoints/unclip")


def test_an_unclip_models_parts_save(runtime, out) -> None:
    model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd2-unclip.safetensors")[:3]
    CLIPSave().save(clip, "text_encoders/unclip")
    ModelSave().save(model, "diffusion_models/unclip")
    assert (out / "text_encoders" / "unclip_clip_h_00001_.safetensors").exists()
    assert (out / "diffusion_models" / "unclip_00001_.safetensors").exists()

