"""CreateBoundingBoxes and BuildJsonPromptIdeogram: the box, element and caption shapes ComfyUI's nodes exchange,
computed by hand, and the preview drawn where the boxes are."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from tests.builtin_nodes.conftest import call

BOX = {"x": 192, "y": 384, "width": 288, "height": 352,
       "metadata": {"type": "obj", "text": "", "desc": "a rubber duck", "palette": ["#ff0000", "", "#00ff00"]}}
TITLE = {"x": 128, "y": 32, "width": 824, "height": 124,
         "metadata": {"type": "text", "text": "Hearth", "desc": "serif title", "palette": ["#ffffff"]}}


def boxes(**inputs: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    out = call("CreateBoundingBoxes", **inputs)
    return (*out["result"], out["ui"])


def test_canvas_boxes_become_pixel_boxes_and_elements() -> None:
    preview, frame, elements, ui = boxes(width=1024, height=1024, editor_state=[BOX, TITLE])
    assert frame == [[{"x": 192, "y": 384, "width": 288, "height": 352},
                      {"x": 128, "y": 32, "width": 824, "height": 124}]]
    # bbox is [ymin, xmin, ymax, xmax] on a 0..1000 grid: 384/1024 = 0.375 -> 375; (384 + 352)/1024 -> 719
    assert elements == [
        {"type": "obj", "bbox": [375, 188, 719, 469], "desc": "a rubber duck", "color_palette": ["#FF0000", "#00FF00"]},
        {"type": "text", "bbox": [31, 125, 152, 930], "text": "Hearth", "desc": "serif title",
         "color_palette": ["#FFFFFF"]}]
    assert ui == {"dims": [1024, 1024]}
    assert preview.shape == (1, 1024, 1024, 3)
    # The duck's box is outlined in its first palette colour; the canvas is dark grey (a quarter of 128).
    assert preview[0, 384 + 176, 192].tolist() == [1.0, 0.0, 0.0]
    assert preview[0, 600, 900].tolist() == pytest.approx([32 / 255] * 3)


def test_incoming_boxes_win_until_they_stop_changing() -> None:
    incoming = [{"type": "obj", "bbox": [0, 0, 500, 250], "desc": "left", "color_palette": ["#0000ff"]}]
    _, frame, elements, ui = boxes(width=200, height=100, editor_state=[BOX], bboxes=incoming)
    assert frame == [[{"x": 0, "y": 0, "width": 50, "height": 50}]]
    assert elements == [{"type": "obj", "bbox": [0, 0, 500, 250], "desc": "left", "color_palette": ["#0000FF"]}]
    applied = ui["input_bboxes"]
    _, frame, _, _ = boxes(width=200, height=100, editor_state=[BOX], bboxes=incoming, last_incoming=applied)
    assert frame == [[{"x": 192, "y": 384, "width": 288, "height": 352}]]  # the canvas's edits are kept


@pytest.mark.parametrize("given", [
    json.dumps([{"x": 1, "y": 2, "width": 3, "height": 4}]), [[{"x": 1, "y": 2, "width": 3, "height": 4}]],
    {"x": 1, "y": 2, "width": 3, "height": 4},
])
def test_bboxes_input_shapes(given: Any) -> None:
    _, frame, _, _ = boxes(width=64, height=64, editor_state=[], bboxes=given)
    assert frame == [[{"x": 1, "y": 2, "width": 3, "height": 4}]]


@pytest.mark.parametrize(("given", "message"), [
    ("{not json", "input 'bboxes': the text is not valid JSON"),
    ([{"bbox": [1, 2]}], "no valid 'bbox'"), ([{"a": 1}], "each item must be a bounding box"), (5, "got int"),
])
def test_bad_bboxes_are_named(given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        boxes(width=64, height=64, editor_state=[], bboxes=given)


def test_preview_dims_a_background() -> None:
    white = torch.ones(1, 32, 64, 3)
    preview, frame, elements, _ = boxes(width=64, height=32, editor_state=[], background=white)
    assert frame == [] and elements == [] and preview.shape == (1, 32, 64, 3)
    assert preview[0, 5, 5].tolist() == pytest.approx([64 / 255] * 3, abs=1 / 255)  # a quarter of the brightness


def test_build_json_prompt_through_the_executor(run_prompt: Any) -> None:
    prompt = {"b": {"class_type": "CreateBoundingBoxes",
                    "inputs": {"width": 1024, "height": 1024, "editor_state": [BOX]}},
              "j": {"class_type": "BuildJsonPromptIdeogram", "inputs": {
                  "element": ["b", 2], "high_level_description": "A duck.", "background": "dark",
                  "style": "photo", "style.photo": "35mm", "aesthetics": "moody", "lighting": "rim",
                  "medium": "photograph", "color_palette": ["#0a1628", ""]}},
              "p": {"class_type": "PreviewAny", "inputs": {"source": ["j", 0]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert json.loads(result.outputs["p"]["text"][0]) == {
        "high_level_description": "A duck.",
        "style_description": {"aesthetics": "moody", "lighting": "rim", "photo": "35mm", "medium": "photograph",
                              "color_palette": ["#0A1628"]},
        "compositional_deconstruction": {"background": "dark", "elements": [
            {"type": "obj", "bbox": [375, 188, 719, 469], "desc": "a rubber duck",
             "color_palette": ["#FF0000", "#00FF00"]}]}}


def test_build_json_prompt_styles() -> None:
    (none,) = call("BuildJsonPromptIdeogram", element=[], style="none", background="sky", color_palette=["#fff"])
    assert none == {"compositional_deconstruction": {"background": "sky", "elements": []}}
    (art,) = call("BuildJsonPromptIdeogram", element=[], style="art_style", **{"style.art_style": "flat"},
                  medium="illustration")
    assert art["style_description"] == {"aesthetics": "", "lighting": "", "medium": "illustration",
                                        "art_style": "flat"}
    with pytest.raises(ValueError, match="style: 'sketch' is not one of"):
        call("BuildJsonPromptIdeogram", element=[], style="sketch")


def test_ui_workflow_widgets_reach_the_nodes(hearth_runtime: Any) -> None:
    from hearth.core.executor.workflow import ui_to_api

    workflow = {"nodes": [
        {"id": 1, "type": "CreateBoundingBoxes", "mode": 0, "inputs": [], "outputs": [],
         "widgets_values": [896, 1152, [BOX], []]},
        {"id": 2, "type": "BuildJsonPromptIdeogram", "mode": 0, "inputs": [], "outputs": [],
         "widgets_values": ["A duck.", "dark", "photo", "35mm", "moody", "rim", "", ["#0a1628"]]}], "links": []}
    api = ui_to_api(workflow, hearth_runtime.nodes)
    assert api["1"]["inputs"] == {"width": 896, "height": 1152, "editor_state": [BOX], "last_incoming": []}
    assert api["2"]["inputs"] == {"high_level_description": "A duck.", "background": "dark", "style": "photo",
                                  "style.photo": "35mm", "aesthetics": "moody", "lighting": "rim", "medium": "",
                                  "color_palette": ["#0a1628"]}
