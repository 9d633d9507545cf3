"""ImageCompositeMasked, JoinImageWithAlpha, SplitImageWithAlpha, PorterDuffImageComposite: hand-computed results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_composite import (
    PORTER_DUFF_MODES,
    ImageCompositeMasked,
    JoinImageWithAlpha,
    PorterDuffImageComposite,
    SplitImageWithAlpha,
)
from hearth.core.context import Folders


def paste(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, resize: bool = False,
          mask: torch.Tensor | None = None) -> torch.Tensor:
    return ImageCompositeMasked().composite(destination, source, x, y, resize, mask)[0]


def test_composite_pastes_the_source_at_x_y_and_cuts_it_at_the_edge() -> None:
    out = paste(torch.zeros(1, 4, 5, 3), torch.ones(1, 3, 3, 3), 3, 2)
    expected = torch.zeros(1, 4, 5, 3)
    expected[:, 2:, 3:] = 1.0
    assert torch.equal(out, expected)
    assert torch.equal(paste(torch.zeros(1, 4, 5, 3), torch.ones(1, 3, 3, 3), 9, 9), torch.zeros(1, 4, 5, 3))


def test_composite_blends_through_the_mask_resized_to_the_source() -> None:
    mask = torch.tensor([[0.0, 1.0]])  # 1x2, bilinear-stretched over the 2x4 source: 0, 0.25, 0.75, 1 per row
    out = paste(torch.zeros(1, 2, 4, 3), torch.ones(1, 2, 4, 3), 0, 0, mask=mask)
    assert torch.allclose(out[0, :, :, 0], torch.tensor([[0.0, 0.25, 0.75, 1.0]] * 2))


def test_composite_repeats_the_source_batch_and_resizes_on_request() -> None:
    destination = torch.zeros(3, 4, 4, 3)
    out = paste(destination, torch.ones(1, 2, 2, 3), 0, 0, resize=True)
    assert out.shape == (3, 4, 4, 3) and torch.all(out == 1.0)
    assert torch.all(destination == 0.0)  # the destination input is left untouched


def test_composite_gives_an_rgb_source_opaque_alpha_on_an_rgba_destination() -> None:
    out = paste(torch.zeros(1, 2, 2, 4), torch.full((1, 1, 1, 3), 0.5), 1, 1)
    assert out.shape == (1, 2, 2, 4) and torch.equal(out[0, 1, 1], torch.tensor([0.5, 0.5, 0.5, 1.0]))


def test_join_and_split_alpha_round_trip_as_masks() -> None:
    image = torch.rand(2, 4, 4, 3)
    mask = torch.rand(2, 4, 4)
    (rgba,) = JoinImageWithAlpha().join_image_with_alpha(image, mask)
    assert rgba.shape == (2, 4, 4, 4) and torch.allclose(rgba[..., 3], 1.0 - mask)
    rgb, back = SplitImageWithAlpha().split_image_with_alpha(rgba)
    assert torch.equal(rgb, image) and torch.allclose(back, mask, atol=1e-6)


def test_join_resizes_the_mask_and_keeps_the_shorter_batch() -> None:
    (rgba,) = JoinImageWithAlpha().join_image_with_alpha(torch.rand(3, 4, 6, 3), torch.zeros(2, 2, 2))
    assert rgba.shape == (2, 4, 6, 4) and torch.all(rgba[..., 3] == 1.0)


def test_split_of_an_rgb_image_is_fully_opaque() -> None:
    rgb, mask = SplitImageWithAlpha().split_image_with_alpha(torch.rand(1, 2, 2, 3))
    assert rgb.shape == (1, 2, 2, 3) and torch.all(mask == 0.0)


@pytest.mark.parametrize(("mode", "colour", "alpha"), [
    # Source: colour 0.8, alpha 0.5 (mask 0.5); destination: colour 0.4, opaque (mask 0).
    ("SRC_OVER", 0.6, 1.0),  # 0.8 * 0.5 + 0.5 * 0.4 over alpha 1
    ("DST_OVER", 0.4, 1.0),
    ("SRC", 0.8, 0.5), ("DST", 0.4, 1.0),
    ("SRC_IN", 0.8, 0.5), ("DST_IN", 0.4, 0.5),
    ("SRC_OUT", 0.0, 0.0), ("DST_OUT", 0.4, 0.5),
    ("SRC_ATOP", 0.6, 1.0), ("DST_ATOP", 0.4, 0.5),
    ("XOR", 0.4, 0.5), ("CLEAR", 0.0, 0.0),
    ("ADD", 0.8, 1.0),  # premultiplied 0.4 + 0.4, alpha min(1.5, 1)
    ("MULTIPLY", 0.32, 0.5),  # 0.4 * 0.4 / 0.5
    ("SCREEN", 0.64, 1.0),  # 0.4 + 0.4 - 0.16
])
def test_porter_duff_modes(mode: str, colour: float, alpha: float) -> None:
    image, mask = PorterDuffImageComposite().composite(
        torch.full((1, 2, 2, 3), 0.8), torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2, 3), 0.4),
        torch.zeros(1, 2, 2), mode)
    assert torch.allclose(image, torch.full((1, 2, 2, 3), colour), atol=1e-6)
    assert torch.allclose(mask, torch.full((1, 2, 2), 1.0 - alpha), atol=1e-6)


def test_porter_duff_resizes_to_the_destination_and_uses_the_shortest_batch() -> None:
    image, mask = PorterDuffImageComposite().composite(
        torch.full((3, 2, 2, 3), 0.8), torch.zeros(3, 2, 2), torch.full((2, 4, 6, 3), 0.4), torch.zeros(1, 2, 3),
        "SRC_OVER")
    assert image.shape == (1, 4, 6, 3) and mask.shape == (1, 4, 6)
    assert torch.allclose(image, torch.full_like(image, 0.8), atol=1e-6)
    assert sorted(PORTER_DUFF_MODES) == PORTER_DUFF_MODES  # ComfyUI lists them alphabetically


def test_porter_duff_refuses_mismatched_channels() -> None:
    with pytest.raises(ValueError, match="source: has 4 channels and destination 3"):
        PorterDuffImageComposite().composite(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, 3),
                                             torch.zeros(1, 2, 2), "SRC")


def test_composite_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 6, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 2, "batch_size": 1, "color": 0xFFFFFF}},
        "3": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 2, "height": 2}},
        "4": {"class_type": "ImageCompositeMasked", "inputs": {"destination": ["1", 0], "source": ["2", 0], "x": 3,
                                                               "y": 1, "resize_source": False, "mask": ["3", 0]}},
        "5": {"class_type": "SplitImageWithAlpha", "inputs": {"image": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "pasted"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["6"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        pixels = np.asarray(png)[..., 0]
    expected = np.zeros((4, 6), dtype=np.uint8)
    expected[1:3, 3:5] = 255
    np.testing.assert_array_equal(pixels, expected)
