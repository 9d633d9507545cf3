"""SaveImageAdvanced (PNG 8/16-bit, EXR, AVIF; ComfyUI's dotted ``format.*`` widgets) and SaveText.

Pixels are checked against ComfyUI's quantization (truncation) and decoded with PyAV/FFmpeg, an encoder-independent
reader; metadata as ComfyUI embeds it."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hearth.core.context import Folders
from tests.builtin_nodes.conftest import call, gradient

PNG8 = {"format": "png", "format.bit_depth": "8-bit", "format.input_color_space": "sRGB"}


def save(images: torch.Tensor, members: dict[str, Any], prefix: str = "adv", **hidden: Any) -> dict[str, Any]:
    return call("SaveImageAdvanced", images=images, filename_prefix=prefix, **members, **hidden)


def decode(path: Any, pixel_format: str) -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format=pixel_format)


def test_png_through_the_executor_with_metadata(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 3, "height": 2, "batch_size": 2,
                                                          "color": 0x00FF00}},
              "2": {"class_type": "SaveImageAdvanced", "inputs": {"images": ["1", 0], "filename_prefix": "sub/adv",
                                                                  **PNG8}},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
    workflow = {"nodes": [], "links": []}
    result = run_prompt(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    assert result.ok, result.error
    assert result.outputs["2"] == {"images": [
        {"filename": "adv_00001.png", "subfolder": "sub", "type": "output"},
        {"filename": "adv_00002.png", "subfolder": "sub", "type": "output"}]}
    assert "tensor(" in result.outputs["3"]["text"][0]  # the images are passed on
    with Image.open(hearth_folders.output / "sub" / "adv_00002.png") as png:
        png.load()
        assert png.mode == "RGB" and png.getpixel((2, 1)) == (0, 255, 0)
        assert json.loads(png.text["prompt"]) == prompt and json.loads(png.text["workflow"]) == workflow


def test_png_8_and_16_bit_truncate_as_comfyui(folders: Folders) -> None:
    values = torch.tensor([0.0, 0.3, 0.5, 0.7, 0.999, 1.5])
    image = values[None, None, :, None].expand(1, 1, 6, 3).contiguous()
    (eight,) = save(image, PNG8)["ui"]["images"]
    with Image.open(folders.output / eight["filename"]) as png:
        assert np.asarray(png)[0, :, 0].tolist() == [0, 76, 127, 178, 254, 255]
    (sixteen,) = save(image, {**PNG8, "format.bit_depth": "16-bit"})["ui"]["images"]
    decoded = decode(folders.output / sixteen["filename"], "rgb48le")
    expected = np.clip(values.numpy() * 65535.0, 0, 65535).astype(np.int64)  # ComfyUI: clamp, then truncate
    assert decoded[0, :, 0].tolist() == expected.tolist() and decoded[0, 2, 0] == 32767


def test_png_keeps_alpha_and_grey(folders: Folders) -> None:
    rgba = torch.tensor([[[[1.0, 0.0, 0.0, 0.5]]]])
    (item,) = save(rgba, PNG8)["ui"]["images"]
    with Image.open(folders.output / item["filename"]) as png:
        assert png.mode == "RGBA" and png.getpixel((0, 0)) == (255, 0, 0, 127)
    grey = torch.tensor([[[[0.25]]]])
    (item,) = save(grey, PNG8)["ui"]["images"]
    with Image.open(folders.output / item["filename"]) as png:
        assert png.mode == "L" and png.getpixel((0, 0)) == 63


def test_exr_is_scene_linear_float(folders: Folders) -> None:
    image = gradient(3, 4)
    exr = {"format": "exr", "format.bit_depth": "32-bit float"}
    (linear,) = save(image, {**exr, "format.input_color_space": "linear"}, prompt={"1": {}})["ui"]["images"]
    assert linear["filename"] == "adv_00001.exr"
    decoded = decode(folders.output / linear["filename"], "gbrpf32le")
    assert np.array_equal(decoded, image[0].numpy())
    (srgb,) = save(torch.full((1, 1, 1, 3), 0.5), {**exr, "format.input_color_space": "sRGB"})["ui"]["images"]
    assert decode(folders.output / srgb["filename"], "gbrpf32le")[0, 0, 0] == pytest.approx(
        ((0.5 + 0.055) / 1.055) ** 2.4, rel=1e-6)  # 0.2140: the inverse sRGB EOTF
    (hlg,) = save(torch.tensor([[[[0.25, 0.75, 1.0]]]]), {**exr, "format.input_color_space": "HDR"})["ui"]["images"]
    a, b, c = 0.17883277, 0.28466892, 0.55991072928
    assert decode(folders.output / hlg["filename"], "gbrpf32le")[0, 0].tolist() == pytest.approx(
        [0.25 ** 2 / 3, (math.exp((0.75 - c) / a) + b) / 12, (math.exp((1.0 - c) / a) + b) / 12], rel=1e-5)
    (rgba,) = save(torch.tensor([[[[0.5, 0.5, 0.5, 0.5]]]]), {**exr, "format.input_color_space": "sRGB"})["ui"]["images"]
    pixel = decode(folders.output / rgba["filename"], "gbrapf32le")[0, 0]
    assert pixel[3] == 0.5 and pixel[0] == pytest.approx(0.21404, rel=1e-4)  # alpha is not linearized
    header = (folders.output / linear["filename"]).read_bytes()[:2000]
    assert b'prompt\x00string\x00' in header and b'{"1": {}}' in header


def test_avif_still_and_animated(folders: Folders) -> None:
    images = gradient(16, 16, batch=3)
    avif = {"format": "avif", "format.bit_depth": "auto", "format.input_color_space": "sRGB", "format.crf": 18}
    still = save(images, {**avif, "format.save_mode": "still images"}, prompt={"7": "x"})["ui"]
    assert [i["filename"] for i in still["images"]] == ["adv_00001.avif", "adv_00002.avif", "adv_00003.avif"]
    assert "animated" not in still
    with Image.open(folders.output / "adv_00001.avif") as picture:
        assert picture.size == (16, 16)
        assert picture.getexif()[0x0110] == 'prompt:{"7": "x"}'
    moving = save(images, {**avif, "format.save_mode": "animated", "format.save_mode.fps": 4.0,
                           "format.save_mode.loop_count": 0})["ui"]
    assert moving["animated"] == (True,) and len(moving["images"]) == 1
    with Image.open(folders.output / moving["images"][0]["filename"]) as picture:
        assert picture.n_frames == 3


@pytest.mark.parametrize(("members", "message"), [
    ({"format": "gif"}, r"format: 'gif' is not one of \['png', 'exr', 'avif'\]"),
    ({**PNG8, "format.bit_depth": "12-bit"}, r"format.bit_depth: '12-bit' is not one of"),
    ({"format": "png", "format.input_color_space": "sRGB"}, "format.bit_depth: missing"),
    ({"format": "avif", "format.bit_depth": "10-bit YUV420", "format.input_color_space": "sRGB", "format.crf": 18,
      "format.save_mode": "still images"}, "Hearth writes 8-bit sRGB AVIF only"),
    ({"format": "avif", "format.bit_depth": "auto", "format.input_color_space": "sRGB", "format.crf": 99,
      "format.save_mode": "still images"}, "format.crf: 99 is bigger than the maximum 63"),
])
def test_bad_format_widgets_are_named(folders: Folders, members: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        save(gradient(2, 2), members)


def test_bad_images_are_named(folders: Folders) -> None:
    with pytest.raises(ValueError, match=r"input 'images': expected an IMAGE"):
        save(torch.zeros(2, 2), PNG8)
    with pytest.raises(ValueError, match="not alpha"):
        save(torch.zeros(1, 2, 2, 4), {"format": "avif", "format.bit_depth": "auto", "format.input_color_space": "sRGB",
                                       "format.crf": 18, "format.save_mode": "still images"})


def test_object_info_shows_the_dynamic_combo(hearth_runtime: Any) -> None:
    info = hearth_runtime.nodes["SaveImageAdvanced"].object_info()
    kind, options = info["input"]["required"]["format"]
    assert kind == "COMFY_DYNAMICCOMBO_V3" and [o["key"] for o in options["options"]] == ["png", "exr", "avif"]
    assert info["output"] == ["IMAGE"] and info["output_node"] is True


def test_save_text(run_prompt: Any, hearth_folders: Folders) -> None:
    prompt = {"1": {"class_type": "PrimitiveString", "inputs": {"value": '{"b": [1, 2], "a": "é"}'}},
              "2": {"class_type": "SaveText", "inputs": {"text": ["1", 0], "filename_prefix": "notes/t",
                                                         "format": "json"}}}
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["2"] == {"text": ['{"b": [1, 2], "a": "é"}'],
                                   "files": [{"filename": "t_00001.json", "subfolder": "notes", "type": "output"}]}
    written = (hearth_folders.output / "notes" / "t_00001.json").read_text(encoding="utf-8")
    assert written == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "é"\n}'
    ui = call("SaveText", text="not {json", filename_prefix="notes/t", format="json")["ui"]
    assert ui["files"][0]["filename"] == "t_00002.json"
    assert (hearth_folders.output / "notes" / "t_00002.json").read_text() == "not {json"
    call("SaveText", text="# title", filename_prefix="notes/t", format="md")
    assert (hearth_folders.output / "notes" / "t_00003.md").read_text() == "# title"
    with pytest.raises(ValueError, match="input 'text': expected a STRING, got int"):
        call("SaveText", text=3, filename_prefix="t", format="txt")


def test_save_svg_embeds_the_workflow(folders: Folders) -> None:
    from xml.etree import ElementTree

    class SVG:  # ComfyUI's SVG value: a list of byte streams
        def __init__(self, *documents: bytes) -> None:
            self.data = [io.BytesIO(d) for d in documents]

    drawing = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    value = SVG(drawing, drawing)
    result = call("SaveSVGNode", svg=value, filename_prefix="svg/out", prompt={"1": {"x": "]]>"}},
                  extra_pnginfo={"workflow": {"n": 1}})
    assert result["result"] == (value,)
    assert [i["filename"] for i in result["ui"]["images"]] == ["out_00001_.svg", "out_00002_.svg"]
    text = (folders.output / "svg" / "out_00001_.svg").read_text()
    root = ElementTree.fromstring(text)  # still well-formed XML
    metadata = root.find("{http://www.w3.org/2000/svg}metadata")
    assert metadata is not None and json.loads(metadata.text) == {"prompt": {"1": {"x": "]]>"}}, "workflow": {"n": 1}}
    with pytest.raises(ValueError, match="input 'svg': expected SVG documents"):
        call("SaveSVGNode", svg=SVG(b"not svg"), filename_prefix="svg/out")
