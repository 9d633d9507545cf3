"""Every image a user gets to see is converted to 8 bits as ComfyUI converts it: scaled by 255, clipped, truncated.

ComfyUI's savers do ``np.clip(255. * x, 0, 255).astype(np.uint8)`` (its video savers the torch equivalent), so
0.999 is written 254 (not 255), 0.5 is 127 (not 128) and 0.0039 is 0 (not 1). A saver that rounds instead gives
pictures one level off in about half of their values, which a pixel comparison with ComfyUI shows at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from hearth.core.images import tensor_to_pil
from tests.builtin_nodes.conftest import call

VALUES = (0.999, 0.5, 0.0039)
# 254.745, 127.5 and 0.9945, truncated: what ComfyUI writes.
EXPECTED = (254, 127, 0)


def image() -> torch.Tensor:
    """One 1x2 RGB image: the first pixel holds VALUES, the second VALUES reversed."""
    return torch.tensor([[[VALUES, VALUES[::-1]]]], dtype=torch.float32)


def pixels(path: Path, frame: int = 0) -> list[tuple[int, ...]]:
    with Image.open(path) as opened:
        opened.seek(frame)
        rgb = opened.convert("RGB")
        return [rgb.getpixel((x, 0)) for x in range(rgb.width)]


def test_save_image_and_preview_image_truncate(folders: Folders) -> None:
    saved = call("SaveImage", images=image(), filename_prefix="eight")["ui"]["images"][0]
    assert pixels(folders.output / saved["subfolder"] / saved["filename"]) == [EXPECTED, EXPECTED[::-1]]
    preview = call("PreviewImage", images=image())["ui"]["images"][0]
    assert preview["type"] == "temp"
    assert pixels(folders.temp / preview["subfolder"] / preview["filename"]) == [EXPECTED, EXPECTED[::-1]]


def test_save_image_advanced_png_truncates(folders: Folders) -> None:
    result = call("SaveImageAdvanced", images=image(), filename_prefix="adv", format="png",
                  **{"format.bit_depth": "8-bit", "format.input_color_space": "sRGB"})
    saved = result["ui"]["images"][0]
    assert pixels(folders.output / saved["subfolder"] / saved["filename"]) == [EXPECTED, EXPECTED[::-1]]


def test_the_shared_pil_helper_truncates() -> None:
    shown = tensor_to_pil(image()[0])
    assert [shown.getpixel((x, 0)) for x in range(2)] == [EXPECTED, EXPECTED[::-1]]


def test_video_frames_truncate() -> None:
    # The frames every video saver encodes (SaveWEBM, SaveVideo, the animated WEBP/PNG savers).
    video_io = pytest.importorskip("hearth_video.video_io")
    frames = video_io.to_uint8(image())
    assert frames.dtype == np.uint8 and frames[0, 0].tolist() == [list(EXPECTED), list(EXPECTED[::-1])]


@pytest.mark.parametrize("node, options", [
    ("SaveAnimatedPNG", {"fps": 4.0, "compress_level": 1}),
    ("SaveAnimatedWEBP", {"fps": 4.0, "lossless": True, "quality": 100, "method": "default"}),
])
def test_animated_savers_truncate(folders: Folders, node: str, options: dict[str, Any]) -> None:
    video_nodes = pytest.importorskip("hearth_video.video_nodes")
    cls = video_nodes.NODES[node]
    frames = torch.cat([image(), image().flip(2)])  # two different frames, so none is merged away
    result = getattr(cls(), cls.FUNCTION)(images=frames, filename_prefix="anim", **options)
    saved = result["ui"]["images"][0]
    path = folders.output / saved["subfolder"] / saved["filename"]
    assert pixels(path, 0) == [EXPECTED, EXPECTED[::-1]]
    assert pixels(path, 1) == [EXPECTED[::-1], EXPECTED]


def test_latent_previews_truncate() -> None:
    # ComfyUI's preview_to_image: a -1..1 value v becomes trunc(255 * (v + 1) / 2). With the identity as the
    # latent-to-RGB map, a latent of 2x - 1 previews as the bytes of x.
    preview = pytest.importorskip("hearth_samplers.preview")
    latent = (torch.tensor(VALUES).reshape(1, 3, 1, 1) * 2 - 1).expand(1, 3, 1, 2)
    shown = preview.latent_to_image(latent, factors=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    assert [shown.getpixel((x, 0)) for x in range(2)] == [EXPECTED, EXPECTED]
