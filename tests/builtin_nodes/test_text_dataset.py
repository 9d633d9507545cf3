"""The dataset text and folder nodes: text transforms mapped over caption lists, image/caption folders loaded
(kohya repeats) and saved, through the real executor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import call


@pytest.mark.parametrize(("node", "options", "expected"), [
    ("TextToLowercase", {}, " a cat, red "),
    ("TextToUppercase", {}, " A CAT, RED "),
    ("TruncateText", {"max_length": 4}, " a C"),
    ("AddTextPrefix", {"prefix": "photo of"}, "photo of a Cat, RED "),
    ("AddTextSuffix", {"suffix": "!"}, " a Cat, RED !"),
    ("ReplaceText", {"find": "Cat", "replace": "dog"}, " a dog, RED "),
    ("StripWhitespace", {}, "a Cat, RED"),
])
def test_text_transforms(node: str, options: dict[str, Any], expected: str) -> None:
    assert call(node, texts=" a Cat, RED ", **options) == (expected,)
    with pytest.raises(ValueError, match="input 'texts': expected a STRING, got list"):
        call(node, texts=["x"], **options)


def write_dataset(folders: Folders) -> None:
    root = folders.input / "set"
    (root / "3_cats").mkdir(parents=True)
    Image.new("RGB", (4, 2), (255, 0, 0)).save(root / "b.png")
    (root / "b.txt").write_text("  red  \n", encoding="utf-8")
    Image.new("RGB", (2, 2), (0, 0, 255)).save(root / "a.jpg")
    Image.new("RGB", (3, 3), (0, 255, 0)).save(root / "3_cats" / "c.webp", lossless=True)
    (root / "3_cats" / "c.txt").write_text("green", encoding="utf-8")
    (root / "notes.md").write_text("ignored", encoding="utf-8")


def test_load_image_text_dataset_with_kohya_repeats(folders: Folders) -> None:
    write_dataset(folders)
    images, texts = call("LoadImageTextDataSetFromFolder", folder="set")
    assert [tuple(i.shape) for i in images] == [(1, 2, 2, 3), (1, 2, 4, 3)] + [(1, 3, 3, 3)] * 3
    assert texts == ["", "red", "green", "green", "green"]
    assert images[1][0, 0, 0].tolist() == [1.0, 0.0, 0.0]
    (only,) = call("LoadImageDataSetFromFolder", folder="set")[0][:1]
    assert only.shape == (1, 2, 2, 3)


def test_load_dataset_errors(folders: Folders) -> None:
    (folders.input / "empty").mkdir()
    with pytest.raises(ValueError, match="input 'folder': no .png, .jpg, .jpeg or .webp images"):
        call("LoadImageDataSetFromFolder", folder="empty")
    with pytest.raises(ValueError, match="input 'folder': no folder 'missing'"):
        call("LoadImageDataSetFromFolder", folder="missing")
    with pytest.raises(ValueError, match="leaves the input folder"):
        call("LoadImageDataSetFromFolder", folder="../..")


def test_dataset_round_trip_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    write_dataset(hearth_folders)
    prompt = {"load": {"class_type": "LoadImageTextDataSetFromFolder", "inputs": {"folder": "set"}},
              "up": {"class_type": "TextToUppercase", "inputs": {"texts": ["load", 1]}},
              "pre": {"class_type": "AddTextPrefix", "inputs": {"texts": ["up", 0], "prefix": "a "}},
              "save": {"class_type": "SaveImageTextDataSetToFolder",
                       "inputs": {"images": ["load", 0], "texts": ["pre", 0], "folder_name": "out/set",
                                  "filename_prefix": "img"}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    folder = hearth_folders.output / "out" / "set"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"img_{i:05d}.png" for i in range(5)] + [f"img_{i:05d}.txt" for i in range(5)])
    assert [(folder / f"img_{i:05d}.txt").read_text() for i in range(5)] == ["a ", "a RED"] + ["a GREEN"] * 3
    with Image.open(folder / "img_00001.png") as png:
        assert png.size == (4, 2) and png.getpixel((0, 0)) == (255, 0, 0)


def test_save_image_dataset_truncates_and_stays_in_output(folders: Folders) -> None:
    image = torch.full((1, 1, 1, 3), 0.999 / 255 + 100 / 255)
    call("SaveImageDataSetToFolder", images=[image], folder_name=["d"], filename_prefix=["x"])
    with Image.open(folders.output / "d" / "x_00000.png") as png:
        assert np.asarray(png)[0, 0].tolist() == [100, 100, 100]
    with pytest.raises(ValueError, match="input 'folder_name': '../up' would save outside the output folder"):
        call("SaveImageDataSetToFolder", images=[image], folder_name=["../up"], filename_prefix=["x"])


def test_merge_text_lists(run_prompt: Any) -> None:
    assert call("MergeTextLists", texts=["a", "b"]) == (["a", "b"],)
    prompt = {"a": {"class_type": "PrimitiveString", "inputs": {"value": "one"}},
              "b": {"class_type": "PrimitiveString", "inputs": {"value": "two"}},
              "l": {"class_type": "CreateList", "inputs": {"inputs.input0": ["a", 0], "inputs.input1": ["b", 0]}},
              "m": {"class_type": "MergeTextLists", "inputs": {"texts": ["l", 0]}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["m", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["p"] == {"text": ["one", "two"]}
