"""ImageBlend, ImageBlur, ImageSharpen, ImageQuantize: against hand-computed values and independent numpy loops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_filters import (
    ImageBlend,
    ImageBlur,
    ImageQuantize,
    ImageSharpen,
    bayer_matrix,
)
from hearth.core.context import Folders
from hearth.core.images import upscale


def noise(height: int = 7, width: int = 9, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("mode", "expected"), [
    ("normal", 0.6), ("multiply", 0.12), ("screen", 0.68), ("overlay", 0.24),
    # b > 0.5: a + (2b - 1)(D(a) - a), D(0.2) = ((16 * 0.2 - 12) * 0.2 + 4) * 0.2 = 0.448
    ("soft_light", 0.2496), ("difference", 0.0),  # 0.2 - 0.6 clamps to 0
])
def test_blend_modes_at_full_factor(mode: str, expected: float) -> None:
    (out,) = ImageBlend().blend_images(torch.full((1, 2, 2, 3), 0.2), torch.full((1, 2, 2, 3), 0.6), 1.0, mode)
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)


def test_blend_factor_mixes_with_image1() -> None:
    (out,) = ImageBlend().blend_images(torch.full((1, 2, 2, 3), 0.2), torch.full((1, 2, 2, 3), 0.6), 0.25,
                                       "multiply")
    assert torch.allclose(out, torch.full_like(out, 0.2 * 0.75 + 0.12 * 0.25))


def test_blend_resizes_image2_bicubic_centre_and_fixes_alpha() -> None:
    image1, image2 = noise(4, 4), noise(8, 6, seed=1)
    (out,) = ImageBlend().blend_images(image1, image2, 1.0, "normal")
    assert torch.equal(out, upscale(image2, 4, 4, "bicubic", "center").clamp(0, 1))
    rgba = torch.cat([noise(4, 4), torch.full((1, 4, 4, 1), 0.5)], dim=-1)
    (out,) = ImageBlend().blend_images(rgba, noise(4, 4, seed=2), 1.0, "normal")
    assert out.shape == (1, 4, 4, 4) and torch.all(out[..., 3] == 1.0)  # image2 gained an opaque alpha


def test_blend_refuses_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="image2: a batch of 2 cannot blend with image1's batch of 3"):
        ImageBlend().blend_images(noise(batch=3), noise(batch=2), 0.5, "normal")


def reference_kernel(size: int, sigma: float) -> np.ndarray:
    axis = np.linspace(-1.0, 1.0, size)
    grid = axis[:, None] ** 2 + axis[None, :] ** 2
    weights = np.exp(-grid / (2 * sigma * sigma))
    return weights / weights.sum()


def reference_filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Direct correlation over the image mirrored at its edges (numpy's 'reflect' excludes the edge pixel)."""
    radius = kernel.shape[0] // 2
    padded = np.pad(image, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
    out = np.zeros_like(image, dtype=np.float64)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[:, dy:dy + image.shape[1], dx:dx + image.shape[2]]
    return out


@pytest.mark.parametrize(("radius", "sigma"), [(1, 1.0), (2, 0.5), (3, 2.0)])
def test_blur_matches_a_numpy_reference(radius: int, sigma: float) -> None:
    image = noise(batch=2)
    (out,) = ImageBlur().blur(image, radius, sigma)
    expected = reference_filter(image.numpy().astype(np.float64), reference_kernel(2 * radius + 1, sigma))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_sharpen_matches_a_numpy_reference() -> None:
    image = noise()
    kernel = reference_kernel(5, 0.8) * -(1.5 * 10)
    kernel[2, 2] += 1.0 - kernel.sum()
    (out,) = ImageSharpen().sharpen(image, 2, 0.8, 1.5)
    expected = np.clip(reference_filter(image.numpy().astype(np.float64), kernel), 0, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)
    (unchanged,) = ImageSharpen().sharpen(image, 1, 1.0, 0.0)  # alpha 0: the identity kernel
    assert torch.allclose(unchanged, image, atol=1e-6)


def test_radius_past_the_image_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"blur_radius: 5 must be smaller than the image's sides \(4x4\)"):
        ImageBlur().blur(noise(4, 4), 5, 1.0)


def test_bayer_matrices_are_the_classic_threshold_maps() -> None:
    classic2 = np.array([[0, 2], [3, 1]])
    classic4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])
    np.testing.assert_allclose(bayer_matrix(2), (classic2 + 0.5) / 4 - 0.5)
    np.testing.assert_allclose(bayer_matrix(4), (classic4 + 0.5) / 16 - 0.5)


@pytest.mark.parametrize("dither", ["none", "floyd-steinberg"])
def test_quantize_is_pils_palette_of_the_truncated_bytes(dither: str) -> None:
    image = noise(6, 8)
    (out,) = ImageQuantize().quantize(image, 4, dither)
    rgb = Image.fromarray((image[0].numpy() * 255).astype(np.uint8))
    method = Image.Dither.NONE if dither == "none" else Image.Dither.FLOYDSTEINBERG
    expected = rgb.quantize(palette=rgb.quantize(colors=4), dither=method).convert("RGB")
    np.testing.assert_array_equal(out[0].numpy(), np.asarray(expected, np.float32) / 255)
    assert len(np.unique(out[0].numpy().reshape(-1, 3), axis=0)) <= 4


def test_bayer_dither_uses_only_palette_colours_and_keeps_the_mean() -> None:
    image = torch.zeros(1, 8, 8, 3)
    image[:, :, 4:] = 1.0
    image[:, 2:6] = 0.5  # a grey band between black and white
    (flat,) = ImageQuantize().quantize(image, 2, "none")
    (dithered,) = ImageQuantize().quantize(image, 2, "bayer-4")
    colours = {tuple(c) for c in dithered[0].reshape(-1, 3).tolist()}
    assert colours <= {tuple(c) for c in flat[0].reshape(-1, 3).tolist()} | {(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)}
    band = dithered[0, 2:6, :, 0]
    assert 0.3 < float(band.mean()) < 0.7 and len(band.unique()) == 2  # a pattern, not one flat colour


def test_quantize_refuses_a_one_channel_image() -> None:
    with pytest.raises(ValueError, match="image: quantizing needs an RGB image"):
        ImageQuantize().quantize(torch.zeros(1, 2, 2, 1), 2, "none")


def test_blur_and_sharpen_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0x336699}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 2, "sigma": 1.0}},
        "3": {"class_type": "ImageSharpen", "inputs": {"image": ["2", 0], "sharpen_radius": 1, "sigma": 1.0,
                                                       "alpha": 1.0}},
        "4": {"class_type": "ImageQuantize", "inputs": {"image": ["3", 0], "colors": 2, "dither": "none"}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "filtered"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["5"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        # A flat colour stays flat through blur and sharpen (kernels sum to 1, up to float rounding, which the
        # truncation to 8 bits may take one step down) and quantizes to itself.
        colours = {tuple(pixel) for pixel in np.asarray(png).reshape(-1, 3).tolist()}
        (colour,) = colours
        assert all(abs(int(got) - want) <= 1 for got, want in zip(colour, (0x33, 0x66, 0x99), strict=True))
