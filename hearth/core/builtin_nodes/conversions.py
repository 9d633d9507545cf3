"""Conversion nodes with ComfyUI's names: Number Convert (``ComfyNumberConvert``), Color Picker (``ColorToRGBInt``)
and Resolution Selector (width and height from an aspect ratio and a megapixel target)."""

from __future__ import annotations

import math
from typing import Any

from hearth.core.schema import Input, Output, Schema, node


@node(Schema("ComfyNumberConvert", category="math", display_name="Number Convert",
             description="Converts an INT, FLOAT, STRING or BOOLEAN to FLOAT and INT.",
             inputs=[Input.of("INT,FLOAT,STRING,BOOLEAN", "value", display_name="value")],
             outputs=[Output("FLOAT", "FLOAT"), Output("INT", "INT")]))
def number_convert(value: Any) -> tuple[float, int]:
    """ComfyUI's Number Convert: a bool is 1/0, a float's INT truncates, a string is parsed (as an integer when
    it is one, so "12345678901234567890" keeps every digit; else as a float, truncated)."""
    if isinstance(value, bool):
        return float(value), int(value)
    if isinstance(value, int):
        return _finite(float(value), value), value
    if isinstance(value, float):
        return _finite(value, value), int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("input 'value': cannot convert an empty string to a number")
        try:
            as_float = float(text)
        except ValueError:
            raise ValueError(f"input 'value': cannot convert string to number: {value!r}") from None
        _finite(as_float, value)
        try:
            return as_float, int(text)
        except ValueError:
            return as_float, int(as_float)
    raise TypeError(f"input 'value': expected an INT, FLOAT, STRING or BOOLEAN, got {type(value).__name__}")


def _finite(number: float, given: Any) -> float:
    if not math.isfinite(number):
        raise ValueError(f"input 'value': cannot convert non-finite value to number: {given!r}")
    return number


@node(Schema("ColorToRGBInt", category="utilities", display_name="Color Picker",
             description="Return a color RGB integer value and hexadecimal representation.",
             inputs=[Input.of("COLOR", "color", default="#ffffff")],
             outputs=[Output("INT", "rgb_int"), Output("COLOR", "hex"), Output("FLOAT", "alpha")]))
def color_to_rgb_int(color: str) -> tuple[int, str, float]:
    """ComfyUI's Color Picker: ``#RRGGBB`` or ``#RRGGBBAA`` to ``r * 65536 + g * 256 + b``, the ``#RRGGBB`` part
    and the alpha in 0..1 (1 without one)."""
    if not isinstance(color, str) or len(color) not in (7, 9) or color[0] != "#":
        raise ValueError(f"input 'color': {color!r} is not in format #RRGGBB or #RRGGBBAA")
    try:
        int(color[1:], 16)
    except ValueError:
        raise ValueError(f"input 'color': {color!r} is not in format #RRGGBB or #RRGGBBAA") from None
    alpha = int(color[7:9], 16) / 255.0 if len(color) == 9 else 1.0
    color = color[:7]
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return r * 256 * 256 + g * 256 + b, color, alpha


ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1 (Square)": (1, 1), "3:2 (Photo)": (3, 2), "4:3 (Standard)": (4, 3), "16:9 (Widescreen)": (16, 9),
    "21:9 (Ultrawide)": (21, 9), "2:3 (Portrait Photo)": (2, 3), "3:4 (Portrait Standard)": (3, 4),
    "9:16 (Portrait Widescreen)": (9, 16),
}


@node(Schema("ResolutionSelector", category="utilities", display_name="Resolution Selector",
             description="Calculate width and height from aspect ratio and megapixel target. Useful for setting up "
                         "Empty Latent Image dimensions.",
             inputs=[Input.combo("aspect_ratio", list(ASPECT_RATIOS), default="1:1 (Square)",
                                 tooltip="The aspect ratio for the output dimensions."),
                     Input.float("megapixels", default=1.0, min=0.1, max=16.0, step=0.1,
                                 tooltip="Target total megapixels. 1.0 MP ≈ 1024x1024 for square."),
                     Input.int("multiple", default=8, min=8, max=128, step=4, advanced=True,
                               tooltip="Nearest multiple of the result to set the selected resolution to."),
                     Input.int("minimum", default=256, min=32, max=4096, step=32, advanced=True,
                               tooltip="Set minimum resolution for any side to be used"),
                     Input.of("RESOLUTION_PREVIEW", "preview", optional=True, socketless=True,
                              ratio_widget="aspect_ratio", megapixels_widget="megapixels",
                              multiple_widget="multiple")],
             outputs=[Output("INT", "width", tooltip="Calculated width in pixels (multiple of 8)."),
                      Output("INT", "height", tooltip="Calculated height in pixels (multiple of 8).")]))
def resolution_selector(aspect_ratio: str, megapixels: float, multiple: int = 8, minimum: int = 256,
                        preview: Any = None) -> tuple[int, int]:
    """ComfyUI's Resolution Selector: each side is ratio * sqrt(megapixels * 2**20 / (w * h)) rounded (half to
    even, Python's ``round``) to ``multiple``; when a side falls below ``minimum``, the smallest exact multiple of
    the ratio that keeps both sides multiples of ``multiple`` and at least ``minimum``.

    ``preview`` is the browser's live size preview widget; the node does not read it. Templates saved before the
    node had ``multiple`` and ``minimum`` (2 or 3 widgets stored) get their defaults when read, as in ComfyUI."""
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"input 'aspect_ratio': {aspect_ratio!r} is not one of {list(ASPECT_RATIOS)}")
    if multiple < 1:
        raise ValueError(f"input 'multiple': {multiple} must be at least 1")
    w_ratio, h_ratio = ASPECT_RATIOS[aspect_ratio]
    scale = math.sqrt(megapixels * 1024 * 1024 / (w_ratio * h_ratio))
    width = round(w_ratio * scale / multiple) * multiple
    height = round(h_ratio * scale / multiple) * multiple
    if width < minimum or height < minimum:
        step_w = multiple // math.gcd(w_ratio, multiple)
        step_h = multiple // math.gcd(h_ratio, multiple)
        k_step = step_w * step_h // math.gcd(step_w, step_h)
        k = math.ceil(math.ceil(max(minimum / w_ratio, minimum / h_ratio)) / k_step) * k_step
        width, height = w_ratio * k, h_ratio * k
    return width, height


NODES = {cls.__name__: cls for cls in (number_convert, color_to_rgb_int, resolution_selector)}
