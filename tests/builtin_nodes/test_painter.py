"""Painter: strokes composited by their alpha over a canvas or an image, the alpha as the mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import call


def write_strokes(path: Path, size: tuple[int, int] = (4, 2)) -> np.ndarray:
    pixels = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    pixels[..., 0] = 255  # red strokes
    pixels[0, :, 3] = [255, 128, 0, 64][: size[0]] if size[0] == 4 else 255
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels


def test_blank_canvas_in_the_background_colour(folders: Folders) -> None:
    result = call("Painter", mask="", width=64, height=128, bg_color="#0080ff")
    image, mask = result["result"]
    assert image.shape == (1, 128, 64, 3) and mask.shape == (1, 128, 64) and float(mask.abs().max()) == 0.0
    assert image[0, 0, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    assert len(result["ui"]["images"]) == 1


def test_strokes_over_a_canvas(folders: Folders) -> None:
    pixels = write_strokes(folders.input / "strokes.png")
    image, mask = call("Painter", mask="strokes.png [input]", width=4, height=2, bg_color="#00ff00")["result"]
    alpha = pixels[..., 3].astype(np.float32) / 255.0
    expected = np.stack([alpha, 1.0 - alpha, np.zeros_like(alpha)], axis=-1)  # red over green by alpha
    assert np.allclose(image[0].numpy(), expected, atol=1e-6)
    assert torch.equal(mask[0], torch.from_numpy(alpha))


def test_strokes_over_an_image_are_resized_to_it(folders: Folders) -> None:
    write_strokes(folders.input / "big.png", size=(8, 4))  # opaque first row, transparent second
    base = torch.full((2, 2, 4, 3), 0.25)
    image, mask = call("Painter", mask="big.png", width=512, height=512, image=base)["result"]
    assert image.shape == (1, 2, 4, 3) and mask.shape == (1, 2, 4)  # the image's size, its first frame
    with Image.open(folders.input / "big.png") as strokes:  # ComfyUI resizes with PIL's lanczos
        alpha = np.asarray(strokes.convert("RGBA").resize((4, 2), Image.LANCZOS))[..., 3] / 255.0
    assert np.allclose(mask[0].numpy(), alpha) and 0.4 < float(mask[0, 0, 0]) < 0.5  # rows 0-1 of 4 blended
    assert np.allclose(image[0, ..., 1].numpy(), 0.25 * (1 - alpha), atol=1e-6)


def test_painter_through_the_executor_and_errors(run_prompt: Any, folders: Folders) -> None:
    write_strokes(folders.input / "strokes.png")
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 0}},
              "2": {"class_type": "Painter", "inputs": {"image": ["1", 0], "mask": "strokes.png [input]",
                                                        "width": 512, "height": 512, "bg_color": "#000000"}},
              "3": {"class_type": "MaskPreview", "inputs": {"mask": ["2", 1]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert len(result.outputs["2"]["images"]) == 1 and len(result.outputs["3"]["images"]) == 1
    with pytest.raises(ValueError, match="input 'mask': no painted strokes file 'gone.png'"):
        call("Painter", mask="gone.png", width=64, height=64)
    with pytest.raises(ValueError, match="input 'image': expected an IMAGE"):
        call("Painter", mask="", width=64, height=64, image=torch.zeros(2, 2))
