"""Hunyuan3D 2's model-free nodes against ComfyUI's definitions (comfy_extras/nodes_hunyuan3d.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hearth_sd.nodes_extra_hunyuan3d import (
    NODES,
    EmptyLatentHunyuan3Dv2,
    Hunyuan3Dv2Conditioning,
    Hunyuan3Dv2ConditioningMultiView,
    view_embedding,
)

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def vision(seed: int, batch: int = 1, tokens: int = 5, width: int = 8) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(seed)
    return SimpleNamespace(last_hidden_state=torch.randn(batch, tokens, width, generator=gen),
                           image_embeds=torch.zeros(batch, 4))


def test_empty_latent_is_zeros_of_the_shape_vae_layout() -> None:
    (latent,) = EmptyLatentHunyuan3Dv2().execute(96, 2)
    assert latent["type"] == "hunyuan3dv2"
    assert latent["samples"].shape == (2, 64, 96) and not latent["samples"].any()
    spec = EmptyLatentHunyuan3Dv2.INPUT_TYPES()["required"]
    assert spec["resolution"] == ("INT", {"default": 3072, "min": 1, "max": 8192})


def test_conditioning_is_the_hidden_state_and_zeros() -> None:
    out = vision(0)
    positive, negative = Hunyuan3Dv2Conditioning().execute(out)
    assert positive[0][0] is out.last_hidden_state and positive[0][1] == {}
    assert torch.equal(negative[0][0], torch.zeros(1, 5, 8))


def test_view_embedding_by_hand() -> None:
    emb = view_embedding(4)
    # width 4: frequencies 1 and 1/100; view v gives [sin v, sin v/100, cos v, cos v/100].
    expected = torch.tensor([[math.sin(v), math.sin(v / 100), math.cos(v), math.cos(v / 100)] for v in range(4)])
    assert torch.allclose(emb, expected, atol=1e-6)


def test_multiview_adds_each_view_its_embedding_and_joins_tokens() -> None:
    front, back = vision(1), vision(2, tokens=3)
    positive, negative = Hunyuan3Dv2ConditioningMultiView().execute(front=front, back=back)
    emb = view_embedding(8)
    expected = torch.cat([front.last_hidden_state + emb[0], back.last_hidden_state + emb[2]], dim=1)
    assert torch.allclose(positive[0][0], expected)
    assert positive[0][0].shape == (1, 8, 8)
    assert torch.equal(negative[0][0], torch.zeros(1, 8, 8))


def test_multiview_refuses_no_views_and_mixed_models() -> None:
    with pytest.raises(ValueError, match="no view is connected"):
        Hunyuan3Dv2ConditioningMultiView().execute()
    with pytest.raises(ValueError, match="left has states \\(1, 5, 6\\)"):
        Hunyuan3Dv2ConditioningMultiView().execute(front=vision(0), left=vision(1, width=6))
    with pytest.raises(ValueError, match="Hunyuan3Dv2Conditioning: clip_vision_output is not a CLIP_VISION_OUTPUT"):
        Hunyuan3Dv2Conditioning().execute(torch.zeros(1, 5, 8))


class Source:
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any]:
        return (vision(3),)


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"positive": ("CONDITIONING",), "latent": ("LATENT",)}}

    def capture(self, positive: Any, latent: Any) -> dict[str, Any]:
        return {"ui": {"value": [(positive, latent)]}}


def test_a_workflow_runs_through_the_executor() -> None:
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "Hunyuan3Dv2ConditioningMultiView", "inputs": {"front": ["1", 0], "right": ["1", 0]}},
        "3": {"class_type": "EmptyLatentHunyuan3Dv2", "inputs": {"resolution": 16, "batch_size": 1}},
        "4": {"class_type": "Capture", "inputs": {"positive": ["2", 0], "latent": ["3", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    ((positive, latent),) = result.outputs["4"]["value"]
    assert positive[0][0].shape == (1, 10, 8) and latent["samples"].shape == (1, 64, 16)
