"""Model and CLIP merging: weight patches on a clone (no weight copied) that equal the arithmetic ComfyUI defines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd import load_checkpoint
from hearth_sd.nodes_merge import (
    NODES,
    CLIPMergeAdd,
    CLIPMergeSimple,
    CLIPMergeSubtract,
    ModelMergeAdd,
    ModelMergeBlocks,
    ModelMergeSD1,
    ModelMergeSDXL,
    ModelMergeSimple,
    ModelMergeSubtract,
    block_ratio,
)
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from tests.sd.nodes_testing import in_runtime


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    # Two checkpoints of each family with different weights: what a merge mixes.
    for family in ("sd1", "sdxl"):
        make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}.safetensors")
        make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}-other.safetensors", seed=7)
    make_tiny_checkpoint("sd1", folder / "checkpoints" / "tiny-sd1-inpaint.safetensors", seed=3, in_channels=9)
    return folder


@pytest.fixture
def folders(models):
    with in_runtime(models) as f:
        yield f


def load(name: str):
    return CheckpointLoaderSimple().load_checkpoint(name)


def weights(value, prefix: str | None = None, raw: bool = False) -> dict[str, torch.Tensor]:
    """Each weight with the value's patches on: as stored with ``raw``, else in float32 for the arithmetic."""
    return {k: v[0] if raw else v[0].float() for k, v in value.get_key_patches(prefix).items()}


def close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """``got`` equals the float32 arithmetic rounded to the dtype the weights are kept in (float16 on the CPU)."""
    torch.testing.assert_close(got.float(), expected.float().to(got.dtype).float(), rtol=1e-3, atol=1e-5)


def run(model, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x, sigma = torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([2.0])
    return model.denoise(x, sigma, torch.randn(1, 77, 32, generator=gen), {})


def test_node_names_and_inputs_match_comfyui() -> None:
    assert set(NODES) == {"ModelMergeSimple", "ModelMergeBlocks", "ModelMergeSubtract", "ModelMergeAdd",
                          "CLIPMergeSimple", "CLIPMergeSubtract", "CLIPMergeAdd", "ModelMergeSD1", "ModelMergeSD2",
                          "ModelMergeSDXL"}
    assert ModelMergeSimple.INPUT_TYPES()["required"]["ratio"][1] == {"default": 1.0, "min": 0.0, "max": 1.0,
                                                                      "step": 0.01}
    assert ModelMergeSubtract.INPUT_TYPES()["required"]["multiplier"][1]["min"] == -10.0
    assert list(ModelMergeBlocks.INPUT_TYPES()["required"]) == ["model1", "model2", "input", "middle", "out"]
    sd1 = list(ModelMergeSD1.INPUT_TYPES()["required"])
    assert sd1[:5] == ["model1", "model2", "time_embed.", "label_emb.", "input_blocks.0."] and sd1[-1] == "out."
    assert len(sd1) == 2 + 2 + 12 + 3 + 12 + 1
    sdxl = list(ModelMergeSDXL.INPUT_TYPES()["required"])
    assert "input_blocks.8" in sdxl and "input_blocks.9" not in sdxl and len(sdxl) == 2 + 2 + 9 + 3 + 9 + 1
    assert ModelMergeSDXL.CATEGORY == "advanced/model_merging/model_specific"


def test_simple_merge_is_the_weighted_sum_and_copies_nothing(folders) -> None:
    model1, _, _ = load("tiny-sd1.safetensors")
    model2, _, _ = load("tiny-sd1-other.safetensors")
    before = run(model1)
    (merged,) = ModelMergeSimple().merge(model1, model2, 0.3)
    assert merged.patcher.shares_weights(model1.patcher)  # a clone with patches, not a copy
    w1, w2, got = weights(model1, "diffusion_model."), weights(model2, "diffusion_model."), weights(merged, raw=True)
    for key in ("diffusion_model.input_blocks.0.0.weight", "diffusion_model.out.2.bias",
                "diffusion_model.time_embed.0.weight"):
        close(got[key], 0.3 * w1[key] + 0.7 * w2[key])
    # An independent UNet holding the arithmetic's weights predicts what the merged MODEL predicts. Both in float32:
    # on a CPU the merged weights are kept in the compute dtype, as ComfyUI keeps them.
    reference = load_checkpoint(folders.find("checkpoints", "tiny-sd1.safetensors"))
    state = {k[len("diffusion_model."):]: 0.3 * w1[k] + 0.7 * w2[k] for k in w1}
    reference.model.unet.float().load_state_dict(state)
    gen = torch.Generator().manual_seed(0)
    x, cond = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, 32, generator=gen)
    got = run(merged)
    torch.testing.assert_close(got, reference.model(x, torch.tensor([2.0]), cond), rtol=1e-3, atol=1e-3)
    assert (got - before).abs().max() > 0.05
    torch.testing.assert_close(run(model1), before, rtol=0, atol=0)  # model1 itself is unchanged
    (same,) = ModelMergeSimple().merge(model1, model2, 1.0)
    torch.testing.assert_close(run(same), before, rtol=1e-5, atol=1e-6)


def test_subtract_and_add(folders) -> None:
    model1, _, _ = load("tiny-sd1.safetensors")
    model2, _, _ = load("tiny-sd1-other.safetensors")
    key = "diffusion_model.input_blocks.0.0.weight"
    w1, w2 = weights(model1)[key], weights(model2)[key]
    (diff,) = ModelMergeSubtract().merge(model1, model2, 0.5)
    (total,) = ModelMergeAdd().merge(model1, model2)
    close(weights(diff, raw=True)[key], 0.5 * (w1 - w2))
    close(weights(total, raw=True)[key], w1 + w2)


def test_block_ratios_take_the_longest_matching_prefix() -> None:
    sd1 = {name: float(i) for i, name in enumerate(ModelMergeSD1.block_names())}
    assert block_ratio("diffusion_model.input_blocks.1.0.in_layers.0.weight", sd1, -1) == sd1["input_blocks.1."]
    assert block_ratio("diffusion_model.input_blocks.10.0.emb_layers.1.weight", sd1, -1) == sd1["input_blocks.10."]
    assert block_ratio("diffusion_model.out.0.weight", sd1, -1) == sd1["out."]
    assert block_ratio("diffusion_model.something_else", sd1, -1) == -1
    plain = {"input": 0.1, "middle": 0.2, "out": 0.3}
    assert block_ratio("diffusion_model.middle_block.1.norm.weight", plain, 0.1) == 0.2
    assert block_ratio("diffusion_model.output_blocks.3.0.weight", plain, 0.1) == 0.3  # "out" prefixes output_*
    assert block_ratio("diffusion_model.time_embed.0.weight", plain, 0.1) == 0.1


def test_sdxl_blocks_merge_each_block_at_its_ratio(folders) -> None:
    model1, _, _ = load("tiny-sdxl.safetensors")
    model2, _, _ = load("tiny-sdxl-other.safetensors")
    ratios = {name: 1.0 for name in ModelMergeSDXL.block_names()}
    ratios.update({"time_embed.": 0.25, "input_blocks.1": 0.0, "out.": 0.5})
    (merged,) = ModelMergeSDXL().merge(model1, model2, **ratios)
    w1, w2, got = weights(model1, "diffusion_model."), weights(model2, "diffusion_model."), weights(merged, raw=True)
    for key, ratio in (("diffusion_model.time_embed.0.weight", 0.25), ("diffusion_model.out.2.weight", 0.5),
                       ("diffusion_model.input_blocks.1.0.in_layers.2.weight", 0.0),
                       ("diffusion_model.input_blocks.0.0.weight", 1.0),
                       ("diffusion_model.middle_block.0.in_layers.2.weight", 1.0)):
        close(got[key], ratio * w1[key] + (1 - ratio) * w2[key])


def test_weights_of_different_shapes_are_left_unmerged_as_comfyui_does(folders, caplog) -> None:
    # The "add difference" recipe: inpainting UNet + (custom - base); the 9-channel input conv cannot take a
    # 4-channel model's weight, so ComfyUI keeps the inpainting model's own and merges the rest.
    inpaint, _, _ = load("tiny-sd1-inpaint.safetensors")
    custom, _, _ = load("tiny-sd1-other.safetensors")
    (merged,) = ModelMergeAdd().merge(inpaint, custom)
    w_in, w_custom, got = weights(inpaint), weights(custom), weights(merged, raw=True)
    first = "diffusion_model.input_blocks.0.0.weight"
    assert got[first].shape[1] == 9 and torch.equal(got[first].float(), w_in[first])
    close(got["diffusion_model.out.2.weight"], w_in["diffusion_model.out.2.weight"]
          + w_custom["diffusion_model.out.2.weight"])
    assert "input_blocks.0.0.weight has shape (32, 4, 3, 3) in the second model and (32, 9, 3, 3)" in caplog.text


def test_models_of_different_families_are_refused(folders) -> None:
    sd1, _, _ = load("tiny-sd1.safetensors")
    sdxl, _, _ = load("tiny-sdxl.safetensors")
    with pytest.raises(ValueError, match="ModelMergeSimple: model1 is sd1 and model2 is sdxl"):
        ModelMergeSimple().merge(sd1, sdxl, 0.5)


def test_clip_merges_mix_every_encoder_weight(folders) -> None:
    _, clip1, _ = load("tiny-sdxl.safetensors")
    _, clip2, _ = load("tiny-sdxl-other.safetensors")
    before = clip1.encode("a red fox")
    (merged,) = CLIPMergeSimple().merge(clip1, clip2, 0.6)
    w1, w2, got = weights(clip1), weights(clip2), weights(merged, raw=True)
    assert any(k.startswith("clip_l.") for k in got) and any(k.startswith("clip_g.") for k in got)
    for key in w1:
        if key.endswith(".logit_scale"):
            assert torch.equal(got[key], w1[key])  # skipped, as ComfyUI skips it
        else:
            close(got[key], 0.6 * w1[key] + 0.4 * w2[key])
    assert not torch.allclose(merged.encode("a red fox")[0], before[0])
    torch.testing.assert_close(clip1.encode("a red fox")[0], before[0], rtol=0, atol=0)
    key = next(k for k in w1 if k.startswith("clip_l."))
    (diff,) = CLIPMergeSubtract().merge(clip1, clip2, 2.0)
    (total,) = CLIPMergeAdd().merge(clip1, clip2)
    close(weights(diff, raw=True)[key], 2.0 * (w1[key] - w2[key]))
    close(weights(total, raw=True)[key], w1[key] + w2[key])
    _, sd1_clip, _ = load("tiny-sd1.safetensors")
    with pytest.raises(ValueError, match="CLIPMergeSimple: clip1 is sdxl and clip2 is sd1"):
        CLIPMergeSimple().merge(clip1, sd1_clip, 0.5)
