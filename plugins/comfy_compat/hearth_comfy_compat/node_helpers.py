"""ComfyUI's ``node_helpers``: opening images safely with PIL, and setting options on every CONDITIONING entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import ImageFile, UnidentifiedImageError


def pillow(fn: Callable[..., Any], arg: Any) -> Any:
    """``fn(arg)`` (``Image.open``, ``ImageOps.exif_transpose``...), retried with truncated images allowed: a PNG
    cut short should load as far as it goes rather than fail the node."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return fn(arg)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def conditioning_set_values(conditioning: list[Any], values: Mapping[str, Any] | None = None,
                            append: bool = False) -> list[Any]:
    """A copy of CONDITIONING with ``values`` set in every entry's options (with ``append``, list values are
    added to what the entry already holds). The input is left untouched: it may be cached upstream."""
    out = []
    for cond, options in conditioning:
        options = dict(options)
        for key, value in (values or {}).items():
            if append and key in options:
                options[key] = options[key] + value
            else:
                options[key] = value
        out.append([cond, options])
    return out


def image_alpha_fix(destination: Any, source: Any) -> tuple[Any, Any]:
    """Make two IMAGE batches agree on an alpha channel (add an opaque one to the image that lacks it)."""
    import torch

    if destination.shape[-1] < source.shape[-1]:
        destination = torch.cat([destination, torch.ones_like(destination[..., :1])], dim=-1)
    elif destination.shape[-1] > source.shape[-1]:
        source = torch.cat([source, torch.ones_like(source[..., :1])], dim=-1)
    return destination, source


__all__ = ["conditioning_set_values", "image_alpha_fix", "pillow"]
