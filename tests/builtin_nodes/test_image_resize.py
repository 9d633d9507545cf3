"""Resize and batch nodes (ResizeImageMaskNode, ImageScaleToTotalPixels, ImageScaleToMaxDimension, ResizeAndPadImage,
BatchImagesNode, BatchMasksNode): sizes as ComfyUI computes them, pixels against hand-made or PIL references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_resize import (
    BatchImagesNode,
    BatchMasksNode,
    ImageScaleToMaxDimension,
    ImageScaleToTotalPixels,
    ResizeAndPadImage,
    ResizeImageMaskNode,
)
from hearth.core.context import Folders
from hearth.core.images import upscale
from hearth.core.nodes import NodeDefinition
from tests.builtin_nodes.conftest import ramp


def resize(values: torch.Tensor, resize_type: str, method: str = "area", **members: Any) -> torch.Tensor:
    dotted = {f"resize_type.{key}": value for key, value in members.items()}
    return ResizeImageMaskNode().resize(values, resize_type, method, **dotted)[0]


@pytest.mark.parametrize(("resize_type", "members", "size"), [
    ("scale longer dimension", {"longer_size": 6}, (4, 6)),
    ("scale shorter dimension", {"shorter_size": 4}, (4, 6)),
    ("scale by multiplier", {"multiplier": 0.5}, (4, 6)),
    ("scale width", {"width": 3}, (2, 3)),
    ("scale height", {"height": 2}, (2, 3)),
    ("scale dimensions", {"width": 5, "height": 0, "crop": "disabled"}, (3, 5)),  # round(8 * 5 / 12) = 3
    # int(0.01 * 1024 * 1024) = 10485 pixels: factor sqrt(10485 / 96) -> 125.4 x 83.6, rounded.
    ("scale total pixels", {"megapixels": 0.01}, (84, 125)),
])
def test_resize_types_give_comfyui_sizes(resize_type: str, members: dict[str, Any], size: tuple[int, int]) -> None:
    out = resize(ramp(batch=2), resize_type, **members)
    assert tuple(out.shape) == (2, *size, 3)
    mask_out = resize(ramp(batch=2)[..., 0], resize_type, **members)
    assert tuple(mask_out.shape) == (2, *size)  # a MASK stays a MASK


def test_area_downscale_is_the_block_mean() -> None:
    image = ramp(8, 12)
    out = resize(image, "scale by multiplier", "area", multiplier=0.5)
    expected = image.numpy().reshape(1, 4, 2, 6, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_nearest_exact_doubling_repeats_pixels() -> None:
    image = ramp(2, 3)
    out = resize(image, "scale dimensions", "nearest-exact", width=6, height=4, crop="disabled")
    assert torch.equal(out, image.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2))


def test_scale_dimensions_zero_zero_returns_the_input() -> None:
    image = ramp()
    assert resize(image, "scale dimensions", width=0, height=0, crop="center") is image


def test_scale_to_multiple_covers_then_crops_the_centre() -> None:
    image = ramp(8, 12)
    # 12x8 to multiples of 5 -> 10x5: scaled to 10 x ceil(8 * 10 / 12) = 10x7, rows 1..5 kept.
    out = resize(image, "scale to multiple", "bilinear", multiple=5)
    assert torch.equal(out, upscale(image, 10, 7, "bilinear")[:, 1:6, :10])
    assert resize(image, "scale to multiple", multiple=4) is image  # already divisible


def test_match_size_takes_an_image_or_a_mask_size_and_crops() -> None:
    wide = torch.zeros(1, 4, 8, 3)
    wide[:, :, 2:6] = 1.0  # the centre square survives a centre crop to a square
    out = resize(wide, "match size", "bilinear", match=torch.zeros(1, 2, 2), crop="center")
    assert out.shape == (1, 2, 2, 3) and torch.allclose(out, torch.ones_like(out))
    out = resize(wide, "match size", "bilinear", match=torch.zeros(3, 6, 5, 3), crop="disabled")
    assert out.shape == (1, 6, 5, 3)


def test_lanczos_goes_through_8_bits_truncating_like_comfyui() -> None:
    image = torch.full((1, 4, 4, 3), 0.999)  # 254.745 -> 254 truncated (rounding would give 255)
    out = resize(image, "scale dimensions", "lanczos", width=8, height=8, crop="disabled")
    assert torch.allclose(out, torch.full((1, 8, 8, 3), 254 / 255))


def test_lanczos_matches_pil_on_the_same_bytes() -> None:
    image = ramp(5, 7)
    out = resize(image, "scale dimensions", "lanczos", width=11, height=3, crop="disabled")
    as_bytes = np.clip(255.0 * image[0].numpy(), 0, 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(as_bytes).resize((11, 3), Image.Resampling.LANCZOS), np.float32) / 255
    np.testing.assert_array_equal(out[0].numpy(), expected)


@pytest.mark.parametrize(("resize_type", "members", "message"), [
    ("scale sideways", {}, "resize_type: 'scale sideways' is not one of"),
    ("scale width", {}, "resize_type.width: missing"),
    ("scale width", {"width": -3}, "resize_type.width: -3 is smaller than the minimum 0"),
    ("scale by multiplier", {"multiplier": 9.0}, "resize_type.multiplier: 9.0 is bigger than the maximum 8.0"),
    ("scale dimensions", {"width": 4, "height": 4, "crop": "edge"}, "resize_type.crop: 'edge' is not one of"),
    ("scale width", {"width": 2.5}, "resize_type.width: expected a whole number"),
])
def test_bad_resize_members_name_the_dotted_input(resize_type: str, members: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resize(ramp(), resize_type, **members)


def test_resize_node_object_info_has_comfyuis_v3_shape() -> None:
    info = NodeDefinition("ResizeImageMaskNode", ResizeImageMaskNode).object_info()
    assert list(info["input"]["required"]) == ["input", "resize_type", "scale_method"]
    kind, options = info["input"]["required"]["resize_type"]
    assert kind == "COMFY_DYNAMICCOMBO_V3"
    keys = [option["key"] for option in options["options"]]
    assert keys == ["scale dimensions", "scale by multiplier", "scale longer dimension", "scale shorter dimension",
                    "scale width", "scale height", "scale total pixels", "match size", "scale to multiple"]
    assert info["input"]["required"]["input"][0] == "COMFY_MATCHTYPE_V3"
    assert info["output"] == ["COMFY_MATCHTYPE_V3"] and info["output_name"] == ["resized"]
    assert "optional" not in info["input"]  # the dotted members are claimed, not listed
    batch = NodeDefinition("BatchImagesNode", BatchImagesNode).object_info()
    assert batch["input"]["required"]["images"][0] == "COMFY_AUTOGROW_V3"


def test_scale_to_total_pixels_rounds_to_resolution_steps() -> None:
    # 0.01 MP = 10485.76 pixels: factor 10.451 -> 125.4 x 83.6 -> steps of 8: 128 x 80.
    (out,) = ImageScaleToTotalPixels().upscale(ramp(8, 12), "bilinear", 0.01, 8)
    assert out.shape == (1, 80, 128, 3)
    (out,) = ImageScaleToTotalPixels().upscale(ramp(8, 12), "nearest-exact", 0.01, 1)
    assert out.shape == (1, 84, 125, 3)
    with pytest.raises(ValueError, match="resolution_steps: 256"):
        ImageScaleToTotalPixels().upscale(ramp(8, 12), "area", 0.01, 256)


@pytest.mark.parametrize(("size", "expected"), [((8, 12), (4, 6)), ((12, 8), (6, 4)), ((5, 5), (6, 6))])
def test_scale_to_max_dimension(size: tuple[int, int], expected: tuple[int, int]) -> None:
    (out,) = ImageScaleToMaxDimension().upscale(ramp(*size), "area", 6)
    assert tuple(out.shape[1:3]) == expected


@pytest.mark.parametrize("colour", ["white", "black"])
def test_resize_and_pad_fits_and_centres(colour: str) -> None:
    image = ramp(8, 12)
    (out,) = ResizeAndPadImage().resize_and_pad(image, 6, 6, colour, "area")
    fill = 1.0 if colour == "white" else 0.0
    assert out.shape == (1, 6, 6, 3)
    assert torch.equal(out[:, 1:5], upscale(image, 6, 4, "area"))
    assert torch.all(out[:, 0] == fill) and torch.all(out[:, 5] == fill)


def test_batch_images_resizes_to_the_first_and_adds_alpha() -> None:
    first, second, third = ramp(4, 6), torch.full((2, 8, 8, 3), 0.25), torch.full((1, 4, 6, 4), 0.5)
    (out,) = BatchImagesNode().batch(**{"images.image0": first, "images.image1": second, "images.image2": third})
    assert out.shape == (4, 4, 6, 4)
    assert torch.equal(out[0, ..., :3], first[0]) and torch.all(out[0, ..., 3] == 1.0)
    assert torch.allclose(out[1:3], torch.tensor([0.25, 0.25, 0.25, 1.0]).expand(2, 4, 6, 4))
    assert torch.equal(out[3], third[0])


def test_batch_images_keeps_socket_order_and_needs_two() -> None:
    a, b = torch.zeros(1, 2, 2, 3), torch.ones(1, 2, 2, 3)
    (out,) = BatchImagesNode().batch(**{"images.image1": b, "images.image0": a})
    assert torch.equal(out, torch.cat([a, b]))
    with pytest.raises(ValueError, match="images: needs at least 2 inputs linked"):
        BatchImagesNode().batch(**{"images.image0": a})


def test_batch_masks_resizes_to_the_first() -> None:
    (out,) = BatchMasksNode().batch(**{"masks.mask0": torch.zeros(1, 4, 4), "masks.mask1": torch.ones(8, 8)})
    assert out.shape == (2, 4, 4) and torch.all(out[1] == 1.0)


def test_resize_and_batch_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 12, "height": 8, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "ResizeImageMaskNode", "inputs": {
            "input": ["1", 0], "resize_type": "scale longer dimension", "resize_type.longer_size": 6,
            "scale_method": "area"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 3, "height": 3, "batch_size": 2, "color": 0x0000FF}},
        "4": {"class_type": "BatchImagesNode", "inputs": {"images.image0": ["2", 0], "images.image1": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "resized"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    files = [item["filename"] for item in result.outputs["5"]["images"]]
    assert len(files) == 3
    with Image.open(hearth_folders.output / files[0]) as first, Image.open(hearth_folders.output / files[2]) as last:
        assert first.size == (6, 4) and first.getpixel((0, 0)) == (255, 0, 0)
        assert last.size == (6, 4) and last.getpixel((5, 3)) == (0, 0, 255)


def test_a_bad_member_fails_the_run_with_its_name(run_prompt: Any) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ResizeImageMaskNode", "inputs": {
            "input": ["1", 0], "resize_type": "scale width", "scale_method": "area"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bad"}},
    }
    result = run_prompt(prompt)
    assert not result.ok
    assert "resize_type.width: missing" in result.error["exception_message"]
