"""FluxGuidance and ReferenceLatent: keys set on copies of each entry's options, as node_helpers.conditioning_set_values."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hearth_sd.nodes_cond_guidance import (
    NODES,
    FluxGuidance,
    FluxKontextMultiReferenceLatentMethod,
    ReferenceLatent,
)

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry


def conditioning() -> list[list[Any]]:
    return [[torch.zeros(1, 77, 8), {"pooled_output": torch.ones(1, 8)}],
            [torch.ones(1, 77, 8), {"area": (8, 8, 0, 0), "strength": 0.5}]]


def test_flux_guidance_sets_the_value_on_copies_of_every_entry() -> None:
    given = conditioning()
    (out,) = FluxGuidance().append(given, 2.5)
    assert [options["guidance"] for _, options in out] == [2.5, 2.5]
    assert out[1][1]["area"] == (8, 8, 0, 0) and out[0][0] is given[0][0]
    assert all("guidance" not in options for _, options in given)  # the cached input is untouched
    (again,) = FluxGuidance().append(out, 4.0)
    assert again[0][1]["guidance"] == 4.0  # replaced, not added


def test_flux_guidance_inputs_match_comfyui() -> None:
    spec = FluxGuidance.INPUT_TYPES()["required"]["guidance"][1]
    assert spec == {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}
    assert FluxGuidance.CATEGORY == "advanced/conditioning/flux"
    assert ReferenceLatent.CATEGORY == "advanced/conditioning/edit_models"
    assert list(ReferenceLatent.INPUT_TYPES()["optional"]) == ["latent"]


def test_reference_latents_chain_in_order() -> None:
    first, second = torch.zeros(1, 16, 4, 4), torch.ones(1, 16, 2, 2)
    (once,) = ReferenceLatent().append(conditioning(), {"samples": first})
    (twice,) = ReferenceLatent().append(once, {"samples": second, "batch_index": [0]})
    assert [len(options["reference_latents"]) for _, options in twice] == [2, 2]
    refs = twice[0][1]["reference_latents"]
    assert refs[0] is first and refs[1] is second
    assert len(once[0][1]["reference_latents"]) == 1  # appending made a new list


def test_reference_latent_without_a_latent_passes_the_conditioning_through() -> None:
    given = conditioning()
    assert ReferenceLatent().append(given)[0] is given
    with pytest.raises(ValueError, match="ReferenceLatent: latent must be a LATENT"):
        ReferenceLatent().append(given, torch.zeros(1, 4, 2, 2))


@pytest.mark.parametrize(("choice", "stored"), [("offset", "offset"), ("index", "index"), ("uxo/uno", "uxo"),
                                               ("index_timestep_zero", "index_timestep_zero")])
def test_reference_method_is_stored_under_comfyui_names(choice: str, stored: str) -> None:
    (out,) = FluxKontextMultiReferenceLatentMethod().append(conditioning(), choice)
    assert [options["reference_latents_method"] for _, options in out] == [stored, stored]
    spec = FluxKontextMultiReferenceLatentMethod.INPUT_TYPES()["required"]["reference_latents_method"]
    assert spec[0] == ["offset", "index", "uxo/uno", "index_timestep_zero"]
    assert FluxKontextMultiReferenceLatentMethod.DISPLAY_NAME == "Edit Model Reference Method"
    with pytest.raises(ValueError, match="reference_latents_method must be one of"):
        FluxKontextMultiReferenceLatentMethod().append(conditioning(), "nearest")


class Source:
    RETURN_TYPES = ("CONDITIONING", "LATENT")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def make(self) -> tuple[Any, Any]:
        return conditioning(), {"samples": torch.zeros(1, 16, 4, 4)}


class Capture:
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    FUNCTION = "capture"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"value": ("CONDITIONING",)}}

    def capture(self, value: Any) -> dict[str, Any]:
        return {"ui": {"value": [value]}}


def test_a_guidance_graph_runs_through_the_executor() -> None:
    registry = NodeRegistry.from_classes(NODES | {"Source": Source, "Capture": Capture})
    prompt = {
        "1": {"class_type": "Source", "inputs": {}},
        "2": {"class_type": "ReferenceLatent", "inputs": {"conditioning": ["1", 0], "latent": ["1", 1]}},
        "3": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["2", 0], "guidance": 3.5}},
        "4": {"class_type": "Capture", "inputs": {"value": ["3", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error or result.validation.node_errors
    (out,) = result.outputs["4"]["value"]
    assert out[0][1]["guidance"] == 3.5 and out[0][1]["reference_latents"][0].shape == (1, 16, 4, 4)
    too_high = dict(prompt, **{"3": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["2", 0],
                                                                             "guidance": 101.0}}})
    failed = Executor(registry).run(too_high)
    assert not failed.ok and failed.validation.node_errors["3"]["errors"][0]["type"] == "value_bigger_than_max"
