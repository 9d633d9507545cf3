"""FluxKontextImageScale and LTXVPreprocess against ComfyUI's definitions (comfy_extras/nodes_flux.py, nodes_lt.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.extra_images import NODES, FluxKontextImageScale, LTXVPreprocess, kontext_size
from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def ramp(height: int, width: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height)[:, None, None].expand(height, width, 1)
    xs = torch.linspace(0, 1, width)[None, :, None].expand(height, width, 1)
    base = torch.cat([ys, xs, ys * xs], dim=-1)[None].repeat(batch, 1, 1, 1)
    return (base + 0.1 * torch.rand(batch, height, width, 3, generator=gen)).clamp(0, 1)


@pytest.mark.parametrize(("width", "height", "expected"), [
    (1024, 1024, (1024, 1024)),
    (64, 36, (1392, 752)),   # 16:9 = 1.778; 1392/752 = 1.851 is nearer than 1328/800 = 1.66
    (36, 64, (752, 1392)),
    (20, 10, (1456, 720)),   # 2.0; 1456/720 = 2.022
    (4000, 10, (1568, 672)),  # wider than any: the widest listed
])
def test_kontext_size_picks_the_nearest_aspect_ratio(width: int, height: int, expected: tuple[int, int]) -> None:
    assert kontext_size(width, height) == expected


def test_kontext_scale_is_pil_lanczos_at_8_bits() -> None:
    image = ramp(10, 20)
    (out,) = FluxKontextImageScale().execute(image)
    assert out.shape == (1, 720, 1456, 3)
    # ComfyUI's lanczos: the float image to bytes by truncation, PIL's LANCZOS on the RGB picture, back / 255.
    as_bytes = np.clip(255.0 * image[0].numpy(), 0, 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(as_bytes).resize((1456, 720), Image.Resampling.LANCZOS), np.float32) / 255
    assert torch.equal(out[0], torch.from_numpy(expected))


def test_kontext_scale_crops_the_centre_before_resizing() -> None:
    image = torch.zeros(1, 10, 40, 3)
    image[:, :, :2] = 1.0  # a white band at the left edge, which the centre crop to 2.186:1 removes
    (out,) = FluxKontextImageScale().execute(image)
    assert out.shape == (1, 672, 1568, 3)  # 4:1 -> the widest listed resolution
    assert out.max() == 0.0


def test_kontext_scale_names_a_wrong_input() -> None:
    with pytest.raises(ValueError, match="FluxKontextImageScale: image: expected an IMAGE"):
        FluxKontextImageScale().execute(torch.zeros(1, 8, 8))


def test_preprocess_without_compression_returns_the_frames_untouched() -> None:
    image = ramp(7, 9)
    (out,) = LTXVPreprocess().execute(image, 0)
    assert out is image


def test_preprocess_round_trips_each_frame_through_h264() -> None:
    pytest.importorskip("av")
    image = ramp(17, 23, batch=2)
    (light,) = LTXVPreprocess().execute(image, 5)
    (heavy,) = LTXVPreprocess().execute(image, 60)
    # Odd sides lose their last row and column (4:2:0 needs even sizes); values stay in 0..1 at 1/255 steps.
    assert light.shape == heavy.shape == (2, 16, 22, 3)
    assert light.min() >= 0 and light.max() <= 1
    assert torch.equal((light * 255).round() / 255, light)
    reference = image[:, :16, :22]
    light_error = (light - reference).abs().mean()
    heavy_error = (heavy - reference).abs().mean()
    assert 0 < light_error < heavy_error < 0.2  # compression shows, and more of it at a higher CRF
    assert torch.equal(LTXVPreprocess().execute(image, 5)[0], light)  # the encoder is deterministic
    assert not torch.equal(light[0], light[1])  # each frame is encoded on its own


def test_preprocess_refuses_a_one_pixel_image() -> None:
    pytest.importorskip("av")
    with pytest.raises(ValueError, match="LTXVPreprocess: image of 1x1 pixels is too small"):
        LTXVPreprocess().execute(torch.zeros(1, 1, 1, 3), 35)


class Source:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[torch.Tensor]:
        return (ramp(9, 16),)


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("IMAGE",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def test_a_workflow_runs_both_nodes_through_the_executor() -> None:
    pytest.importorskip("av")
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "LTXVPreprocess", "inputs": {"image": ["1", 0], "img_compression": 35}},
        "3": {"class_type": "FluxKontextImageScale", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "Capture", "inputs": {"value": ["3", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["4"]["value"]
    assert out.shape == (1, 720, 1456, 3)  # 9x16 encodes as 8x16 (even sides): 2:1, nearest listed 1456x720
