"""An SD UNet saved on its own (a ``diffusion_models/`` file, as ComfyUI's UNETLoader reads it) loads as a MODEL:
bare keys or under ``model.diffusion_model.``, SD1 and SDXL, through UNETLoader, comfy.sd's loaders and
``load_model_file``, and samples exactly as the MODEL of the checkpoint it came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hearth_sd.checkpoint import unet_family
from hearth_sd.formats import UNET_PREFIX
from hearth_sd.tiny import make_tiny_checkpoint
from PIL import Image

from hearth.core.context import Folders
from hearth.core.executor import Executor
from hearth.core.models import load_model_file, load_state_dict, read_header, write_safetensors
from hearth.core.models.loaders import NoModelLoaderError
from hearth.core.runtime import Runtime


def unet_alone(checkpoint: Path, path: Path, *, bare: bool, metadata: bool = True) -> Path:
    """The UNet tensors of ``checkpoint`` written alone to ``path`` (keys bare or still prefixed)."""
    state = load_state_dict(checkpoint)
    tensors = {(k[len(UNET_PREFIX):] if bare else k): v for k, v in state.items() if k.startswith(UNET_PREFIX)}
    return write_safetensors(tensors, path, dict(read_header(checkpoint).metadata) if metadata else None)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for family in ("sd1", "sdxl"):
        ckpt = make_tiny_checkpoint(family, folder / "checkpoints" / f"tiny-{family}.safetensors")
        (folder / "diffusion_models").mkdir(exist_ok=True)
        unet_alone(ckpt, folder / "diffusion_models" / f"{family}-bare.safetensors", bare=True)
        unet_alone(ckpt, folder / "diffusion_models" / f"{family}-prefixed.safetensors", bare=False)
    write_safetensors({"something.else.weight": torch.zeros(2, 2)}, folder / "diffusion_models" / "other.safetensors")
    return folder


@pytest.fixture(scope="module")
def runtime(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    work = tmp_path_factory.mktemp("work")
    built = Runtime.build(models_dir=models, environ={}, output=work / "output", input=work / "input",
                          temp=work / "temp")
    with built.activate():
        yield built


@pytest.fixture(autouse=True)
def _active(runtime: Runtime) -> Iterator[None]:
    with runtime.activate():
        yield


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def sampled(runtime: Runtime, tmp_path: Path, model: list[Any], extra: dict[str, Any]) -> np.ndarray:
    """Pixels of a 2-step txt2img of the tiny SD1 checkpoint's CLIP and VAE with ``model``."""
    folders = Folders(tmp_path / "output", tmp_path / "input", tmp_path / "temp")
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name="tiny-sd1.safetensors"),
        "2": node("CLIPTextEncode", clip=["1", 1], text="a red cat"),
        "3": node("CLIPTextEncode", clip=["1", 1], text="blurry"),
        "4": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "5": node("KSampler", model=model, seed=7, steps=2, cfg=4.0, sampler_name="euler", scheduler="normal",
                  positive=["2", 0], negative=["3", 0], latent_image=["4", 0], denoise=1.0),
        "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]),
        "7": node("PreviewImage", images=["6", 0]),
        **extra,
    }
    pm = runtime.plugins
    result = Executor(pm.nodes(), folders=folders, plugins=pm).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    image = result.outputs["7"]["images"][0]
    with Image.open(folders.temp / image["subfolder"] / image["filename"]) as opened:
        return np.asarray(opened.convert("RGB"))


@pytest.mark.parametrize("layout", ["bare", "prefixed"])
def test_unet_loader_samples_as_the_checkpoints_model(runtime: Runtime, tmp_path: Path, layout: str) -> None:
    theirs = sampled(runtime, tmp_path / "a", ["1", 0], {})
    ours = sampled(runtime, tmp_path / "b", ["8", 0],
                   {"8": node("UNETLoader", unet_name=f"sd1-{layout}.safetensors", weight_dtype="default")})
    assert np.array_equal(ours, theirs)
    assert ours.std() > 1  # a picture, not a blank


def test_sdxl_unet_alone_denoises_as_its_checkpoint(models: Path) -> None:
    (ckpt_model, clip, _) = load_model_file("checkpoints", models / "checkpoints" / "tiny-sdxl.safetensors")
    alone = load_model_file("diffusion_models", models / "diffusion_models" / "sdxl-bare.safetensors")
    assert alone.family == "sdxl" and type(alone) is type(ckpt_model)
    cond, pooled = clip.encode("a lighthouse")
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([3.0])
    options = {"pooled_output": pooled, "width": 512, "height": 512, "crop_w": 0, "crop_h": 0}
    torch.testing.assert_close(alone.denoise(x, sigma, cond, options), ckpt_model.denoise(x, sigma, cond, options),
                               rtol=0, atol=0)


def test_a_whole_checkpoint_in_diffusion_models_gives_its_unet(models: Path) -> None:
    """ComfyUI's UNETLoader takes a checkpoint's UNet when handed a whole checkpoint; so does Hearth's."""
    model = load_model_file("diffusion_models", models / "checkpoints" / "tiny-sd1.safetensors")
    assert model.family == "sd1" and model.sampling.prediction == "eps"


def test_the_family_is_told_by_shapes_without_metadata(tmp_path: Path) -> None:
    for family in ("sd1", "sd2", "sdxl"):
        ckpt = make_tiny_checkpoint(family, tmp_path / f"{family}.safetensors")
        path = unet_alone(ckpt, tmp_path / f"{family}-unet.safetensors", bare=True, metadata=False)
        assert unet_family(read_header(path).shapes).name == family
    # Real SDXL refiner and SD2 widths (cross-attention 1280 with an ADM input; 1024 context).
    assert unet_family({"label_emb.0.0.weight": (1280, 2560), "a.attn2.to_k.weight": (640, 1280)}).name \
        == "sdxl_refiner"
    assert unet_family({"a.attn2.to_k.weight": (320, 1024), "a.proj_in.weight": (320, 320, 1, 1)}).name == "sd2"


def test_a_file_that_is_no_unet_still_names_the_loaders(models: Path) -> None:
    with pytest.raises(NoModelLoaderError, match="sd_unet"):
        load_model_file("diffusion_models", models / "diffusion_models" / "other.safetensors")


def test_comfy_sd_loads_the_unet_from_a_file_and_from_tensors(models: Path) -> None:
    """comfy.sd's loaders (served to packs as ``comfy.sd``; GGUF's loader hands its tensors to the second)."""
    from hearth_comfy_compat import comfy_sd

    path = models / "diffusion_models" / "sd1-bare.safetensors"
    from_file = comfy_sd.load_diffusion_model(str(path))
    from_tensors = comfy_sd.load_diffusion_model_state_dict(load_state_dict(path),
                                                             metadata=dict(read_header(path).metadata))
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([2.0])
    cond = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(from_tensors.denoise(x, sigma, cond), from_file.denoise(x, sigma, cond),
                               rtol=0, atol=0)
    assert from_file.family == "sd1"
