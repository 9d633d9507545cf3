"""ComfyUI's V3 inputs that a V1-shaped definition carries: a required Autogrow input, the recorder widget."""

from __future__ import annotations

from typing import Any

from hearth.core.executor import Executor
from hearth.core.executor.workflow import ui_to_api
from hearth.core.node_registry import NodeRegistry


class _Members(dict):
    """An optional section claiming the Autogrow's dotted members, as the V3 nodes of the builtin plugin declare."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.startswith("values.")

    def __getitem__(self, key: str) -> Any:
        return ("INT", {}) if key.startswith("values.") else super().__getitem__(key)


class Total:
    CATEGORY = "testing"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"values": ("COMFY_AUTOGROW_V3", {"template": {"input": {"required": {"value": ("INT", {})}}}})},
                "optional": _Members()}

    def run(self, **members: int) -> tuple[int]:
        return (sum(members.values()),)


class Recorder:
    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO_RECORD", {})}}

    def run(self, audio: str) -> tuple[str]:
        return (audio,)


def registry() -> NodeRegistry:
    return NodeRegistry.from_classes({"Total": Total, "Recorder": Recorder})


def test_a_required_autogrow_input_is_satisfied_by_its_members() -> None:
    result = Executor(registry()).validate({"1": {"class_type": "Total", "inputs": {"values.a": 2, "values.b": 3}}})
    assert result.error is None, result.response()


def test_the_recorder_widget_value_is_read_from_a_ui_workflow() -> None:
    workflow = {"nodes": [{"id": 1, "type": "Recorder", "inputs": [], "outputs": [],
                           "widgets_values": ["recording.wav [temp]"], "mode": 0}], "links": []}
    assert ui_to_api(workflow, registry())["1"]["inputs"] == {"audio": "recording.wav [temp]"}
