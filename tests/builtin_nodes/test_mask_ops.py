"""Mask nodes: values against hand-computed results and scipy (which ComfyUI's GrowMask calls)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from hearth.core.builtin_nodes.mask_ops import (
    CropMask,
    FeatherMask,
    GrowMask,
    ImageColorToMask,
    ImageToMask,
    InvertMask,
    MaskComposite,
    MaskToImage,
    SolidMask,
    ThresholdMask,
)
from hearth.core.context import Folders


def test_image_to_mask_takes_one_channel() -> None:
    image = torch.rand(2, 3, 4, 4)
    for index, channel in enumerate(["red", "green", "blue", "alpha"]):
        assert torch.equal(ImageToMask().image_to_mask(image, channel)[0], image[..., index])
    with pytest.raises(ValueError, match="channel: the image has 3 channels and no alpha one"):
        ImageToMask().image_to_mask(image[..., :3], "alpha")


def test_mask_to_image_is_grey_rgb_and_takes_a_lone_mask() -> None:
    mask = torch.rand(3, 5)
    (image,) = MaskToImage().mask_to_image(mask)
    assert image.shape == (1, 3, 5, 3) and torch.equal(image[0, ..., 1], mask)


def test_image_color_to_mask_matches_the_rounded_colour() -> None:
    image = torch.zeros(1, 2, 2, 3)
    image[0, 0, 0] = torch.tensor([0x12, 0x34, 0x56]) / 255.0
    image[0, 1, 1] = torch.tensor([0x12, 0x34, 0x57]) / 255.0
    image[0, 0, 1] = torch.tensor([0x12 + 0.4, 0x34 - 0.4, 0x56]) / 255.0  # rounds to the same bytes
    (mask,) = ImageColorToMask().image_to_mask(image, 0x123456)
    assert torch.equal(mask, torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]))


def test_solid_and_invert() -> None:
    (solid,) = SolidMask().solid(0.25, 3, 2)
    assert solid.shape == (1, 2, 3) and torch.all(solid == 0.25)
    assert torch.all(InvertMask().invert(solid)[0] == 0.75)


def test_crop_mask_cuts_at_the_edges_and_refuses_an_empty_crop() -> None:
    mask = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    (out,) = CropMask().crop(mask, 1, 1, 10, 1)
    assert torch.equal(out, mask[:, 1:2, 1:])
    with pytest.raises(ValueError, match=r"x, y: \(4, 0\) lies outside the 4x3 mask"):
        CropMask().crop(mask, 4, 0, 1, 1)


@pytest.mark.parametrize(("operation", "expected"), [
    ("multiply", [0.0, 0.2, 0.36]), ("add", [0.6, 0.9, 1.0]), ("subtract", [0.6, 0.0, 0.0]),
    # Logical: each value rounded first -- 0.6 -> 1, 0.4 -> 0, and 0.5 -> 0, torch rounding halves to even.
    ("and", [0.0, 0.0, 1.0]), ("or", [1.0, 0.0, 1.0]), ("xor", [1.0, 0.0, 0.0]),
])
def test_mask_composite_operations(operation: str, expected: list[float]) -> None:
    destination = torch.tensor([[[0.6, 0.4, 0.6]]])
    source = torch.tensor([[[0.0, 0.5, 0.6]]])
    (out,) = MaskComposite().combine(destination, source, 0, 0, operation)
    assert torch.allclose(out, torch.tensor([[expected]]), atol=1e-6)


def test_mask_composite_places_the_source_and_cuts_it() -> None:
    destination = torch.zeros(1, 4, 4)
    source = torch.ones(3, 3)
    (out,) = MaskComposite().combine(destination, source, 2, 1, "add")
    expected = torch.zeros(1, 4, 4)
    expected[0, 1:, 2:] = 1.0
    assert torch.equal(out, expected)
    (outside,) = MaskComposite().combine(destination, source, 9, 9, "add")
    assert torch.equal(outside, destination)


def test_mask_composite_refuses_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="source: a batch of 2 masks cannot combine with destination's 3"):
        MaskComposite().combine(torch.zeros(3, 2, 2), torch.zeros(2, 2, 2), 0, 0, "add")


def test_feather_mask_ramps_as_comfyui_indexes_them() -> None:
    (out,) = FeatherMask().feather(torch.ones(1, 1, 6), 2, 0, 3, 0)
    # Left ramp: columns 0, 1 times 1/2, 2/2. Right ramp, indexed -0, -1, -2: column 0 (!) times 1/3, the last
    # column 2/3, the one before 3/3.
    expected = torch.tensor([0.5 / 3, 1.0, 1.0, 1.0, 1.0, 2 / 3])
    assert torch.allclose(out[0, 0], expected)
    (rows,) = FeatherMask().feather(torch.ones(4, 1), 0, 4, 0, 0)
    assert torch.allclose(rows[0, :, 0], torch.tensor([0.25, 0.5, 0.75, 1.0]))


@pytest.mark.parametrize("tapered", [True, False])
@pytest.mark.parametrize("expand", [1, 3, -1, -2])
def test_grow_mask_matches_scipy(expand: int, tapered: bool) -> None:
    masks = (torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(7)) > 0.7).float()
    masks[1] = torch.rand(9, 11, generator=torch.Generator().manual_seed(8))
    (out,) = GrowMask().expand_mask(masks, expand, tapered)
    corner = 0 if tapered else 1
    footprint = np.array([[corner, 1, corner], [1, 1, 1], [corner, 1, corner]])
    for b in range(2):
        expected = masks[b].numpy()
        for _ in range(abs(expand)):
            grow = scipy.ndimage.grey_dilation if expand > 0 else scipy.ndimage.grey_erosion
            expected = grow(expected, footprint=footprint)
        np.testing.assert_array_equal(out[b].numpy(), expected)


def test_grow_mask_zero_and_huge_expand() -> None:
    dot = torch.zeros(1, 5, 5)
    dot[0, 2, 2] = 1.0
    assert torch.equal(GrowMask().expand_mask(dot, 0, True)[0], dot)
    assert torch.all(GrowMask().expand_mask(dot, 16384, True)[0] == 1.0)  # stops once nothing changes
    assert torch.all(GrowMask().expand_mask(dot, -16384, False)[0] == 0.0)


def test_threshold_is_strictly_above() -> None:
    (out,) = ThresholdMask().image_to_mask(torch.tensor([[[0.2, 0.5, 0.7]]]), 0.5)
    assert torch.equal(out, torch.tensor([[[0.0, 0.0, 1.0]]]))


def test_mask_nodes_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 8, "height": 8}},
        "2": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 2, "height": 2}},
        "3": {"class_type": "MaskComposite", "inputs": {"destination": ["1", 0], "source": ["2", 0], "x": 3, "y": 3,
                                                        "operation": "add"}},
        "4": {"class_type": "GrowMask", "inputs": {"mask": ["3", 0], "expand": 1, "tapered_corners": False}},
        "5": {"class_type": "InvertMask", "inputs": {"mask": ["4", 0]}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 0]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "mask"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["7"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        pixels = np.asarray(png)[..., 0]
    expected = np.full((8, 8), 255, dtype=np.uint8)
    expected[2:6, 2:6] = 0  # the 2x2 square grown by one pixel each way, inverted
    np.testing.assert_array_equal(pixels, expected)
