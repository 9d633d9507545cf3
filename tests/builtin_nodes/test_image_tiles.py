"""SplitImageToTileList / ImageMergeTileList: ComfyUI's grid by hand, and split-then-merge gives the image back."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_tiles import ImageMergeTileList, SplitImageToTileList, grid
from hearth.core.context import Folders


def test_grid_steps_by_tile_minus_overlap_and_pulls_the_last_tile_back() -> None:
    assert grid(200, 150, 100, 100, 20) == [(0, 0, 100, 100), (80, 0, 180, 100), (100, 0, 200, 100),
                                            (0, 50, 100, 150), (80, 50, 180, 150), (100, 50, 200, 150)]
    # The step never drops below a quarter tile, however large the overlap.
    assert [x0 for x0, *_ in grid(100, 10, 40, 10, 39)] == [0, 10, 20, 30, 40, 50, 60]
    assert grid(30, 20, 64, 64, 8) == [(0, 0, 30, 20)]  # a tile larger than the image is the whole image


def test_split_cuts_the_grid() -> None:
    image = torch.rand(2, 150, 200, 3)
    (tiles,) = SplitImageToTileList().split(image, 100, 100, 20)
    assert len(tiles) == 6 and torch.equal(tiles[4], image[:, 50:150, 80:180])


@pytest.mark.parametrize("overlap", [0, 20, 60])
def test_split_then_merge_gives_the_image_back(overlap: int) -> None:
    image = torch.rand(1, 150, 200, 4, generator=torch.Generator().manual_seed(overlap))
    (tiles,) = SplitImageToTileList().split(image, 100, 100, overlap)
    (merged,) = ImageMergeTileList().merge(tiles, [200], [150], [overlap])
    assert torch.allclose(merged, image, atol=1e-5)


def test_merge_blends_overlaps_with_sine_weights() -> None:
    tiles = [torch.zeros(1, 100, 100, 3), torch.ones(1, 100, 100, 3)]
    (merged,) = ImageMergeTileList().merge(tiles, [180], [100], [20])
    row = merged[0, 50, :, 0]
    assert torch.all(row[:80] == 0.0) and torch.all(row[100:] == 1.0)
    assert torch.all(row[81:99].diff() > 0)  # the overlap ramps from the first tile to the second
    with pytest.raises(ValueError, match="image_list: tiles of 2 images x 3 channels do not match"):
        ImageMergeTileList().merge([tiles[0], torch.ones(2, 100, 100, 3)], [180], [100], [20])


def test_tiles_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 80, "batch_size": 1, "color": 0x0080FF}},
        "2": {"class_type": "SplitImageToTileList", "inputs": {"image": ["1", 0], "tile_width": 64, "tile_height": 64,
                                                               "overlap": 16}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},  # runs once per tile
        "4": {"class_type": "ImageMergeTileList", "inputs": {"image_list": ["3", 0], "final_width": 96,
                                                             "final_height": 80, "overlap": 16}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "tiles"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["5"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        assert png.size == (96, 80)
        assert {png.getpixel((x, y)) for x in (0, 40, 95) for y in (0, 40, 79)} <= {(255, 127, 0), (255, 126, 0)}
