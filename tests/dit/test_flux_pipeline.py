"""Flux.1 end to end: make-tiny, UNETLoader, the sampling nodes (KSampler and the custom-sampling chain with
FluxGuidance and ModelSamplingFlux) against a hand-written flow-matching Euler loop on diffusers' transformer,
CLIPTextEncodeFlux, and the memory estimate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hearth_dit.ae_nodes import TINY_CLIP_L, TINY_T5, TINY_VAE
from hearth_dit.dit_common import LATENT_SCALE, LATENT_SHIFT
from hearth_dit.flux_loaders import FluxModel
from hearth_dit.flux_nodes import CLIPTextEncodeFlux

from hearth.cli.main import cli
from hearth.core.models import ModelManager
from hearth.core.runtime import Runtime, current_runtime

OURS = {"flux-dit": "unet/tiny-flux.safetensors", "flux-dit-schnell": "unet/tiny-flux-schnell.safetensors",
          "flux-dit-diffusers": "unet/tiny-flux-diffusers.safetensors",
          "flux-dit-fp8": "unet/tiny-flux-fp8-scaled.safetensors", "lora-flux": "loras/tiny-lora-flux.safetensors"}


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))  # the suite's budget is two cores
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flux") / "models"
    for name, file in OURS.items():
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        result = CliRunner().invoke(cli, ["models", "make-tiny", name, "--out", str(folder / file)])
        assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def folders(models: Path):
    with Runtime.build(models_dir=models, environ={}).activate():
        yield models


def node(name: str):
    found = current_runtime().nodes[name]
    instance = found.cls()
    return lambda **kwargs: getattr(instance, found.cls.FUNCTION)(**kwargs)


def test_make_tiny_lists_flux_and_its_bundle(models: Path) -> None:
    """The bundle names the ae part's encoders and VAE; the transformer files are this part's own."""
    listing = CliRunner().invoke(cli, ["models", "make-tiny", "--json"])
    assert listing.exit_code == 0, listing.output
    found = json.loads(listing.stdout)
    assert found["flux"]["parts"] == ["flux-dit", "flux-t5xxl", "flux-clip-l", "flux-vae"]
    assert found["flux-dit"]["filename"] == "tiny-flux.safetensors"
    names = {p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()}
    assert set(OURS.values()) <= names


@pytest.mark.parametrize("name,guided", [("tiny-flux.safetensors", True), ("tiny-flux-schnell.safetensors", False),
                                         ("tiny-flux-diffusers.safetensors", True),
                                         ("tiny-flux-fp8-scaled.safetensors", True)])
def test_unet_loader_loads_every_flux_file(folders: Path, name: str, guided: bool) -> None:
    assert name in current_runtime().nodes["UNETLoader"].cls.INPUT_TYPES()["required"]["unet_name"][0]
    (model,) = node("UNETLoader")(unet_name=name, weight_dtype="default")
    assert isinstance(model, FluxModel) and model.latent_channels == 16
    assert model.module.config.guidance_embed is guided
    # dev samples with Flux's resolution shift (timestep = sigma), schnell with plain flow at multiplier 1.
    assert model.sampling.timestep(torch.tensor(0.5)) == 0.5
    assert type(model.sampling).__name__ == ("FluxShiftSampling" if guided else "DiscreteFlowSampling")


def test_flux_model_rejects_sd_latents_and_foreign_text(folders: Path) -> None:
    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    with pytest.raises(ValueError, match="EmptySD3LatentImage"):
        model.denoise(torch.zeros(1, 4, 8, 8), torch.ones(1), torch.zeros(1, 4, 32))
    with pytest.raises(ValueError, match="DualCLIPLoader type flux"):
        model.denoise(torch.zeros(1, 16, 8, 8), torch.ones(1), torch.zeros(1, 77, 768))


def hand_written_euler(path: Path, noise: torch.Tensor, sigmas: torch.Tensor, context: torch.Tensor,
                       pooled: torch.Tensor, guidance: float) -> torch.Tensor:
    """Flow-matching Euler on diffusers' FluxTransformer2DModel: x += (s_next - s) * v from the noised empty
    latent (pure noise at sigma 1), then the latent format's inverse (x / 0.3611 + 0.1159)."""
    from hearth_dit.flux_tiny import TINY_FLUX, write_tiny_flux_diffusers

    from .test_flux_model import diffusers_forward, reference

    theirs = path.with_name("reference-diffusers.safetensors")
    write_tiny_flux_diffusers(theirs)
    model = reference(TINY_FLUX, theirs)
    start = (torch.zeros_like(noise) - LATENT_SHIFT) * LATENT_SCALE  # the empty latent, in the model's space
    x = sigmas[0] * noise + (1 - sigmas[0]) * start
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        v = diffusers_forward(model, x, s.reshape(1), context, pooled, torch.tensor([guidance]))
        x = x + (s_next - s) * v
    return x / LATENT_SCALE + LATENT_SHIFT


def conditioning(seed: int = 11) -> list[list]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 6, 32, generator=g), {"pooled_output": torch.randn(1, 32, generator=g)}]]


def test_ksampler_on_flux_equals_a_hand_written_flow_euler_loop_on_diffusers(folders: Path) -> None:
    """UNETLoader -> ModelSamplingFlux -> FluxGuidance -> EmptySD3LatentImage -> KSampler (euler, simple, cfg 1)."""
    pytest.importorskip("diffusers")
    from hearth_samplers.noise import prepare_noise
    from hearth_samplers.sampling import ksampler_sigmas

    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    (model,) = node("ModelSamplingFlux")(model=model, max_shift=1.15, base_shift=0.5, width=64, height=48)
    (positive,) = node("FluxGuidance")(conditioning=conditioning(), guidance=2.5)
    (negative,) = node("FluxGuidance")(conditioning=conditioning(12), guidance=2.5)
    (latent,) = node("EmptySD3LatentImage")(width=64, height=48, batch_size=1)
    assert latent["samples"].shape == (1, 16, 6, 8)
    seed, steps = 5, 3
    (out,) = node("KSampler")(model=model, seed=seed, steps=steps, cfg=1.0, sampler_name="euler",
                              scheduler="simple", positive=positive, negative=negative, latent_image=latent,
                              denoise=1.0)
    sigmas = ksampler_sigmas(model.sampling, "simple", "euler", steps)
    assert abs(float(sigmas[0]) - 1.0) < 1e-6 and sigmas[-1] == 0.0 and 0.5 < float(sigmas[1]) < 1.0
    expected = hand_written_euler(folders / "unet" / "tiny-flux.safetensors", prepare_noise(latent["samples"], seed),
                                  sigmas, positive[0][0], positive[0][1]["pooled_output"], 2.5)
    assert expected.abs().max() > 0.5
    torch.testing.assert_close(out["samples"], expected, rtol=0, atol=1e-4)


def test_custom_sampling_nodes_give_the_ksampler_result(folders: Path) -> None:
    """BasicGuider + RandomNoise + KSamplerSelect + BasicScheduler + SamplerCustomAdvanced == KSampler (cfg 1)."""
    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    (positive,) = node("FluxGuidance")(conditioning=conditioning(), guidance=4.0)
    (latent,) = node("EmptySD3LatentImage")(width=32, height=32, batch_size=1)
    (guider,) = node("BasicGuider")(model=model, conditioning=positive)
    (noise,) = node("RandomNoise")(noise_seed=9)
    (sampler,) = node("KSamplerSelect")(sampler_name="euler")
    (sigmas,) = node("BasicScheduler")(model=model, scheduler="simple", steps=2, denoise=1.0)
    custom = node("SamplerCustomAdvanced")(noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                                           latent_image=latent)[0]["samples"]
    (plain,) = node("KSampler")(model=model, seed=9, steps=2, cfg=1.0, sampler_name="euler", scheduler="simple",
                                positive=positive, negative=positive, latent_image=latent, denoise=1.0)
    torch.testing.assert_close(custom, plain["samples"], rtol=0, atol=1e-6)
    (weaker,) = node("FluxGuidance")(conditioning=conditioning(), guidance=1.0)
    (guider,) = node("BasicGuider")(model=model, conditioning=weaker)
    other = node("SamplerCustomAdvanced")(noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                                          latent_image=latent)[0]["samples"]
    assert (other - custom).abs().max() > 1e-3  # dev reads FluxGuidance's value


class _FakeFluxClip:
    """A CLIP with ComfyUI's Flux token layout ("l" and "t5xxl"), recording what it encodes."""

    def tokenize(self, text: str) -> dict:
        return {"l": [("l", text)], "t5xxl": [("t5", text)]}

    def encode_from_tokens_scheduled(self, tokens: dict, add_dict: dict | None = None) -> list:
        return [[tokens, {"pooled_output": None, **(add_dict or {})}]]


def test_clip_text_encode_flux_sends_each_text_to_its_encoder() -> None:
    (cond,) = CLIPTextEncodeFlux().encode(_FakeFluxClip(), "a cat", "a cat on a red sofa", 2.0)
    tokens, options = cond[0]
    assert tokens == {"l": [("l", "a cat")], "t5xxl": [("t5", "a cat on a red sofa")]}
    assert options["guidance"] == 2.0
    with pytest.raises(ValueError, match="DualCLIPLoader type flux"):
        CLIPTextEncodeFlux().encode(None, "a", "b", 3.5)


def test_memory_estimate_answers_for_flux_and_grows_with_the_image(folders: Path) -> None:
    plugins = current_runtime().plugins
    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    manager = ModelManager("cpu", plugins=plugins)
    small = manager.memory_estimate(model.patcher, (1, 16, 8, 8), torch.float32)
    large = manager.memory_estimate(model.patcher, (1, 16, 64, 64), torch.float32)
    assert 0 < small < large
    assert plugins.hook.memory_estimate_for_model(model=model, input_shape=(1, 16, 8, 8), dtype=None) > 0


def test_full_size_dev_estimate_is_in_the_gigabytes() -> None:
    from hearth_dit.flux_model import FluxTransformer, full_size_config

    with torch.device("meta"):
        module = FluxTransformer(full_size_config("dev"))
    params = sum(p.numel() for p in module.parameters())
    assert 11.8e9 < params < 12.0e9  # Flux.1 dev's 11.9B
    working = module.activation_bytes((1, 16, 128, 128), torch.bfloat16)
    assert 0.2e9 < working < 4e9


WORKFLOW = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny-flux.safetensors", "weight_dtype": "default"}},
    "2": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": TINY_T5, "clip_name2": TINY_CLIP_L,
                                                     "type": "flux"}},
    "3": {"class_type": "VAELoader", "inputs": {"vae_name": TINY_VAE}},
    "4": {"class_type": "CLIPTextEncodeFlux", "inputs": {"clip": ["2", 0], "clip_l": "a red fox",
                                                         "t5xxl": "a red fox in the snow", "guidance": 3.5}},
    "5": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "ModelSamplingFlux", "inputs": {"model": ["1", 0], "max_shift": 1.15, "base_shift": 0.5,
                                                        "width": 64, "height": 64}},
    "7": {"class_type": "BasicGuider", "inputs": {"model": ["6", 0], "conditioning": ["4", 0]}},
    "8": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1}},
    "9": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "10": {"class_type": "BasicScheduler", "inputs": {"model": ["6", 0], "scheduler": "simple", "steps": 3,
                                                      "denoise": 1.0}},
    "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["8", 0], "guider": ["7", 0],
                                                             "sampler": ["9", 0], "sigmas": ["10", 0],
                                                             "latent_image": ["5", 0]}},
    "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["3", 0]}},
    "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "flux"}},
    "14": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "tiny-lora-flux.safetensors",
                                                           "strength_model": 1.0}},
    "15": {"class_type": "KSampler", "inputs": {"model": ["14", 0], "seed": 1, "steps": 2, "cfg": 2.0,
                                                "sampler_name": "euler", "scheduler": "simple", "positive": ["4", 0],
                                                "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
    "16": {"class_type": "VAEDecode", "inputs": {"samples": ["15", 0], "vae": ["3", 0]}},
    "17": {"class_type": "SaveImage", "inputs": {"images": ["16", 0], "filename_prefix": "flux-lora"}},
}


def test_a_whole_flux_graph_runs_on_the_tiny_bundle(models: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """DualCLIPLoader flux + CLIPTextEncodeFlux + the custom-sampling chain + VAEDecode, and a LoRA'd KSampler
    branch, through ``comfy run`` on make-tiny flux (the ae part writes the encoders and the VAE)."""
    from PIL import Image

    bundle = tmp_path / "models"
    result = CliRunner().invoke(cli, ["models", "make-tiny", "flux", "--out", str(bundle)])
    if result.exit_code != 0 and "flux-t5xxl" in result.output:
        pytest.skip("the ae part's tiny encoders are not installed: " + result.output.strip())
    assert result.exit_code == 0, result.output
    (bundle / "loras").mkdir()
    (bundle / "loras" / "tiny-lora-flux.safetensors").write_bytes((models / OURS["lora-flux"]).read_bytes())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flux.json").write_text(json.dumps(WORKFLOW), encoding="utf-8")
    run = CliRunner().invoke(cli, ["run", str(tmp_path / "flux.json"), "--out", str(tmp_path / "out"),
                                   "--models-dir", str(bundle)])
    assert run.exit_code == 0, run.output
    images = sorted(Path(line) for line in run.stdout.splitlines() if line.strip())
    assert [p.name for p in images] == ["flux-lora_00001_.png", "flux_00001_.png"]
    plain, lora = (torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32)).reshape(-1, 3) for p in images[::-1])
    assert plain.shape == (64 * 64, 3) and plain.std() > 1.0  # not a blank image
    assert (plain - lora).abs().mean() > 1.0  # the LoRA'd, CFG'd branch differs


@pytest.mark.parametrize("name", ["tiny-flux.safetensors", "tiny-flux-fp8-scaled.safetensors"])
def test_a_tight_budget_streams_the_transformer_with_the_same_result(folders: Path, name: str) -> None:
    """Less memory than the transformer weighs: the model manager loads it partly and streams the rest (fp8 layers
    with their scales), same output."""
    from hearth.core.models import default_manager

    (model,) = node("UNETLoader")(unet_name=name, weight_dtype="default")
    (cond,) = conditioning()
    x, sigma = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(3)), torch.full((2,), 0.6)
    want = model.denoise(x, sigma, cond[0], cond[1])
    working = default_manager().memory_estimate(model.patcher, tuple(x.shape), torch.float32)
    assert model.patcher.nbytes > 200_000
    tight = ModelManager(budgets={"cpu": working + model.patcher.nbytes // 3})
    try:
        with Runtime.build(environ={}, manager=tight).activate():
            model.prepare(tuple(x.shape))
            (record,) = tight.loaded_models()
            assert record.partial
            assert torch.equal(model.denoise(x, sigma, cond[0], cond[1]), want)
    finally:
        tight.free()  # takes its streaming hooks off the shared module


def test_guidance_defaults_to_3_5_and_flux_disable_guidance_switches_it_off(folders: Path) -> None:
    """As ComfyUI: no "guidance" in the conditioning means 3.5; FluxDisableGuidance (None) adds no guidance embed."""
    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    (cond,) = conditioning()
    x, sigma = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(2)), torch.full((1,), 0.7)
    (off,) = node("FluxDisableGuidance")(conditioning=[cond])
    assert off[0][1]["guidance"] is None and "guidance" not in cond[1]  # a copy: the input is left alone
    absent = model.denoise(x, sigma, cond[0], cond[1])
    explicit = model.denoise(x, sigma, cond[0], {**cond[1], "guidance": 3.5})
    disabled = model.denoise(x, sigma, cond[0], off[0][1])
    assert torch.equal(absent, explicit)
    assert (disabled - absent).abs().max() > 1e-3
    module = model.module
    with torch.no_grad():
        bare = module(x, sigma, cond[0], cond[1]["pooled_output"], None)
    torch.testing.assert_close(disabled, x - sigma.view(-1, 1, 1, 1) * bare, rtol=0, atol=1e-6)


def test_checkpoint_loader_simple_reads_the_transformer_of_a_flux_checkpoint(folders: Path, caplog) -> None:
    """A checkpoint with the transformer under model.diffusion_model. (Comfy-Org's all-in-one layout)."""
    from hearth_dit.flux_tiny import write_tiny_flux

    (folders / "checkpoints").mkdir(exist_ok=True)
    write_tiny_flux(folders / "checkpoints" / "tiny-flux-checkpoint.safetensors", prefix="model.diffusion_model.")
    model, clip, vae = node("CheckpointLoaderSimple")(ckpt_name="tiny-flux-checkpoint.safetensors")
    (same,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    assert isinstance(model, FluxModel) and clip is None and vae is None  # no encoders or VAE in this file
    assert "DualCLIPLoader" in caplog.text
    (cond,) = conditioning()
    x = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.denoise(x, torch.full((1,), 0.5), cond[0], cond[1]),
                       same.denoise(x, torch.full((1,), 0.5), cond[0], cond[1]))


def test_reference_latent_conditioning_reaches_the_transformer(folders: Path) -> None:
    """Flux Kontext through ReferenceLatent: the raw latent is mapped into the model's space and attended to."""
    (model,) = node("UNETLoader")(unet_name="tiny-flux.safetensors", weight_dtype="default")
    raw = torch.randn(1, 16, 6, 4, generator=torch.Generator().manual_seed(4))
    (edit,) = node("ReferenceLatent")(conditioning=conditioning(), latent={"samples": raw})
    (diagonal,) = node("FluxKontextMultiReferenceLatentMethod")(conditioning=edit, reference_latents_method="uxo/uno")
    x, sigma = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(5)), torch.full((2,), 0.4)
    cond, options = edit[0]
    got = model.denoise(x, sigma, cond, options)
    with torch.no_grad():
        velocity = model.module(x, sigma, cond.expand(2, -1, -1), options["pooled_output"].expand(2, -1),
                                torch.full((2,), 3.5), [((raw - LATENT_SHIFT) * LATENT_SCALE).expand(2, -1, -1, -1)])
    torch.testing.assert_close(got, x - sigma.view(-1, 1, 1, 1) * velocity, rtol=0, atol=1e-6)
    assert (got - model.denoise(x, sigma, cond, {"pooled_output": options["pooled_output"]})).abs().max() > 1e-3
    assert (got - model.denoise(x, sigma, *diagonal[0])).abs().max() > 1e-4  # uxo places it elsewhere


def test_default_samplings_equal_the_samplers_plugin_model_samplings() -> None:
    """Without ModelSamplingFlux a dev MODEL samples as ComfyUI's ModelSamplingFlux at mu 1.15 and schnell as its
    discrete flow (shift 1, multiplier 1): the same tables the samplers plugin's nodes would set."""
    from hearth_dit.flux_loaders import default_sampling
    from hearth_dit.flux_tiny import TINY_FLUX, TINY_FLUX_SCHNELL
    from hearth_samplers.model_sampling import FlowSampling, FluxSampling
    from hearth_samplers.sampling import ksampler_sigmas

    for ours, theirs in ((default_sampling(TINY_FLUX), FluxSampling(1.15)),
                         (default_sampling(TINY_FLUX_SCHNELL), FlowSampling(shift=1.0, multiplier=1.0))):
        assert torch.equal(ours.sigmas, theirs.sigmas)
        for scheduler in ("simple", "normal", "beta"):
            assert torch.equal(ksampler_sigmas(ours, scheduler, "euler", 4), ksampler_sigmas(theirs, scheduler, "euler", 4))
        assert ours.percent_to_sigma(0.3) == pytest.approx(theirs.percent_to_sigma(0.3), abs=1e-7)
