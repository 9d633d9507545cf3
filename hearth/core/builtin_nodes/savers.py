"""Savers with ComfyUI's names: Save Image (Advanced) (``SaveImageAdvanced``: PNG 8/16-bit, EXR, AVIF), Save SVG
(``SaveSVGNode``) and Save Text.

SaveImageAdvanced's ``format`` is a V3 DynamicCombo: a prompt carries ``format`` and its option's widgets as
``format.bit_depth``, ``format.input_color_space``... (see :mod:`dynamic_inputs`). Files are named
``{prefix}_{counter:05}.{ext}`` (no trailing underscore, unlike SaveImage), written atomically, with the prompt and
workflow embedded: PNG ``tEXt`` chunks, EXR string header attributes, AVIF EXIF tags (0x0110 ``prompt:{json}``, then
0x010F downwards ``{key}:{json}``), as ComfyUI writes them. Quantization truncates, as ComfyUI's
``(x * 255).clamp(0, 255).to(uint8)`` does.

Hearth writes PNG and EXR with its own encoders (numpy and zlib: 16-bit PNG and float EXR need no codec library)
and AVIF through Pillow. Differences from ComfyUI (which encodes with PyAV/FFmpeg): EXR is uncompressed; AVIF is
8-bit sRGB only (10-bit, HDR and HDR PQ are refused with a message) and ``crf`` maps to Pillow's quality scale.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hearth.core import context
from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, dynamic_combo
from hearth.core.builtin_nodes.image_dynamic import selected_option
from hearth.core.context import atomic_path, save_path
from hearth.core.images import torch_module

_SAVE_MODE, _SAVE_MODE_CLAIMS = dynamic_combo("save_mode", {
    "still images": {},
    "animated": {"fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                 "loop_count": ("INT", {"default": 0, "min": 0, "max": 1000, "advanced": True,
                                        "tooltip": "Number of times to loop the animation. 0 loops forever."})},
}, display_name="save mode")
_FORMAT, _FORMAT_CLAIMS = dynamic_combo("format", {
    "png": {"bit_depth": (["8-bit", "16-bit"], {"default": "8-bit", "advanced": True}),
            "input_color_space": (["sRGB"], {"default": "sRGB", "advanced": True})},
    "exr": {"bit_depth": (["32-bit float"], {"default": "32-bit float", "advanced": True}),
            "input_color_space": (["sRGB", "HDR", "linear"], {
                "default": "sRGB", "advanced": True,
                "tooltip": "Colorspace of the input tensor. The EXR is always written as scene-linear: sRGB input "
                           "gets the inverse sRGB EOTF, HDR (HLG-encoded Rec.2020) the inverse HLG OETF, linear "
                           "is written unchanged."})},
    "avif": {"bit_depth": (["auto", "8-bit YUV420", "10-bit YUV420"], {
                 "default": "auto", "advanced": True,
                 "tooltip": "Auto uses 8-bit YUV420 for sRGB and 10-bit YUV420 for HDR."}),
             "input_color_space": (["sRGB", "HDR", "HDR PQ"], {"default": "sRGB", "advanced": True}),
             "crf": ("INT", {"default": 18, "min": 1, "max": 63, "advanced": True,
                             "tooltip": "Lower values produce higher quality and larger files."}),
             "save_mode": _SAVE_MODE},
}, tooltip="The file format in which to save the image.")
_CLAIMS = {**_FORMAT_CLAIMS, **{f"format.{name}": spec for name, spec in _SAVE_MODE_CLAIMS.items()}}


def _pixels(image: Any, scale: int, dtype: Any) -> np.ndarray:
    """``[H, W, C]`` floats to integers as ComfyUI quantizes: scaled, clamped, truncated."""
    return np.clip(image.detach().cpu().float().numpy() * float(scale), 0, scale).astype(np.int64).astype(dtype)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: Any, bit_depth: str, texts: dict[str, str]) -> bytes:
    """A PNG of one ``[H, W, C]`` image (C = 1, 3 or 4) at 8 or 16 bits, with ``texts`` as tEXt chunks."""
    sixteen = bit_depth == "16-bit"
    array = _pixels(image, 65535 if sixteen else 255, ">u2" if sixteen else np.uint8)
    height, width, channels = array.shape
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = array.reshape(height, width * channels).view(np.uint8).reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()  # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16 if sixteen else 8, color_type, 0, 0, 0)
    text = b"".join(_png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))
                    for key, value in texts.items())
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + text
            + _png_chunk(b"IDAT", zlib.compress(raw, 4)) + _png_chunk(b"IEND", b""))


def _srgb_to_linear(x: Any) -> Any:
    torch = torch_module()
    return torch.where(x <= 0.04045, x / 12.92, torch.pow((x.clamp(min=0.0) + 0.055) / 1.055, 2.4))


def _hlg_to_linear(x: Any) -> Any:
    """The inverse HLG OETF of BT.2100 (scene-linear light in 0..1)."""
    torch = torch_module()
    a, b = 0.17883277, 0.28466892
    c = 0.55991072928  # 0.5 - a * ln(4 * a)
    return torch.where(x <= 0.5, x * x / 3.0, (torch.exp((x.clamp(min=0.5) - c) / a) + b) / 12.0)


_REC2020 = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)


def _exr_attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode("latin-1") + b"\x00" + kind.encode("latin-1") + b"\x00" + struct.pack("<i", len(value)) + value


def encode_exr(image: Any, colorspace: str, texts: dict[str, str]) -> bytes:
    """An uncompressed scanline OpenEXR of one ``[H, W, C]`` image as 32-bit float, scene-linear; ``texts`` as
    string header attributes. Channels as OpenEXR orders them: Y, or (A,) B, G, R."""
    transform = {"sRGB": _srgb_to_linear, "HDR": _hlg_to_linear}.get(colorspace)
    if transform is not None:  # colour channels only; an alpha channel is written as it is, as ComfyUI does
        torch = torch_module()
        image = torch.cat([transform(image[..., :3]), image[..., 3:]], dim=-1) if image.shape[-1] == 4 \
            else transform(image)
    array = image.detach().cpu().float().numpy().astype("<f4")
    height, width, channels = array.shape
    names = {1: ["Y"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}[channels]
    order = sorted(range(channels), key=lambda i: names[i])
    chlist = b"".join(names[i].encode() + b"\x00" + struct.pack("<iB3xii", 2, 0, 1, 1) for i in order) + b"\x00"
    window = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = [_exr_attribute("channels", "chlist", chlist), _exr_attribute("compression", "compression", b"\x00"),
              _exr_attribute("dataWindow", "box2i", window), _exr_attribute("displayWindow", "box2i", window),
              _exr_attribute("lineOrder", "lineOrder", b"\x00"),
              _exr_attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
              _exr_attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
              _exr_attribute("screenWindowWidth", "float", struct.pack("<f", 1.0))]
    if colorspace == "HDR":
        header.append(_exr_attribute("chromaticities", "chromaticities", struct.pack("<8f", *_REC2020)))
    header += [_exr_attribute(key, "string", value.encode("utf-8")) for key, value in texts.items()]
    head = b"\x76\x2f\x31\x01" + struct.pack("<i", 2) + b"".join(header) + b"\x00"
    line_bytes = 8 + width * channels * 4
    first = len(head) + 8 * height
    table = struct.pack(f"<{height}Q", *(first + y * line_bytes for y in range(height)))
    planar = array[:, :, order].transpose(0, 2, 1)  # per scanline: each channel's row in turn
    lines = b"".join(struct.pack("<ii", y, width * channels * 4) + planar[y].tobytes() for y in range(height))
    return head + table + lines


def _avif_exif(metadata: dict[str, Any]) -> Image.Exif:
    exif = Image.Exif()
    if "prompt" in metadata:
        exif[0x0110] = f"prompt:{json.dumps(metadata['prompt'])}"
    tag = 0x010F
    for key, value in metadata.items():
        if key != "prompt":
            exif[tag] = f"{key}:{json.dumps(value)}"
            tag -= 1
    return exif


def _to_pil(image: Any) -> Image.Image:
    array = _pixels(image, 255, np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")


def save_avif(frames: Any, path: Path, bit_depth: str, colorspace: str, crf: int, fps: float | None,
              loop_count: int, metadata: dict[str, Any]) -> None:
    """One AVIF of ``frames`` (an animation when ``fps`` is given), 8-bit sRGB through Pillow."""
    if colorspace != "sRGB" or bit_depth == "10-bit YUV420":
        raise ValueError(f"format.input_color_space {colorspace!r} / format.bit_depth {bit_depth!r}: Hearth writes "
                         f"8-bit sRGB AVIF only; choose sRGB and auto or 8-bit YUV420, or save as exr for HDR")
    if frames.shape[-1] == 4:
        raise ValueError("images: AVIF saving supports 1-channel grayscale and 3-channel RGB images, not alpha; "
                         "save as png to keep the alpha channel")
    pictures = [_to_pil(frame) for frame in frames]
    # libavif's quantizer is about (100 - quality) * 63 / 100: the quality whose quantizer is crf.
    options: dict[str, Any] = {"quality": round(100 - crf * 100 / 63), "subsampling": "4:2:0"}
    if metadata:
        options["exif"] = _avif_exif(metadata)
    if fps is not None:
        options.update(save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=loop_count)
    with atomic_path(path) as temp:
        pictures[0].save(temp, format="AVIF", **options)


class SaveImageAdvanced:
    """ComfyUI's Save Image (Advanced): PNG (8/16-bit), EXR (32-bit float, scene-linear) or AVIF, with the
    workflow embedded; passes the images on."""

    DISPLAY_NAME = "Save Image (Advanced)"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "execute"
    OUTPUT_NODE = True
    SEARCH_ALIASES = ["save", "save image", "export image", "output image", "write image"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The images to save."}),
            "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": "The prefix for the file to save."}),
            "format": _FORMAT},
            "optional": DynamicSection({}, _CLAIMS),
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, images: Any, filename_prefix: str, format: str, prompt: Any = None,
                extra_pnginfo: Any = None, **members: Any) -> dict[str, Any]:
        torch = torch_module()
        chosen = selected_option("format", _FORMAT, format, members)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"input 'images': expected an IMAGE [batch, height, width, 1, 3 or 4], got {shape}")
        metadata: dict[str, Any] = {}
        if prompt is not None:
            metadata["prompt"] = prompt
        metadata.update(extra_pnginfo or {})
        texts = {key: json.dumps(value) for key, value in metadata.items()}
        folder = context.folders().output
        directory, base, counter = save_path(filename_prefix, folder, int(images.shape[2]), int(images.shape[1]))
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        subfolder = "" if subfolder == "." else subfolder
        results, ui_extra = [], {}
        if format == "avif":
            mode = selected_option("format.save_mode", _SAVE_MODE, chosen["save_mode"], members)
            animated = mode["format.save_mode"] == "animated"
            batches = [images] if animated else [image[None] for image in images]
            for batch_number, batch in enumerate(batches):
                context.check_interrupted()
                name = f"{base.replace('%batch_num%', str(batch_number))}_{counter:05}.avif"
                save_avif(batch, directory / name, chosen["bit_depth"], chosen["input_color_space"], chosen["crf"],
                          mode.get("fps") if animated else None, mode.get("loop_count", 0), metadata)
                results.append({"filename": name, "subfolder": subfolder, "type": "output"})
                counter += 1
            if animated and len(images) > 1:
                ui_extra["animated"] = (True,)
        else:
            for batch_number, image in enumerate(images):
                context.check_interrupted()
                if format == "png":
                    data = encode_png(image, chosen["bit_depth"], texts)
                else:
                    data = encode_exr(image, chosen["input_color_space"], texts)
                name = f"{base.replace('%batch_num%', str(batch_number))}_{counter:05}.{format}"
                with atomic_path(directory / name) as temp:
                    temp.write_bytes(data)
                results.append({"filename": name, "subfolder": subfolder, "type": "output"})
                counter += 1
        return {"ui": {"images": results, **ui_extra}, "result": (images,)}


class SaveText:
    """ComfyUI's Save Text: ``text`` to ``{prefix}_{counter:05}.{txt,md,json}`` in the output folder (JSON
    re-indented by 2 when it parses), shown in the node and passed on."""

    DISPLAY_NAME = "Save Text"
    DESCRIPTION = "Save text content to a file in the output directory."
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("text",)
    FUNCTION = "execute"
    OUTPUT_NODE = True
    SEARCH_ALIASES = ["save text", "write text", "export text"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"text": ("STRING", {"forceInput": True}),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "format": (["txt", "md", "json"], {"default": "txt"})}}

    def execute(self, text: str, filename_prefix: str, format: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise ValueError(f"input 'text': expected a STRING, got {type(text).__name__}")
        folder = context.folders().output
        directory, base, counter = save_path(filename_prefix, folder, 1, 1)
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        name = f"{base}_{counter:05}.{format}"
        content = text
        if format == "json":
            try:
                content = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except (json.JSONDecodeError, RecursionError):
                content = text  # not JSON (or nested past the parser's depth): saved as it is, as ComfyUI does
        with atomic_path(directory / name) as temp:
            temp.write_text(content, encoding="utf-8")
        saved = {"filename": name, "subfolder": "" if subfolder == "." else subfolder, "type": "output"}
        return {"ui": {"text": (text,), "files": [saved]}, "result": (text,)}


def _svg_documents(svg: Any) -> list[str]:
    """The SVG documents of an SVG value: ComfyUI's (``.data``, a list of byte streams), or text/bytes."""
    items = getattr(svg, "data", svg)
    items = items if isinstance(items, (list, tuple)) else [items]
    documents = []
    for item in items:
        if isinstance(item, io.IOBase):
            item.seek(0)
            item = item.read()
        if isinstance(item, (bytes, bytearray)):
            item = bytes(item).decode("utf-8")
        if not isinstance(item, str) or "<svg" not in item:
            raise ValueError(f"input 'svg': expected SVG documents, got a {type(item).__name__} without an <svg> tag")
        documents.append(item)
    return documents


class SaveSVGNode:
    """ComfyUI's Save SVG: each SVG document to ``{prefix}_{counter:05}_.svg``, the prompt and workflow as JSON in a
    ``<metadata>`` CDATA section after the opening ``<svg>`` tag (ComfyUI's place for it)."""

    DISPLAY_NAME = "Save SVG"
    DESCRIPTION = "Save SVG files on disk."
    CATEGORY = "image"
    RETURN_TYPES = ("SVG",)
    RETURN_NAMES = ("svg",)
    FUNCTION = "execute"
    OUTPUT_NODE = True
    SEARCH_ALIASES = ["export vector", "save vector graphics"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"svg": ("SVG", {}), "filename_prefix": ("STRING", {
                    "default": "svg/ComfyUI", "tooltip": "The prefix for the file to save."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, svg: Any, filename_prefix: str = "svg/ComfyUI", prompt: Any = None,
                extra_pnginfo: Any = None) -> dict[str, Any]:
        documents = _svg_documents(svg)
        metadata: dict[str, Any] = {"prompt": prompt} if prompt is not None else {}
        metadata.update(extra_pnginfo or {})
        # "]]>" inside the JSON would end the CDATA section early; split it across two sections.
        block = json.dumps(metadata, indent=2).replace("]]>", "]]]]><![CDATA[>") if metadata else None
        folder = context.folders().output
        directory, base, counter = save_path(filename_prefix, folder, 0, 0)
        subfolder = directory.relative_to(folder.resolve()).as_posix()
        results = []
        for batch_number, document in enumerate(documents):
            if block is not None:
                document = re.sub(r"(<svg[^>]*>)", lambda m: f"{m.group(1)}\n  <metadata><![CDATA[\n{block}\n]]>"
                                  f"</metadata>", document, count=1)
            name = f"{base.replace('%batch_num%', str(batch_number))}_{counter:05}_.svg"
            with atomic_path(directory / name) as temp:
                temp.write_bytes(document.encode("utf-8"))
            results.append({"filename": name, "subfolder": "" if subfolder == "." else subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}, "result": (svg,)}


NODES = {"SaveImageAdvanced": SaveImageAdvanced, "SaveSVGNode": SaveSVGNode, "SaveText": SaveText}
