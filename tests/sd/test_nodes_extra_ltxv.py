"""LTXVConditioning, LTXVCropGuides and LTXVScheduler against ComfyUI's definitions (comfy_extras/nodes_lt.py): model-free."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hearth_sd.nodes_extra_ltxv import NODES, LTXVConditioning, LTXVCropGuides, LTXVScheduler

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def conditioning(keyframe_starts: list[int] | None = None) -> list[list[Any]]:
    options: dict[str, Any] = {"pooled_output": torch.ones(1, 8)}
    if keyframe_starts is not None:
        # LTXVAddGuide's layout: [B, 3 (t, y, x), tokens, 2 (start, end)]; each guide frame has many tokens.
        starts = torch.tensor(keyframe_starts, dtype=torch.float32).repeat_interleave(4)
        idxs = torch.zeros(1, 3, starts.numel(), 2)
        idxs[:, 0, :, 0] = starts
        idxs[:, 0, :, 1] = starts + 1
        options["keyframe_idxs"] = idxs
    return [[torch.zeros(1, 6, 8), options], [torch.ones(1, 6, 8), {"strength": 0.5}]]


def test_conditioning_sets_the_frame_rate_on_copies() -> None:
    positive, negative = conditioning(), conditioning()
    out_pos, out_neg = LTXVConditioning().execute(positive, negative, 24.0)
    assert [o["frame_rate"] for _, o in out_pos] == [24.0, 24.0]
    assert [o["frame_rate"] for _, o in out_neg] == [24.0, 24.0]
    assert out_pos[1][1]["strength"] == 0.5 and out_pos[0][0] is positive[0][0]
    assert all("frame_rate" not in o for _, o in positive)  # a cached input is never written into
    spec = LTXVConditioning.INPUT_TYPES()["required"]["frame_rate"]
    assert spec == ("FLOAT", {"default": 25.0, "min": 0.0, "max": 1000.0, "step": 0.01})
    assert LTXVConditioning.RETURN_NAMES == ("positive", "negative")


def test_crop_guides_removes_the_appended_guide_frames() -> None:
    samples = torch.arange(2 * 4 * 7 * 2 * 3, dtype=torch.float32).reshape(2, 4, 7, 2, 3)
    mask = torch.rand(2, 1, 7, 1, 1)
    positive = conditioning([0, 5])  # two guides (two distinct start frames), appended as the last 2 latent frames
    pos, neg, latent = LTXVCropGuides().execute(positive, conditioning([0, 5]), {"samples": samples,
                                                                                  "noise_mask": mask})
    assert torch.equal(latent["samples"], samples[:, :, :5])
    assert torch.equal(latent["noise_mask"], mask[:, :, :5])
    assert all(o["keyframe_idxs"] is None for _, o in pos + neg)
    assert positive[0][1]["keyframe_idxs"] is not None  # the given conditioning is untouched


def test_crop_guides_without_guides_keeps_the_frames_and_adds_a_full_mask() -> None:
    samples = torch.rand(1, 4, 3, 2, 2)
    positive, negative = conditioning(), conditioning()
    pos, neg, latent = LTXVCropGuides().execute(positive, negative, {"samples": samples, "batch_index": [3]})
    assert pos is positive and neg is negative
    assert torch.equal(latent["samples"], samples) and latent["samples"] is not samples
    assert torch.equal(latent["noise_mask"], torch.ones(1, 1, 3, 1, 1))
    assert "batch_index" not in latent  # ComfyUI's output carries only samples and noise_mask


def test_crop_guides_names_a_latent_that_is_not_a_video() -> None:
    with pytest.raises(ValueError, match=r"LTXVCropGuides: latent must be a video latent .* got \(1, 4, 8, 8\)"):
        LTXVCropGuides().execute(conditioning(), conditioning(), {"samples": torch.zeros(1, 4, 8, 8)})
    with pytest.raises(ValueError, match="records 2 guide frame"):
        LTXVCropGuides().execute(conditioning([0, 1]), conditioning(), {"samples": torch.zeros(1, 4, 2, 2, 2)})


class Source:
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any, Any, Any]:
        return conditioning([0]), conditioning([0]), {"samples": torch.zeros(1, 4, 4, 2, 2)}


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"positive": ("CONDITIONING",), "latent": ("LATENT",)}}

    def capture(self, positive: Any, latent: Any) -> dict[str, Any]:
        return {"ui": {"value": [(positive, latent)]}}


def test_a_workflow_runs_both_nodes_through_the_executor() -> None:
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "LTXVConditioning", "inputs": {"positive": ["1", 0], "negative": ["1", 1],
                                                           "frame_rate": 30.0}},
        "3": {"class_type": "LTXVCropGuides", "inputs": {"positive": ["2", 0], "negative": ["2", 1],
                                                         "latent": ["1", 2]}},
        "4": {"class_type": "Capture", "inputs": {"positive": ["3", 0], "latent": ["3", 2]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    ((positive, latent),) = result.outputs["4"]["value"]
    assert positive[0][1]["frame_rate"] == 30.0 and positive[0][1]["keyframe_idxs"] is None
    assert latent["samples"].shape == (1, 4, 3, 2, 2)


def reference_sigmas(steps: int, max_shift: float, base_shift: float, stretch: bool, terminal: float,
                     tokens: int) -> list[float]:
    """LTXV's schedule by hand, in plain Python floats."""
    slope = (max_shift - base_shift) / 3072
    shift = tokens * slope + base_shift - slope * 1024
    raw = [1 - i / steps for i in range(steps + 1)]
    sig = [math.exp(shift) / (math.exp(shift) + (1 / s - 1)) if s != 0 else 0.0 for s in raw]
    if stretch:
        last = 1 - sig[-2]
        sig = [1 - (1 - s) / (last / (1 - terminal)) if s != 0 else 0.0 for s in sig]
    return sig


def test_scheduler_matches_the_schedule_by_hand() -> None:
    (sigmas,) = LTXVScheduler().execute(8, 2.05, 0.95, True, 0.1)
    assert sigmas.shape == (9,)
    assert torch.allclose(sigmas, torch.tensor(reference_sigmas(8, 2.05, 0.95, True, 0.1, 4096)), atol=1e-6)
    assert sigmas[0] == pytest.approx(1.0) and sigmas[-1] == 0.0 and sigmas[-2] == pytest.approx(0.1)
    # A latent sets the token count: [1, 128, 3, 4, 5] has 60 tokens, a much smaller shift.
    (small,) = LTXVScheduler().execute(4, 2.05, 0.95, False, 0.1, {"samples": torch.zeros(1, 128, 3, 4, 5)})
    assert torch.allclose(small, torch.tensor(reference_sigmas(4, 2.05, 0.95, False, 0.1, 60)), atol=1e-6)
    assert list(LTXVScheduler.INPUT_TYPES()["optional"]) == ["latent"]
