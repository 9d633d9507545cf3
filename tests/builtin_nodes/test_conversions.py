"""ComfyNumberConvert, ColorToRGBInt, ResolutionSelector and SeedNode: ComfyUI's results, computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builtin_nodes.conftest import call


@pytest.mark.parametrize(("value", "expected"), [
    (True, (1.0, 1)), (False, (0.0, 0)), (7, (7.0, 7)), (2.9, (2.9, 2)), (-2.9, (-2.9, -2)),
    (" 3.7 ", (3.7, 3)), ("1e3", (1000.0, 1000)), ("-12", (-12.0, -12)),
    ("12345678901234567890", (1.2345678901234567e19, 12345678901234567890)),  # the INT keeps every digit
])
def test_number_convert(value: Any, expected: tuple[float, int]) -> None:
    result = call("ComfyNumberConvert", value=value)
    assert result == expected and type(result[0]) is float and type(result[1]) is int


@pytest.mark.parametrize(("value", "message"), [
    ("", "cannot convert an empty string"), ("abc", "cannot convert string to number: 'abc'"),
    ("nan", "cannot convert non-finite"), ("inf", "cannot convert non-finite"),
    (float("inf"), "cannot convert non-finite"),
    ([1], "expected an INT, FLOAT, STRING or BOOLEAN, got list"),
])
def test_number_convert_refuses(value: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=f"input 'value': {message}"):
        call("ComfyNumberConvert", value=value)


@pytest.mark.parametrize(("color", "expected"), [
    ("#0a9299", (692889, "#0a9299", 1.0)), ("#ff000080", (16711680, "#ff0000", 128 / 255)),
    ("#FFFFFF", (16777215, "#FFFFFF", 1.0)),
])
def test_color_to_rgb_int(color: str, expected: tuple[int, str, float]) -> None:
    assert call("ColorToRGBInt", color=color) == expected


@pytest.mark.parametrize("color", ["ff0000", "#ff00", "#gg0000", "#ff0000f"])
def test_color_to_rgb_int_refuses_other_formats(color: str) -> None:
    with pytest.raises(ValueError, match="input 'color': .* is not in format #RRGGBB or #RRGGBBAA"):
        call("ColorToRGBInt", color=color)


@pytest.mark.parametrize(("ratio", "megapixels", "multiple", "minimum", "expected"), [
    ("1:1 (Square)", 1.0, 8, 256, (1024, 1024)),
    ("16:9 (Widescreen)", 1.0, 8, 256, (1368, 768)),  # 1365.3 -> 171 * 8; 768 exactly
    ("16:9 (Widescreen)", 0.4, 32, 256, (864, 480)),
    ("9:16 (Portrait Widescreen)", 0.1, 8, 512, (576, 1024)),  # below the minimum: 64 * (9, 16)
    ("1:1 (Square)", 0.1, 8, 256, (320, 320)),  # 323.8 / 8 = 40.48 rounds to 40
])
def test_resolution_selector(ratio: str, megapixels: float, multiple: int, minimum: int,
                             expected: tuple[int, int]) -> None:
    assert call("ResolutionSelector", aspect_ratio=ratio, megapixels=megapixels, multiple=multiple,
                minimum=minimum) == expected


def test_resolution_selector_feeds_an_empty_image(run_prompt: Any, hearth_runtime: Any) -> None:
    prompt = {"r": {"class_type": "ResolutionSelector", "inputs": {"aspect_ratio": "3:2 (Photo)", "megapixels": 0.1,
                                                                   "multiple": 8, "minimum": 32}},
              "w": {"class_type": "PreviewAny", "inputs": {"source": ["r", 0]}},
              "h": {"class_type": "PreviewAny", "inputs": {"source": ["r", 1]}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    # sqrt(0.1 * 2**20 / 6) = 132.2: 3 * 132.2 / 8 = 49.6 -> 400; 2 * 132.2 / 8 = 33.05 -> 264
    assert (result.outputs["w"]["text"], result.outputs["h"]["text"]) == (["400"], ["264"])
    # A template saved before the node had multiple and minimum: ComfyUI's defaults (8, 256) apply.
    from hearth.core.executor.workflow import ui_to_api

    old = {"nodes": [{"id": 1, "type": "ResolutionSelector", "mode": 0, "inputs": [], "outputs": [],
                      "widgets_values": ["1:1 (Square)", 0.1]}], "links": []}
    converted = ui_to_api(old, hearth_runtime.nodes)
    assert converted["1"]["inputs"] == {"aspect_ratio": "1:1 (Square)", "megapixels": 0.1, "multiple": 8,
                                        "minimum": 256}
    result = run_prompt({**converted, "w": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
                         "h": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}}})
    assert result.ok, result.error
    assert (result.outputs["w"]["text"], result.outputs["h"]["text"]) == (["320"], ["320"])
    prompt["r"]["inputs"] = {"aspect_ratio": "1:1 (Square)", "megapixels": 0.1, "multiple": 8, "minimum": 256}
    prompt["r"]["inputs"]["aspect_ratio"] = "5:4"
    errors = run_prompt(prompt).validation.node_errors["r"]["errors"]
    assert errors[0]["type"] == "value_not_in_list"


def test_seed_node(hearth_runtime: Any) -> None:
    assert call("SeedNode", seed=123) == (123,)
    info = hearth_runtime.nodes["SeedNode"].object_info()
    assert info["input"]["required"]["seed"][1]["control_after_generate"] == "fixed"
    assert info["output_name"] == ["seed"] and info["category"] == "utilities"


def test_resolution_selector_declares_comfyui_preview_widget(hearth_runtime: Any) -> None:
    info = hearth_runtime.nodes["ResolutionSelector"].object_info()
    assert info["input_order"] == {"required": ["aspect_ratio", "megapixels", "multiple", "minimum"],
                                   "optional": ["preview"]}
    assert info["input"]["optional"]["preview"] == ["RESOLUTION_PREVIEW", {
        "socketless": True, "ratio_widget": "aspect_ratio", "megapixels_widget": "megapixels",
        "multiple_widget": "multiple"}]
    assert call("ResolutionSelector", aspect_ratio="1:1 (Square)", megapixels=1.0, preview={}) == (1024, 1024)
