"""DrawBBoxes: outlines where the boxes are, colours by COCO label, canvases sized to the boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.image_annotate import COCO_CLASSES, DrawBBoxes
from hearth.core.context import Folders


def as_bytes(image: torch.Tensor) -> np.ndarray:
    return np.round(image.numpy() * 255).astype(np.uint8)


def test_an_unlabelled_box_is_a_red_three_pixel_outline() -> None:
    (out,) = DrawBBoxes().draw({"x": 4, "y": 5, "width": 10, "height": 8}, torch.zeros(1, 20, 24, 3))
    pixels = as_bytes(out[0])
    assert tuple(pixels[5, 4]) == (255, 0, 0) and tuple(pixels[13, 14]) == (255, 0, 0)  # corners x1,y1 / x2,y2
    assert tuple(pixels[7, 9]) == (255, 0, 0)  # within 3 px of the top edge
    assert tuple(pixels[9, 9]) == (0, 0, 0)  # the inside is left alone
    assert pixels[:4].max() == 0 and pixels[15:].max() == 0


def test_a_coco_label_picks_its_colour_and_writes_text() -> None:
    box = {"x": 2, "y": 2, "width": 60, "height": 30, "label": "bicycle", "score": 0.9}
    (out,) = DrawBBoxes().draw([box], torch.zeros(1, 40, 70, 3))
    pixels = as_bytes(out[0])
    assert COCO_CLASSES.index("bicycle") == 1 and tuple(pixels[2, 2]) == (0, 200, 0)
    inside = pixels[5:29, 5:59]
    # "bicycle 0.90" is written inside the box, in its colour (antialiased: shades of that green).
    assert inside[..., 1].max() > 100 and inside[..., 0].max() == 0 and inside[..., 2].max() == 0
    (plain,) = DrawBBoxes().draw([box | {"label": "not a coco class"}], torch.zeros(1, 40, 70, 3))
    assert tuple(as_bytes(plain[0])[2, 2]) == (255, 0, 0) and as_bytes(plain[0])[5:29, 5:59].max() == 0


def test_the_best_score_is_drawn_last() -> None:
    low = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "person", "score": 0.2}  # red
    high = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "car", "score": 0.8}  # blue
    for order in ([low, high], [high, low]):
        (out,) = DrawBBoxes().draw(order, torch.zeros(1, 16, 16, 3))
        assert tuple(as_bytes(out[0])[0, 5]) == (0, 0, 255)


def test_per_image_lists_and_a_canvas_without_image() -> None:
    frames = [[{"x": 0, "y": 0, "width": 4, "height": 4}], []]
    (out,) = DrawBBoxes().draw(frames, torch.full((2, 8, 8, 3), 0.5))
    assert as_bytes(out[0])[0, 0, 0] == 255 and np.all(as_bytes(out[1]) == 127)  # 0.5 truncates to 127
    (canvas,) = DrawBBoxes().draw([[{"x": 3, "y": 2, "width": 10, "height": 5}]])
    assert canvas.shape == (1, 7, 13, 3)
    (empty,) = DrawBBoxes().draw([])
    assert empty.shape == (1, 640, 640, 3) and float(empty.max()) == 0.0


def test_bad_boxes_are_named() -> None:
    with pytest.raises(ValueError, match="bboxes: item 0 of image 0 is not a box with numeric x, y, width, height"):
        DrawBBoxes().draw([{"x": 1, "y": 1}], torch.zeros(1, 4, 4, 3))
    with pytest.raises(ValueError, match="bboxes: 1 lists of boxes for 2 images"):
        DrawBBoxes().draw([[{"x": 0, "y": 0, "width": 1, "height": 1}]], torch.zeros(2, 4, 4, 3))


def test_draw_bboxes_through_the_executor(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
        "2": {"class_type": "DrawBBoxes", "inputs": {"image": ["1", 0],
                                                     "bboxes": {"x": 1, "y": 1, "width": 12, "height": 12}}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "boxes"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (item,) = result.outputs["3"]["images"]
    with Image.open(hearth_folders.output / item["filename"]) as png:
        assert png.getpixel((1, 1)) == (255, 0, 0) and png.getpixel((7, 7)) == (0, 0, 0)
