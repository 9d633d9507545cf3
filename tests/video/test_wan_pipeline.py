"""Wan 2.1 text-to-video end to end: make-tiny wan, the loader nodes, sampling, decoding, and the memory estimate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hearth_video import wan_loaders
from hearth_video.wan_nodes import EmptyHunyuanLatentVideo

from hearth.cli.main import cli
from hearth.core.models import ModelManager
from hearth.core.models.loader_nodes import UNETLoader
from hearth.core.runtime import Runtime, current_runtime

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "txt2video_wan_api.json"


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wan") / "models"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "wan", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def folders(models: Path):
    with Runtime.build(models_dir=models, environ={}).activate():
        yield models


def test_make_tiny_wan_writes_the_three_parts_and_the_tokenizer(models: Path) -> None:
    names = {p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()}
    assert names == {"unet/tiny-wan.safetensors", "text_encoders/tiny-umt5.safetensors",
                     "text_encoders/tiny-umt5.tokenizer.json", "vae/tiny-wan-vae.safetensors"}


def test_make_tiny_lists_the_bundle_with_its_parts() -> None:
    listing = CliRunner().invoke(cli, ["models", "make-tiny", "--json"])
    assert listing.exit_code == 0, listing.output
    found = json.loads(listing.stdout)
    assert found["wan"]["parts"] == ["wan-dit", "wan-umt5", "wan-vae"]
    assert found["wan-dit"] == {"kind": "diffusion_models", "filename": "tiny-wan.safetensors",
                                "description": found["wan-dit"]["description"]}


def test_loader_nodes_offer_wan(folders: Path) -> None:
    nodes = current_runtime().nodes
    clip = nodes["CLIPLoader"].cls.INPUT_TYPES()["required"]
    assert "wan" in clip["type"][0] and "tiny-umt5.safetensors" in clip["clip_name"][0]
    assert "tiny-wan-vae.safetensors" in nodes["VAELoader"].cls.INPUT_TYPES()["required"]["vae_name"][0]
    (vae,) = nodes["VAELoader"].cls().load_vae("tiny-wan-vae.safetensors")
    assert vae.latent_channels == 16  # the Wan VAE, not an SD one


def test_make_tiny_wan_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.safetensors"
    target.write_text("x")
    result = CliRunner().invoke(cli, ["models", "make-tiny", "wan", "--out", str(target)])
    assert result.exit_code == 2 and "give a folder" in result.output


@pytest.mark.parametrize("length,frames", [(1, 1), (9, 3), (81, 21)])
def test_empty_video_latent_shape(length: int, frames: int) -> None:
    (latent,) = EmptyHunyuanLatentVideo().generate(width=96, height=64, length=length, batch_size=2)
    assert latent["samples"].shape == (2, 16, frames, 8, 12)
    assert not latent["samples"].any()


def decoded_frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def run(workflow: dict, models: Path, out: Path) -> Path:
    path = out / "workflow.json"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(workflow), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out / "out"), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    (video,) = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    return video


def test_example_workflow_same_seed_same_frames(models: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    workflow = json.loads(WORKFLOW.read_text(encoding="utf-8"))
    first = decoded_frames(run(workflow, models, tmp_path / "a"))
    again = decoded_frames(run(workflow, models, tmp_path / "b"))
    assert first.shape == (9, 32, 32, 3)  # 9 frames from 3 latent frames
    assert np.array_equal(first, again)
    assert first.std() > 1.0  # not a blank clip
    workflow["8"]["inputs"]["seed"] = 43
    other = decoded_frames(run(workflow, models, tmp_path / "c"))
    assert np.abs(other.astype(int) - first.astype(int)).mean() > 1.0


def test_unet_loader_names_what_it_cannot_load(folders: Path) -> None:
    other = folders / "unet" / "not-wan.safetensors"
    from safetensors.torch import save_file

    save_file({"some.weight": torch.zeros(2)}, str(other))
    try:
        with pytest.raises(ValueError, match="not-wan.safetensors"):
            UNETLoader().load_unet("not-wan.safetensors")
        with pytest.raises(ValueError, match="weight_dtype"):
            wan_loaders.load_diffusion_model(folders / "unet" / "tiny-wan.safetensors", "int3")
    finally:
        other.unlink()
    assert "tiny-wan.safetensors" in UNETLoader.INPUT_TYPES()["required"]["unet_name"][0]


def test_text_encoder_without_tokenizer_says_where_to_put_one(folders: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "umt5.safetensors"
    lonely.write_bytes((folders / "text_encoders" / "tiny-umt5.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        wan_loaders.load_text_encoder(lonely)


def test_text_context_is_zero_past_the_prompt(folders: Path) -> None:
    clip = wan_loaders.load_text_encoder(folders / "text_encoders" / "tiny-umt5.safetensors", device="cpu")
    cond, pooled = clip.encode("a red fox")
    assert cond.shape == (1, 512, 32) and pooled is None
    assert cond[0, :4].abs().min() > 0 and not cond[0, 4:].any()  # 3 words and </s>
    assert not torch.equal(cond, clip.encode("a blue owl")[0])
    with pytest.raises(ValueError, match="last layer"):
        clip.clone().set_last_layer(-2)


def test_memory_estimate_hook_answers_for_wan_and_grows_with_the_video(folders: Path) -> None:
    plugins = current_runtime().plugins
    model = wan_loaders.load_diffusion_model(folders / "unet" / "tiny-wan.safetensors", device="cpu")
    manager = ModelManager("cpu", plugins=plugins)
    short = manager.memory_estimate(model.patcher, (2, 16, 3, 8, 8), torch.float32)
    long = manager.memory_estimate(model.patcher, (2, 16, 21, 8, 8), torch.float32)
    assert 0 < short < long
    assert plugins.hook.memory_estimate_for_model(model=model.patcher, input_shape=(1, 4, 8, 8), dtype=None) is None


def test_wan_model_rejects_image_latents_and_foreign_text(folders: Path) -> None:
    model = wan_loaders.load_diffusion_model(folders / "unet" / "tiny-wan.safetensors", device="cpu")
    with pytest.raises(ValueError, match="video latents"):
        model.denoise(torch.zeros(1, 16, 8, 8), torch.ones(1), torch.zeros(1, 77, 32))
    with pytest.raises(ValueError, match="UMT5"):
        model.denoise(torch.zeros(1, 16, 1, 8, 8), torch.ones(1), torch.zeros(1, 77, 768))


def test_ksampler_on_wan_equals_a_hand_written_flow_euler_loop_on_diffusers(folders: Path) -> None:
    """The whole chain (shifted sigmas, pure-noise start, sigma * 1000 timesteps, CFG, Euler in flow space, latent
    normalisation) against diffusers' transformer driven by hand with the same weights."""
    diffusers = pytest.importorskip("diffusers")
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
    from hearth_samplers.noise import prepare_noise
    from hearth_samplers.sampling import common_ksampler, ksampler_sigmas
    from hearth_video.wan_nodes import ModelSamplingSD3
    from hearth_video.wan_vae import LATENTS_MEAN, LATENTS_STD
    from safetensors.torch import load_file

    path = folders / "unet" / "tiny-wan.safetensors"
    model = wan_loaders.load_diffusion_model(path, device="cpu")
    (model,) = ModelSamplingSD3().patch(model, 8.0)
    clip = wan_loaders.load_text_encoder(folders / "text_encoders" / "tiny-umt5.safetensors", device="cpu")
    positive, negative = clip.encode("a red fox in the snow")[0], clip.encode("blurry")[0]
    latent = {"samples": torch.zeros(1, 16, 2, 4, 6)}
    seed, steps, cfg = 7, 3, 4.0
    ours = common_ksampler(model, seed, steps, cfg, "euler", "simple", [[positive, {}]], [[negative, {}]],
                           latent)["samples"]

    config = model.module.config
    reference = diffusers.WanTransformer3DModel(
        patch_size=config.patch_size, num_attention_heads=config.num_heads, attention_head_dim=config.head_dim,
        in_channels=16, out_channels=16, text_dim=config.text_dim, freq_dim=config.freq_dim, ffn_dim=config.ffn_dim,
        num_layers=config.num_layers, cross_attn_norm=True, eps=config.eps).eval()
    reference.load_state_dict(convert_wan_transformer_to_diffusers(load_file(str(path))), strict=True)
    sigmas = ksampler_sigmas(model.sampling, "simple", "euler", steps)
    x = prepare_noise(latent["samples"], seed)  # at sigma 1 the start is pure noise
    context = torch.cat([positive, negative])
    with torch.no_grad():
        for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
            v_pos, v_neg = reference(x.repeat(2, 1, 1, 1, 1), (s * 1000).repeat(2), context, return_dict=False)[0]
            v = v_neg + cfg * (v_pos - v_neg)
            x = x + (s_next - s) * v
    mean = torch.tensor(LATENTS_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(LATENTS_STD).view(1, -1, 1, 1, 1)
    expected = x * std + mean
    assert expected.std() > 0.5
    assert (ours - expected).abs().max() <= 1e-4


def test_comfyui_views_of_the_wan_values(folders: Path) -> None:
    model = wan_loaders.load_diffusion_model(folders / "unet" / "tiny-wan.safetensors", device="cpu")
    view = model.model
    assert view.model_sampling is model.sampling and view.diffusion_model is model.module
    raw = torch.randn(1, 16, 2, 4, 4)
    assert torch.allclose(view.latent_format.process_out(view.latent_format.process_in(raw)), raw, atol=1e-5)
    assert model.get_model_object("model_sampling").shift == 8.0
    assert view.memory_required((2, 16, 3, 8, 8)) > 0
    clip = wan_loaders.load_text_encoder(folders / "text_encoders" / "tiny-umt5.safetensors", device="cpu")
    ((cond, options),) = clip.encode_from_tokens_scheduled(clip.tokenize("a fox"), add_dict={"strength": 0.5})
    assert cond.shape == (1, 512, 32) and options == {"pooled_output": None, "strength": 0.5}


def test_clip_loader_wan_on_another_encoder_says_what_it_is_not(folders: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = tmp_path / "clip-l.safetensors"
    save_file({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 4)}, str(other))
    with pytest.raises(ValueError, match="not a UMT5 encoder.*type wan"):
        wan_loaders.load_text_encoder(other)


def test_sampler_cfg_functions_set_on_a_wan_model_apply(folders: Path) -> None:
    """ComfyUI's ModelPatcher setters for the sampler's options work on Wan as on SD: a cfg function that returns
    the positive prediction alone (in noise space) samples as cfg 1 does, and a clone keeps the original plain."""
    from hearth_samplers.sampling import common_ksampler

    model = wan_loaders.load_diffusion_model(folders / "unet" / "tiny-wan.safetensors", device="cpu")
    clip = wan_loaders.load_text_encoder(folders / "text_encoders" / "tiny-umt5.safetensors", device="cpu")
    positive, negative = [[clip.encode("a red fox")[0], {}]], [[clip.encode("blurry")[0], {}]]
    latent = {"samples": torch.zeros(1, 16, 2, 4, 4)}

    def sample(m, cfg: float) -> torch.Tensor:
        return common_ksampler(m, 3, 2, cfg, "euler", "simple", positive, negative, latent)["samples"]

    patched = model.clone()
    patched.set_model_sampler_cfg_function(lambda args: args["cond"], disable_cfg1_optimization=True)
    assert "sampler_cfg_function" not in model.model_options
    plain_cfg4, plain_cfg1 = sample(model, 4.0), sample(model, 1.0)
    assert not torch.allclose(plain_cfg4, plain_cfg1, atol=1e-4)
    assert torch.allclose(sample(patched, 4.0), plain_cfg1, atol=1e-5)
