"""Preview nodes with ComfyUI's names: Preview as Text (``PreviewAny``), Image Compare and Preview Mask.

Each shows its input in the browser through the ``ui`` part of the node's result, in the shape ComfyUI's
frontend reads: ``{"text": [str]}`` for PreviewAny, ``{"a_images": [...], "b_images": [...]}`` for ImageCompare,
``{"images": [...]}`` (files in the temp folder) for MaskPreview.
"""

from __future__ import annotations

import json
from typing import Any

from hearth.core.builtin_nodes.image_io import PreviewImage
from hearth.core.images import torch_module


def preview_text(source: Any) -> str:
    """What ComfyUI's PreviewAny shows for ``source``: a string as it is, a number or bool by ``str``, anything
    else as indented JSON when it serializes, else ``str(source)`` (a tensor prints 6 edge items per side)."""
    if source is None:
        return "None"
    if isinstance(source, str):
        return source
    if isinstance(source, (int, float, bool)):
        return str(source)
    try:
        return json.dumps(source, indent=4)
    except Exception:  # noqa: BLE001 - not JSON (a tensor, a model): fall back to its own text, as ComfyUI does
        pass
    torch = torch_module()
    torch.set_printoptions(edgeitems=6)
    try:
        return str(source)
    except Exception:  # noqa: BLE001 - a value whose __str__ raises still gets a preview
        return "source exists, but could not be serialized."
    finally:
        torch.set_printoptions(profile="default")


class PreviewAny:
    """ComfyUI's Preview as Text: shows any value as text in the node and passes that text on."""

    DISPLAY_NAME = "Preview as Text"
    CATEGORY = "utilities"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "main"
    OUTPUT_NODE = True
    SEARCH_ALIASES = ["show output", "inspect", "debug", "print value", "show text"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"source": ("*", {})}}

    def main(self, source: Any = None) -> dict[str, Any]:
        value = preview_text(source)
        return {"ui": {"text": (value,)}, "result": (value,)}


def _check_images(name: str, images: Any) -> None:
    torch = torch_module()
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"input {name!r}: expected an IMAGE [batch, height, width, 3 or 4], got {shape}")


class ImageCompare:
    """ComfyUI's Image Compare: previews ``image_a`` and ``image_b`` (temp files) for the frontend's slider.
    ``compare_view`` is the frontend's slider widget; it carries no value the node uses, so it is optional here
    (ComfyUI lists it as required, and prompts made from templates leave it out)."""

    DISPLAY_NAME = "Image Compare"
    DESCRIPTION = "Compares two images side by side with a slider."
    CATEGORY = "image"
    RETURN_TYPES = ()
    FUNCTION = "execute"
    OUTPUT_NODE = True
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {},
                "optional": {"image_a": ("IMAGE", {}), "image_b": ("IMAGE", {}),
                             "compare_view": ("IMAGECOMPARE", {"socketless": True})}}

    def execute(self, image_a: Any = None, image_b: Any = None, compare_view: Any = None) -> dict[str, Any]:
        result: dict[str, list[Any]] = {"a_images": [], "b_images": []}
        for key, name, images, prefix in (("a_images", "image_a", image_a, "comfy.compare.a"),
                                          ("b_images", "image_b", image_b, "comfy.compare.b")):
            if images is None or len(images) == 0:
                continue
            _check_images(name, images)
            result[key] = PreviewImage().save_images(images, prefix)["ui"]["images"]
        return {"ui": result}


class MaskPreview:
    """ComfyUI's Preview Mask: the mask as a grey image (white = masked) in the temp folder."""

    DISPLAY_NAME = "Preview Mask"
    DESCRIPTION = "Previews the input mask in the UI and saves it as an image to the ComfyUI output directory."
    CATEGORY = "mask"
    RETURN_TYPES = ()
    FUNCTION = "execute"
    OUTPUT_NODE = True
    SEARCH_ALIASES = ["show mask", "view mask", "inspect mask", "debug mask", "preview mask"]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"mask": ("MASK", {"tooltip": "The mask to preview and save."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, mask: Any, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        torch = torch_module()
        if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3, 4):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"input 'mask': expected a MASK [batch, height, width], got {shape}")
        images = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        return PreviewImage().save_images(images, "ComfyUI", prompt=prompt, extra_pnginfo=extra_pnginfo)


NODES = {"PreviewAny": PreviewAny, "ImageCompare": ImageCompare, "MaskPreview": MaskPreview}
