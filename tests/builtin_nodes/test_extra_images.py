"""FluxKontextImageScale against ComfyUI's definition (comfy_extras/nodes_flux.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.builtin_nodes.extra_images import NODES, FluxKontextImageScale, kontext_size
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


def test_a_workflow_runs_the_node_through_the_executor() -> None:
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "3": {"class_type": "FluxKontextImageScale", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "Capture", "inputs": {"value": ["3", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["4"]["value"]
    assert out.shape == (1, 752, 1392, 3)  # 16:9 -> the nearest listed ratio, 1392x752
