"""Primitive nodes: ComfyUI's widget options (control_after_generate "fixed", the float step) and values through."""

from __future__ import annotations

from typing import Any

from tests.builtin_nodes.conftest import call


def test_primitive_widgets_as_comfyui_declares_them(hearth_runtime: Any) -> None:
    nodes = hearth_runtime.nodes
    assert nodes["PrimitiveInt"].object_info()["input"]["required"]["value"][1]["control_after_generate"] == "fixed"
    assert nodes["PrimitiveFloat"].object_info()["input"]["required"]["value"][1]["step"] == 0.1
    assert nodes["PrimitiveStringMultiline"].object_info()["input"]["required"]["value"][1]["multiline"] is True


def test_primitives_pass_their_value(run_prompt: Any) -> None:
    assert call("PrimitiveBoolean", value=True) == (True,)
    prompt = {"i": {"class_type": "PrimitiveInt", "inputs": {"value": -7}},
              "f": {"class_type": "PrimitiveFloat", "inputs": {"value": 0.25}},
              "m": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * b", "values.a": ["i", 0],
                                                                   "values.b": ["f", 0]}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["m", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["p"] == {"text": ["-1.75"]}
