"""CLIP vision: transformers' CLIPVisionModelWithProjection gives the same outputs, ComfyUI's preprocessing, the
known encoders told apart by shape, the OpenCLIP layout, hostile files, and CLIPVisionLoader/Encode in a workflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hearth_sd.clip_vision import (
    CONFIG_METADATA_KEY,
    UnsupportedVisionModelError,
    config_from_shapes,
    preprocess,
    to_open_clip,
)
from hearth_sd.nodes_clip_vision import CLIPVisionEncode, CLIPVisionLoader
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from hearth.core.model_folders import write_tiny_models
from hearth.core.models import CheckpointError, write_safetensors
from hearth.core.plugins import PluginManager
from tests.sd.nodes_testing import image, in_runtime

HEADS = 4


def _reference(act: str) -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=HEADS,
                              image_size=32, patch_size=8, projection_dim=16, hidden_act=act)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPVisionModelWithProjection(config).eval()
        with torch.no_grad():  # weights far from the initialisation, so every layer shows in the outputs
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
    return model


def _write(model: CLIPVisionModelWithProjection, path: Path, act: str, open_clip: bool = False) -> Path:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    if open_clip:
        state = to_open_clip(state, "visual.")
    told = {"config": {"heads": HEADS, "activation": act}}
    return write_safetensors(state, path, {CONFIG_METADATA_KEY: json.dumps(told)})


def _tiny(folder: Path) -> Path:
    """Only the tiny models these tests load (``make-tiny all`` writes every plugin's: slower)."""
    offered = PluginManager().load(environ={}).resolve_named("register_tiny_models", "tiny model")
    write_tiny_models(folder, {name: offered[name] for name in ("clip-l", "clip-vision-tiny")})
    return folder


def _write_state(state: dict[str, torch.Tensor], path: Path) -> None:
    told = {"config": {"heads": HEADS, "activation": "gelu"}}
    write_safetensors({k: v.contiguous() for k, v in state.items() if "position_ids" not in k}, path,
                      {CONFIG_METADATA_KEY: json.dumps(told)})


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = _tiny(tmp_path_factory.mktemp("models"))
    clip_vision = folder / "clip_vision"
    for act in ("quick_gelu", "gelu"):
        _write(_reference(act), clip_vision / f"ref-{act}.safetensors", act)
    _write(_reference("gelu"), clip_vision / "ref-open-clip.safetensors", "gelu", open_clip=True)
    text = folder / "text_encoders" / "tiny-clip-l.safetensors"
    (clip_vision / "a-text-encoder.safetensors").write_bytes(text.read_bytes())
    bad = _reference("gelu").state_dict()
    bad["vision_model.embeddings.position_embedding.weight"] = torch.zeros(7, 32)  # not a square grid + 1
    write_safetensors({k: v.contiguous() for k, v in bad.items()}, clip_vision / "bad-grid.safetensors")
    uneven = _reference("gelu").state_dict()
    uneven["vision_model.encoder.layers.1.mlp.fc1.weight"] = torch.zeros(10, 32)  # layer 0 says 64
    _write_state(uneven, clip_vision / "uneven-layers.safetensors")
    return folder


@pytest.fixture
def folders(models) -> Iterator[None]:
    with in_runtime(models):
        yield


@pytest.mark.parametrize("act", ["quick_gelu", "gelu"])
def test_outputs_equal_transformers(folders, act):
    ref = _reference(act)
    (vision,) = CLIPVisionLoader().load_clip(f"ref-{act}.safetensors")
    pixels = image(2, 40, 56, seed=3)
    (out,) = CLIPVisionEncode().encode(vision, pixels, "center")
    with torch.no_grad():
        want = ref(pixel_values=preprocess(pixels, 32), output_hidden_states=True)
    torch.testing.assert_close(out.image_embeds, want.image_embeds, rtol=0, atol=1e-4)
    torch.testing.assert_close(out["last_hidden_state"], want.last_hidden_state, rtol=0, atol=1e-4)
    torch.testing.assert_close(out.penultimate_hidden_states, want.hidden_states[-2], rtol=0, atol=1e-4)
    assert out.image_embeds.shape == (2, 16) and out.last_hidden_state.shape == (2, 17, 32)
    assert out.mm_projected is None and out["image_sizes"] == [torch.Size([3, 32, 32])] * 2
    assert vision.image_size == 32 and vision.image_mean == [0.48145466, 0.4578275, 0.40821073]
    assert set(vision.get_sd()) == {k for k in ref.state_dict() if "position_ids" not in k}


def test_open_clip_layout_gives_the_same_encoder(folders):
    (hf,) = CLIPVisionLoader().load_clip("ref-gelu.safetensors")
    (oc,) = CLIPVisionLoader().load_clip("ref-open-clip.safetensors")
    pixels = image(1, 32, 32)
    torch.testing.assert_close(oc.encode_image(pixels).image_embeds, hf.encode_image(pixels).image_embeds,
                               rtol=0, atol=1e-6)


def test_preprocess_is_comfyui_s():
    # Already the encoder's size: no resampling, only the 8-bit rounding and CLIP's normalisation.
    square = image(1, 32, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    want = ((square.movedim(-1, 1) * 255).round() / 255 - mean) / std
    torch.testing.assert_close(preprocess(square, 32), want)
    # 48 x 80 with crop: the short side to 32 (80 * 32 / 48 = 53.33 -> 53), then the middle 32 columns (offset 10).
    wide = image(1, 48, 80, seed=1)
    resized = F.interpolate(wide.movedim(-1, 1), size=(32, 53), mode="bicubic", antialias=True)[:, :, :, 10:42]
    torch.testing.assert_close(preprocess(wide, 32), ((resized.clip(0, 1) * 255).round() / 255 - mean) / std)
    # Without crop the whole image is squashed to the square.
    squashed = F.interpolate(wide.movedim(-1, 1), size=(32, 32), mode="bicubic", antialias=True)
    torch.testing.assert_close(preprocess(wide, 32, crop=False), ((squashed.clip(0, 1) * 255).round() / 255 - mean)
                               / std)
    # An alpha channel is dropped.
    torch.testing.assert_close(preprocess(torch.cat([wide, torch.ones(1, 48, 80, 1)], -1), 32), preprocess(wide, 32))


def _shapes(width: int, layers: int, positions: int, fc: int, proj: int) -> dict[str, tuple[int, ...]]:
    shapes = {"vision_model.embeddings.patch_embedding.weight": (width, 3, 14, 14),
              "vision_model.embeddings.position_embedding.weight": (positions, width),
              "vision_model.encoder.layers.0.mlp.fc1.weight": (fc, width), "visual_projection.weight": (proj, width)}
    shapes.update({f"vision_model.encoder.layers.{i}.layer_norm1.weight": (width,) for i in range(layers)})
    return shapes


def test_the_known_encoders_are_told_apart_by_shape():
    name, config = config_from_shapes(_shapes(1280, 32, 257, 5120, 1024))
    assert name == "ViT-H/14" and config.activation == "gelu" and config.heads == 16 and config.image_size == 224
    name, config = config_from_shapes(_shapes(1024, 24, 577, 4096, 768))
    assert name == "ViT-L/14-336" and config.activation == "quick_gelu" and config.image_size == 336
    name, config = config_from_shapes(_shapes(1664, 48, 257, 8192, 1280))
    assert name == "ViT-bigG/14" and config.projection_dim == 1280
    with pytest.raises(UnsupportedVisionModelError, match="SigLIP"):
        config_from_shapes(_shapes(1152, 27, 730, 4304, 1152), source="siglip.safetensors")


def test_hostile_files_are_refused_by_name(folders):
    with pytest.raises(ValueError, match=r"CLIPVisionLoader: clip_name 'a-text-encoder.safetensors'.*looks like a "
                                         r"text encoder \(load that with CLIPLoader\)"):
        CLIPVisionLoader().load_clip("a-text-encoder.safetensors")
    with pytest.raises(ValueError, match="bad-grid.safetensors.*square grid"):
        CLIPVisionLoader().load_clip("bad-grid.safetensors")
    with pytest.raises(CheckpointError, match=r"uneven-layers.safetensors.*layers.1.mlp.fc1.weight"):
        CLIPVisionLoader().load_clip("uneven-layers.safetensors")
    (vision,) = CLIPVisionLoader().load_clip("tiny-clip-vision.safetensors")
    with pytest.raises(ValueError, match=r"CLIPVisionEncode: .*IMAGE \[B, H, W, 3\], got \[8, 8\]"):
        CLIPVisionEncode().encode(vision, torch.zeros(8, 8), "center")
    with pytest.raises(ValueError, match="CLIPVisionEncode: clip_vision is not"):
        CLIPVisionEncode().encode("not a model", image(), "center")


def test_the_crop_input_is_comfyui_s():
    spec = CLIPVisionEncode.INPUT_TYPES()["required"]
    assert list(spec) == ["clip_vision", "image", "crop"] and spec["crop"] == (["center", "none"],)
    assert CLIPVisionEncode.RETURN_TYPES == ("CLIP_VISION_OUTPUT",) and CLIPVisionLoader.RETURN_TYPES == ("CLIP_VISION",)
