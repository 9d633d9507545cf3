"""The node contract: V1 classes and schema nodes both describe themselves as ComfyUI's /object_info does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hearth.core.executor import Executor
from hearth.core.node_registry import NodeRegistry
from hearth.core.nodes import NodeDefinition, NodeDefinitionError
from hearth.core.schema import Input, NodeOutput, Output, Schema, node


class Blend:
    """A V1 node using most of the contract's options."""

    CATEGORY = "image/postprocessing"
    DESCRIPTION = "Blend two values."
    RETURN_TYPES = ("FLOAT", "STRING")
    RETURN_NAMES = ("value", "label")
    OUTPUT_TOOLTIPS = ("the blend", "a label")
    FUNCTION = "blend"
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "a": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "round": 0.001,
                                "tooltip": "first"}),
                "mode": (["normal", "multiply"], {"default": "normal"}),
                "text": ("STRING", {"multiline": True, "default": ""}),
            },
            "optional": {"b": ("FLOAT", {"forceInput": True, "lazy": True})},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"},
        }

    def blend(self, a: float, mode: str, text: str, b: float = 0.0, unique_id: str = "", prompt: Any = None):
        return (a * b if mode == "multiply" else (a + b) / 2, f"{unique_id}:{text}")


def test_v1_object_info_shape() -> None:
    info = NodeDefinition("Blend", Blend).object_info()
    assert info == {
        "input": {
            "required": {
                "a": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "round": 0.001,
                                "tooltip": "first"}],
                "mode": [["normal", "multiply"], {"default": "normal"}],
                "text": ["STRING", {"multiline": True, "default": ""}],
            },
            "optional": {"b": ["FLOAT", {"forceInput": True, "lazy": True}]},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"},
        },
        "input_order": {"required": ["a", "mode", "text"], "optional": ["b"], "hidden": ["unique_id", "prompt"]},
        "output": ["FLOAT", "STRING"],
        "output_is_list": [False, False],
        "output_name": ["value", "label"],
        "name": "Blend",
        "display_name": "Blend",
        "description": "Blend two values.",
        "python_module": __name__,
        "category": "image/postprocessing",
        "output_node": False,
        "output_tooltips": ["the blend", "a label"],
        "deprecated": True,
    }


def test_input_specs_are_normalized() -> None:
    specs = NodeDefinition("Blend", Blend).inputs().specs
    assert specs["mode"].type == "COMBO" and specs["mode"].choices == ("normal", "multiply")
    assert specs["a"].is_widget and not specs["b"].is_widget and specs["b"].lazy
    assert specs["unique_id"].section == "hidden" and specs["unique_id"].type == "UNIQUE_ID"


def test_broken_class_is_refused_with_its_name() -> None:
    class NoFunction:
        RETURN_TYPES = ()

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {}

    with pytest.raises(NodeDefinitionError, match="node class 'Broken'.*has no FUNCTION"):
        NodeDefinition("Broken", NoFunction)

    class BadInputs:
        RETURN_TYPES = ()
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"x": 5}}

        def run(self) -> tuple[()]:
            return ()

    with pytest.raises(NodeDefinitionError, match="BadInputs: input 'x' must be a tuple"):
        NodeDefinition("BadInputs", BadInputs).inputs()


@node(Schema("Repeat", category="text", description="Repeat text.",
             inputs=[Input.string("text", multiline=True), Input.int("times", default=2, min=0, max=10),
                     Input.combo("joiner", ["", " ", ","], default=" ", optional=True)],
             outputs=[Output("STRING", "text", tooltip="the result"), Output("INT", "length")]))
def repeat(text: str, times: int, joiner: str = " ") -> tuple[str, int]:
    value = joiner.join([text] * times)
    return value, len(value)


def test_schema_node_has_the_v1_shape() -> None:
    info = NodeDefinition("Repeat", repeat).object_info()
    assert info["input"] == {
        "required": {"text": ["STRING", {"default": "", "multiline": True}],
                     "times": ["INT", {"default": 2, "min": 0, "max": 10}]},
        "optional": {"joiner": [["", " ", ","], {"default": " "}]},
    }
    assert info["output"] == ["STRING", "INT"] and info["output_name"] == ["text", "length"]
    assert info["output_tooltips"] == ["the result", ""]
    assert info["description"] == "Repeat text." and info["category"] == "text"


@node(Schema("Sleepy", inputs=[Input.float("seconds", default=0.0)], outputs=[Output("FLOAT")]))
async def sleepy(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@node(Schema("Report", output_node=True, hidden=("UNIQUE_ID",),
             inputs=[Input.of("STRING", "text"), Input.of("FLOAT", "waited", optional=True)]))
def report(text: str, unique_id: str, waited: float = 0.0) -> NodeOutput:
    return NodeOutput(ui={"text": [f"{unique_id}:{text}:{waited}"]})


def test_schema_nodes_run_sync_async_and_with_ui() -> None:
    registry = NodeRegistry.from_classes({"Repeat": repeat, "Sleepy": sleepy, "Report": report})
    assert registry["Sleepy"].is_async and not registry["Repeat"].is_async
    prompt = {
        "1": {"class_type": "Repeat", "inputs": {"text": "ab", "times": 3, "joiner": ","}},
        "2": {"class_type": "Sleepy", "inputs": {"seconds": 0.01}},
        "3": {"class_type": "Report", "inputs": {"text": ["1", 0], "waited": ["2", 0]}},
    }
    result = Executor(registry).run(prompt)
    assert result.ok, result.error
    assert result.outputs == {"3": {"text": ["3:ab,ab,ab:0.01"]}}
