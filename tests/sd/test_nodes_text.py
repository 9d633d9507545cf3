"""Text nodes: CONDITIONING equal to the CLIP's own encoding, SDXL's options, clip skip, wrong CLIPs refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hearth_sd import load_checkpoint
from hearth_sd.nodes_text import (
    CLIPSetLastLayer,
    CLIPTextEncode,
    CLIPTextEncodeSDXL,
    CLIPTextEncodeSDXLRefiner,
)
from hearth_sd.sdxl_conditioning import sdxl_refiner_adm

from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from tests.sd.nodes_testing import in_runtime, make_models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(autouse=True)
def folders(models):
    with in_runtime(models) as f:
        yield f


def direct(models: Path, name: str):
    return load_checkpoint(models / "checkpoints" / name, embeddings=[models / "embeddings"])


def test_clip_text_encode_is_the_clip_encoding(models):
    _, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    (conditioning,) = CLIPTextEncode().encode(clip, "a (red:1.3) fox, embedding:tiny-embedding")
    cond, pooled = direct(models, "tiny-sd1.safetensors").clip.encode("a (red:1.3) fox, embedding:tiny-embedding")
    assert len(conditioning) == 1 and set(conditioning[0][1]) == {"pooled_output"}
    torch.testing.assert_close(conditioning[0][0], cond, rtol=0, atol=0)
    torch.testing.assert_close(conditioning[0][1]["pooled_output"], pooled, rtol=0, atol=0)


def test_clip_text_encode_sdxl_gives_each_encoder_its_prompt(models):
    _, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    (conditioning,) = CLIPTextEncodeSDXL().encode(clip, 832, 1216, 8, 16, 1024, 2048, "an oil painting", "a fox")
    cond, options = conditioning[0]
    assert {k: v for k, v in options.items() if k != "pooled_output"} == {
        "width": 832, "height": 1216, "crop_w": 8, "crop_h": 16, "target_width": 1024, "target_height": 2048}
    ckpt = direct(models, "tiny-sdxl.safetensors")
    width_l = ckpt.clip.encoders["l"].token_embedding.weight.shape[1]
    # CLIP-L's half of the features comes from text_l, bigG's half and the pooled output from text_g.
    from_l, _ = ckpt.clip.encode("a fox")
    from_g, pooled_g = ckpt.clip.encode("an oil painting")
    torch.testing.assert_close(cond[..., :width_l], from_l[..., :width_l], rtol=0, atol=0)
    torch.testing.assert_close(cond[..., width_l:], from_g[..., width_l:], rtol=0, atol=0)
    torch.testing.assert_close(options["pooled_output"], pooled_g, rtol=0, atol=0)


def test_refiner_encode_and_its_adm_in_the_model(models):
    model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl-refiner.safetensors")
    (conditioning,) = CLIPTextEncodeSDXLRefiner().encode(clip, 2.5, 768, 512, "a quiet harbour")
    cond, options = conditioning[0]
    assert (options["aesthetic_score"], options["width"], options["height"]) == (2.5, 768, 512)
    ckpt = direct(models, "tiny-sdxl-refiner.safetensors")
    want_cond, pooled = ckpt.clip.encode("a quiet harbour")
    torch.testing.assert_close(cond, want_cond, rtol=0, atol=0)
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3)), torch.tensor([2.0])
    want = ckpt.model(x, sigma, want_cond, sdxl_refiner_adm(pooled, 768, 512, 0, 0, 2.5))
    torch.testing.assert_close(model.denoise(x, sigma, cond, options), want, rtol=1e-5, atol=1e-5)
    # Another score is another ADM vector, so another prediction.
    assert not torch.allclose(model.denoise(x, sigma, cond, {**options, "aesthetic_score": 6.0}), want)


def test_set_last_layer_changes_the_encoding_and_leaves_its_input_alone(models):
    _, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    (skipped,) = CLIPSetLastLayer().set_last_layer(clip, -2)
    assert clip.layer is None and skipped.layer == -2 and skipped.patcher.shares_weights(clip.patcher)
    (last,) = CLIPTextEncode().encode(clip, "a fox")
    (penultimate,) = CLIPTextEncode().encode(skipped, "a fox")
    assert not torch.allclose(last[0][0], penultimate[0][0])
    want, _ = direct(models, "tiny-sd1.safetensors").clip.set_last_layer(-2).encode("a fox")
    torch.testing.assert_close(penultimate[0][0], want, rtol=0, atol=0)


def test_wrong_or_missing_clip_is_named(models):
    _, sd1_clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    with pytest.raises(ValueError, match="CLIPTextEncodeSDXL needs a CLIP with the text encoder"):
        CLIPTextEncodeSDXL().encode(sd1_clip, 1024, 1024, 0, 0, 1024, 1024, "g", "l")
    with pytest.raises(ValueError, match="CLIPTextEncode: the clip input is empty"):
        CLIPTextEncode().encode(None, "a fox")


def test_sdxl_model_without_pooled_output_says_what_to_do(models):
    model, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    with pytest.raises(ValueError, match="needs the pooled text output"):
        model.denoise(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]), torch.zeros(1, 77, 64), {})


def test_sdxl_encoders_inputs_are_in_comfyui_order() -> None:
    sdxl = CLIPTextEncodeSDXL.INPUT_TYPES()["required"]
    assert list(sdxl) == ["clip", "width", "height", "crop_w", "crop_h", "target_width", "target_height", "text_g",
                          "text_l"]
    assert sdxl["crop_w"][1] == {"default": 0, "min": 0, "max": 16384, "advanced": True}
    refiner = CLIPTextEncodeSDXLRefiner.INPUT_TYPES()["required"]
    assert list(refiner) == ["ascore", "width", "height", "text", "clip"]
    assert CLIPTextEncodeSDXL.DISPLAY_NAME == "CLIP Text Encode (SDXL)"
    assert CLIPTextEncodeSDXLRefiner.DISPLAY_NAME == "CLIP Text Encode (SDXL Refiner)"
