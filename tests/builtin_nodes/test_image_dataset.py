"""ComfyUI's dataset image nodes: sizes and crops by hand, randomness against numpy's seeded global generator (what
ComfyUI calls), pixels against PIL on the same truncated bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_dataset import (
    AdjustBrightness,
    AdjustContrast,
    CenterCropImages,
    ImageDeduplication,
    ImageGrid,
    MergeImageLists,
    NormalizeImages,
    RandomCropImages,
    ResizeImagesByLongerEdge,
    ResizeImagesByShorterEdge,
    ShuffleDataset,
    ShuffleImageTextDataset,
)
from hearth.core.context import Folders
from tests.builtin_nodes.conftest import ramp


def as_bytes(image: torch.Tensor) -> np.ndarray:
    return np.clip(image.numpy() * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("size", "expected"), [((8, 12), (4, 7)), ((12, 8), (7, 4)), ((5, 5), (7, 7))])
def test_resize_by_longer_edge_truncates_the_other_side(size: tuple[int, int], expected: tuple[int, int]) -> None:
    image = ramp(*size, batch=2)
    (out,) = ResizeImagesByLongerEdge().process(image, longer_edge=7)
    assert tuple(out.shape) == (2, *expected, 3)  # int(8 * 7 / 12) = int(4.67) = 4, where round would give 5
    pil = Image.fromarray(as_bytes(image[1])).resize(expected[::-1], Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(out[1].numpy(), np.asarray(pil, np.float32) / 255)


@pytest.mark.parametrize(("size", "expected"), [((8, 12), (5, 7)), ((12, 8), (7, 5)), ((5, 5), (5, 5))])
def test_resize_by_shorter_edge(size: tuple[int, int], expected: tuple[int, int]) -> None:
    (out,) = ResizeImagesByShorterEdge().process(ramp(*size), shorter_edge=5)
    assert tuple(out.shape[1:3]) == expected  # int(12 * 5 / 8) = int(7.5) = 7


def test_center_crop_is_8_bit_and_centred() -> None:
    image = ramp(8, 12)
    (out,) = CenterCropImages().process(image, width=6, height=4)
    np.testing.assert_array_equal(out[0].numpy(), as_bytes(image[0, 2:6, 3:9]).astype(np.float32) / 255)
    (whole,) = CenterCropImages().process(image, width=100, height=100)
    assert whole.shape == (1, 8, 12, 3)


def test_random_crop_draws_its_position_as_comfyui_does() -> None:
    image = ramp(20, 30)
    (out,) = RandomCropImages().process(image, width=10, height=5, seed=2**32 + 5)
    np.random.seed((2**32 + 5) % (2**32 - 1))  # ComfyUI's own calls on numpy's global generator
    left, top = np.random.randint(0, 21), np.random.randint(0, 16)
    np.testing.assert_array_equal(out[0].numpy(),
                                  as_bytes(image[0, top:top + 5, left:left + 10]).astype(np.float32) / 255)


def test_normalize_brightness_contrast() -> None:
    image = torch.tensor([[[[0.25, 0.5, 1.0]]]])
    assert torch.allclose(NormalizeImages().process(image, mean=0.5, std=0.25)[0], torch.tensor([-1.0, 0.0, 2.0]))
    assert torch.allclose(AdjustBrightness().process(image, factor=1.5)[0], torch.tensor([0.375, 0.75, 1.0]))
    assert torch.allclose(AdjustContrast().process(image, factor=2.0)[0], torch.tensor([0.0, 0.5, 1.0]))


def test_shuffles_follow_numpys_permutation_and_keep_pairs() -> None:
    images = [torch.full((1, 2, 2, 3), i / 10) for i in range(6)]
    (out,) = ShuffleDataset().process(images, [7])
    np.random.seed(7)
    assert [round(float(image[0, 0, 0, 0]) * 10) for image in out] == list(np.random.permutation(6))
    pictures, texts = ShuffleImageTextDataset().process(images, [str(i) for i in range(6)], [7])
    assert [round(float(image[0, 0, 0, 0]) * 10) for image in pictures] == [int(t) for t in texts]
    with pytest.raises(ValueError, match="texts: 2 captions for 6 images"):
        ShuffleImageTextDataset().process(images, ["a", "b"], [7])


def test_deduplication_by_average_hash() -> None:
    left = torch.zeros(1, 16, 16, 3)
    left[:, :, :8] = 1.0
    top = torch.zeros(1, 16, 16, 3)
    top[:, :8] = 1.0
    near = left.clone()
    near[:, 0, 15] = 0.2  # a speck: the same hash
    (kept,) = ImageDeduplication().process([left, near, top, left], [0.95])
    assert len(kept) == 2 and kept[0] is left and kept[1] is top
    (all_kept,) = ImageDeduplication().process([left, top], [0.0 + 1e-9])
    assert len(all_kept) == 1  # half the bits agree: similarity 0.5 is above any tiny threshold


def test_grid_places_cells_with_black_padding() -> None:
    cells = [torch.full((1, 4, 4, 3), v) for v in (1.0, 0.5)] + [torch.full((1, 2, 2, 3), 0.25)]
    (grid,) = ImageGrid().process(cells, [2], [4], [4], [1])
    assert grid.shape == (1, 9, 9, 3)
    pixels = as_bytes(grid[0])
    assert pixels[0, 0, 0] == 255 and pixels[0, 5, 0] == 127 and pixels[5, 0, 0] == 63
    assert pixels[4].max() == 0 and pixels[:, 4].max() == 0 and pixels[5:, 5:].max() == 0  # padding, empty cell
    with pytest.raises(ValueError, match="images: cannot make a grid of no images"):
        ImageGrid().process([], [2], [4], [4], [1])


def test_merge_image_lists_passes_the_list() -> None:
    images = [torch.zeros(1, 2, 2, 3), torch.ones(1, 3, 3, 3)]
    assert MergeImageLists().process(images)[0] == images


def test_dataset_nodes_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 3, "color": 0x808080}},
        "2": {"class_type": "RebatchImages", "inputs": {"images": ["1", 0], "batch_size": 1}},
        "3": {"class_type": "AdjustBrightness", "inputs": {"images": ["2", 0], "factor": 2.0}},  # once per image
        "4": {"class_type": "ImageGrid", "inputs": {"images": ["3", 0], "columns": 3, "cell_width": 32,
                                                    "cell_height": 32, "padding": 2}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "grid"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["5"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        assert png.size == (3 * 32 + 2 * 2, 32)
        assert png.getpixel((0, 0)) == (255, 255, 255) and png.getpixel((33, 10)) == (0, 0, 0)
