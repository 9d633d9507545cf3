"""Z-Image end to end on tiny models: make-tiny z-image, the loader nodes, ModelSamplingAuraFlow and KSampler
against a hand-written flow-matching Euler loop on diffusers' transformer, and the memory estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hearth_dit import zimage_loaders
from safetensors.torch import load_file

from hearth.cli.main import cli
from hearth.core.models import ModelManager
from hearth.core.runtime import Runtime, current_runtime

from .test_zimage_model import reference_model


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zimage") / "models"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "z-image", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def folders(models: Path):
    with Runtime.build(models_dir=models, environ={}).activate():
        yield models


def node(name: str):
    return current_runtime().nodes[name].cls()


def test_make_tiny_z_image_writes_dit_encoder_tokenizer_and_ae(models: Path) -> None:
    names = {p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()}
    assert {"unet/tiny-zimage.safetensors", "text_encoders/tiny-qwen3.safetensors",
            "text_encoders/tiny-qwen3.tokenizer.json"} <= names
    assert any(name.startswith("vae/") for name in names)  # the shared 16-channel ae
    keys = load_file(str(models / "unet" / "tiny-zimage.safetensors")).keys()
    assert {"x_embedder.weight", "cap_pad_token", "layers.1.attention.qkv.weight", "final_layer.linear.bias",
            "noise_refiner.0.adaLN_modulation.0.weight", "context_refiner.0.feed_forward.w3.weight"} <= set(keys)
    listing = json.loads(CliRunner().invoke(cli, ["models", "make-tiny", "--json"]).stdout)
    assert listing["z-image"]["parts"] == ["zimage-dit", "zimage-qwen3", "flux-vae"]


def test_loader_nodes_load_z_image_files(folders: Path) -> None:
    clip_inputs = node("CLIPLoader").INPUT_TYPES()["required"]
    assert "lumina2" in clip_inputs["type"][0] and "tiny-qwen3.safetensors" in clip_inputs["clip_name"][0]
    (model,) = node("UNETLoader").load_unet("tiny-zimage.safetensors")
    assert isinstance(model, zimage_loaders.ZImageDiffusionModel) and model.latent_channels == 16
    (clip,) = node("CLIPLoader").load_clip("tiny-qwen3.safetensors", "lumina2")
    assert isinstance(clip, zimage_loaders.ZImageClip)
    ((cond, options),) = node("CLIPTextEncode").encode(clip, "a red fox")[0]
    assert cond.shape[0] == 1 and cond.shape[2] == 32 and options["pooled_output"] is None


def test_aura_flow_sampling_patches_a_clone_and_its_default_is_shift_3(folders: Path) -> None:
    (model,) = node("UNETLoader").load_unet("tiny-zimage.safetensors")
    assert model.sampling.shift == 3.0 and model.sampling.multiplier == 1.0  # ComfyUI's Z-Image defaults
    (patched,) = node("ModelSamplingAuraFlow").patch_aura(model, 6.0)
    assert patched.sampling.shift == 6.0 and model.sampling.shift == 3.0
    assert patched.model.model_sampling is patched.sampling


def test_ksampler_equals_a_hand_written_flow_euler_loop_on_diffusers(folders: Path) -> None:
    """UNETLoader, CLIPLoader lumina2, CLIPTextEncode, ModelSamplingAuraFlow (shift 3), EmptySD3LatentImage and
    KSampler (euler, simple, 3 steps, cfg 2) against diffusers' Z-Image transformer stepped by hand: sigmas
    3t / (1 + 2t) at ComfyUI's simple-schedule t, time 1 - sigma, velocity = -output, Flux's latent format."""
    (model,) = node("UNETLoader").load_unet("tiny-zimage.safetensors")
    (model,) = node("ModelSamplingAuraFlow").patch_aura(model, 3.0)
    (clip,) = node("CLIPLoader").load_clip("tiny-qwen3.safetensors", "lumina2")
    (positive,) = node("CLIPTextEncode").encode(clip, "a red fox in the snow")
    (negative,) = node("CLIPTextEncode").encode(clip, "blurry")
    (latent,) = node("EmptySD3LatentImage").generate(48, 32, 1)
    assert latent["samples"].shape == (1, 16, 4, 6)
    seed, cfg = 11, 2.0
    (ours,) = node("KSampler").sample(model, seed, 3, cfg, "euler", "simple", positive, negative, latent, 1.0)

    reference = reference_model(load_file(str(folders / "unet" / "tiny-zimage.safetensors")))
    ts = torch.tensor([1000, 667, 334]) / 1000  # ComfyUI's "simple": every 1000/3-th entry of the table
    sigmas = torch.cat([3 * ts / (1 + 2 * ts), torch.zeros(1)])
    x = torch.randn(1, 16, 4, 6, generator=torch.Generator().manual_seed(seed))  # pure noise at sigma 1
    caps = [positive[0][0][0], negative[0][0][0]]
    with torch.no_grad():
        for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
            out_pos, out_neg = (reference([x[0].unsqueeze(1)], (1 - s).reshape(1), [cap], return_dict=False)[0][0]
                                .squeeze(1) for cap in caps)
            v = -(out_neg + cfg * (out_pos - out_neg))
            x = x + (s_next - s) * v
    expected = x / 0.3611 + 0.1159  # back to the VAE's raw latents
    assert expected.std() > 0.5
    assert (ours["samples"] - expected).abs().max() <= 1e-4


def test_denoise_names_wrong_latents_and_wrong_text(folders: Path) -> None:
    model = zimage_loaders.load_diffusion_model(folders / "unet" / "tiny-zimage.safetensors", device="cpu")
    with pytest.raises(ValueError, match="16-channel image latents.*EmptySD3LatentImage"):
        model.denoise(torch.zeros(1, 4, 8, 8), torch.ones(1), torch.zeros(1, 5, 32))
    with pytest.raises(ValueError, match="32-wide caption features.*lumina2"):
        model.denoise(torch.zeros(1, 16, 8, 8), torch.ones(1), torch.zeros(1, 77, 768))


def test_memory_estimate_hook_answers_for_z_image_and_grows_with_the_image(folders: Path) -> None:
    plugins = current_runtime().plugins
    model = zimage_loaders.load_diffusion_model(folders / "unet" / "tiny-zimage.safetensors", device="cpu")
    manager = ModelManager("cpu", plugins=plugins)
    small = manager.memory_estimate(model.patcher, (1, 16, 8, 8), torch.float32)
    large = manager.memory_estimate(model.patcher, (1, 16, 64, 64), torch.float32)
    assert 0 < small < large
    assert plugins.hook.memory_estimate_for_model(model=model.patcher, input_shape=(1, 4, 8, 8, 8), dtype=None) is None


def test_a_tight_budget_streams_the_dit_with_the_same_result(folders: Path) -> None:
    """Less memory than the DiT weighs: the model manager loads it partly and streams the rest, same output."""
    from hearth.core.models import default_manager

    model = zimage_loaders.load_diffusion_model(folders / "unet" / "tiny-zimage.safetensors", device="cpu")
    gen = torch.Generator().manual_seed(3)
    x, cap, sigma = torch.randn(2, 16, 8, 8, generator=gen), torch.randn(1, 9, 32, generator=gen), torch.full((2,), 0.6)
    want = model.denoise(x, sigma, cap)
    working = default_manager().memory_estimate(model.patcher, tuple(x.shape), torch.float32)
    tight = ModelManager(budgets={"cpu": working + 1_000_000})  # the weights alone are 2.4 MB
    try:
        with Runtime.build(environ={}, manager=tight).activate():
            model.prepare(tuple(x.shape))
            (record,) = tight.loaded_models()
            assert record.partial
            assert torch.equal(model.denoise(x, sigma, cap), want)
    finally:
        tight.free()  # takes its streaming hooks off the shared module


def test_a_lora_in_diffusers_names_patches_its_rows_of_the_fused_qkv(folders: Path) -> None:
    """Z-Image LoRAs are mostly trained on diffusers' port: ``to_k`` is the second third of the published
    ``attention.qkv``, ``to_out.0`` its ``attention.out``; the other rows stay as they were."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(5)
    a_k, b_k = torch.randn(2, 64, generator=gen), torch.randn(64, 2, generator=gen)
    a_o, b_o = torch.randn(2, 64, generator=gen), torch.randn(64, 2, generator=gen)
    (folders / "loras").mkdir(exist_ok=True)
    save_file({"diffusion_model.layers.0.attention.to_k.lora_A.weight": a_k,
               "diffusion_model.layers.0.attention.to_k.lora_B.weight": b_k,
               "diffusion_model.layers.1.attention.to_out.0.lora_A.weight": a_o,
               "diffusion_model.layers.1.attention.to_out.0.lora_B.weight": b_o},
              str(folders / "loras" / "zimage-style.safetensors"))
    (model,) = node("UNETLoader").load_unet("tiny-zimage.safetensors")
    (patched,) = node("LoraLoaderModelOnly").load_lora_model_only(model, "zimage-style.safetensors", 0.5)
    base = model.model_state_dict()
    found = patched.get_key_patches()
    qkv, base_qkv = found["diffusion_model.layers.0.attention.qkv.weight"][0], base["diffusion_model.layers.0.attention.qkv.weight"]
    assert torch.allclose(qkv[64:128], base_qkv[64:128] + 0.5 * b_k @ a_k, atol=1e-5)
    assert torch.equal(qkv[:64], base_qkv[:64]) and torch.equal(qkv[128:], base_qkv[128:])
    out = found["diffusion_model.layers.1.attention.out.weight"][0]
    assert torch.allclose(out, base["diffusion_model.layers.1.attention.out.weight"] + 0.5 * b_o @ a_o, atol=1e-5)
