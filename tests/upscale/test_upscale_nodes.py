"""UpscaleModelLoader and ImageUpscaleWithModel: ComfyUI's tile grid and blend, OOM halving, the real executor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hearth_upscale import tiny
from hearth_upscale.nodes_upscale import ImageUpscaleWithModel, UpscaleModelLoader
from hearth_upscale.plugin import register_tiny_models
from hearth_upscale.tiling import tile_count, tiled_scale
from PIL import Image

from hearth.core.model_folders import write_tiny_model
from hearth.core.models import default_manager


class Recorder:
    """A stand-in model that records each tile it gets; ``fn`` maps a tile to its upscaled output."""

    def __init__(self, fn, scale=2, channels=3):
        self.fn, self.scale, self.input_channels, self.output_channels = fn, scale, channels, channels
        self.tiles: list[tuple[int, int]] = []

    def __call__(self, x):
        self.tiles.append((x.shape[2], x.shape[3]))
        return self.fn(x)


def test_tile_origins_and_sizes_are_comfyuis():
    model = Recorder(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
    tiled_scale(torch.rand(1, 3, 20, 40), model, tile=16, overlap=4, scale=2, out_channels=3)
    # x: range(0, 36, 12) = 0, 12, 24 -> widths 16, 16, 16; y: range(0, 16, 12) = 0, 12 -> heights 16, 8.
    assert model.tiles == [(16, 16), (16, 16), (16, 16), (8, 16), (8, 16), (8, 16)]
    assert tile_count(40, 20, 16, 4) == 6 and tile_count(512, 512, 512, 32) == 1


def test_a_model_without_context_gives_the_same_image_tiled_as_whole():
    def pointwise(x):  # each output pixel depends on one input pixel only: the tiles must blend back exactly
        return F.interpolate(torch.sin(x * 3.0) * 0.5 + 0.5, scale_factor=3, mode="nearest")

    x = torch.rand(2, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    tiled = tiled_scale(x, Recorder(pointwise), tile=16, overlap=5, scale=3, out_channels=3)
    assert (tiled - pointwise(x)).abs().max() <= 1e-5


def test_overlapping_tiles_blend_with_linear_feathering():
    calls = []

    def constant(x):  # tile k answers k + 1 everywhere
        calls.append(1)
        return torch.full((1, 1, x.shape[2], x.shape[3]), float(len(calls)))

    out = tiled_scale(torch.zeros(1, 1, 8, 28), Recorder(constant, scale=1, channels=1), tile=16, overlap=4, scale=1,
                      out_channels=1)
    # Tiles [0, 16) and [12, 28): over x = 12..15 tile 1 fades 4/4, 3/4, 2/4, 1/4 and tile 2 rises 1/4 ... 4/4.
    expected = [(1 * a + 2 * b) / (a + b) for a, b in ((1, .25), (.75, .5), (.5, .75), (.25, 1))]
    row = out[0, 0, 3]
    assert torch.allclose(row[12:16], torch.tensor(expected), atol=1e-6)
    assert torch.all(row[:12] == 1) and torch.all(row[16:] == 2)


def test_a_real_model_tiled_stays_close_to_whole(tmp_path):
    from hearth_upscale.model import load_upscale_model

    path = tmp_path / "c.safetensors"
    tiny.write_compact(path)
    model = load_upscale_model(path)
    img = torch.rand(1, 30, 26, 3, generator=torch.Generator().manual_seed(2))
    (whole,) = ImageUpscaleWithModel().upscale(model, img)
    (tiled,) = ImageUpscaleWithModel().upscale(model, img, tile=16, overlap=8)
    assert whole.shape == tiled.shape == (1, 120, 104, 3)
    # Only tile borders lack context, and the feathering weighs them least.
    assert (whole - tiled).abs().mean() < 1e-3


def test_an_image_with_other_channels_or_shape_is_refused_by_name(tmp_path):
    from hearth_upscale.model import load_upscale_model

    path = tmp_path / "c.safetensors"
    tiny.write_compact(path)
    model = load_upscale_model(path)
    with pytest.raises(ValueError, match="ImageUpscaleWithModel: .* takes 3-channel images, the image has 4"):
        ImageUpscaleWithModel().upscale(model, torch.rand(1, 8, 8, 4))
    with pytest.raises(ValueError, match=r"image must be an IMAGE \[batch, height, width, channels\]"):
        ImageUpscaleWithModel().upscale(model, torch.rand(8, 8, 3))


def test_out_of_memory_halves_the_tile_until_it_fits(monkeypatch):
    def fussy(x):
        if max(x.shape[2:]) > 256:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return F.interpolate(x, scale_factor=2, mode="nearest")

    model = Recorder(fussy)
    monkeypatch.setattr(default_manager(), "load", lambda *a, **k: None)
    model.patcher, model.device = None, torch.device("cpu")
    img = torch.rand(1, 600, 300, 3)
    (out,) = ImageUpscaleWithModel().upscale(model, img)
    assert out.shape == (1, 1200, 600, 3)
    assert model.tiles[0] == (512, 300) and max(max(t) for t in model.tiles[1:]) <= 256
    small = Recorder(lambda x: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")))
    small.patcher, small.device = None, torch.device("cpu")
    with pytest.raises(MemoryError, match="ImageUpscaleWithModel: out of device memory even with 128-pixel tiles"):
        ImageUpscaleWithModel().upscale(small, img)


def test_schema_is_comfyuis(hearth_runtime):
    assert UpscaleModelLoader.RETURN_TYPES == ("UPSCALE_MODEL",) and UpscaleModelLoader.CATEGORY == "loaders"
    assert ImageUpscaleWithModel.INPUT_TYPES() == {"required": {"upscale_model": ("UPSCALE_MODEL",),
                                                                "image": ("IMAGE",)}}
    assert ImageUpscaleWithModel.CATEGORY == "image/upscaling"
    info = hearth_runtime.nodes["ImageUpscaleWithModel"].object_info()
    assert info["input"]["required"]["upscale_model"] == ["UPSCALE_MODEL"] and info["output"] == ["IMAGE"]
    assert hearth_runtime.nodes["UpscaleModelLoader"].object_info()["category"] == "loaders"


def test_spandrel_style_to_loads_through_the_model_manager(tmp_path):
    from hearth_upscale.model import load_upscale_model

    path = tmp_path / "c.safetensors"
    tiny.write_compact(path)
    model = load_upscale_model(path)
    default_manager().unload(model.patcher)
    assert model.to(model.device) is model and default_manager().is_loaded(model.patcher)
    assert model.eval() is model and model.to("meta") is model and model.dtype == torch.float32


def test_tiny_models_hook_writes_loadable_files(tmp_path):
    models = register_tiny_models()
    assert {m.kind for m in models.values()} == {"upscale_models"}
    for name in models:
        path = tmp_path / models[name].filename
        write_tiny_model(models, name, path, seed=0)
        first = path.read_bytes()
        write_tiny_model(models, name, path, seed=0)
        assert path.read_bytes() == first


def test_load_image_upscale_save_through_the_executor(hearth_runtime, run_prompt):
    folder = hearth_runtime.model_folders.folders("upscale_models")[0]
    tiny.write_realesrgan_x2(folder / "tiny-realesrgan-x2.safetensors")
    pixels = (np.random.default_rng(0).random((10, 14, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(hearth_runtime.folders.input / "small.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "small.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "tiny-realesrgan-x2.safetensors"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "up/x2"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (entry,) = result.outputs["4"]["images"]
    with Image.open(hearth_runtime.folders.output / "up" / entry["filename"]) as saved:
        assert saved.size == (28, 20)
        saved_pixels = np.asarray(saved, dtype=np.float32) / 255
    model = UpscaleModelLoader().load_model("tiny-realesrgan-x2.safetensors")[0]
    assert default_manager().is_loaded(model.patcher)
    direct = model(torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]).clamp(0, 1)
    expected = direct[0].permute(1, 2, 0).numpy()
    assert np.abs(saved_pixels - expected).max() <= 1 / 255 + 1e-6


def test_a_checkpoint_in_upscale_models_fails_the_prompt_with_a_clear_error(hearth_runtime, run_prompt):
    from hearth.core.models import write_safetensors

    folder = hearth_runtime.model_folders.folders("upscale_models")[0]
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors({"model.diffusion_model.out.2.weight": torch.zeros(4, 4, 3, 3)}, folder / "sd15.safetensors")
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "sd15.safetensors"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    result = run_prompt(prompt)
    assert not result.ok
    assert "sd15.safetensors is not an upscale model" in result.error["exception_message"]
    assert "models/checkpoints" in result.error["exception_message"]
