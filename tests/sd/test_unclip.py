"""unCLIP: the ADM vector equals ComfyUI's definition computed by hand, SD2.1-unclip checkpoints load with their
image encoder and sample through the executor, SDXL takes image embeddings as its pooled vector ("revision")."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hearth_sd.clip_vision_loader import CLIPVision, Output
from hearth_sd.nodes_clip_vision import unCLIPCheckpointLoader, unCLIPConditioning
from hearth_sd.sdxl_conditioning import sdxl_adm, sdxl_refiner_adm
from hearth_sd.unclip import unclip_adm

from hearth.core.executor import Executor
from hearth.core.models import load_model_file
from hearth.core.runtime import Runtime
from tests.sd.workflow_testing import executor_for, node, preview_pixels, tiny_runtime


def _output(embeds: torch.Tensor) -> Output:
    out = Output()
    out["image_embeds"] = embeds
    return out


def _by_hand(embeds: np.ndarray, level: int, seed: int, strength: float) -> np.ndarray:
    """ComfyUI's CLIPEmbeddingNoiseAugmentation (mean 0, std 1) from its formulas, in numpy float64."""
    steps = 1000
    bar = [math.cos((t / steps + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(steps + 1)]
    betas = np.array([min(1 - bar[i + 1] / bar[i], 0.999) for i in range(steps)])
    cumprod = np.cumprod(1 - betas)
    noise = torch.randn(1, embeds.shape[-1], generator=torch.Generator().manual_seed(seed)).numpy()
    z = np.float32(np.sqrt(cumprod[level])) * embeds + np.float32(np.sqrt(1 - cumprod[level])) * noise
    half = embeds.shape[-1] // 2
    freqs = np.exp(-math.log(10000) * np.arange(half) / half)
    emb = np.concatenate([np.cos(level * freqs), np.sin(level * freqs)])[None]
    return np.concatenate([z, emb], axis=1) * strength


def test_unclip_adm_is_comfyui_s_noise_augmentation():
    embeds = torch.randn(1, 16, generator=torch.Generator().manual_seed(5))
    entry = {"clip_vision_output": _output(embeds), "strength": 0.7, "noise_augmentation": 0.3}
    got = unclip_adm([entry], seed=32)
    want = _by_hand(embeds.numpy(), 300, 32, 0.7)  # round(999 * 0.3) = 300
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)
    # Two images: their vectors summed, the sum's first half noised again at the merge level (0.05 -> 50).
    second = {"clip_vision_output": _output(-embeds), "strength": 1.0, "noise_augmentation": 0.0}
    total = _by_hand(embeds.numpy(), 300, 32, 0.7) + _by_hand(-embeds.numpy(), 0, 32, 1.0)
    merged = unclip_adm([entry, second], seed=32, merge_augmentation=0.05)
    np.testing.assert_allclose(merged.numpy(), _by_hand(total[:, :16].astype(np.float32), 50, 32, 1.0), atol=1e-5)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def models(work: Path) -> Path:
    return work / "models"


@pytest.fixture(scope="module")
def runtime(work: Path) -> Iterator[Runtime]:
    # Only the tiny models these tests load (``make-tiny all`` writes every plugin's: slower).
    built = tiny_runtime(work, ("sd1", "sdxl", "sdxl_refiner", "sd2-unclip"))
    with built.activate():
        yield built


@pytest.fixture(autouse=True)
def _active(runtime: Runtime) -> Iterator[None]:
    with runtime.activate():
        yield


def test_the_unclip_checkpoint_loads_with_its_image_encoder(models):
    model, clip, vae, vision = unCLIPCheckpointLoader().load_checkpoint("tiny-sd2-unclip.safetensors")
    assert model.family == "sd2_unclip" and model.sampling.prediction == "v" and isinstance(vision, CLIPVision)
    assert vision.encode_image(torch.rand(1, 32, 32, 3)).image_embeds.shape == (1, 16)
    cond, _ = clip.encode("a lighthouse")
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([2.0])
    # Without image conditioning the ADM input is zeros (ComfyUI's SD21UNCLIP.encode_adm).
    assert torch.equal(model.adm({}, 2), torch.zeros(2, 32))
    plain = model.denoise(x, sigma, cond, {})
    (conditioned,) = unCLIPConditioning().apply_adm([[cond, {}]], vision.encode_image(torch.rand(1, 32, 32, 3)),
                                                    1.0, 0.0)
    assert not torch.allclose(model.denoise(x, sigma, cond, conditioned[0][1]), plain)
    # The sampler's seed minus ten seeds the augmentation; two images merge at ComfyUI's default level 0.05.
    entries = conditioned[0][1]["unclip_conditioning"] * 2
    torch.testing.assert_close(model.adm({"unclip_conditioning": entries, "seed": 20}, 1),
                               unclip_adm(entries, 10, 0.05))
    # A plain checkpoint has no image encoder: ComfyUI's loader gives None for it too.
    assert unCLIPCheckpointLoader().load_checkpoint("tiny-sd1.safetensors")[3] is None


def test_sdxl_takes_image_embeddings_as_its_pooled_vector(models):
    model, _, _ = load_model_file("checkpoints", models / "checkpoints" / "tiny-sdxl.safetensors")
    embeds = torch.randn(1, 32, generator=torch.Generator().manual_seed(2))
    options = {"pooled_output": torch.zeros(1, 32), "width": 64, "height": 64, "seed": 11,
               "unclip_conditioning": [{"clip_vision_output": _output(embeds), "strength": 0.75,
                                        "noise_augmentation": 0.0}]}
    pooled = unclip_adm(options["unclip_conditioning"], seed=1)[:, :32]  # seed - 10, as ComfyUI
    torch.testing.assert_close(model.adm(options, 1), sdxl_adm(pooled, 64, 64, 0, 0, 64, 64))
    wrong = {**options, "unclip_conditioning": [{**options["unclip_conditioning"][0],
                                                 "clip_vision_output": _output(torch.zeros(1, 16))}]}
    with pytest.raises(ValueError, match="16 wide, this model takes 32"):
        model.adm(wrong, 1)
    # The refiner too (ComfyUI's SDXLRefiner.encode_adm reads the same sdxl_pooled).
    refiner, _, _ = load_model_file("checkpoints", models / "checkpoints" / "tiny-sdxl-refiner.safetensors")
    torch.testing.assert_close(refiner.adm(options, 1), sdxl_refiner_adm(pooled, 64, 64, 0, 0, 6.0))


def test_unclip_conditioning_appends_and_refuses_what_is_not_an_output():
    first = _output(torch.zeros(1, 16))
    (once,) = unCLIPConditioning().apply_adm([[torch.zeros(1, 77, 32), {"x": 1}]], first, 0.5, 0.1)
    (twice,) = unCLIPConditioning().apply_adm(once, first, 1.0, 0.0)
    assert [e["strength"] for e in twice[0][1]["unclip_conditioning"]] == [0.5, 1.0]
    assert len(once[0][1]["unclip_conditioning"]) == 1 and twice[0][1]["x"] == 1
    assert unCLIPConditioning().apply_adm(once, first, 0.0, 0.0)[0] is once  # strength 0: unchanged, as ComfyUI
    with pytest.raises(ValueError, match="unCLIPConditioning: clip_vision_output is not"):
        unCLIPConditioning().apply_adm(once, "an image", 1.0, 0.0)


def _sample(executor: Executor, strength: float) -> np.ndarray:
    prompt = {
        "1": node("unCLIPCheckpointLoader", ckpt_name="tiny-sd2-unclip.safetensors"),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a red cat"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("EmptyImage", width=48, height=40, batch_size=1, color=0x3366CC),
        "5": node("CLIPVisionEncode", clip_vision=["1", 3], image=["4", 0], crop="center"),
        "6": node("unCLIPConditioning", conditioning=["2", 0], clip_vision_output=["5", 0], strength=strength,
                  noise_augmentation=0.1),
        "7": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "8": node("KSampler", model=["1", 0], seed=3, steps=2, cfg=3.0, sampler_name="euler", scheduler="normal",
                  positive=["6", 0], negative=["3", 0], latent_image=["7", 0], denoise=1.0),
        "9": node("VAEDecode", samples=["8", 0], vae=["1", 2]),
        "10": node("PreviewImage", images=["9", 0]),
    }
    return preview_pixels(executor, prompt, "10")


def test_an_unclip_workflow_runs_through_the_executor(runtime, tmp_path):
    # One executor for both runs: the second reuses the cached loaders and encodings, as a server would.
    executor = executor_for(runtime, tmp_path)
    with_image = _sample(executor, 2.0)
    without = _sample(executor, 0.0)
    assert with_image.shape == (64, 64, 3) and not np.array_equal(with_image, without)
