"""ImageHistogram and ColorTransfer: Lab against published values, matches checked by the statistics they promise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_color import (
    ColorTransfer,
    ImageHistogram,
    ImageRGBToYUV,
    ImageYUVToRGB,
    lab_to_rgb,
    mkl_matrix,
    rgb_to_lab,
)
from hearth.core.context import Folders


def pixel_lab(r: float, g: float, b: float) -> list[float]:
    return rgb_to_lab(torch.tensor([r, g, b], dtype=torch.float32).view(3, 1, 1))[:, 0, 0].tolist()


def test_lab_of_known_colours() -> None:
    # CIE Lab (D65) of sRGB white, red and mid grey, as colour references publish them.
    assert pixel_lab(1, 1, 1) == pytest.approx([100.0, 0.0, 0.0], abs=0.02)
    assert pixel_lab(1, 0, 0) == pytest.approx([53.24, 80.09, 67.20], abs=0.05)
    assert pixel_lab(0.5, 0.5, 0.5)[0] == pytest.approx(53.39, abs=0.05)


def test_lab_round_trip() -> None:
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)


def test_yuv_planes_by_hand_and_back() -> None:
    image = torch.tensor([[[[1.0, 0.0, 0.0, 0.5]]]])  # one red RGBA pixel: the alpha is ignored
    y, u, v = ImageRGBToYUV().split(image)
    assert y.shape == (1, 1, 1, 3)
    assert float(y[0, 0, 0, 0]) == pytest.approx(0.299)
    assert float(u[0, 0, 0, 1]) == pytest.approx((0 - 0.299) * 0.564 + 0.5)
    assert float(v[0, 0, 0, 2]) == pytest.approx((1 - 0.299) * 0.713 + 0.5)
    rgb = torch.rand(2, 3, 4, 3, generator=torch.Generator().manual_seed(1))
    (back,) = ImageYUVToRGB().join(*ImageRGBToYUV().split(rgb))
    assert torch.allclose(back, rgb, atol=2e-3)  # kornia's rounded constants are not exact inverses
    (clamped,) = ImageYUVToRGB().join(torch.ones(1, 1, 1, 3), torch.ones(1, 1, 1, 3), torch.ones(1, 1, 1, 3))
    # Y 1, Cb = Cr = 1: red 1 + 1.403 * 0.5 and blue 1 + 1.773 * 0.5 clamp to 1, as kornia's; green 1 - 0.529.
    assert torch.allclose(clamped, torch.tensor([[[[1.0, 0.471, 1.0]]]]))
    with pytest.raises(ValueError, match="U, V: the three planes must have one size"):
        ImageYUVToRGB().join(rgb, rgb, rgb[:1])


def test_histogram_counts_truncated_bytes() -> None:
    image = torch.zeros(2, 2, 2, 3)
    image[0, 0, 0] = torch.tensor([1.0, 0.5, 0.999])  # 255, 127 (127.5 truncated), 254
    rgb, lum, red, green, blue = ImageHistogram().histogram(image)
    assert len(red) == 256 and red[255] == 1 and red[0] == 3
    assert green[127] == 1 and blue[254] == 1
    assert rgb[0] == 3 and rgb[255] == 0  # (1 + 0 + 0) // 3
    assert sum(lum) == 4 and lum[0] == 3
    assert lum[int(np.float32(0.2126 + 0.7152 * 0.5 + 0.0722 * 0.999) * 255)] == 1


def transfer(target: torch.Tensor, ref: torch.Tensor | None, method: str, stats: str = "per_frame",
             strength: float = 1.0, **members: Any) -> torch.Tensor:
    dotted = {f"source_stats.{key}": value for key, value in members.items()}
    return ColorTransfer().transfer(target, method, stats, strength, ref, **dotted)[0]


def test_histogram_matching_maps_levels_by_their_cumulative_share() -> None:
    target = torch.zeros(1, 2, 2, 3)
    target[:, 1] = 1.0  # half 0, half 1
    ref = torch.full((1, 2, 2, 3), 0.2)
    ref[:, 1] = 0.8  # half 0.2 (byte 51), half 0.8 (byte 204)
    out = transfer(target, ref, "histogram")
    assert torch.allclose(out[0, 0], torch.full((2, 3), 51 / 255)) and torch.allclose(out[0, 1],
                                                                                      torch.full((2, 3), 204 / 255))
    half = transfer(target, ref, "histogram", strength=0.5)
    assert torch.allclose(half[0, 0], torch.full((2, 3), 0.5 * 51 / 255))


def soft(seed: int, shift: float) -> torch.Tensor:
    """Muted colours well inside the sRGB gamut, so no Lab value is clipped on the way back."""
    return 0.35 + shift + 0.15 * torch.rand(1, 6, 6, 3, generator=torch.Generator().manual_seed(seed))


def lab_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(image[0].movedim(-1, 0)).flatten(1).double()
    return lab.mean(dim=1), lab.std(dim=1, unbiased=False)


def test_reinhard_gives_the_reference_lab_mean_and_std() -> None:
    target, ref = soft(1, 0.1), soft(2, -0.1)
    out = transfer(target, ref, "reinhard_lab")
    (mean, std), (ref_mean, ref_std) = lab_stats(out), lab_stats(ref)
    assert torch.allclose(mean, ref_mean, atol=0.05) and torch.allclose(std, ref_std, atol=0.05)


def test_mkl_map_carries_the_source_covariance_onto_the_reference() -> None:
    generator = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 3, generator=generator), torch.randn(3, 3, generator=generator)
    cov_source, cov_reference = a @ a.T + 0.1 * torch.eye(3), b @ b.T + 0.1 * torch.eye(3)
    t = mkl_matrix(cov_source.double(), cov_reference.double())
    assert torch.allclose(t @ cov_source.double() @ t.T, cov_reference.double(), atol=1e-8)
    assert torch.allclose(t, t.T, atol=1e-10)  # the MKL solution is the symmetric one


def test_mkl_transfer_gives_the_reference_lab_covariance() -> None:
    target, ref = soft(3, 0.05), soft(4, -0.05)
    out = transfer(target, ref, "mkl_lab")
    lab, ref_lab = (rgb_to_lab(x[0].movedim(-1, 0)).flatten(1).double() for x in (out, ref))
    assert torch.allclose(lab.mean(dim=1), ref_lab.mean(dim=1), atol=0.05)
    assert torch.allclose(torch.cov(lab, correction=0), torch.cov(ref_lab, correction=0), atol=0.1)


def test_uniform_and_target_frame_apply_one_transform_to_every_frame() -> None:
    frames = torch.cat([soft(5, 0.0), soft(6, 0.1)])
    ref = soft(7, -0.1)
    per_frame = transfer(frames, ref, "reinhard_lab", "per_frame")
    from_first = transfer(frames, ref, "reinhard_lab", "target_frame", target_index=0)
    assert torch.allclose(from_first[0], per_frame[0], atol=1e-5)
    assert not torch.allclose(from_first[1], per_frame[1], atol=1e-3)  # frame 1 keeps its offset from frame 0
    uniform = transfer(frames, ref, "histogram", "uniform")
    assert uniform.shape == frames.shape


def test_no_reference_or_no_strength_passes_the_target_through() -> None:
    target = soft(8, 0.0)
    assert transfer(target, None, "mkl_lab") is target
    assert transfer(target, soft(9, 0.0), "reinhard_lab", strength=0.0) is target


def test_bad_inputs_are_named() -> None:
    target = soft(8, 0.0)
    with pytest.raises(ValueError, match="source_stats.target_index: missing"):
        transfer(target, target, "histogram", "target_frame")
    with pytest.raises(ValueError, match="source_stats.target_index: -1 is smaller than the minimum 0"):
        transfer(target, target, "histogram", "target_frame", target_index=-1)
    with pytest.raises(ValueError, match="image_ref: mkl_lab needs RGB images on both sides"):
        transfer(target, torch.zeros(1, 6, 6, 4), "mkl_lab")
    with pytest.raises(ValueError, match="image_ref: histogram needs the same channels on both sides; got 3 and 4"):
        transfer(target, torch.zeros(1, 6, 6, 4), "histogram")


def test_color_transfer_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 2, "color": 0x204060}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 2, "batch_size": 1, "color": 0xC08040}},
        "3": {"class_type": "ColorTransfer", "inputs": {"image_target": ["1", 0], "image_ref": ["2", 0],
                                                        "method": "histogram", "source_stats": "target_frame",
                                                        "source_stats.target_index": 1, "strength": 1.0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "matched"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    for item in result.outputs["4"]["images"]:
        with Image.open(hearth_folders.output / item["filename"]) as png:
            assert png.getpixel((1, 1)) == (0xC0, 0x80, 0x40)  # every level maps onto the reference's one level
