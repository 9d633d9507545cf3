"""UI-format details of ComfyUI's newer frontend: V3 DynamicCombo widgets, subgraph inputs matched by name."""

from __future__ import annotations

from typing import Any

from hearth.core.executor.workflow import ui_to_api
from hearth.core.node_registry import NodeRegistry

FORMATS = {"options": [
    {"key": "png", "inputs": {"required": {"bit_depth": (["8-bit", "16-bit"], {}), "space": (["sRGB", "linear"], {})}}},
    {"key": "avif", "inputs": {"required": {
        "save_mode": ("COMFY_DYNAMICCOMBO_V3", {"options": [
            {"key": "still", "inputs": {}},
            {"key": "animation", "inputs": {"required": {"fps": ("FLOAT", {"default": 8.0})}}}]}),
        "quality": ("INT", {"default": 80}), "image": ("IMAGE", {})}}}]}


class Saver:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"filename_prefix": ("STRING", {"default": "x"}),
                             "format": ("COMFY_DYNAMICCOMBO_V3", FORMATS)}}

    def run(self, **_: Any) -> dict[str, Any]:
        return {}


class Loader:
    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"name": (["a.safetensors", "b.safetensors"], {}), "seed": ("INT", {"default": 0}),
                             "text": ("STRING", {"default": ""})},
                "optional": {"image": ("IMAGE", {})}}

    def run(self, **_: Any) -> tuple[str]:
        return ("",)


class Image:
    CATEGORY = "testing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def run(self) -> tuple[Any]:
        return (None,)


def registry() -> NodeRegistry:
    return NodeRegistry.from_classes({"Saver": Saver, "Loader": Loader, "Image": Image})


def one(node_type: str, values: list[Any]) -> dict[str, Any]:
    workflow = {"nodes": [{"id": 1, "type": node_type, "inputs": [], "outputs": [], "widgets_values": values,
                           "mode": 0}], "links": []}
    return ui_to_api(workflow, registry())["1"]["inputs"]


def test_a_dynamic_combo_takes_its_chosen_options_widgets_as_dotted_inputs() -> None:
    assert one("Saver", ["out", "png", "16-bit", "linear"]) == {
        "filename_prefix": "out", "format": "png", "format.bit_depth": "16-bit", "format.space": "linear"}


def test_a_dynamic_combo_inside_a_dynamic_combo_nests_its_names() -> None:
    assert one("Saver", ["out", "avif", "animation", 12.0, 60]) == {
        "filename_prefix": "out", "format": "avif", "format.save_mode": "animation",
        "format.save_mode.fps": 12.0, "format.quality": 60}


def test_subgraph_inputs_match_the_definition_by_name_and_promoted_widgets_follow_its_order() -> None:
    # The definition's inputs: name (COMBO), seed (INT), text (STRING), image (IMAGE). The instance lists only
    # text and image, in its own order; its widgets_values hold every widget-typed input, a seed's control after it.
    definition = {
        "id": "sub-1", "name": "Load",
        "inputs": [{"name": "name", "type": "COMBO", "linkIds": [11]}, {"name": "seed", "type": "INT", "linkIds": [12]},
                   {"name": "text", "type": "STRING", "linkIds": [13]}, {"name": "image", "type": "IMAGE", "linkIds": [14]}],
        "outputs": [{"name": "STRING", "type": "STRING", "linkIds": [15]}],
        "nodes": [{"id": 7, "type": "Loader", "mode": 0, "widgets_values": ["a.safetensors", 0, ""],
                   "inputs": [{"name": "name", "widget": {"name": "name"}, "link": 11},
                              {"name": "seed", "widget": {"name": "seed"}, "link": 12},
                              {"name": "text", "widget": {"name": "text"}, "link": 13},
                              {"name": "image", "type": "IMAGE", "link": 14}]}],
        "links": [{"id": 11, "origin_id": -10, "origin_slot": 0, "target_id": 7, "target_slot": 0, "type": "COMBO"},
                  {"id": 12, "origin_id": -10, "origin_slot": 1, "target_id": 7, "target_slot": 1, "type": "INT"},
                  {"id": 13, "origin_id": -10, "origin_slot": 2, "target_id": 7, "target_slot": 2, "type": "STRING"},
                  {"id": 14, "origin_id": -10, "origin_slot": 3, "target_id": 7, "target_slot": 3, "type": "IMAGE"},
                  {"id": 15, "origin_id": 7, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "STRING"}]}
    workflow = {
        "nodes": [{"id": 1, "type": "Image", "mode": 0, "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [5]}]},
                  {"id": 2, "type": "sub-1", "mode": 0,
                   "inputs": [{"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": None},
                              {"name": "image", "type": "IMAGE", "link": 5}],
                   "widgets_values": ["b.safetensors", 42, "fixed", "a prompt"]}],
        "links": [[5, 1, 0, 2, 1, "IMAGE"]], "definitions": {"subgraphs": [definition]}}
    inputs = ui_to_api(workflow, registry())["2:7"]["inputs"]
    assert inputs == {"name": "b.safetensors", "seed": 42, "text": "a prompt", "image": ["1", 0]}


class Crop:
    CATEGORY = "testing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"crop_region": ("BOUNDING_BOX", {"component": "ImageCrop"}),
                             "background": ("COLOR", {"default": "#000000"}), "width": ("INT", {"default": 8})}}

    def run(self, **_: Any) -> tuple[Any]:
        return (None,)


def test_colour_and_bounding_box_editors_are_widgets_and_the_box_editors_own_fields_are_skipped() -> None:
    box = {"x": 0, "y": 0, "width": 16, "height": 24}
    workflow = {"nodes": [{"id": 1, "type": "Crop", "inputs": [], "outputs": [], "mode": 0,
                           "widgets_values": [box, 0, 0, 512, 512, "#ff8800", 4]}], "links": []}
    inputs = ui_to_api(workflow, NodeRegistry.from_classes({"Crop": Crop}))["1"]["inputs"]
    assert inputs == {"crop_region": box, "background": "#ff8800", "width": 4}
