"""DualCLIPLoader / TripleCLIPLoader / QuadrupleCLIPLoader: SDXL from two files, clear errors for missing families."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hearth_sd.checkpoint import CONFIG_METADATA_KEY
from hearth_sd.formats import SDXL_CLIP_G_PREFIX, SDXL_CLIP_L_PREFIX
from hearth_sd.loaders import hf_to_open_clip
from hearth_sd.nodes_clip_loaders import (
    DUAL_CLIP_TYPES,
    DualCLIPLoader,
    QuadrupleCLIPLoader,
    TripleCLIPLoader,
    UnsupportedCLIPType,
)
from hearth_sd.tiny import make_tiny_checkpoint
from hearth_sd.tiny_parts import write_tiny_embedding, write_tiny_text_encoder

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFileNotFound
from hearth.core.models import load_state_dict, read_header, write_safetensors
from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from hearth.core.node_registry import NodeRegistry
from tests.sd.nodes_testing import in_runtime


def open_clip_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reverse renaming, written independently of the loader's, for a Hugging Face layout CLIP-G file."""
    out = {}
    for key, value in sd.items():
        if key == "token_embedding.weight":
            out["text_model.embeddings.token_embedding.weight"] = value
        elif key == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = value
        elif key.startswith("ln_final."):
            out["text_model.final_layer_norm." + key.split(".")[-1]] = value
        elif key == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()
        elif key.startswith("transformer.resblocks."):
            _, _, index, *rest = key.split(".")
            layer = f"text_model.encoder.layers.{index}."
            name = ".".join(rest)
            if name.startswith("attn.in_proj_"):
                kind = name.rsplit("_", 1)[1]
                for part, chunk in zip("qkv", value.chunk(3, dim=0), strict=True):
                    out[f"{layer}self_attn.{part}_proj.{kind}"] = chunk
            else:
                for old, new in (("attn.out_proj.", "self_attn.out_proj."), ("ln_1.", "layer_norm1."),
                                 ("ln_2.", "layer_norm2."), ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")):
                    if name.startswith(old):
                        out[layer + new + name[len(old):]] = value
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    ckpt = make_tiny_checkpoint("sdxl", folder / "checkpoints" / "tiny-sdxl.safetensors")
    write_tiny_text_encoder(folder / "text_encoders" / "tiny-clip-l.safetensors")
    write_tiny_embedding(folder / "embeddings" / "tiny-embedding.safetensors")
    state, metadata = load_state_dict(ckpt), read_header(ckpt).metadata
    heads = json.loads(metadata[CONFIG_METADATA_KEY])["text_heads"]

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    out = folder / "text_encoders"
    meta_l = {CONFIG_METADATA_KEY: json.dumps({"text_heads": {"l": heads["l"]}})}
    meta_g = {CONFIG_METADATA_KEY: json.dumps({"text_heads": {"g": heads["g"]}})}
    write_safetensors(part(SDXL_CLIP_L_PREFIX), out / "sdxl-l.safetensors", meta_l)
    # The G tower as an SDXL checkpoint stores it (OpenCLIP layout) and as Hugging Face's clip_g files do.
    write_safetensors(part(SDXL_CLIP_G_PREFIX), out / "sdxl-g-openclip.safetensors", {**meta_g,
                      "hearth.sd.text_encoder": "g"})
    write_safetensors(open_clip_to_hf(part(SDXL_CLIP_G_PREFIX)), out / "sdxl-g-hf.safetensors", meta_g)
    # The same towers under the prefixes of an all-in-one SD3.5 checkpoint's text encoders.
    write_safetensors({"text_encoders.clip_l.transformer." + k: v for k, v in part(SDXL_CLIP_L_PREFIX).items()},
                      out / "sd35-l.safetensors", {**meta_l, "hearth.sd.text_encoder": "l"})
    write_safetensors({"text_encoders.clip_g.transformer." + k: v
                       for k, v in open_clip_to_hf(part(SDXL_CLIP_G_PREFIX)).items()},
                      out / "sd35-g.safetensors", {**meta_g, "hearth.sd.text_encoder": "g"})
    return folder


@pytest.fixture
def folders(models):
    with in_runtime(models) as f:
        yield f


def test_inputs_match_comfyui(folders) -> None:
    spec = DualCLIPLoader.INPUT_TYPES()
    assert list(spec["required"]) == ["clip_name1", "clip_name2", "type"]
    assert spec["required"]["type"][0][:3] == ["sdxl", "sd3", "flux"] and "hidream" in DUAL_CLIP_TYPES
    assert spec["optional"]["device"][0] == ["default", "cpu"]
    assert "sdxl-g-hf.safetensors" in spec["required"]["clip_name1"][0]
    assert list(TripleCLIPLoader.INPUT_TYPES()["required"]) == ["clip_name1", "clip_name2", "clip_name3"]
    assert len(QuadrupleCLIPLoader.INPUT_TYPES()["required"]) == 4
    assert DualCLIPLoader.CATEGORY == TripleCLIPLoader.CATEGORY == "advanced/loaders"


def test_hf_layout_round_trips_to_open_clip(models) -> None:
    state = load_state_dict(models / "text_encoders" / "sdxl-g-openclip.safetensors")
    state.pop("logit_scale", None)  # not a text-encoding weight; neither layout needs it
    back = hf_to_open_clip(open_clip_to_hf(state))
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize("g_file", ["sdxl-g-hf.safetensors", "sdxl-g-openclip.safetensors"])
@pytest.mark.parametrize("g_first", [False, True])
def test_sdxl_pair_encodes_as_the_checkpoint_clip(folders, g_file: str, g_first: bool) -> None:
    _, want_clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    names = [g_file, "sdxl-l.safetensors"] if g_first else ["sdxl-l.safetensors", g_file]
    (clip,) = DualCLIPLoader().load_clip(*names, type="sdxl")
    assert clip.family == "sdxl" and sorted(clip.patchers) == ["g", "l"]
    cond, pooled = clip.encode("a red fox in the snow, embedding:tiny-embedding")
    want_cond, want_pooled = want_clip.encode("a red fox in the snow, embedding:tiny-embedding")
    torch.testing.assert_close(cond, want_cond, rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled, want_pooled, rtol=0, atol=1e-6)


def test_prefixed_towers_load_too(folders) -> None:
    _, want_clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    (clip,) = DualCLIPLoader().load_clip("sd35-l.safetensors", "sd35-g.safetensors", type="sdxl")
    torch.testing.assert_close(clip.encode("a kite")[1], want_clip.encode("a kite")[1], rtol=0, atol=1e-6)


def test_two_files_of_one_kind_are_refused(folders) -> None:
    with pytest.raises(ValueError, match="needs one CLIP-L and one CLIP-G file; sdxl-l.safetensors is CLIP-L"):
        DualCLIPLoader().load_clip("sdxl-l.safetensors", "tiny-clip-l.safetensors", type="sdxl")


@pytest.mark.parametrize("kind", ["sd3", "hidream", "hunyuan_video"])  # flux: the DiT plugin loads it
def test_families_hearth_lacks_fail_naming_the_type(folders, kind: str) -> None:
    with pytest.raises(UnsupportedCLIPType, match=f"type '{kind}' is not supported by Hearth yet"):
        DualCLIPLoader().load_clip("sdxl-l.safetensors", "sdxl-g-hf.safetensors", type=kind)
    with pytest.raises(UnsupportedCLIPType, match="TripleCLIPLoader: SD3's three text encoders"):
        TripleCLIPLoader().load_clip("sdxl-l.safetensors", "sdxl-g-hf.safetensors", "tiny-clip-l.safetensors")
    with pytest.raises(UnsupportedCLIPType, match="QuadrupleCLIPLoader: HiDream"):
        QuadrupleCLIPLoader().load_clip(*["sdxl-l.safetensors"] * 4)


def test_a_missing_file_is_named_before_the_type(folders, models) -> None:
    with pytest.raises(ModelFileNotFound, match="nope.safetensors"):
        DualCLIPLoader().load_clip("sdxl-l.safetensors", "nope.safetensors", type="flux")


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("CONDITIONING",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def test_a_dual_clip_workflow_runs_through_the_executor(folders) -> None:
    from hearth_sd.nodes_text import NODES as TEXT_NODES

    registry = NodeRegistry.from_classes({"DualCLIPLoader": DualCLIPLoader, "Capture": Capture, **TEXT_NODES})
    prompt = {
        "1": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "sdxl-g-hf.safetensors",
                                                           "clip_name2": "sdxl-l.safetensors", "type": "sdxl"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 0], "text": "a lighthouse"}},
        "3": {"class_type": "Capture", "inputs": {"value": ["2", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    ((cond, options),) = result.outputs["3"]["value"][0]
    assert cond.shape == (1, 77, 64) and options["pooled_output"].shape == (1, 32)
    bad = dict(prompt, **{"1": {"class_type": "DualCLIPLoader", "inputs": {
        "clip_name1": "sdxl-g-hf.safetensors", "clip_name2": "sdxl-l.safetensors", "type": "sd3"}}})
    failed = Executor(registry).run(bad)
    assert not failed.ok and "type 'sd3' is not supported by Hearth yet" in str(failed.error)
