"""ImageCropToMask: the crop box computed by hand from ComfyUI's rules, the composite against numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_subject import ImageCropToMask, parse_colour
from hearth.core.context import Folders
from hearth.core.images import resize_bchw


def scene() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 40, 60)
    mask[0, 10:20, 30:50] = 1.0  # a 20 x 10 subject
    return image, mask


def expected_crop(image: torch.Tensor, mask: torch.Tensor, box: tuple[int, int, int, int],
                  colour: tuple[float, float, float], size: tuple[int, int]) -> torch.Tensor:
    left, top, right, bottom = box
    rgb = np.zeros((bottom - top, right - left, 3), dtype=np.float32)
    alpha = np.zeros((bottom - top, right - left, 1), dtype=np.float32)
    ys = slice(max(top, 0), min(bottom, image.shape[1]))
    xs = slice(max(left, 0), min(right, image.shape[2]))
    rgb[ys.start - top:ys.stop - top, xs.start - left:xs.stop - left] = image[0, ys, xs].numpy()
    alpha[ys.start - top:ys.stop - top, xs.start - left:xs.stop - left, 0] = mask[0, ys, xs].numpy()
    composite = np.clip(rgb * alpha + np.array(colour, dtype=np.float32) * (1 - alpha), 0, 1)
    chw = torch.from_numpy(composite).movedim(-1, 0)[None]
    return resize_bchw(chw, *size, "lanczos").movedim(1, -1)


def test_subject_box_is_squared_around_its_longer_side() -> None:
    image, mask = scene()
    (out,) = ImageCropToMask().crop(image, mask, 64, 64, 1.0, 0, "#ff0000")
    # Box columns 30..49, rows 10..19: 20 wide -> a 20 x 20 square centred on (39.5, 14.5): left int(29.5) = 29,
    # top int(4.5) = 4.
    assert torch.equal(out, expected_crop(image, mask, (29, 4, 49, 24), (1.0, 0.0, 0.0), (64, 64)))


def test_pad_factor_and_aspect_widen_the_box_with_zeros_outside() -> None:
    image, mask = scene()
    (out,) = ImageCropToMask().crop(image, mask, 128, 64, 2.0, 0, "#000000")
    # Aspect 2: the 20 x 10 box already has it; doubled: 40 x 20, half 20 and 10 around (39.5, 14.5).
    assert torch.equal(out, expected_crop(image, mask, (19, 4, 59, 24), (0.0, 0.0, 0.0), (128, 64)))
    corner = torch.zeros(1, 40, 60)
    corner[0, :6, :6] = 1.0
    (out,) = ImageCropToMask().crop(image, corner, 64, 64, 2.0, 0, "#0000ff")
    # 6 x 6 at the corner, doubled to 12 x 12 around (2.5, 2.5): left int(-3.5) = -3, outside is background.
    assert torch.equal(out, expected_crop(image, corner, (-3, -3, 9, 9), (0.0, 0.0, 1.0), (64, 64)))


def test_a_mask_drawn_around_the_subject_is_inverted() -> None:
    image, mask = scene()
    inverted = torch.ones(1, 40, 60)
    inverted[0, 8:32, 10:50] = 0.0  # the border is masked and the centre is not
    (out,) = ImageCropToMask().crop(image, inverted, 64, 64, 1.0, 0, "#000000")
    centre = 1.0 - inverted
    # Box columns 10..49, rows 8..31 (40 x 24) -> 40 x 40 around (29.5, 19.5): left int(9.5) = 9, top
    # int(-0.5) = 0 (Python's int truncates towards zero, as in ComfyUI).
    assert torch.equal(out, expected_crop(image, centre, (9, 0, 49, 40), (0.0, 0.0, 0.0), (64, 64)))


def test_one_mask_serves_a_batch_and_counts_must_match() -> None:
    image, mask = scene()
    (out,) = ImageCropToMask().crop(image.repeat(3, 1, 1, 1), mask, 64, 64, 1.0, 2, "#000000")
    assert out.shape == (3, 64, 64, 3) and torch.equal(out[0], out[2])
    with pytest.raises(ValueError, match="masks: 2 masks for 3 images"):
        ImageCropToMask().crop(image.repeat(3, 1, 1, 1), mask.repeat(2, 1, 1), 64, 64, 1.0, 0, "#000000")


def test_parse_colour() -> None:
    assert parse_colour("#ff8000") == (1.0, 128 / 255, 0.0)
    assert parse_colour("red") == (0.0, 0.0, 0.0) and parse_colour("#zzzzzz") == (0.0, 0.0, 0.0)


def test_crop_to_mask_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8, "batch_size": 1, "color": 0x00FF00}},
        "2": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 16, "height": 8}},
        "3": {"class_type": "ImageCropToMask", "inputs": {"images": ["1", 0], "masks": ["2", 0], "width": 64,
                                                          "height": 64, "pad_factor": 1.0, "grow_mask": 0,
                                                          "background": "#ff0000"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "subject"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["4"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        # The whole 16 x 8 image is the subject: squared to 16 x 16, green in the middle rows, red above and below.
        assert png.size == (64, 64)
        assert png.getpixel((32, 32)) == (0, 255, 0) and png.getpixel((32, 2)) == (255, 0, 0)
