"""Image operations: output shapes and pixel values, against ComfyUI's behaviour for the same node names."""

from __future__ import annotations

import pytest
import torch

from hearth.core.images import UPSCALE_METHODS, center_crop_box
from hearth.core.nodes import NodeDefinition
from tests.builtin_nodes.conftest import NODES, call, gradient


def test_empty_image_has_the_requested_size_and_colour() -> None:
    (image,) = call("EmptyImage", width=5, height=3, batch_size=2, color=0xFF8000)
    assert image.shape == (2, 3, 5, 3) and image.dtype == torch.float32
    assert torch.equal(image[1, 2, 4], torch.tensor([1.0, 128 / 255, 0.0]))
    assert torch.all(image == image[0, 0, 0])


def test_empty_image_default_is_black() -> None:
    (image,) = call("EmptyImage", width=2, height=2)
    assert image.shape == (1, 2, 2, 3) and float(image.abs().max()) == 0.0


def test_invert() -> None:
    image = gradient()
    (out,) = call("ImageInvert", image=image)
    assert out.shape == image.shape
    assert torch.allclose(out, 1.0 - image)


@pytest.mark.parametrize("method", UPSCALE_METHODS)
def test_scale_gives_the_requested_size_with_every_method(method: str) -> None:
    (out,) = call("ImageScale", image=gradient(8, 12, batch=2), upscale_method=method, width=7, height=5,
                  crop="disabled")
    assert out.shape == (2, 5, 7, 3) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("method", UPSCALE_METHODS)
def test_scale_keeps_a_flat_colour(method: str) -> None:
    image = torch.full((1, 6, 6, 3), 0.25)
    image[..., 1] = 0.75
    (out,) = call("ImageScale", image=image, upscale_method=method, width=9, height=4, crop="disabled")
    assert torch.allclose(out, torch.tensor([0.25, 0.75, 0.25]).expand(1, 4, 9, 3), atol=1 / 255)


def test_scale_nearest_by_two_repeats_pixels() -> None:
    image = gradient(2, 3)
    (out,) = call("ImageScale", image=image, upscale_method="nearest-exact", width=6, height=4, crop="disabled")
    assert torch.equal(out, image.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2))


@pytest.mark.parametrize(("width", "height", "expected"), [(0, 4, (4, 6)), (6, 0, (4, 6)), (0, 0, (8, 12)),
                                                          (0, 1, (1, 2))])
def test_scale_zero_side_keeps_the_aspect_ratio(width: int, height: int, expected: tuple[int, int]) -> None:
    (out,) = call("ImageScale", image=gradient(8, 12), upscale_method="bilinear", width=width, height=height,
                  crop="disabled")
    assert tuple(out.shape[1:3]) == expected


def test_scale_both_zero_returns_the_image_unchanged() -> None:
    image = gradient(8, 12)
    (out,) = call("ImageScale", image=image, upscale_method="bicubic", width=0, height=0, crop="center")
    assert torch.equal(out, image)


def test_scale_center_crop_cuts_the_sides_of_a_wide_image() -> None:
    image = torch.full((1, 8, 16, 3), 0.5)
    image[:, :, :4] = 1.0  # the outer quarters go when a 2:1 image is cropped to a square
    image[:, :, 12:] = 0.0
    (out,) = call("ImageScale", image=image, upscale_method="bilinear", width=4, height=4, crop="center")
    assert out.shape == (1, 4, 4, 3)
    assert torch.allclose(out, torch.full_like(out, 0.5))
    (uncropped,) = call("ImageScale", image=image, upscale_method="bilinear", width=4, height=4, crop="disabled")
    assert float(uncropped[0, 0, 0, 0]) == pytest.approx(1.0) and float(uncropped[0, 0, 3, 0]) == pytest.approx(0.0)


def test_scale_center_crop_cuts_top_and_bottom_of_a_tall_image() -> None:
    image = torch.full((1, 12, 4, 3), 0.5)
    image[:, :4] = 1.0
    image[:, 8:] = 0.0
    (out,) = call("ImageScale", image=image, upscale_method="nearest-exact", width=2, height=2, crop="center")
    assert torch.allclose(out, torch.full((1, 2, 2, 3), 0.5))


@pytest.mark.parametrize(("scale", "expected"), [(0.5, (4, 6)), (1.5, (12, 18)), (0.01, (1, 1)), (1.0, (8, 12))])
def test_scale_by(scale: float, expected: tuple[int, int]) -> None:
    (out,) = call("ImageScaleBy", image=gradient(8, 12), upscale_method="area", scale_by=scale)
    assert tuple(out.shape) == (1, *expected, 3)


def test_scale_rejects_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown upscale method 'bislerp'"):
        call("ImageScale", image=gradient(), upscale_method="bislerp", width=4, height=4, crop="disabled")


def test_batch_of_same_size_images_concatenates() -> None:
    a, b = gradient(4, 6), 1.0 - gradient(4, 6, batch=2)
    (out,) = call("ImageBatch", image1=a, image2=b)
    assert out.shape == (3, 4, 6, 3)
    assert torch.equal(out[0], a[0]) and torch.equal(out[1:], b)


def test_batch_resizes_the_second_image_to_the_first() -> None:
    a = gradient(4, 6)
    b = torch.full((1, 8, 8, 3), 0.3)
    (out,) = call("ImageBatch", image1=a, image2=b)
    assert out.shape == (2, 4, 6, 3)
    assert torch.allclose(out[1], torch.full((4, 6, 3), 0.3))


def test_batch_gives_an_rgb_image_opaque_alpha_beside_rgba() -> None:
    rgba = torch.rand(1, 4, 4, 4)
    rgb = torch.rand(1, 4, 4, 3)
    (out,) = call("ImageBatch", image1=rgba, image2=rgb)
    assert out.shape == (2, 4, 4, 4) and torch.equal(out[0], rgba[0])
    assert torch.equal(out[1, ..., :3], rgb[0]) and torch.all(out[1, ..., 3] == 1.0)
    (out,) = call("ImageBatch", image1=rgb, image2=rgba)
    assert out.shape == (2, 4, 4, 4) and torch.all(out[0, ..., 3] == 1.0)
    assert NodeDefinition("ImageBatch", NODES["ImageBatch"]).object_info()["deprecated"] is True


def test_scale_bicubic_keeps_its_overshoot_as_comfyui() -> None:
    step = torch.zeros(1, 1, 8, 3)
    step[:, :, 4:] = 1.0
    (out,) = call("ImageScale", image=step, upscale_method="bicubic", width=32, height=1, crop="disabled")
    # ComfyUI's common_upscale does not clamp: the cubic kernel rings past 0 and 1 beside the step.
    assert float(out.max()) > 1.0 and float(out.min()) < 0.0


def test_scale_lanczos_truncates_to_8_bits_as_comfyui() -> None:
    (out,) = call("ImageScale", image=torch.full((1, 2, 2, 3), 0.999), upscale_method="lanczos", width=4,
                  height=4, crop="disabled")
    assert torch.allclose(out, torch.full((1, 4, 4, 3), 254 / 255))  # 254.745 truncated, not rounded to 255


def test_crop_takes_the_region() -> None:
    image = gradient(8, 12, batch=2)
    (out,) = call("ImageCrop", image=image, width=5, height=3, x=2, y=4)
    assert out.shape == (2, 3, 5, 3)
    assert torch.equal(out, image[:, 4:7, 2:7])


def test_crop_region_past_the_edge_is_clipped() -> None:
    image = gradient(8, 12)
    (out,) = call("ImageCrop", image=image, width=512, height=512, x=10, y=0)
    assert out.shape == (1, 8, 2, 3)
    # As ComfyUI: an origin beyond the image is pulled back to its last pixel.
    (out,) = call("ImageCrop", image=image, width=4, height=4, x=100, y=100)
    assert out.shape == (1, 1, 1, 3) and torch.equal(out[0, 0, 0], image[0, 7, 11])


def test_pad_for_outpaint_places_the_image_on_grey() -> None:
    image = gradient(8, 12, batch=2)
    out, mask = call("ImagePadForOutpaint", image=image, left=2, top=1, right=3, bottom=4, feathering=0)
    assert out.shape == (2, 13, 17, 3) and mask.shape == (1, 13, 17)
    assert torch.equal(out[:, 1:9, 2:14], image)
    assert torch.all(out[:, 0] == 0.5) and torch.all(out[:, 9:] == 0.5)
    assert torch.all(out[:, :, :2] == 0.5) and torch.all(out[:, :, 14:] == 0.5)
    expected = torch.ones(13, 17)
    expected[1:9, 2:14] = 0.0
    assert torch.equal(mask[0], expected)


def test_pad_for_outpaint_feathers_only_towards_padded_sides() -> None:
    image = torch.zeros(1, 16, 16, 3)
    _, mask = call("ImagePadForOutpaint", image=image, left=8, top=0, right=0, bottom=0, feathering=4)
    inner = mask[0, :, 8:]
    # ComfyUI's ramp: ((feathering - distance) / feathering) ** 2 within `feathering` pixels of a padded side.
    ramp = torch.tensor([1.0, 0.5625, 0.25, 0.0625] + [0.0] * 12)
    assert torch.allclose(inner, ramp.expand(16, 16))
    assert torch.all(mask[0, :, :8] == 1.0)


def test_pad_for_outpaint_feathers_corners_by_nearest_side() -> None:
    _, mask = call("ImagePadForOutpaint", image=torch.zeros(1, 10, 10, 3), left=2, top=2, right=2, bottom=2,
                   feathering=2)
    inner = mask[0, 2:12, 2:12]
    assert float(inner[0, 0]) == 1.0 and float(inner[1, 1]) == 0.25 and float(inner[1, 5]) == 0.25
    # The far side counts its distance from the edge as (size - index), so the last row is 1 away.
    assert float(inner[9, 5]) == 0.25 and float(inner[5, 5]) == 0.0


def test_pad_for_outpaint_mask_equals_comfyuis_double_precision_ramp() -> None:
    height, width, feathering = 30, 36, 13
    _, mask = call("ImagePadForOutpaint", image=torch.zeros(1, height, width, 3), left=8, top=0, right=8,
                   bottom=16, feathering=feathering)
    expected = torch.zeros(height, width)
    for i in range(height):
        for j in range(width):
            d = min(height, height - i, j, width - j)  # no top padding: that side counts as far away
            if d < feathering:
                expected[i, j] = ((feathering - d) / feathering) ** 2  # Python floats, stored as float32
    assert torch.equal(mask[0, 0:height, 8:8 + width], expected)


def test_pad_for_outpaint_skips_feathering_wider_than_half_the_image() -> None:
    _, mask = call("ImagePadForOutpaint", image=torch.zeros(1, 8, 8, 3), left=8, top=0, right=0, bottom=0,
                   feathering=4)
    assert torch.all(mask[0, :, 8:] == 0.0)


def test_image_nodes_use_comfyui_display_names() -> None:
    names = {name: NodeDefinition(name, NODES[name]).object_info()["display_name"] for name in (
        "LoadImage", "SaveImage", "PreviewImage", "ImageScale", "ImageScaleBy", "ImageInvert", "ImageBatch",
        "ImagePadForOutpaint", "EmptyImage", "ImageCrop")}
    assert names == {"LoadImage": "Load Image", "SaveImage": "Save Image", "PreviewImage": "Preview Image",
                     "ImageScale": "Upscale Image", "ImageScaleBy": "Upscale Image By", "ImageInvert": "Invert Image",
                     "ImageBatch": "Batch Images", "ImagePadForOutpaint": "Pad Image for Outpainting",
                     "EmptyImage": "EmptyImage", "ImageCrop": "Crop Image (DEPRECATED)"}


@pytest.mark.parametrize("method", UPSCALE_METHODS)
def test_scale_keeps_the_alpha_channel(method: str) -> None:
    image = torch.full((1, 4, 4, 4), 0.5)
    image[..., 3] = 0.25
    (out,) = call("ImageScale", image=image, upscale_method=method, width=8, height=2, crop="disabled")
    assert out.shape == (1, 2, 8, 4)
    assert torch.allclose(out[..., 3], torch.full((1, 2, 8), 0.25), atol=1 / 255)


def test_scale_single_channel_image() -> None:
    (out,) = call("ImageScale", image=torch.full((1, 4, 4, 1), 0.5), upscale_method="lanczos", width=2, height=2,
                  crop="disabled")
    assert out.shape == (1, 2, 2, 1) and torch.allclose(out, torch.full_like(out, 0.5), atol=1 / 255)


@pytest.mark.parametrize(("size", "target", "box"), [
    ((16, 8), (4, 4), (4, 0, 8, 8)), ((4, 12), (2, 2), (0, 4, 4, 4)), ((8, 8), (3, 3), (0, 0, 8, 8)),
    # Equal margins rounded as ComfyUI rounds them: 2.5 -> 2 on each side leaves 11 columns, not 10.
    ((15, 10), (10, 10), (2, 0, 11, 10)), ((10, 15), (10, 10), (0, 2, 10, 11)),
])
def test_center_crop_region_matches_comfyui(size: tuple[int, int], target: tuple[int, int],
                                            box: tuple[int, int, int, int]) -> None:
    assert center_crop_box(*size, *target) == box


MASK_AS_IMAGE = torch.zeros(1, 8, 8)  # a MASK where an IMAGE belongs


@pytest.mark.parametrize(("name", "inputs", "input_name"), [
    ("GetImageSize", {"image": MASK_AS_IMAGE}, "image"),
    ("ImageFlip", {"image": MASK_AS_IMAGE, "flip_method": "x-axis: vertically"}, "image"),
    ("ImageStitch", {"image1": torch.zeros(1, 8, 8, 3), "direction": "right", "match_image_size": True,
                     "spacing_width": 0, "spacing_color": "white", "image2": MASK_AS_IMAGE}, "image2"),
    ("ImageBlend", {"image1": MASK_AS_IMAGE, "image2": torch.zeros(1, 8, 8, 3), "blend_factor": 0.5,
                    "blend_mode": "normal"}, "image1"),
    ("ImageBlur", {"image": MASK_AS_IMAGE, "blur_radius": 1, "sigma": 1.0}, "image"),
    ("Canny", {"image": MASK_AS_IMAGE, "low_threshold": 0.4, "high_threshold": 0.8}, "image"),
    ("ImageCompositeMasked", {"destination": torch.zeros(1, 8, 8, 3), "source": MASK_AS_IMAGE, "x": 0, "y": 0,
                              "resize_source": False}, "source"),
    ("ImageScaleToTotalPixels", {"image": MASK_AS_IMAGE, "upscale_method": "area", "megapixels": 0.01,
                                 "resolution_steps": 1}, "image"),
    ("ImageCropToMask", {"images": MASK_AS_IMAGE, "masks": MASK_AS_IMAGE, "width": 64, "height": 64,
                         "pad_factor": 1.0, "grow_mask": 0}, "images"),
    ("ColorTransfer", {"image_target": MASK_AS_IMAGE, "method": "histogram", "source_stats": "per_frame",
                       "image_ref": torch.zeros(1, 8, 8, 3)}, "image_target"),
])
def test_a_mask_where_an_image_belongs_is_named(name: str, inputs: dict, input_name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{input_name}: expected an IMAGE \[batch, height, width, channels\]"):
        call(name, **inputs)
