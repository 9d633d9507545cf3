"""The generated name map agrees with the reference layouts: diffusers' UNet and Hugging Face's CLIP text model."""

from __future__ import annotations

import pytest
import torch
from hearth_lora.names import TE, TE2, UNET, key_map, resolve
from hearth_sd.families import FAMILIES
from hearth_sd.unet import UNetConfig

from .lora_testing import tiny_parts

diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency (requirements/dev.txt)")
transformers = pytest.importorskip("transformers", reason="transformers is a test dependency")


def _diffusers_unet(c: UNetConfig):
    extra = {}
    if c.adm_in_channels:
        extra = dict(addition_embed_type="text_time", addition_time_embed_dim=256,
                     projection_class_embeddings_input_dim=c.adm_in_channels)
    return diffusers.UNet2DConditionModel(
        sample_size=16, in_channels=c.in_channels, out_channels=c.out_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in c.transformer_depth),
        up_block_types=tuple("CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(c.transformer_depth)),
        block_out_channels=tuple(c.model_channels * m for m in c.channel_mult), layers_per_block=c.num_res_blocks,
        transformer_layers_per_block=tuple(d or c.transformer_depth_middle for d in c.transformer_depth),
        cross_attention_dim=c.context_dim,
        attention_head_dim=tuple(c.heads_for(c.model_channels * m)[0] for m in c.channel_mult),
        use_linear_projection=c.use_linear_in_transformer, **extra)


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_every_diffusers_unet_weight_names_our_weight_of_the_same_size(family):
    ours = _shapes(tiny_parts(family)["unet"])
    with torch.device("meta"):
        reference = _diffusers_unet(FAMILIES[family].unet_tiny)
    names = key_map({UNET: ours})
    reference_weights = {k[:-7]: v.shape for k, v in reference.state_dict().items()
                         if k.endswith(".weight") and v.dim() >= 2}
    assert reference_weights
    for path, shape in reference_weights.items():
        for spelling in (f"unet.{path}", "lora_unet_" + path.replace(".", "_")):
            target = resolve(spelling, names)
            assert target is not None, f"{spelling} names no weight"
            assert torch.Size(ours[target.key]).numel() == shape.numel(), (spelling, target.key)
    # And the other way: every UNet matrix and kernel of ours has a diffusers name (LDM spellings aside).
    diffusers_targets = {names[f"unet.{path}"].key for path in reference_weights}
    assert diffusers_targets == {k for k, s in ours.items() if k.endswith(".weight") and len(s) >= 2}


def test_every_hugging_face_text_layer_names_an_open_clip_weight():
    config = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4)
    reference = transformers.CLIPTextModel(config)
    open_clip = _shapes(tiny_parts("sdxl")["g"])
    names = key_map({TE2: open_clip})
    # transformers 5 dropped the "text_model." level that checkpoints and LoRA files (written by 4.x) still have.
    layers = {k[:-7].removeprefix("text_model."): v.shape for k, v in reference.state_dict().items()
              if ".layers." in k and k.endswith(("proj.weight", "fc1.weight", "fc2.weight"))}
    assert len(layers) == 2 * 6
    for path, shape in layers.items():
        target = resolve("lora_te2_text_model_" + path.replace(".", "_"), names)
        assert target is not None and target.key in open_clip, path
        rows = target.rows or (0, open_clip[target.key][0])
        assert rows[1] - rows[0] == shape[0], path


def test_a_model_of_another_layout_matches_nothing():
    sd1_names = key_map({UNET: _shapes(tiny_parts("sd1")["unet"]), TE: _shapes(tiny_parts("sd1")["l"])})
    assert resolve("lora_unet_input_blocks_7_1_proj_in", sd1_names) is None  # SDXL-only block
    assert resolve("lora_te2_text_model_encoder_layers_0_mlp_fc1", sd1_names) is None
