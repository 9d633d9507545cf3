"""UNetTemporalAttentionMultiply against ComfyUI's definition (nodes_attention_multiply.py) on the tiny SD1 UNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hearth_sd.nodes_extra_attention import NODES, UNetTemporalAttentionMultiply
from hearth_sd.tiny import make_tiny_checkpoint

from hearth.core.executor import Executor
from hearth.core.models.loader_nodes import CheckpointLoaderSimple
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import NodeDefinition
from hearth.core.runtime import current_runtime
from tests.sd.nodes_testing import in_runtime


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_tiny_checkpoint("sd1", folder / "checkpoints" / "tiny-sd1.safetensors")
    return folder


def test_attention_outputs_are_scaled_and_nothing_else(models: Path) -> None:
    with in_runtime(models):
        model, _, _ = CheckpointLoaderSimple().load_checkpoint("tiny-sd1.safetensors")
        (patched,) = UNetTemporalAttentionMultiply().execute(model, 0.5, 3.0, 2.0, 3.0)
        base, now = model.model_state_dict(), {k: v[0] for k, v in patched.get_key_patches().items()}
        self_out = [k for k in base if k.endswith(("attn1.to_out.0.weight", "attn1.to_out.0.bias"))]
        cross_out = [k for k in base if k.endswith(("attn2.to_out.0.weight", "attn2.to_out.0.bias"))]
        assert self_out and cross_out
        for key in self_out:  # SD1 has no time_stack layers: the structural factors apply
            torch.testing.assert_close(now[key].float(), (base[key].float() * 0.5).to(base[key].dtype).float())
        for key in cross_out:
            torch.testing.assert_close(now[key].float(), (base[key].float() * 2.0).to(base[key].dtype).float())
        others = [k for k in base if k not in self_out + cross_out]
        assert all(torch.equal(now[k], base[k]) for k in others)
        assert {k: v[0] for k, v in model.get_key_patches().items()}.keys() == base.keys()
        assert torch.equal(model.get_key_patches()[self_out[0]][0], base[self_out[0]])  # the loaded model untouched


def test_a_non_model_is_named() -> None:
    with pytest.raises(ValueError, match="UNetTemporalAttentionMultiply: model is not a MODEL"):
        UNetTemporalAttentionMultiply().execute(torch.zeros(1), 1.0, 1.0, 1.0, 1.0)
    spec = UNetTemporalAttentionMultiply.INPUT_TYPES()["required"]
    assert list(spec) == ["model", "self_structural", "self_temporal", "cross_structural", "cross_temporal"]


class Denoise:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",)}}

    def run(self, model: Any) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(0)
        x, context = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, 32, generator=gen)
        return {"ui": {"out": [model.denoise(x, torch.tensor([2.0]), context, {})]}}


def test_the_patched_model_predicts_differently_through_the_executor(models: Path) -> None:
    with in_runtime(models):
        registry = current_runtime().nodes
        registry = NodeRegistry({**registry, "Denoise": NodeDefinition("Denoise", Denoise)}, registry.types)
        loader = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd1.safetensors"}}

        def run(factors: tuple[float, float, float, float]) -> torch.Tensor:
            names = ("self_structural", "self_temporal", "cross_structural", "cross_temporal")
            prompt = {"1": loader,
                      "2": {"class_type": "UNetTemporalAttentionMultiply",
                            "inputs": {"model": ["1", 0], **dict(zip(names, factors, strict=True))}},
                      "3": {"class_type": "Denoise", "inputs": {"model": ["2", 0]}}}
            result = Executor(registry).run(prompt)
            assert result.ok, result.error or result.validation.node_errors
            return result.outputs["3"]["out"][0]

        plain, scaled = run((1.0, 1.0, 1.0, 1.0)), run((0.0, 1.0, 0.0, 1.0))
        assert not torch.allclose(plain, scaled, atol=1e-4)
        assert "UNetTemporalAttentionMultiply" in NODES
