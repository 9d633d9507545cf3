"""Video-latent frame nodes (TrimVideoLatent, ReplaceVideoLatentFrames, NormalizeVideoLatentStart) on [B, C, t, h, w]."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hearth_sd.nodes_latent_video import (
    NODES,
    NormalizeVideoLatentStart,
    ReplaceVideoLatentFrames,
    TrimVideoLatent,
)

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def numbered(*shape: int) -> torch.Tensor:
    return torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)


def test_trim_drops_leading_frames() -> None:
    video = {"samples": numbered(1, 2, 5, 1, 1), "batch_index": [0]}
    (out,) = TrimVideoLatent().op(video, 2)
    assert torch.equal(out["samples"], video["samples"][:, :, 2:]) and out["batch_index"] == [0]
    assert TrimVideoLatent().op(video, 9)[0]["samples"].shape == (1, 2, 0, 1, 1)
    with pytest.raises(ValueError, match="TrimVideoLatent: samples must be a video latent"):
        TrimVideoLatent().op({"samples": numbered(1, 4, 2, 2)}, 1)


def test_replace_puts_the_source_frames_at_the_index() -> None:
    dest = {"samples": torch.zeros(1, 2, 6, 2, 2)}
    source = {"samples": torch.ones(1, 2, 2, 2, 2), "batch_index": [3]}
    (out,) = ReplaceVideoLatentFrames().op(dest, 3, source)
    assert out["samples"][:, :, 3:5].eq(1).all() and not out["samples"][:, :, :3].any()
    assert not out["samples"][:, :, 5].any() and out["batch_index"] == [3]  # the source's dict, as ComfyUI
    (from_end,) = ReplaceVideoLatentFrames().op(dest, -2, source)
    assert from_end["samples"][:, :, 4:].eq(1).all()
    assert not dest["samples"].any()
    # What does not fit leaves the destination unchanged (ComfyUI warns and returns it).
    assert ReplaceVideoLatentFrames().op(dest, 5, source)[0] is dest
    assert ReplaceVideoLatentFrames().op(dest, 0)[0] is dest
    with pytest.raises(ValueError, match="source \\[1, 4, 2, 2, 2\\] does not fit destination"):
        ReplaceVideoLatentFrames().op(dest, 0, {"samples": torch.ones(1, 4, 2, 2, 2)})


def test_normalize_start_equals_a_numpy_reference() -> None:
    x = torch.randn(1, 3, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    x[:, :, :2] = x[:, :, :2] * 3 + 2  # bright, contrasty start frames
    (out,) = NormalizeVideoLatentStart().op({"samples": x}, 2, 3)
    a = x.double().numpy()
    start, ref = a[:, :, :2], a[:, :, 2:5]
    mean, std = start.mean(axis=(1, 3, 4), keepdims=True), start.std(axis=(1, 3, 4), keepdims=True, ddof=1)
    target_mean = np.clip(ref.mean(), mean - 0.3, mean + 0.35)
    target_std = np.clip(ref.std(ddof=1), std - 0.35, std + 0.5)
    want = (start - mean) / (std + 1e-8) * target_std + target_mean
    np.testing.assert_allclose(out["samples"][:, :, :2].numpy(), want, rtol=1e-4, atol=1e-5)
    assert torch.equal(out["samples"][:, :, 2:], x[:, :, 2:])
    single = {"samples": torch.ones(1, 3, 1, 2, 2)}
    assert NormalizeVideoLatentStart().op(single, 4, 5)[0] is single
    with pytest.raises(ValueError, match="start_frame_count 8 leaves no reference frame"):
        NormalizeVideoLatentStart().op({"samples": x}, 8, 5)


class Source:
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any]:
        return ({"samples": numbered(1, 2, 6, 2, 2)},)


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("LATENT",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def test_a_video_latent_graph_runs_through_the_executor() -> None:
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    result = Executor(registry).run({
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "TrimVideoLatent", "inputs": {"samples": ["1", 0], "trim_amount": 4}},
        "3": {"class_type": "ReplaceVideoLatentFrames", "inputs": {"destination": ["1", 0], "source": ["2", 0],
                                                                   "index": 0}},
        "4": {"class_type": "NormalizeVideoLatentStart", "inputs": {"latent": ["3", 0], "start_frame_count": 2,
                                                                    "reference_frame_count": 5}},
        "5": {"class_type": "Capture", "inputs": {"value": ["4", 0]}},
    })
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["5"]["value"]
    assert out["samples"].shape == (1, 2, 6, 2, 2)
    assert torch.equal(out["samples"][:, :, 2:], numbered(1, 2, 6, 2, 2)[:, :, 2:])
