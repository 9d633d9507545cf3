"""Geometry and batch nodes (GetImageSize, ImageFlip, ImageRotate, ImageStitch, ImageCropV2, ImageFromBatch,
RepeatImageBatch, RebatchImages, ImageAddNoise): against numpy and hand-computed results, and ComfyUI's rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_transform import (
    GetImageSize,
    ImageAddNoise,
    ImageCropV2,
    ImageFlip,
    ImageFromBatch,
    ImageRotate,
    ImageStitch,
    PrimitiveBoundingBox,
    RebatchImages,
    RepeatImageBatch,
)
from hearth.core.context import Folders
from hearth.core.images import upscale
from tests.builtin_nodes.conftest import ramp


def test_get_image_size_reports_width_height_batch() -> None:
    assert GetImageSize().get_size(ramp(4, 6, batch=3)) == (6, 4, 3)
    with pytest.raises(ValueError, match=r"image: expected an IMAGE \[batch, height, width, channels\]"):
        GetImageSize().get_size(torch.zeros(4, 6))


def test_flip_matches_numpy() -> None:
    image = ramp(4, 6)
    (down,) = ImageFlip().flip(image, "x-axis: vertically")
    (across,) = ImageFlip().flip(image, "y-axis: horizontally")
    np.testing.assert_array_equal(down.numpy(), image.numpy()[:, ::-1])
    np.testing.assert_array_equal(across.numpy(), image.numpy()[:, :, ::-1])


@pytest.mark.parametrize(("rotation", "turns"), [("none", 0), ("90 degrees", 1), ("180 degrees", 2),
                                                 ("270 degrees", 3)])
def test_rotate_turns_clockwise(rotation: str, turns: int) -> None:
    image = ramp(4, 6)
    (out,) = ImageRotate().rotate(image, rotation)
    # numpy's rot90 turns counter-clockwise; -turns is clockwise, as ComfyUI's rotation is.
    np.testing.assert_array_equal(out.numpy(), np.rot90(image.numpy(), k=-turns, axes=(1, 2)))
    if turns == 1:
        marked = torch.zeros(1, 2, 3, 3)
        marked[0, 0, 0] = 1.0  # top-left goes to top-right on a clockwise quarter turn
        (turned,) = ImageRotate().rotate(marked, rotation)
        assert turned.shape == (1, 3, 2, 3) and float(turned[0, 0, 1, 0]) == 1.0


def test_stitch_without_image2_passes_image1() -> None:
    image = ramp(4, 6)
    assert ImageStitch().stitch(image, "right", True, 0, "white")[0] is image


@pytest.mark.parametrize(("direction", "order", "axis"), [("right", (0, 1), 2), ("left", (1, 0), 2),
                                                          ("down", (0, 1), 1), ("up", (1, 0), 1)])
def test_stitch_places_image2_on_the_chosen_side(direction: str, order: tuple[int, int], axis: int) -> None:
    images = (torch.zeros(1, 4, 4, 3), torch.ones(1, 4, 4, 3))
    (out,) = ImageStitch().stitch(images[0], direction, False, 0, "white", images[1])
    assert torch.equal(out, torch.cat([images[order[0]], images[order[1]]], dim=axis))


def test_stitch_matching_size_resizes_image2_with_lanczos() -> None:
    image1, image2 = torch.zeros(1, 4, 6, 3), ramp(8, 4)
    (out,) = ImageStitch().stitch(image1, "right", True, 0, "white", image2)
    # Height 4 kept; width int(4 * 4 / 8) = 2.
    assert out.shape == (1, 4, 8, 3)
    assert torch.equal(out[:, :, 6:], upscale(image2, 2, 4, "lanczos"))


def test_stitch_pads_the_smaller_image_and_adds_a_coloured_band() -> None:
    image1, image2 = torch.zeros(1, 4, 2, 3), torch.zeros(1, 2, 2, 4)
    (out,) = ImageStitch().stitch(image1, "right", False, 3, "red", image2)
    # Spacing 3 is made even (4); RGB image1 gains opaque alpha; image2 padded by one row each side (black for a
    # coloured band, as ComfyUI).
    assert out.shape == (1, 4, 8, 4)
    assert torch.equal(out[0, :, 2:6], torch.tensor([1.0, 0.0, 0.0, 1.0]).expand(4, 4, 4))
    assert torch.all(out[0, :, :2, 3] == 1.0)
    assert torch.all(out[0, 0, 6:] == 0.0) and torch.all(out[0, 3, 6:] == 0.0)


def test_stitch_repeats_the_last_image_of_the_shorter_batch() -> None:
    image1 = torch.stack([torch.zeros(2, 2, 3), torch.ones(2, 2, 3)])
    image2 = torch.full((1, 2, 2, 3), 0.5)
    (out,) = ImageStitch().stitch(image1, "down", False, 0, "black", image2)
    assert out.shape == (2, 4, 2, 3) and torch.all(out[1, 2:] == 0.5)


def test_crop_v2_takes_a_bounding_box() -> None:
    image = ramp(8, 12, batch=2)
    (box,) = PrimitiveBoundingBox().box(2, 4, 5, 3)
    (out,) = ImageCropV2().crop(image, box)
    assert torch.equal(out, image[:, 4:7, 2:7])
    (edge,) = ImageCropV2().crop(image, {"x": 100, "y": 100, "width": 4, "height": 4})
    assert edge.shape == (2, 1, 1, 3)  # the origin pulled back to the last pixel, as ComfyUI's ImageCrop
    with pytest.raises(ValueError, match="crop_region.width: expected a whole number >= 1"):
        ImageCropV2().crop(image, {"x": 0, "y": 0, "width": 0, "height": 2})


@pytest.mark.parametrize(("index", "length", "picked"), [(0, 1, [0]), (1, 2, [1, 2]), (3, 5, [3]), (9, 1, [3]),
                                                         (-1, 1, [3]), (-2, 4, [2, 3]), (-9, 2, [0, 1])])
def test_image_from_batch_clamps_like_comfyui(index: int, length: int, picked: list[int]) -> None:
    image = ramp(2, 2, batch=4)
    (out,) = ImageFromBatch().frombatch(image, index, length)
    assert torch.equal(out, image[picked])


def test_repeat_image_batch_repeats_the_whole_batch() -> None:
    image = ramp(2, 2, batch=2)
    (out,) = RepeatImageBatch().repeat(image, 3)
    assert torch.equal(out, torch.cat([image, image, image]))


def test_rebatch_regroups_in_order() -> None:
    a, b = ramp(2, 2, batch=3), ramp(2, 2, batch=2) + 1
    (out,) = RebatchImages().rebatch([a, b], [2])
    assert [item.shape[0] for item in out] == [2, 2, 1]
    assert torch.equal(torch.cat(out), torch.cat([a, b]))
    with pytest.raises(ValueError, match="images: images of different sizes cannot share a batch"):
        RebatchImages().rebatch([a, ramp(3, 3)], [4])


def test_add_noise_uses_the_seeded_cpu_generator() -> None:
    image = torch.full((1, 4, 4, 3), 0.5)
    (out,) = ImageAddNoise().add_noise(image, 42, 0.1)
    expected = torch.clip(image + 0.1 * torch.randn(image.size(), generator=torch.Generator().manual_seed(42)), 0, 1)
    assert torch.equal(out, expected)
    assert torch.equal(ImageAddNoise().add_noise(image, 42, 0.1)[0], out)
    assert not torch.equal(ImageAddNoise().add_noise(image, 43, 0.1)[0], out)
    (strong,) = ImageAddNoise().add_noise(image, 1, 1.0)
    assert float(strong.min()) >= 0.0 and float(strong.max()) <= 1.0


def test_flip_rotate_stitch_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 0x00FF00}},
        "3": {"class_type": "ImageStitch", "inputs": {"image1": ["1", 0], "image2": ["2", 0], "direction": "down",
                                                      "match_image_size": True, "spacing_width": 0,
                                                      "spacing_color": "white"}},
        "4": {"class_type": "ImageRotate", "inputs": {"image": ["3", 0], "rotation": "90 degrees"}},
        "5": {"class_type": "ImageFlip", "inputs": {"image": ["4", 0], "flip_method": "y-axis: horizontally"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "turned"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["6"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        # Red above green, turned clockwise (red on the right), then mirrored: red on the left.
        assert png.size == (4, 4)
        assert png.getpixel((0, 0)) == (255, 0, 0) and png.getpixel((3, 3)) == (0, 255, 0)
