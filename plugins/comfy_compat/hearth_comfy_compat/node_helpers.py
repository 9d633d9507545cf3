"""ComfyUI's ``node_helpers``: opening images safely with PIL, setting options on CONDITIONING entries (for the
whole run or a part of it), the file hash function, dtype names, and matching alpha channels."""

from __future__ import annotations

import hashlib
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


def conditioning_set_values_with_timestep_range(conditioning: list[Any], values: Mapping[str, Any] | None = None,
                                                start_percent: float = 0.0, end_percent: float = 1.0) -> list[Any]:
    """A copy of CONDITIONING where ``values`` apply only from ``start_percent`` to ``end_percent`` of sampling.

    Each entry keeps its own range (``start_percent``/``end_percent`` options): the part of it inside the given
    range gets the values; the parts before and after stay as they were, as separate entries.
    """
    if start_percent > end_percent:
        return conditioning
    nearly = 1e-5
    out = []
    for cond, options in conditioning:
        own_start, own_end = options.get("start_percent", 0.0), options.get("end_percent", 1.0)
        start, end = max(own_start, start_percent), min(own_end, end_percent)
        if start >= end:  # no overlap: the entry is untouched
            out.append([cond, dict(options)])
            continue
        if start > own_start + nearly:
            out.append([cond, {**options, "end_percent": start}])
        out.append([cond, {**options, **(values or {}), "start_percent": start, "end_percent": end}])
        if end < own_end - nearly:
            out.append([cond, {**options, "start_percent": end}])
    return out


def hasher() -> Callable[..., Any]:
    """The hash function files are compared with (``comfy.cli_args.args.default_hashing_function``)."""
    from hearth_comfy_compat.cli_args import args

    return {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256,
            "sha512": hashlib.sha512}[args.default_hashing_function]


def string_to_torch_dtype(name: str) -> Any:
    """``"fp16"``/``"bf16"``/``"fp32"`` to the torch dtype; None for any other name."""
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(name)


def image_alpha_fix(destination: Any, source: Any) -> tuple[Any, Any]:
    """Make two IMAGE batches agree on an alpha channel (add an opaque one to the image that lacks it)."""
    import torch

    if destination.shape[-1] < source.shape[-1]:
        destination = torch.cat([destination, torch.ones_like(destination[..., :1])], dim=-1)
    elif destination.shape[-1] > source.shape[-1]:
        source = torch.cat([source, torch.ones_like(source[..., :1])], dim=-1)
    return destination, source


__all__ = ["conditioning_set_values", "conditioning_set_values_with_timestep_range", "hasher", "image_alpha_fix",
           "pillow", "string_to_torch_dtype"]
