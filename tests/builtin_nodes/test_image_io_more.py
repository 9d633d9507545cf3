"""SaveImage/PreviewImage truncate to 8 bits as ComfyUI does; LoadImageMask (channel choice) and LoadImageOutput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import call


@pytest.mark.parametrize(("node", "folder"), [("SaveImage", "output"), ("PreviewImage", "temp")])
def test_savers_truncate_like_comfyui(folders: Folders, node: str, folder: str) -> None:
    # k + 0.999 over 255: ComfyUI's np.clip(255. * x, 0, 255).astype(np.uint8) writes k; rounding would write k + 1.
    levels = torch.tensor([0.0, 10.0, 127.0, 200.0, 254.0])
    values = (levels + 0.999) / 255.0
    image = values[None, None, :, None].expand(1, 1, 5, 3).contiguous()
    (item,) = call(node, images=image, filename_prefix="trunc")["ui"]["images"]
    with Image.open(getattr(folders, folder) / item["filename"]) as png:
        written = np.asarray(png)[0, :, 0].tolist()
    expected = np.clip(255.0 * values.numpy(), 0, 255).astype(np.uint8).tolist()
    assert written == expected == [0, 10, 127, 200, 254]


def write_rgba(path: Path) -> np.ndarray:
    pixels = np.zeros((2, 3, 4), dtype=np.uint8)
    pixels[..., 0] = [[0, 51, 102], [153, 204, 255]]
    pixels[..., 1] = 17
    pixels[..., 2] = 255
    pixels[..., 3] = [[255, 128, 0], [0, 64, 255]]
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels


@pytest.mark.parametrize(("channel", "index", "invert"), [("alpha", 3, True), ("red", 0, False), ("green", 1, False),
                                                          ("blue", 2, False)])
def test_load_image_mask_takes_the_chosen_channel(folders: Folders, channel: str, index: int, invert: bool) -> None:
    pixels = write_rgba(folders.input / "m.png")
    (mask,) = call("LoadImageMask", image="m.png", channel=channel)
    expected = torch.from_numpy(pixels[..., index].astype(np.float32) / 255.0)
    assert mask.shape == (1, 2, 3) and mask.dtype == torch.float32
    assert torch.equal(mask[0], 1.0 - expected if invert else expected)


def test_load_image_mask_of_an_rgb_file_has_an_opaque_alpha(folders: Folders) -> None:
    Image.new("RGB", (3, 2), (10, 20, 30)).save(folders.input / "rgb.png")
    (alpha,) = call("LoadImageMask", image="rgb.png", channel="alpha")
    assert torch.equal(alpha, torch.zeros(1, 2, 3))  # RGBA conversion makes alpha 255: nothing masked
    (red,) = call("LoadImageMask", image="rgb.png", channel="red")
    assert torch.allclose(red, torch.full((1, 2, 3), 10 / 255))


def test_load_image_mask_errors(folders: Folders, run_prompt: Any) -> None:
    write_rgba(folders.input / "m.png")
    with pytest.raises(ValueError, match="input 'channel': 'purple' is not one of"):
        call("LoadImageMask", image="m.png", channel="purple")
    prompt = {"1": {"class_type": "LoadImageMask", "inputs": {"image": "gone.png", "channel": "red"}},
              "2": {"class_type": "MaskPreview", "inputs": {"mask": ["1", 0]}}}
    (error,) = run_prompt(prompt).validation.node_errors["1"]["errors"]
    assert error["details"].startswith("image - Invalid image file: gone.png")


def test_load_image_mask_through_the_executor(folders: Folders, run_prompt: Any) -> None:
    write_rgba(folders.input / "m.png")
    prompt = {"1": {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": "red"}},
              "2": {"class_type": "MaskPreview", "inputs": {"mask": ["1", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["2"]["images"]
    with Image.open(folders.temp / item["filename"]) as png:
        assert np.asarray(png.convert("L")).tolist() == [[0, 51, 102], [153, 204, 255]]


def test_load_image_output_reads_the_output_folder(folders: Folders, run_prompt: Any) -> None:
    Image.new("RGB", (3, 2), (255, 0, 0)).save(folders.output / "made.png")
    for name in ("made.png", "made.png [output]"):
        image, mask = call("LoadImageOutput", image=name)
        assert image.shape == (1, 2, 3, 3) and float(image[0, 0, 0, 0]) == 1.0
    prompt = {"1": {"class_type": "LoadImageOutput", "inputs": {"image": "made.png [output]"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    assert run_prompt(prompt).ok
    prompt["1"]["inputs"]["image"] = "missing.png"
    (error,) = run_prompt(prompt).validation.node_errors["1"]["errors"]
    assert "Invalid image file: missing.png [output]" in error["details"]
