"""Loader nodes: combos list the model folders, errors name them, outputs equal a direct load, loads are shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hearth_sd import load_checkpoint, load_vae
from hearth_sd.sdxl_conditioning import sdxl_adm

from hearth.core.model_folders import ModelFileNotFound
from hearth.core.models import load_cache
from hearth.core.models.loader_nodes import CheckpointLoaderSimple, CLIPLoader, VAELoader
from tests.sd.nodes_testing import in_runtime, make_models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def folders(models):
    with in_runtime(models) as f:
        yield f


def test_combos_list_the_folders(folders, models, tmp_path):
    ckpts = CheckpointLoaderSimple.INPUT_TYPES()["required"]["ckpt_name"][0]
    # Other kinds (inpainting, unCLIP) add their tiny checkpoints to the same folder.
    assert {"tiny-sd1.safetensors", "tiny-sd2.safetensors", "tiny-sdxl-refiner.safetensors",
            "tiny-sdxl.safetensors"} <= set(ckpts)
    assert ckpts == sorted(ckpts)
    # Other plugins' tiny models (the Wan VAE and text encoder) share these folders under make-tiny all.
    assert "tiny-vae.safetensors" in VAELoader.INPUT_TYPES()["required"]["vae_name"][0]
    assert "tiny-clip-l.safetensors" in CLIPLoader.INPUT_TYPES()["required"]["clip_name"][0]
    # A file added later shows up (the list is read each time), in a subfolder with a '/' name.
    extra = tmp_path / "more"
    (extra / "sub").mkdir(parents=True)
    (extra / "sub" / "other.safetensors").write_bytes((models / "checkpoints" / "tiny-sd1.safetensors").read_bytes())
    folders.add("checkpoints", extra)
    assert "sub/other.safetensors" in CheckpointLoaderSimple.INPUT_TYPES()["required"]["ckpt_name"][0]
    model, _, _ = CheckpointLoaderSimple().load_checkpoint("sub/other.safetensors")
    assert model.family == "sd1"


def test_missing_file_names_the_folders_searched(folders, models):
    with pytest.raises(ModelFileNotFound) as info:
        CheckpointLoaderSimple().load_checkpoint("tiny-sd3.safetensors")
    assert str(models / "checkpoints") in str(info.value) and "tiny-sd1.safetensors" in str(info.value)
    with pytest.raises(ModelFileNotFound, match=str(models / "text_encoders")):
        CLIPLoader().load_clip("nope.safetensors", "stable_diffusion")


def test_checkpoint_outputs_equal_a_direct_load(folders, models):
    model, clip, vae = CheckpointLoaderSimple().load_checkpoint("tiny-sdxl.safetensors")
    ckpt = load_checkpoint(models / "checkpoints" / "tiny-sdxl.safetensors", embeddings=[models / "embeddings"])
    cond, pooled = clip.encode("a red fox, embedding:tiny-embedding")
    want_cond, want_pooled = ckpt.clip.encode("a red fox, embedding:tiny-embedding")
    torch.testing.assert_close(cond, want_cond, rtol=0, atol=0)
    torch.testing.assert_close(pooled, want_pooled, rtol=0, atol=0)
    x, sigma = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([3.0, 0.5])
    options = {"pooled_output": pooled, "width": 512, "height": 768, "crop_w": 16, "crop_h": 0}
    got = model.denoise(x, sigma, cond.repeat(2, 1, 1), options)
    want = ckpt.model(x, sigma, want_cond.repeat(2, 1, 1), sdxl_adm(pooled.repeat(2, 1), 512, 768, 16, 0))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    latent = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(vae.decode(latent), ckpt.vae.decode(latent), rtol=0, atol=0)
    assert model.latent_channels == vae.latent_channels == 4 and vae.downscale_ratio == 8  # tiny VAE: 4 levels, as real ones
    torch.testing.assert_close(model.process_latent_out(model.process_latent_in(latent)), latent)
    assert model.sampling.prediction == "eps" and len(model.sampling.sigmas) == 1000


def test_vae_and_clip_loaders_equal_direct_loads(folders, models):
    (vae,) = VAELoader().load_vae("tiny-vae.safetensors")
    latent = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(vae.decode(latent), load_vae(models / "vae" / "tiny-vae.safetensors").decode(latent))
    (clip,) = CLIPLoader().load_clip("tiny-clip-l.safetensors", "stable_diffusion")
    assert clip.family == "sd1" and list(clip.patchers) == ["l"]
    cond, pooled = clip.encode("a lighthouse")
    assert cond.shape == (1, 77, 32) and pooled.shape == (1, 32)
    # The embedding is a real word to it: the prompt with it differs from the one without.
    assert not torch.equal(clip.encode("a embedding:tiny-embedding")[0], clip.encode("a")[0])


def test_a_file_is_loaded_once_while_its_outputs_live(folders, models):
    before = load_cache().reads["checkpoint"]
    first = CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    second = CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    assert load_cache().reads["checkpoint"] == before + 1
    assert first[0].patcher is second[0].patcher and first[0].source is second[0].source
    # A changed file (new mtime) is read again.
    path = models / "checkpoints" / "tiny-sd2.safetensors"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    third = CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    assert load_cache().reads["checkpoint"] == before + 2 and third[0].source is not first[0].source
    # When no output holds it any more, the next load reads the file again.
    del first, second, third
    CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    assert load_cache().reads["checkpoint"] == before + 3


def test_weights_are_not_reloaded_when_a_downstream_input_changes(folders, run_prompt):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    before = load_cache().reads["checkpoint"]
    assert run_prompt(prompt).ok
    prompt["2"]["inputs"]["color"] = 0xFF8000
    result = run_prompt(prompt)
    assert result.ok and "1" in result.cached and "3" in result.executed
    assert load_cache().reads["checkpoint"] == before + 1


def test_model_and_clip_clones_share_weights_and_keep_their_own_patches(folders):
    model, clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
    cond, _ = clip.encode("a fox")
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)), torch.tensor([1.5])
    base = model.denoise(x, sigma, cond)
    lora = model.clone()
    assert lora.patcher.shares_weights(model.patcher) and lora.model_options is not model.model_options
    keys = ["out.2.weight", "out.2.bias"]  # the UNet's last convolution: doubling it doubles the predicted noise
    assert lora.patcher.add_patches(dict.fromkeys(keys, lambda weight, strength: weight * (1 + strength)), 1.0) == keys
    torch.testing.assert_close(lora.denoise(x, sigma, cond), x - (x - base) * 2, rtol=1e-5, atol=1e-5)
    # The original takes its own (unpatched) weights back: the manager re-patches when the other clone runs.
    torch.testing.assert_close(model.denoise(x, sigma, cond), base, rtol=0, atol=0)
    clip_lora = clip.clone()
    clip_lora.patchers["l"].add_patches({"text_model.final_layer_norm.bias": torch.ones(32)}, 1.0)
    assert not torch.allclose(clip_lora.encode("a fox")[0], cond)
    torch.testing.assert_close(clip.encode("a fox")[0], cond, rtol=0, atol=0)


def test_clip_loader_takes_an_sd2_text_encoder_with_its_checkpoint_prefix(folders, models, tmp_path):
    from hearth_sd.tiny import tiny_state_dict

    from hearth.core.models import write_safetensors

    tensors, metadata = tiny_state_dict("sd2")
    encoder = {k: v for k, v in tensors.items() if k.startswith("cond_stage_model.model.")}
    folders.add("text_encoders", tmp_path)
    write_safetensors(encoder, tmp_path / "open-clip-h.safetensors", metadata)
    (clip,) = CLIPLoader().load_clip("open-clip-h.safetensors", "stable_diffusion")
    assert clip.family == "sd2" and list(clip.patchers) == ["h"]
    _, want_clip, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd2.safetensors")
    torch.testing.assert_close(clip.encode("a fox")[0], want_clip.encode("a fox")[0], rtol=0, atol=0)
    (tmp_path / "unet-only.safetensors").write_bytes((models / "vae" / "tiny-vae.safetensors").read_bytes())
    with pytest.raises(ValueError, match="unet-only.safetensors: not a CLIP-L or OpenCLIP ViT-H text encoder"):
        CLIPLoader().load_clip("unet-only.safetensors", "stable_diffusion")
