"""ComfyUI's logic nodes: the lazy If/Else switch (the branch not taken never runs), Custom Combo, Not/And/Or, Pass
or None -- through the real executor, with ComfyUI's prompt shapes (dotted Autogrow inputs, frontend widgets)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hearth.core.node_registry import NodeRegistry
from tests.builtin_nodes.conftest import call


def failing(expression: str = "1 / 0") -> dict[str, Any]:
    """A node that fails if it ever runs: the switch must not evaluate it."""
    return {"class_type": "ComfyMathExpression", "inputs": {"expression": expression}}


def switch_prompt(switch: bool, on_false: Any, on_true: Any) -> dict[str, Any]:
    prompt: dict[str, Any] = {"s": {"class_type": "ComfySwitchNode", "inputs": {"switch": switch}},
                              "show": {"class_type": "PreviewAny", "inputs": {"source": ["s", 0]}}}
    for name, branch in (("on_false", on_false), ("on_true", on_true)):
        if branch is not None:
            prompt[name] = branch
            prompt["s"]["inputs"][name] = [name, 0]
    return prompt


@pytest.mark.parametrize("switch", [True, False])
def test_switch_runs_only_the_chosen_branch(run_prompt: Any, switch: bool) -> None:
    chosen = {"class_type": "PrimitiveInt", "inputs": {"value": 7}}
    prompt = switch_prompt(switch, on_false=chosen if not switch else failing(),
                           on_true=chosen if switch else failing())
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["show"] == {"text": ["7"]}
    skipped = "on_false" if switch else "on_true"
    assert skipped not in result.executed and ("on_true" if switch else "on_false") in result.executed


def test_switch_on_an_unconnected_branch_gives_none(run_prompt: Any) -> None:
    result = run_prompt(switch_prompt(True, on_false={"class_type": "PrimitiveInt", "inputs": {"value": 1}},
                                      on_true=None))
    assert result.ok, result.error
    assert result.outputs["show"] == {"text": ["None"]}


def test_switch_passes_any_type_and_declares_comfyui_shape(run_prompt: Any, hearth_runtime: Any) -> None:
    prompt = switch_prompt(False, on_false={"class_type": "EmptyImage", "inputs": {
        "width": 4, "height": 2, "batch_size": 1, "color": 0xFF0000}}, on_true=failing())
    prompt["save"] = {"class_type": "PreviewImage", "inputs": {"images": ["s", 0]}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert len(result.outputs["save"]["images"]) == 1
    registry: NodeRegistry = hearth_runtime.nodes
    info = registry["ComfySwitchNode"].object_info()
    assert info["input"]["required"] == {"switch": ["BOOLEAN", {}]}
    assert info["input"]["optional"]["on_true"][0] == "COMFY_MATCHTYPE_V3"
    assert info["input"]["optional"]["on_true"][1]["lazy"] is True
    assert info["output"] == ["COMFY_MATCHTYPE_V3"] and info["output_name"] == ["output"]
    assert info["category"] == "utilities/logic" and info["display_name"] == "If/Else Switch"


def test_custom_combo_takes_the_frontend_widgets(run_prompt: Any) -> None:
    # A template's widgets: choice, index, then the user's options (option0, option1...).
    prompt = {"c": {"class_type": "CustomCombo", "inputs": {"choice": "9:16", "index": 1, "option0": "16:9",
                                                            "option1": "9:16", "option2": ""}},
              "s": {"class_type": "PreviewAny", "inputs": {"source": ["c", 0]}},
              "i": {"class_type": "PreviewAny", "inputs": {"source": ["c", 1]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["s"] == {"text": ["9:16"]} and result.outputs["i"] == {"text": ["1"]}


@pytest.mark.parametrize(("node", "values", "expected"), [
    ("ComfyAndNode", {"value0": True, "value1": 1, "value2": "x"}, True),
    ("ComfyAndNode", {"value0": True, "value1": 0}, False),
    ("ComfyOrNode", {"value0": 0, "value1": "", "value2": 0.5}, True),
    ("ComfyOrNode", {"value0": 0, "value1": ""}, False),
])
def test_and_or_use_python_truthiness(node: str, values: dict[str, Any], expected: bool) -> None:
    assert call(node, **{f"values.{k}": v for k, v in values.items()}) == (expected,)


def test_and_or_declare_comfyui_autogrow(hearth_runtime: Any) -> None:
    for name in ("ComfyAndNode", "ComfyOrNode"):
        info = hearth_runtime.nodes[name].object_info()
        assert info["input"]["required"]["values"] == ["COMFY_AUTOGROW_V3", {"template": {
            "input": {"required": {"value": ["*", {}]}}, "prefix": "value", "min": 1, "max": 10}}]


def test_and_through_the_executor(run_prompt: Any) -> None:
    prompt = {"t": {"class_type": "PrimitiveBoolean", "inputs": {"value": True}},
              "f": {"class_type": "PrimitiveInt", "inputs": {"value": 0}},
              "and": {"class_type": "ComfyAndNode", "inputs": {"values.value0": ["t", 0], "values.value1": ["f", 0]}},
              "not": {"class_type": "ComfyNotNode", "inputs": {"value": ["and", 0]}},
              "show": {"class_type": "PreviewAny", "inputs": {"source": ["not", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["show"] == {"text": ["True"]}


def test_not_of_a_tensor_names_the_input() -> None:
    assert call("ComfyNotNode", value="") == (True,)
    with pytest.raises(ValueError, match="input 'value': a Tensor has no single truth value"):
        call("ComfyNotNode", value=torch.ones(3))


@pytest.mark.parametrize(("anything", "default", "expected"), [
    (5, 7, (5, False)), (None, 7, (7, False)), (None, None, (None, True)), (0, 7, (0, False)),
])
def test_pass_or_none(anything: Any, default: Any, expected: tuple[Any, bool]) -> None:
    assert call("ComfyPassOrNoneNode", anything=anything, default=default) == expected


def test_switch_flipped_between_runs_runs_the_other_branch_then(run_prompt: Any) -> None:
    prompt = switch_prompt(True, on_false={"class_type": "PrimitiveInt", "inputs": {"value": 1}},
                           on_true={"class_type": "PrimitiveInt", "inputs": {"value": 2}})
    first = run_prompt(prompt)
    assert first.ok and first.outputs["show"] == {"text": ["2"]} and "on_false" not in first.executed
    prompt["s"]["inputs"]["switch"] = False
    second = run_prompt(prompt)
    assert second.ok and second.outputs["show"] == {"text": ["1"]} and "on_false" in second.executed
