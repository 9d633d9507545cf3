"""UI-format workflows (as ComfyUI's frontend saves them) converted to the API format, then run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hearth.core.executor import PromptFormatError
from hearth.core.executor.workflow import is_ui_workflow, ui_to_api
from hearth.core.hookspecs import hookimpl

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "workflows" / "ui"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class TestSampler:
    """A node with ComfyUI's seed conventions: ``seed`` and ``noise_seed`` get a control widget in the UI."""

    CATEGORY = "testing"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
                             "steps": ("INT", {"default": 20, "min": 1, "max": 100}),
                             "label": ("STRING", {"default": ""}),
                             "cfg": ("FLOAT", {"default": 8.0})},
                "optional": {"noise_seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF})}}

    def run(self, seed: int, steps: int, label: str, cfg: float, noise_seed: int = 0) -> dict[str, Any]:
        text = f"{seed}/{steps}/{label}/{cfg}/{noise_seed}"
        return {"ui": {"text": [text]}, "result": (text,)}


class SamplerPlugin:
    @hookimpl
    def register_nodes(self) -> dict[str, type]:
        return {"TestSampler": TestSampler}


@pytest.fixture
def registry(hearth_plugins: Any) -> Any:
    return hearth_plugins.nodes()


def empty(width: int, height: int, color: int, batch: int = 1) -> dict[str, Any]:
    return {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": batch,
                                                   "color": color}}


EXPECTED: dict[str, dict[str, Any]] = {
    "basic.json": {
        "1": empty(16, 8, 0xFF8000),
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Negative"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "basic/inverted"}},
    },
    "object_links.json": {
        "1": empty(12, 6, 0x0000FF, batch=2),
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "scale_by": 0.5}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    },
    "modes.json": {
        "1": empty(16, 16, 0x808080),
        # 2 (ImageInvert) is bypassed: its input passes through to 3.
        "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "area", "scale_by": 0.5}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "modes"}},
        # 5 and 6 are muted: gone, and 7's link from the muted 6 is dropped (as the frontend does).
        "7": {"class_type": "PreviewImage", "inputs": {}},
    },
    "reroute_primitive.json": {
        "3": empty(12, 12, 0),
        "6": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "reroute/out"}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    },
    "seed_control.json": {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 24}, "_meta": {"title": "Width"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": ["1", 0], "height": 4, "batch_size": 1, "color": 0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        # "randomize" and "increment" after seed/noise_seed are the frontend's control widgets, not inputs; the
        # "fixed" after steps is the label's value.
        "4": {"class_type": "TestSampler", "inputs": {"seed": 123456789, "steps": 20, "label": "fixed", "cfg": 7.5,
                                                      "noise_seed": 99}},
    },
    "subgraph.json": {
        "1": empty(16, 8, 0xFF0000),
        "2:10": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        # The instance's promoted widget value (0.5) replaces the inner node's own (1.0).
        "2:11": {"class_type": "ImageScaleBy", "inputs": {"image": ["2:10", 0], "upscale_method": "nearest-exact",
                                                          "scale_by": 0.5}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2:11", 0], "filename_prefix": "sub"}},
        "4:10": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "4:11": {"class_type": "ImageScaleBy", "inputs": {"image": ["4:10", 0], "upscale_method": "nearest-exact",
                                                          "scale_by": ["5", 0]}},
        "5": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.0}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["4:11", 0]}},
        # No outside link and no instance value (the newer proxyWidgets form): the inner widget's value stays.
        "7:10": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "7:11": {"class_type": "ImageScaleBy", "inputs": {"image": ["7:10", 0], "upscale_method": "nearest-exact",
                                                          "scale_by": 1.0}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7:11", 0]}},
    },
    "subgraph_nested.json": {
        "1": empty(8, 8, 0x404040),
        "2:20:30": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                           "width": 4, "height": 0, "crop": "disabled"}},
        "2:21": {"class_type": "ImageInvert", "inputs": {"image": ["2:20:30", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2:21", 0]}},
        # Instance 4 is muted, so everything inside it is too.
        "5": {"class_type": "PreviewImage", "inputs": {}},
    },
}


def test_every_fixture_has_an_expected_result() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conversion(name: str, registry: Any, register_plugin: Any, hearth_plugins: Any) -> None:
    register_plugin(SamplerPlugin(), "test_sampler")
    workflow = load(name)
    before = copy.deepcopy(workflow)
    assert is_ui_workflow(workflow)
    assert ui_to_api(workflow, hearth_plugins.nodes()) == EXPECTED[name]
    assert workflow == before, "conversion must not modify the workflow"


def temp_sizes(result: Any, node_id: str, folder: Path) -> list[tuple[int, int]]:
    sizes = []
    for item in result.outputs[node_id]["images"]:
        with Image.open(folder / item["subfolder"] / item["filename"]) as png:
            sizes.append(png.size)
    return sizes


def test_run_basic(registry: Any, run_prompt: Any, hearth_folders: Any) -> None:
    workflow = load("basic.json")
    result = run_prompt(ui_to_api(workflow, registry), extra_data={"extra_pnginfo": {"workflow": workflow}})
    assert result.ok, result.error
    with Image.open(hearth_folders.output / "basic" / "inverted_00001_.png") as png:
        png.load()
        assert png.size == (16, 8) and png.getpixel((0, 0)) == (0, 126, 255)  # 126.99 truncated, as ComfyUI's SaveImage
        assert json.loads(png.text["workflow"]) == workflow


def test_run_object_links(registry: Any, run_prompt: Any, hearth_folders: Any) -> None:
    result = run_prompt(ui_to_api(load("object_links.json"), registry))
    assert result.ok, result.error
    assert temp_sizes(result, "3", hearth_folders.temp) == [(6, 3), (6, 3)]


def test_run_modes_skips_muted_and_runs_the_valid_output(registry: Any, run_prompt: Any,
                                                         hearth_folders: Any) -> None:
    result = run_prompt(ui_to_api(load("modes.json"), registry))
    assert result.ok, result.error
    assert result.validation.outputs == ["4"]
    assert result.validation.node_errors["7"]["errors"][0]["type"] == "required_input_missing"
    with Image.open(hearth_folders.output / "modes_00001_.png") as png:
        assert png.size == (8, 8) and png.getpixel((0, 0)) == (128, 128, 128)  # not inverted: bypassed


def test_run_reroute_primitive(registry: Any, run_prompt: Any, hearth_folders: Any) -> None:
    result = run_prompt(ui_to_api(load("reroute_primitive.json"), registry))
    assert result.ok, result.error
    with Image.open(hearth_folders.output / "reroute" / "out_00001_.png") as png:
        assert png.size == (12, 12) and png.getpixel((5, 5)) == (255, 255, 255)
    assert temp_sizes(result, "8", hearth_folders.temp) == [(12, 12)]


def test_run_seed_control(run_prompt: Any, register_plugin: Any, hearth_plugins: Any, hearth_folders: Any) -> None:
    register_plugin(SamplerPlugin(), "test_sampler")
    result = run_prompt(ui_to_api(load("seed_control.json"), hearth_plugins.nodes()))
    assert result.ok, result.error
    assert result.outputs["4"] == {"text": ["123456789/20/fixed/7.5/99"]}
    assert temp_sizes(result, "3", hearth_folders.temp) == [(24, 4)]


def test_run_subgraph(registry: Any, run_prompt: Any, hearth_folders: Any) -> None:
    result = run_prompt(ui_to_api(load("subgraph.json"), registry))
    assert result.ok, result.error
    with Image.open(hearth_folders.output / "sub_00001_.png") as png:
        assert png.size == (8, 4) and png.getpixel((0, 0)) == (0, 255, 255)
    assert temp_sizes(result, "6", hearth_folders.temp) == [(32, 16)]
    assert temp_sizes(result, "8", hearth_folders.temp) == [(16, 8)]


def test_run_nested_subgraph(registry: Any, run_prompt: Any, hearth_folders: Any) -> None:
    result = run_prompt(ui_to_api(load("subgraph_nested.json"), registry))
    assert result.ok, result.error
    assert result.validation.outputs == ["3"]
    assert temp_sizes(result, "3", hearth_folders.temp) == [(4, 4)]


# -- smaller cases, written inline -------------------------------------------------------------------------


def node(node_id: int, kind: str, inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None,
         widgets: Any = None, mode: int = 0) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": node_id, "type": kind, "pos": [0, 0], "size": [100, 50], "flags": {},
                             "order": node_id, "mode": mode, "inputs": inputs or [], "outputs": outputs or [],
                             "properties": {}}
    if widgets is not None:
        entry["widgets_values"] = widgets
    return entry


def image_in(link: int | None, name: str = "image") -> dict[str, Any]:
    return {"name": name, "type": "IMAGE", "link": link}


def image_out(*links: int) -> dict[str, Any]:
    return {"name": "IMAGE", "type": "IMAGE", "links": list(links)}


def workflow(nodes: list[dict[str, Any]], links: list[Any], **extra: Any) -> dict[str, Any]:
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4, **extra}


def test_widgets_values_as_an_object(registry: Any) -> None:
    wf = workflow([node(1, "EmptyImage", outputs=[image_out()],
                        widgets={"width": 3, "height": 2, "batch_size": 1, "color": 7, "stray": 1})], [])
    assert ui_to_api(wf, registry) == {"1": empty(3, 2, 7)}


def test_old_workflow_without_control_values(registry: Any, register_plugin: Any, hearth_plugins: Any) -> None:
    register_plugin(SamplerPlugin(), "test_sampler")
    wf = workflow([node(1, "TestSampler", widgets=[5, 30, "x", 1.5])], [])
    # The optional widget the file lacks gets its default, as the frontend gives it.
    assert ui_to_api(wf, hearth_plugins.nodes())["1"]["inputs"] == {"seed": 5, "steps": 30, "label": "x", "cfg": 1.5,
                                                                    "noise_seed": 0}


def test_unknown_node_keeps_its_links_and_fails_validation(registry: Any, run_prompt: Any) -> None:
    wf = workflow([node(1, "EmptyImage", outputs=[image_out(1)], widgets=[4, 4, 1, 0]),
                   node(2, "NotInstalled", inputs=[image_in(1)], widgets=["a", 3])],
                  [[1, 1, 0, 2, 0, "IMAGE"]])
    prompt = ui_to_api(wf, registry)
    assert prompt["2"] == {"class_type": "NotInstalled", "inputs": {"image": ["1", 0]}}
    result = run_prompt(prompt)
    assert result.validation.error["type"] == "invalid_prompt"
    assert "NotInstalled" in result.validation.error["message"]


def test_bypassed_node_without_a_matching_input_passes_nothing(registry: Any) -> None:
    wf = workflow([node(1, "PrimitiveInt", outputs=[{"name": "INT", "type": "INT", "links": [1]}], widgets=[4]),
                   node(2, "IntToFloat", inputs=[{"name": "value", "type": "INT", "link": 1}],
                        outputs=[{"name": "FLOAT", "type": "FLOAT", "links": [2]}], mode=4),
                   node(3, "FloatToInt", inputs=[{"name": "value", "type": "FLOAT", "link": 2,
                                                  "widget": {"name": "value"}}],
                        outputs=[{"name": "INT", "type": "INT", "links": []}], widgets=[1.5, "floor"])],
                  [[1, 1, 0, 2, 0, "INT"], [2, 2, 0, 3, 0, "FLOAT"]])
    assert ui_to_api(wf, registry)["3"] == {"class_type": "FloatToInt", "inputs": {"rounding": "floor"}}


def test_chain_of_bypassed_nodes_and_reroutes(registry: Any) -> None:
    wf = workflow([node(1, "EmptyImage", outputs=[image_out(1)], widgets=[4, 4, 1, 0]),
                   node(2, "ImageInvert", inputs=[image_in(1)], outputs=[image_out(2)], mode=4),
                   node(3, "Reroute", inputs=[{"name": "", "type": "*", "link": 2}],
                        outputs=[{"name": "", "type": "IMAGE", "links": [3]}]),
                   node(4, "ImageBatch", inputs=[image_in(4, "image1"), image_in(3, "image2")],
                        outputs=[image_out(5)], mode=4),
                   node(5, "PreviewImage", inputs=[image_in(5, "images")], widgets=[])],
                  [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 1, "IMAGE"],
                   [4, 1, 0, 4, 0, "IMAGE"], [5, 4, 0, 5, 0, "IMAGE"]])
    # A bypassed node passes the first input of the output's type (image1 here), as the frontend does.
    assert ui_to_api(wf, registry)["5"] == {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}


def test_dangling_link_on_a_converted_widget_keeps_the_widget_value(registry: Any) -> None:
    wf = workflow([node(1, "EmptyImage", inputs=[{"name": "width", "type": "INT", "link": 99,
                                                  "widget": {"name": "width"}}],
                        outputs=[image_out()], widgets=[5, 6, 1, 0])], [])
    assert ui_to_api(wf, registry) == {"1": empty(5, 6, 0)}


def test_reroute_loop_is_a_format_error(registry: Any) -> None:
    wf = workflow([node(1, "Reroute", inputs=[{"name": "", "type": "*", "link": 2}],
                        outputs=[{"name": "", "type": "IMAGE", "links": [1, 3]}]),
                   node(2, "Reroute", inputs=[{"name": "", "type": "*", "link": 1}],
                        outputs=[{"name": "", "type": "IMAGE", "links": [2]}]),
                   node(3, "PreviewImage", inputs=[image_in(3, "images")])],
                  [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 1, 0, "IMAGE"], [3, 1, 0, 3, 0, "IMAGE"]])
    with pytest.raises(PromptFormatError, match="link loop through node"):
        ui_to_api(wf, registry)


def test_subgraph_that_contains_itself_is_a_format_error(registry: Any) -> None:
    sg_id = "99999999-0000-4000-8000-000000000000"
    definition = {"id": sg_id, "name": "loop", "inputs": [], "outputs": [], "links": [],
                  "nodes": [node(1, sg_id)]}
    wf = workflow([node(1, sg_id)], [], definitions={"subgraphs": [definition]})
    with pytest.raises(PromptFormatError, match="nest more than 32 levels"):
        ui_to_api(wf, registry)


def test_bypassed_subgraph_passes_its_input_through(registry: Any) -> None:
    wf = load("subgraph_nested.json")
    wf["nodes"][1]["mode"] = 4  # instance 2
    prompt = ui_to_api(wf, registry)
    assert not [node_id for node_id in prompt if node_id.startswith("2:")]
    assert prompt["3"] == {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}


def test_api_prompt_is_not_a_ui_workflow() -> None:
    assert not is_ui_workflow({"1": {"class_type": "EmptyImage", "inputs": {}}})
    assert not is_ui_workflow([])
    assert is_ui_workflow({"nodes": [], "links": []})


def test_load_image_upload_widget_value_is_not_an_input(registry: Any) -> None:
    wf = workflow([node(1, "LoadImage", outputs=[image_out(), {"name": "MASK", "type": "MASK", "links": []}],
                        widgets=["cat.png", "image"])], [])
    assert ui_to_api(wf, registry) == {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}}}


def test_optional_widgets_follow_the_required_ones(registry: Any) -> None:
    wf = workflow([node(1, "MathExpression", outputs=[{"name": "FLOAT", "type": "FLOAT", "links": []}],
                        widgets=["a * b + c", 1.5, 2.0, 0.25])], [])
    assert ui_to_api(wf, registry)["1"]["inputs"] == {"expression": "a * b + c", "a": 1.5, "b": 2.0, "c": 0.25}


def test_fewer_widget_values_than_widgets(registry: Any) -> None:
    # An older file saved fewer widgets than the node has now: the rest get their defaults, as in the frontend.
    wf = workflow([node(1, "EmptyImage", outputs=[image_out()], widgets=[9, 7])], [])
    assert ui_to_api(wf, registry)["1"]["inputs"] == {"width": 9, "height": 7, "batch_size": 1, "color": 0}


def test_primitive_node_feeding_a_subgraph_input(registry: Any) -> None:
    wf = load("subgraph.json")
    primitive = next(n for n in wf["nodes"] if n["id"] == 5)
    primitive.update(type="PrimitiveNode", properties={"Run widget replace on values": False})
    primitive["outputs"][0]["widget"] = {"name": "scale_by"}
    prompt = ui_to_api(wf, registry)
    assert "5" not in prompt
    assert prompt["4:11"]["inputs"]["scale_by"] == 2.0


def test_reroute_between_a_subgraph_output_and_its_consumer(registry: Any) -> None:
    wf = load("subgraph_nested.json")
    wf["nodes"].append(node(9, "Reroute", inputs=[{"name": "", "type": "*", "link": 5}],
                            outputs=[{"name": "", "type": "IMAGE", "links": [6]}]))
    wf["nodes"].append(node(10, "SaveImage", inputs=[image_in(6, "images")], widgets=["via_reroute"]))
    wf["links"] += [[5, 2, 0, 9, 0, "IMAGE"], [6, 9, 0, 10, 0, "IMAGE"]]
    assert ui_to_api(wf, registry)["10"] == {"class_type": "SaveImage",
                                             "inputs": {"images": ["2:21", 0], "filename_prefix": "via_reroute"}}
