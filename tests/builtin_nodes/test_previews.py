"""PreviewAny, ImageCompare and MaskPreview: what the browser receives (ComfyUI's ``ui`` shapes) and the files."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import call, gradient


@pytest.mark.parametrize(("source", "text"), [
    ("plain text", "plain text"), (3, "3"), (2.5, "2.5"), (True, "True"), (None, "None"),
    ({"a": [1, 2]}, json.dumps({"a": [1, 2]}, indent=4)), ([1, "x"], '[\n    1,\n    "x"\n]'),
])
def test_preview_any_text_as_comfyui_writes_it(source: Any, text: str) -> None:
    assert call("PreviewAny", source=source) == {"ui": {"text": (text,)}, "result": (text,)}


def test_preview_any_of_a_tensor_shows_six_edge_items_and_restores_print_options() -> None:
    (text,) = call("PreviewAny", source=torch.arange(2000))["result"]
    assert text == "tensor([   0,    1,    2,    3,    4,    5,  ..., 1994, 1995, 1996, 1997, 1998,\n        1999])"
    # The print options are back to torch's defaults afterwards (3 edge items).
    assert str(torch.arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"


def test_preview_any_through_the_executor(run_prompt: Any) -> None:
    prompt = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "hello"}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
              "3": {"class_type": "StringLength", "inputs": {"string": ["2", 0]}},
              "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs == {"2": {"text": ["hello"]}, "4": {"text": ["5"]}}


def test_image_compare_previews_both_images(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {"a": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 2, "color": 0xFF}},
              "b": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 0}},
              "c": {"class_type": "ImageCompare", "inputs": {"image_a": ["a", 0], "image_b": ["b", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    shown = result.outputs["c"]
    assert set(shown) == {"a_images", "b_images"} and len(shown["a_images"]) == 2 and len(shown["b_images"]) == 1
    for item in shown["a_images"] + shown["b_images"]:
        assert item["type"] == "temp" and item["filename"].startswith("comfy.compare.")
        assert (hearth_folders.temp / item["subfolder"] / item["filename"]).is_file()
    with Image.open(hearth_folders.temp / shown["a_images"][0]["filename"]) as png:
        assert png.getpixel((0, 0)) == (0, 0, 255)


def test_image_compare_with_one_image_and_a_bad_one(folders: Folders) -> None:
    shown = call("ImageCompare", image_a=gradient(2, 2))["ui"]
    assert len(shown["a_images"]) == 1 and shown["b_images"] == []
    with pytest.raises(ValueError, match=r"input 'image_b': expected an IMAGE \[batch, height, width, 3 or 4\]"):
        call("ImageCompare", image_b=torch.zeros(2, 2))


def test_mask_preview_writes_the_mask_as_grey(folders: Folders) -> None:
    mask = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    (item,) = call("MaskPreview", mask=mask)["ui"]["images"]
    assert item["type"] == "temp"
    with Image.open(folders.temp / item["filename"]) as png:
        pixels = np.asarray(png.convert("RGB"))
    # Truncated as ComfyUI's savers: 0.5 -> 127, 0.25 -> 63.
    assert pixels[..., 0].tolist() == [[0, 255], [127, 63]] and (pixels[..., 0] == pixels[..., 2]).all()
    with pytest.raises(ValueError, match="input 'mask': expected a MASK"):
        call("MaskPreview", mask=torch.zeros(3))
