"""Layout prompt nodes with ComfyUI's names: Create Bounding Boxes (boxes drawn on a canvas in the browser, as
pixel boxes, Ideogram-style prompt elements and a preview) and Build JSON Prompt (Ideogram).

Boxes travel in three shapes, as ComfyUI's nodes exchange them: the canvas's ``[{x, y, width, height,
metadata: {type, text, desc, palette}}]`` in pixels; a BOUNDING_BOX frame list ``[[{x, y, width, height}...]]``;
and prompt elements ``{type, bbox: [ymin, xmin, ymax, xmax] on a 0..1000 grid, text, desc, color_palette}``.
Colour codes are upper-cased and at most five are kept per element, as ComfyUI does.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from hearth.core.builtin_nodes.dynamic_inputs import DynamicSection, dynamic_combo
from hearth.core.builtin_nodes.image_dynamic import selected_option
from hearth.core.images import torch_module

PREVIEW_LONG_EDGE = 1024
PREVIEW_DIM = 0.25


def _rgb(code: str) -> tuple[int, int, int]:
    digits = code.lstrip("#") if isinstance(code, str) else ""
    try:
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)) if len(digits) == 6 \
            else (255, 255, 255)
    except ValueError:
        return (255, 255, 255)


def palette(colours: Any) -> list[str]:
    """Colour codes as ComfyUI normalizes them: the non-empty strings, upper-cased (a dict gives its values)."""
    values = colours.values() if isinstance(colours, dict) else (colours or [])
    return [c.upper() for c in values if isinstance(c, str) and c]


def _pixel_box(box: dict[str, Any]) -> dict[str, Any]:
    out = {key: box.get(key, 0) for key in ("x", "y", "width", "height")}
    if isinstance(box.get("metadata"), dict):
        out["metadata"] = box["metadata"]
    return out


def _element_box(element: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    grid = element.get("bbox")
    if not (isinstance(grid, (list, tuple)) and len(grid) == 4):
        raise ValueError("input 'bboxes': an element has no valid 'bbox' [ymin, xmin, ymax, xmax]")
    try:
        ymin, xmin, ymax, xmax = (float(v) / 1000.0 for v in grid)
    except (TypeError, ValueError):
        raise ValueError("input 'bboxes': an element's 'bbox' must hold four numbers") from None
    kind = "text" if element.get("type") == "text" else "obj"
    return {"x": round(min(xmin, xmax) * width), "y": round(min(ymin, ymax) * height),
            "width": round(abs(xmax - xmin) * width), "height": round(abs(ymax - ymin) * height),
            "metadata": {"type": kind, "text": element.get("text", "") if kind == "text" else "",
                         "desc": element.get("desc", ""), "palette": element.get("color_palette", []) or []}}


def boxes_from_input(data: Any, width: int, height: int) -> list[dict[str, Any]]:
    """Pixel boxes from what the ``bboxes`` input carries: boxes, a frame list of boxes, elements, or JSON text."""
    if data is None:
        return []
    if isinstance(data, str):
        if not data.strip():
            return []
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"input 'bboxes': the text is not valid JSON ({exc})") from None
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"input 'bboxes': expected bounding boxes, elements or JSON text, got {type(data).__name__}")
    if items and isinstance(items[0], list):
        items = items[0]  # a BOUNDING_BOX frame list: its first frame
    boxes = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("bbox"), (list, tuple)):
            boxes.append(_element_box(item, width, height))
        elif all(key in item for key in ("x", "y", "width", "height")):
            boxes.append(_pixel_box(item))
        else:
            raise ValueError("input 'bboxes': each item must be a bounding box (x, y, width, height) or an "
                             "element (with a 'bbox')")
    return boxes


def regions(boxes: list[Any], width: int, height: int) -> list[dict[str, Any]]:
    """Boxes as fractions of the canvas with their metadata (``x, y, w, h, type, text, desc, palette``)."""
    w, h = width or 1, height or 1
    found = []
    for box in boxes if isinstance(boxes, list) else []:
        if not isinstance(box, dict):
            continue
        meta = box.get("metadata") if isinstance(box.get("metadata"), dict) else {}
        found.append({"x": box.get("x", 0) / w, "y": box.get("y", 0) / h, "w": box.get("width", 0) / w,
                      "h": box.get("height", 0) / h, "type": meta.get("type", "obj"), "text": meta.get("text", ""),
                      "desc": meta.get("desc", ""), "palette": meta.get("palette", [])})
    return found


def _to_pixels(region: dict[str, Any], width: int, height: int) -> dict[str, int]:
    x, y, w, h = region["x"], region["y"], region["w"], region["h"]
    if w < 0:
        x, w = x + w, -w
    if h < 0:
        y, h = y + h, -h
    return {"x": round(x * width), "y": round(y * height), "width": round(w * width), "height": round(h * height)}


def elements(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompt elements: ``bbox`` as [ymin, xmin, ymax, xmax] on a 0..1000 grid (clamped, ordered)."""
    def grid(value: float) -> int:
        return max(0, min(1000, round(value * 1000)))

    out = []
    for region in found:
        kind = "text" if region.get("type") == "text" else "obj"
        ymin, xmin = grid(region["y"]), grid(region["x"])
        ymax, xmax = grid(region["y"] + region["h"]), grid(region["x"] + region["w"])
        element: dict[str, Any] = {"type": kind, "bbox": [min(ymin, ymax), min(xmin, xmax), max(ymin, ymax),
                                                          max(xmin, xmax)]}
        if kind == "text":
            element["text"] = region.get("text", "")
        element["desc"] = region.get("desc", "")
        colours = palette(region.get("palette", []))
        if colours:
            element["color_palette"] = colours[:5]
        out.append(element)
    return out


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size)
    except (TypeError, OSError):  # a Pillow without FreeType has only the fixed bitmap font
        return ImageFont.load_default()


def render_preview(found: list[dict[str, Any]], width: int, height: int, background: Any = None) -> Any:
    """The boxes over the background dimmed to a quarter (or a dark grey canvas), long edge at most 1024: each box
    outlined in its first palette colour, its palette as swatches along the top, its number and description."""
    torch = torch_module()
    if background is not None:
        array = np.clip(background[0].detach().cpu().float().numpy() * 255.0, 0, 255).astype(np.uint8)
        base = Image.fromarray(array[..., :3] if array.shape[-1] >= 3 else array[..., 0]).convert("RGB")
        scale = min(1.0, PREVIEW_LONG_EDGE / (max(base.size) or 1))
        size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
        canvas = ImageEnhance.Brightness(base.resize(size, Image.LANCZOS)).enhance(PREVIEW_DIM).convert("RGBA")
    else:
        scale = min(1.0, PREVIEW_LONG_EDGE / (max(width, height) or 1))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = round(PREVIEW_DIM * 128)
        canvas = Image.new("RGBA", size, (grey, grey, grey, 255))
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    rw, rh = size
    font_size = max(10, round(rh / 64))
    font, tag_font = _font(font_size), _font(max(9, font_size - 2))
    for index, region in enumerate(found):
        colours = [c for c in (region.get("palette") or []) if c]
        r, g, b = _rgb(colours[0]) if colours else (140, 140, 140)
        xs = sorted(max(0, min(rw, round(v * rw))) for v in (region["x"], region["x"] + region["w"]))
        ys = sorted(max(0, min(rh, round(v * rh))) for v in (region["y"], region["y"] + region["h"]))
        (x1, x2), (y1, y2) = xs, ys
        draw.rectangle([x1, y1, x2, y2], outline=(r, g, b, 255), width=2)
        if colours[:5] and x2 - x1 > 2:
            step = (x2 - x1) / len(colours[:5])
            for k, code in enumerate(colours[:5]):
                draw.rectangle([x1 + round(k * step), y1, x1 + round((k + 1) * step), y1 + max(5, font_size // 2)],
                               fill=_rgb(code))
        tag = f"{index + 1:02d}"
        draw.rectangle([x1, y1, x1 + draw.textlength(tag, font=tag_font) + 6, y1 + font_size + 2],
                       fill=(r, g, b, 255))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 140
        draw.text((x1 + 3, y1 + 1), tag, fill=(0, 0, 0, 255) if light else (255, 255, 255, 255), font=tag_font)
        body = region.get("desc", "") or ""
        if region.get("type") == "text" and region.get("text"):
            body = f'"{region["text"]}"' + (f" — {body}" if body else "")
        if body and x2 - x1 > 8:
            top = y1 + font_size + 5
            for line in _wrapped(draw, body, font, x2 - x1 - 8):
                if top > y2:
                    break
                draw.text((x1 + 4, top), line, fill=_readable((r, g, b)) + (255,), font=font)
                top += font_size + 2
    composed = Image.alpha_composite(canvas, overlay).convert("RGB")
    return torch.from_numpy(np.asarray(composed, dtype=np.float32) / 255.0)[None]


def _readable(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour lightened towards white until it reads on the dimmed canvas (luma at least 130)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    if luma >= 130:
        return rgb
    t = (130 - luma) / (255 - luma)
    return tuple(round(c + (255 - c) * t) for c in rgb)  # type: ignore[return-value]


def _wrapped(draw: Any, text: str, font: Any, width: float) -> list[str]:
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and draw.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


class CreateBoundingBoxes:
    """ComfyUI's Create Bounding Boxes: the boxes of the browser's canvas (``editor_state``), or of the
    ``bboxes`` input when it brings new ones, as a preview, pixel boxes and prompt elements."""

    DISPLAY_NAME = "Create Bounding Boxes"
    DESCRIPTION = ("Draw bounding boxes in a canvas. Outputs Ideogram prompt elements, pixel-space bounding boxes, "
                   "and a preview image.")
    CATEGORY = "utilities"
    RETURN_TYPES = ("IMAGE", "BOUNDING_BOX", "ARRAY")
    RETURN_NAMES = ("preview", "bboxes", "elements")
    FUNCTION = "execute"
    OUTPUT_NODE = True
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        size = {"min": 64, "max": 16384, "step": 16}
        return {"required": {"width": ("INT", {"default": 1024, **size}), "height": ("INT", {"default": 1024, **size}),
                             "editor_state": ("BOUNDING_BOXES", {"default": [], "socketless": False})},
                "optional": {"background": ("IMAGE", {}), "bboxes": ("BOUNDING_BOX,ARRAY,STRING", {}),
                             "last_incoming": ("BOUNDING_BOXES", {"default": [], "socketless": True})}}

    def execute(self, width: int, height: int, editor_state: Any = None, last_incoming: Any = None,
                background: Any = None, bboxes: Any = None) -> dict[str, Any]:
        incoming = boxes_from_input(bboxes, width, height)
        applied = last_incoming if isinstance(last_incoming, list) else []
        # A new upstream value starts the canvas over; otherwise the user's edits on the canvas win.
        source = incoming if incoming and incoming != applied else (editor_state or [])
        found = regions(source, width, height)
        frame = [_to_pixels(region, width, height) for region in found]
        ui: dict[str, Any] = {"dims": [width, height]}
        if incoming:
            ui["input_bboxes"] = incoming
        return {"ui": ui, "result": (render_preview(found, width, height, background), [frame] if frame else [],
                                     elements(found))}


_STYLE, _STYLE_CLAIMS = dynamic_combo("style", {
    "none": {},
    "photo": {"photo": ("STRING", {"default": "", "tooltip": "Camera or lens details for photographic outputs "
                                                             "(e.g. 35mm, f/1.4, bokeh)."})},
    "art_style": {"art_style": ("STRING", {"default": "", "tooltip": "Art style description (e.g. flat vector "
                                                                     "illustration, bold outlines)."})}})


class BuildJsonPromptIdeogram:
    """ComfyUI's Build JSON Prompt (Ideogram): the caption dict Ideogram 4 reads, from Create Bounding Boxes'
    elements, the background and (unless style is none) the style fields and palette."""

    DISPLAY_NAME = "Build JSON Prompt (Ideogram)"
    DESCRIPTION = "Build a JSON prompt for the Ideogram 4 model."
    CATEGORY = "text"
    RETURN_TYPES = ("DICT",)
    RETURN_NAMES = ("prompt",)
    FUNCTION = "execute"
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        text = {"multiline": True, "default": ""}
        return {"required": DynamicSection({
            "element": ("ARRAY", {"tooltip": "Prompt elements from the node Create Bounding Boxes."}),
            "high_level_description": ("STRING", dict(text)), "background": ("STRING", dict(text)),
            "style": _STYLE, "aesthetics": ("STRING", {"default": ""}), "lighting": ("STRING", {"default": ""}),
            "medium": ("STRING", {"default": ""}),
            "color_palette": ("COLORS", {"default": [], "socketless": False})}, _STYLE_CLAIMS)}

    def execute(self, element: Any, style: str, high_level_description: str = "", background: str = "",
                aesthetics: str = "", lighting: str = "", medium: str = "", color_palette: Any = None,
                **members: Any) -> tuple[dict[str, Any]]:
        given = dict(members)
        if style in ("photo", "art_style"):
            given.setdefault(f"style.{style}", "")  # its text widget, empty when a client leaves it out
        chosen = selected_option("style", _STYLE, style, given)
        caption: dict[str, Any] = {}
        if high_level_description.strip():
            caption["high_level_description"] = high_level_description
        if style != "none":
            described: dict[str, Any] = {"aesthetics": aesthetics, "lighting": lighting}
            if style == "photo":
                described.update(photo=chosen.get("photo", ""), medium=medium)
            else:
                described.update(medium=medium, art_style=chosen.get("art_style", ""))
            colours = palette(color_palette)
            if colours:
                described["color_palette"] = colours
            caption["style_description"] = described
        caption["compositional_deconstruction"] = {"background": background,
                                                   "elements": element if isinstance(element, list) else []}
        return (caption,)


NODES = {"CreateBoundingBoxes": CreateBoundingBoxes, "BuildJsonPromptIdeogram": BuildJsonPromptIdeogram}
